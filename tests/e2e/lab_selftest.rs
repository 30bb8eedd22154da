//! Self-tests of the network lab: does the virtual LAN behave like a LAN, and do faults and teardown work?

// clippy.toml allows these inside #[test] functions only; the probes in lab_selftest_util are test code too.
#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use localpair_lab::{ChildGuard, HostSpec, Lab, lab_or_skip};

mod lab_selftest_util;
use lab_selftest_util::{
    NEGATIVE, join_group, netns_exists, received, send_multicast, tcp_works, udp_burst,
    udp_delivered,
};

#[test]
fn two_hosts_reach_each_other() {
    let lab = lab_or_skip!("two_hosts_reach_each_other");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");
    assert_eq!(h1.addr(), Ipv4Addr::new(10, 77, 0, 11));
    assert_eq!(h2.cidr(), "10.77.0.12/24");

    // A socket keeps the namespace it was created in, so the listener is used from the test thread.
    let listener = h1
        .run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("enter h1")
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dest = SocketAddr::from((h1.addr(), port));
    let client = h2
        .spawn(move || -> std::io::Result<SocketAddr> {
            let mut s = TcpStream::connect_timeout(&dest, Duration::from_secs(2))?;
            s.write_all(b"hello from h2")?;
            s.local_addr()
        })
        .expect("spawn in h2");
    let (mut conn, peer) = listener.accept().expect("accept");
    let mut got = String::new();
    conn.read_to_string(&mut got).expect("read");
    assert_eq!(got, "hello from h2");
    assert_eq!(peer.ip(), h2.addr());
    assert_eq!(client.join().expect("client").ip(), h2.addr());
    assert!(udp_delivered(&h2, &h1));
}

#[test]
fn closures_and_their_threads_are_inside_the_host() {
    let lab = lab_or_skip!("closure_threads");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let addr = h1.addr();
    // Binding to the host's address only works inside its namespace; a thread started in the closure inherits it.
    let nested = h1
        .run(move || std::thread::spawn(move || UdpSocket::bind((addr, 0)).map(drop)).join())
        .expect("enter")
        .expect("nested thread");
    assert!(nested.is_ok(), "{nested:?}");
    assert!(
        UdpSocket::bind((addr, 0)).is_err(),
        "the test thread must stay in the root namespace"
    );

    let result = std::panic::catch_unwind(|| h1.run(|| panic!("boom inside the host")));
    assert!(result.is_err(), "a panic inside run must reach the caller");
}

#[test]
fn extra_bridge_has_its_address_and_is_local_only() {
    let lab = lab_or_skip!("extra_bridge");
    let h1 = lab
        .add_host(
            HostSpec::new()
                .extra_bridge("docker0", "172.17.0.1/16")
                .extra_bridge_no_carrier("virbr0", "192.168.122.1/24")
                .extra_unplugged("eth1", "192.168.50.2/24"),
        )
        .expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");

    let docker0 = h1
        .exec(["ip", "-o", "addr", "show", "dev", "docker0"])
        .expect("ip addr");
    assert!(docker0.contains("inet 172.17.0.1/16"), "{docker0}");
    let link = h1
        .exec(["ip", "-o", "link", "show", "dev", "docker0"])
        .expect("ip link");
    assert!(link.contains(",UP"), "bridge must be up: {link}");
    let eth1 = h1
        .exec(["ip", "-o", "link", "show", "dev", "eth1"])
        .expect("ip link");
    assert!(eth1.contains("NO-CARRIER"), "{eth1}");
    let virbr0 = h1
        .exec(["ip", "-d", "-o", "link", "show", "dev", "virbr0"])
        .expect("ip link");
    assert!(
        virbr0.contains("NO-CARRIER") && virbr0.contains("bridge"),
        "{virbr0}"
    );
    assert!(virbr0.contains("02:4c:50:00:01:01"), "{virbr0}");
    let routes = h1.exec(["ip", "route"]).expect("ip route");
    assert!(
        routes.contains(
            "192.168.122.0/24 dev virbr0 proto kernel scope link src 192.168.122.1 linkdown"
        ),
        "{routes}"
    );

    // Whatever the carrier says, both addresses are local: bind and self-connect work.
    for ip in [
        Ipv4Addr::new(172, 17, 0, 1),
        Ipv4Addr::new(192, 168, 122, 1),
        Ipv4Addr::new(192, 168, 50, 2),
    ] {
        let local = h1
            .run(|| -> std::io::Result<()> {
                let l = TcpListener::bind((ip, 0))?;
                TcpStream::connect_timeout(&l.local_addr()?, Duration::from_secs(1)).map(drop)
            })
            .expect("enter");
        assert!(local.is_ok(), "{ip}: {local:?}");
    }
    // ...but a peer cannot reach the bridge address (it goes to the non-existent gateway).
    let from_peer = h2
        .run(|| TcpStream::connect_timeout(&(Ipv4Addr::new(172, 17, 0, 1), 9).into(), NEGATIVE))
        .expect("enter");
    assert!(from_peer.is_err());
}

