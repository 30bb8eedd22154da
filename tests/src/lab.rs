//! The lab: a switch namespace with a bridge, hosts plugged into it, and teardown that always runs.

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use crate::netns::{self, NETNS_DIR};
use crate::process;
use crate::{Host, HostSpec, LabError};

/// Every namespace this crate creates starts with this; stale ones are recognised by it plus the pid after it.
const PREFIX: &str = "lp-";

/// Longest test-name tag put into namespace names: enough to recognise a test in `ip netns list`.
const TAG_MAX: usize = 12;

/// Host numbers go into the last octet of `10.77.0.<10 + index>`.
const MAX_HOSTS: u8 = 240;

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);
static STALE_CLEANUP: Once = Once::new();
static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();

/// A virtual LAN made of network namespaces: one "switch" namespace holding the bridge `br0`, and one namespace
/// per [`Host`], each joined to the bridge by a veth pair created directly inside the two namespaces. Nothing is
/// ever attached to the root namespace, so no packet of the lab can reach a real network.
///
/// Dropping the lab (also while unwinding from a panic) kills every process still inside its namespaces and
/// deletes them. Errors during teardown are printed to stderr, never panicked on; use [`teardown`](Self::teardown)
/// to see them as a `Result`.
///
/// Namespace names are `lp-<pid>-<counter>-<test tag>-sw` and `...-h<index>`: unique per lab and per process. A
/// lab whose process was killed by a signal cannot clean up after itself; the first `Lab::new` of a later process
/// deletes such namespaces (their pid is no longer running). There is deliberately no panic hook: `Drop` already
/// runs while a panicking test unwinds, and a process-wide hook would tear down the labs of other tests that are
/// still running on other threads.
///
/// The bridge has multicast snooping off, like a plain unmanaged switch or a home Wi-Fi AP, so multicast is
/// flooded to every port whether or not anybody sent an IGMP report.
#[derive(Debug)]
pub struct Lab {
    base: String,
    switch: String,
    namespaces: Mutex<Vec<String>>,
    /// Switch segments (bridges in the switch namespace) that exist: `br0` and those hosts asked for.
    segments: Mutex<Vec<String>>,
    next_host: AtomicU8,
    torn_down: bool,
    /// Each host's home and state directories live below this, removed with the lab: the hosts
    /// share one filesystem, and must not share one identity.
    files: std::path::PathBuf,
}

