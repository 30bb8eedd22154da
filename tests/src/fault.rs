//! Fault injection with nftables: one `table inet lab` per host, rebuilt atomically on every change.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;

use crate::LabError;
use crate::process;

/// The faults currently injected on a host (see [`Host::faults`](crate::Host::faults)).
///
/// Faults act on both directions (nft `input` and `output` hooks) and only on non-loopback interfaces: they model
/// the network, so a host talking to itself (which Linux routes over `lo`, even to its LAN address) is unaffected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Every UDP datagram is dropped.
    pub drop_udp: bool,
    /// Every IPv4 multicast packet (224.0.0.0/4, including IGMP) and every IPv6 multicast packet except ICMPv6 is
    /// dropped. ICMPv6 stays, because neighbour discovery rides on multicast and without it IPv6 unicast dies too,
    /// which no real multicast-filtering network does.
    pub drop_multicast: bool,
    /// Percentage (0..=100) of UDP datagrams dropped at random, independently in each direction.
    pub udp_loss: u8,
    /// TCP ports blocked: any segment whose source or destination port is one of these is dropped.
    pub drop_tcp_ports: BTreeSet<u16>,
    /// Incoming TCP connections are dropped (a new connection's first segment, on the input hook
    /// only), as a host firewall does: the host's own connections and their replies still pass,
    /// and UDP is untouched.
    pub drop_tcp_in: bool,
}

impl Faults {
    /// Whether no fault is active.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The rules shared by the input and output chains; `dir` is `iif` or `oif`.
    fn rules(&self, dir: &str) -> Vec<String> {
        let mut rules = vec![format!("{dir}name \"lo\" accept")];
        if self.drop_udp {
            rules.push("meta l4proto udp drop".to_owned());
        }
        if self.drop_multicast {
            rules.push("ip daddr 224.0.0.0/4 drop".to_owned());
            rules.push("ip6 daddr ff00::/8 meta l4proto != ipv6-icmp drop".to_owned());
        }
        match self.udp_loss {
            0 => {}
            // `numgen ... mod 100` yields 0..=99, and nft rejects `< 100` as out of range.
            100.. => rules.push("meta l4proto udp drop".to_owned()),
            n => rules.push(format!("meta l4proto udp numgen random mod 100 < {n} drop")),
        }
        for port in &self.drop_tcp_ports {
            rules.push(format!("tcp dport {port} drop"));
            rules.push(format!("tcp sport {port} drop"));
        }
        if self.drop_tcp_in && dir == "iif" {
            rules.push("meta l4proto tcp ct state new drop".to_owned());
        }
        rules
    }

    /// The nft script that replaces the host's table with these faults in one transaction.
    pub(crate) fn script(&self) -> String {
        // "add then delete" removes the table whether or not it exists (nft 1.0.6 has no `destroy`).
        let mut s = String::from("add table inet lab\ndelete table inet lab\n");
        if self.is_empty() {
            return s;
        }
        s.push_str("table inet lab {\n");
        for (chain, dir) in [("input", "iif"), ("output", "oif")] {
            let _ = writeln!(s, "  chain {chain} {{");
            let _ = writeln!(
                s,
                "    type filter hook {chain} priority filter; policy accept;"
            );
            for rule in self.rules(dir) {
                let _ = writeln!(s, "    {rule}");
            }
            s.push_str("  }\n");
        }
        s.push_str("}\n");
        s
    }

    /// Installs these faults in `netns`, replacing whatever was there.
    pub(crate) fn apply(&self, netns: &str) -> Result<(), LabError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, "nft", "-f", "-"]);
        process::run(&mut cmd, Some(&self.script())).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_faults_only_remove_the_table() {
        let s = Faults::default().script();
        assert_eq!(s, "add table inet lab\ndelete table inet lab\n");
    }

    #[test]
    fn script_has_both_directions() {
        let f = Faults {
            udp_loss: 30,
            drop_tcp_ports: [443].into(),
            ..Faults::default()
        };
        let s = f.script();
        assert!(s.contains("hook input"), "{s}");
        assert!(s.contains("hook output"), "{s}");
        assert_eq!(s.matches("numgen random mod 100 < 30 drop").count(), 2);
        assert!(s.contains("iifname \"lo\" accept"));
        let all = Faults {
            udp_loss: 100,
            ..Faults::default()
        };
        assert!(!all.script().contains("numgen"));
        assert!(s.contains("oifname \"lo\" accept"));
        assert_eq!(s.matches("tcp dport 443 drop").count(), 2);
    }
}
