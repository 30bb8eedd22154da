//! Port mappings: add with a lease, renew at half the lease in the background, remove on shutdown.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;
use igd_next::{AddPortError, PortMappingProtocol, RemovePortError};
use localpair_core::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Used when the gateway finds the requested description too long (UPnP error 605).
const SHORT_DESCRIPTION: &str = "localpair";

/// Longest description sent (characters). IGD does not fix a limit; routers have refused long
/// ones, and a device name is user input.
const MAX_DESCRIPTION: usize = 64;

/// The shortest renewal interval, whatever the lease.
const MIN_RENEW: Duration = Duration::from_secs(1);

/// What a mapping needs from a gateway: a seam so the lease logic can be tested with a fake.
#[async_trait]
pub(crate) trait Mapper: Send + Sync + fmt::Debug + 'static {
    /// `AddPortMapping` (TCP) from `external_port` to `local` with `lease_secs` (0 = permanent).
    async fn add(
        &self,
        external_port: u16,
        local: SocketAddrV4,
        lease_secs: u32,
        description: &str,
    ) -> Result<(), AddPortError>;

    /// `DeletePortMapping` (TCP) of `external_port`.
    async fn remove(&self, external_port: u16) -> Result<(), RemovePortError>;
}

#[async_trait]
impl Mapper for Gateway<Tokio> {
    async fn add(
        &self,
        external_port: u16,
        local: SocketAddrV4,
        lease_secs: u32,
        description: &str,
    ) -> Result<(), AddPortError> {
        self.add_port(
            PortMappingProtocol::TCP,
            external_port,
            SocketAddr::V4(local),
            lease_secs,
            description,
        )
        .await
    }

    async fn remove(&self, external_port: u16) -> Result<(), RemovePortError> {
        self.remove_port(PortMappingProtocol::TCP, external_port)
            .await
    }
}

/// A TCP port mapping on a UPnP gateway, kept alive while this value lives.
///
/// A background task renews the lease at half its length (on the tokio runtime that created the
/// mapping). [`shutdown`](Self::shutdown) stops it and removes the mapping; dropping the value
/// stops it too and removes the mapping on a best-effort basis (a task is spawned when a tokio
/// runtime is still there; otherwise the mapping stays until its lease runs out).
pub struct Mapping {
    shared: Arc<Shared>,
    stop: CancellationToken,
    renew: Option<JoinHandle<()>>,
    removed: bool,
}

/// What to map, and how.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) gateway: Ipv4Addr,
    pub(crate) external_ip: Option<Ipv4Addr>,
    pub(crate) external_port: u16,
    pub(crate) local: SocketAddrV4,
    pub(crate) description: String,
    pub(crate) lease_secs: u32,
    pub(crate) request_timeout: Duration,
}

struct Shared {
    mapper: Arc<dyn Mapper>,
    gateway: Ipv4Addr,
    external_ip: Option<Ipv4Addr>,
    external_port: u16,
    local: SocketAddrV4,
    description: Mutex<String>,
    request_timeout: Duration,
    /// The lease granted, in seconds; 0 = permanent (no renewal).
    lease_secs: AtomicU32,
    renewals: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("gateway", &self.shared.gateway)
            .field("external_port", &self.shared.external_port)
            .field("local", &self.shared.local)
            .field("lease", &self.lease())
            .field("renewals", &self.renewals())
            .finish_non_exhaustive()
    }
}

