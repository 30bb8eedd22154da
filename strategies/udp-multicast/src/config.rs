//! `[strategies.udp-multicast]` (shared by the discoverer and the `peer-observed` resolver, so
//! both speak on the same group) and `[strategies.peer-observed]`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::Error;

const TABLE: &str = "strategies.udp-multicast";
const OBSERVE_TABLE: &str = "strategies.peer-observed";

/// Options of the udp-multicast discoverer; the `peer-observed` resolver announces with these
/// too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// IPv4 group. Default `239.255.76.80`: in 239.255.0.0/16, the IPv4 Local Scope of RFC 2365,
    /// which routers keep inside the site (and TTL 1 keeps on the link); 76.80 is "LP" in ASCII.
    #[serde(deserialize_with = "de_group_v4")]
    pub group_v4: Ipv4Addr,
    /// IPv6 group, link-local scope (`ffx2::/16`). Default `ff12::4c50:1`: transient flag set,
    /// because the address is not assigned by IANA.
    #[serde(deserialize_with = "de_group_v6")]
    pub group_v6: Ipv6Addr,
    /// UDP port of both groups. Default `19536` (0x4C50, "LP"): not a well-known port, and below
    /// the ephemeral ranges of Linux (32768+) and Windows (49152+), so no outgoing connection
    /// holds it by chance.
    #[serde(deserialize_with = "de_port")]
    pub port: u16,
    /// Also announce on the IPv6 group over each interface's link-local address. Default true.
    pub ipv6: bool,
    /// Offsets (ms from start) of the start-up burst. Default `[0, 100, 500, 1500]`; at most 10,
    /// each at most 60000.
    #[serde(deserialize_with = "de_burst")]
    pub burst_ms: Vec<u64>,
    /// Interval of announcements once the burst and the back-off (2 s, 4 s, ...) reach it.
    /// Default 5000; at least 1000, so an interface never carries more than one announcement
    /// a second in steady state. Peers silent for 3 intervals are forgotten.
    #[serde(deserialize_with = "de_steady")]
    pub steady_interval_ms: u64,
    /// Least time between two answers on one interface (answers go out at once when a new peer
    /// is heard). Default 250; at least 100.
    #[serde(deserialize_with = "de_answer")]
    pub answer_interval_ms: u64,
    /// Tell each newly heard peer's confirmation listener the address we saw it at, so its
    /// `peer-observed` resolver can confirm it. Default true.
    pub report_observations: bool,
    /// Limit for one such report (TCP connect, TLS handshake, one exchange). Default 1500;
    /// 1..=30000.
    #[serde(deserialize_with = "de_report_timeout")]
    pub report_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group_v4: Ipv4Addr::new(239, 255, 76, 80),
            group_v6: Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0x4c50, 1),
            port: 19536,
            ipv6: true,
            burst_ms: vec![0, 100, 500, 1500],
            steady_interval_ms: 5000,
            answer_interval_ms: 250,
            report_observations: true,
            report_timeout_ms: 1500,
        }
    }
}

impl Config {
    /// Checks every value (tables read through the registry are checked while they are
    /// parsed; this is for configs built in code). The error names the key.
    pub fn validate(&self) -> Result<(), Error> {
        let key = |name: &str| format!("{TABLE}.{name}");
        check_group_v4(&self.group_v4).map_err(|r| Error::config(&key("group_v4"), r))?;
        check_group_v6(&self.group_v6).map_err(|r| Error::config(&key("group_v6"), r))?;
        check_port(&self.port).map_err(|r| Error::config(&key("port"), r))?;
        check_burst(&self.burst_ms).map_err(|r| Error::config(&key("burst_ms"), r))?;
        check_steady(&self.steady_interval_ms)
            .map_err(|r| Error::config(&key("steady_interval_ms"), r))?;
        check_answer(&self.answer_interval_ms)
            .map_err(|r| Error::config(&key("answer_interval_ms"), r))?;
        check_report_timeout(&self.report_timeout_ms)
            .map_err(|r| Error::config(&key("report_timeout_ms"), r))?;
        Ok(())
    }

    /// The burst offsets, sorted.
    pub(crate) fn burst(&self) -> Vec<Duration> {
        let mut burst: Vec<Duration> = self
            .burst_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        burst.sort_unstable();
        burst
    }

    pub(crate) fn steady_interval(&self) -> Duration {
        Duration::from_millis(self.steady_interval_ms)
    }

    pub(crate) fn answer_interval(&self) -> Duration {
        Duration::from_millis(self.answer_interval_ms)
    }

    pub(crate) fn report_timeout(&self) -> Duration {
        Duration::from_millis(self.report_timeout_ms)
    }

    /// Silence after which a peer is forgotten: three announcement intervals, counted with the
    /// largest jitter a sender adds (10 %).
    pub(crate) fn expire_after(&self) -> Duration {
        self.steady_interval() * 3 + self.steady_interval() * 3 / 10
    }
}

/// Options of the `peer-observed` resolver. The group, port and timing it announces with come
/// from `[strategies.udp-multicast]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ObserveConfig {
    /// How long to announce and wait for a peer to report where it saw us. Default 3000;
    /// 100..=60000. Shortened to end 400 ms before `[resolve]` `strategy_timeout_ms` or
    /// `deadline_ms`, so a silence is explained rather than cut off. The answer comes 250 ms
    /// after the first confirmed report, not at the end of the wait.
    #[serde(deserialize_with = "de_wait")]
    pub wait_ms: u64,
    /// Give up this early when no peer at all has been heard: peers answer our start-up burst at
    /// once, so silence after this long means nobody is there to report. Default 500; 100..=60000.
    #[serde(deserialize_with = "de_wait")]
    pub alone_ms: u64,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        Self {
            wait_ms: 3000,
            alone_ms: 500,
        }
    }
}

