//! What every strategy gets: settings, identity, interface filter, the confirmation listener, and
//! a cancellation token for the whole operation.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Settings};
use crate::confirm::Confirmer;
use crate::error::{Error, FailureKind, StrategyError};
use crate::identity::Identity;
use crate::interfaces::{Interface, InterfaceFilter};
use crate::state::StateDir;

/// Shared, cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    identity: Arc<Identity>,
    filter: InterfaceFilter,
    confirmer: Option<Confirmer>,
    state: Option<StateDir>,
    cancel: CancellationToken,
    advert: watch::Sender<Advert>,
    join_target: watch::Sender<Option<JoinTarget>>,
}

/// The device a joining application is looking for, once it knows it (a pairing code in hand).
/// Discoverers that only make sense while joining (dialling the known addresses, scanning the
/// subnet for the port) wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JoinTarget {
    /// The device's key fingerprint.
    pub fingerprint: crate::identity::Fingerprint,
    /// The port its listener is on.
    pub port: u16,
    /// The addresses it is known at, best first.
    pub candidates: Vec<std::net::IpAddr>,
    /// The session tag it announces.
    pub session_tag: [u8; 8],
    /// The ALPN its listener speaks, for a TLS handshake that checks it is really there.
    pub alpn: &'static [u8],
}

impl JoinTarget {
    /// A target: the device with key `fingerprint`, listening on `port` with `alpn`.
    pub fn new(
        fingerprint: crate::identity::Fingerprint,
        port: u16,
        candidates: Vec<std::net::IpAddr>,
        session_tag: [u8; 8],
        alpn: &'static [u8],
    ) -> Self {
        Self {
            fingerprint,
            port,
            candidates,
            session_tag,
            alpn,
        }
    }
}

/// What discoverers announce beyond the device's identity: set while this device hosts a pairing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Advert {
    /// Port of the pairing listener.
    pub pairing_port: Option<u16>,
    /// Session tag derived from the pairing secret, so a joiner holding the code can pick this
    /// host among many without the secret being sent.
    pub session_tag: Option<[u8; 8]>,
    /// Port of the link listener, while this device accepts connections from the peers it knows
    /// (the advert says so without naming them).
    pub link_port: Option<u16>,
    /// The listener this device offers to one it cannot reach, while it waits to be dialled.
    pub offer: Option<crate::peer::Offer>,
    /// The short-code channel (10–99) of the pairing this device hosts, when it hosts one with a
    /// code a person types: a joiner looks only at hosts on the channel it was told. Never
    /// derived from a secret; the session tag beside it is then a random nonce.
    pub short_channel: Option<u8>,
}

impl Advert {
    /// An advert for a pairing listener on `port` with an optional session tag.
    pub fn pairing(port: u16, session_tag: Option<[u8; 8]>) -> Self {
        Self {
            pairing_port: Some(port),
            session_tag,
            link_port: None,
            offer: None,
            short_channel: None,
        }
    }

    /// The same advert, also saying that this device accepts known peers on `port`.
    #[must_use]
    pub fn with_link_port(mut self, port: Option<u16>) -> Self {
        self.link_port = port;
        self
    }

    /// The same advert, also saying that the pairing it hosts is a short-code one on `channel`.
    #[must_use]
    pub fn with_short_channel(mut self, channel: Option<u8>) -> Self {
        self.short_channel = channel;
        self
    }

    /// The same advert, also offering a listener to a device this one cannot reach.
    #[must_use]
    pub fn with_offer(mut self, offer: Option<crate::peer::Offer>) -> Self {
        self.offer = offer;
        self
    }
}

/// The confirmation listener was not started for this context.
#[derive(Debug, thiserror::Error)]
#[error("this operation runs without a confirmation listener")]
pub struct NoListener;

