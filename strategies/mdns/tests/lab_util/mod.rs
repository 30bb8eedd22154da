//! Helpers of the lab tests: a discoverer session running inside a lab host, python-zeroconf
//! publishers, pcap counting and the measurements' report line.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use localpair_core::config::{Settings, Source};
use localpair_core::{
    Advert, Confirmer, Context, FailureKind, Fingerprint, Identity, Peer, PeerDiscoverer, PeerSink,
};
use localpair_lab::stats::Summary;
use localpair_lab::{ChildGuard, Host, NsThread};
use localpair_mdns::{Config, Mdns};
use tokio_util::sync::CancellationToken;

/// How long a stopped node may take before the test gives up on it.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// A log buffer shared with a node's tracing subscriber.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a node's session ended badly.
#[derive(Debug)]
pub(crate) struct NodeError {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

pub(crate) struct Stopped {
    pub(crate) result: Result<(), NodeError>,
    pub(crate) took: Duration,
}

/// One discovery session of our discoverer, on its own thread (and tokio runtime) inside a host.
pub(crate) struct Node {
    pub(crate) fingerprint: Fingerprint,
    /// The confirmation listener's port: the SRV port peers see.
    pub(crate) port: u16,
    ctx: Option<Context>,
    stop: CancellationToken,
    go: Option<mpsc::Sender<()>>,
    peers: mpsc::Receiver<(Peer, Duration)>,
    seen: RefCell<Vec<(Peer, Duration)>>,
    thread: Option<NsThread<Result<(), NodeError>>>,
    logs: Logs,
}

impl Node {
    /// Prepares and starts a session at once.
    pub(crate) fn start(host: &Host, name: &str, config: Config, toml: &str) -> Self {
        let mut node = Self::prepare(host, name, config, toml);
        node.go();
        node
    }

    /// Sets up identity, listener and runtime in `host`, then waits for [`go`](Self::go) before
    /// calling `discover`, so that two nodes can start their sessions at the same moment.
    pub(crate) fn prepare(host: &Host, name: &str, config: Config, toml: &str) -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (peer_tx, peer_rx) = mpsc::channel();
        let stop = CancellationToken::new();
        let logs = Logs::default();
        let thread = {
            let (stop, logs, name, toml) =
                (stop.clone(), logs.clone(), name.to_owned(), toml.to_owned());
            host.spawn(move || -> Result<(), NodeError> {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(move || logs.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::DEBUG)
                    .finish();
                let _log = tracing::subscriber::set_default(subscriber);
                localpair_lab::runtime().block_on(async move {
                    let settings = Settings::load(Source::Toml(toml)).unwrap();
                    let identity = Arc::new(Identity::ephemeral(name).unwrap());
                    let confirmer =
                        Confirmer::start(Arc::clone(&identity), Default::default()).unwrap();
                    let port = confirmer.port();
                    let ctx = Context::new(settings, identity, Some(confirmer)).unwrap();
                    ready_tx.send((ctx.clone(), port)).unwrap();
                    if go_rx.recv().is_err() {
                        return Ok(());
                    }
                    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                    let sink = PeerSink::standalone(tx, stop);
                    let started = Instant::now();
                    let forward = async {
                        while let Some((_, peer)) = rx.recv().await {
                            let _ = peer_tx.send((peer, started.elapsed()));
                        }
                    };
                    let mdns = Mdns::new(config);
                    let (result, ()) = tokio::join!(mdns.discover(&ctx, sink), forward);
                    result.map_err(|e| NodeError {
                        kind: e.kind(),
                        message: e.to_string(),
                    })
                })
            })
            .unwrap()
        };
        let (ctx, port) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("node did not start");
        Self {
            fingerprint: ctx.identity().fingerprint(),
            port,
            ctx: Some(ctx),
            stop,
            go: Some(go_tx),
            peers: peer_rx,
            seen: RefCell::new(Vec::new()),
            thread: Some(thread),
            logs: Logs(logs.0),
        }
    }

    /// Starts the session (see [`prepare`](Self::prepare)).
    pub(crate) fn go(&mut self) {
        if let Some(go) = self.go.take() {
            go.send(()).unwrap();
        }
    }

