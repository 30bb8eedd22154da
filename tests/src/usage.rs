//! What a process costs: resident memory and CPU time, from /proc (the lab shares the root
//! namespace's /proc, so a process inside a host is read like any other).

use std::time::{Duration, Instant};

use crate::LabError;

/// Resident memory and CPU time (user + system) of a process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// CPU time used so far.
    pub cpu: Duration,
}

impl Usage {
    /// Reads process `pid`'s usage now.
    pub fn of(pid: u32) -> Result<Self, LabError> {
        let read = |what: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/{what}"))
                .map_err(|e| LabError::io(format!("reading /proc/{pid}/{what}"), e))
        };
        let bad = |what: &str| {
            LabError::io(
                format!("parsing /proc/{pid}/{what}"),
                std::io::Error::other("unexpected format"),
            )
        };
        let rss_kib = read("status")?
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| bad("status"))?;
        let stat = read("stat")?;
        // The fields after the command name (which may hold spaces, inside parentheses): utime
        // and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let fields: Vec<&str> = stat
            .rfind(')')
            .map(|at| stat[at + 1..].split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
            return Err(bad("stat"));
        };
        Ok(Self {
            rss_kib,
            cpu: Duration::from_secs_f64((user + system) as f64 / clock_ticks() as f64),
        })
    }

    /// The share of one core used between `earlier` and this reading, `wall` apart.
    pub fn cpu_share_since(&self, earlier: &Usage, wall: Duration) -> f64 {
        self.cpu.saturating_sub(earlier.cpu).as_secs_f64() / wall.as_secs_f64().max(1e-9)
    }

    /// RSS growth since `earlier`, KiB (0 when it shrank).
    pub fn rss_growth_kib(&self, earlier: &Usage) -> u64 {
        self.rss_kib.saturating_sub(earlier.rss_kib)
    }
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Waits (at most `within`) until process `pid` runs program `name`: a command started through
/// `ip netns exec` keeps its pid but becomes the program only once it has entered the namespace.
pub fn wait_for_exec(pid: u32, name: &str, within: Duration) -> Result<(), LabError> {
    let deadline = Instant::now() + within;
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == name {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout(format!(
                "process {pid} is still `{}`, not `{name}`, after {within:?}",
                comm.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