#[test]
fn default_route_and_multicast_route_follow_the_spec() {
    let lab = lab_or_skip!("routes");
    let with = lab.add_host(HostSpec::new()).expect("with");
    let without = lab
        .add_host(HostSpec::new().default_route(false))
        .expect("without");
    let neither = lab
        .add_host(HostSpec::new().default_route(false).multicast_route(false))
        .expect("neither");

    let routes = with.exec(["ip", "route"]).expect("ip route");
    assert!(
        routes.contains("default via 10.77.0.254 dev eth0 onlink"),
        "{routes}"
    );
    assert!(!routes.contains("224.0.0.0/4"), "{routes}");

    let routes = without.exec(["ip", "route"]).expect("ip route");
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("224.0.0.0/4 dev eth0"), "{routes}");
    assert_eq!(
        without
            .exec(["ip", "route", "show", "default"])
            .expect("ip route"),
        ""
    );

    // Without any route a multicast send has no interface: the surprise the multicast route exists for.
    let err = send_multicast(&neither, 7777).expect_err("no route for multicast");
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
    // And unicast off-link has nowhere to go either.
    let off_link = neither
        .run(|| {
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?
                .send_to(b"x", (Ipv4Addr::new(8, 8, 8, 8), 53))
        })
        .expect("enter");
    assert!(off_link.is_err());
}

#[test]
fn multicast_reaches_the_other_host_until_dropped() {
    let lab = lab_or_skip!("multicast");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");
    let h3 = lab
        .add_host(HostSpec::new().default_route(false))
        .expect("h3 without default route");

    let rx2 = join_group(&h2);
    let port = rx2.local_addr().expect("addr").port();
    send_multicast(&h1, port).expect("send");
    assert!(received(&rx2), "multicast from h1 must reach h2");

    // A host without a default route still sends (and joins) thanks to its 224.0.0.0/4 route.
    send_multicast(&h3, port).expect("send from h3");
    assert!(received(&rx2), "multicast from h3 must reach h2");
    let rx3 = join_group(&h3);
    send_multicast(&h1, rx3.local_addr().expect("addr").port()).expect("send");
    assert!(received(&rx3), "multicast from h1 must reach h3");

    h2.drop_multicast().expect("drop multicast");
    send_multicast(&h1, port).expect("send");
    assert!(!received(&rx2), "drop_multicast on h2 must block it");
    // Unicast is untouched (IPv4 ARP is not IP; IPv6 neighbour discovery is exempt).
    assert!(udp_delivered(&h1, &h2));

    h2.clear_faults().expect("clear");
    send_multicast(&h1, port).expect("send");
    assert!(
        received(&rx2),
        "multicast must flow again after clear_faults"
    );

    // Outbound direction: the sender's own filter stops it (the send itself is refused with EPERM).
    h1.drop_multicast().expect("drop multicast on sender");
    let _ = send_multicast(&h1, port);
    assert!(!received(&rx2));
}

#[test]
fn drop_udp_blocks_udp_but_not_tcp() {
    let lab = lab_or_skip!("drop_udp");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");
    assert!(udp_delivered(&h1, &h2), "baseline");

    h2.drop_udp().expect("drop udp");
    assert!(h2.faults().drop_udp);
    assert!(!udp_delivered(&h1, &h2), "inbound UDP must be dropped");
    assert!(!udp_delivered(&h2, &h1), "outbound UDP must be dropped");
    assert!(tcp_works(&h1, &h2, 0), "TCP must still work");
    // Faults model the network: the host talking to itself is unaffected.
    assert!(udp_delivered(&h2, &h2));

    h2.clear_faults().expect("clear");
    assert!(h2.faults().is_empty());
    assert!(udp_delivered(&h1, &h2), "UDP must flow again");
}

