//! Pre-shared pairing, code in hand → paired (multicast working, UDP dropped, and in the other
//! direction through a host firewall); and the diagnostics report's run time.

use std::time::{Duration, Instant};

use localpair_lab::stats::ms;
use localpair_lab::{HostSpec, Lab, LabError, Localpair};

use crate::table::Table;
use crate::{Options, json_run};

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let cases = [
        "pairing (pre-shared), multicast working",
        "pairing (pre-shared), all UDP dropped: direct dial",
        "pairing (pre-shared), the host's firewall drops incoming TCP: other direction",
    ];
    for (case, label) in cases.into_iter().enumerate() {
        let lab = Lab::new("bench_pair")?;
        let host = lab.add_host(HostSpec::new())?;
        let joiner = lab.add_host(HostSpec::new())?;
        match case {
            1 => {
                host.drop_udp()?;
                joiner.drop_udp()?;
            }
            2 => host.drop_incoming_tcp()?,
            _ => {}
        }
        let mut inside = Vec::new();
        let mut wall = Vec::new();
        let mut via = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..options.runs {
            let hosting = Localpair::on(&host)?
                .args(["--json", "host", "--qr", "none"])
                .start()?;
            let code = hosting.next_json(Duration::from_secs(30))?["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let started = Instant::now();
            let joined = json_run(&joiner, "", &["join", &code])?;
            wall.push(ms(started.elapsed()));
            inside.push(joined["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
            *via.entry(joined["via"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
            hosting.finish(Duration::from_secs(30))?;
        }
        eprintln!("{label}: paired via {via:?}");
        table.times(
            &format!("{label} — code in hand → paired (in join)"),
            inside,
        );
        table.times(&format!("{label} — whole `localpair join` process"), wall);
    }
    Ok(())
}

pub(crate) fn diagnose(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let runs = options.runs.min(10);
    for faulty in [false, true] {
        let lab = Lab::new("bench_diagnose")?;
        let subject = lab.add_host(HostSpec::new())?;
        let peer = lab.add_host(HostSpec::new())?;
        if faulty {
            subject.drop_multicast()?;
        }
        let _peer = Localpair::on(&peer)?
            .args(["discover", "--timeout", "3600"])
            .spawn()?;
        let mut wall = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let ran = Localpair::on(&subject)?
                .args(["--json", "diagnose"])
                .run(Duration::from_secs(60))?;
            wall.push(ms(started.elapsed()));
            if ran.code() != Some(0) {
                return Err(LabError::Timeout(format!(
                    "diagnose failed: {}",
                    ran.stderr
                )));
            }
        }
        let label = if faulty {
            "diagnose, multicast dropped — whole process"
        } else {
            "diagnose, healthy lab — whole process"
        };
        table.times(label, wall);
    }
    Ok(())
}

/// How long a join that cannot succeed takes to say so: in a namespace where only loopback is
/// up, after the host died, and when both devices' firewalls drop incoming TCP.
pub(crate) fn failfast(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let runs = options.runs.min(10);
    let cases = [
        "join fails: only loopback is up",
        "join fails: the host died",
        "join fails: both firewalls drop incoming TCP",
    ];
    for (case, label) in cases.into_iter().enumerate() {
        let lab = Lab::new("bench_failfast")?;
        let host = lab.add_host(HostSpec::new())?;
        let joiner = lab.add_host(HostSpec::new())?;
        if case == 2 {
            host.drop_incoming_tcp()?;
            joiner.drop_incoming_tcp()?;
        }
        let mut wall = Vec::new();
        for _ in 0..runs {
            let hosting = Localpair::on(&host)?
                .args(["--json", "host", "--qr", "none"])
                .start()?;
            let code = hosting.next_json(Duration::from_secs(30))?["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match case {
                0 => {
                    joiner.exec(["ip", "link", "set", joiner.iface(), "down"])?;
                }
                1 => {
                    drop(hosting);
                    std::thread::sleep(Duration::from_millis(200));
                }
                _ => {}
            }
            let started = Instant::now();
            let ran = Localpair::on(&joiner)?
                .args(["--json", "join", &code])
                .run(Duration::from_secs(60))?;
            wall.push(ms(started.elapsed()));
            if ran.code() == Some(0) {
                return Err(LabError::Timeout(format!("{label}: the join succeeded")));
            }
            if case == 0 {
                joiner.exec(["ip", "link", "set", joiner.iface(), "up"])?;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        table.times(&format!("{label} — whole `localpair join` process"), wall);
    }
    Ok(())
}
