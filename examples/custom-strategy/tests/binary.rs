//! The example binary: listed, selected by TOML `order`, producing results. Everything here stays
//! on loopback: the config replaces the chains, so no multicast or mDNS runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const FINGERPRINT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn run(args: &[&str], config: &str) -> Output {
    let path = std::env::temp_dir().join(format!(
        "localpair-static-{}-{}.toml",
        std::process::id(),
        args.join("_")
    ));
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_localpair-static"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LOCALPAIR_") {
            command.env_remove(key);
        }
    }
    let output = command
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    output
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn strategies_lists_the_custom_ones_beside_the_builtins() {
    let list = json(&run(&["--json", "strategies"], ""));
    let rows: Vec<(String, String, String)> = list["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].to_string(),
                s["kind"].to_string(),
                s["crate"].to_string(),
            )
        })
        .collect();
    let has = |name: &str, kind: &str, krate: &str| {
        rows.contains(&(
            format!("\"{name}\""),
            format!("\"{kind}\""),
            format!("\"{krate}\""),
        ))
    };
    assert!(
        has("static-peers", "discoverer", "localpair-example-static"),
        "{rows:?}"
    );
    assert!(
        has("static-address", "resolver", "localpair-example-static"),
        "{rows:?}"
    );
    assert!(
        has("outbound-route", "resolver", "localpair-outbound-route"),
        "{rows:?}"
    );
}

#[test]
fn discover_selects_static_peers_from_toml() {
    let config = format!(
        "[discover]\norder = [\"static-peers\"]\ndeadline_ms = 2000\n\n\
         [[strategies.static-peers.peers]]\nname = \"desk\"\nfingerprint = \"{FINGERPRINT}\"\naddrs = [\"192.168.1.20:40000\"]\n"
    );
    let report = json(&run(&["--json", "discover", "--count", "1"], &config));
    let peer = &report["peers"][0];
    assert_eq!(peer["name"], "desk");
    assert_eq!(peer["fingerprint"], FINGERPRINT);
    assert_eq!(peer["id"], &FINGERPRINT[..16]);
    assert_eq!(peer["strategy"], "static-peers");
    assert_eq!(peer["addrs"][0], "192.168.1.20:40000");
    assert_eq!(report["attempts"][0]["outcome"], "ok");
}

#[test]
fn resolve_selects_static_address_from_toml() {
    let config = "[resolve]\norder = [\"static-address\"]\n\n[strategies.static-address]\naddresses = [\"127.0.0.1\"]\n";
    let report = json(&run(&["--json", "resolve"], config));
    let candidate = &report["candidates"][0];
    assert_eq!(candidate["ip"], "127.0.0.1");
    assert_eq!(candidate["strategy"], "static-address");
    assert_eq!(candidate["confirmed"], "local");
    assert_eq!(candidate["class"], "loopback");
}

#[test]
fn a_typo_in_the_custom_table_is_a_config_error() {
    let out = run(
        &["resolve"],
        "[resolve]\norder = [\"static-address\"]\n[strategies.static-address]\naddress = [\"127.0.0.1\"]\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("strategies.static-address") && err.contains("address"),
        "{err}"
    );
}
