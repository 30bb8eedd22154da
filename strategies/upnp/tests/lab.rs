//! The UPnP resolver and port mapping against a real IGD: Debian's miniupnpd in a router
//! namespace of the lab (LAN side on the lab switch, WAN side on a bridge without ports).
//!
//! Every search, SSDP datagram and HTTP request here happens inside lab namespaces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::future::Future;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use igd_next::GetGenericPortMappingEntryError;
use localpair_core::config::{Settings, Source};
use localpair_core::{Confirmation, Context, FailureKind, ResolverChain, StrategyError};
use localpair_lab::stats::Summary;
use localpair_lab::{DEFAULT_GATEWAY, HostSpec, Lab, LabError, Router, RouterSpec, lab_or_skip};
use localpair_upnp::{Config, Error, Upnp, map_pairing_port};

/// A router with miniupnpd, or `None` (after saying why) when miniupnpd is missing outside CI.
fn router(lab: &Lab, spec: RouterSpec) -> Option<Router> {
    match lab.add_router(spec) {
        Ok(router) => Some(router),
        Err(LabError::Unavailable(why)) if std::env::var_os("CI").is_none_or(|v| v.is_empty()) => {
            eprintln!("SKIP: {why}");
            None
        }
        Err(error) => panic!("adding the router: {error}"),
    }
}

/// Runs a future on a fresh lab runtime (call it inside a host's namespace).
fn block_on<F: Future>(future: F) -> F::Output {
    localpair_lab::runtime().block_on(future)
}

/// A context with a confirmation listener and the given extra TOML.
fn context(toml: &str) -> Context {
    let toml = format!("[device]\nname = \"lab host\"\n{toml}");
    // A throwaway key: lab hosts share one filesystem, and one state directory would make them
    // one device.
    let settings = Settings::load(Source::Toml(toml)).unwrap();
    Context::start(settings.with_value("device.ephemeral", true).unwrap()).unwrap()
}

fn quick() -> Config {
    let mut config = Config::default();
    config.search_timeout_ms = 1000;
    config
}

#[test]
fn resolves_the_address_facing_the_gateway_and_its_external_address() {
    let lab = lab_or_skip!("upnp_resolve");
    let Some(router) = router(&lab, RouterSpec::new()) else {
        return;
    };
    let host = lab.add_host(HostSpec::new()).unwrap();
    let wan = router.wan_addr();
    let addr = host.addr();
    let host_ref = &host;
    let (candidates, info, chain, sockets) = host
        .run(move || {
            block_on(async move {
                let ctx = context("[resolve]\norder = [\"upnp\"]\n");
                let upnp = Upnp::from_settings(ctx.settings()).unwrap();
                let candidates = localpair_core::AddressResolver::resolve(&upnp, &ctx).await;
                let info = upnp.probe(&ctx).await;
                let registry = localpair_core::Registry::linked().unwrap();
                let chain = ResolverChain::from_settings(&registry, ctx.settings())
                    .unwrap()
                    .resolve(&ctx)
                    .await;
                // Still inside the runtime: nothing of the searches may stay open (UDP sockets,
                // HTTP connections to the gateway).
                tokio::time::sleep(Duration::from_millis(100)).await;
                let sockets = host_ref
                    .exec([
                        "ss",
                        "-Hna",
                        "exclude",
                        "time-wait",
                        "( sport = :1900 or dport = :1900 or dport = :5000 )",
                    ])
                    .unwrap()
                    + &host_ref.exec(["ss", "-Hnu"]).unwrap();
                (candidates, info, chain, sockets)
            })
        })
        .unwrap();
    assert_eq!(sockets.trim(), "", "sockets left open");
    let log = router.miniupnpd_log();
    let candidates = candidates.unwrap_or_else(|e| panic!("{e}\nminiupnpd:\n{log}"));
    assert_eq!(candidates.len(), 1, "{candidates:#?}");
    let candidate = &candidates[0];
    assert_eq!(candidate.ip, addr);
    assert_eq!(candidate.interface.as_deref(), Some("eth0"));
    assert_eq!(candidate.confirmed, Confirmation::Local);
    assert!(candidate.default_route);
    assert!(
        candidate.reason.starts_with(&format!(
            "faces the UPnP gateway {DEFAULT_GATEWAY} (localpair lab IGD); external address {wan} (public"
        )),
        "{}",
        candidate.reason
    );
    assert!(
        candidate.reason.contains("reached our listener"),
        "{}",
        candidate.reason
    );

    let info = info.unwrap();
    assert_eq!(info.interface, "eth0");
    assert_eq!(info.local_addr, addr);
    assert_eq!(info.gateway_addr, DEFAULT_GATEWAY);
    assert_eq!(info.external_ip, Some(wan.into()));
    assert!(info.external_is_global);
    assert!(!info.double_nat);
    assert_eq!(info.friendly_name.as_deref(), Some("localpair lab IGD"));
    assert_eq!(info.description_url, router.description_url());
    assert!(
        info.control_url
            .starts_with(&format!("http://{DEFAULT_GATEWAY}:5000/")),
        "{}",
        info.control_url
    );
    assert!(
        info.server.as_deref().unwrap_or("").contains("MiniUPnPd"),
        "{info:?}"
    );
    assert_eq!(info.searches, 1);

    // Through the registry and the chain, as `localpair resolve` runs it.
    assert_eq!(chain.candidates.len(), 1, "{chain:#?}");
    assert_eq!(chain.candidates[0].strategy, "upnp");
    assert_eq!(chain.candidates[0].ip, addr);
}

