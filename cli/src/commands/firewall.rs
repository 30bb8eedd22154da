//! `localpair firewall`: the exact commands that let localpair's ports through this device's
//! firewall.

use localpair_core::config::ConfirmConfig;
use localpair_diagnostics::firewall::{self, Port, Protocol, Shell};
use localpair_pairing::{ConnectConfig, JoinConfig, PairingConfig};
use serde_json::json;

use super::{block_on, load};
use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(args: &Args, shell: Option<Shell>) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let pairing = PairingConfig::from_settings(&settings).map_err(Error::Config)?;
    let join = JoinConfig::from_settings(&settings).map_err(Error::Config)?;
    let connect = ConnectConfig::from_settings(&settings).map_err(Error::Config)?;
    let confirm: &ConfirmConfig = &settings.config().confirm;
    let discover = &settings.config().discover.order;
    let mut ports = firewall::discovery_ports(
        &registry,
        &settings,
        &[discover, &join.0.order, &connect.0.order],
    );
    for (port, purpose) in [
        (
            pairing.port,
            "pairing (a host's listener, a joiner's offer of the other direction)",
        ),
        (
            confirm.port,
            "confirmation listener (peers tell this device where they saw it)",
        ),
        (
            pairing.link_port,
            "link listener (`localpair listen`; a reconnecting device's offer)",
        ),
    ] {
        // Port 0: the OS picks one per run, which no rule can name.
        if port != 0 {
            ports.push(Port::new(Protocol::Tcp, port, purpose));
        }
    }
    let detected = block_on(async { Ok(firewall::detect().await) })?;
    let shell = shell.unwrap_or(detected.shell);
    let program = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "localpair".to_owned());
    let commands = firewall::commands(shell, &ports, &detected.nft_chains, &program);
    if args.json {
        return output::json(&json!({
            "shell": shell,
            "detected": detected,
            "ports": ports,
            "commands": commands,
        }));
    }
    let mut text =
        String::from("# localpair needs these incoming ports (from the settings in use):\n");
    for port in &ports {
        text.push_str(&format!(
            "#   {} {:<5}  {}\n",
            port.protocol.to_string().to_uppercase(),
            port.port,
            port.purpose
        ));
    }
    text.push_str(&format!("# Detected: {}\n", detected.evidence));
    let who = if shell == Shell::Windows {
        "in an administrator prompt"
    } else {
        "as root"
    };
    text.push_str(&format!("# {} rules; run {who}:\n", shell.as_str()));
    for command in &commands {
        text.push_str(command);
        text.push('\n');
    }
    output::text(&text)
}
