//! Issue 11, item 4, in the lab: the mDNS responder must not reflect. A query from another
//! subnet (routed to the victim's unicast address) gets nothing back, legacy unicast queries
//! (source port other than 5353) from the link are answered but limited per source and in total,
//! and the genuine discovery goes on meanwhile. Numbers are printed as `MEASURE` lines
//! (`--nocapture`).
//!
//! The limits asserted are those of the patched mdns-sd (`third_party/mdns-sd/PATCH.md`): 4
//! legacy unicast responses per source address and 32 in total per 1 s window.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[allow(dead_code)]
mod lab_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use lab_util::mdns_node;
use localpair_lab::{
    Counters, Host, HostSpec, Localpair, NsThread, Running, Usage, lab_or_skip, wait_for_exec,
};
use localpair_mdns::Config;

/// `LEGACY_PER_SOURCE` of the patched mdns-sd.
const PER_SOURCE: usize = 4;
/// `LEGACY_TOTAL` of the patched mdns-sd.
const TOTAL: usize = 32;
/// How long each attack runs.
const ATTACK: Duration = Duration::from_secs(5);
/// How long a querier keeps listening after its last query.
const LINGER: Duration = Duration::from_secs(1);
/// The victim's LAN address (the first host of the lab).
const VICTIM: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);

/// A legacy unicast query as a one-shot resolver sends it: 39 bytes, one question, PTR
/// `_localpair._tcp.local.` class IN.
fn legacy_query() -> Vec<u8> {
    let mut q = vec![0x4c, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["_localpair", "_tcp", "local"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 12, 0, 1]);
    assert_eq!(q.len(), 39);
    q
}

/// What one querier sent and got back.
#[derive(Debug, Default)]
struct Exchange {
    sent: usize,
    /// (index of the source address, responder, UDP payload bytes) of every datagram back.
    got: Vec<(usize, IpAddr, usize)>,
}

impl Exchange {
    fn from(&self, responder: Ipv4Addr) -> Vec<(usize, usize)> {
        self.got
            .iter()
            .filter(|(_, ip, _)| *ip == IpAddr::V4(responder))
            .map(|(i, _, len)| (*i, *len))
            .collect()
    }
}