impl ObserveConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), Error> {
        check_wait(&self.wait_ms)
            .map_err(|r| Error::config(&format!("{OBSERVE_TABLE}.wait_ms"), r))?;
        check_wait(&self.alone_ms)
            .map_err(|r| Error::config(&format!("{OBSERVE_TABLE}.alone_ms"), r))
    }

    pub(crate) fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }

    pub(crate) fn alone(&self) -> Duration {
        Duration::from_millis(self.alone_ms)
    }
}

type Check<T> = fn(&T) -> Result<(), String>;

fn check_group_v4(group: &Ipv4Addr) -> Result<(), String> {
    if group.is_multicast() {
        Ok(())
    } else {
        Err(format!("{group} is not a multicast address"))
    }
}

fn check_group_v6(group: &Ipv6Addr) -> Result<(), String> {
    if group.is_multicast() && group.segments()[0] & 0x000f == 2 {
        Ok(())
    } else {
        Err(format!(
            "{group} is not a link-local multicast group (ff02::/16 or ff12::/16)"
        ))
    }
}

fn check_port(port: &u16) -> Result<(), String> {
    if *port == 0 {
        Err("port 0 cannot be joined".to_owned())
    } else {
        Ok(())
    }
}

#[allow(clippy::ptr_arg, reason = "the checks share one signature, `fn(&T)`")]
fn check_burst(burst: &Vec<u64>) -> Result<(), String> {
    if burst.len() > 10 || burst.iter().any(|ms| *ms > 60_000) {
        Err("at most 10 offsets, each at most 60000".to_owned())
    } else {
        Ok(())
    }
}

fn check_steady(ms: &u64) -> Result<(), String> {
    if *ms < 1000 {
        Err(format!(
            "{ms} is under 1000: more than one announcement a second per interface"
        ))
    } else {
        Ok(())
    }
}

fn check_answer(ms: &u64) -> Result<(), String> {
    if *ms < 100 {
        Err(format!("{ms} is under 100"))
    } else {
        Ok(())
    }
}

fn check_report_timeout(ms: &u64) -> Result<(), String> {
    in_range(*ms, 1, 30_000)
}

fn check_wait(ms: &u64) -> Result<(), String> {
    in_range(*ms, 100, 60_000)
}

fn in_range(ms: u64, min: u64, max: u64) -> Result<(), String> {
    if (min..=max).contains(&ms) {
        Ok(())
    } else {
        Err(format!("{ms} is outside {min}..={max}"))
    }
}

/// Deserializes and checks a value, so a bad table is a config error naming its key and source
/// (exit status 2) rather than a failure at run time.
fn checked<'de, D, T>(deserializer: D, check: Check<T>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let value = T::deserialize(deserializer)?;
    check(&value).map_err(serde::de::Error::custom)?;
    Ok(value)
}

macro_rules! checked_fields {
    ($($name:ident: $ty:ty = $check:ident;)*) => {
        $(
            fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                checked(deserializer, $check)
            }
        )*
    };
}

checked_fields! {
    de_group_v4: Ipv4Addr = check_group_v4;
    de_group_v6: Ipv6Addr = check_group_v6;
    de_port: u16 = check_port;
    de_burst: Vec<u64> = check_burst;
    de_steady: u64 = check_steady;
    de_answer: u64 = check_answer;
    de_report_timeout: u64 = check_report_timeout;
    de_wait: u64 = check_wait;
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::config::{Settings, Source};

    fn load(toml: &str) -> Result<Config, Error> {
        let settings = Settings::load(Source::Toml(toml.to_owned()))?;
        let config: Config = settings.strategy_table("udp-multicast").extract()?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(load("").unwrap(), Config::default());
        ObserveConfig::default().validate().unwrap();
        assert!(
            Config::default()
                .group_v4
                .to_string()
                .starts_with("239.255.")
        );
        assert_eq!(Config::default().group_v6.to_string(), "ff12::4c50:1");
    }

    #[test]
    fn keys_parse() {
        let c = load(
            "[strategies.udp-multicast]\ngroup_v4 = \"239.255.1.2\"\ngroup_v6 = \"ff02::99\"\n\
             port = 4000\nipv6 = false\nburst_ms = [200, 0]\nsteady_interval_ms = 2000\n\
             answer_interval_ms = 500\nreport_observations = false\nreport_timeout_ms = 900\n",
        )
        .unwrap();
        assert_eq!(c.port, 4000);
        assert_eq!(
            c.burst(),
            [Duration::ZERO, Duration::from_millis(200)].to_vec()
        );
        assert!(!c.ipv6 && !c.report_observations);
        assert_eq!(c.expire_after(), Duration::from_millis(6600));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (toml, key) in [
            ("group_v4 = \"10.0.0.1\"", "group_v4"),
            ("group_v6 = \"ff05::1\"", "group_v6"),
            ("port = 0", "port"),
            ("steady_interval_ms = 999", "steady_interval_ms"),
            ("answer_interval_ms = 10", "answer_interval_ms"),
            ("burst_ms = [0,1,2,3,4,5,6,7,8,9,10]", "burst_ms"),
            ("report_timeout_ms = 0", "report_timeout_ms"),
            ("prot = 1", "prot"),
        ] {
            let err = load(&format!("[strategies.udp-multicast]\n{toml}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("strategies.udp-multicast.{key}")),
                "{err}"
            );
        }
        let err = ObserveConfig {
            wait_ms: 0,
            ..ObserveConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("strategies.peer-observed.wait_ms"), "{err}");
    }
}
