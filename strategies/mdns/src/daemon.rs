//! The mdns-sd daemon, owned: restricted to our interfaces before it does anything, and shut down
//! on every exit path.
//!
//! mdns-sd's daemon thread keeps a sender to its own command channel, so dropping every
//! `ServiceDaemon` handle does not stop it: without an explicit `shutdown` the thread and its
//! sockets live until the process ends. Hence the guard.

use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, Receiver, ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::error::Error;

/// How long each shutdown step may take. The chain runner aborts a stopped discoverer after
/// 300 ms, so the whole wind-down stays well inside that.
const STEP_TIMEOUT: Duration = Duration::from_millis(100);

pub(crate) struct Daemon {
    inner: ServiceDaemon,
    registered: Option<String>,
    browsing: Option<&'static str>,
    closed: bool,
}

impl Daemon {
    /// Starts a daemon that uses only the interfaces named (and no IPv6 unless `ipv6`).
    ///
    /// The selection is queued before any register or browse command, and the daemon runs its
    /// commands in order, so nothing is ever announced or asked on another interface. (mdns-sd
    /// does join the mDNS group on every interface when it starts, before it reads any command;
    /// that sends IGMP/MLD reports but no mDNS.)
    pub(crate) fn start(interfaces: &[String], ipv6: bool) -> Result<Self, Error> {
        let inner = ServiceDaemon::new().map_err(Error::daemon("start"))?;
        // Guard first, so that a failing command below still shuts the thread down.
        let daemon = Self {
            inner,
            registered: None,
            browsing: None,
            closed: false,
        };
        daemon
            .inner
            .disable_interface(IfKind::All)
            .map_err(Error::daemon("disable all interfaces"))?;
        let names: Vec<IfKind> = interfaces.iter().map(IfKind::from).collect();
        daemon
            .inner
            .enable_interface(names)
            .map_err(Error::daemon("enable the permitted interfaces"))?;
        if !ipv6 {
            daemon
                .inner
                .disable_interface(IfKind::IPv6)
                .map_err(Error::daemon("disable IPv6"))?;
        }
        // The 10-50 ms jitter before the first query was the largest share of the time to a
        // resident peer (median 26 of 54 ms in the lab). It guards against queriers started in
        // step by one network event; a session starts when a person or a program asks for it, and
        // the rest of the series (1 s, then doubling) is unchanged, so no more is sent.
        daemon
            .inner
            .set_initial_query_delay(false)
            .map_err(Error::daemon("send the first query at once"))?;
        Ok(daemon)
    }

    pub(crate) fn monitor(&self) -> Result<Receiver<DaemonEvent>, Error> {
        self.inner.monitor().map_err(Error::daemon("monitor"))
    }

    /// Registers (or re-registers with new TXT: mdns-sd re-announces on the same name).
    pub(crate) fn register(&mut self, info: ServiceInfo) -> Result<(), Error> {
        let fullname = info.get_fullname().to_owned();
        self.inner
            .register(info)
            .map_err(Error::daemon("register"))?;
        self.registered = Some(fullname);
        Ok(())
    }

    pub(crate) fn browse(
        &mut self,
        service_type: &'static str,
    ) -> Result<Receiver<ServiceEvent>, Error> {
        let events = self
            .inner
            .browse(service_type)
            .map_err(Error::daemon("browse"))?;
        self.browsing = Some(service_type);
        Ok(events)
    }

    /// The number of queries sent so far, if the daemon answers in time.
    pub(crate) async fn queries_sent(&self) -> Option<i64> {
        let metrics = self.inner.get_metrics().ok()?;
        let metrics = tokio::time::timeout(STEP_TIMEOUT, metrics.recv_async())
            .await
            .ok()?
            .ok()?;
        Some(metrics.get("browse").copied().unwrap_or(0))
    }

    /// Stops browsing, withdraws our service (goodbye packets), and stops the daemon thread,
    /// waiting for each step at most [`STEP_TIMEOUT`].
    pub(crate) async fn close(mut self) {
        self.closed = true;
        if let Some(ty) = self.browsing.take()
            && let Err(e) = self.inner.stop_browse(ty)
        {
            tracing::debug!(error = %e, "mdns: stop browse");
        }
        if let Some(fullname) = self.registered.take() {
            match self.inner.unregister(&fullname) {
                Ok(status) => {
                    if tokio::time::timeout(STEP_TIMEOUT, status.recv_async())
                        .await
                        .is_err()
                    {
                        tracing::debug!("mdns: unregister not confirmed within {STEP_TIMEOUT:?}");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "mdns: unregister"),
            }
        }
        match self.inner.shutdown() {
            Ok(status) => match tokio::time::timeout(STEP_TIMEOUT, status.recv_async()).await {
                Ok(Ok(_)) => tracing::debug!("mdns: daemon stopped"),
                Ok(Err(_)) => tracing::debug!("mdns: daemon gone before confirming shutdown"),
                Err(_) => {
                    tracing::warn!("mdns: daemon did not confirm shutdown within {STEP_TIMEOUT:?}");
                }
            },
            // Already shut down: nothing left to stop.
            Err(mdns_sd::Error::DaemonShutdown) => {}
            Err(e) => tracing::warn!(error = %e, "mdns: shutdown"),
        }
    }
}

impl Drop for Daemon {
    /// The session future was dropped mid-way (the chain aborted it): send the shutdown and wait
    /// briefly without an async runtime. `Exit` makes the daemon send goodbyes for our service too.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        match self.inner.shutdown() {
            Ok(status) => {
                if status.recv_timeout(STEP_TIMEOUT).is_err() {
                    tracing::debug!("mdns: daemon did not confirm shutdown on drop");
                }
            }
            Err(e) => tracing::debug!(error = %e, "mdns: shutdown on drop"),
        }
    }
}