impl Lab {
    /// Creates the switch namespace with the bridge `br0` up; `test_name` goes (shortened) into namespace names.
    pub fn new(test_name: &str) -> Result<Self, LabError> {
        clean_stale_once();
        let base = lab_base(
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed),
            test_name,
        );
        let switch = format!("{base}-sw");
        let files = std::env::temp_dir().join(&base);
        // Registered before creation, so a failure half-way is still torn down by Drop.
        let lab = Self {
            base,
            switch: switch.clone(),
            namespaces: Mutex::new(vec![switch.clone()]),
            segments: Mutex::new(vec![crate::spec::DEFAULT_SEGMENT.to_owned()]),
            next_host: AtomicU8::new(1),
            torn_down: false,
            files,
        };
        process::run(Command::new("ip").args(["netns", "add", &switch]), None)?;
        process::ip_batch(
            Some(&switch),
            &[
                "link add br0 type bridge mcast_snooping 0".to_owned(),
                // No IPv6 link-local on the switch: it is layer 2 only and should add no packets of its own.
                "link set br0 addrgenmode none".to_owned(),
                "link set br0 up".to_owned(),
            ],
        )?;
        Ok(lab)
    }

    /// Whether labs can run here: euid 0, `ip` and `nft` installed, and a namespace with a bridge and an nft
    /// table can actually be created. Checked once per process; `Err` says what is missing.
    pub fn available() -> Result<(), String> {
        AVAILABLE.get_or_init(probe).clone()
    }

    /// For the top of a lab test: `Some(lab)`, or `None` after printing why the lab cannot run here.
    ///
    /// When the env var `CI` is set and non-empty it panics instead of skipping, because a test that silently skips
    /// itself in CI hides a broken CI machine. It also panics if the lab is available but creating it fails. See
    /// [`lab_or_skip!`](crate::lab_or_skip).
    pub fn new_or_skip(test_name: &str) -> Option<Self> {
        if let Err(why) = Self::available() {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("lab test `{test_name}` cannot run although CI is set: {why}");
            }
            // Straight to stderr, not through the test harness' capture: a skip must be visible.
            let _ = writeln!(std::io::stderr(), "SKIP {test_name}: {why}");
            return None;
        }
        match Self::new(test_name) {
            Ok(lab) => Some(lab),
            Err(e) => panic!("creating lab for `{test_name}`: {e}"),
        }
    }

    /// Adds a host wired as `spec` says (see [`HostSpec`] for the defaults).
    pub fn add_host(&self, spec: HostSpec) -> Result<Host, LabError> {
        let index = self.next_host.fetch_add(1, Ordering::Relaxed);
        if index == 0 || index > MAX_HOSTS {
            return Err(LabError::InvalidSpec(format!(
                "a lab holds at most {MAX_HOSTS} hosts"
            )));
        }
        let netns = format!("{}-h{index}", self.base);
        self.lock_namespaces().push(netns.clone());
        for segment in spec.segments() {
            self.ensure_segment(&segment)?;
        }
        let files = self.files.join(format!("h{index}"));
        Host::create(spec, index, netns, &self.switch, files)
    }

    /// Creates switch segment `name` (a bridge in the switch namespace, like `br0`) unless it exists.
    fn ensure_segment(&self, name: &str) -> Result<(), LabError> {
        crate::spec::check_ifname(name)?;
        let mut segments = self
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if segments.iter().any(|s| s == name) {
            return Ok(());
        }
        process::ip_batch(
            Some(&self.switch),
            &[
                format!("link add {name} type bridge mcast_snooping 0"),
                format!("link set {name} addrgenmode none"),
                format!("link set {name} up"),
            ],
        )?;
        segments.push(name.to_owned());
        Ok(())
    }

    /// Adds `n` hosts with the default spec.
    pub fn add_hosts(&self, n: usize) -> Result<Vec<Host>, LabError> {
        (0..n).map(|_| self.add_host(HostSpec::new())).collect()
    }

    /// The common prefix of this lab's namespace names, e.g. `lp-4242-0-two_hosts`.
    pub fn name(&self) -> &str {
        &self.base
    }

    /// The switch namespace (holding `br0` and the host ports `p<index>`).
    pub fn switch_netns(&self) -> &str {
        &self.switch
    }

    /// Every namespace this lab created (or is creating).
    pub fn namespaces(&self) -> Vec<String> {
        self.lock_namespaces().clone()
    }

    /// Runs a command in the switch namespace and returns its stdout, e.g. `["bridge", "-d", "link"]`.
    pub fn switch_exec<I, S>(&self, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.switch]).args(args);
        process::run(&mut cmd, None)
    }

    /// Tears the lab down now and reports errors instead of printing them.
    pub fn teardown(mut self) -> Result<(), LabError> {
        self.torn_down = true;
        let _ = fs::remove_dir_all(&self.files);
        delete_namespaces(&self.namespaces())
    }

    fn lock_namespaces(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let _ = fs::remove_dir_all(&self.files);
        if let Err(e) = delete_namespaces(&self.namespaces()) {
            let _ = writeln!(std::io::stderr(), "lab {}: teardown: {e}", self.base);
        }
    }
}

/// Kills whatever still runs in `names` and deletes them; namespaces that do not exist are fine.
fn delete_namespaces(names: &[String]) -> Result<(), LabError> {
    let existing: Vec<&String> = names
        .iter()
        .filter(|n| netns::netns_path(n).exists())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = existing.iter().filter_map(|n| netns::netns_id(n)).collect();
    let names: Vec<&str> = existing.iter().map(|n| n.as_str()).collect();
    for pid in netns::pids_in(&names, &ids) {
        process::signal(pid, libc::SIGKILL);
    }
    // -force: keep deleting the others if one fails; the error still reports it.
    let lines: Vec<String> = existing.iter().map(|n| format!("netns del {n}")).collect();
    let mut cmd = Command::new("ip");
    cmd.args(["-force", "-batch", "-"]);
    let result = process::run(&mut cmd, Some(&(lines.join("\n") + "\n")));
    let left: Vec<&&String> = existing
        .iter()
        .filter(|n| netns::netns_path(n).exists())
        .collect();
    match (result, left.is_empty()) {
        (_, false) => Err(LabError::io(
            format!("namespaces left behind: {left:?}"),
            std::io::Error::other("ip netns del did not remove them"),
        )),
        (Err(e), true) => Err(e),
        (Ok(_), true) => Ok(()),
    }
}

