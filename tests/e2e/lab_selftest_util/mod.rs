//! Connectivity probes shared by the lab self-tests: small, blocking, std-only socket exchanges between hosts.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use localpair_lab::Host;

/// Long enough for a datagram on a veth (microseconds), short enough to keep negative checks fast.
pub(crate) const NEGATIVE: Duration = Duration::from_millis(300);
/// The group the multicast probes use (organisation-local scope, TTL 1).
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 77);

/// Sends one UDP datagram from `from` to `to`'s LAN address and reports whether it arrived.
pub(crate) fn udp_delivered(from: &Host, to: &Host) -> bool {
    let rx = to
        .run(|| UdpSocket::bind((to.addr(), 0)))
        .expect("enter")
        .expect("bind");
    rx.set_read_timeout(Some(NEGATIVE)).expect("timeout");
    let dest = rx.local_addr().expect("addr");
    from.run(|| {
        let tx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        // EPERM here means our own nft output rule dropped it, which is also "not delivered".
        let _ = tx.send_to(b"ping", dest);
    })
    .expect("enter");
    let mut buf = [0; 16];
    rx.recv_from(&mut buf).is_ok()
}

/// Sends `n` datagrams from `from` to `to` and counts how many arrive.
pub(crate) fn udp_burst(from: &Host, to: &Host, n: usize) -> usize {
    let rx = to
        .run(|| UdpSocket::bind((to.addr(), 0)))
        .expect("enter")
        .expect("bind");
    rx.set_read_timeout(Some(NEGATIVE)).expect("timeout");
    let dest = rx.local_addr().expect("addr");
    from.run(|| {
        let tx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        for i in 0..n {
            let _ = tx.send_to(&i.to_be_bytes(), dest);
            // Pace the burst so the receive buffer, not the fault, is never what drops a datagram.
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .expect("enter");
    let mut buf = [0; 16];
    std::iter::from_fn(|| rx.recv_from(&mut buf).ok()).count()
}

/// Connects over TCP from `from` to a listener on `to` (port 0 = any) and exchanges a few bytes.
pub(crate) fn tcp_works(from: &Host, to: &Host, port: u16) -> bool {
    let listener = to
        .run(|| TcpListener::bind((to.addr(), port)))
        .expect("enter")
        .expect("bind");
    let dest = listener.local_addr().expect("addr");
    let connected = from
        .run(|| {
            let mut s = TcpStream::connect_timeout(&dest, NEGATIVE).ok()?;
            s.write_all(b"hi").ok()
        })
        .expect("enter");
    if connected.is_none() {
        return false;
    }
    let (mut conn, _) = listener.accept().expect("accept");
    let mut got = [0; 2];
    conn.read_exact(&mut got).expect("read");
    &got == b"hi"
}

/// Sends one datagram to the test group from `from`; `Err` is the send error.
pub(crate) fn send_multicast(from: &Host, port: u16) -> std::io::Result<()> {
    from.run(|| {
        let tx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        tx.set_multicast_ttl_v4(1)?;
        tx.send_to(b"mcast", (GROUP, port)).map(drop)
    })
    .expect("enter")
}

/// A socket in `host` joined to the test group on its LAN interface.
pub(crate) fn join_group(host: &Host) -> UdpSocket {
    let rx = host
        .run(|| -> std::io::Result<UdpSocket> {
            let rx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            rx.join_multicast_v4(&GROUP, &host.addr())?;
            Ok(rx)
        })
        .expect("enter")
        .expect("join");
    rx.set_read_timeout(Some(NEGATIVE)).expect("timeout");
    rx
}

pub(crate) fn received(rx: &UdpSocket) -> bool {
    let mut buf = [0; 16];
    rx.recv_from(&mut buf).is_ok()
}

pub(crate) fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}
