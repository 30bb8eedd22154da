//! End to end: a join that cannot succeed says so at once instead of waiting out its 30 s
//! deadline (issue 12). The exact times are lab-bench's to measure; here the bound only proves
//! the join did not wait for its deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use localpair_lab::pairs;
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Localpair, lab_or_skip};

/// Far below the default 30 s deadline, far above what the lab takes.
const WELL_BEFORE_THE_DEADLINE: Duration = Duration::from_secs(10);

/// The code of a host that has stopped since: every address in it refuses.
fn code_of_a_stopped_host(desk: &Host) -> String {
    let (hosting, code) = pairs::start_host(desk, "pre", "").unwrap();
    drop(hosting);
    std::thread::sleep(Duration::from_millis(200));
    code
}

#[test]
fn a_join_with_nowhere_to_go_ends_at_once() {
    let lab = lab_or_skip!("fast_nowhere");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    let (hosting, code) = pairs::start_host(&desk, "pre", "").unwrap();
    // Only loopback is left: every dial fails at once, no discoverer can send.
    phone
        .exec(["ip", "link", "set", phone.iface(), "down"])
        .unwrap();
    let started = Instant::now();
    let ran = pairs::join(&phone, &code, "").unwrap();
    let took = started.elapsed();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        took < WELL_BEFORE_THE_DEADLINE,
        "gave up after {took:?}: {}",
        ran.stderr
    );
    assert!(ran.stderr.contains("unreachable"), "{}", ran.stderr);
    // And the discoverers say what is true: no rule filtered anything, only loopback is up.
    assert!(ran.stderr.contains("only loopback is up"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("allow/deny"), "{}", ran.stderr);
    drop(hosting);
}

#[test]
fn a_join_to_a_host_that_died_ends_at_once() {
    let lab = lab_or_skip!("fast_died");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    let code = code_of_a_stopped_host(&desk);
    let started = Instant::now();
    let ran = pairs::join(&phone, &code, "").unwrap();
    let took = started.elapsed();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        took < WELL_BEFORE_THE_DEADLINE,
        "gave up after {took:?}: {}",
        ran.stderr
    );
    assert!(ran.stderr.contains("refused"), "{}", ran.stderr);
}

#[test]
fn a_host_nobody_can_reach_says_why() {
    let lab = lab_or_skip!("fast_noaddr");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    // The link is down but keeps its address: a code is shown (the address is right once the
    // cable is back), with a warning that says why nobody can use it now.
    desk.exec(["ip", "link", "set", desk.iface(), "down"])
        .unwrap();
    let (hosting, code) = pairs::start_host(&desk, "pre", "").unwrap();
    assert!(code.starts_with("LP:"), "{code}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let warned = loop {
        let stderr = hosting.stderr();
        if stderr.contains("warning: ") || Instant::now() > deadline {
            break stderr;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        warned.contains(&format!(
            "warning: every address in the code is on an interface that is down ({}: no carrier)",
            desk.iface()
        )),
        "{warned}"
    );
    drop(hosting);

    // No address left but loopback: no code at all, and the error says what is true.
    desk.exec(["ip", "addr", "flush", "dev", desk.iface()])
        .unwrap();
    let ran = Localpair::on(&desk)
        .unwrap()
        .args(["--json", "host", "--qr", "none"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    let report: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
    assert_eq!(report["error"]["kind"], "no-address", "{report:#}");
    assert!(
        ran.stderr.contains("no usable address found"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("only loopback is up"), "{}", ran.stderr);
}

#[test]
fn a_terminal_gets_one_progress_line_and_a_pipe_none() {
    let lab = lab_or_skip!("fast_tty");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    // A host that died: the join tries for about a second before it gives up.
    let code = code_of_a_stopped_host(&desk);

    let ran = Localpair::on(&phone)
        .unwrap()
        .args(["join", &code])
        .in_terminal()
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stdout);
    let screen = &ran.stdout;
    // One line, redrawn in place (carriage return, erase line), saying what is being tried.
    assert!(
        screen.contains("looking for devices and for the host"),
        "{screen:?}"
    );
    assert!(
        screen.contains("\r\x1b[2K") && screen.contains("trying every address found"),
        "{screen:?}"
    );
    // A device found gets a line of its own above the spinner.
    assert!(screen.contains("found "), "{screen:?}");
    // Cleared before the final error line, which stands alone after it.
    let after_last_clear = screen.rsplit("\x1b[2K").next().unwrap_or_default();
    assert!(after_last_clear.starts_with("error: "), "{screen:?}");
    assert!(
        !after_last_clear.contains("trying every address"),
        "{screen:?}"
    );

    // Through a pipe: no progress line, no escape at all.
    let ran = pairs::join(&phone, &code, "").unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("looking for devices"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains('\x1b'), "{:?}", ran.stderr);
}
