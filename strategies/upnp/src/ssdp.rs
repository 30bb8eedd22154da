//! The SSDP search: `M-SEARCH` rounds sent from one local address, answers read with a cap and
//! filtered before anything talks HTTP to the device that sent them.
//!
//! igd-next's own search sends one `M-SEARCH` and fetches the description of whichever device
//! answers first, wherever it is. Searching here first lets the resolver retry lost datagrams and
//! pick a gateway on the local subnet; igd-next is then pointed at that one gateway only (a unicast
//! `M-SEARCH` to it), so it never talks to another device.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// The SSDP multicast group and port.
pub(crate) const MULTICAST: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900);

/// The port SSDP devices listen on (also for unicast `M-SEARCH`).
pub(crate) const PORT: u16 = 1900;

/// Largest answer read. An SSDP answer is a few hundred bytes; a datagram that fills the buffer
/// was cut by the kernel and is ignored, because its `LOCATION` may be cut too.
pub(crate) const MAX_ANSWER: usize = 2048;

/// Answers from this many distinct devices are remembered as "ignored"; more are dropped silently.
const MAX_IGNORED: usize = 8;

/// What is searched for: the same targets igd-next searches, so any gateway it can use answers.
const TARGETS: [&str; 3] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// `MX`: the longest a device may wait before answering (UDA 1.1: 1 to 5 s). The minimum keeps
/// searches short.
const MX: u8 = 1;

/// The `M-SEARCH` request for one target.
pub(crate) fn request(target: &str) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {MULTICAST}\r\nMAN: \"ssdp:discover\"\r\nMX: {MX}\r\nST: {target}\r\n\r\n"
    )
}

/// A device's answer to a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Where the answer came from.
    pub(crate) from: SocketAddrV4,
    /// The host and port of its `LOCATION` (the description URL).
    pub(crate) location: SocketAddrV4,
    /// The `SERVER` header, sanitised, if any.
    pub(crate) server: Option<String>,
}

/// Parses an answer; `Err` says why it is unusable.
pub(crate) fn parse_answer(datagram: &[u8], from: SocketAddrV4) -> Result<Answer, String> {
    let text = std::str::from_utf8(datagram).map_err(|_| "answer is not UTF-8".to_owned())?;
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default();
    let mut words = status.split_whitespace();
    let ok = words
        .next()
        .is_some_and(|v| v.to_ascii_uppercase().starts_with("HTTP/1."))
        && words.next() == Some("200");
    if !ok {
        return Err(format!("not an SSDP answer: {:?}", printable(status, 40)));
    }
    let mut location = None;
    let mut server = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("location") {
            location = Some(
                parse_location(value)
                    .ok_or_else(|| format!("unusable LOCATION {:?}", printable(value, 80)))?,
            );
        } else if name.trim().eq_ignore_ascii_case("server") && !value.is_empty() {
            server = Some(printable(value, 80));
        }
    }
    let location = location.ok_or_else(|| "answer without LOCATION".to_owned())?;
    Ok(Answer {
        from,
        location,
        server,
    })
}

/// The IPv4 host and port of an `http://` URL; host names, user info and IPv6 are refused.
pub(crate) fn parse_location(url: &str) -> Option<SocketAddrV4> {
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = url.get(7..)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return None;
    }
    let addr = match authority.parse::<SocketAddrV4>() {
        Ok(addr) => addr,
        Err(_) => SocketAddrV4::new(authority.parse().ok()?, 80),
    };
    (addr.port() != 0).then_some(addr)
}

/// `text` without control characters, at most `max` characters, for logs and messages.
pub(crate) fn printable(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    clean.trim().to_owned()
}

/// What a search did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// `M-SEARCH` rounds sent.
    pub(crate) searches: u32,
    /// How long the search ran.
    pub(crate) elapsed: Duration,
    /// Answers not used, with the reason.
    pub(crate) ignored: Vec<String>,
    /// Why the search could not run or stopped early.
    pub(crate) error: Option<String>,
}

