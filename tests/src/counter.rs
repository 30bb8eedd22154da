//! Packet counters in a host's nftables, for tests that must say exactly what a host sent or
//! received (an attack test counts what a victim sends back, in packets and bytes).

use crate::{Host, LabError};

/// The table the counters live in; separate from the fault table (`inet lab`), so faults and
/// counters can be changed independently.
const TABLE: &str = "lab_count";

/// Named packet/byte counters on a host's non-loopback traffic: each counts the packets that
/// match an nft expression on the way out ([`outbound`](Self::outbound)) or in ([`inbound`](Self::inbound)).
/// Bytes are IP packet lengths (header included). Dropping it removes the table.
#[derive(Debug)]
pub struct Counters {
    host: Host,
}

/// One counter's reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Packets matched.
    pub packets: u64,
    /// Their bytes (IP header included).
    pub bytes: u64,
}

impl Count {
    /// Average bytes per packet (0 when none).
    pub fn bytes_per_packet(&self) -> u64 {
        self.bytes.checked_div(self.packets).unwrap_or(0)
    }
}

impl Counters {
    /// Creates the (empty) counter table on `host`, replacing an earlier one.
    pub fn new(host: &Host) -> Result<Self, LabError> {
        let _ = host.exec(["nft", "delete", "table", "inet", TABLE]);
        host.exec(["nft", "add", "table", "inet", TABLE])?;
        for (chain, hook) in [("out", "output"), ("in", "input")] {
            host.exec([
                "nft", "add", "chain", "inet", TABLE, chain, "{", "type", "filter", "hook", hook,
                "priority", "-10", ";", "policy", "accept", ";", "}",
            ])?;
        }
        Ok(Self { host: host.clone() })
    }

    /// Counts outgoing packets matching `expr` (nft syntax, e.g. `ip daddr 10.88.0.0/24 udp
    /// sport 5353`) under `name`.
    pub fn outbound(&self, name: &str, expr: &str) -> Result<(), LabError> {
        self.add("out", "oifname", name, expr)
    }

    /// Counts incoming packets matching `expr` under `name`.
    pub fn inbound(&self, name: &str, expr: &str) -> Result<(), LabError> {
        self.add("in", "iifname", name, expr)
    }

    fn add(&self, chain: &str, dir: &str, name: &str, expr: &str) -> Result<(), LabError> {
        let mut args = vec!["nft", "add", "rule", "inet", TABLE, chain, dir, "!=", "lo"];
        args.extend(expr.split_whitespace());
        let comment = format!("\"{name}\"");
        args.extend(["counter", "comment", &comment]);
        self.host.exec(args).map(drop)
    }

    /// The reading of counter `name` (zero if it does not exist).
    pub fn get(&self, name: &str) -> Result<Count, LabError> {
        let json = self
            .host
            .exec(["nft", "-j", "list", "table", "inet", TABLE])?;
        let value: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| LabError::io("parsing `nft -j list table`", std::io::Error::other(e)))?;
        let rules = value["nftables"].as_array().into_iter().flatten();
        let mut count = Count::default();
        for rule in rules.filter_map(|item| item.get("rule")) {
            if rule["comment"].as_str() != Some(name) {
                continue;
            }
            for expr in rule["expr"].as_array().into_iter().flatten() {
                if let Some(c) = expr.get("counter") {
                    count.packets += c["packets"].as_u64().unwrap_or(0);
                    count.bytes += c["bytes"].as_u64().unwrap_or(0);
                }
            }
        }
        Ok(count)
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let _ = self.host.exec(["nft", "delete", "table", "inet", TABLE]);
    }
}
