//! A router on the lab LAN: LAN side on the lab switch, WAN side on a bridge without ports (so
//! nothing it forwards leaves the namespace), optionally running a real UPnP IGD (miniupnpd).

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{self, ChildGuard};
use crate::spec::{self, HostSpec};
use crate::{DEFAULT_GATEWAY, Host, Lab, LabError};

/// The router's WAN interface: a bridge with no ports inside the router namespace.
pub const WAN_IFACE: &str = "wan0";

/// The WAN address a [`RouterSpec`] gets by default. miniupnpd refuses a private or reserved
/// external address (RFC 1918, CGNAT, documentation ranges), so it is a public-looking one; it is
/// never contacted, because the WAN bridge has no ports.
pub const DEFAULT_WAN: &str = "203.0.114.2/24";

/// How long `add_router` waits for miniupnpd to listen.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// nftables structure miniupnpd's nftables backend (Debian `miniupnpd-nftables` 2.3) adds its
/// rules to; without it `AddPortMapping` answers 501. The same as Debian's
/// `/etc/miniupnpd/nft_init.sh`, except that forwarding is accepted by default.
const NFT_CHAINS: &str = "table inet filter {
    chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
    chain miniupnpd { }
    chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
    chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
";

/// How to wire a router; a builder passed to [`Lab::add_router`].
///
/// Defaults: LAN interface `eth0` with [`DEFAULT_GATEWAY`]`/24` (so every lab host's default
/// route leads to it), WAN bridge `wan0` with [`DEFAULT_WAN`] and a default route out of it, IPv4
/// forwarding on, and miniupnpd running: HTTP port 5000, secure mode, mappings of ports
/// 1024-65535 allowed for the LAN subnet, friendly name "localpair lab IGD", NAT-PMP off.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    lan: Option<String>,
    wan: String,
    upnp: bool,
    nft_chains: bool,
    friendly_name: String,
    http_port: u16,
    extra_config: Vec<String>,
}

impl Default for RouterSpec {
    fn default() -> Self {
        Self {
            lan: None,
            wan: DEFAULT_WAN.to_owned(),
            upnp: true,
            nft_chains: true,
            friendly_name: "localpair lab IGD".to_owned(),
            http_port: 5000,
            extra_config: Vec::new(),
        }
    }
}

impl RouterSpec {
    /// The default spec (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The LAN address as CIDR (default `10.77.0.254/24`, the hosts' default gateway).
    pub fn lan(mut self, cidr: &str) -> Self {
        self.lan = Some(cidr.to_owned());
        self
    }

    /// The WAN address as CIDR (default [`DEFAULT_WAN`]). A private one makes miniupnpd report
    /// 0.0.0.0 as its external address (it refuses to hand out a private one).
    pub fn wan(mut self, cidr: &str) -> Self {
        self.wan = cidr.to_owned();
        self
    }

    /// Whether miniupnpd runs (default yes); without it the router only routes.
    pub fn upnp(mut self, on: bool) -> Self {
        self.upnp = on;
        self
    }

    /// Whether the nftables chains miniupnpd needs are created first (default yes); without them
    /// it answers searches and `GetExternalIPAddress`, but `AddPortMapping` fails with 501.
    pub fn nft_chains(mut self, on: bool) -> Self {
        self.nft_chains = on;
        self
    }

    /// The IGD's `friendlyName` (default "localpair lab IGD").
    pub fn friendly_name(mut self, name: &str) -> Self {
        self.friendly_name = name.to_owned();
        self
    }

    /// miniupnpd's HTTP port (default 5000).
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = port;
        self
    }

    /// Appends a line to the generated `miniupnpd.conf` (later lines win), e.g.
    /// `"force_igd_desc_v1=yes"` or a permission rule.
    pub fn config_line(mut self, line: &str) -> Self {
        self.extra_config.push(line.to_owned());
        self
    }
}

/// A router in a [`Lab`]: a [`Host`] with a WAN bridge, forwarding, and maybe miniupnpd.
///
/// Dropping it kills miniupnpd and deletes its files; the namespace goes with the lab.
#[derive(Debug)]
pub struct Router {
    host: Host,
    wan_addr: Ipv4Addr,
    http_port: u16,
    dir: PathBuf,
    daemon: Mutex<Option<ChildGuard>>,
}