/// Searches from `local` (the socket is bound to it and multicasts through its interface):
/// `searches` rounds spread evenly over `timeout`, until an answer passes `accept`.
///
/// `target` is the multicast group, or a device's address for a unicast search. Answers that fail
/// to parse or that `accept` refuses are listed in the tally, once per device.
pub(crate) async fn search(
    local: Ipv4Addr,
    target: SocketAddrV4,
    searches: u32,
    timeout: Duration,
    accept: impl Fn(&Answer) -> Result<(), String>,
) -> (Option<Answer>, Tally) {
    let start = Instant::now();
    let mut tally = Tally::default();
    let socket = match open(local) {
        Ok(socket) => socket,
        Err(error) => {
            tally.error = Some(format!("bind {local}:0: {error}"));
            return (None, tally);
        }
    };
    let searches = searches.max(1);
    let interval = timeout / searches;
    let mut ignored_from: Vec<Ipv4Addr> = Vec::new();
    let mut buf = vec![0u8; MAX_ANSWER];
    for round in 0..searches {
        let round_end = if round + 1 == searches {
            start + timeout
        } else {
            start + interval * (round + 1)
        };
        let mut sent = false;
        let mut send_error = None;
        for st in TARGETS {
            match socket.send_to(request(st).as_bytes(), target).await {
                Ok(_) => sent = true,
                Err(error) => send_error = Some(error),
            }
        }
        if !sent {
            let error = send_error.map(|e| e.to_string()).unwrap_or_default();
            tally.error = Some(format!("sending M-SEARCH to {target}: {error}"));
            break;
        }
        tally.searches += 1;
        tracing::trace!(%local, %target, round, "M-SEARCH sent");
        loop {
            let received = tokio::time::timeout_at(round_end, socket.recv_from(&mut buf)).await;
            let (len, from) = match received {
                Err(_) => break,
                Ok(Ok((len, SocketAddr::V4(from)))) => (len, from),
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => {
                    // Unconnected UDP sockets report hardly anything; do not spin on it.
                    tracing::debug!(%local, %error, "receiving SSDP answers");
                    tally.error = Some(format!("receiving: {error}"));
                    tokio::time::sleep_until(round_end).await;
                    break;
                }
            };
            let verdict = if len >= buf.len() {
                Err(format!("answer over {MAX_ANSWER} bytes"))
            } else {
                parse_answer(&buf[..len], from).and_then(|answer| {
                    accept(&answer)?;
                    Ok(answer)
                })
            };
            match verdict {
                Ok(answer) => {
                    tally.elapsed = start.elapsed();
                    return (Some(answer), tally);
                }
                Err(why) => {
                    if !ignored_from.contains(from.ip()) && ignored_from.len() < MAX_IGNORED {
                        tracing::debug!(%local, %from, %why, "SSDP answer ignored");
                        ignored_from.push(*from.ip());
                        tally.ignored.push(format!("{} ({why})", from.ip()));
                    }
                }
            }
        }
    }
    tally.elapsed = start.elapsed();
    (None, tally)
}