impl Mapping {
    /// Adds the mapping (falling back to a permanent lease when the gateway only supports those)
    /// and starts renewing it.
    pub(crate) async fn add(mapper: Arc<dyn Mapper>, request: Request) -> Result<Self, Error> {
        let Request {
            gateway,
            external_ip,
            external_port,
            local,
            description,
            lease_secs,
            request_timeout,
        } = request;
        let description: String = description.chars().take(MAX_DESCRIPTION).collect();
        let shared = Arc::new(Shared {
            mapper,
            gateway,
            external_ip,
            external_port,
            local,
            description: Mutex::new(description),
            request_timeout,
            lease_secs: AtomicU32::new(lease_secs),
            renewals: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let granted = shared.add(lease_secs).await?;
        shared.lease_secs.store(granted, Ordering::Relaxed);
        tracing::info!(
            %gateway, external_port, %local, lease_secs = granted,
            "UPnP port mapping added"
        );
        let stop = CancellationToken::new();
        let renew = (granted > 0).then(|| tokio::spawn(renew(Arc::clone(&shared), stop.clone())));
        Ok(Self {
            shared,
            stop,
            renew,
            removed: false,
        })
    }

    /// The gateway holding the mapping.
    pub fn gateway(&self) -> Ipv4Addr {
        self.shared.gateway
    }

    /// The external port.
    pub fn external_port(&self) -> u16 {
        self.shared.external_port
    }

    /// The external address and port, when the gateway reported a usable external address.
    pub fn external_addr(&self) -> Option<SocketAddrV4> {
        self.shared
            .external_ip
            .map(|ip| SocketAddrV4::new(ip, self.shared.external_port))
    }

    /// Where the gateway forwards to.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.shared.local
    }

    /// The description the gateway shows for the mapping.
    pub fn description(&self) -> String {
        lock(&self.shared.description).clone()
    }

    /// The lease the gateway granted; `None` for a permanent mapping (removed on shutdown).
    pub fn lease(&self) -> Option<Duration> {
        match self.shared.lease_secs.load(Ordering::Relaxed) {
            0 => None,
            secs => Some(Duration::from_secs(u64::from(secs))),
        }
    }

    /// Successful renewals so far.
    pub fn renewals(&self) -> u64 {
        self.shared.renewals.load(Ordering::Relaxed)
    }

    /// Why the last renewal failed, if it did (cleared by the next success).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }

    /// Stops renewing and removes the mapping (waiting at most the request timeout). A mapping
    /// the gateway no longer has counts as removed.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.removed = true;
        self.stop.cancel();
        if let Some(task) = self.renew.take() {
            // The task ends at the cancellation; it never panics, so the join result is moot.
            let _ = task.await;
        }
        let result = self.shared.remove().await;
        if result.is_ok() {
            tracing::info!(
                gateway = %self.shared.gateway, external_port = self.shared.external_port,
                "UPnP port mapping removed"
            );
        }
        result
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        self.stop.cancel();
        if let Some(task) = self.renew.take() {
            task.abort();
        }
        let shared = Arc::clone(&self.shared);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = shared.remove().await {
                        tracing::warn!(%error, "removing the UPnP port mapping on drop");
                    }
                });
            }
            Err(_) => tracing::warn!(
                gateway = %shared.gateway, external_port = shared.external_port,
                "UPnP port mapping dropped outside a tokio runtime: it stays until its lease ends"
            ),
        }
    }
}

impl Shared {
    /// `AddPortMapping` with the lease fallback; returns the lease granted.
    async fn add(&self, lease_secs: u32) -> Result<u32, Error> {
        let mut lease = lease_secs;
        let mut description = lock(&self.description).clone();
        // At most three tries: the request, then without a lease, then with a short description.
        for _ in 0..3 {
            match self.add_once(lease, &description).await {
                Ok(()) => return Ok(lease),
                Err(Attempt::Refused(AddPortError::OnlyPermanentLeasesSupported)) if lease != 0 => {
                    tracing::info!(
                        gateway = %self.gateway,
                        "the gateway only supports permanent port mappings (UPnP error 725): \
                         mapping without a lease, removed on shutdown"
                    );
                    lease = 0;
                }
                Err(Attempt::Refused(AddPortError::DescriptionTooLong))
                    if description != SHORT_DESCRIPTION =>
                {
                    description = SHORT_DESCRIPTION.to_owned();
                    *lock(&self.description) = description.clone();
                }
                Err(failure) => return Err(self.add_error(&failure)),
            }
        }
        Err(Error::AddPort {
            gateway: self.gateway,
            external_port: self.external_port,
            local: self.local,
            reason: "the gateway kept refusing".to_owned(),
        })
    }

