//! python-zeroconf (Debian's python3-zeroconf) as a reference mDNS browser inside a lab host.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use crate::error::LabError;
use crate::host::Host;
use crate::process::ChildGuard;

/// Whether `/usr/bin/python3` can import zeroconf.
pub fn available() -> bool {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import zeroconf"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// For the top of a test that needs python-zeroconf: whether it is there; when it is not, says so and returns
/// `false`, except when the env var `CI` is set and non-empty, where it panics (like [`lab_or_skip!`](crate::lab_or_skip)).
pub fn or_skip(test: &str) -> bool {
    let ok = available();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "{test}: python3-zeroconf is missing although CI is set (apt-get install python3-zeroconf)"
        );
        // Straight to stderr, not through the test harness' capture: a skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: /usr/bin/python3 cannot import zeroconf (apt-get install python3-zeroconf)"
        );
    }
    ok
}

/// `argv[1]` times: a fresh `Zeroconf` browses `_localpair._tcp.local.` until an instance resolves with a TXT record,
/// for at most `argv[2]` seconds; prints a JSON list with, per run, that instance (and the seconds it took) or null.
/// Runs are 1.5 s apart: mDNS responders answer a name at most once a second.
const BROWSE: &str = r#"
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
T = "_localpair._tcp.local."
runs = []
for run in range(int(sys.argv[1])):
    if run:
        time.sleep(1.5)
    t0 = time.monotonic()
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    found = []
    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            found.append(name)
    browser = ServiceBrowser(zc, T, handlers=[on_change])
    out = None
    while out is None and time.monotonic() < t0 + float(sys.argv[2]):
        for name in list(found):
            info = zc.get_service_info(T, name, timeout=3000)
            if info is not None and info.properties:
                txt = {k.decode(): (None if v is None else v.decode("utf-8", "replace"))
                       for k, v in info.properties.items()}
                out = {"secs": time.monotonic() - t0, "name": name, "port": info.port,
                       "server": info.server, "addresses": info.parsed_addresses(), "txt": txt}
                break
        if out is None:
            time.sleep(0.002)
    browser.cancel()
    zc.close()
    runs.append(out)
print(json.dumps(runs))
"#;

/// Runs [`BROWSE`] in `host`; one entry per run, `None` for a run that resolved nothing within `within`.
fn browse_runs(
    host: &Host,
    runs: usize,
    within: Duration,
) -> Result<Vec<Option<serde_json::Value>>, LabError> {
    let mut cmd = host.command("/usr/bin/python3");
    cmd.args([
        "-c",
        BROWSE,
        &runs.to_string(),
        &within.as_secs_f64().to_string(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Past the runs themselves: python's start-up, and a last get_service_info that began just before the limit.
    let limit = (within + Duration::from_secs(5)) * runs as u32 + Duration::from_secs(30);
    let out = ChildGuard::spawn(&mut cmd)?.wait_with_output_timeout(limit)?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        LabError::Timeout(format!(
            "python-zeroconf printed no results ({e}; {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

/// What python-zeroconf, browsing in `host`, sees of the first `_localpair._tcp` instance that resolves within
/// `within`: `{"name", "port", "server", "addresses", "txt": {key: value or null}, "secs"}` (`secs`: browse start to
/// resolved).
pub fn browse(host: &Host, within: Duration) -> Result<serde_json::Value, LabError> {
    browse_runs(host, 1, within)?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| {
            LabError::Timeout(format!(
                "python-zeroconf resolved no _localpair._tcp instance within {within:?}"
            ))
        })
}

/// Browse→resolved times, `runs` times, in `host`; `None` for a run that resolved nothing in 10 s.
pub fn browse_times(host: &Host, runs: usize) -> Result<Vec<Option<Duration>>, LabError> {
    Ok(browse_runs(host, runs, Duration::from_secs(10))?
        .into_iter()
        .map(|run| {
            run.and_then(|record| record["secs"].as_f64())
                .map(Duration::from_secs_f64)
        })
        .collect())
}