#[test]
fn maps_the_pairing_port_and_removes_it_on_shutdown() {
    let lab = lab_or_skip!("upnp_map");
    let Some(router) = router(&lab, RouterSpec::new()) else {
        return;
    };
    let host = lab.add_host(HostSpec::new()).unwrap();
    let addr = host.addr();
    let wan = router.wan_addr();
    let router_ref = &router;
    let (entry, forwards, after, gone) = host
        .run(move || {
            block_on(async move {
                let ctx = context("[strategies.upnp]\nmap_port = true\n");
                let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
                    .await
                    .unwrap();
                let port = listener.local_addr().unwrap().port();
                let mapping = map_pairing_port(&ctx, port)
                    .await
                    .unwrap_or_else(|e| panic!("{e}\n{}", router_ref.miniupnpd_log()))
                    .expect("map_port is on");
                assert_eq!(mapping.external_addr(), Some(SocketAddrV4::new(wan, port)));
                assert_eq!(mapping.local_addr(), SocketAddrV4::new(addr, port));
                assert_eq!(mapping.lease(), Some(Duration::from_secs(3600)));
                assert_eq!(mapping.description(), "localpair lab host");
                let info = Upnp::default().probe(&ctx).await.unwrap();
                let entry = info.igd().get_generic_port_mapping_entry(0).await.unwrap();
                let forwards = router_ref.port_forwards().unwrap();
                mapping.shutdown().await.unwrap();
                let after = router_ref.port_forwards().unwrap();
                let gone = info.igd().get_generic_port_mapping_entry(0).await;
                (
                    (entry, port),
                    forwards,
                    after,
                    matches!(
                        gone,
                        Err(GetGenericPortMappingEntryError::SpecifiedArrayIndexInvalid)
                    ),
                )
            })
        })
        .unwrap();
    let (entry, port) = entry;
    assert_eq!(entry.external_port, port);
    assert_eq!(entry.internal_port, port);
    assert_eq!(entry.internal_client, addr.to_string());
    assert_eq!(entry.port_mapping_description, "localpair lab host");
    assert!(entry.enabled);
    assert!(
        (3500..=3600).contains(&entry.lease_duration),
        "lease {}",
        entry.lease_duration
    );
    assert!(
        forwards.contains(&format!("dnat ip to {addr}:{port}")),
        "nft: {forwards}"
    );
    assert_eq!(after, "", "the forward is still there after shutdown");
    assert!(gone, "the gateway still lists the mapping after shutdown");
}

