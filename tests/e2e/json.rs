//! End to end: the `--json` contract (issue 12) — every command prints exactly one JSON object on
//! stdout for every outcome (`host` two, `discover --watch` one per event), each with
//! `"schema": 1`; failures are `{"error":{"kind","message","hint","exit_code",...}}` carrying
//! what the command knows, with the exit codes as documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use localpair_lab::pairs::{self, Listener, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Localpair, Ran, lab_or_skip};
use serde_json::Value;

fn run(host: &Host, config: &str, args: &[&str]) -> Ran {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    Localpair::on(host)
        .unwrap()
        .config(config)
        .unwrap()
        .args(all)
        .run(CLI_TIMEOUT)
        .unwrap()
}

/// The one object a run printed, checked for the schema and `keys`.
fn object(ran: &Ran, keys: &[&str]) -> Value {
    let value = ran.json();
    assert_eq!(value["schema"], 1, "{value}");
    for key in keys {
        assert!(value.get(*key).is_some(), "no `{key}` in {value}");
    }
    value
}

/// A success: exit 0 and the keys.
fn success(ran: &Ran, keys: &[&str]) -> Value {
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stdout, ran.stderr);
    object(ran, keys)
}

/// A failure: its exit code, the error object with `kind`, and the extra keys.
fn failure(ran: &Ran, exit: i32, kind: &str, extra: &[&str]) -> Value {
    assert_eq!(ran.code(), Some(exit), "{}\n{}", ran.stdout, ran.stderr);
    let value = object(ran, &["error"]);
    let error = &value["error"];
    assert_eq!(error["kind"], kind, "{value}");
    assert_eq!(error["exit_code"], exit, "{value}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    assert!(error.get("hint").is_some(), "{value}");
    for key in extra {
        assert!(error.get(*key).is_some(), "no `error.{key}` in {value}");
    }
    value
}

#[test]
fn every_command_prints_one_versioned_object_on_success_and_on_failure() {
    let lab = lab_or_skip!("json_contract");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    let lonely = lab
        .add_host(HostSpec::new().name("lonely").default_route(false))
        .unwrap();

    // strategies, and a configuration error (any command that reads the settings).
    success(&run(&desk, "", &["strategies"]), &["strategies"]);
    failure(
        &run(&desk, "[resolve]\nordr = 1\n", &["resolve"]),
        2,
        "config",
        &[],
    );
    // config: the effective settings; a broken file fails like any command.
    success(
        &run(&desk, "[discover]\nstagger_ms = 5\n", &["config"]),
        &["file", "looked_in", "settings"],
    );
    failure(
        &run(&desk, "[discover]\nstagger_ms = \"soon\"\n", &["config"]),
        2,
        "config",
        &[],
    );
    // A command line that does not parse.
    failure(&run(&desk, "", &["bogus"]), 2, "usage", &[]);

    // resolve.
    success(
        &run(&desk, "", &["resolve"]),
        &["candidates", "attempts", "elapsed_ms"],
    );
    failure(
        &run(
            &lonely,
            "[resolve]\norder = [\"outbound-route\"]\n",
            &["resolve"],
        ),
        1,
        "no-address",
        &["attempts"],
    );

    // discover: alone, nobody answers; with a listener, it is found.
    failure(
        &run(&desk, "", &["discover", "--timeout", "1"]),
        1,
        "no-peers",
        &["attempts"],
    );
    let listening = Listener::start(&phone, "", false).unwrap();
    success(
        &run(&desk, "", &["discover", "--count", "1", "--timeout", "10"]),
        &["peers", "attempts", "elapsed_ms"],
    );
    drop(listening);

    // host and join: the code line, then the result; a failed join names its dials.
    let (running, code) = pairs::start_host(&desk, "pre", "").unwrap();
    let joined = success(
        &run(&phone, "", &["join", &code]),
        &["paired", "peer", "via", "elapsed_ms", "dials", "saved"],
    );
    assert_eq!(joined["paired"], true);
    let hosted = running.next_json(STEP).unwrap();
    assert_eq!(hosted["schema"], 1, "{hosted}");
    assert_eq!(hosted["paired"], true, "{hosted}");
    running.wait(STEP).unwrap();
    let failed = failure(
        &run(&phone, "[join]\ndeadline_ms = 3000\n", &["join", &code]),
        1,
        "join-failed",
        &["tried", "dials", "attempts"],
    );
    assert!(
        !failed["error"]["dials"].as_array().unwrap().is_empty(),
        "{failed}"
    );
    let expired = Localpair::on(&desk)
        .unwrap()
        .config("[pairing]\ncode_ttl_ms = 200\n")
        .unwrap()
        .args(["--json", "host", "--qr", "none"])
        .start()
        .unwrap();
    let first = expired.next_json(STEP).unwrap();
    assert_eq!(first["schema"], 1);
    assert!(first["code"].is_string(), "{first}");
    let last = expired.next_json(STEP).unwrap();
    assert_eq!(last["schema"], 1);
    assert_eq!(last["error"]["kind"], "code-expired", "{last}");

    // peers, forget; connect and listen.
    let peers = success(&run(&phone, "", &["peers"]), &["peers"]);
    assert_eq!(peers["peers"].as_array().map(Vec::len), Some(1), "{peers}");
    failure(
        &run(&phone, "", &["forget", "nobody"]),
        2,
        "unknown-peer",
        &[],
    );
    failure(
        &run(&phone, "", &["connect", "nobody"]),
        2,
        "unknown-peer",
        &[],
    );
    failure(
        &run(
            &phone,
            "[connect]\ndeadline_ms = 2000\n",
            &["connect", "desk"],
        ),
        1,
        "connect-failed",
        &["tried", "dials", "attempts"],
    );
    let listener = Listener::start(&desk, "", true).unwrap();
    let connected = pairs::connect(&phone, "desk", "", b"hi").unwrap();
    success(
        &connected,
        &["connected", "peer", "via", "elapsed_ms", "dials"],
    );
    let (status, _) = listener.finish(STEP).unwrap();
    assert!(status.success());

    // firewall and diagnose.
    success(
        &run(&desk, "", &["firewall", "--shell", "nft"]),
        &["shell", "detected", "ports", "commands"],
    );
    let report = Localpair::on(&desk)
        .unwrap()
        .args(["--json", "diagnose", "--window", "1"])
        .run(Duration::from_secs(60))
        .unwrap();
    object(&report, &["checks"]);
    lab.teardown().unwrap();
}

#[test]
fn short_code_objects_and_failures() {
    let lab = lab_or_skip!("json_short");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    let quick = "[join]\ndeadline_ms = 3000\n";
    failure(
        &run(&phone, quick, &["join", "--short", "07-392-8150"]),
        2,
        "bad-code",
        &[],
    );
    failure(
        &run(&phone, quick, &["join", "--short", "47-392-8150"]),
        1,
        "join-failed",
        &["tried", "dials", "attempts"],
    );
    let (hosting, first) = pairs::start_short_host(&desk, "").unwrap();
    assert_eq!(first["schema"], 1);
    for key in ["short_code", "channel", "expires_in_s"] {
        assert!(first.get(key).is_some(), "no `{key}` in {first}");
    }
    let code = first["short_code"].as_str().unwrap().to_owned();
    // Another secret on the same channel.
    let last = if code.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &code[..code.len() - 1]);
    failure(
        &run(&phone, quick, &["join", "--short", &wrong]),
        1,
        "wrong-code",
        &["addr", "refusal"],
    );
    success(
        &run(&phone, "", &["join", "--short", &code]),
        &[
            "paired",
            "peer",
            "via",
            "verification",
            "elapsed_ms",
            "code_to_paired_ms",
            "dials",
            "saved",
        ],
    );
    let paired = hosting.next_json(STEP).unwrap();
    assert_eq!(paired["schema"], 1);
    for key in ["paired", "peer", "saved", "verification", "elapsed_ms"] {
        assert!(paired.get(key).is_some(), "no `{key}` in {paired}");
    }
    assert!(hosting.wait(STEP).unwrap().success());
    lab.teardown().unwrap();
}

#[test]
fn output_through_pipes_is_plain_text() {
    let lab = lab_or_skip!("plain_pipes");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    for json in [false, true] {
        let mut args = vec!["-vv", "host", "--qr", "terminal"];
        if json {
            args.insert(0, "--json");
        }
        // The code expires at once: the run is short, and its log and QR are complete.
        let ran = Localpair::on(&desk)
            .unwrap()
            .config("[pairing]\ncode_ttl_ms = 300\n")
            .unwrap()
            .args(args)
            .run(CLI_TIMEOUT)
            .unwrap();
        assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
        // The QR is there (stdout, or stderr with --json) and so is the log, without escapes.
        let drawing = if json { &ran.stderr } else { &ran.stdout };
        assert!(drawing.contains('█'), "no QR drawn:\n{drawing}");
        assert!(ran.stderr.contains("DEBUG"), "no log:\n{}", ran.stderr);
        assert!(
            !ran.stdout.contains('\u{1b}'),
            "escapes on stdout:\n{}",
            ran.stdout
        );
        assert!(
            !ran.stderr.contains('\u{1b}'),
            "escapes on stderr:\n{}",
            ran.stderr
        );
    }
    lab.teardown().unwrap();
}
