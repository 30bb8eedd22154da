//! The mDNS discoverer on a virtual LAN (network namespaces): discovery between our own nodes,
//! interface restriction, multicast loss, the query rate on the wire, and interoperability with
//! python-zeroconf and avahi, each both ways.
//!
//! Every mdns-sd daemon here runs inside a lab host: a daemon in the root namespace would
//! multicast on the machine's real interfaces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod lab_util;

use std::time::Duration;

use localpair_core::FailureKind;
use localpair_lab::avahi::{self, Avahi};
use localpair_lab::{CLI_TIMEOUT, HostSpec, Localpair, lab_or_skip, zeroconf};
use localpair_mdns::Config;

use lab_util::{Publisher, Service, mdns_node, mdns_packets, random_fingerprint};
use localpair_lab::discovery::Node;

const FIND: Duration = Duration::from_secs(10);

#[test]
fn three_hosts_find_each_other() {
    let lab = lab_or_skip!("mdns_three_hosts");
    let hosts = lab.add_hosts(3).unwrap();
    let nodes: Vec<Node> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| mdns_node(h, &format!("node {i}"), Config::default(), ""))
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        for (j, other) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            // On the LAN, at the peer's confirmation port (IPv4 may come in a later sighting
            // than link-local IPv6: separate packets).
            let want = std::net::SocketAddr::from((hosts[j].addr(), other.port));
            let peer = node
                .wait_until(FIND, |p| {
                    p.fingerprint == other.fingerprint && p.addrs.contains(&want)
                })
                .unwrap_or_else(|| panic!("node {i} did not find node {j}\n{}", node.logs()));
            assert_eq!(peer.name, format!("node {j}"));
            assert_eq!(peer.id, other.fingerprint.device_id());
            assert_eq!(
                peer.addrs.first(),
                Some(&want),
                "IPv4 first: {:?}",
                peer.addrs
            );
            assert_eq!(peer.pairing_port, None);
        }
    }
    for host in &hosts {
        assert!(
            lab_util::mdns_sockets(host) > 0,
            "no mDNS socket in {}",
            host.name()
        );
    }
    for node in nodes {
        let stop = node.stop_timed();
        assert!(stop.result.is_ok(), "{:?}", stop.result);
        // The chain aborts a discoverer 300 ms after the stop; we must be done before.
        assert!(
            stop.took < Duration::from_millis(300),
            "stop took {:?}",
            stop.took
        );
    }
    for host in &hosts {
        assert!(
            lab_util::mdns_sockets_closed(host, Duration::from_secs(1)),
            "mDNS socket left open in {}",
            host.name()
        );
    }
}