/// Sends the legacy query from each of `sources` (a socket each, ephemeral port) to `to`,
/// `rate` times a second per source for [`ATTACK`], and collects what comes back until
/// [`LINGER`] after the last one.
fn query_flood(
    host: &Host,
    sources: Vec<Ipv4Addr>,
    to: SocketAddr,
    rate: u32,
) -> NsThread<Exchange> {
    host.spawn(move || {
        let query = legacy_query();
        let sockets: Vec<UdpSocket> = sources
            .iter()
            .map(|ip| {
                let s = UdpSocket::bind((*ip, 0)).unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        let period = Duration::from_secs(1) / rate;
        let start = Instant::now();
        let (end, done) = (start + ATTACK, start + ATTACK + LINGER);
        let mut next = start;
        let mut out = Exchange::default();
        let mut buf = vec![0u8; 9000];
        while Instant::now() < done {
            if Instant::now() < end && Instant::now() >= next {
                for socket in &sockets {
                    if socket.send_to(&query, to).is_ok() {
                        out.sent += 1;
                    }
                }
                next += period;
            }
            for (i, socket) in sockets.iter().enumerate() {
                while let Ok((len, from)) = socket.recv_from(&mut buf) {
                    out.got.push((i, from.ip(), len));
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        out
    })
    .unwrap()
}

/// How long until the victim's `discover` reports a device called `name` (its progress lines on
/// stderr), counted from now; `None` after 10 s.
fn found(victim: &Running, name: &str) -> Option<Duration> {
    let started = Instant::now();
    let line = format!("found {name} [");
    while started.elapsed() < Duration::from_secs(10) {
        if victim.stderr().contains(&line) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn measure(label: &str, rate: u32, sources: usize, ex: &Exchange, victim_out: usize) {
    let back = ex.from(VICTIM);
    let bytes = back.first().map_or(0, |(_, len)| *len);
    eprintln!(
        "MEASURE mdns {label}: {} queries of 39 B in ({} source(s) x {rate}/s for {:?}); \
         victim sent back {} datagrams of {bytes} B (counted at the victim: {victim_out})",
        ex.sent,
        sources,
        ATTACK,
        back.len(),
    );
}

#[test]
fn no_answer_off_link_and_legacy_answers_are_limited() {
    let lab = lab_or_skip!("mdns_reflection");
    let victim = lab.add_host(HostSpec::new().name("victim")).unwrap();
    assert_eq!(victim.addr(), VICTIM);
    let genuine = lab.add_host(HostSpec::new().name("genuine")).unwrap();
    let attacker = lab.add_host(HostSpec::new().name("attacker")).unwrap();
    let latecomer = lab.add_host(HostSpec::new().name("latecomer")).unwrap();
    let control = lab.add_host(HostSpec::new().name("control")).unwrap();
    // A router between the LAN and 10.88.0.0/24, where the remote attacker lives; the LAN
    // hosts' default route (10.77.0.254) leads to it.
    let router = lab
        .add_host(
            HostSpec::new()
                .name("router")
                .addr("10.77.0.254/24")
                .default_route(false)
                .extra_lan("eth1", "10.88.0.1/24", "wan88"),
        )
        .unwrap();
    router
        .exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    let remote = lab
        .add_host(
            HostSpec::new()
                .name("remote")
                .segment("wan88")
                .addr("10.88.0.10/24")
                .gateway(Ipv4Addr::new(10, 88, 0, 1)),
        )
        .unwrap();
    let aliases: Vec<Ipv4Addr> = (100..140).map(|n| Ipv4Addr::new(10, 77, 0, n)).collect();
    for ip in &aliases {
        attacker
            .exec(["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"])
            .unwrap();
    }

    // The routed path works both ways: the remote host reaches a listener on the victim.
    let listener = victim
        .run(|| std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 7000)))
        .unwrap()
        .unwrap();
    let routed = remote
        .run(move || {
            TcpStream::connect_timeout(&SocketAddr::from((VICTIM, 7000)), Duration::from_secs(2))
                .is_ok()
        })
        .unwrap();
    assert!(routed, "the remote attacker cannot reach the victim at all");
    drop(listener);

    // The victim runs the real binary (mDNS alone), its own process: its memory and CPU time
    // are its own. The other devices run in this process.
    let mut v = Localpair::on(&victim)
        .unwrap()
        .config("[discover]\norder = [\"mdns\"]\n")
        .unwrap()
        .args(["--json", "discover", "--timeout", "60"])
        .start()
        .unwrap();
    let pid = v.child().id();
    wait_for_exec(pid, "localpair", Duration::from_secs(5)).unwrap();
    let g = mdns_node(&genuine, "genuine", Config::default(), "");
    let baseline =
        found(&v, "genuine").unwrap_or_else(|| panic!("no baseline discovery\n{}", v.stderr()));
    eprintln!("MEASURE mdns baseline discovery: {baseline:?}");

    // For comparison: a device started while nobody attacks.
    let _quiet = mdns_node(&control, "control", Config::default(), "");
    let quiet_after = found(&v, "control")
        .unwrap_or_else(|| panic!("the control device was not found\n{}", v.stderr()));
    eprintln!("MEASURE mdns discovery of a device started without attack: {quiet_after:?}");

    let counters = Counters::new(&victim).unwrap();
    counters
        .inbound("in-remote", "ip saddr 10.88.0.0/24 udp dport 5353")
        .unwrap();
    counters
        .outbound("out-remote", "ip daddr 10.88.0.0/24")
        .unwrap();
    counters
        .outbound("out-local", "ip daddr 10.77.0.13 udp sport 5353")
        .unwrap();
    counters
        .outbound(
            "out-spoofed",
            "ip daddr 10.77.0.100-10.77.0.139 udp sport 5353",
        )
        .unwrap();

    let before = Usage::of(pid).unwrap();
    let attack_started = Instant::now();
    let group = SocketAddr::from(([224, 0, 0, 251], 5353));
    let (remote_rate, local_rate, spoof_rate) = (100, 100, 10);
    let off_link = query_flood(
        &remote,
        vec![Ipv4Addr::new(10, 88, 0, 10)],
        SocketAddr::from((VICTIM, 5353)),
        remote_rate,
    );
    let on_link = query_flood(&attacker, vec![attacker.addr()], group, local_rate);
    let spoofed = query_flood(&attacker, aliases.clone(), group, spoof_rate);
    // A device that starts during the attack is found as usual.
    std::thread::sleep(Duration::from_secs(1));
    let late = mdns_node(&latecomer, "latecomer", Config::default(), "");
    let late_found = found(&v, "latecomer");
    let (off_link, on_link, spoofed) = (off_link.join(), on_link.join(), spoofed.join());
    let wall = attack_started.elapsed();
    let after = Usage::of(pid).unwrap();
    let late_after = late_found
        .unwrap_or_else(|| panic!("the latecomer was not found under attack\n{}", v.stderr()));
    eprintln!("MEASURE mdns discovery of a device started under attack: {late_after:?}");
    let (grown, cpu) = (
        after.rss_growth_kib(&before),
        after.cpu_share_since(&before, wall),
    );
    eprintln!(
        "MEASURE mdns victim over {wall:.1?} of attacks: RSS {} KiB -> {} KiB (+{grown} KiB), \
         CPU {:.1}% of one core",
        before.rss_kib,
        after.rss_kib,
        cpu * 100.0
    );
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    assert!(cpu < 0.20, "CPU {:.1}% of one core", cpu * 100.0);

    let out_remote = counters.get("out-remote").unwrap();
    let in_remote = counters.get("in-remote").unwrap();
    measure(
        "off-link (routed)",
        remote_rate,
        1,
        &off_link,
        out_remote.packets as usize,
    );
    assert!(
        in_remote.packets > 100,
        "the routed queries did not arrive: {in_remote:?}"
    );
    assert!(
        off_link.got.is_empty(),
        "{} answers to an off-link source",
        off_link.got.len()
    );
    assert_eq!(out_remote.packets, 0, "the victim sent toward 10.88.0.0/24");

    let local_out = counters.get("out-local").unwrap().packets as usize;
    measure("on-link, one source", local_rate, 1, &on_link, local_out);
    let answered = on_link.from(VICTIM).len();
    let window_count = (ATTACK + LINGER).as_secs() as usize + 1;
    assert!(
        answered >= 1,
        "a legacy querier on the link must still get answers"
    );
    assert!(
        answered.max(local_out) <= PER_SOURCE * window_count,
        "{answered} legacy answers to one source ({local_out} sent)"
    );

    let spoofed_out = counters.get("out-spoofed").unwrap().packets as usize;
    measure(
        "on-link, 40 sources",
        spoof_rate,
        aliases.len(),
        &spoofed,
        spoofed_out,
    );
    let back = spoofed.from(VICTIM);
    assert!(
        back.len().max(spoofed_out) + local_out <= TOTAL * window_count,
        "{} ({spoofed_out} sent) in total",
        back.len()
    );
    for (i, alias) in aliases.iter().enumerate() {
        let one = back.iter().filter(|(s, _)| *s == i).count();
        assert!(one <= PER_SOURCE * window_count, "{one} answers to {alias}");
    }
    // The genuine peer still sees the latecomer.
    assert!(
        g.wait_for(late.fingerprint, Duration::from_secs(5))
            .is_some()
    );
}
