//! A host of the lab: its own network namespace, one port on the lab switch.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::LabError;
use crate::capture::Capture;
use crate::fault::Faults;
use crate::netns::{self, NsThread};
use crate::process::{self, ChildGuard};
use crate::spec::{self, ExtraKind, HostSpec};

/// Attaches to tunnel device `argv[1]` (ioctl TUNSETIFF with IFF_TUN | IFF_NO_PI), says so, and keeps it open.
const TUN_HOLDER: &str = "import fcntl, os, struct, sys, time
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', sys.argv[1].encode(), 0x0001 | 0x1000))
print('ready', flush=True)
while True:
    time.sleep(3600)
";

/// Starts the process that holds tunnel `name` open inside `netns` and waits until it did.
fn hold_tun(netns: &str, name: &str) -> Result<ChildGuard, LabError> {
    use std::io::BufRead as _;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, "python3", "-c", TUN_HOLDER, name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut guard = ChildGuard::spawn(&mut cmd)?;
    let stdout = guard.stdout.take();
    let mut line = String::new();
    if let Some(stdout) = stdout {
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| LabError::io(format!("holding tunnel {name} open"), e))?;
    }
    if line.trim() != "ready" {
        return Err(LabError::InvalidSpec(format!(
            "could not hold tunnel {name} open (python3 with /dev/net/tun needed)"
        )));
    }
    Ok(guard)
}

/// A host in a [`Lab`](crate::Lab): a network namespace with loopback and one LAN interface plugged into the lab
/// switch.
///
/// Cheap to clone (all clones are the same host) and `Send + Sync`, so it can be moved into threads. It does not
/// keep the lab alive: after the [`Lab`](crate::Lab) is dropped its namespaces are gone and every operation fails.
#[derive(Debug, Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

#[derive(Debug)]
struct HostInner {
    label: String,
    index: u8,
    netns: String,
    switch_netns: String,
    port: String,
    iface: String,
    ula: Option<Ipv6Addr>,
    files: std::path::PathBuf,
    state: Mutex<State>,
    /// The processes that keep the host's tunnels open (killed on drop, and by the lab's teardown).
    _tun_holders: Vec<ChildGuard>,
}

/// What can change after creation.
#[derive(Debug)]
struct State {
    addr: Ipv4Addr,
    prefix: u8,
    /// Routes to restore after an address change: removing a device's last address flushes its routes.
    routes: Vec<String>,
    faults: Faults,
}