#[test]
fn renews_a_short_lease_on_an_igd_v1_gateway() {
    let lab = lab_or_skip!("upnp_renew");
    let Some(router) = router(&lab, RouterSpec::new().config_line("force_igd_desc_v1=yes")) else {
        return;
    };
    let host = lab.add_host(HostSpec::new()).unwrap();
    let (service, renewals, lease_left) = host
        .run(|| {
            block_on(async {
                let ctx = context("[strategies.upnp]\nlease_secs = 4\n");
                let upnp = Upnp::from_settings(ctx.settings()).unwrap();
                let info = upnp.probe(&ctx).await.unwrap();
                let mapping = upnp.map_via(&ctx, &info, 7100, 7100).await.unwrap();
                assert_eq!(mapping.lease(), Some(Duration::from_secs(4)));
                // Renewed at 2 s; at 3.5 s the gateway must show a lease restarted at 2 s.
                tokio::time::sleep(Duration::from_millis(3500)).await;
                let entry = info.igd().get_generic_port_mapping_entry(0).await.unwrap();
                let renewals = mapping.renewals();
                mapping.shutdown().await.unwrap();
                (info.service_type.clone(), renewals, entry.lease_duration)
            })
        })
        .unwrap();
    assert_eq!(
        service, "urn:schemas-upnp-org:service:WANIPConnection:1",
        "IGD v1"
    );
    assert_eq!(renewals, 1, "{}", router.miniupnpd_log());
    // Without the renewal, 0-1 s would be left.
    assert!((2..=4).contains(&lease_left), "lease left {lease_left}");
}

#[test]
fn a_private_wan_address_is_reported_not_used() {
    let lab = lab_or_skip!("upnp_private_wan");
    let Some(_router) = router(&lab, RouterSpec::new().wan("100.64.0.2/10")) else {
        return;
    };
    let host = lab.add_host(HostSpec::new()).unwrap();
    let (info, candidates) = host
        .run(|| {
            block_on(async {
                let ctx = context("");
                let upnp = Upnp::new(quick());
                (
                    upnp.probe(&ctx).await.unwrap(),
                    localpair_core::AddressResolver::resolve(&upnp, &ctx)
                        .await
                        .unwrap(),
                )
            })
        })
        .unwrap();
    // miniupnpd does not hand out a private external address: it answers an empty one.
    assert_eq!(info.external_ip, None, "{info:?}");
    assert!(!info.external_is_global);
    let note = info.external_note.unwrap_or_default();
    assert!(
        note.starts_with("the gateway reports no external address (empty)"),
        "{note}"
    );
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].ip, host.addr());
    assert!(
        candidates[0].reason.contains("external address unknown"),
        "{}",
        candidates[0].reason
    );
}

#[test]
fn no_gateway_is_a_clear_error() {
    let lab = lab_or_skip!("upnp_none");
    let host = lab.add_host(HostSpec::new()).unwrap();
    let (error, took) = host
        .run(|| {
            block_on(async {
                let ctx = context("");
                let mut config = Config::default();
                config.search_timeout_ms = 2000;
                let start = Instant::now();
                let error = localpair_core::AddressResolver::resolve(&Upnp::new(config), &ctx)
                    .await
                    .unwrap_err();
                (error, start.elapsed())
            })
        })
        .unwrap();
    assert_eq!(
        error.to_string(),
        "no UPnP gateway answered on eth0 (3 searches in 2.0 s)"
    );
    assert_eq!(error.kind(), FailureKind::NothingFound);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}

/// A device on another subnet (10.88.0.5/24) of the same LAN segment that answers every
/// M-SEARCH like a gateway, and counts the HTTP connections it gets.
struct Rogue {
    searches: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

fn rogue(lab: &Lab) -> Rogue {
    let rogue = lab
        .add_host(
            HostSpec::new()
                .name("rogue")
                .addr("10.88.0.5/24")
                .default_route(false),
        )
        .unwrap();
    // So that its answers reach the 10.77.0.0/24 hosts, and theirs would reach it.
    rogue
        .exec(["ip", "route", "add", "10.77.0.0/24", "dev", "eth0"])
        .unwrap();
    let searches = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (s, c) = (Arc::clone(&searches), Arc::clone(&connections));
    rogue
        .spawn(move || {
            let me = Ipv4Addr::new(10, 88, 0, 5);
            let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 1900)).unwrap();
            udp.join_multicast_v4(&Ipv4Addr::new(239, 255, 255, 250), &me)
                .unwrap();
            udp.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let http = TcpListener::bind((me, 5000)).unwrap();
            http.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if let Ok((_, from)) = udp.recv_from(&mut buf) {
                    s.fetch_add(1, Ordering::Relaxed);
                    let answer = "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\
                        LOCATION: http://10.88.0.5:5000/rootDesc.xml\r\nSERVER: rogue\r\n\r\n";
                    let _ = udp.send_to(answer.as_bytes(), from);
                }
                if let Ok((mut conn, _)) = http.accept() {
                    c.fetch_add(1, Ordering::Relaxed);
                    let _ = conn.read(&mut buf);
                }
            }
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Rogue {
        searches,
        connections,
    }
}

