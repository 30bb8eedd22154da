//! avahi (Debian's avahi-daemon and avahi-utils) as a reference mDNS responder and browser inside a lab host.
//!
//! Each [`Avahi`] is a private pair of processes in the host's network namespace: a `dbus-daemon` with its own
//! configuration and socket under the host's files (never the system bus), and an `avahi-daemon` with its own
//! configuration file, restricted to the host's interface, IPv4 only. avahi-daemon has its pid file and its
//! static-service directory compiled in (`/run/avahi-daemon/`, `/etc/avahi/services/`), so it runs in a mount
//! namespace of its own where a tmpfs covers `/run` and the host's service directory is bound over
//! `/etc/avahi/services`: the system's avahi (running or not) and its files are never touched, and two hosts can
//! each run one.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::LabError;
use crate::host::Host;
use crate::process::ChildGuard;

const AVAHI_DAEMON: &str = "/usr/sbin/avahi-daemon";
const AVAHI_BROWSE: &str = "/usr/bin/avahi-browse";
const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";

/// How long the private bus may take to listen, and avahi-daemon to start and establish its static services
/// (probing alone takes about 750 ms).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether avahi-daemon, avahi-browse and dbus-daemon are installed.
pub fn available() -> bool {
    [AVAHI_DAEMON, AVAHI_BROWSE, DBUS_DAEMON]
        .iter()
        .all(|p| Path::new(p).is_file())
}

/// For the top of a test that needs avahi: whether it is there; when it is not, says so and returns `false`, except
/// when the env var `CI` is set and non-empty, where it panics (like [`lab_or_skip!`](crate::lab_or_skip)).
pub fn or_skip(test: &str) -> bool {
    let ok = available();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "{test}: avahi is missing although CI is set (apt-get install avahi-daemon avahi-utils dbus)"
        );
        // Straight to stderr, not through the test harness' capture: a skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: avahi-daemon, avahi-browse or dbus-daemon is missing (apt-get install avahi-daemon \
             avahi-utils dbus)"
        );
    }
    ok
}

/// A static service for avahi to publish (one `<service>` of an avahi `.service` file), on avahi's own host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticService {
    /// Instance name, e.g. `phone`.
    pub name: String,
    /// Service type without the domain, e.g. `_localpair._tcp`.
    pub service_type: String,
    /// SRV port.
    pub port: u16,
    /// TXT strings, each `key=value` (or a bare `key`).
    pub txt: Vec<String>,
}

