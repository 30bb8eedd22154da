//! The exact commands that let localpair through a device's firewall: which firewall is active
//! (where it can be told), and the rules for the ports the settings use.
//!
//! The ports come from the caller (the strategies' declared UDP ports, the listeners' TCP
//! ports), so a custom strategy or a changed port is covered like a built-in one.

use std::fmt;
use std::time::Duration;

use localpair_core::{PeerDiscoverer, Registry, Settings};
use serde::Serialize;

/// How long a firewall tool may take to answer before detection gives up on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest tool output read (an `nft -j list chains` of a busy host is a few KiB).
const MAX_TOOL_OUTPUT: usize = 256 * 1024;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// A port a firewall must let in, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Port {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port.
    pub port: u16,
    /// What listens there, for people.
    pub purpose: String,
}

impl Port {
    /// Incoming `protocol` traffic to `port`, for `purpose`.
    pub fn new(protocol: Protocol, port: u16, purpose: impl Into<String>) -> Self {
        Self {
            protocol,
            port,
            purpose: purpose.into(),
        }
    }
}

/// The UDP ports the discoverers named in `orders` declare (each once, in order), as ports a
/// firewall must let in; a discoverer that cannot say (not linked, a broken table) adds none.
pub fn discovery_ports(
    registry: &Registry,
    settings: &Settings,
    orders: &[&[String]],
) -> Vec<Port> {
    let mut out: Vec<Port> = Vec::new();
    for name in orders.iter().flat_map(|order| order.iter()) {
        let facts = registry
            .facts::<dyn PeerDiscoverer>(name, settings)
            .unwrap_or_default();
        for udp in facts.udp_ports {
            if !out
                .iter()
                .any(|p| p.protocol == Protocol::Udp && p.port == udp.port)
            {
                out.push(Port::new(
                    Protocol::Udp,
                    udp.port,
                    format!("{} discovery ({name})", udp.protocol),
                ));
            }
        }
    }
    out
}

/// The firewall front ends rules can be written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Shell {
    /// Ubuntu's Uncomplicated Firewall.
    Ufw,
    /// firewalld (Fedora, RHEL, openSUSE).
    Firewalld,
    /// nftables directly.
    Nft,
    /// iptables directly (older distributions).
    Iptables,
    /// Windows Defender Firewall, through `netsh`.
    Windows,
    /// The macOS application firewall (it allows programs, not ports).
    Macos,
}

impl Shell {
    /// Every firewall rules can be written for.
    pub const ALL: [Self; 6] = [
        Self::Ufw,
        Self::Firewalld,
        Self::Nft,
        Self::Iptables,
        Self::Windows,
        Self::Macos,
    ];

    /// The firewall with this [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|shell| shell.as_str() == name)
    }

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ufw => "ufw",
            Self::Firewalld => "firewalld",
            Self::Nft => "nft",
            Self::Iptables => "iptables",
            Self::Windows => "windows",
            Self::Macos => "macos",
        }
    }
}

/// An nftables base chain on the input hook: where an accept rule must go (an accept in a
/// table of our own would not override another table's drop).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NftChain {
    /// `inet`, `ip` or `ip6`.
    pub family: String,
    /// The table.
    pub table: String,
    /// The chain.
    pub chain: String,
}

impl NftChain {
    /// The chain most distributions create (`table inet filter`, `chain input`).
    pub fn usual() -> Self {
        Self {
            family: "inet".to_owned(),
            table: "filter".to_owned(),
            chain: "input".to_owned(),
        }
    }
}

/// Which firewall this device runs, as far as it can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Detected {
    /// The front end to write rules for.
    pub shell: Shell,
    /// How it was told ("ufw is enabled in /etc/ufw/ufw.conf", ...).
    pub evidence: String,
    /// For nftables: the input chains found (empty: none could be listed).
    pub nft_chains: Vec<NftChain>,
}