    /// Changes what the node announces, as a pairing host does.
    pub(crate) fn set_advert(&self, advert: Advert) {
        self.ctx.as_ref().unwrap().set_advert(advert);
    }

    fn drain(&self, wait: Duration) -> bool {
        match self.peers.recv_timeout(wait) {
            Ok(sighting) => {
                self.seen.borrow_mut().push(sighting);
                true
            }
            Err(_) => false,
        }
    }

    /// The first sighting matching `pred` (already received or arriving within `timeout`).
    pub(crate) fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&Peer) -> bool,
    ) -> Option<Peer> {
        self.wait_until_timed(timeout, pred).map(|(p, _)| p)
    }

    fn wait_until_timed(
        &self,
        timeout: Duration,
        pred: impl Fn(&Peer) -> bool,
    ) -> Option<(Peer, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.drain(Duration::ZERO) {}
            if let Some(hit) = self.seen.borrow().iter().find(|(p, _)| pred(p)) {
                return Some(hit.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.drain(left.min(Duration::from_millis(50)));
        }
    }

    /// The first sighting of the device with this key, and when (since `discover` was called).
    pub(crate) fn wait_for(
        &self,
        fingerprint: Fingerprint,
        timeout: Duration,
    ) -> Option<(Peer, Duration)> {
        self.wait_until_timed(timeout, |p| p.fingerprint == fingerprint)
    }

    /// Every device sighted so far, once each.
    pub(crate) fn seen(&self) -> Vec<Fingerprint> {
        while self.drain(Duration::ZERO) {}
        let mut out: Vec<Fingerprint> = Vec::new();
        for (p, _) in self.seen.borrow().iter() {
            if !out.contains(&p.fingerprint) {
                out.push(p.fingerprint);
            }
        }
        out
    }

    pub(crate) fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.0.lock().unwrap()).into_owned()
    }

    /// Stops the session and returns how `discover` ended.
    pub(crate) fn stop(self) -> Result<(), NodeError> {
        self.stop_timed().result
    }

    /// Stops the session; also measures how long `discover` took to return.
    pub(crate) fn stop_timed(mut self) -> Stopped {
        let started = Instant::now();
        self.stop.cancel();
        let thread = self.thread.take().unwrap();
        while !thread.is_finished() {
            assert!(
                started.elapsed() < STOP_LIMIT,
                "node did not stop within {STOP_LIMIT:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = started.elapsed();
        Stopped {
            result: thread.join(),
            took,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
        drop(self.go.take());
        if let Some(thread) = self.thread.take() {
            let started = Instant::now();
            while !thread.is_finished() && started.elapsed() < STOP_LIMIT {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.try_join();
            }
        }
    }
}

/// A fresh fingerprint for a service a test publishes.
pub(crate) fn random_fingerprint() -> Fingerprint {
    Identity::ephemeral("x").unwrap().fingerprint()
}

/// A service for python-zeroconf to publish. TXT values: a string, `null` (a key without `=`),
/// or `{"hex": "..."}` for raw bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) server: String,
    pub(crate) addrs: Vec<String>,
    pub(crate) port: u16,
    pub(crate) txt: Vec<(String, serde_json::Value)>,
}

impl Service {
    /// A service with a valid version-1 record.
    pub(crate) fn valid(name: &str, fp: Fingerprint, addr: &str, port: u16) -> Self {
        Self {
            name: name.to_owned(),
            server: format!("py-{}.local.", fp.short()),
            addrs: vec![addr.to_owned()],
            port,
            txt: vec![
                ("v".into(), "1".into()),
                ("id".into(), fp.device_id().to_string().into()),
                ("fp".into(), fp.to_string().into()),
                ("name".into(), name.into()),
            ],
        }
    }

    /// One service per way a record can be wrong.
    pub(crate) fn malformed(addr: &str) -> Vec<Self> {
        let fp = random_fingerprint();
        let base = |label: &str| {
            let mut s = Self::valid(label, fp, addr, 4100);
            s.server = "py-bad.local.".to_owned();
            s
        };
        let set = |s: &mut Self, key: &str, value: serde_json::Value| match s
            .txt
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some(slot) => slot.1 = value,
            None => s.txt.push((key.to_owned(), value)),
        };
        let mut id_mismatch = base("bad id");
        set(&mut id_mismatch, "id", "0000000000000000".into());
        let mut not_hex = base("bad fp");
        set(&mut not_hex, "fp", "zz".repeat(32).into());
        let mut version = base("bad version");
        set(&mut version, "v", "2".into());
        let mut binary_name = base("bad name");
        set(
            &mut binary_name,
            "name",
            serde_json::json!({"hex": "fffe41"}),
        );
        let mut no_fp = base("no fp");
        no_fp.txt.retain(|(k, _)| k != "fp");
        let mut port = base("bad pp");
        set(&mut port, "pp", "99999".into());
        let mut bare = base("bare fp");
        set(&mut bare, "fp", serde_json::Value::Null);
        vec![
            id_mismatch,
            not_hex,
            version,
            binary_name,
            no_fp,
            port,
            bare,
        ]
    }
}