#[test]
fn udp_loss_and_tcp_port_faults() {
    let lab = lab_or_skip!("loss_and_port");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");

    h2.udp_loss(50).expect("loss");
    let rules = h2
        .exec(["nft", "list", "table", "inet", "lab"])
        .expect("nft");
    assert!(rules.contains("numgen random mod 100 < 50"), "{rules}");
    let got = udp_burst(&h1, &h2, 200);
    // Binomial(200, 0.5): 60..=140 is more than 5 standard deviations wide.
    assert!((60..=140).contains(&got), "50% loss delivered {got}/200");

    h2.udp_loss(100).expect("loss");
    assert!(!udp_delivered(&h1, &h2), "100% loss drops everything");
    assert!(h2.udp_loss(101).is_err());
    h2.udp_loss(0).expect("no loss");
    assert!(udp_delivered(&h1, &h2));

    h2.drop_tcp_port(7443).expect("block port");
    assert!(!tcp_works(&h1, &h2, 7443), "blocked port");
    assert!(tcp_works(&h1, &h2, 7444), "other ports still work");
    h2.clear_faults().expect("clear");
    // The nft table is gone, not just emptied.
    assert!(h2.exec(["nft", "list", "table", "inet", "lab"]).is_err());
}

#[test]
fn isolated_ports_cannot_talk() {
    let lab = lab_or_skip!("isolation");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");
    let h3 = lab.add_host(HostSpec::new().isolated(true)).expect("h3");
    assert!(tcp_works(&h1, &h2, 0), "baseline");
    assert!(
        tcp_works(&h1, &h3, 0),
        "isolated may still talk to a non-isolated port"
    );

    h1.set_isolated(true).expect("isolate h1");
    h2.set_isolated(true).expect("isolate h2");
    assert!(
        !tcp_works(&h1, &h2, 0),
        "isolated ports must not reach each other"
    );
    assert!(!udp_delivered(&h2, &h1));
    assert!(!tcp_works(&h1, &h3, 0));

    h2.set_isolated(false).expect("un-isolate h2");
    assert!(tcp_works(&h1, &h2, 0), "traffic must flow again");
}

#[test]
fn unplugged_cable_and_address_change() {
    let lab = lab_or_skip!("link_and_addr");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");

    h2.set_link_up(false).expect("unplug");
    let link = h2
        .exec(["ip", "-o", "link", "show", "eth0"])
        .expect("ip link");
    assert!(link.contains("NO-CARRIER"), "{link}");
    assert!(!udp_delivered(&h1, &h2));
    h2.set_link_up(true).expect("plug");

    h2.move_to("10.77.0.99/24").expect("move");
    assert_eq!(h2.addr(), Ipv4Addr::new(10, 77, 0, 99));
    let addrs = h2
        .exec(["ip", "-o", "-4", "addr", "show", "eth0"])
        .expect("ip addr");
    assert!(
        addrs.contains("10.77.0.99/24") && !addrs.contains("10.77.0.12"),
        "{addrs}"
    );
    let routes = h2.exec(["ip", "route"]).expect("ip route");
    assert!(
        routes.contains("default via 10.77.0.254"),
        "routes restored: {routes}"
    );
    assert!(tcp_works(&h1, &h2, 0));

    // Another subnet: the hosts no longer share a prefix, so h1 sends to its (absent) gateway.
    h2.move_to("10.78.0.5/24").expect("move to other subnet");
    assert!(!tcp_works(&h1, &h2, 0));
    assert!(h2.move_to("10.78.0.5").is_err());
}

