//! The host of a short-code pairing: a TLS listener (ALPN `localpair-short/1`) that runs one key
//! exchange at a time and ends the code after [`MAX_WRONG_CODES`] failed ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use localpair_core::bind::Fallback;
use localpair_core::identity::Identity;
use localpair_core::serve::{Admission, Limits, accept_loop};
use localpair_core::tls;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::code::ShortCode;
use super::pake::{self, Pake};
use crate::code::Role;
use crate::error::Error;
use crate::host::{accept_joiner, pairing_of, swap_names_as_host};
use crate::link::Link;
use crate::wire::{Message, Refusal};
use crate::{Paired, read_message, send};

/// Failed exchanges a code survives: the third ends it. With 10^7 secrets, a stranger's chance
/// to pair with one code is 3 in 10,000,000.
pub const MAX_WRONG_CODES: u32 = 3;

/// How a short-code host listens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShortHostOptions {
    /// Addresses to listen on, one port; `[0.0.0.0]` (the default) is every address.
    pub listen_on: Vec<IpAddr>,
    /// Port (the pairing port unless set); when taken, one the OS picks. 0 lets the OS choose.
    pub port: u16,
    /// How long the code lives.
    pub ttl: Duration,
    /// TLS handshake plus key exchange and confirmation must finish within this, waiting for
    /// another exchange to end included.
    pub handshake_timeout: Duration,
    /// Connections not yet authenticated, in total.
    pub max_unauthenticated: usize,
    /// Connections not yet authenticated, per source address.
    pub max_per_source: usize,
    /// This device's link port, told to the joiner so it can reconnect later.
    pub link_port: Option<u16>,
}

impl Default for ShortHostOptions {
    fn default() -> Self {
        Self {
            listen_on: vec![IpAddr::from([0, 0, 0, 0])],
            port: crate::DEFAULT_PORT,
            ttl: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(5),
            max_unauthenticated: 16,
            max_per_source: 4,
            link_port: None,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    used: bool,
}

struct Shared {
    identity: Arc<Identity>,
    code: ShortCode,
    nonce: [u8; 8],
    options: ShortHostOptions,
    expires_at: Instant,
    started: Instant,
    state: Mutex<State>,
    /// One exchange at a time, so that parallel guesses cannot race past the limit.
    turn: tokio::sync::Mutex<()>,
    ended: watch::Sender<bool>,
    paired: mpsc::Sender<(Paired, Link)>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why no exchange may start now, if none may.
    fn closed(&self) -> Option<Refusal> {
        let state = self.lock();
        if state.failures >= MAX_WRONG_CODES {
            Some(Refusal::CodeEnded)
        } else if state.used {
            Some(Refusal::Used)
        } else if Instant::now() >= self.expires_at {
            Some(Refusal::Expired)
        } else {
            None
        }
    }

    /// Counts a failed exchange; `true` when it ended the code.
    fn fail(&self, remote: SocketAddr) -> bool {
        let failures = {
            let mut state = self.lock();
            state.failures = state.failures.saturating_add(1);
            state.failures
        };
        tracing::warn!(%remote, failures, max = MAX_WRONG_CODES, "someone entered a wrong short code");
        let ended = failures >= MAX_WRONG_CODES;
        if ended {
            self.ended.send_replace(true);
        }
        ended
    }
}

/// An exchange in progress: unless it is settled, it counts as failed when it ends, however it
/// ends (a wrong confirmation, a dropped connection, the time limit). The host's SPAKE2 message
/// was sent, so every such exchange was one guess.
struct Attempt<'a> {
    shared: &'a Shared,
    remote: SocketAddr,
    settled: bool,
}

impl Attempt<'_> {
    /// The joiner confirmed: not a failure.
    fn settle(mut self) {
        self.settled = true;
    }

    /// A wrong confirmation; `true` when it ended the code.
    fn wrong(mut self) -> bool {
        self.settled = true;
        self.shared.fail(self.remote)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.fail(self.remote);
        }
    }
}

/// A running short-code pairing listener. Dropping it closes the listener and every connection.
pub struct ShortHost {
    local_addrs: Vec<SocketAddr>,
    fallback: Option<Fallback>,
    shared: Arc<Shared>,
    paired: tokio::sync::Mutex<mpsc::Receiver<(Paired, Link)>>,
    _stop: DropGuard,
}

impl std::fmt::Debug for ShortHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortHost")
            .field("channel", &self.shared.code.channel)
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

impl ShortHost {
    /// Binds the listener, makes a fresh code and session nonce, and starts taking
    /// connections.
    pub fn start(identity: Arc<Identity>, options: ShortHostOptions) -> Result<Self, Error> {
        Self::with_code(identity, options, ShortCode::generate()?)
    }

