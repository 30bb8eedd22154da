//! Helpers of the mDNS lab tests: our discoverer in a lab host, python-zeroconf publishers, pcap
//! counting and the measurements' report line.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use localpair_core::{Fingerprint, Identity};
use localpair_lab::discovery::Node;
use localpair_lab::{ChildGuard, Host};
use localpair_mdns::{Config, Mdns};

/// Our mDNS discoverer with `config`, in a session of a device called `name` in `host`, with
/// settings from `toml`.
pub(crate) fn mdns_node(host: &Host, name: &str, config: Config, toml: &str) -> Node {
    Node::start(host, name, toml, Mdns::new(config)).unwrap()
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