/// `lp-<pid>-<counter>[-<tag>]`: pid for stale detection, counter for uniqueness, tag for humans.
pub(crate) fn lab_base(pid: u32, counter: u32, test_name: &str) -> String {
    let tag = test_tag(test_name);
    if tag.is_empty() {
        format!("{PREFIX}{pid}-{counter}")
    } else {
        format!("{PREFIX}{pid}-{counter}-{tag}")
    }
}

fn test_tag(test_name: &str) -> String {
    let last = test_name.rsplit("::").next().unwrap_or(test_name);
    let tag: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(TAG_MAX)
        .collect();
    tag.trim_matches('_').to_owned()
}

/// The pid that created a namespace of this crate, or `None` for names this crate does not produce.
pub(crate) fn owner_pid(netns: &str) -> Option<u32> {
    let rest = netns.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let pid: u32 = pid.parse().ok()?;
    let role = rest.rsplit('-').next()?;
    let counter = rest.split('-').next()?;
    let ours = rest == "probe"
        || (counter.bytes().all(|b| b.is_ascii_digit())
            && !counter.is_empty()
            && rest.contains('-')
            && (role == "sw"
                || role
                    .strip_prefix('h')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))));
    ours.then_some(pid)
}

/// Deletes namespaces of processes that died without cleaning up (killed by a signal, `panic = "abort"`).
///
/// Runs once, before this process creates any namespace, so names with our own pid are stale as well: a dead
/// earlier process had the same pid.
fn clean_stale_once() {
    STALE_CLEANUP.call_once(|| {
        let Ok(entries) = fs::read_dir(NETNS_DIR) else {
            return;
        };
        let me = std::process::id();
        let stale: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| {
                owner_pid(name)
                    .is_some_and(|pid| pid == me || !Path::new(&format!("/proc/{pid}")).exists())
            })
            .collect();
        if let Err(e) = delete_namespaces(&stale) {
            let _ = writeln!(std::io::stderr(), "lab: removing stale namespaces: {e}");
        }
    });
}

fn probe() -> Result<(), String> {
    match process::effective_uid() {
        Ok(0) => {}
        Ok(uid) => {
            return Err(format!(
                "not root (euid {uid}): network namespaces need root"
            ));
        }
        Err(e) => return Err(format!("cannot tell the effective uid: {e}")),
    }
    for (tool, version, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        process::run(Command::new(tool).arg(version), None)
            .map_err(|e| format!("`{tool}` does not run (apt-get install {package}): {e}"))?;
    }
    clean_stale_once();
    let name = format!("{PREFIX}{}-probe", std::process::id());
    let names = [name.clone()];
    let result = (|| {
        process::run(Command::new("ip").args(["netns", "add", &name]), None)?;
        process::ip_batch(Some(&name), &["link add br0 type bridge".to_owned()])?;
        process::run(
            Command::new("ip").args(["netns", "exec", &name, "nft", "list", "tables"]),
            None,
        )
    })();
    let cleanup = delete_namespaces(&names);
    result.map_err(|e| format!("cannot build a namespace lab: {e}"))?;
    cleanup.map_err(|e| format!("cannot delete a probe namespace: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_recognisable() {
        let base = lab_base(4_194_304, 17, "lab_selftest::two_hosts_reach_each_other");
        assert_eq!(base, "lp-4194304-17-two_hosts_re");
        let sw = format!("{base}-sw");
        let h = format!("{base}-h12");
        assert_eq!(owner_pid(&sw), Some(4_194_304));
        assert_eq!(owner_pid(&h), Some(4_194_304));
        assert_ne!(lab_base(1, 1, "x"), lab_base(1, 2, "x"));
        assert_ne!(lab_base(1, 1, "x"), lab_base(2, 1, "x"));
        // Longest possible name stays far below any limit that matters (thread names, log lines).
        assert!(
            format!(
                "{}-h240",
                lab_base(u32::MAX, u32::MAX, "a".repeat(99).as_str())
            )
            .len()
                < 48
        );
    }

    #[test]
    fn tags_are_sanitised() {
        assert_eq!(lab_base(5, 0, "Weird Name/ü!"), "lp-5-0-weird_name");
        assert_eq!(lab_base(5, 0, ""), "lp-5-0");
        assert_eq!(lab_base(5, 0, "::"), "lp-5-0");
        assert_eq!(owner_pid("lp-5-0-sw"), Some(5));
        assert_eq!(owner_pid("lp-5-probe"), Some(5));
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "lp-foo",
            "lp-12",
            "lp-12-x-sw",
            "lp-12-3-other",
            "lpx-12-3-sw",
            "docker",
            "lp-12-3-h",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
    }
}
