//! Check 1: the interfaces (the `ip addr` view).
//!
//! Addresses come from if-addrs; flags, MTU, state and MAC from `/sys/class/net/<if>/` on
//! Linux (readable without privileges). Elsewhere those parts are missing and the details say so.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::report::Status;
use super::runner::{BoxFuture, Env, Finding, State};
use localpair_core::candidate::{InterfaceClass, is_link_local};
use localpair_core::interfaces::{self, Interface, is_private};

const SYS_NET: &str = "/sys/class/net";

// <linux/if.h>
const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_POINTOPOINT: u32 = 0x10;
const IFF_MULTICAST: u32 = 0x1000;

/// One interface as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) index: Option<u32>,
    pub(crate) class: InterfaceClass,
    /// `up`, `running`, `loopback`, `multicast`, `point-to-point`, `broadcast`.
    pub(crate) flags: Vec<&'static str>,
    pub(crate) mtu: Option<u32>,
    pub(crate) operstate: Option<String>,
    pub(crate) mac: Option<String>,
    pub(crate) addrs: Vec<LinkAddr>,
    /// Whether `[interfaces]` allow/deny lets strategies use it.
    pub(crate) permitted: bool,
}

/// One address with what kind of address it is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LinkAddr {
    pub(crate) ip: IpAddr,
    pub(crate) prefix_len: u8,
    /// `private`, `link-local`, `loopback` or `public`.
    pub(crate) scope: &'static str,
    /// IPv6 duplicate address detection: `done`, `tentative` or `failed`.
    pub(crate) dad: interfaces::Dad,
}

impl Link {
    pub(crate) fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// Up, carrying, permitted, not loopback, with an address: a link a peer could be on.
    pub(crate) fn usable(&self) -> bool {
        self.permitted
            && self.class != InterfaceClass::Loopback
            && self.has("up")
            && self.has("running")
            && !self.addrs.is_empty()
    }

    fn brief(&self) -> String {
        let addrs: Vec<String> = self
            .addrs
            .iter()
            .filter(|a| a.ip.is_ipv4() || a.scope != "link-local")
            .map(|a| format!("{}/{}", a.ip, a.prefix_len))
            .collect();
        let mut parts = vec![self.class.as_str().to_owned()];
        if !addrs.is_empty() {
            parts.push(addrs.join(" "));
        }
        format!("{} ({})", self.name, parts.join(", "))
    }

    fn why_unusable(&self) -> &'static str {
        if self.class == InterfaceClass::Loopback {
            "loopback"
        } else if !self.permitted {
            "excluded by [interfaces]"
        } else if !self.has("up") {
            "down"
        } else if !self.has("running") {
            "no carrier"
        } else {
            "no address"
        }
    }
}

pub(crate) fn scope(ip: IpAddr) -> &'static str {
    if ip.is_loopback() {
        "loopback"
    } else if is_link_local(ip) {
        "link-local"
    } else if is_private(ip) {
        "private"
    } else {
        "public"
    }
}

fn read_sys(name: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(SYS_NET).join(name).join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Every interface: the ones with addresses (if-addrs) and, on Linux, those without.
pub(crate) fn list_links(ctx: &localpair_core::Context) -> (Vec<Link>, Vec<String>, bool) {
    let mut errors = Vec::new();
    let listed = match interfaces::list_all() {
        Ok(list) => list,
        Err(error) => {
            errors.push(error.to_string());
            Vec::new()
        }
    };
    let sysfs = Path::new(SYS_NET).is_dir();
    let mut names: Vec<String> = listed.iter().map(|i| i.name.clone()).collect();
    if sysfs && let Ok(dir) = std::fs::read_dir(SYS_NET) {
        let mut extra: Vec<String> = dir
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !names.contains(n))
            .collect();
        extra.sort();
        names.extend(extra);
    }
    let links = names
        .iter()
        .map(|name| link(name, listed.iter().find(|i| &i.name == name), sysfs, ctx))
        .collect();
    (links, errors, sysfs)
}

