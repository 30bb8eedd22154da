//! Laptops as they are (issue 14): a full-tunnel VPN, a second network, a Docker bridge; pairing
//! time code in hand → paired in both flows, and the resolve order each laptop shows.

use std::time::Duration;

use localpair_lab::stats::ms;
use localpair_lab::{Host, Lab, LabError, Localpair, scenes};

use crate::table::Table;
use crate::{Options, json_run};

type Scene = fn(&Lab) -> Result<(Host, Host), LabError>;

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let runs = options.runs.min(10);
    let scenes: [(&str, Scene); 3] = [
        ("full-tunnel VPN", scenes::full_tunnel_vpn),
        ("second network (joiner on LAN B)", scenes::two_networks),
        ("docker bridge next to the LAN", scenes::docker_bridge),
    ];
    for (label, scene) in scenes {
        let lab = Lab::new("bench_laptops")?;
        let (laptop, joiner) = scene(&lab)?;
        let resolved = json_run(&laptop, "", &["resolve"])?;
        let order: Vec<String> = resolved["candidates"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|c| {
                        format!(
                            "{} {}",
                            c["ip"].as_str().unwrap_or("?"),
                            c["interface"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        eprintln!("{label}: resolve order {}", order.join(", "));
        for flow in ["pre", "post"] {
            let mut inside = Vec::new();
            let mut via = std::collections::BTreeMap::<String, usize>::new();
            for _ in 0..runs {
                let hosting = Localpair::on(&laptop)?
                    .args(["--json", "host", "--flow", flow, "--qr", "none"])
                    .start()?;
                let first = hosting.next_json(Duration::from_secs(30))?;
                let code = first["code"].as_str().unwrap_or_default().to_owned();
                let joined = json_run(&joiner, "", &["join", &code])?;
                inside.push(joined["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
                *via.entry(joined["via"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
                hosting.finish(Duration::from_secs(30))?;
                eprintln!("{label}, {flow}: code lists {}", first["candidates"]);
            }
            eprintln!("{label}, {flow}-shared: paired via {via:?}");
            table.times(
                &format!("laptop with a {label}, {flow}-shared — code in hand → paired (in join)"),
                inside,
            );
        }
    }
    vpn_only_failure(table, runs)
}

/// The old failure: a host that listens only on its tunnel address. The joiner finds it on the LAN
/// by discovery, is refused there, and must give up with the real cause long before its 30 s.
/// (With the joiner's firewall open, the host dials it in the other direction and they pair: the
/// joiner drops incoming TCP here so that the failure is what is measured.)
fn vpn_only_failure(table: &mut Table, runs: usize) -> Result<(), LabError> {
    let lab = Lab::new("bench_vpnonly")?;
    let (laptop, phone) = scenes::full_tunnel_vpn(&lab)?;
    phone.drop_incoming_tcp()?;
    let mut took = Vec::new();
    for _ in 0..runs {
        let hosting = Localpair::on(&laptop)?
            .config("[resolve]\norder = [\"outbound-route\"]\n")?
            .args(["--json", "host", "--flow", "post", "--qr", "none"])
            .start()?;
        let first = hosting.next_json(Duration::from_secs(30))?;
        let code = first["code"].as_str().unwrap_or_default().to_owned();
        let started = std::time::Instant::now();
        let ran = Localpair::on(&phone)?
            .args(["--json", "join", &code])
            .run(Duration::from_secs(60))?;
        took.push(ms(started.elapsed()));
        if ran.code() != Some(1) || !ran.stderr.contains("listens only on") {
            return Err(LabError::Timeout(format!(
                "expected the VPN-only failure: {}",
                ran.stderr
            )));
        }
    }
    table.times(
        "host listening on its VPN address only — `localpair join` until its failure (whole process)",
        took,
    );
    Ok(())
}
