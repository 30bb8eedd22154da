//! End to end: `localpair host --short` and `localpair join --short` on lab hosts (issue 13).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use localpair_lab::pairs::{self, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Lab, Localpair, Ran, Running, lab_or_skip};
use localpair_pairing::short::{SECRET_SPACE, ShortCode};
use serde_json::Value;

/// A join that meets no host gives up quickly.
const QUICK_JOIN: &str = "[join]\ndeadline_ms = 8000\n";

fn hosts<const N: usize>(lab: &Lab) -> [Host; N] {
    let hosts: Vec<Host> = (0..N)
        .map(|_| lab.add_host(HostSpec::new()).unwrap())
        .collect();
    hosts.try_into().unwrap_or_else(|_| unreachable!())
}

/// `host --short` on `host`: the process and its code.
fn start(host: &Host) -> (Running, ShortCode) {
    let (running, first) = pairs::start_short_host(host, "").unwrap();
    let code = ShortCode::parse(first["short_code"].as_str().unwrap()).unwrap();
    assert_eq!(first["channel"], u64::from(code.channel), "{first}");
    assert_eq!(first["expires_in_s"], 120, "{first}");
    assert_eq!(first["schema"], 1, "{first}");
    (running, code)
}

/// Two hosts on different channels (a new code until they differ).
fn start_two(a: &Host, b: &Host) -> ((Running, ShortCode), (Running, ShortCode)) {
    let first = start(a);
    for _ in 0..8 {
        let second = start(b);
        if second.1.channel != first.1.channel {
            return (first, second);
        }
    }
    panic!("eight codes in a row on channel {}", first.1.channel);
}

/// The same channel, another secret.
fn wrong(code: ShortCode, n: u32) -> String {
    let secret = (code.secret.expose() + n) % SECRET_SPACE;
    ShortCode::new(code.channel, secret).unwrap().to_string()
}

fn join(joiner: &Host, code: &str) -> Ran {
    pairs::join_short(joiner, code, QUICK_JOIN).unwrap()
}

fn error_kind(ran: &Ran) -> String {
    let json: Value = ran.json();
    json["error"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn host_result(running: Running) -> (Value, bool, String) {
    let line = running.next_json(STEP).unwrap();
    let (status, stderr) = running.finish(STEP).unwrap();
    (line, status.success(), stderr)
}

#[test]
fn a_short_code_pairs_two_devices() {
    let lab = lab_or_skip!("short_pair");
    let [h1, h2] = hosts(&lab);
    let (host, code) = start(&h1);
    // Typed the way people type it.
    let typed = code.to_string().replace('-', " ");
    let joined = join(&h2, &typed);
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let j = joined.json();
    assert_eq!(j["paired"], true);
    assert_eq!(j["peer"]["name"], h1.name());
    let (h, ok, stderr) = host_result(host);
    assert!(ok, "{stderr}");
    assert_eq!(h["paired"], true);
    assert_eq!(h["peer"]["name"], h2.name());
    // The check code both people may compare is the same on both sides.
    assert_eq!(h["verification"], j["verification"]);
    assert!(h["verification"].as_str().is_some_and(|v| v.len() == 7));
    // Both saved each other.
    let peers = Localpair::on(&h2)
        .unwrap()
        .args(["--json", "peers"])
        .run(CLI_TIMEOUT)
        .unwrap()
        .json();
    assert_eq!(peers["peers"][0]["name"], h1.name(), "{peers}");
    assert_eq!(peers["peers"][0]["how"], "short-code", "{peers}");
}

#[test]
fn two_hosts_on_two_channels_each_pair_with_their_joiner() {
    let lab = lab_or_skip!("short_two");
    let [h1, h2, h3, h4] = hosts(&lab);
    let ((host1, code1), (host2, code2)) = start_two(&h1, &h2);
    let (c1, c2) = (code1.to_string(), code2.to_string());
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| join(&h3, &c1));
        let b = s.spawn(|| join(&h4, &c2));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code(), Some(0), "{}", a.stderr);
    assert_eq!(b.code(), Some(0), "{}", b.stderr);
    assert_eq!(a.json()["peer"]["name"], h1.name());
    assert_eq!(b.json()["peer"]["name"], h2.name());
    assert_eq!(host_result(host1).0["peer"]["name"], h3.name());
    assert_eq!(host_result(host2).0["peer"]["name"], h4.name());
}

#[test]
fn a_wrong_code_twice_then_the_right_one_pairs() {
    let lab = lab_or_skip!("short_retry");
    let [h1, h2] = hosts(&lab);
    let (host, code) = start(&h1);
    for n in 1..=2 {
        let failed = join(&h2, &wrong(code, n));
        assert_eq!(failed.code(), Some(1), "{}", failed.stderr);
        assert_eq!(error_kind(&failed), "wrong-code", "{}", failed.stdout);
        assert!(failed.stderr.contains("wrong"), "{}", failed.stderr);
    }
    let joined = join(&h2, &code.to_string());
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let (h, ok, stderr) = host_result(host);
    assert!(ok && h["paired"] == true, "{h} {stderr}");
    assert_eq!(
        stderr.matches("someone entered a wrong short code").count(),
        2,
        "{stderr}"
    );
}

