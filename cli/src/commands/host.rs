//! `localpair host`.

use std::sync::Arc;
use std::time::Duration;

use localpair_core::{Advert, ChainMode, DiscovererChain, DiscoveryGoal, ResolverChain};
use localpair_pairing::code::Flow;
use localpair_pairing::{HostOptions, PairingConfig, PairingHost, listen_addresses};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{block_on, context, interrupted, load, paired_line, progress};
use crate::args::{Args, FlowArg};
use crate::error::Error;
use crate::output;
use crate::qr::{self, QrTarget};

pub(super) fn run(args: &Args, flow: FlowArg, target: &QrTarget) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let flow = match flow {
        FlowArg::Pre => Flow::Pre,
        _ => Flow::Post,
    };
    let mut resolver = ResolverChain::from_settings(&registry, &settings).map_err(Error::Config)?;
    // Every resolver runs: the pre-shared code lists every usable address, and the post-shared
    // host listens wherever peers can reach it, which peer-observed (discovery) tells.
    let mut plan = resolver.plan();
    plan.mode = ChainMode::All;
    resolver = resolver.with_plan(plan);
    let announcer = DiscovererChain::from_settings(&registry, &settings).map_err(Error::Config)?;
    let pairing = PairingConfig::from_settings(&settings).map_err(Error::Config)?;
    block_on(async {
        let ctx = context(settings)?;
        let resolved = resolver.resolve(&ctx).await;
        let Some(listen) = listen_addresses(flow, &resolved.candidates, pairing.code_candidates)
        else {
            return Err(Error::NoCandidates {
                attempts: localpair_core::chain::explain(&resolved.attempts),
            });
        };
        if let Some(warning) = &listen.warning {
            tracing::warn!("{warning}");
            progress(&format!("warning: {warning}"));
        }
        let mut options = HostOptions::default();
        options.flow = flow;
        options.listen_on = listen.listen_on;
        options.port = pairing.port;
        options.candidates = listen.code;
        options.ttl = Duration::from_millis(pairing.code_ttl_ms);
        options.max_wrong_proofs = pairing.max_wrong_proofs;
        options.handshake_timeout = Duration::from_millis(pairing.handshake_timeout_ms);
        options.max_unauthenticated = pairing.max_unauthenticated;
        options.max_per_source = pairing.max_per_source;
        let ttl = options.ttl;
        let host =
            PairingHost::start(Arc::clone(ctx.identity()), options).map_err(Error::Pairing)?;
        let code = host.code().clone();
        // Only with [strategies.upnp] map_port = true: reachable from beyond the LAN while hosting.
        let mapping = match localpair_upnp::map_pairing_port(&ctx, code.port).await {
            Ok(mapping) => mapping,
            Err(error) => {
                tracing::warn!(%error, "UPnP port mapping failed; pairing on the LAN only");
                None
            }
        };
        ctx.set_advert(Advert::pairing(code.port, Some(code.session_tag())));
        show_code(args, &code, ttl, target)?;

        // Announce while waiting, so joiners find this host by multicast and mDNS too.
        let stop = CancellationToken::new();
        let announcing = {
            let ctx = ctx.clone();
            let chain = announcer
                .clone()
                .with_plan(announcer.plan().with_deadline(ttl));
            let goal = DiscoveryGoal {
                until: Some(stop.clone()),
                ..DiscoveryGoal::default()
            };
            tokio::spawn(async move { chain.discover(&ctx, goal, None).await })
        };
        let outcome = tokio::select! {
            outcome = host.wait() => outcome.map_err(Error::Pairing),
            () = interrupted() => Err(Error::Interrupted),
        };
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), announcing).await;
        if let Some(mapping) = mapping
            && let Err(error) = mapping.shutdown().await
        {
            tracing::warn!(%error, "removing the UPnP port mapping");
        }
        let paired = outcome?;
        if args.json {
            output::json(&json!({
                "paired": true,
                "peer": paired.peer,
                "elapsed_ms": paired.elapsed.as_secs_f64() * 1000.0,
            }))
        } else {
            output::text(&paired_line(&paired.peer, None, paired.elapsed))
        }
    })
}

fn show_code(
    args: &Args,
    code: &localpair_pairing::code::PairingCode,
    ttl: Duration,
    target: &QrTarget,
) -> Result<(), Error> {
    let text = code.encode();
    if args.json {
        output::json(&json!({
            "code": text,
            "flow": code.flow,
            "port": code.port,
            "candidates": code.candidates,
            "expires_in_s": ttl.as_secs(),
        }))?;
    } else {
        let addrs: Vec<String> = code.candidates.iter().map(ToString::to_string).collect();
        output::text(&format!(
            "Pairing code (valid {} s, port {}, addresses {}):\n{text}\n",
            ttl.as_secs(),
            code.port,
            if addrs.is_empty() {
                "none".to_owned()
            } else {
                addrs.join(", ")
            }
        ))?;
    }
    match target {
        QrTarget::Terminal => {
            let drawing = qr::terminal(&text)?;
            if args.json {
                progress(&drawing);
            } else {
                output::text(&drawing)?;
            }
        }
        QrTarget::Png(path) => qr::png(&text, path, 8)?,
        QrTarget::Svg(path) => qr::svg(&text, path)?,
        QrTarget::None => {}
    }
    progress("Waiting for a device to join…");
    Ok(())
}