impl Lab {
    /// Adds a router wired as `spec` says (see [`RouterSpec`]); with miniupnpd, returns once it
    /// listens for SSDP and HTTP.
    ///
    /// [`LabError::Unavailable`] when miniupnpd is asked for but not installed.
    pub fn add_router(&self, mut spec: RouterSpec) -> Result<Router, LabError> {
        let miniupnpd = if spec.upnp {
            Some(miniupnpd_path().map_err(LabError::Unavailable)?)
        } else {
            None
        };
        let (wan_addr, wan_len) = spec::parse_cidr_v4(&spec.wan)?;
        let lan = spec
            .lan
            .take()
            .unwrap_or_else(|| format!("{DEFAULT_GATEWAY}/24"));
        let host = self.add_host(
            HostSpec::new()
                .name("router")
                .addr(&lan)
                .default_route(false)
                .multicast_route(true)
                .extra_bridge(WAN_IFACE, &format!("{wan_addr}/{wan_len}")),
        )?;
        let wan_gateway = wan_gateway(wan_addr, wan_len);
        process::ip_batch(
            Some(host.netns()),
            &[format!(
                "route add default via {wan_gateway} dev {WAN_IFACE} onlink"
            )],
        )?;
        crate::netns::write_sysctls(host.netns(), &[("net.ipv4.ip_forward", "1")])?;
        let dir = std::env::temp_dir().join(format!("localpair-lab-{}", host.netns()));
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let router = Router {
            host,
            wan_addr,
            http_port: spec.http_port,
            dir,
            daemon: Mutex::new(None),
        };
        if let Some(program) = miniupnpd {
            router.start_miniupnpd(&program, spec)?;
        }
        Ok(router)
    }
}

impl Router {
    /// The router as a lab host (its namespace, `exec`, `run`, captures...).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The LAN address.
    pub fn lan_addr(&self) -> Ipv4Addr {
        self.host.addr()
    }

    /// The WAN address (what the IGD reports as external address, when it is public).
    pub fn wan_addr(&self) -> Ipv4Addr {
        self.wan_addr
    }

    /// The IGD's root description URL, e.g. `http://10.77.0.254:5000/rootDesc.xml`.
    pub fn description_url(&self) -> String {
        format!("http://{}:{}/rootDesc.xml", self.lan_addr(), self.http_port)
    }