#[test]
fn three_wrong_codes_end_it_and_both_sides_say_so() {
    let lab = lab_or_skip!("short_end");
    let [h1, h2] = hosts(&lab);
    let (host, code) = start(&h1);
    let mut kinds = Vec::new();
    for n in 1..=3 {
        let failed = join(&h2, &wrong(code, n));
        assert_eq!(failed.code(), Some(1), "{}", failed.stderr);
        kinds.push(error_kind(&failed));
    }
    assert_eq!(kinds, ["wrong-code", "wrong-code", "code-ended"]);
    let (h, ok, _) = host_result(host);
    assert!(!ok);
    assert_eq!(h["error"]["kind"], "code-ended", "{h}");
    let message = h["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("someone entered a wrong code"),
        "{message}"
    );
    // The right code comes too late: nobody is hosting it any more.
    let late = join(&h2, &code.to_string());
    assert_eq!(late.code(), Some(1), "{}", late.stdout);
}

#[test]
fn a_failed_attempt_counts_only_on_its_own_channel() {
    let lab = lab_or_skip!("short_channels");
    let [h1, h2, h3, h4] = hosts(&lab);
    let ((host1, code1), (host2, code2)) = start_two(&h1, &h2);
    // Three wrong codes on channel 1 end that code ...
    for n in 1..=3 {
        let failed = join(&h3, &wrong(code1, n));
        assert_eq!(failed.code(), Some(1), "{}", failed.stderr);
    }
    let (h, _, _) = host_result(host1);
    assert_eq!(h["error"]["kind"], "code-ended", "{h}");
    // ... and the host on channel 2 was never asked: it pairs at the first try.
    let joined = join(&h4, &code2.to_string());
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let (h, ok, stderr) = host_result(host2);
    assert!(ok && h["paired"] == true, "{h}");
    assert!(!stderr.contains("wrong short code"), "{stderr}");
}

/// Every form the secret part could take on the wire or in a log.
fn secret_forms(code: ShortCode) -> Vec<(String, Vec<u8>)> {
    let n = code.secret.expose();
    let digits = format!("{n:07}");
    let sha = |bytes: &[u8]| {
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .to_vec()
    };
    let mut forms = vec![
        ("digits".to_owned(), digits.clone().into_bytes()),
        (
            "grouped".to_owned(),
            format!("{}-{}", &digits[..3], &digits[3..]).into_bytes(),
        ),
        ("code".to_owned(), code.to_string().into_bytes()),
        (
            "code digits".to_owned(),
            format!("{}{digits}", code.channel).into_bytes(),
        ),
        ("u32 le".to_owned(), n.to_le_bytes().to_vec()),
        ("u32 be".to_owned(), n.to_be_bytes().to_vec()),
        ("u64 le".to_owned(), u64::from(n).to_le_bytes().to_vec()),
        ("u64 be".to_owned(), u64::from(n).to_be_bytes().to_vec()),
    ];
    let hashes: Vec<(String, Vec<u8>)> = forms
        .iter()
        .map(|(name, bytes)| (format!("sha256({name})"), sha(bytes)))
        .collect();
    let hex: Vec<(String, Vec<u8>)> = hashes
        .iter()
        .map(|(name, bytes)| {
            (
                format!("hex {name}"),
                localpair_core::identity::hex(bytes).into_bytes(),
            )
        })
        .collect();
    forms.extend(hashes);
    forms.extend(hex);
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_capture_or_log_holds_the_secret_part() {
    let lab = lab_or_skip!("short_capture");
    let [h1, h2] = hosts(&lab);
    let capture = h1.capture("eth0").unwrap();
    let running = Localpair::on(&h1)
        .unwrap()
        .env("RUST_LOG", "debug")
        .args(["--json", "host", "--short"])
        .start()
        .unwrap();
    let first = running.next_json(STEP).unwrap();
    let code = ShortCode::parse(first["short_code"].as_str().unwrap()).unwrap();
    // Let a few adverts go out before anyone joins.
    std::thread::sleep(Duration::from_millis(1500));
    let failed = join(&h2, &wrong(code, 1));
    assert_eq!(error_kind(&failed), "wrong-code", "{}", failed.stdout);
    let joined = Localpair::on(&h2)
        .unwrap()
        .env("RUST_LOG", "debug")
        .config(QUICK_JOIN)
        .unwrap()
        .args(["--json", "join", "--short"])
        .stdin_piped()
        .start()
        .unwrap();
    let mut joined = joined;
    {
        use std::io::Write as _;
        let mut stdin = joined.child().stdin.take().unwrap();
        writeln!(stdin, "{code}").unwrap();
    }
    let j = joined.next_json(STEP).unwrap();
    assert_eq!(j["paired"], true, "{}", joined.stderr());
    let (_, joiner_log) = joined.finish(STEP).unwrap();
    let (h, ok, host_log) = host_result(running);
    assert!(ok && h["paired"] == true, "{h}");
    let pcap = capture.stop().unwrap();
    assert!(pcap.len() > 2000, "capture too small: {} bytes", pcap.len());
    // The adverts are in the capture: the channel is announced (mDNS TXT `sc`), the secret not.
    assert!(
        contains(&pcap, format!("sc={}", code.channel).as_bytes()),
        "no advert of channel {} in the capture",
        code.channel
    );
    for (name, form) in secret_forms(code) {
        assert!(
            !contains(&pcap, &form),
            "the secret ({name}) is in the capture"
        );
        // Logs: the shown code is printed on stdout, never logged.
        if form.len() >= 7 {
            assert!(
                !contains(host_log.as_bytes(), &form),
                "the secret ({name}) is in the host's log"
            );
            assert!(
                !contains(joiner_log.as_bytes(), &form),
                "the secret ({name}) is in the joiner's log"
            );
        }
    }
}
