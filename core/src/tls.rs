//! rustls configurations that pin a key fingerprint instead of trusting a certificate chain.
//!
//! TLS 1.3 only, ring provider. The verifiers ignore names and validity dates but still check the
//! handshake signature, so a peer must hold the private key behind the fingerprint it presents.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::Error;
use crate::identity::{Fingerprint, Identity};

/// ALPN of the confirmation listener.
pub const ALPN_CONFIRM: &[u8] = b"localpair-confirm/1";

/// The TLS name every localpair client sends; certificates are never checked against it.
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from("localpair")
            .unwrap_or_else(|_| unreachable!("a valid DNS name literal")),
    )
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The presented key's fingerprint differs from the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("peer key {got} does not match the pinned key {expected}")]
pub struct FingerprintMismatch {
    /// The pinned fingerprint.
    pub expected: Fingerprint,
    /// What the peer presented.
    pub got: Fingerprint,
}

fn fingerprint_of(cert: &CertificateDer<'_>) -> Result<Fingerprint, rustls::Error> {
    Fingerprint::of_certificate(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

fn check_pin(
    expected: Option<Fingerprint>,
    cert: &CertificateDer<'_>,
) -> Result<(), rustls::Error> {
    let got = fingerprint_of(cert)?;
    match expected {
        Some(expected) if !expected.matches(&got) => {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(FingerprintMismatch { expected, got })),
            )))
        }
        _ => Ok(()),
    }
}

/// Our pin check failing inside a TLS error, i.e. the peer is not who the code says.
pub fn fingerprint_mismatch(error: &rustls::Error) -> Option<&FingerprintMismatch> {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<FingerprintMismatch>()
        }
        _ => None,
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    expected: Option<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    fn new(expected: Option<Fingerprint>) -> Self {
        Self {
            expected,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("TLS 1.2 is not accepted".to_owned())
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_pin(self.expected, end_entity).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_pin(self.expected, end_entity).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A server config presenting `identity`, TLS 1.3 only, requiring a client key: any key when
/// `client_pin` is `None` (the peer proves itself later), else exactly the pinned one.
pub fn server_config(
    identity: &Identity,
    client_pin: Option<Fingerprint>,
    alpn: &[u8],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(PinnedVerifier::new(client_pin)))
        .with_single_cert(vec![identity.certificate()], identity.private_key())?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// A client config presenting `identity` and accepting only a server whose key is `server_pin`.
pub fn client_config(
    identity: &Identity,
    server_pin: Fingerprint,
    alpn: &[u8],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(Some(server_pin))))
        .with_client_auth_cert(vec![identity.certificate()], identity.private_key())?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// A client config presenting `identity` and accepting a server with any key (its handshake
/// signature is still verified). Only for exchanges that authenticate the server afterwards, bound
/// to this session's exporter and the key it presented (the short code's PAKE); read the key
/// with [`peer_fingerprint`].
pub fn client_config_unpinned(
    identity: &Identity,
    alpn: &[u8],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(None)))
        .with_client_auth_cert(vec![identity.certificate()], identity.private_key())?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The fingerprint of the key the other side of an established connection presented.
pub fn peer_fingerprint(conn: &rustls::CommonState) -> Option<Fingerprint> {
    conn.peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| Fingerprint::of_certificate(cert).ok())
}

/// A client's TLS session over TCP.
pub type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Connects to `addr` and completes a TLS 1.3 handshake with `config` (from [`client_config`],
/// so the server's key is pinned): the one way every localpair client opens a connection.
///
/// Errors: [`Error::Io`] (`connect <addr>`) when TCP fails, [`Error::KeyMismatch`] when a device
/// with another key answered, [`Error::Tls`] or [`Error::Io`] when the handshake failed. No time
/// limit: callers wrap it in their own.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> Result<ClientStream, Error> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Error::io(format!("connect {addr}"), e))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name(), tcp)
        .await
        .map_err(|e| handshake_error(e, addr))
}

/// Connects like [`connect`], then closes at once with `close_notify`: proves that the device
/// holding the pinned key listens at `addr` (the listener logs it as a probe, not a failure).
pub async fn probe(config: Arc<rustls::ClientConfig>, addr: SocketAddr) -> Result<(), Error> {
    let mut stream = connect(config, addr).await?;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    Ok(())
}

/// TLS failures arrive as `io::Error`s wrapping a `rustls::Error`; unwrap them so a pin mismatch
/// stays recognisable as [`Error::KeyMismatch`].
pub fn handshake_error(error: std::io::Error, addr: SocketAddr) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => match fingerprint_mismatch(tls) {
            Some(mismatch) => Error::KeyMismatch {
                addr,
                expected: mismatch.expected,
                got: mismatch.got,
            },
            None => Error::Tls(tls.clone()),
        },
        None => Error::io(format!("TLS handshake with {addr}"), error),
    }
}
