//! The device key, its fingerprint, and the device id derived from it.
//!
//! The key is pinned, never a certificate chain: a self-signed certificate only carries the key
//! through TLS, and its validity dates are never checked (skewed clocks broke 1-hour certificates
//! in the project this design learned from).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::state::StateDir;

/// File name of the persisted device key inside the state directory.
pub const KEY_FILE: &str = "device-key.pem";
/// A P-256 key in PEM is about 240 bytes; anything much larger is not our key file.
const MAX_KEY_FILE: usize = 16 * 1024;

/// SHA-256 of a key's DER SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// Parses a DER certificate and hashes its SubjectPublicKeyInfo.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, webpki::Error> {
        let parsed = webpki::EndEntityCert::try_from(cert)?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }

    /// Whether two fingerprints are equal. A fingerprint is public (it is in every announcement),
    /// so a plain comparison leaks nothing.
    pub fn matches(&self, other: &Fingerprint) -> bool {
        self == other
    }

    /// The device id that this key implies.
    pub fn device_id(&self) -> DeviceId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[..8]);
        DeviceId(id)
    }

    /// First 8 hex digits, for logs and tables.
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }
}

/// Lower-case hex of the bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    // Strict: exactly 2N hex digits, no sign, no spaces.
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The fingerprint or device id text was not hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits")]
pub struct ParseHexError {
    expected: usize,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

impl FromStr for Fingerprint {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        unhex::<32>(s)
            .map(Self)
            .ok_or(ParseHexError { expected: 64 })
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A device's id: the first 8 bytes of its key fingerprint, so an id cannot be claimed without the
/// key behind it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId([u8; 8]);

impl DeviceId {
    /// The id bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// Wraps raw id bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        unhex::<8>(s)
            .map(Self)
            .ok_or(ParseHexError { expected: 16 })
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// This device's key pair and the self-signed certificate that carries it through TLS.
pub struct Identity {
    key_pkcs8: Vec<u8>,
    certificate: CertificateDer<'static>,
    fingerprint: Fingerprint,
    name: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh key that lives as long as the process.
    pub fn ephemeral(name: impl Into<String>) -> Result<Self, Error> {
        let key = KeyPair::generate().map_err(|e| identity_error(Path::new("<ephemeral>"), e))?;
        Self::from_key(&key, name.into(), Path::new("<ephemeral>"))
    }

    /// Loads the key from `device-key.pem` in the state directory, creating it (mode 0600) the
    /// first time. A key file that others can read is refused (with the `chmod` that fixes it);
    /// one that does not parse is an error and is never replaced, since replacing it would change
    /// who this device is. Two processes starting at once end up with the same key.
    pub fn load_or_create(state: &StateDir, name: impl Into<String>) -> Result<Self, Error> {
        let path = state.file(KEY_FILE);
        let _lock = state.lock(KEY_FILE)?;
        let key = match state.read(KEY_FILE, MAX_KEY_FILE)? {
            Some(pem) => parse_key(&pem, &path)?,
            None => {
                let key = KeyPair::generate().map_err(|e| identity_error(&path, e))?;
                state.write(KEY_FILE, key.serialize_pem().as_bytes())?;
                key
            }
        };
        Self::from_key(&key, name.into(), &path)
    }

    pub(crate) fn from_key(key: &KeyPair, name: String, origin: &Path) -> Result<Self, Error> {
        let mut params = CertificateParams::new(vec!["localpair".to_owned()])
            .map_err(|e| identity_error(origin, e))?;
        // Wide validity: peers pin the key and never look at dates, but other TLS stacks might.
        params.not_before = rcgen::date_time_ymd(1975, 1, 1);
        params.not_after = rcgen::date_time_ymd(4096, 1, 1);
        let certificate = params
            .self_signed(key)
            .map_err(|e| identity_error(origin, e))?;
        let fingerprint = Fingerprint::of_spki(&key.subject_public_key_info());
        Ok(Self {
            key_pkcs8: key.serialize_der(),
            certificate: certificate.der().clone(),
            fingerprint,
            name,
        })
    }

    /// The key fingerprint peers pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The device id derived from the fingerprint.
    pub fn device_id(&self) -> DeviceId {
        self.fingerprint.device_id()
    }

    /// The name this device announces.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The self-signed certificate.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    /// The private key, for a rustls config.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// The machine's host name as the OS gives it (`gethostname(2)` on Unix, `GetComputerNameExW`
/// on Windows), else `$HOSTNAME` or `%COMPUTERNAME%`, else `localpair`.
pub fn host_name() -> String {
    Some(gethostname::gethostname().to_string_lossy().into_owned())
        .filter(|name| !name.trim().is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localpair".to_owned())
}

fn identity_error(path: &Path, error: impl fmt::Display) -> Error {
    Error::Identity {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Parses the contents of a key file (`origin` names it in errors). Untrusted bytes: never
/// panics (fuzzed: `fuzz/fuzz_targets/key_file.rs`).
pub(crate) fn parse_key(pem: &[u8], origin: &Path) -> Result<KeyPair, Error> {
    let pem = std::str::from_utf8(pem).map_err(|_| {
        identity_error(
            origin,
            "is not a PEM key (not text); move it away to start anew",
        )
    })?;
    KeyPair::from_pem(pem)
        .map_err(|e| identity_error(origin, format!("{e}; move it away to start anew")))
}

/// `N` bytes from the OS random generator (ring's `SystemRandom`): codes, secrets, nonces.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_fingerprint_equals_key_fingerprint() {
        let id = Identity::ephemeral("t").unwrap();
        let from_cert = Fingerprint::of_certificate(&id.certificate()).unwrap();
        assert_eq!(from_cert, id.fingerprint());
        assert_eq!(id.device_id(), id.fingerprint().device_id());
    }

    #[test]
    fn persisted_key_is_stable_and_private() {
        let dir = std::env::temp_dir().join(format!("localpair-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).unwrap();
        let first = Identity::load_or_create(&state, "a").unwrap();
        let second = Identity::load_or_create(&state, "a").unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_key_file_is_a_named_error() {
        let dir = std::env::temp_dir().join(format!("localpair-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).unwrap();
        state.write(KEY_FILE, b"not a key").unwrap();
        let err = Identity::load_or_create(&state, "a").unwrap_err();
        assert!(err.to_string().contains(KEY_FILE), "{err}");
        // Never replaced: the same bytes are still there.
        assert_eq!(state.read(KEY_FILE, 64).unwrap().unwrap(), b"not a key");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_host_name_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        if !kernel.trim().is_empty() {
            assert_eq!(host_name(), kernel.trim());
        }
    }

    #[test]
    fn hex_round_trip() {
        let id = Identity::ephemeral("t").unwrap();
        let fp = id.fingerprint();
        assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
        assert!("zz".parse::<Fingerprint>().is_err());
        let signed = format!("+{}", &fp.to_string()[1..]);
        assert!(signed.parse::<Fingerprint>().is_err());
        assert!(
            format!(" {}", &fp.to_string()[1..])
                .parse::<Fingerprint>()
                .is_err()
        );
        let dev = fp.device_id();
        assert_eq!(dev.to_string().parse::<DeviceId>().unwrap(), dev);
    }
}
