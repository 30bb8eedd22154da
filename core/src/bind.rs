//! Binding TCP listeners: on every address (one dual-stack socket) or on chosen addresses (one
//! socket each, all on one port), on a stable port when it is free and on one the OS picks when
//! it is not — a stable port is what lets a firewall rule be written once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::error::Error;

/// Connections the OS queues before `accept` (`listen(2)` backlog).
const BACKLOG: i32 = 128;
/// How often an OS-chosen port is tried again when it is free on the first address but taken on
/// another.
const PORT_TRIES: usize = 8;

/// Listeners bound by [`listen`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Bound {
    /// One per address asked for (one in all for "every address").
    pub listeners: Vec<TcpListener>,
    /// The port they share.
    pub port: u16,
    /// Set when the wanted port was taken and the OS chose `port` instead.
    pub fallback: Option<Fallback>,
}

impl Bound {
    /// The address each listener is bound to, in order.
    pub fn local_addrs(&self) -> std::io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }
}

/// The wanted port was taken; another serves instead.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} port {wanted} is taken ({reason}; another localpair running?); using {chosen} \
     instead, which a firewall rule for {wanted} does not cover"
)]
#[non_exhaustive]
pub struct Fallback {
    /// The listener ("pairing", "confirmation", "link").
    pub what: &'static str,
    /// The port configured.
    pub wanted: u16,
    /// The port the OS chose.
    pub chosen: u16,
    /// Why the wanted port could not be bound.
    pub reason: std::io::Error,
}

/// Binds `what`'s listener on `addrs` (every address when empty or when it holds only an
/// unspecified address), on `port` when free, else on a port the OS picks (logged as a warning
/// and returned in [`Bound::fallback`]). `port` 0 asks the OS from the start. Must be called
/// inside a tokio runtime.
pub fn listen(what: &'static str, addrs: &[IpAddr], port: u16) -> Result<Bound, Error> {
    let every = addrs.is_empty() || addrs.iter().all(IpAddr::is_unspecified);
    let addrs: Vec<Option<IpAddr>> = if every {
        vec![None]
    } else {
        addrs.iter().copied().map(Some).collect()
    };
    let (sockets, fallback) = match bind_same_port(&addrs, port) {
        Ok(sockets) => (sockets, None),
        Err(reason) if port != 0 && reason.kind() == std::io::ErrorKind::AddrInUse => {
            let sockets = bind_same_port(&addrs, 0).map_err(|e| bind_error(what, 0, e))?;
            (sockets, Some(reason))
        }
        Err(reason) => return Err(bind_error(what, port, reason)),
    };
    let chosen = sockets
        .first()
        .and_then(|s| s.local_addr().ok())
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port());
    let fallback = fallback.map(|reason| Fallback {
        what,
        wanted: port,
        chosen,
        reason,
    });
    if let Some(fallback) = &fallback {
        tracing::warn!("{fallback}");
    }
    let listeners = sockets
        .into_iter()
        .map(|socket| TcpListener::from_std(socket.into()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::io(format!("register the {what} listener"), e))?;
    Ok(Bound {
        listeners,
        port: chosen,
        fallback,
    })
}

fn bind_error(what: &'static str, port: u16, source: std::io::Error) -> Error {
    Error::io(format!("bind the {what} listener on port {port}"), source)
}

/// One socket per address, all on `port`, or on one the OS picks for the first address and
/// that is then free on every other.
fn bind_same_port(addrs: &[Option<IpAddr>], port: u16) -> std::io::Result<Vec<Socket>> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut sockets = Vec::with_capacity(addrs.len());
        let mut chosen = port;
        let mut failed = None;
        for ip in addrs {
            match bind_one(*ip, chosen) {
                Ok(socket) => {
                    if chosen == 0 {
                        chosen = socket.local_addr()?.as_socket().map_or(0, |a| a.port());
                    }
                    sockets.push(socket);
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        match failed {
            None => return Ok(sockets),
            // Only an OS-chosen port that happens to be taken on a later address is retried.
            Some(error) if port != 0 || sockets.is_empty() || tries >= PORT_TRIES => {
                return Err(error);
            }
            Some(_) => {}
        }
    }
}

/// A listening, non-blocking socket on `ip` (every address, IPv4 and IPv6 on one socket, when
/// `None`) and `port`.
fn bind_one(ip: Option<IpAddr>, port: u16) -> std::io::Result<Socket> {
    match ip {
        None => open(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), true)
            .or_else(|_| open(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), false)),
        // A link-local address is bound with its interface as the scope.
        Some(IpAddr::V6(v6)) if v6.is_unicast_link_local() => {
            let scope = crate::interfaces::list_all()
                .ok()
                .and_then(|list| {
                    list.iter()
                        .find(|i| i.has_addr(IpAddr::V6(v6)))
                        .and_then(|i| i.index)
                })
                .unwrap_or(0);
            open(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)), false)
        }
        Some(ip) => open(SocketAddr::new(ip, port), false),
    }
}

fn open(addr: SocketAddr, dual_stack: bool) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        // IPV6_V6ONLY off: one socket takes IPv4 (as mapped addresses) and IPv6.
        socket.set_only_v6(false)?;
    }
    // SO_REUSEADDR on Unix: a restarted listener gets its port back while connections of the
    // previous run sit in TIME_WAIT. Not on Windows, where it would let another program bind
    // the same port and take our connections.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn a_free_port_is_used_and_a_taken_one_falls_back_saying_so() {
        let first = listen("test", &[LOOPBACK], 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.fallback.is_none());
        let wanted = first.port;
        let second = listen("test", &[LOOPBACK], wanted).unwrap_or_else(|e| panic!("{e}"));
        let fallback = second
            .fallback
            .as_ref()
            .unwrap_or_else(|| panic!("port {wanted} was taken"));
        assert_eq!(fallback.wanted, wanted);
        assert_ne!(second.port, wanted);
        let text = fallback.to_string();
        assert!(
            text.contains(&format!("test port {wanted} is taken")),
            "{text}"
        );
        assert!(text.contains("firewall rule"), "{text}");
        // Once the first is gone, the port is free again (TIME_WAIT or not).
        drop(first);
        let again = listen("test", &[LOOPBACK], wanted).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.port, wanted);
        assert!(again.fallback.is_none());
    }

    #[tokio::test]
    async fn several_addresses_share_one_port() {
        let addrs = [LOOPBACK, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))];
        let bound = listen("test", &addrs, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bound.listeners.len(), 2);
        for listener in &bound.listeners {
            let port = listener.local_addr().map_or(0, |a| a.port());
            assert_eq!(port, bound.port);
        }
    }
}