/// Registers the services given as JSON, prints "registered", and keeps them for the time given.
const PUBLISH: &str = r#"
import json, socket, sys, time
from zeroconf import IPVersion, ServiceInfo, Zeroconf
T = "_localpair._tcp.local."
def value(v):
    if isinstance(v, dict):
        return bytes.fromhex(v["hex"])
    return v
zc = Zeroconf(ip_version=IPVersion.V4Only)
infos = []
for s in json.loads(sys.argv[1]):
    props = {k: value(v) for k, v in s["txt"]}
    info = ServiceInfo(T, s["name"] + "." + T, port=s["port"], properties=props,
                       server=s["server"], addresses=[socket.inet_aton(a) for a in s["addrs"]])
    zc.register_service(info)
    infos.append(info)
print("registered", flush=True)
time.sleep(float(sys.argv[2]))
for info in infos:
    zc.unregister_service(info)
zc.close()
"#;

/// python-zeroconf publishing services in a host; killed on drop.
pub(crate) struct Publisher {
    _child: ChildGuard,
}

impl Publisher {
    pub(crate) fn start(host: &Host, services: &[Service]) -> Self {
        let mut cmd = host.command("/usr/bin/python3");
        cmd.args(["-c", PUBLISH])
            .arg(serde_json::to_string(services).unwrap())
            .arg("120")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut cmd).unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("python-zeroconf did not register in time");
        assert_eq!(
            line.trim(),
            "registered",
            "python-zeroconf publisher failed"
        );
        Self { _child: child }
    }
}

/// UDP sockets bound to port 5353 inside `host` (`ss -uan`).
pub(crate) fn mdns_sockets(host: &Host) -> usize {
    host.exec(["ss", "-uanH"])
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(3)
                .is_some_and(|local| local.ends_with(":5353"))
        })
        .count()
}

/// Whether every mDNS socket in `host` is gone within `within`: the daemon thread closes them
/// just after it confirms the shutdown.
pub(crate) fn mdns_sockets_closed(host: &Host, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if mdns_sockets(host) == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// UDP datagrams to port 5353 in a pcap of an Ethernet interface.
pub(crate) fn mdns_packets(pcap: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 24; // global header
    while let Some(header) = pcap.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        let dport = match frame.get(12..14) {
            Some([0x08, 0x00]) => frame.get(14).and_then(|vihl| {
                let ihl = usize::from(vihl & 0x0f) * 4;
                (frame.get(23) == Some(&17))
                    .then(|| frame.get(14 + ihl + 2..14 + ihl + 4))
                    .flatten()
            }),
            Some([0x86, 0xdd]) => (frame.get(20) == Some(&17))
                .then(|| frame.get(14 + 40 + 2..14 + 40 + 4))
                .flatten(),
            _ => None,
        };
        if dport == Some(&[0x14, 0xe9][..]) {
            count += 1;
        }
    }
    count
}

/// Prints the median and 95th percentile (nearest rank) of `samples`.
pub(crate) fn report(label: &str, samples: &[Duration]) {
    eprintln!("MEASURE {label}: {:.0}", Summary::of_durations(samples));
}