#[test]
fn aborted_session_still_shuts_the_daemon_down() {
    use localpair_core::PeerDiscoverer;
    use localpair_lab::discovery::{context, sink};

    let lab = lab_or_skip!("mdns_abort");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let (running_tx, running_rx) = std::sync::mpsc::channel();
    let (abort_tx, abort_rx) = tokio::sync::oneshot::channel::<()>();
    let session = h1
        .spawn(move || {
            localpair_lab::runtime().block_on(async move {
                let ctx = context("aborted", "").unwrap();
                // Never cancelled: the session only ends by being aborted, as the chain does with
                // a discoverer that overstays its stop.
                let (sink, _sightings) = sink(tokio_util::sync::CancellationToken::new());
                let task = tokio::spawn(async move {
                    localpair_mdns::Mdns::default().discover(&ctx, sink).await
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
                running_tx.send(()).unwrap();
                let _ = abort_rx.await;
                task.abort();
                assert!(task.await.unwrap_err().is_cancelled());
            });
        })
        .unwrap();
    running_rx.recv_timeout(FIND).unwrap();
    assert!(lab_util::mdns_sockets(&h1) > 0);
    abort_tx.send(()).unwrap();
    session.join();
    assert!(
        lab_util::mdns_sockets_closed(&h1, Duration::from_secs(1)),
        "the daemon outlived its aborted session"
    );
}

#[test]
fn advert_changes_are_announced() {
    let lab = lab_or_skip!("mdns_advert");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let a = mdns_node(&h1, "host", Config::default(), "");
    let b = mdns_node(&h2, "joiner", Config::default(), "");
    let (first, _) = b.wait_for(a.fingerprint, FIND).expect("found");
    assert_eq!(first.pairing_port, None);
    a.set_advert(localpair_core::Advert::pairing(4711, Some([0xa5; 8])));
    let updated = b
        .wait_until(FIND, |p| {
            p.fingerprint == a.fingerprint && p.pairing_port.is_some()
        })
        .unwrap_or_else(|| panic!("no updated sighting\n{}", b.logs()));
    assert_eq!(updated.pairing_port, Some(4711));
    assert_eq!(updated.session_tag, Some([0xa5; 8]));
}

#[test]
fn ipv6_off_reports_ipv4_only() {
    let lab = lab_or_skip!("mdns_ipv4_only");
    let h1 = lab.add_host(HostSpec::new().ipv6_ula(true)).unwrap();
    let h2 = lab.add_host(HostSpec::new().ipv6_ula(true)).unwrap();
    let mut config = Config::default();
    config.ipv6 = false;
    let a = mdns_node(&h1, "a", config, "");
    let b = mdns_node(&h2, "b", Config::default(), "");
    let (peer, _) = a.wait_for(b.fingerprint, FIND).expect("a finds b");
    // Give b's AAAA records time to arrive, if they were going to be reported.
    std::thread::sleep(Duration::from_secs(1));
    let last = a
        .wait_until(Duration::ZERO, |p| p.fingerprint == b.fingerprint)
        .unwrap();
    for p in [peer, last] {
        assert_eq!(
            p.addrs,
            vec![std::net::SocketAddr::from((h2.addr(), b.port))]
        );
    }
    // With IPv6 off, a announces no AAAA either: b (IPv6 on) sees a over IPv4 only.
    let seen_by_b = b
        .wait_until(FIND, |p| p.fingerprint == a.fingerprint)
        .expect("b finds a");
    assert!(
        seen_by_b.addrs.iter().all(std::net::SocketAddr::is_ipv4),
        "{:?}",
        seen_by_b.addrs
    );
    // With IPv6 on at both ends, the ULA is reported beside IPv4.
    let c = mdns_node(&h1, "c", Config::default(), "");
    let ula = std::net::SocketAddr::from((h1.ula().unwrap(), c.port));
    assert!(
        b.wait_until(FIND, |p| p.fingerprint == c.fingerprint
            && p.addrs.contains(&ula))
            .is_some(),
        "no ULA sighting\n{}",
        b.logs()
    );
}

#[test]
fn host_with_multicast_dropped_finds_nothing_and_says_why() {
    let lab = lab_or_skip!("mdns_mcast_drop");
    let hosts = lab.add_hosts(3).unwrap();
    hosts[2].drop_multicast().unwrap();
    let nodes: Vec<Node> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| mdns_node(h, &format!("n{i}"), Config::default(), ""))
        .collect();
    assert!(nodes[0].wait_for(nodes[1].fingerprint, FIND).is_some());
    assert!(nodes[1].wait_for(nodes[0].fingerprint, FIND).is_some());
    // Long enough for several queries and every announcement of the others.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        nodes[0]
            .wait_for(nodes[2].fingerprint, Duration::ZERO)
            .is_none()
    );
    let mut nodes = nodes.into_iter();
    let (n0, n1, n2) = (
        nodes.next().unwrap(),
        nodes.next().unwrap(),
        nodes.next().unwrap(),
    );
    assert!(n2.seen().is_empty(), "{:?}", n2.seen());
    let logs = n2.logs();
    let err = n2
        .stop()
        .expect_err("a host that heard nothing must explain it");
    assert_eq!(err.kind, FailureKind::NothingFound, "{err:?}\n{logs}");
    for part in [
        "browsed _localpair._tcp.local. on eth0",
        "0 other services seen",
        "not even heard back",
        "multicast may be filtered",
    ] {
        assert!(
            err.message.contains(part),
            "missing {part:?} in: {}",
            err.message
        );
    }
    eprintln!("error of the muted host: {}", err.message);
    assert!(n0.stop().is_ok());
    assert!(n1.stop().is_ok());
}