impl StaticService {
    /// The `.service` file's XML.
    fn xml(&self) -> String {
        let mut txt = String::new();
        for entry in &self.txt {
            txt.push_str(&format!(
                "    <txt-record>{}</txt-record>\n",
                xml_escape(entry)
            ));
        }
        format!(
            "<?xml version=\"1.0\" standalone='no'?>\n<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n\
             <service-group>\n  <name>{}</name>\n  <service protocol=\"ipv4\">\n    <type>{}</type>\n    \
             <port>{}</port>\n{txt}  </service>\n</service-group>\n",
            xml_escape(&self.name),
            xml_escape(&self.service_type),
            self.port,
        )
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A resolved service as `avahi-browse -r -p` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browsed {
    /// Interface it was seen on.
    pub interface: String,
    /// `IPv4` or `IPv6`.
    pub protocol: String,
    /// Instance name (unescaped).
    pub name: String,
    /// Service type, e.g. `_localpair._tcp`.
    pub service_type: String,
    /// Target host name of the SRV record, e.g. `lp-3f2a9c0d11b2e4f5.local`.
    pub host_name: String,
    /// The address avahi resolved the host name to.
    pub address: String,
    /// SRV port.
    pub port: u16,
    /// TXT strings, unquoted, in avahi's order.
    pub txt: Vec<String>,
}

impl Browsed {
    /// The value of TXT key `key` (the first `key=value` entry), if any.
    pub fn txt_value(&self, key: &str) -> Option<&str> {
        self.txt
            .iter()
            .find_map(|entry| entry.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A private avahi-daemon (and the D-Bus bus its clients talk to) in a lab host; stopped on drop.
#[derive(Debug)]
pub struct Avahi {
    // Declared first: dropped (killed) before the bus it is connected to.
    daemon: ChildGuard,
    _bus: ChildGuard,
    bus_address: String,
    netns: String,
    log: Arc<Mutex<String>>,
}

impl Avahi {
    /// Starts avahi in `host`, publishing `services` under the host name `avahi-<host name>`; returns once avahi
    /// reports every service established (or, with none, once it has started).
    pub fn start(host: &Host, services: &[StaticService]) -> Result<Self, LabError> {
        let dir = host.files().join("avahi");
        let services_dir = dir.join("services");
        // A fresh start: an earlier Avahi of this host may have left files behind.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&services_dir)
            .map_err(|e| LabError::io(format!("creating {}", services_dir.display()), e))?;
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text)
                .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
        };
        for (i, service) in services.iter().enumerate() {
            write(services_dir.join(format!("lab{i}.service")), service.xml())?;
        }
        let socket = dir.join("bus");
        write(dir.join("bus.conf"), bus_config(&socket))?;
        write(dir.join("avahi-daemon.conf"), daemon_config(host))?;
        let bus_address = format!("unix:path={}", socket.display());

        let mut bus_cmd = host.command(DBUS_DAEMON);
        bus_cmd
            .arg(format!("--config-file={}", dir.join("bus.conf").display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut bus = ChildGuard::spawn(&mut bus_cmd)?;
        let deadline = Instant::now() + START_TIMEOUT;
        while !socket.exists() {
            if let Some(status) = bus
                .try_wait()
                .map_err(|e| LabError::io("waiting for dbus-daemon", e))?
            {
                return Err(LabError::Timeout(format!(
                    "the private dbus-daemon exited ({status}) before listening"
                )));
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout(format!(
                    "the private dbus-daemon did not listen within {START_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }

        // A mount namespace of its own with private propagation (`unshare --mount`; `ip netns exec` makes one too,
        // but this does not rely on it): the tmpfs and the bind mount are visible to this avahi-daemon only. Both
        // `unshare` and `sh` exec in place, so the guarded pid is avahi-daemon's.
        let script = r#"set -e
mount -t tmpfs -o mode=0755 lab-avahi /run
mkdir -p /run/avahi-daemon
mount --bind "$1" /etc/avahi/services
exec /usr/sbin/avahi-daemon --file "$2" --no-drop-root --no-chroot --no-rlimits --no-proc-title --debug"#;
        let mut daemon_cmd = host.command("unshare");
        daemon_cmd
            .args([
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                script,
                "lab-avahi",
            ])
            .arg(&services_dir)
            .arg(dir.join("avahi-daemon.conf"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut daemon = ChildGuard::spawn(&mut daemon_cmd)?;
        let Some(stderr) = daemon.stderr.take() else {
            return Err(LabError::io(
                "starting avahi-daemon",
                std::io::Error::other("stderr was not piped"),
            ));
        };
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let wanted = services.len();
        let sink = Arc::clone(&log);
        // Drains stderr for as long as avahi runs (a full pipe would block it) and says when it is ready.
        thread::spawn(move || {
            let mut established = 0;
            let mut started = false;
            let mut told = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                started |= line.contains("Server startup complete");
                if line.contains("successfully established") {
                    established += 1;
                }
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
                if started && established >= wanted && !told {
                    told = true;
                    let _ = ready_tx.try_send(());
                }
            }
        });
        let avahi = Self {
            daemon,
            _bus: bus,
            bus_address,
            netns: host.netns().to_owned(),
            log,
        };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            return Err(LabError::Timeout(format!(
                "avahi-daemon did not establish its {wanted} service(s) within {START_TIMEOUT:?}:\n{}",
                avahi.log()
            )));
        }
        Ok(avahi)
    }

    /// What avahi-daemon has logged so far (`--debug`).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Browses `service_type` (e.g. `_localpair._tcp`) with `avahi-browse -r -p` through this avahi until `found`
    /// accepts a resolved service, for at most `within`; the services resolved until then, or an error with what
    /// avahi-browse printed.
    pub fn browse_until(
        &self,
        service_type: &str,
        within: Duration,
        found: impl Fn(&Browsed) -> bool,
    ) -> Result<Browsed, LabError> {
        let mut cmd = std::process::Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.netns,
            AVAHI_BROWSE,
            "--resolve",
            "--parsable",
            "--no-db-lookup",
        ])
        .arg(service_type)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut cmd)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(LabError::io(
                "starting avahi-browse",
                std::io::Error::other("output was not piped"),
            ));
        };
        let (line_tx, line_rx) = mpsc::sync_channel(256);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = Instant::now() + within;
        let mut printed = String::new();
        let outcome = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                    if let Some(browsed) = parse_resolved(&line)
                        && found(&browsed)
                    {
                        break Ok(browsed);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Err("nothing matching within the time");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break Err("avahi-browse exited"),
            }
        };
        drop(child);
        let stderr = errors.join().unwrap_or_default();
        outcome.map_err(|why| {
            LabError::Timeout(format!(
                "avahi-browse {service_type}: {why} ({within:?}); it printed:\n{printed}--- stderr\n{stderr}--- \
                 avahi-daemon\n{}",
                self.log()
            ))
        })
    }
}

impl Drop for Avahi {
    fn drop(&mut self) {
        // SIGTERM first, so that avahi says goodbye for its services and leaves no stale records in other hosts'
        // caches; the guard kills whatever is left.
        self.daemon.terminate();
        let _ = self.daemon.wait_timeout(Duration::from_secs(2));
    }
}

/// A bus that only this host's avahi-daemon and its clients use; anyone may own names and call anything on it
/// (it is reachable through its socket file only).
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
        xml_escape(&socket.display().to_string())
    )
}

/// avahi-daemon on the host's interface only, IPv4, publishing its address records and nothing else of its own.
fn daemon_config(host: &Host) -> String {
    format!(
        "[server]\nhost-name=avahi-{name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces={iface}\n\
         enable-dbus=yes\nratelimit-interval-usec=1000000\nratelimit-burst=1000\n\n[wide-area]\n\
         enable-wide-area=no\n\n[publish]\npublish-addresses=yes\npublish-hinfo=no\npublish-workstation=no\n\
         publish-domain=no\n\n[reflector]\nenable-reflector=no\n",
        name = host.name(),
        iface = host.iface(),
    )
}

/// A `=` line of `avahi-browse --parsable --resolve`:
/// `=;eth0;IPv4;name;_type._tcp;local;host.local;10.0.0.2;4242;"k=v" "k2=v2"`.
fn parse_resolved(line: &str) -> Option<Browsed> {
    let mut fields = line.splitn(10, ';');
    if fields.next()? != "=" {
        return None;
    }
    let interface = fields.next()?.to_owned();
    let protocol = fields.next()?.to_owned();
    let name = unescape(fields.next()?);
    let service_type = fields.next()?.to_owned();
    let _domain = fields.next()?;
    let host_name = fields.next()?.to_owned();
    let address = fields.next()?.to_owned();
    let port = fields.next()?.parse().ok()?;
    let txt = txt_strings(fields.next().unwrap_or(""));
    Some(Browsed {
        interface,
        protocol,
        name,
        service_type,
        host_name,
        address,
        port,
        txt,
    })
}

/// avahi's label escapes: `\DDD` (decimal byte) and `\X` for a literal X.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let digits = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(u8::is_ascii_digit));
            if let Some(value) =
                digits.and_then(|d| std::str::from_utf8(d).ok()?.parse::<u8>().ok())
            {
                out.push(value);
                i += 4;
            } else {
                out.push(bytes[i + 1]);
                i += 2;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TXT field of a resolved line: each string in double quotes, separated by spaces.
fn txt_strings(field: &str) -> Vec<String> {
    field
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_lines_are_read() {
        let line = r#"=;eth0;IPv4;Kitchen\032laptop\032abcd;_localpair._tcp;local;lp-abcd.local;10.0.0.2;19538;"name=Kitchen laptop" "id=abcd" "v=1""#;
        let b = parse_resolved(line).unwrap();
        assert_eq!(b.name, "Kitchen laptop abcd");
        assert_eq!(b.host_name, "lp-abcd.local");
        assert_eq!(b.address, "10.0.0.2");
        assert_eq!(b.port, 19538);
        assert_eq!(b.txt, ["name=Kitchen laptop", "id=abcd", "v=1"]);
        assert_eq!(b.txt_value("id"), Some("abcd"));
        assert_eq!(b.txt_value("i"), None);
        assert!(parse_resolved("+;eth0;IPv4;x;_localpair._tcp;local").is_none());
    }

    #[test]
    fn service_files_escape_text() {
        let s = StaticService {
            name: "a<b>&c".into(),
            service_type: "_localpair._tcp".into(),
            port: 1,
            txt: vec!["name=\"q\"".into()],
        };
        let xml = s.xml();
        assert!(xml.contains("<name>a&lt;b&gt;&amp;c</name>"), "{xml}");
        assert!(
            xml.contains("<txt-record>name=&quot;q&quot;</txt-record>"),
            "{xml}"
        );
    }
}