#[test]
fn a_gateway_on_another_subnet_is_ignored() {
    let lab = lab_or_skip!("upnp_other_subnet");
    let host = lab.add_host(HostSpec::new()).unwrap();
    // The host could reach the rogue's HTTP port, if it tried.
    host.exec(["ip", "route", "add", "10.88.0.0/24", "dev", "eth0"])
        .unwrap();
    let rogue = rogue(&lab);
    let error = host
        .run(|| block_on(async { Upnp::new(quick()).probe(&context("")).await.unwrap_err() }))
        .unwrap();
    assert!(matches!(error, Error::NoGateway { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "no UPnP gateway answered on eth0 (3 searches in 1.0 s; ignored 10.88.0.5 (not in eth0's \
         subnet 10.77.0.0/24: only a gateway on the local subnet is used))"
    );
    let strategy: StrategyError = error.into();
    assert_eq!(strategy.kind(), FailureKind::NothingFound);
    assert!(rogue.searches.load(Ordering::Relaxed) >= 3);
    assert_eq!(rogue.connections.load(Ordering::Relaxed), 0);

    // With a real gateway on the subnet as well, that one is used, and still nothing is asked of
    // the rogue.
    let Some(_router) = router(&lab, RouterSpec::new()) else {
        return;
    };
    let info = host
        .run(|| block_on(async { Upnp::new(quick()).probe(&context("")).await.unwrap() }))
        .unwrap();
    assert_eq!(info.gateway_addr, DEFAULT_GATEWAY);
    assert_eq!(rogue.connections.load(Ordering::Relaxed), 0);
}

/// Forty rounds of resolve, probe, add and remove against miniupnpd: every round finds the one
/// external address, and no mapping outlives its round. The times are printed for reference
/// (lab-bench owns speed; `UPNP_RUNS` changes the count).
#[test]
fn repeated_mappings_are_added_and_removed_cleanly() {
    let lab = lab_or_skip!("upnp_rounds");
    let Some(router) = router(&lab, RouterSpec::new()) else {
        return;
    };
    let host = lab.add_host(HostSpec::new()).unwrap();
    let runs: usize = std::env::var("UPNP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let (resolve, probe, add, remove) = host
        .run(|| {
            block_on(async {
                let ctx = context("");
                let upnp = Upnp::default();
                let (mut resolve, mut probe, mut add, mut remove) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for _ in 0..runs {
                    let start = Instant::now();
                    let found = localpair_core::AddressResolver::resolve(&upnp, &ctx).await;
                    resolve.push(start.elapsed());
                    assert_eq!(found.unwrap().len(), 1);
                    let start = Instant::now();
                    let info = upnp.probe(&ctx).await.unwrap();
                    probe.push(start.elapsed());
                    let start = Instant::now();
                    let mapping = upnp.map_via(&ctx, &info, 7200, 7200).await.unwrap();
                    add.push(start.elapsed());
                    let start = Instant::now();
                    mapping.shutdown().await.unwrap();
                    remove.push(start.elapsed());
                }
                (resolve, probe, add, remove)
            })
        })
        .unwrap();
    assert_eq!(router.port_forwards().unwrap(), "");
    for (name, samples) in [
        ("resolve (upnp, confirmed)", &resolve),
        ("probe (no confirmation)", &probe),
        ("AddPortMapping", &add),
        ("DeletePortMapping", &remove),
    ] {
        let Summary {
            median, p95, max, ..
        } = Summary::of_durations(samples);
        eprintln!(
            "{name:28} n={runs:3}  median {median:7.2} ms  p95 {p95:7.2} ms  max {max:7.2} ms"
        );
    }
}
