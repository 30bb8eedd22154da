//! python-zeroconf (Debian's python3-zeroconf) as a reference mDNS browser inside a lab host.

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

/// Each run starts a fresh `Zeroconf`, browses `_localpair._tcp.local.` and times until the first
/// instance resolves (1.5 s apart: mDNS responders answer a name at most once a second).
const BROWSE_TIMES: &str = r#"
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
T = "_localpair._tcp.local."
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.monotonic()
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    found = []
    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            found.append(name)
    browser = ServiceBrowser(zc, T, handlers=[on_change])
    got = None
    while got is None and time.monotonic() < t0 + 10:
        for name in list(found):
            if zc.get_service_info(T, name, timeout=3000) is not None:
                got = time.monotonic() - t0
                break
        if got is None:
            time.sleep(0.002)
    browser.cancel()
    zc.close()
    times.append(got)
    time.sleep(1.5)
print(json.dumps(times))
"#;

/// Browse→resolved times, `runs` times, in `host`; `None` for a run that resolved nothing in 10 s.
pub fn browse_times(host: &Host, runs: usize) -> Result<Vec<Option<Duration>>, LabError> {
    let mut cmd = host.command("/usr/bin/python3");
    cmd.args(["-c", BROWSE_TIMES, &runs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = ChildGuard::spawn(&mut cmd)?
        .wait_with_output_timeout(Duration::from_secs(15 * runs as u64 + 30))?;
    let times: Vec<Option<f64>> = serde_json::from_slice(&out.stdout).map_err(|e| {
        LabError::Timeout(format!(
            "python-zeroconf printed no times ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    Ok(times
        .into_iter()
        .map(|t| t.map(Duration::from_secs_f64))
        .collect())
}