#[test]
fn only_permitted_interfaces_are_used() {
    let lab = lab_or_skip!("mdns_ifaces");
    let spec = || HostSpec::new().extra_bridge("docker0", "172.17.0.1/16");
    let h1 = lab.add_host(spec()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let other = mdns_node(&h2, "other", Config::default(), "");

    // Positive control: with docker0 permitted, mDNS goes out on it.
    let capture = h1.capture("docker0").unwrap();
    let open = mdns_node(&h1, "open", Config::default(), "");
    assert!(open.wait_for(other.fingerprint, FIND).is_some());
    std::thread::sleep(Duration::from_secs(1));
    open.stop().unwrap();
    let sent = mdns_packets(&capture.stop().unwrap());
    assert!(sent > 0, "control: expected mDNS on the permitted docker0");

    let capture = h1.capture("docker0").unwrap();
    let node = mdns_node(
        &h1,
        "restricted",
        Config::default(),
        "[interfaces]\ndeny = [\"docker*\"]\n",
    );
    // A resolution can come with the AAAA record before the A record (they travel in separate
    // packets); the IPv4 address follows in a later sighting.
    let lan = std::net::SocketAddr::from((h2.addr(), other.port));
    let peer = node
        .wait_until(FIND, |p| {
            p.fingerprint == other.fingerprint && p.addrs.contains(&lan)
        })
        .unwrap_or_else(|| panic!("no sighting with {lan}: {:?}\n{}", node.seen(), node.logs()));
    assert!(
        peer.addrs.iter().all(|a| match a {
            std::net::SocketAddr::V4(v4) => v4.ip() == &h2.addr(),
            std::net::SocketAddr::V6(v6) => v6.scope_id() != 0,
        }),
        "{:?}",
        peer.addrs
    );
    // The peer sees only our LAN address, not the bridge's.
    let us = other
        .wait_until(FIND, |p| {
            p.fingerprint == node.fingerprint && p.addrs.iter().any(|a| a.is_ipv4())
        })
        .expect("other finds us");
    assert!(
        us.addrs
            .iter()
            .all(|a| a.ip() != "172.17.0.1".parse::<std::net::IpAddr>().unwrap()),
        "{:?}",
        us.addrs
    );
    std::thread::sleep(Duration::from_secs(1));
    node.stop().unwrap();
    let sent = mdns_packets(&capture.stop().unwrap());
    assert_eq!(sent, 0, "mDNS packets on the denied docker0");
    other.stop().unwrap();
}

/// RFC 6762 §5.2: the first query may go out at once (we send it without the optional jitter),
/// but the interval between the first two queries for a question must be at least one second and
/// the intervals after it must at least double. Checked on the wire, per address family.
#[test]
fn queries_keep_the_rfc_6762_spacing() {
    let lab = lab_or_skip!("mdns_query_spacing");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let capture = h1.capture(h1.iface()).unwrap();
    let node = mdns_node(&h1, "alone", Config::default(), "");
    // Queries at 0, 1 and 3 s; the fourth is due at 7 s.
    std::thread::sleep(Duration::from_millis(3500));
    let logs = node.logs();
    assert!(node.stop().is_err(), "nobody else is on this LAN");
    let sent = capture.stop().unwrap();
    for family in ["IPv4", "IPv6"] {
        let times: Vec<std::time::SystemTime> = localpair_lab::pcap::udp_datagrams(&sent)
            .into_iter()
            .filter(|d| {
                d.dst.port() == 5353
                    && d.src.is_ipv4() == (family == "IPv4")
                    && !d.is_dns_response()
                    && d.first_question() == Some((localpair_mdns::SERVICE_TYPE.to_owned(), 12))
            })
            .map(|d| d.at)
            .collect();
        assert_eq!(times.len(), 3, "{family} PTR queries at {times:?}\n{logs}");
        let gaps: Vec<Duration> = times
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).unwrap())
            .collect();
        // The capture's timestamps and the daemon's timer each round by up to a millisecond.
        let slack = Duration::from_millis(5);
        assert!(
            gaps[0] + slack >= Duration::from_secs(1),
            "{family}: {gaps:?}"
        );
        assert!(gaps[1] + slack >= gaps[0] * 2, "{family}: {gaps:?}");
    }
}