    async fn add_once(&self, lease_secs: u32, description: &str) -> Result<(), Attempt> {
        let add = self
            .mapper
            .add(self.external_port, self.local, lease_secs, description);
        match tokio::time::timeout(self.request_timeout, add).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Attempt::Refused(error)),
            Err(_) => Err(Attempt::TimedOut(self.request_timeout)),
        }
    }

    fn add_error(&self, failure: &Attempt) -> Error {
        Error::AddPort {
            gateway: self.gateway,
            external_port: self.external_port,
            local: self.local,
            reason: failure.to_string(),
        }
    }

    async fn remove(&self) -> Result<(), Error> {
        let remove = self.mapper.remove(self.external_port);
        let reason = match tokio::time::timeout(self.request_timeout, remove).await {
            Ok(Ok(())) | Ok(Err(RemovePortError::NoSuchPortMapping)) => return Ok(()),
            Ok(Err(error)) => crate::gateway::short(&error.to_string()),
            Err(_) => format!("no answer within {} ms", self.request_timeout.as_millis()),
        };
        Err(Error::RemovePort {
            gateway: self.gateway,
            external_port: self.external_port,
            reason,
        })
    }
}

enum Attempt {
    Refused(AddPortError),
    TimedOut(Duration),
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(error) => f.write_str(&crate::gateway::short(&error.to_string())),
            Self::TimedOut(after) => write!(f, "no answer within {} ms", after.as_millis()),
        }
    }
}

/// Renews at half the lease until stopped; a failed renewal is retried after an eighth of the
/// lease (at least a second), so a lost request does not let the mapping lapse.
async fn renew(shared: Arc<Shared>, stop: CancellationToken) {
    let mut wait = half(shared.lease_secs.load(Ordering::Relaxed));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let lease = shared.lease_secs.load(Ordering::Relaxed);
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = shared.add(lease) => result,
        };
        match result {
            Ok(0) => {
                shared.lease_secs.store(0, Ordering::Relaxed);
                shared.renewals.fetch_add(1, Ordering::Relaxed);
                *lock(&shared.last_error) = None;
                return;
            }
            Ok(granted) => {
                shared.lease_secs.store(granted, Ordering::Relaxed);
                shared.renewals.fetch_add(1, Ordering::Relaxed);
                *lock(&shared.last_error) = None;
                tracing::debug!(gateway = %shared.gateway, external_port = shared.external_port, "UPnP port mapping renewed");
                wait = half(granted);
            }
            Err(error) => {
                tracing::warn!(%error, "renewing the UPnP port mapping");
                *lock(&shared.last_error) = Some(error.to_string());
                wait = (Duration::from_secs(u64::from(lease)) / 8).max(MIN_RENEW);
            }
        }
    }
}