impl Host {
    /// Creates the host namespace and plugs it into the switch; called by `Lab::add_host` after the namespace name
    /// was registered for teardown.
    pub(crate) fn create(
        spec: HostSpec,
        index: u8,
        netns: String,
        switch_netns: &str,
        files: std::path::PathBuf,
    ) -> Result<Self, LabError> {
        spec::check_ifname(&spec.iface)?;
        for extra in &spec.extras {
            spec::check_ifname(&extra.name)?;
            if extra.name == spec.iface {
                return Err(LabError::InvalidSpec(format!(
                    "extra interface {:?} clashes with the LAN interface",
                    extra.name
                )));
            }
            if let Some(cidr) = &extra.cidr {
                spec::parse_cidr(cidr)?;
            }
        }
        let n = index.checked_add(10).ok_or_else(|| {
            LabError::InvalidSpec(format!(
                "host index {index} is too large for 10.77.0.<10+index>"
            ))
        })?;
        let (addr, prefix) = match &spec.addr {
            Some(cidr) => spec::parse_cidr_v4(cidr)?,
            None => (Ipv4Addr::new(10, 77, 0, n), 24),
        };
        let iface = spec.iface.clone();
        let port = format!("p{index}");
        let ula = spec.ipv6_ula.then(|| spec::ula_for(n));

        let mut routes = Vec::new();
        match (&spec.default_dev, spec.default_route) {
            (Some(dev), _) => routes.push(format!("default dev {dev}")),
            (None, true) => routes.push(format!("default via {} dev {iface} onlink", spec.gateway)),
            (None, false) => {}
        }
        if spec.multicast_route.unwrap_or(!spec.default_route) {
            routes.push(format!("224.0.0.0/4 dev {iface}"));
        }

        process::run(Command::new("ip").args(["netns", "add", &netns]), None)?;
        // Before any interface exists, so they all inherit it: DAD would leave IPv6 addresses "tentative"
        // (unusable) for a second, and rp_filter must not depend on whatever the root namespace has.
        netns::write_sysctls(
            &netns,
            &[
                ("net.ipv6.conf.default.accept_dad", "0"),
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
                ("net.ipv4.conf.all.rp_filter", "0"),
            ],
        )?;

        let mut lines = vec![
            format!("link add {iface} type veth peer name {port} netns {switch_netns}"),
            "link set lo up".to_owned(),
            format!("addr add {addr}/{prefix} dev {iface}"),
        ];
        if let Some(ula) = ula {
            lines.push(format!("addr add {ula}/64 dev {iface} nodad"));
        }
        lines.push(format!("link set {iface} up"));
        let mut extra_ports = Vec::new();
        for (k, extra) in spec.extras.iter().enumerate() {
            let name = &extra.name;
            match extra.kind {
                ExtraKind::Bridge { .. } => lines.push(format!("link add {name} type bridge")),
                ExtraKind::Unplugged => lines.push(format!("link add {name} type veth")),
                ExtraKind::Tun => lines.push(format!("tuntap add dev {name} mode tun")),
                ExtraKind::Lan => {
                    let port = format!("p{index}x{k}");
                    lines.push(format!(
                        "link add {name} type veth peer name {port} netns {switch_netns}"
                    ));
                    let segment = extra.segment.as_deref().unwrap_or(spec::DEFAULT_SEGMENT);
                    extra_ports.push((port, segment.to_owned()));
                }
            }
            if let Some(cidr) = &extra.cidr {
                lines.push(format!("addr add {cidr} dev {name}"));
            }
            lines.push(format!("link set {name} up"));
            if extra.kind == (ExtraKind::Bridge { carrier: false }) {
                // A bridge drops its carrier when its ports are down or gone, and stays so: enslave a veth
                // (down, so no carrier) and delete it again. Deleting one end of a veth deletes both.
                let tmp = format!("lptmp{k}");
                lines.extend([
                    format!("link set {name} address 02:4c:50:00:{index:02x}:{k:02x}"),
                    format!("link add {tmp} type veth peer name {tmp}p"),
                    format!("link set {tmp} master {name}"),
                    format!("link del {tmp}"),
                ]);
            }
        }
        process::ip_batch(Some(&netns), &lines)?;

        // A tunnel has a carrier only while a process holds it open, as a VPN client does.
        let mut holders = Vec::new();
        for extra in spec.extras.iter().filter(|e| e.kind == ExtraKind::Tun) {
            holders.push(hold_tun(&netns, &extra.name)?);
        }
        // Routes last: a default route may name one of the extra interfaces.
        let route_lines: Vec<String> = routes.iter().map(|r| format!("route add {r}")).collect();
        process::ip_batch(Some(&netns), &route_lines)?;

        let mut port_lines = Vec::new();
        let mut plug = |port: &str, segment: &str, isolated: bool| {
            // The switch stays silent at layer 3: no link-local address, so no RS/MLD/DAD noise in captures.
            port_lines.push(format!("link set {port} addrgenmode none"));
            port_lines.push(format!("link set {port} master {segment}"));
            if isolated {
                port_lines.push(format!("link set dev {port} type bridge_slave isolated on"));
            }
            port_lines.push(format!("link set {port} up"));
        };
        plug(&port, &spec.segment, spec.isolated);
        for (extra_port, segment) in &extra_ports {
            plug(extra_port, segment, false);
        }
        process::ip_batch(Some(switch_netns), &port_lines)?;

        Ok(Self {
            inner: Arc::new(HostInner {
                label: spec.name.unwrap_or_else(|| format!("h{index}")),
                index,
                netns,
                switch_netns: switch_netns.to_owned(),
                port,
                iface,
                ula,
                files,
                state: Mutex::new(State {
                    addr,
                    prefix,
                    routes,
                    faults: Faults::default(),
                }),
                _tun_holders: holders,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The label (default `h<index>`).
    pub fn name(&self) -> &str {
        &self.inner.label
    }

    /// The 1-based index of the host in its lab.
    pub fn index(&self) -> u8 {
        self.inner.index
    }

    /// The network namespace name (for `ip netns exec`, `/run/netns/<name>`).
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// The LAN interface name inside the host.
    pub fn iface(&self) -> &str {
        &self.inner.iface
    }

    /// The name of this host's port on the lab switch (inside the switch namespace).
    pub fn switch_port(&self) -> &str {
        &self.inner.port
    }

    /// The current LAN IPv4 address.
    pub fn addr(&self) -> Ipv4Addr {
        self.state().addr
    }

    /// The current LAN address as CIDR, e.g. `10.77.0.11/24`.
    pub fn cidr(&self) -> String {
        let s = self.state();
        format!("{}/{}", s.addr, s.prefix)
    }

    /// This host's own directory on the shared filesystem (its `HOME`; `localpair` keeps its key
    /// and trust store in `state/localpair` below it). Removed with the lab.
    pub fn files(&self) -> &std::path::Path {
        &self.inner.files
    }

    /// Where `localpair` run on this host keeps its key and trust store.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.inner.files.join("state").join("localpair")
    }

    /// The ULA (`fd77::<n>`) if the spec asked for one.
    pub fn ula(&self) -> Option<Ipv6Addr> {
        self.inner.ula
    }

    /// The IPv6 link-local address of the LAN interface, read from the kernel.
    pub fn link_local_v6(&self) -> Result<Option<Ipv6Addr>, LabError> {
        let out = process::run(
            Command::new("ip").args([
                "-n",
                self.netns(),
                "-o",
                "-6",
                "addr",
                "show",
                "dev",
                self.iface(),
                "scope",
                "link",
            ]),
            None,
        )?;
        Ok(out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok()))
    }

    /// Moves the host to another LAN address, e.g. `"10.77.0.99/24"` or into another subnet (DHCP renumbering,
    /// roaming). The old address is removed, the new one added, and the host's routes restored.
    pub fn move_to(&self, cidr: &str) -> Result<(), LabError> {
        let (addr, prefix) = spec::parse_cidr_v4(cidr)?;
        self.set_addr(addr, prefix)
    }

    /// Like [`move_to`](Self::move_to), with the address and prefix length given separately.
    pub fn set_addr(&self, addr: Ipv4Addr, prefix: u8) -> Result<(), LabError> {
        if prefix > 32 {
            return Err(LabError::InvalidSpec(format!(
                "prefix length {prefix} > 32"
            )));
        }
        let mut state = self.state();
        let iface = self.iface();
        let mut lines = vec![
            format!("addr del {}/{} dev {iface}", state.addr, state.prefix),
            format!("addr add {addr}/{prefix} dev {iface}"),
        ];
        // `replace`: deleting the last address may or may not have flushed a route; both cases end the same.
        lines.extend(state.routes.iter().map(|r| format!("route replace {r}")));
        process::ip_batch(Some(self.netns()), &lines)?;
        state.addr = addr;
        state.prefix = prefix;
        Ok(())
    }

    /// Turns the switch port's `isolated` flag on or off (Wi-Fi AP/client isolation): two isolated ports cannot
    /// exchange anything, not even ARP or multicast.
    pub fn set_isolated(&self, on: bool) -> Result<(), LabError> {
        let flag = if on { "on" } else { "off" };
        process::ip_batch(
            Some(&self.inner.switch_netns),
            &[format!(
                "link set dev {} type bridge_slave isolated {flag}",
                self.inner.port
            )],
        )
    }

    /// Plugs (`true`) or unplugs (`false`) the cable: sets the switch side of the link up or down, so the host's
    /// interface loses its carrier (`NO-CARRIER`) while staying administratively up.
    pub fn set_link_up(&self, up: bool) -> Result<(), LabError> {
        let state = if up { "up" } else { "down" };
        process::ip_batch(
            Some(&self.inner.switch_netns),
            &[format!("link set dev {} {state}", self.inner.port)],
        )
    }

    /// The faults currently active.
    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    fn change_faults(&self, change: impl FnOnce(&mut Faults)) -> Result<(), LabError> {
        let mut state = self.state();
        let mut next = state.faults.clone();
        change(&mut next);
        next.apply(self.netns())?;
        state.faults = next;
        Ok(())
    }

    /// Drops every UDP datagram in and out of the host (see [`Faults`] for the exact scope).
    pub fn drop_udp(&self) -> Result<(), LabError> {
        self.change_faults(|f| f.drop_udp = true)
    }

    /// Drops multicast in and out of the host (see [`Faults::drop_multicast`]).
    pub fn drop_multicast(&self) -> Result<(), LabError> {
        self.change_faults(|f| f.drop_multicast = true)
    }

    /// Drops `percent` % of UDP datagrams at random, in each direction; 0 turns the loss off.
    pub fn udp_loss(&self, percent: u8) -> Result<(), LabError> {
        if percent > 100 {
            return Err(LabError::InvalidSpec(format!("udp loss {percent}% > 100%")));
        }
        self.change_faults(|f| f.udp_loss = percent)
    }

    /// Blocks TCP port `port` (as source or destination, both directions): connections to or from it time out.
    pub fn drop_tcp_port(&self, port: u16) -> Result<(), LabError> {
        self.change_faults(|f| {
            f.drop_tcp_ports.insert(port);
        })
    }

    /// Drops incoming TCP connections, as a host firewall does (see [`Faults::drop_tcp_in`]).
    pub fn drop_incoming_tcp(&self) -> Result<(), LabError> {
        self.change_faults(|f| f.drop_tcp_in = true)
    }

    /// Removes every fault (the host's nft table is deleted).
    pub fn clear_faults(&self) -> Result<(), LabError> {
        self.change_faults(|f| *f = Faults::default())
    }

    /// Runs `f` on a new OS thread inside this host's namespace and returns its result.
    ///
    /// Sockets the closure creates belong to the host. It may borrow from the caller (the call waits). A panic
    /// inside `f` is resumed on the caller, so assertions behave as if written inline; `Err` means the thread could
    /// not be started or could not enter the namespace.
    pub fn run<T, F>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        netns::run_in(self.netns(), f)
    }

    /// Starts `f` on a new OS thread inside this host's namespace, for long-running work (a server, a tokio
    /// runtime the closure builds itself). Returns once the thread has entered the namespace.
    pub fn spawn<T, F>(&self, f: F) -> Result<NsThread<T>, LabError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        netns::spawn_in(self.netns(), f)
    }

    /// A [`Command`] that runs `program` inside the host: `ip netns exec <netns> <program>`.
    ///
    /// `ip netns exec` execs the program in place, so the child's pid is the program's and killing it (e.g. via
    /// [`ChildGuard`](crate::ChildGuard)) kills the program.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns()]).arg(program);
        cmd
    }

    /// Runs a command inside the host and returns its stdout, e.g. `host.exec(["ip", "-j", "addr"])`; a non-zero
    /// exit is an error with the command line and stderr.
    pub fn exec<I, S>(&self, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args = args.into_iter();
        let program = args
            .next()
            .ok_or_else(|| LabError::InvalidSpec("exec needs at least a program".to_owned()))?;
        let mut cmd = self.command(program);
        cmd.args(args);
        process::run(&mut cmd, None)
    }

    /// Starts capturing packets on `iface` inside the host with `tcpdump` (must be installed); returns once
    /// tcpdump is listening. [`Capture::stop`] returns the pcap bytes.
    pub fn capture(&self, iface: &str) -> Result<Capture, LabError> {
        Capture::start(self, iface)
    }
}