#[test]
fn ipv6_ula_and_link_local() {
    let lab = lab_or_skip!("ipv6");
    let h1 = lab.add_host(HostSpec::new().ipv6_ula(true)).expect("h1");
    let h2 = lab.add_host(HostSpec::new().ipv6_ula(true)).expect("h2");
    assert_eq!(
        h2.ula(),
        Some("fd77::12".parse::<Ipv6Addr>().expect("addr"))
    );
    let ll = h1.link_local_v6().expect("ip").expect("link-local address");
    assert!(ll.is_unicast_link_local(), "{ll}");

    let listener = h2
        .run(|| TcpListener::bind(("::", 0)))
        .expect("enter")
        .expect("bind");
    let dest = SocketAddr::from((
        h2.ula().expect("ula"),
        listener.local_addr().expect("a").port(),
    ));
    // No DAD wait: the lab turns DAD off, so the address is usable at once.
    let ok = h1
        .run(|| TcpStream::connect_timeout(&dest, Duration::from_secs(2)).map(drop))
        .expect("enter");
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn commands_run_inside_and_guards_kill() {
    let lab = lab_or_skip!("commands");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let json = h1.exec(["ip", "-j", "addr"]).expect("exec");
    assert!(json.contains("10.77.0.11"), "{json}");
    let err = h1
        .exec(["ip", "route", "get", "nonsense"])
        .expect_err("must fail");
    assert!(err.to_string().contains("ip netns exec"), "{err}");

    let mut cmd = h1.command("sleep");
    cmd.arg("30").stdout(Stdio::null());
    let guard = ChildGuard::spawn(&mut cmd).expect("spawn");
    let pid = guard.id();
    // `ip netns exec` enters the namespace right after it starts: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    let ns = loop {
        let out = std::process::Command::new("ip")
            .args(["netns", "identify", &pid.to_string()])
            .output()
            .expect("identify");
        let ns = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if ns == h1.netns() || Instant::now() > deadline {
            break ns;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(ns, h1.netns());
    drop(guard);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "guard must kill and reap"
    );

    let quick = ChildGuard::spawn(
        h1.command("sh")
            .args(["-c", "echo out; sleep 5"])
            .stdout(Stdio::piped()),
    )
    .expect("spawn");
    let start = Instant::now();
    let err = quick
        .wait_with_output_timeout(Duration::from_millis(200))
        .expect_err("times out");
    assert!(err.to_string().contains("did not exit"), "{err}");
    // The orphaned `sleep` still holds the pipe; the wait must not last until it exits.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    let done = ChildGuard::spawn(
        h1.command("sh")
            .args(["-c", "echo out; echo err >&2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("spawn")
    .wait_with_output_timeout(Duration::from_secs(5))
    .expect("exits");
    assert!(done.status.success());
    assert_eq!(done.stdout, b"out\n");
    assert_eq!(done.stderr, b"err\n");
}

#[test]
fn capture_sees_the_wire() {
    if Lab::available().is_ok()
        && std::process::Command::new("tcpdump")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "tcpdump is required in CI (apt-get install tcpdump)"
        );
        eprintln!("SKIP capture_sees_the_wire: tcpdump not installed");
        return;
    }
    let lab = lab_or_skip!("capture");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    let h2 = lab.add_host(HostSpec::new()).expect("h2");
    let capture = h2.capture("eth0").expect("tcpdump");
    let marker = b"lab-capture-marker-4711";
    let rx = h2
        .run(|| UdpSocket::bind((h2.addr(), 0)))
        .expect("enter")
        .expect("bind");
    let dest = rx.local_addr().expect("addr");
    h1.run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?.send_to(marker, dest))
        .expect("enter")
        .expect("send");
    let pcap = capture.stop().expect("stop");
    assert!(pcap.len() > 24, "pcap header plus packets");
    assert!(
        pcap.windows(marker.len()).any(|w| w == marker),
        "marker on the wire"
    );
}

#[test]
fn namespaces_are_removed_after_drop_and_panic() {
    let lab = lab_or_skip!("teardown");
    let h1 = lab.add_host(HostSpec::new()).expect("h1");
    // A process left running inside must not keep anything alive.
    let mut stray = h1.command("sleep").arg("60").spawn().expect("spawn");
    // Inside the namespace once `ip netns exec` has become `sleep` (on a busy machine that takes a
    // while; before it, the process is not in the namespace yet and nothing would find it there).
    localpair_lab::wait_for_exec(stray.id(), "sleep", Duration::from_secs(5))
        .expect("the stray process starts");
    let names = lab.namespaces();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| netns_exists(n)));
    drop(lab);
    assert!(names.iter().all(|n| !netns_exists(n)), "{names:?}");
    let status = stray.wait().expect("wait");
    assert!(!status.success(), "the stray process must have been killed");

    let seen = Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::new("teardown_panic").expect("lab");
        lab.add_hosts(2).expect("hosts");
        seen.lock().expect("lock").extend(lab.namespaces());
        panic!("test failure inside a lab");
    });
    assert!(result.is_err());
    let seen = seen.into_inner().expect("lock");
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|n| !netns_exists(n)), "{seen:?}");
}

#[test]
fn three_host_lab_is_quick() {
    // Warm up the once-per-process checks (root, tools, probe namespace) so they are measured separately.
    let cold = Instant::now();
    let lab = lab_or_skip!("timing");
    drop(lab);
    eprintln!(
        "lab timing: first lab (availability probe + empty lab) {:?}",
        cold.elapsed()
    );
    let start = Instant::now();
    let lab = Lab::new("timing").expect("lab");
    lab.add_hosts(3).expect("hosts");
    let built = start.elapsed();
    drop(lab);
    let total = start.elapsed();
    eprintln!("lab timing: new + 3 hosts {built:?}, with teardown {total:?}");
    assert!(total < Duration::from_secs(3), "{total:?}");
}

#[test]
fn bad_specs_are_rejected() {
    let lab = lab_or_skip!("bad_specs");
    let err = lab
        .add_host(HostSpec::new().iface("a_very_long_interface_name"))
        .expect_err("too long");
    assert!(err.to_string().contains("interface name"), "{err}");
    assert!(
        lab.add_host(HostSpec::new().addr("10.77.0.300/24"))
            .is_err()
    );
    let h = lab.add_host(HostSpec::new().name("server")).expect("valid");
    assert_eq!(h.name(), "server");
    assert!(h.exec(Vec::<&str>::new()).is_err());
}