fn half(lease_secs: u32) -> Duration {
    (Duration::from_secs(u64::from(lease_secs)) / 2).max(MIN_RENEW)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway that records requests and answers from a script.
    #[derive(Debug, Default)]
    struct Fake {
        only_permanent: bool,
        max_description: Option<usize>,
        /// Fail this many adds (after the first) with a generic error.
        fail_renewals: AtomicU32,
        adds: Mutex<Vec<(u32, String)>>,
        removes: Mutex<Vec<u16>>,
        remove_missing: bool,
    }

    #[async_trait]
    impl Mapper for Fake {
        async fn add(
            &self,
            _external_port: u16,
            _local: SocketAddrV4,
            lease_secs: u32,
            description: &str,
        ) -> Result<(), AddPortError> {
            let first = {
                let mut adds = lock(&self.adds);
                adds.push((lease_secs, description.to_owned()));
                adds.len() == 1
            };
            if self.only_permanent && lease_secs != 0 {
                return Err(AddPortError::OnlyPermanentLeasesSupported);
            }
            if self.max_description.is_some_and(|m| description.len() > m) {
                return Err(AddPortError::DescriptionTooLong);
            }
            if !first
                && self
                    .fail_renewals
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(AddPortError::PortInUse);
            }
            Ok(())
        }

        async fn remove(&self, external_port: u16) -> Result<(), RemovePortError> {
            lock(&self.removes).push(external_port);
            if self.remove_missing {
                Err(RemovePortError::NoSuchPortMapping)
            } else {
                Ok(())
            }
        }
    }

    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 11), 7000);
    const GW: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

    async fn add(fake: &Arc<Fake>, lease: u32) -> Result<Mapping, Error> {
        Mapping::add(
            Arc::clone(fake) as Arc<dyn Mapper>,
            Request {
                gateway: GW,
                external_ip: Some(Ipv4Addr::new(203, 0, 114, 2)),
                external_port: 7000,
                local: LOCAL,
                description: "localpair test device".into(),
                lease_secs: lease,
                request_timeout: Duration::from_millis(500),
            },
        )
        .await
    }

    #[tokio::test]
    async fn falls_back_to_a_permanent_lease_on_725() {
        let fake = Arc::new(Fake {
            only_permanent: true,
            ..Fake::default()
        });
        let mapping = add(&fake, 3600).await.unwrap();
        assert_eq!(mapping.lease(), None);
        assert!(
            mapping.renew.is_none(),
            "a permanent mapping is not renewed"
        );
        let leases: Vec<u32> = lock(&fake.adds).iter().map(|(l, _)| *l).collect();
        assert_eq!(leases, [3600, 0]);
        mapping.shutdown().await.unwrap();
        assert_eq!(*lock(&fake.removes), [7000]);
    }

    #[tokio::test]
    async fn keeps_the_lease_when_accepted() {
        let fake = Arc::new(Fake::default());
        let mapping = add(&fake, 3600).await.unwrap();
        assert_eq!(mapping.lease(), Some(Duration::from_secs(3600)));
        assert_eq!(
            mapping.external_addr(),
            Some("203.0.114.2:7000".parse().unwrap())
        );
        assert_eq!(mapping.description(), "localpair test device");
        mapping.shutdown().await.unwrap();
        assert_eq!(lock(&fake.adds).len(), 1);
    }

    #[tokio::test]
    async fn a_too_long_description_is_shortened() {
        let fake = Arc::new(Fake {
            max_description: Some(12),
            ..Fake::default()
        });
        let mapping = add(&fake, 3600).await.unwrap();
        assert_eq!(mapping.description(), SHORT_DESCRIPTION);
        mapping.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn refusals_are_errors_naming_the_gateway() {
        let fake = Arc::new(Fake {
            only_permanent: true,
            max_description: Some(1),
            ..Fake::default()
        });
        let err = add(&fake, 3600).await.unwrap_err().to_string();
        assert!(err.contains("10.77.0.1"), "{err}");
        assert!(err.contains("external port 7000"), "{err}");
        assert!(err.contains("description was too long"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn renews_at_half_the_lease_and_retries_failures_sooner() {
        let fake = Arc::new(Fake {
            fail_renewals: AtomicU32::new(1),
            ..Fake::default()
        });
        let mapping = add(&fake, 80).await.unwrap();
        // 40 s: the first renewal fails; retried after 10 s (an eighth), then every 40 s.
        tokio::time::sleep(Duration::from_secs(41)).await;
        assert_eq!(mapping.renewals(), 0);
        assert!(mapping.last_error().is_some());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(mapping.renewals(), 1);
        assert_eq!(mapping.last_error(), None);
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert_eq!(mapping.renewals(), 2);
        let leases: Vec<u32> = lock(&fake.adds).iter().map(|(l, _)| *l).collect();
        assert_eq!(leases, [80, 80, 80, 80]);
        mapping.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_mapping_already_gone_counts_as_removed() {
        let fake = Arc::new(Fake {
            remove_missing: true,
            ..Fake::default()
        });
        add(&fake, 3600).await.unwrap().shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn drop_removes_in_the_background() {
        let fake = Arc::new(Fake::default());
        drop(add(&fake, 3600).await.unwrap());
        for _ in 0..100 {
            if !lock(&fake.removes).is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(*lock(&fake.removes), [7000]);
    }
}
