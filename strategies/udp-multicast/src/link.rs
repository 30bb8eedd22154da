//! One link of the engine (an interface and an address family), and the fair poll over all of
//! them.

use std::io;
use std::net::SocketAddr;
use std::task::Poll;

use tokio::io::ReadBuf;

use crate::peers::LinkKey;
use crate::schedule::{AnswerLimiter, Schedule};
use crate::socket::{LinkSocket, LinkSpec};
use crate::summary::LinkStats;

/// One interface and address family the engine announces on: its socket, schedule and counters.
pub(crate) struct Link {
    pub(crate) spec: LinkSpec,
    pub(crate) key: LinkKey,
    pub(crate) label: String,
    pub(crate) socket: LinkSocket,
    pub(crate) dest: SocketAddr,
    pub(crate) schedule: Schedule,
    pub(crate) answers: AnswerLimiter,
    pub(crate) stats: LinkStats,
    /// A receive error: not polled until housekeeping reopens it.
    pub(crate) broken: bool,
}

/// Polls every open socket once, starting after the last one that delivered, so a flood on one
/// interface cannot starve the others.
pub(crate) fn poll_links(
    links: &mut [Link],
    buf: &mut [u8],
    rotor: &mut usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<(usize, io::Result<(SocketAddr, usize)>)> {
    let n = links.len();
    for k in 0..n {
        let index = (*rotor + k) % n;
        let link = &links[index];
        if link.broken {
            continue;
        }
        let mut read = ReadBuf::new(buf);
        if let Poll::Ready(result) = link.socket.recv.poll_recv_from(cx, &mut read) {
            *rotor = (index + 1) % n;
            let len = read.filled().len();
            return Poll::Ready((index, result.map(|src| (src, len))));
        }
    }
    Poll::Pending
}
