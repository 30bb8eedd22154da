//! UDP datagrams out of a [`Capture`](crate::Capture)'s pcap (Ethernet frames; IPv4, or IPv6 without extension
//! headers), with their capture time, for tests and benchmarks that look at what went over the wire and when.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

/// One UDP datagram of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// When the kernel saw it (the capture's wall clock, microseconds).
    pub at: SystemTime,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

impl Datagram {
    /// For mDNS payloads: whether it is a response (the DNS header's QR bit).
    pub fn is_dns_response(&self) -> bool {
        self.payload.get(2).is_some_and(|flags| flags & 0x80 != 0)
    }

    /// For DNS payloads: the name and type of the first question, when it is written out in full (the first
    /// question of a message always is: nothing precedes it to point to).
    pub fn first_question(&self) -> Option<(String, u16)> {
        let count = u16::from_be_bytes([*self.payload.get(4)?, *self.payload.get(5)?]);
        if count == 0 {
            return None;
        }
        let mut at = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*self.payload.get(at)?);
            at += 1;
            if len == 0 {
                break;
            }
            // A compression pointer (or a reserved label type) cannot start a message's first name.
            if len > 63 {
                return None;
            }
            labels.push(String::from_utf8_lossy(self.payload.get(at..at + len)?).into_owned());
            at += len;
        }
        let qtype = u16::from_be_bytes([*self.payload.get(at)?, *self.payload.get(at + 1)?]);
        Some((labels.join(".") + ".", qtype))
    }

    /// For DNS payloads: the header's count of authority records (probes carry their proposed records there).
    pub fn dns_authorities(&self) -> u16 {
        match self.payload.get(8..10) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }
}

/// Every UDP datagram of a pcap file (little-endian, microsecond timestamps, as tcpdump writes here); frames of other
/// protocols are skipped, and a truncated file ends the list.
pub fn udp_datagrams(pcap: &[u8]) -> Vec<Datagram> {
    let mut out = Vec::new();
    // The global header: magic, versions, zone, accuracy, snaplen, link type.
    let mut at = 24;
    while let Some(header) = pcap.get(at..at + 16) {
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (secs, micros, len) = (word(0), word(4), word(8) as usize);
        let Some(frame) = pcap.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        let when = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs.into())
            + Duration::from_micros(micros.into());
        if let Some(datagram) = udp_of(frame, when) {
            out.push(datagram);
        }
    }
    out
}

fn udp_of(frame: &[u8], at: SystemTime) -> Option<Datagram> {
    let (src, dst, udp) = match frame.get(12..14)? {
        [0x08, 0x00] => {
            let ip = frame.get(14..34)?;
            if ip[9] != 17 {
                return None;
            }
            let v4 = |i: usize| IpAddr::from(Ipv4Addr::new(ip[i], ip[i + 1], ip[i + 2], ip[i + 3]));
            (v4(12), v4(16), 14 + usize::from(ip[0] & 0x0f) * 4)
        }
        [0x86, 0xdd] => {
            let ip = frame.get(14..54)?;
            if ip[6] != 17 {
                return None;
            }
            let v6 = |i: usize| -> Option<IpAddr> {
                let bytes: [u8; 16] = ip.get(i..i + 16)?.try_into().ok()?;
                Some(IpAddr::from(Ipv6Addr::from(bytes)))
            };
            (v6(8)?, v6(24)?, 54)
        }
        _ => return None,
    };
    let header = frame.get(udp..udp + 8)?;
    let port = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    Some(Datagram {
        at,
        src: SocketAddr::new(src, port(0)),
        dst: SocketAddr::new(dst, port(2)),
        payload: frame.get(udp + 8..)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap with one Ethernet/IPv4/UDP frame carrying `payload` from 10.0.0.1:5353 to 224.0.0.251:5353.
    fn one_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        frame.extend([0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        frame.extend([
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            255,
            17,
            0,
            0,
        ]);
        frame.extend([10, 0, 0, 1, 224, 0, 0, 251]);
        let udp_len = (8 + payload.len()) as u16;
        frame.extend([
            0x14,
            0xe9,
            0x14,
            0xe9,
            (udp_len >> 8) as u8,
            udp_len as u8,
            0,
            0,
        ]);
        frame.extend(payload);
        let mut pcap = vec![0u8; 24];
        pcap.extend(7u32.to_le_bytes());
        pcap.extend(250_000u32.to_le_bytes());
        pcap.extend((frame.len() as u32).to_le_bytes());
        pcap.extend((frame.len() as u32).to_le_bytes());
        pcap.extend(frame);
        pcap
    }

    #[test]
    fn reads_a_query_and_its_question() {
        let mut query = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend(b"\x0a_localpair\x04_tcp\x05local\x00\x00\x0c\x00\x01");
        let got = udp_datagrams(&one_frame(&query));
        assert_eq!(got.len(), 1);
        let d = &got[0];
        assert_eq!(d.src, "10.0.0.1:5353".parse().unwrap());
        assert_eq!(d.dst, "224.0.0.251:5353".parse().unwrap());
        assert_eq!(d.at, SystemTime::UNIX_EPOCH + Duration::from_millis(7250));
        assert!(!d.is_dns_response());
        assert_eq!(d.dns_authorities(), 0);
        assert_eq!(
            d.first_question(),
            Some(("_localpair._tcp.local.".to_owned(), 12))
        );
    }

    #[test]
    fn truncated_frames_and_pointers_are_not_misread() {
        let mut pcap = one_frame(&[0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c]);
        let got = udp_datagrams(&pcap);
        assert!(got[0].is_dns_response());
        assert_eq!(got[0].first_question(), None);
        pcap.truncate(pcap.len() - 3);
        assert!(udp_datagrams(&pcap).is_empty());
    }
}
