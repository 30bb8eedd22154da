//! `--redact`: masks what identifies the user (MAC addresses, host and device names, public IP
//! addresses) everywhere in the report, the log included, and keeps what locates the trouble
//! (private, link-local, loopback, multicast and documentation addresses, interface names).
//!
//! The same value always gets the same placeholder, so "the peer at `<public-ip-1>`" can still be
//! matched across checks.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use super::report::Report;
use localpair_core::interfaces::is_private;

pub(super) fn report(report: &Report, extra_names: &[String]) -> Report {
    let mut names: Vec<String> = extra_names.to_vec();
    names.push(localpair_core::identity::host_name());
    if let Some(device) = &report.device {
        names.push(device.name.clone());
    }
    names.extend(report.matrix.iter().map(|r| r.name.clone()));
    // Peers found by discovery are also listed in that check's details.
    if let Some(discovery) = report.check("peer-discovery")
        && let Some(peers) = discovery.details.get("peers").and_then(Value::as_array)
    {
        names.extend(
            peers
                .iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    let mut masker = Masker::new(names);
    let Ok(mut value) = serde_json::to_value(report) else {
        return report.clone();
    };
    masker.value(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| report.clone())
}

pub(super) struct Masker {
    /// Longest first, so "Kitchen laptop" goes before "Kitchen".
    names: Vec<String>,
    seen: HashMap<(&'static str, String), usize>,
    counts: HashMap<&'static str, usize>,
}

impl Masker {
    pub(super) fn new(mut names: Vec<String>) -> Self {
        names.retain(|n| !n.trim().is_empty());
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        names.dedup();
        Self {
            names,
            seen: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    fn placeholder(&mut self, kind: &'static str, original: &str) -> String {
        let key = (kind, original.to_owned());
        let n = match self.seen.get(&key) {
            Some(n) => *n,
            None => {
                let count = self.counts.entry(kind).or_insert(0);
                *count += 1;
                let n = *count;
                self.seen.insert(key, n);
                n
            }
        };
        format!("<{kind}-{n}>")
    }

    pub(super) fn value(&mut self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.value(&mut v);
                    map.insert(self.text(&key), v);
                }
            }
            _ => {}
        }
    }

    pub(super) fn text(&mut self, input: &str) -> String {
        let masked = self.addresses(input);
        self.names_in(&masked)
    }

    /// Replaces MAC addresses and public IP addresses found in runs of hex digits, dots and
    /// colons (the characters those are written with).
    fn addresses(&mut self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut run = String::new();
        for c in input.chars() {
            if c.is_ascii_hexdigit() || c == '.' || c == ':' {
                run.push(c);
            } else {
                if !run.is_empty() {
                    let token = std::mem::take(&mut run);
                    out.push_str(&self.token(&token, c == ']'));
                }
                out.push(c);
            }
        }
        if !run.is_empty() {
            out.push_str(&self.token(&run, false));
        }
        out
    }

    fn token(&mut self, token: &str, bracketed: bool) -> String {
        if is_mac(token) {
            return self.placeholder("mac", &token.to_ascii_lowercase());
        }
        // Trailing sentence punctuation is not part of an address.
        let trimmed = token.trim_end_matches(['.', ':']);
        let rest = &token[trimmed.len()..];
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return format!("{}{rest}", self.ip(ip, trimmed));
        }
        // "203.0.113.9:443": an IPv4 address with a port.
        if !bracketed
            && let Some((host, port)) = trimmed.rsplit_once(':')
            && host.contains('.')
            && port.bytes().all(|b| b.is_ascii_digit())
            && let Ok(ip) = host.parse::<IpAddr>()
        {
            return format!("{}:{port}{rest}", self.ip(ip, host));
        }
        token.to_owned()
    }

    fn ip(&mut self, ip: IpAddr, written: &str) -> String {
        if is_public(ip) {
            let kind = if ip.is_ipv4() {
                "public-ipv4"
            } else {
                "public-ipv6"
            };
            self.placeholder(kind, &ip.to_string())
        } else {
            written.to_owned()
        }
    }

    /// Replaces each name where it stands as a word (not inside another word: a device named
    /// "h1" must not mangle "sha1").
    fn names_in(&mut self, input: &str) -> String {
        let mut text = input.to_owned();
        for name in self.names.clone() {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            let mut before: Option<char> = None;
            while let Some(at) = rest.find(name.as_str()) {
                let prev = rest[..at].chars().next_back().or(before);
                let next = rest[at + name.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                out.push_str(&rest[..at]);
                if word(prev) || word(next) {
                    out.push_str(&name);
                } else {
                    out.push_str(&self.placeholder("name", &name));
                }
                before = name.chars().next_back();
                rest = &rest[at + name.len()..];
            }
            out.push_str(rest);
            text = out;
        }
        text
    }
}

fn is_mac(token: &str) -> bool {
    let parts: Vec<&str> = token.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An address that can identify the user: globally routed unicast. Documentation ranges,
/// which the route lookups use, stay.
fn is_public(ip: IpAddr) -> bool {
    if is_private(ip) || ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            let documentation = matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113));
            !(documentation || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let documentation = v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8;
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(mapped));
            }
            !documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::report::{Check, DeviceInfo, Report, Status};
    use super::*;

    #[test]
    fn masks_macs_public_addresses_and_names_but_keeps_private_ones() {
        let mut m = Masker::new(vec!["h1".into(), "Kitchen laptop".into()]);
        let text = m.text(
            "Kitchen laptop (h1) eth0 02:42:AC:11:00:02 at 10.77.0.11/24, fe80::1%eth0, \
             outbound 8.8.4.4:443 and [2a00:1450::1]:443; sha1 h10 192.0.2.1 239.255.76.80.",
        );
        assert_eq!(
            text,
            "<name-1> (<name-2>) eth0 <mac-1> at 10.77.0.11/24, fe80::1%eth0, \
             outbound <public-ipv4-1>:443 and [<public-ipv6-1>]:443; sha1 h10 192.0.2.1 239.255.76.80."
        );
        // The same value keeps its placeholder; a new one gets the next number.
        assert_eq!(
            m.text("8.8.4.4 1.1.1.1 02:42:ac:11:00:02"),
            "<public-ipv4-1> <public-ipv4-2> <mac-1>"
        );
    }

    #[test]
    fn leaves_fingerprints_times_and_ports_alone() {
        let mut m = Masker::new(vec![]);
        let fp = "a".repeat(64);
        for s in [
            fp.as_str(),
            "12:30:45",
            "3f2a9c0d11b2e4f5",
            "[::]:41234",
            "0.0.0.0",
            "::1",
        ] {
            assert_eq!(m.text(s), s);
        }
    }

    #[test]
    fn a_whole_report_is_masked_including_the_log() {
        let mut check = Check::new(
            "interfaces",
            Status::Pass,
            "usable: eth0 (physical, 100.100.1.2/10)",
            json!({"interfaces": [{"name": "eth0", "mac": "de:ad:be:ef:00:01",
                                   "addrs": [{"ip": "192.168.1.5"}, {"ip": "100.100.1.2"}]}]}),
        );
        check
            .errors
            .push("host myhost: 2001:4860::8888 unreachable".into());
        let mut report = Report::from_checks(vec![check]);
        report.device = Some(DeviceInfo {
            name: "Ada's phone".into(),
            id: localpair_core::Identity::ephemeral("x")
                .unwrap()
                .device_id(),
            fingerprint: localpair_core::Identity::ephemeral("x")
                .unwrap()
                .fingerprint(),
            listener_port: Some(4000),
        });
        let (entries, _) = {
            let capture = super::super::LogCapture::new(10);
            let subscriber = tracing_subscriber::layer::SubscriberExt::with(
                tracing_subscriber::registry(),
                capture.unfiltered_layer(),
            );
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(
                    peer = "Ada's phone",
                    mac = "de:ad:be:ef:00:01",
                    "found Ada's phone at 100.100.1.2"
                );
            });
            capture.entries()
        };
        report.log = entries;
        let json = serde_json::to_string(&report.redacted(&["myhost".into()])).unwrap();
        for secret in [
            "de:ad:be:ef:00:01",
            "100.100.1.2",
            "2001:4860::8888",
            "Ada's phone",
            "myhost",
        ] {
            assert!(!json.contains(secret), "{secret} left in {json}");
        }
        for kept in [
            "192.168.1.5",
            "eth0",
            "<mac-1>",
            "<public-ipv4-1>",
            "<name-",
        ] {
            assert!(json.contains(kept), "{kept} missing from {json}");
        }
    }
}
