//! A connection flood from an attacker host: idle TCP connections held open, and new ones opened
//! at a steady rate, from one or many source addresses. For tests that prove a genuine peer still
//! gets through.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Host, LabError, NsThread};

/// What to flood with.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Where to connect.
    pub target: SocketAddr,
    /// Source addresses to connect from (added to the attacker's LAN interface).
    pub sources: Vec<Ipv4Addr>,
    /// Idle connections to open first and hold.
    pub hold: usize,
    /// New connections per second after that (each held until the target closes it).
    pub rate: u32,
}

/// What a flood did.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    /// Connections the target accepted (TCP handshake done).
    pub opened: u64,
    /// Connection attempts that failed at once.
    pub refused: u64,
    /// Held connections the target closed.
    pub closed_by_target: u64,
}

/// A flood running on a host until [`stop`](Running::stop).
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: NsThread<FloodReport>,
}

impl Running {
    /// Stops it and says what it did.
    pub fn stop(self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join()
    }
}

/// Adds `count` addresses `10.77.0.<first>..` to `host`'s LAN interface, for floods from many
/// sources; returns them.
pub fn add_sources(host: &Host, first: u8, count: u8) -> Result<Vec<Ipv4Addr>, LabError> {
    let mut added = Vec::new();
    for n in 0..count {
        let ip = Ipv4Addr::new(10, 77, 0, first.saturating_add(n));
        host.exec([
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            host.iface(),
        ])?;
        added.push(ip);
    }
    Ok(added)
}

/// Starts `flood` from `attacker`.
pub fn start(attacker: &Host, flood: Flood) -> Result<Running, LabError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = attacker
        .spawn(move || crate::runtime().block_on(async move { run(flood, stopping).await }))?;
    Ok(Running { stop, thread })
}

async fn connect_from(
    source: Ipv4Addr,
    target: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn run(flood: Flood, stop: Arc<AtomicBool>) -> FloodReport {
    let opened = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut open_one = |tasks: &mut tokio::task::JoinSet<()>| {
        let source = flood.sources[next % flood.sources.len().max(1)];
        next += 1;
        let (opened, refused, closed) = (
            Arc::clone(&opened),
            Arc::clone(&refused),
            Arc::clone(&closed),
        );
        let stop = Arc::clone(&stop);
        let target = flood.target;
        tasks.spawn(async move {
            match connect_from(source, target).await {
                Ok(mut stream) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Hold it, sending nothing, until the target closes it or the flood ends.
                    let mut buf = [0u8; 64];
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
                            Duration::from_millis(200),
                            tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
                        )
                        .await
                        {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                Err(_) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    };
    for _ in 0..flood.hold {
        open_one(&mut tasks);
    }
    let period = Duration::from_secs(1) / flood.rate.max(1);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(600) {
        tick.tick().await;
        if flood.rate > 0 {
            open_one(&mut tasks);
        }
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
    FloodReport {
        opened: opened.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        closed_by_target: closed.load(Ordering::Relaxed),
    }
}
