//! End to end: a join that cannot succeed says so at once instead of waiting out its 30 s
//! deadline (issue 12). The exact times are lab-bench's to measure; here the bound only proves
//! the join did not wait for its deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use localpair_lab::pairs;
use localpair_lab::{HostSpec, lab_or_skip};

/// Far below the default 30 s deadline, far above what the lab takes.
const WELL_BEFORE_THE_DEADLINE: Duration = Duration::from_secs(10);

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
    let (hosting, code) = pairs::start_host(&desk, "pre", "").unwrap();
    drop(hosting);
    std::thread::sleep(Duration::from_millis(200));
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