fn link(
    name: &str,
    listed: Option<&Interface>,
    sysfs: bool,
    ctx: &localpair_core::Context,
) -> Link {
    let sys_flags = sysfs
        .then(|| read_sys(name, "flags"))
        .flatten()
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    let operstate = sysfs.then(|| read_sys(name, "operstate")).flatten();
    let carrier = sysfs.then(|| read_sys(name, "carrier")).flatten();
    let loopback = sys_flags.map_or(
        listed.is_some_and(|i| i.class == InterfaceClass::Loopback),
        |f| f & IFF_LOOPBACK != 0,
    );
    let mut flags = Vec::new();
    match sys_flags {
        Some(f) => {
            let running = carrier.as_deref() == Some("1")
                && matches!(operstate.as_deref(), Some("up" | "unknown"));
            for (on, flag) in [
                (f & IFF_UP != 0, "up"),
                (running, "running"),
                (f & IFF_LOOPBACK != 0, "loopback"),
                (f & IFF_MULTICAST != 0, "multicast"),
                (f & IFF_POINTOPOINT != 0, "point-to-point"),
                (f & IFF_BROADCAST != 0, "broadcast"),
            ] {
                if on {
                    flags.push(flag);
                }
            }
        }
        None => {
            // if-addrs knows the operational state and two flags, nothing more.
            if let Some(i) = listed {
                if i.up {
                    flags.extend(["up", "running"]);
                }
                if loopback {
                    flags.push("loopback");
                }
                if i.point_to_point {
                    flags.push("point-to-point");
                }
            }
        }
    }
    let mac = sysfs
        .then(|| read_sys(name, "address"))
        .flatten()
        .filter(|m| !m.is_empty() && m != "00:00:00:00:00:00");
    Link {
        name: name.to_owned(),
        index: listed
            .and_then(|i| i.index)
            .or_else(|| read_sys(name, "ifindex").and_then(|i| i.parse().ok())),
        class: interfaces::classify(name, loopback),
        flags,
        mtu: sysfs
            .then(|| read_sys(name, "mtu"))
            .flatten()
            .and_then(|m| m.parse().ok()),
        operstate,
        mac,
        addrs: listed
            .map(|i| {
                i.addrs
                    .iter()
                    .map(|a| LinkAddr {
                        ip: a.ip,
                        prefix_len: a.prefix_len,
                        scope: scope(a.ip),
                        dad: a.dad,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        permitted: ctx
            .filter()
            .permits(name, interfaces::classify(name, loopback)),
    }
}

pub(crate) fn check_interfaces<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let (links, errors, sysfs) = list_links(&env.ctx);
        let source = if sysfs {
            "addresses: getifaddrs (if-addrs); flags, MTU, state, MAC: /sys/class/net/<if>/"
        } else {
            "addresses and up/point-to-point: getifaddrs (if-addrs); MTU, MAC and other flags are not readable on this OS"
        };
        let usable: Vec<&Link> = links.iter().filter(|l| l.usable()).collect();
        let others: Vec<String> = links
            .iter()
            .filter(|l| !l.usable())
            .map(|l| format!("{} ({})", l.name, l.why_unusable()))
            .collect();
        let mut summary = if usable.is_empty() {
            "no usable interface (up, carrying, with an address, permitted by [interfaces])"
                .to_owned()
        } else {
            let list: Vec<String> = usable.iter().map(|l| l.brief()).collect();
            format!("usable: {}", list.join("; "))
        };
        if !others.is_empty() {
            summary.push_str(&format!("; not usable: {}", others.join(", ")));
        }
        let status = if usable.is_empty() {
            Status::Fail
        } else if usable
            .iter()
            .all(|l| matches!(l.class, InterfaceClass::Vpn | InterfaceClass::VirtualBridge))
        {
            summary.push_str(" — only tunnels and virtual bridges");
            Status::Warn
        } else {
            Status::Pass
        };
        for l in &links {
            tracing::debug!(
                interface = %l.name,
                class = l.class.as_str(),
                flags = %l.flags.join(","),
                mtu = l.mtu,
                addrs = ?l.addrs.iter().map(|a| format!("{}/{}", a.ip, a.prefix_len)).collect::<Vec<_>>(),
                permitted = l.permitted,
                "interface"
            );
        }
        let details = json!({ "source": source, "interfaces": links });
        state.links = Some(links);
        Finding::new(status, summary, details).with_errors(errors)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(scope("10.0.0.1".parse().unwrap()), "private");
        assert_eq!(scope("169.254.3.4".parse().unwrap()), "link-local");
        assert_eq!(scope("fe80::1".parse().unwrap()), "link-local");
        assert_eq!(scope("8.8.8.8".parse().unwrap()), "public");
        assert_eq!(scope("::1".parse().unwrap()), "loopback");
    }
}