    /// Like [`ShortHost::start`] with a given code (tests; a code shown elsewhere).
    pub fn with_code(
        identity: Arc<Identity>,
        options: ShortHostOptions,
        code: ShortCode,
    ) -> Result<Self, Error> {
        let bound =
            localpair_core::bind::listen("short-code pairing", &options.listen_on, options.port)?;
        let local_addrs = bound
            .local_addrs()
            .map_err(|e| Error::io("short-code listener address", e))?;
        let listeners = bound.listeners;
        let now = Instant::now();
        let (paired_tx, paired_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            identity,
            code,
            // Random, never derived from the secret: it only tells one session from the next.
            nonce: localpair_core::identity::random_bytes()?,
            expires_at: now + options.ttl,
            started: now,
            state: Mutex::new(State::default()),
            turn: tokio::sync::Mutex::new(()),
            ended: watch::Sender::new(false),
            paired: paired_tx,
            options,
        });
        let acceptor = TlsAcceptor::from(tls::server_config(&shared.identity, None, pake::ALPN)?);
        let stop = CancellationToken::new();
        let limits = Limits::new(
            shared.options.max_unauthenticated,
            shared.options.max_per_source,
            shared.options.handshake_timeout,
        );
        let serving = Arc::clone(&shared);
        tokio::spawn(accept_loop(
            listeners,
            limits,
            stop.clone(),
            "short-code pairing",
            move |tcp, remote, admission| {
                let shared = Arc::clone(&serving);
                let acceptor = acceptor.clone();
                async move { serve(&shared, &acceptor, tcp, remote, admission).await }
            },
        ));
        Ok(Self {
            local_addrs,
            fallback: bound.fallback,
            shared,
            paired: tokio::sync::Mutex::new(paired_rx),
            _stop: stop.drop_guard(),
        })
    }

    /// The code to show.
    pub fn code(&self) -> ShortCode {
        self.shared.code
    }

    /// The random session nonce announced beside the channel.
    pub fn nonce(&self) -> [u8; 8] {
        self.shared.nonce
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.local_addrs[0].port()
    }

    /// Every address it listens on, one port.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Set when the configured port was taken and the OS chose another.
    pub fn port_fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// Failed exchanges so far.
    pub fn failures(&self) -> u32 {
        self.shared.lock().failures
    }

    /// Waits for the one pairing. Fails when the code expires, or when the third failed exchange
    /// ends it ([`Error::CodeEnded`]).
    pub async fn wait(&self) -> Result<(Paired, Link), Error> {
        let mut paired = self.paired.lock().await;
        let mut ended = self.shared.ended.subscribe();
        tokio::select! {
            won = paired.recv() => won.ok_or_else(|| localpair_core::Error::ListenerClosed.into()),
            _ = ended.wait_for(|ended| *ended) => Err(Error::CodeEnded { failures: MAX_WRONG_CODES }),
            () = tokio::time::sleep_until(self.shared.expires_at) => {
                Err(Error::CodeExpired { after: self.shared.options.ttl })
            }
        }
    }
}

async fn serve(
    shared: &Shared,
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    admission: Admission,
) -> Result<(), Error> {
    let (mut stream, joiner_key, exporter) =
        accept_joiner(acceptor, tcp, remote, pake::EXPORTER_LABEL).await?;
    let Message::ShortHello(theirs) = read_message(&mut stream).await? else {
        return Err(Error::Malformed {
            reason: "expected the joiner's SPAKE2 message",
        });
    };
    let _turn = shared.turn.lock().await;
    if let Some(refusal) = shared.closed() {
        send(&mut stream, &Message::Refused(refusal)).await?;
        return Ok(());
    }
    let (state, ours) = Pake::start(Role::Host, shared.code.secret);
    let attempt = Attempt {
        shared,
        remote,
        settled: false,
    };
    send(
        &mut stream,
        &Message::ShortReply {
            nonce: shared.nonce,
            pake: ours,
        },
    )
    .await?;
    let transcript = pake::transcript(
        &exporter,
        &shared.identity.fingerprint(),
        &joiner_key,
        shared.code.channel,
        &shared.nonce,
    );
    let confirmer = state.finish(&theirs, transcript)?;
    let Message::Confirm(mac) = read_message(&mut stream).await? else {
        return Err(Error::Malformed {
            reason: "expected the joiner's confirmation",
        });
    };
    if !confirmer.verify(Role::Joiner, &mac) {
        let refusal = if attempt.wrong() {
            Refusal::CodeEnded
        } else {
            Refusal::WrongCode
        };
        send(&mut stream, &Message::Refused(refusal)).await?;
        return Ok(());
    }
    attempt.settle();
    admission.authenticated();
    send(
        &mut stream,
        &Message::Confirm(confirmer.confirmation(Role::Host)),
    )
    .await?;
    // A joiner whose connection breaks here may try again: the code is spent only once the
    // names are through.
    let names = swap_names_as_host(
        &mut stream,
        shared.identity.name(),
        shared.options.link_port,
    )
    .await?;
    shared.lock().used = true;
    let pairing = pairing_of(
        joiner_key,
        remote,
        names,
        shared.started,
        tokio_rustls::TlsStream::Server(stream),
    );
    // Capacity 1 and the code is spent: this never waits.
    let _ = shared.paired.try_send(pairing);
    Ok(())
}
