//! Network lab for localpair's tests: a virtual LAN built from Linux network namespaces.
//!
//! A [`Lab`] is a "switch" namespace holding a bridge plus one namespace per [`Host`], joined by veth pairs that
//! are created directly inside the namespaces. Nothing touches the root namespace, so tests never send a packet
//! onto a real network. On a host you can run closures ([`Host::run`], [`Host::spawn`]) or programs
//! ([`Host::command`], [`Host::exec`]), inject faults with nftables ([`Host::drop_udp`], [`Host::udp_loss`],
//! [`Host::set_isolated`], ...), change its address ([`Host::move_to`]) and capture packets ([`Host::capture`]).
//! [`Lab::add_router`] adds a router whose WAN side is a bridge without ports, optionally running a real UPnP IGD
//! (miniupnpd). Dropping the lab deletes everything, also when the test panics.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); packet capture also needs `tcpdump`. Start every lab test with
//! [`lab_or_skip!`]: it skips when the lab cannot run here, except under `CI=...`, where it fails.
//!
//! The crate (`tests/` of the workspace) has three parts: this library in `src/`, the end-to-end suites that drive the
//! `localpair` binary in `e2e/`, and the `lab-bench` benchmark in `bench/`. The strategies' own lab suites
//! (`strategies/*/tests/`) use the library too: [`runtime()`] for a host's thread, [`discovery`] to run a discover
//! chain or one discoverer on a host, [`zeroconf`] and [`avahi`] as reference mDNS peers, [`pcap`] to read a
//! capture's UDP datagrams, and [`stats`] for every measurement's median and p95.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use localpair_lab::{lab_or_skip, HostSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = lab_or_skip!("doc_example", Ok(()));
//! let server = lab.add_host(HostSpec::new())?;
//! let client = lab.add_host(HostSpec::new().default_route(false))?;
//!
//! // Threads created inside the closure (a tokio runtime, say) stay in the host's namespace.
//! let listener = server.run(|| TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, 7000)))??;
//! let addr = server.addr();
//! let sent = client.spawn(move || -> std::io::Result<()> {
//!     TcpStream::connect((addr, 7000))?.write_all(b"hello")
//! })?;
//! let (mut conn, _) = listener.accept()?;
//! let mut got = String::new();
//! conn.read_to_string(&mut got)?;
//! sent.join()?;
//! assert_eq!(got, "hello");
//!
//! server.drop_udp()?; // until clear_faults()
//! println!("{}", client.exec(["ip", "-j", "addr"])?);
//! # Ok(())
//! # }
//! ```

pub mod attack;
pub mod avahi;
mod capture;
mod cli;
mod counter;
pub mod discovery;
mod error;
mod fault;
mod host;
mod lab;
mod netns;
pub mod pairs;
pub mod pcap;
mod process;
mod router;
mod runtime;
pub mod scenes;
mod spec;
pub mod stats;
mod usage;
pub mod zeroconf;

pub use capture::Capture;
pub use cli::{CLI_TIMEOUT, Localpair, Ran, Running};
pub use counter::{Count, Counters};
pub use error::LabError;
pub use fault::Faults;
pub use host::Host;
pub use lab::Lab;
pub use netns::NsThread;
pub use process::{ChildGuard, localpair_bin, workspace_bin};
pub use router::{DEFAULT_WAN, Router, RouterSpec, WAN_IFACE, miniupnpd_path};
pub use runtime::runtime;
pub use spec::{DEFAULT_GATEWAY, DEFAULT_SEGMENT, HostSpec};
pub use usage::{Usage, wait_for_exec};

/// Creates a [`Lab`] for a test, or returns from the test when labs cannot run here.
///
/// `lab_or_skip!("name")` returns `()`; `lab_or_skip!("name", value)` returns `value` (e.g. `Ok(())`). When the
/// env var `CI` is set and non-empty it fails the test instead of skipping (see [`Lab::new_or_skip`]).
///
/// ```no_run
/// # fn t() {
/// let lab = localpair_lab::lab_or_skip!("my_test");
/// # }
/// ```
#[macro_export]
macro_rules! lab_or_skip {
    ($test_name:expr) => {
        $crate::lab_or_skip!($test_name, ())
    };
    ($test_name:expr, $skipped:expr) => {
        match $crate::Lab::new_or_skip($test_name) {
            ::core::option::Option::Some(lab) => lab,
            ::core::option::Option::None => return $skipped,
        }
    };
}