    /// miniupnpd's port forwards as nftables shows them (the chain `prerouting_miniupnpd`, where
    /// each mapping is a `dnat` rule). Empty when there are none.
    pub fn port_forwards(&self) -> Result<String, LabError> {
        let out = self.host.exec([
            "nft",
            "list",
            "chain",
            "inet",
            "filter",
            "prerouting_miniupnpd",
        ])?;
        Ok(out
            .lines()
            .filter(|l| l.contains("dnat"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// What miniupnpd wrote so far (it runs in the foreground with debug output).
    pub fn miniupnpd_log(&self) -> String {
        fs::read_to_string(self.dir.join("miniupnpd.log")).unwrap_or_default()
    }

    /// Whether miniupnpd is still running.
    pub fn miniupnpd_running(&self) -> bool {
        let mut daemon = self.daemon.lock().unwrap_or_else(PoisonError::into_inner);
        daemon
            .as_mut()
            .is_some_and(|d| matches!(d.try_wait(), Ok(None)))
    }

    /// Stops miniupnpd (SIGTERM, then SIGKILL after a second); the router keeps routing.
    pub fn stop_miniupnpd(&self) {
        let daemon = self
            .daemon
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut daemon) = daemon {
            daemon.terminate();
            let _ = daemon.wait_timeout(Duration::from_secs(1));
        }
    }

    fn start_miniupnpd(&self, program: &Path, spec: RouterSpec) -> Result<(), LabError> {
        if spec.nft_chains {
            let mut nft = self.host.command("nft");
            nft.args(["-f", "-"]);
            process::run(&mut nft, Some(NFT_CHAINS))?;
        }
        let conf = self.dir.join("miniupnpd.conf");
        let log = self.dir.join("miniupnpd.log");
        let (lan_addr, lan_len) = spec::parse_cidr_v4(&self.host.cidr())?;
        let lan_net = Ipv4Addr::from(u32::from(lan_addr) & prefix_mask(lan_len));
        let mut lines = vec![
            format!("ext_ifname={WAN_IFACE}"),
            format!("listening_ip={}", self.host.iface()),
            format!("port={}", spec.http_port),
            "enable_upnp=yes".to_owned(),
            "enable_natpmp=no".to_owned(),
            "secure_mode=yes".to_owned(),
            "system_uptime=no".to_owned(),
            format!("friendly_name={}", spec.friendly_name),
            format!("uuid=4c504c41-4200-4000-8000-{:012x}", self.host.index()),
            format!("lease_file={}", self.dir.join("upnp.leases").display()),
        ];
        lines.extend(spec.extra_config);
        lines.extend([
            format!("allow 1024-65535 {lan_net}/{lan_len} 1024-65535"),
            "deny 0-65535 0.0.0.0/0 0-65535".to_owned(),
        ]);
        fs::write(&conf, lines.join("\n") + "\n")
            .map_err(|e| LabError::io(format!("writing {}", conf.display()), e))?;
        let log_file = fs::File::create(&log)
            .map_err(|e| LabError::io(format!("creating {}", log.display()), e))?;
        let stderr = log_file
            .try_clone()
            .map_err(|e| LabError::io("duplicating the log file", e))?;
        let mut cmd = self.host.command(program);
        cmd.arg("-f")
            .arg(&conf)
            .arg("-P")
            .arg(self.dir.join("miniupnpd.pid"))
            // Foreground, messages on stderr.
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr);
        let daemon = ChildGuard::spawn(&mut cmd)?;
        *self.daemon.lock().unwrap_or_else(PoisonError::into_inner) = Some(daemon);
        self.wait_listening()
    }

    /// Waits until miniupnpd listens on UDP 1900 and its HTTP port.
    fn wait_listening(&self) -> Result<(), LabError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let http = format!(":{}", self.http_port);
        loop {
            if !self.miniupnpd_running() {
                return Err(LabError::Command {
                    command: "miniupnpd".to_owned(),
                    status: "exited".to_owned(),
                    stderr: self.miniupnpd_log(),
                });
            }
            let udp = self.host.exec(["ss", "-Hlun", "sport = :1900"])?;
            let tcp = self.host.exec(["ss", "-Hltn"])?;
            if !udp.trim().is_empty() && tcp.lines().any(|l| l.contains(&http)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout(format!(
                    "miniupnpd did not listen within {START_TIMEOUT:?}; log: {}",
                    self.miniupnpd_log()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop_miniupnpd();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Where miniupnpd is, or why it cannot be used (for skipping tests outside CI).
pub fn miniupnpd_path() -> Result<PathBuf, String> {
    let path = process::find_in_path("miniupnpd").ok_or_else(|| {
        "miniupnpd is not installed (apt-get install miniupnpd miniupnpd-nftables; .ci/run does)"
            .to_owned()
    })?;
    let version = process::run(Command::new(&path).arg("--version"), None)
        .map_err(|e| format!("miniupnpd does not run: {e}"))?;
    if !version.contains("nftables") {
        return Err(format!(
            "{} is not the nftables build (apt-get install miniupnpd-nftables): {}",
            path.display(),
            version.trim()
        ));
    }
    Ok(path)
}

fn prefix_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The first address of the WAN subnet (or the one after the router's own, when that is it).
fn wan_gateway(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
    let first = (u32::from(addr) & prefix_mask(len)).wrapping_add(1);
    if first == u32::from(addr) {
        Ipv4Addr::from(first.wrapping_add(1))
    } else {
        Ipv4Addr::from(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wan_gateway_is_another_address_of_the_subnet() {
        assert_eq!(
            wan_gateway(Ipv4Addr::new(203, 0, 114, 2), 24),
            Ipv4Addr::new(203, 0, 114, 1)
        );
        assert_eq!(
            wan_gateway(Ipv4Addr::new(203, 0, 114, 1), 24),
            Ipv4Addr::new(203, 0, 114, 2)
        );
    }
}