#[test]
fn zeroconf_browser_sees_our_service() {
    if !zeroconf::or_skip("zeroconf_browser_sees_our_service") {
        return;
    }
    let lab = lab_or_skip!("mdns_zc_browse");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let node = mdns_node(&h1, "Kitchen laptop", Config::default(), "");
    node.set_advert(localpair_core::Advert::pairing(5000, Some([0x11; 8])));
    let seen = zeroconf::browse(&h2, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("python-zeroconf saw nothing: {e}\n{}", node.logs()));
    let id = node.fingerprint.device_id().to_string();
    assert_eq!(
        seen["name"],
        format!("Kitchen laptop {id}._localpair._tcp.local.")
    );
    assert_eq!(seen["port"], node.port);
    assert_eq!(seen["server"], format!("lp-{id}.local."));
    assert_eq!(
        seen["addresses"],
        serde_json::json!([h1.addr().to_string()])
    );
    let txt = &seen["txt"];
    assert_eq!(txt["v"], "1");
    assert_eq!(txt["id"], id);
    assert_eq!(txt["fp"], node.fingerprint.to_string());
    assert_eq!(txt["name"], "Kitchen laptop");
    // The advert may land before or after the browser's first look; either is a valid record.
    if let Some(pp) = txt.get("pp") {
        assert_eq!(pp, "5000");
        assert_eq!(txt["tag"], "1111111111111111");
    }
    // python-zeroconf only browses, so our session itself finds nobody, and says so.
    let err = node.stop().expect_err("nobody else announced");
    assert!(
        err.message.contains("our own announcement was heard back"),
        "{}",
        err.message
    );
}

#[test]
fn zeroconf_service_is_discovered() {
    if !zeroconf::or_skip("zeroconf_service_is_discovered") {
        return;
    }
    let lab = lab_or_skip!("mdns_zc_publish");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let fp = random_fingerprint();
    let mut valid = Service::valid("phone", fp, &h2.addr().to_string(), 4242);
    // A stray address off every subnet we have: must not reach the peer's address list.
    valid.addrs.push("192.0.2.77".to_owned());
    valid.txt.push(("pp".into(), "4343".into()));
    valid.txt.push(("tag".into(), "00112233445566ff".into()));
    let _publisher = Publisher::start(&h2, &[valid]);
    let node = mdns_node(&h1, "us", Config::default(), "");
    let (peer, _) = node
        .wait_for(fp, FIND)
        .unwrap_or_else(|| panic!("zeroconf's service not found\n{}", node.logs()));
    assert_eq!(peer.name, "phone");
    assert_eq!(
        peer.addrs,
        vec![std::net::SocketAddr::from((h2.addr(), 4242))]
    );
    assert_eq!(peer.pairing_port, Some(4343));
    assert_eq!(
        peer.session_tag,
        Some([0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xff])
    );
    node.stop().unwrap();
}

#[test]
fn malformed_zeroconf_txt_is_ignored_and_explained() {
    if !zeroconf::or_skip("malformed_zeroconf_txt_is_ignored_and_explained") {
        return;
    }
    let lab = lab_or_skip!("mdns_zc_bad");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let h3 = lab.add_host(HostSpec::new()).unwrap();
    let addr = h2.addr().to_string();
    let bad = Service::malformed(&addr);
    let bad_count = bad.len();
    let _bad = Publisher::start(&h2, &bad);

    // Only malformed services around: nothing is reported and the error counts them.
    let alone = mdns_node(&h1, "alone", Config::default(), "");
    std::thread::sleep(Duration::from_secs(4));
    assert!(alone.seen().is_empty(), "{:?}", alone.seen());
    let logs = alone.logs();
    let err = alone.stop().expect_err("nothing valid was found");
    assert!(
        err.message.contains(&format!("{bad_count} rejected")),
        "{}\n{logs}",
        err.message
    );
    assert!(
        err.message.contains("TXT records were rejected"),
        "{}",
        err.message
    );
    assert_eq!(
        logs.matches("ignoring a service of our type").count(),
        bad_count,
        "one log line per malformed service:\n{logs}"
    );

    // A valid one beside them is found all the same.
    let fp = random_fingerprint();
    let _valid = Publisher::start(
        &h3,
        &[Service::valid("good", fp, &h3.addr().to_string(), 4000)],
    );
    let node = mdns_node(&h1, "finder", Config::default(), "");
    let (peer, _) = node
        .wait_for(fp, FIND)
        .unwrap_or_else(|| panic!("valid service not found\n{}", node.logs()));
    assert_eq!(peer.name, "good");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        node.seen().len(),
        1,
        "only the valid one: {:?}",
        node.seen()
    );
    assert!(node.logs().contains("ignoring a service of our type"));
    node.stop().unwrap();
}