impl Context {
    /// A context; `confirmer` is `None` for operations that never self-confirm.
    pub fn new(
        settings: Settings,
        identity: Arc<Identity>,
        confirmer: Option<Confirmer>,
    ) -> Result<Self, Error> {
        let filter = InterfaceFilter::new(&settings.config().interfaces)?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                identity,
                filter,
                confirmer,
                state: None,
                cancel: CancellationToken::new(),
                advert: watch::channel(Advert::default()).0,
                join_target: watch::channel(None).0,
            }),
        })
    }

    /// Everything an operation needs, from the settings alone: the state directory (`[device]
    /// state_dir`, else the platform's) with the device key in it, or a throwaway key when
    /// `[device] ephemeral` is set; the device name (`[device] name`, else the host name); and a
    /// running confirmation listener.
    pub fn start(settings: Settings) -> Result<Self, Error> {
        let device = &settings.config().device;
        let name = if device.name.is_empty() {
            crate::identity::host_name()
        } else {
            device.name.clone()
        };
        let state = StateDir::of_device(device)?;
        let identity = match &state {
            Some(state) => Identity::load_or_create(state, name)?,
            None => Identity::ephemeral(name)?,
        };
        let identity = Arc::new(identity);
        let confirmer = Confirmer::start(Arc::clone(&identity), settings.config().confirm.clone())?;
        let mut ctx = Self::new(settings, identity, Some(confirmer))?;
        if let Some(inner) = Arc::get_mut(&mut ctx.inner) {
            inner.state = state;
        }
        Ok(ctx)
    }

    /// The state directory, unless the identity is ephemeral.
    pub fn state_dir(&self) -> Option<&StateDir> {
        self.inner.state.as_ref()
    }

    /// The loaded settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The typed configuration.
    pub fn config(&self) -> &Config {
        self.inner.settings.config()
    }

    /// This device's key.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.inner.identity
    }

    /// The `[interfaces]` allow/deny filter.
    pub fn filter(&self) -> &InterfaceFilter {
        &self.inner.filter
    }

    /// The interfaces the filter permits.
    pub fn interfaces(&self) -> Result<Vec<Interface>, Error> {
        self.inner.filter.list()
    }

    /// Why [`Context::interfaces`] leaves a strategy nothing to work with: only loopback is up,
    /// or `[interfaces]` filtered the rest out (see [`InterfaceFilter::why_none`]).
    ///
    /// [`InterfaceFilter::why_none`]: crate::interfaces::InterfaceFilter::why_none
    pub fn why_no_interfaces(&self) -> String {
        self.inner.filter.why_none_now()
    }

    /// The confirmation listener, or an error a strategy can return as is.
    pub fn confirmer(&self) -> Result<&Confirmer, StrategyError> {
        self.inner
            .confirmer
            .as_ref()
            .ok_or_else(|| StrategyError::new(FailureKind::NotApplicable, NoListener))
    }

    /// Sets what discoverers announce; running discoverers see the change and re-announce.
    pub fn set_advert(&self, advert: Advert) {
        self.inner.advert.send_replace(advert);
    }

    /// Changes the advert in place (the discoverers re-announce): several users of one context
    /// (hosting, listening, offering) each change their own fields without undoing the others'.
    pub fn update_advert(&self, change: impl FnOnce(&mut Advert)) {
        self.inner.advert.send_modify(change);
    }

    /// The current advert, and a receiver that wakes when it changes.
    pub fn advert(&self) -> watch::Receiver<Advert> {
        self.inner.advert.subscribe()
    }

    /// Sets the host being joined; discoverers waiting for it start.
    pub fn set_join_target(&self, target: JoinTarget) {
        self.inner.join_target.send_replace(Some(target));
    }

    /// The host being joined, once known, and a receiver that wakes when it is set.
    pub fn join_target(&self) -> watch::Receiver<Option<JoinTarget>> {
        self.inner.join_target.subscribe()
    }

    /// Waits until the host being joined is known; `None` when `stop` fires first (a plain
    /// discovery session has no code). For discoverers that only make sense while joining.
    pub async fn wait_join_target(&self, stop: &crate::discoverer::PeerSink) -> Option<JoinTarget> {
        let mut targets = self.join_target();
        tokio::select! {
            known = targets.wait_for(Option::is_some) => known.ok().and_then(|t| t.clone()),
            () = stop.stopped() => None,
        }
    }

    /// Cancelled when the whole operation is abandoned (Ctrl-C, embedding program shutting down).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }
}
