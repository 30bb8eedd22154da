//! The binary's contract that needs no network: listing, config errors, exit codes, the state
//! directory. Nothing here sends a packet: every command fails, or is done, before it would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn localpair(args: &[&str], config: Option<&str>) -> Output {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // One directory per call: tests run in parallel and several run the same command.
    let dir = std::env::temp_dir().join(format!(
        "localpair-cli-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_localpair"));
    // Never the real home: a device key or trust store goes into this call's own directory.
    command
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LOCALPAIR_") {
            command.env_remove(key);
        }
    }
    if let Some(text) = config {
        let path: PathBuf = dir.join("test.toml");
        std::fs::write(&path, text).unwrap();
        command.arg("--config").arg(&path);
    }
    let output = command.output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    output
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn strategies_lists_every_builtin_as_json() {
    let out = localpair(&["--json", "strategies"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<(&str, &str, &str)> = value["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["kind"].as_str().unwrap(),
                s["crate"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("outbound-route", "resolver", "localpair-outbound-route"),
        ("interface-sweep", "resolver", "localpair-interface-sweep"),
        ("upnp", "resolver", "localpair-upnp"),
        ("peer-observed", "resolver", "localpair-udp-multicast"),
        ("udp-multicast", "discoverer", "localpair-udp-multicast"),
        ("mdns", "discoverer", "localpair-mdns"),
        ("direct", "discoverer", "localpair-direct"),
        ("subnet-scan", "discoverer", "localpair-subnet-scan"),
    ] {
        assert!(
            names.contains(&expected),
            "{expected:?} missing from {names:?}"
        );
    }
}

#[test]
fn unknown_strategy_exits_2_naming_key_and_known_names() {
    let out = localpair(
        &["resolve"],
        Some("[resolve]\norder = [\"outbound-route\", \"carrier-pigeon\"]\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("carrier-pigeon"), "{err}");
    assert!(err.contains("resolve.order[1]"), "{err}");
    assert!(err.contains("interface-sweep, outbound-route"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_value_exits_2_naming_key_and_file() {
    let out = localpair(&["resolve"], Some("[resolve]\ndeadline_ms = \"soon\"\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("resolve.deadline_ms"), "{err}");
    assert!(err.contains("test.toml"), "{err}");
}

#[test]
fn bad_strategy_option_exits_2_naming_key() {
    let out = localpair(
        &["resolve"],
        Some("[strategies.interface-sweep]\nlink_locale = true\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("strategies.interface-sweep"), "{err}");
    assert!(err.contains("link_locale"), "{err}");
}

#[test]
fn misspelt_strategy_table_exits_2() {
    let out = localpair(
        &["resolve"],
        Some("[strategies.outbound-rout]\nconfirm = false\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("strategies.outbound-rout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_config_file_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_localpair"))
        .args(["--config", "/nonexistent/localpair.toml", "resolve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/localpair.toml"));
}

#[test]
fn bad_usage_exits_2() {
    let out = localpair(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_environment_value_exits_2_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_localpair"))
        .current_dir(std::env::temp_dir())
        .env("LOCALPAIR_RESOLVE__MODE", "sideways")
        .arg("resolve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("LOCALPAIR_RESOLVE__MODE"), "{err}");
}

#[test]
fn example_config_documents_the_defaults() {
    // The annotated example must parse, name only known strategies, and equal the defaults.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../localpair.example.toml"
    ))
    .unwrap();
    let settings =
        localpair_core::Settings::load(localpair_core::config::Source::Toml(example)).unwrap();
    let defaults =
        localpair_core::Settings::load(localpair_core::config::Source::Toml(String::new()))
            .unwrap();
    let mut config = settings.config().clone();
    config.strategies.clear();
    assert_eq!(&config, defaults.config());
    let registry = localpair_core::Registry::linked().unwrap();
    registry.check_tables(&settings).unwrap();
    localpair_core::ResolverChain::from_settings(&registry, &settings).unwrap();
    let sweep: localpair_interface_sweep::Config = settings
        .strategy_table("interface-sweep")
        .extract()
        .unwrap();
    assert_eq!(sweep, localpair_interface_sweep::Config::default());
    let outbound: localpair_outbound_route::Config =
        settings.strategy_table("outbound-route").extract().unwrap();
    assert_eq!(outbound, localpair_outbound_route::Config::default());
    let direct: localpair_direct::Config = settings.strategy_table("direct").extract().unwrap();
    assert_eq!(direct, localpair_direct::Config::default());
    let scan: localpair_subnet_scan::Config =
        settings.strategy_table("subnet-scan").extract().unwrap();
    assert_eq!(scan, localpair_subnet_scan::Config::default());
    let mdns: localpair_mdns::Config = settings.strategy_table("mdns").extract().unwrap();
    assert_eq!(mdns, localpair_mdns::Config::default());
    let multicast: localpair_udp_multicast::Config =
        settings.strategy_table("udp-multicast").extract().unwrap();
    assert_eq!(multicast, localpair_udp_multicast::Config::default());
    let observed: localpair_udp_multicast::ObserveConfig =
        settings.strategy_table("peer-observed").extract().unwrap();
    assert_eq!(observed, localpair_udp_multicast::ObserveConfig::default());
    let upnp: localpair_upnp::Config = settings.strategy_table("upnp").extract().unwrap();
    assert_eq!(upnp, localpair_upnp::Config::default());
    localpair_core::DiscovererChain::from_settings(&registry, &settings).unwrap();
    let pairing = localpair_pairing::PairingConfig::from_settings(&settings).unwrap();
    assert_eq!(pairing, localpair_pairing::PairingConfig::default());
    let join = localpair_pairing::JoinConfig::from_settings(&settings).unwrap();
    assert_eq!(join, localpair_pairing::JoinConfig::default());
    join.chain(&registry, &settings).unwrap();
    let diagnostics = localpair_diagnostics::DiagnosticsConfig::from_settings(&settings).unwrap();
    assert_eq!(
        diagnostics,
        localpair_diagnostics::DiagnosticsConfig::default()
    );
}

#[test]
fn a_config_file_others_can_write_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = state("config");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shared.toml");
    std::fs::write(&path, "[resolve]\nstagger_ms = 10\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let config = path.to_str().unwrap();
    let out = localpair(&["--config", config, "--ephemeral", "peers"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("chmod go-w {config}")), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = localpair(&["--config", config, "--ephemeral", "peers"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn join_reads_the_code_from_a_file_and_says_what_is_wrong_with_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = state("code-file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("code.txt");
    let file_arg = file.to_str().unwrap();

    // Missing, too long, not a code: bad usage (2), found before anything is sent.
    let out = localpair(&["--ephemeral", "join", "--code-file", file_arg], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("code file {file_arg}")),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, "A".repeat(5000)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = localpair(&["--ephemeral", "join", "--code-file", file_arg], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("longer than 4096 bytes"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, "LP:AAAA\n").unwrap();
    let out = localpair(&["--ephemeral", "join", "--code-file", file_arg], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("corrupted"), "{err}");
    assert!(
        !err.contains("warning"),
        "a private file is not warned about: {err}"
    );

    // Readable by others: used, with a warning naming the fix.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = localpair(&["--ephemeral", "join", "--code-file", file_arg], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("chmod 600 {file_arg}")), "{err}");

    // Both a code argument and a file: bad usage.
    let out = localpair(
        &["--ephemeral", "join", "LP:AAAA", "--code-file", file_arg],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mistyped_short_code_is_bad_usage_before_anything_is_sent() {
    // Every case fails before the device opens: nothing is announced or dialled.
    for code in ["07-392-8150", "47-392-815", "47-392-815O", "LP:AAAA"] {
        let out = localpair(&["--ephemeral", "--json", "join", "--short", code], None);
        assert_eq!(out.status.code(), Some(2), "{code}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["error"]["kind"], "bad-code", "{json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("not a short code"), "{message}");
    }
    for args in [
        &["join", "--short", "47-392-8150", "--code-file", "code.txt"][..],
        &["join", "LP:AAAA", "--short", "47-392-8150"],
        &["host", "--short", "--qr", "none"],
        &["host", "--short", "--flow", "post"],
    ] {
        let out = localpair(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot be used with"),
            "{}",
            stderr(&out)
        );
    }
}

/// A private state directory for one test.
fn state(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("localpair-cli-state-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_key_file_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = state("key");
    let state_dir = dir.to_str().unwrap();
    // Creates the key (an unknown peer is bad usage, found before anything is dialled).
    let out = localpair(&["--state-dir", state_dir, "connect", "nobody"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let key = dir.join("device-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = localpair(&["--state-dir", state_dir, "connect", "nobody"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_trust_store_names_the_file_and_line_and_is_kept() {
    let dir = state("trust");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trusted-peers.toml");
    let broken = "version = 1\n\n[[peer]]\nfingerprint = \"not hex\"\n";
    std::fs::write(&file, broken).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = localpair(&["--state-dir", dir.to_str().unwrap(), "peers"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        broken,
        "never rewritten"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn peers_lists_nothing_on_a_new_device_as_json() {
    let dir = state("empty");
    let out = localpair(
        &["--json", "--state-dir", dir.to_str().unwrap(), "peers"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["peers"], serde_json::json!([]));
    let out = localpair(
        &["--state-dir", dir.to_str().unwrap(), "forget", "laptop"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no known peer is `laptop`"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definition_as_help() {
    for (shell, marker) in [
        ("bash", "_localpair()"),
        ("zsh", "#compdef localpair"),
        ("fish", "complete -c localpair"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[localpair]"),
    ] {
        let out = localpair(&["completions", shell], None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(text.contains(marker), "{shell}: {text}");
        // Every subcommand is offered.
        for command in ["host", "join", "connect", "firewall", "diagnose"] {
            assert!(text.contains(command), "{shell} lacks {command}");
        }
    }
    let man = localpair(&["man"], None);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH localpair 1"),
        "{page}"
    );
    assert!(page.contains("pair with them securely"), "{page}");
}

#[test]
fn every_help_ends_with_examples_and_the_top_one_says_what_localpair_does() {
    let top = localpair(&["--help"], None);
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        text.contains("localpair finds the other devices on this network"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .lines()
            .rev()
            .take(5)
            .any(|l| l.contains("localpair host")),
        "{text}"
    );
    for command in [
        "strategies",
        "resolve",
        "discover",
        "host",
        "join",
        "listen",
        "connect",
        "peers",
        "forget",
        "firewall",
        "diagnose",
        "completions",
        "man",
    ] {
        let help = localpair(&[command, "--help"], None);
        let text = String::from_utf8_lossy(&help.stdout);
        let tail = text.trim_end();
        let examples = tail
            .rfind("Examples:")
            .unwrap_or_else(|| panic!("{command}: {text}"));
        assert!(
            tail[examples..]
                .lines()
                .skip(1)
                .all(|l| l.trim_start().starts_with("localpair")
                    || l.contains("| localpair")
                    || l.contains("| sudo")),
            "{command}: examples are not last: {text}"
        );
    }
}

#[test]
fn config_shows_each_value_and_where_it_came_from() {
    let dir = std::env::temp_dir().join(format!("localpair-cli-config-{}", std::process::id()));
    let xdg = dir.join("config/localpair");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(xdg.join("config.toml"), "[discover]\nstagger_ms = 40\n").unwrap();
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_localpair"));
        command
            .current_dir(&dir)
            .env("HOME", &dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("LOCALPAIR_RESOLVE__MODE", "all")
            .env_remove("LOCALPAIR_CONFIG")
            .args(args);
        command.output().unwrap()
    };

    let out = run(&["--json", "--ephemeral", "config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], 1);
    let file = xdg.join("config.toml").display().to_string();
    assert_eq!(report["file"], file.as_str(), "found in $XDG_CONFIG_HOME");
    assert_eq!(report["looked_in"][0], "localpair.toml");
    let settings = report["settings"].as_array().unwrap();
    let find = |key: &str| {
        settings
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} in {report:#}"))
    };
    assert_eq!(find("discover.stagger_ms")["from"], "file");
    assert_eq!(find("discover.stagger_ms")["source"], file.as_str());
    assert_eq!(find("discover.stagger_ms")["value"], 40);
    assert_eq!(find("resolve.mode")["from"], "environment");
    assert_eq!(find("resolve.mode")["source"], "LOCALPAIR_RESOLVE__MODE");
    assert_eq!(find("device.ephemeral")["from"], "flag");
    assert_eq!(find("device.ephemeral")["source"], "--ephemeral");
    // The applications' sections are listed with their defaults.
    assert_eq!(find("pairing.port")["value"], 19537);
    assert_eq!(find("pairing.port")["from"], "default");
    assert_eq!(find("diagnostics.reach_timeout_ms")["from"], "default");

    // The same as text: one `key = value  # origin` line per setting.
    let out = run(&["config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("# config file: {file}\n")),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("resolve.mode = "))
        .unwrap();
    assert!(
        line.contains("\"all\"") && line.ends_with("# environment LOCALPAIR_RESOLVE__MODE"),
        "{line}"
    );

    // ./localpair.toml comes before the XDG file.
    std::fs::write(dir.join("localpair.toml"), "[discover]\nstagger_ms = 41\n").unwrap();
    let out = run(&["--json", "config"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["file"], "localpair.toml");
    std::fs::remove_dir_all(&dir).unwrap();
}
