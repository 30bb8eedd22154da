//! Short-code pairing: the code typed → paired, with discovery already running on the joiner
//! (as when a person reads the code off the host's screen while `join --short` waits).

use std::io::Write as _;
use std::time::{Duration, Instant};

use localpair_lab::stats::ms;
use localpair_lab::{HostSpec, Lab, LabError, Localpair};

use crate::Options;
use crate::table::Table;

const STEP: Duration = Duration::from_secs(30);

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let lab = Lab::new("bench_short")?;
    let host = lab.add_host(HostSpec::new())?;
    let joiner = lab.add_host(HostSpec::new())?;
    let mut inside = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..options.runs {
        let hosting = Localpair::on(&host)?
            .args(["--json", "host", "--short"])
            .start()?;
        let code = hosting.next_json(STEP)?["short_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut joining = Localpair::on(&joiner)?
            .args(["--json", "join", "--short"])
            .stdin_piped()
            .start()?;
        // The host is in view before the code is typed.
        let found = format!("found {}", host.name());
        let deadline = Instant::now() + STEP;
        while !joining.stderr().contains(&found) {
            if Instant::now() > deadline {
                return Err(LabError::Timeout(format!(
                    "the joiner never saw the host: {}",
                    joining.stderr()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stdin = joining
            .child()
            .stdin
            .take()
            .ok_or_else(|| LabError::Timeout("no stdin".to_owned()))?;
        let typed = Instant::now();
        writeln!(stdin, "{code}").map_err(|e| LabError::io("typing the code", e))?;
        let joined = joining.next_json(STEP)?;
        wall.push(ms(typed.elapsed()));
        if joined["paired"] != true {
            return Err(LabError::Timeout(format!(
                "did not pair: {joined}; {}",
                joining.stderr()
            )));
        }
        inside.push(joined["code_to_paired_ms"].as_f64().unwrap_or(f64::NAN));
        joining.finish(STEP)?;
        hosting.finish(STEP)?;
    }
    table.times("short code — typed → paired (in join)", inside);
    table.times(
        "short code — typed → the joiner's paired line on stdout",
        wall,
    );
    Ok(())
}
