//! Ready-made labs for the situations real laptops are in, shared by the end-to-end tests and
//! lab-bench: each returns the laptop first, then a device next to it.

use crate::{Host, HostSpec, Lab, LabError};

/// A laptop on the LAN 10.84.0.0/24 (`eth0` 10.84.0.2) with a full-tunnel VPN: `tun0`
/// 100.64.0.2/32 holds the default route, as WireGuard or OpenVPN do; and a phone at 10.84.0.3
/// on the same LAN, without a default route.
pub fn full_tunnel_vpn(lab: &Lab) -> Result<(Host, Host), LabError> {
    let laptop = lab.add_host(
        HostSpec::new()
            .name("laptop")
            .addr("10.84.0.2/24")
            .extra_tun("tun0", "100.64.0.2/32")
            .default_dev("tun0"),
    )?;
    let phone = lab.add_host(
        HostSpec::new()
            .name("phone")
            .addr("10.84.0.3/24")
            .default_route(false),
    )?;
    Ok((laptop, phone))
}

/// A laptop on two networks: LAN A (segment `br0`, `eth0` 10.84.0.2/24, default route) and LAN
/// B (segment `lanb`, `eth1` 10.85.0.2/24); and a tablet on LAN B only (10.85.0.3, no default
/// route), for which LAN A is "Network is unreachable".
pub fn two_networks(lab: &Lab) -> Result<(Host, Host), LabError> {
    let laptop = lab.add_host(
        HostSpec::new()
            .name("laptop")
            .addr("10.84.0.2/24")
            .gateway(std::net::Ipv4Addr::new(10, 84, 0, 254))
            .extra_lan("eth1", "10.85.0.2/24", "lanb"),
    )?;
    let tablet = lab.add_host(
        HostSpec::new()
            .name("tablet")
            .segment("lanb")
            .addr("10.85.0.3/24")
            .default_route(false),
    )?;
    Ok((laptop, tablet))
}

/// A laptop on the LAN (default spec) with a Docker bridge `docker0` 172.17.0.1/16 that has a
/// carrier (a container runs), and a phone on the LAN.
pub fn docker_bridge(lab: &Lab) -> Result<(Host, Host), LabError> {
    let laptop = lab.add_host(
        HostSpec::new()
            .name("laptop")
            .extra_bridge("docker0", "172.17.0.1/16"),
    )?;
    let phone = lab.add_host(HostSpec::new().name("phone"))?;
    Ok((laptop, phone))
}
