//! The report for people: a table of checks, the interfaces, the peers, the hints.

use std::fmt::Write as _;

use serde_json::Value;

use super::report::{PeerRow, Report};

/// Errors shown under one check; the JSON report has them all.
const ERRORS_SHOWN: usize = 4;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    match &report.device {
        Some(d) => {
            let port = d
                .listener_port
                .map(|p| format!(", listener port {p}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "localpair diagnose: {} [{}]{port}, {:.2} s",
                d.name,
                d.id,
                report.elapsed_ms / 1000.0
            );
        }
        None => {
            let _ = writeln!(
                out,
                "localpair diagnose, {:.2} s",
                report.elapsed_ms / 1000.0
            );
        }
    }
    out.push('\n');
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let _ = writeln!(
            out,
            "  {} {:<width$} {:>8.1} ms  {}",
            c.status.symbol(),
            c.name,
            c.elapsed_ms,
            c.summary
        );
        for error in c.errors.iter().take(ERRORS_SHOWN) {
            let _ = writeln!(out, "      ! {error}");
        }
        if c.errors.len() > ERRORS_SHOWN {
            let _ = writeln!(
                out,
                "      ! … {} more (see --json)",
                c.errors.len() - ERRORS_SHOWN
            );
        }
    }
    interfaces(report, &mut out);
    peers(&report.matrix, &mut out);
    out.push('\n');
    if report.hints.is_empty() {
        out.push_str("Hints: none; nothing found that would stop pairing.\n");
    } else {
        out.push_str("Hints:\n");
        for (i, h) in report.hints.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, h.cause);
            let _ = writeln!(out, "     fix: {}", h.fix);
        }
    }
    out
}

fn interfaces(report: &Report, out: &mut String) {
    let Some(list) = report
        .check("interfaces")
        .and_then(|c| c.details.get("interfaces"))
        .and_then(Value::as_array)
    else {
        return;
    };
    out.push_str("\nInterfaces:\n");
    let field = |i: &Value, key: &str| i.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    for i in list {
        let flags: Vec<&str> = i
            .get("flags")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let addrs: Vec<String> = i
            .get("addrs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|a| {
                        format!(
                            "{}/{}",
                            a.get("ip").and_then(Value::as_str).unwrap_or("?"),
                            a.get("prefix_len").and_then(Value::as_u64).unwrap_or(0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mtu = i
            .get("mtu")
            .and_then(Value::as_u64)
            .map(|m| format!("mtu {m}"))
            .unwrap_or_default();
        let excluded = if i.get("permitted") != Some(&Value::Bool(false)) {
            ""
        } else if field(i, "class") == "loopback" {
            " (loopback: not used)"
        } else {
            " (excluded by [interfaces])"
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<14} {:<38} {:<9} {}{excluded}",
            field(i, "name"),
            field(i, "class"),
            flags.join(","),
            mtu,
            addrs.join(" ")
        );
    }
}

fn peers(matrix: &[PeerRow], out: &mut String) {
    out.push_str("\nPeers (found by → heard us → reachable):\n");
    if matrix.is_empty() {
        out.push_str("  nobody\n");
        return;
    }
    for row in matrix {
        let name = if row.name.is_empty() {
            "(no name)"
        } else {
            row.name.as_str()
        };
        let found = if row.found_by.is_empty() {
            "not found by us".to_owned()
        } else {
            row.found_by.join(", ")
        };
        let heard = match row.heard_us {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let reachable = match (row.reachable, row.reached, row.reach_ms) {
            (Some(true), Some(addr), Some(ms)) => format!("yes ({addr}, {ms:.1} ms)"),
            (Some(true), _, _) => "yes".to_owned(),
            (Some(false), _, _) => "no".to_owned(),
            (None, _, _) => "not tried".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {name} [{}]\n    found by: {found}; heard us: {heard}; reachable: {reachable}",
            row.id
        );
    }
}