/// A UDP socket bound to `local:0` that multicasts through `local`'s interface (Linux picks the
/// interface of a multicast send by a route lookup otherwise, which fails without a route).
fn open(local: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_multicast_if_v4(&local)?;
    // One hop: the gateway is on the local link.
    socket.set_multicast_ttl_v4(1)?;
    socket.bind(&SocketAddr::from((local, 0)).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), 1900);

    #[test]
    fn parses_a_miniupnpd_answer() {
        let text = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n\
            ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
            USN: uuid:3d3cec3a::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\n\
            SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n\
            LOCATION: http://10.77.0.1:5000/rootDesc.xml\r\n\r\n";
        let answer = parse_answer(text.as_bytes(), FROM).unwrap();
        assert_eq!(answer.location, "10.77.0.1:5000".parse().unwrap());
        assert_eq!(
            answer.server.as_deref(),
            Some("Debian/12 UPnP/1.1 MiniUPnPd/2.3.1")
        );
    }

    #[test]
    fn tolerates_case_and_bare_newlines() {
        let text = "http/1.1 200 OK\nlocation:HTTP://192.168.1.1/igd.xml\n\n";
        let answer = parse_answer(text.as_bytes(), FROM).unwrap();
        assert_eq!(answer.location, "192.168.1.1:80".parse().unwrap());
        assert_eq!(answer.server, None);
    }

    #[test]
    fn refuses_what_is_not_an_answer() {
        for (text, why) in [
            (
                "M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n",
                "not an SSDP answer",
            ),
            ("HTTP/1.1 404 Not Found\r\n\r\n", "not an SSDP answer"),
            ("HTTP/1.1 200 OK\r\nST: x\r\n\r\n", "without LOCATION"),
            (
                "HTTP/1.1 200 OK\r\nLOCATION: https://10.0.0.1/x\r\n\r\n",
                "unusable LOCATION",
            ),
            (
                "HTTP/1.1 200 OK\r\nLOCATION: http://router.lan:80/x\r\n\r\n",
                "unusable LOCATION",
            ),
            (
                "HTTP/1.1 200 OK\r\nLOCATION: http://u@10.0.0.1/x\r\n\r\n",
                "unusable LOCATION",
            ),
            (
                "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1:0/x\r\n\r\n",
                "unusable LOCATION",
            ),
        ] {
            let err = parse_answer(text.as_bytes(), FROM).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        assert!(parse_answer(&[0xff, 0xfe], FROM).is_err());
    }

    #[test]
    fn location_forms() {
        assert_eq!(
            parse_location("http://10.0.0.1:49152?x"),
            Some("10.0.0.1:49152".parse().unwrap())
        );
        assert_eq!(
            parse_location("http://10.0.0.1"),
            Some("10.0.0.1:80".parse().unwrap())
        );
        assert_eq!(parse_location("http://[fe80::1]:80/"), None);
        assert_eq!(parse_location("http:/"), None);
        assert_eq!(parse_location("ftp://10.0.0.1/"), None);
    }

    #[test]
    fn requests_ask_for_a_quick_answer() {
        let request = request(TARGETS[0]);
        assert!(request.starts_with("M-SEARCH * HTTP/1.1\r\n"));
        assert!(request.contains("HOST: 239.255.255.250:1900\r\n"));
        assert!(request.contains("MX: 1\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
    }

    #[test]
    fn printable_strips_controls_and_caps() {
        assert_eq!(printable("a\u{1b}[31mb\r\n", 10), "a[31mb");
        assert_eq!(printable(&"x".repeat(500), 80).len(), 80);
    }

    #[tokio::test]
    async fn unanswered_search_counts_rounds_on_loopback() {
        // 127.0.0.1 port 9 (discard): nothing answers; the search must still run every round
        // and stop at its timeout. Loopback only: nothing leaves this machine.
        let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let (found, tally) = search(
            Ipv4Addr::LOCALHOST,
            target,
            3,
            Duration::from_millis(150),
            |_| Ok(()),
        )
        .await;
        assert!(found.is_none());
        assert_eq!(tally.searches, 3, "{tally:?}");
        assert!(tally.elapsed >= Duration::from_millis(150), "{tally:?}");
        assert!(tally.elapsed < Duration::from_millis(1000), "{tally:?}");
    }

    #[tokio::test]
    async fn a_loopback_responder_is_found_and_filtered() {
        // A fake device on loopback answers every request; `accept` decides.
        let device = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let device_addr = match device.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let responder = std::thread::spawn(move || {
            device
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 1024];
            let mut answered = 0;
            while let Ok((_, from)) = device.recv_from(&mut buf) {
                let answer = "HTTP/1.1 200 OK\r\nLOCATION: http://127.0.0.1:5000/d.xml\r\n\r\n";
                device.send_to(answer.as_bytes(), from).unwrap();
                answered += 1;
                if answered == 9 {
                    break;
                }
            }
        });
        let (found, tally) = search(
            Ipv4Addr::LOCALHOST,
            device_addr,
            2,
            Duration::from_millis(200),
            |_| Err("refused by the test".into()),
        )
        .await;
        assert!(found.is_none());
        assert_eq!(tally.ignored, ["127.0.0.1 (refused by the test)"]);
        let (found, _) = search(
            Ipv4Addr::LOCALHOST,
            device_addr,
            2,
            Duration::from_millis(200),
            |_| Ok(()),
        )
        .await;
        assert_eq!(
            found.map(|a| a.location),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        responder.join().unwrap();
    }
}