/// `localpair discover` with only `mdns`.
const MDNS_ONLY: &str = "[discover]\norder = [\"mdns\"]\n";

#[test]
fn avahi_service_is_discovered() {
    if !avahi::or_skip("avahi_service_is_discovered") {
        return;
    }
    let lab = lab_or_skip!("mdns_avahi_publish");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let fp = random_fingerprint();
    // Written out key by key, as another implementation would from the crate docs.
    let service = avahi::StaticService {
        name: "avahi phone".to_owned(),
        service_type: "_localpair._tcp".to_owned(),
        port: 4242,
        txt: vec![
            "v=1".to_owned(),
            format!("id={}", fp.device_id()),
            format!("fp={fp}"),
            "name=avahi phone".to_owned(),
            "pp=4343".to_owned(),
            "tag=00112233445566ff".to_owned(),
        ],
    };
    let avahi = Avahi::start(&h2, &[service]).unwrap();
    let report = Localpair::on(&h1)
        .unwrap()
        .config(MDNS_ONLY)
        .unwrap()
        .args(["--json", "discover", "--count", "1", "--timeout", "10"])
        .ok_json(CLI_TIMEOUT)
        .unwrap_or_else(|e| panic!("avahi's service not found: {e}\n{}", avahi.log()));
    let peer = &report["peers"][0];
    assert_eq!(peer["fingerprint"], fp.to_string(), "{report:#}");
    assert_eq!(peer["name"], "avahi phone");
    assert_eq!(peer["strategy"], "mdns");
    // avahi also publishes its link-local IPv6 address (over IPv4 too); IPv4 comes first.
    let addrs: Vec<&str> = peer["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(
        addrs.first().copied(),
        Some(&*format!("{}:4242", h2.addr())),
        "{report:#}"
    );
    assert!(
        addrs[1..]
            .iter()
            .all(|a| a.starts_with("[fe80::") && a.ends_with("]:4242")),
        "{addrs:?}"
    );
    assert_eq!(peer["pairing_port"], 4343);
    assert_eq!(peer["session_tag"], "00112233445566ff");
}

#[test]
fn avahi_browser_sees_our_service() {
    if !avahi::or_skip("avahi_browser_sees_our_service") {
        return;
    }
    let lab = lab_or_skip!("mdns_avahi_browse");
    let h1 = lab.add_host(HostSpec::new()).unwrap();
    let h2 = lab.add_host(HostSpec::new()).unwrap();
    let avahi = Avahi::start(&h2, &[]).unwrap();
    let ours = Localpair::on(&h1)
        .unwrap()
        .config(MDNS_ONLY)
        .unwrap()
        .env("LOCALPAIR_DEVICE__NAME", "Kitchen laptop")
        .args(["discover", "--timeout", "60"])
        .spawn()
        .unwrap();
    let seen = avahi
        .browse_until("_localpair._tcp", FIND, |b| {
            b.name.starts_with("Kitchen laptop ")
        })
        .unwrap();
    // What avahi resolved is a valid record of ours, read by our own parser.
    let txt =
        localpair_mdns::Txt::parse(seen.txt.iter().map(|entry| match entry.split_once('=') {
            Some((key, value)) => (key, Some(value.as_bytes())),
            None => (entry.as_str(), None),
        }))
        .unwrap_or_else(|e| panic!("avahi saw an invalid TXT {:?}: {e}", seen.txt));
    let id = txt.device_id().to_string();
    assert_eq!(txt.name, "Kitchen laptop");
    assert_eq!(seen.name, format!("Kitchen laptop {id}"));
    assert_eq!(seen.host_name, format!("lp-{id}.local"));
    assert_eq!(seen.address, h1.addr().to_string());
    assert_eq!(seen.interface, h2.iface());
    assert_eq!(seen.txt_value("v"), Some("1"));
    assert_eq!(
        seen.port,
        localpair_core::config::ConfirmConfig::default().port,
        "{seen:?}"
    );
    drop(ours);
}