/// Finds the active firewall: on Linux ufw (its config says enabled), then firewalld (its pid
/// file), then nftables (its input chains, listed with `nft -j list chains`, which needs
/// root), then iptables; the platform's own firewall elsewhere.
pub async fn detect() -> Detected {
    #[cfg(target_os = "windows")]
    return Detected {
        shell: Shell::Windows,
        evidence: "Windows".to_owned(),
        nft_chains: Vec::new(),
    };
    #[cfg(target_os = "macos")]
    return Detected {
        shell: Shell::Macos,
        evidence: "macOS".to_owned(),
        nft_chains: Vec::new(),
    };
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    return detect_unix().await;
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
async fn detect_unix() -> Detected {
    let ufw_enabled = std::fs::read_to_string("/etc/ufw/ufw.conf")
        .is_ok_and(|conf| conf.lines().any(|l| l.trim() == "ENABLED=yes"));
    if ufw_enabled {
        return Detected {
            shell: Shell::Ufw,
            evidence: "ufw is enabled in /etc/ufw/ufw.conf".to_owned(),
            nft_chains: Vec::new(),
        };
    }
    for pid_file in ["/run/firewalld.pid", "/var/run/firewalld.pid"] {
        if std::path::Path::new(pid_file).exists() {
            return Detected {
                shell: Shell::Firewalld,
                evidence: format!("firewalld runs ({pid_file})"),
                nft_chains: Vec::new(),
            };
        }
    }
    match run_tool("nft", &["-j", "list", "chains"]).await {
        Some(json) => {
            let chains = parse_nft_chains(&json);
            let evidence = if chains.is_empty() {
                "nftables has no input chain: nothing filters incoming traffic with it".to_owned()
            } else {
                let names: Vec<String> = chains
                    .iter()
                    .map(|c| format!("{} {} {}", c.family, c.table, c.chain))
                    .collect();
                format!("nftables input chains: {}", names.join(", "))
            };
            Detected {
                shell: Shell::Nft,
                evidence,
                nft_chains: chains,
            }
        }
        None if tool_exists("nft") => Detected {
            shell: Shell::Nft,
            evidence: "nft is installed but its chains could not be listed (run as root to \
                       see them); the rules assume `table inet filter`, `chain input`"
                .to_owned(),
            nft_chains: Vec::new(),
        },
        None => Detected {
            shell: Shell::Iptables,
            evidence: "neither ufw, firewalld nor nft found".to_owned(),
            nft_chains: Vec::new(),
        },
    }
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn tool_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Runs a firewall tool and returns its standard output, or `None` when it is missing,
/// fails, says too much or takes longer than [`TOOL_TIMEOUT`].
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
async fn run_tool(program: &str, args: &[&str]) -> Option<String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TOOL_TIMEOUT, child).await.ok()?.ok()?;
    if !output.status.success() || output.stdout.len() > MAX_TOOL_OUTPUT {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// The input-hook filter chains in `nft -j list chains` output (the one parser of it).
pub fn parse_nft_chains(json: &str) -> Vec<NftChain> {
    if json.len() > MAX_TOOL_OUTPUT {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let Some(items) = value.get("nftables").and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| item.get("chain"))
        .filter(|chain| {
            chain.get("hook").and_then(|h| h.as_str()) == Some("input")
                && chain.get("type").and_then(|t| t.as_str()) == Some("filter")
        })
        .filter_map(|chain| {
            let field = |name: &str| chain.get(name)?.as_str().map(str::to_owned);
            let family = field("family")?;
            matches!(family.as_str(), "inet" | "ip" | "ip6").then_some(())?;
            Some(NftChain {
                family,
                table: field("table")?,
                chain: field("name")?,
            })
        })
        .collect()
}

/// The commands that allow `ports` in through `shell`, one per line, to run as root (or an
/// administrator). `nft_chains` says where nft rules go (the usual chain when empty);
/// `program` is the path of the localpair executable, for the macOS application firewall.
pub fn commands(
    shell: Shell,
    ports: &[Port],
    nft_chains: &[NftChain],
    program: &str,
) -> Vec<String> {
    let of = |protocol: Protocol| -> Vec<u16> {
        let mut list: Vec<u16> = ports
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| p.port)
            .collect();
        list.sort_unstable();
        list.dedup();
        list
    };
    let grouped = [
        (Protocol::Udp, of(Protocol::Udp)),
        (Protocol::Tcp, of(Protocol::Tcp)),
    ];
    let mut out = Vec::new();
    match shell {
        Shell::Nft => {
            let usual = [NftChain::usual()];
            let chains = if nft_chains.is_empty() {
                &usual[..]
            } else {
                nft_chains
            };
            for chain in chains {
                for (protocol, list) in &grouped {
                    if list.is_empty() {
                        continue;
                    }
                    out.push(format!(
                        "nft insert rule {} {} {} {protocol} dport {{ {} }} accept comment \"localpair\"",
                        chain.family,
                        chain.table,
                        chain.chain,
                        join(list, ", ")
                    ));
                }
            }
        }
        Shell::Ufw => {
            for (protocol, list) in &grouped {
                for port in list {
                    out.push(format!("ufw allow {port}/{protocol} comment localpair"));
                }
            }
        }
        Shell::Firewalld => {
            for (protocol, list) in &grouped {
                for port in list {
                    out.push(format!(
                        "firewall-cmd --permanent --add-port={port}/{protocol}"
                    ));
                }
            }
            out.push("firewall-cmd --reload".to_owned());
        }
        Shell::Iptables => {
            for (protocol, list) in &grouped {
                for tool in ["iptables", "ip6tables"] {
                    if !list.is_empty() {
                        out.push(format!(
                            "{tool} -I INPUT -p {protocol} -m multiport --dports {} -j ACCEPT",
                            join(list, ",")
                        ));
                    }
                }
            }
        }
        Shell::Windows => {
            for (protocol, list) in &grouped {
                if !list.is_empty() {
                    let upper = protocol.to_string().to_uppercase();
                    out.push(format!(
                        "netsh advfirewall firewall add rule name=\"localpair {upper}\" dir=in \
                         action=allow protocol={upper} localport={} profile=private",
                        join(list, ",")
                    ));
                }
            }
        }
        Shell::Macos => {
            let fw = "/usr/libexec/ApplicationFirewall/socketfilterfw";
            out.push(format!("{fw} --add \"{program}\""));
            out.push(format!("{fw} --unblockapp \"{program}\""));
        }
    }
    out
}

fn join(ports: &[u16], separator: &str) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<Port> {
        vec![
            Port::new(Protocol::Udp, 19536, "udp-multicast"),
            Port::new(Protocol::Udp, 5353, "mDNS"),
            Port::new(Protocol::Tcp, 19537, "pairing"),
            Port::new(Protocol::Tcp, 19538, "confirmation"),
            Port::new(Protocol::Udp, 5353, "mDNS again"),
        ]
    }

    #[test]
    fn nft_rules_go_into_each_input_chain_found() {
        let chains = parse_nft_chains(
            r#"{"nftables":[{"metainfo":{"version":"1.0.6"}},
            {"chain":{"family":"inet","table":"filter","name":"input","handle":1,
                      "type":"filter","hook":"input","prio":0,"policy":"drop"}},
            {"chain":{"family":"inet","table":"filter","name":"output","handle":2,
                      "type":"filter","hook":"output","prio":0,"policy":"accept"}},
            {"chain":{"family":"ip","table":"nat","name":"pre","handle":3,
                      "type":"nat","hook":"prerouting","prio":-100,"policy":"accept"}},
            {"chain":{"family":"inet","table":"firewalld","name":"filter_INPUT",
                      "type":"filter","hook":"input","prio":10,"policy":"accept"}}]}"#,
        );
        assert_eq!(chains.len(), 2, "{chains:?}");
        let rules = commands(Shell::Nft, &ports(), &chains, "localpair");
        assert_eq!(
            rules[0],
            "nft insert rule inet filter input udp dport { 5353, 19536 } accept comment \"localpair\""
        );
        assert_eq!(
            rules[1],
            "nft insert rule inet filter input tcp dport { 19537, 19538 } accept comment \"localpair\""
        );
        assert!(rules[2].contains("inet firewalld filter_INPUT udp"));
        // Nothing listed (not root): the usual chain.
        let usual = commands(Shell::Nft, &ports(), &[], "localpair");
        assert_eq!(usual.len(), 2);
        assert!(usual[0].contains("inet filter input"));
    }

    #[test]
    fn every_shell_names_every_port() {
        for shell in [
            Shell::Ufw,
            Shell::Firewalld,
            Shell::Iptables,
            Shell::Windows,
        ] {
            let text = commands(shell, &ports(), &[], "localpair").join("\n");
            for port in ["19536", "5353", "19537", "19538"] {
                assert!(text.contains(port), "{shell:?}: {text}");
            }
        }
        let ufw = commands(Shell::Ufw, &ports(), &[], "localpair");
        assert!(ufw.contains(&"ufw allow 19537/tcp comment localpair".to_owned()));
        assert_eq!(ufw.len(), 4, "duplicates merged: {ufw:?}");
        let mac = commands(Shell::Macos, &ports(), &[], "/usr/local/bin/localpair");
        assert!(mac[1].ends_with("--unblockapp \"/usr/local/bin/localpair\""));
    }

    #[test]
    fn junk_nft_output_lists_nothing() {
        for junk in [
            "",
            "{",
            "[]",
            r#"{"nftables":3}"#,
            r#"{"nftables":[{"chain":{}}]}"#,
        ] {
            assert!(parse_nft_chains(junk).is_empty(), "{junk}");
        }
    }
}
