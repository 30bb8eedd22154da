//! The trust store: the devices this one paired with, kept in the state directory.
//!
//! One versioned TOML file, `trusted-peers.toml`, mode 0600, that a person may read and edit (an
//! alias, say). Every change is made under the state directory's advisory lock — read the file,
//! change it, write it whole to a temporary file and rename it over — so two pairings finishing at
//! once keep both entries, and a process killed mid-write leaves the old or the new file, never a
//! torn one. A file that does not parse is an error naming the file and the line; it is never
//! truncated or rewritten.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use localpair_core::peer::clean_name;
use localpair_core::state::StateDir;
use localpair_core::{DeviceId, Fingerprint};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The file inside the state directory.
pub const FILE: &str = "trusted-peers.toml";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// Largest trust store read (a peer takes about 400 bytes): anything longer is not ours.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Most peers kept; pairing one more is refused with a message saying to forget one.
pub const MAX_PEERS: usize = 1024;
/// Most addresses remembered per peer (newest first).
pub const MAX_ADDRS: usize = 8;
/// Longest alias or name kept, in bytes.
pub const MAX_LABEL: usize = 64;

/// How a device came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PairedHow {
    /// The QR code, shown first (pre-shared flow).
    QrPre,
    /// The QR code, after discovery (post-shared flow).
    QrPost,
    /// A short code read aloud.
    ShortCode,
}

/// A device this one paired with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KnownPeer {
    /// Its key fingerprint: its identity.
    pub fingerprint: Fingerprint,
    /// The name it gave when pairing (or reconnecting last).
    pub name: String,
    /// A name of our choosing; empty when none.
    #[serde(default)]
    pub alias: String,
    /// When we paired.
    #[serde(with = "rfc3339")]
    pub paired_at: SystemTime,
    /// When we last talked to it.
    #[serde(with = "rfc3339")]
    pub last_seen: SystemTime,
    /// Where it was last reached, newest first (its link listener when known).
    #[serde(default)]
    pub last_addrs: Vec<SocketAddr>,
    /// The port of its link listener, as last announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_port: Option<u16>,
    /// How we paired.
    pub how: PairedHow,
}

impl KnownPeer {
    /// A peer paired just now.
    pub fn new(
        fingerprint: Fingerprint,
        name: &str,
        addr: Option<SocketAddr>,
        how: PairedHow,
    ) -> Self {
        let now = SystemTime::now();
        Self {
            fingerprint,
            name: clip(name),
            alias: String::new(),
            paired_at: now,
            last_seen: now,
            last_addrs: addr.into_iter().collect(),
            link_port: None,
            how,
        }
    }

    /// Its device id.
    pub fn id(&self) -> DeviceId {
        self.fingerprint.device_id()
    }

    /// The alias, or else the name.
    pub fn label(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }

    /// Records a contact now at `addr` (first in `last_addrs`), under `name` when it gave one.
    pub fn seen(&mut self, addr: Option<SocketAddr>, name: Option<&str>) {
        self.last_seen = SystemTime::now();
        if let Some(addr) = addr {
            self.last_addrs.retain(|a| *a != addr);
            self.last_addrs.insert(0, addr);
            self.last_addrs.truncate(MAX_ADDRS);
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            self.name = clip(name);
        }
    }
}

fn clip(text: &str) -> String {
    clean_name(text, MAX_LABEL)
}

/// The file's shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default, rename = "peer")]
    peers: Vec<KnownPeer>,
}

const HEADER: &str = "# localpair: the devices this device paired with. `alias` may be edited;\n\
                      # `localpair forget PEER` removes one. Written atomically; keep it 0600.\n\n";

/// Parses a trust store's text. Never panics: anything but a well-formed version-1 document
/// with distinct fingerprints and at most [`MAX_PEERS`] peers is an error that says where.
pub fn parse(text: &str, origin: &std::path::Path) -> Result<Vec<KnownPeer>, Error> {
    let bad = |reason: String| Error::TrustStore {
        path: origin.to_path_buf(),
        reason,
    };
    if text.len() > MAX_BYTES {
        return Err(bad(format!("is larger than {MAX_BYTES} bytes")));
    }
    let document: Document = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    if document.version != VERSION {
        return Err(bad(format!(
            "is version {}, this localpair reads version {VERSION}",
            document.version
        )));
    }
    if document.peers.len() > MAX_PEERS {
        return Err(bad(format!("lists more than {MAX_PEERS} peers")));
    }
    let mut peers = document.peers;
    for (i, peer) in peers.iter().enumerate() {
        if peers[..i].iter().any(|p| p.fingerprint == peer.fingerprint) {
            return Err(bad(format!("lists {} twice", peer.fingerprint)));
        }
    }
    for peer in &mut peers {
        peer.name = clip(&peer.name);
        peer.alias = clip(&peer.alias);
        peer.last_addrs.truncate(MAX_ADDRS);
    }
    Ok(peers)
}

/// The text of a trust store holding `peers`.
pub fn render(peers: &[KnownPeer]) -> Result<String, Error> {
    let document = Document {
        version: VERSION,
        peers: peers.to_vec(),
    };
    let body = toml::to_string(&document).map_err(|e| Error::TrustStore {
        path: PathBuf::from(FILE),
        reason: e.to_string(),
    })?;
    Ok(format!("{HEADER}{body}"))
}

/// The trust store of one device: on disk in its state directory, or in memory for an
/// ephemeral identity (which nobody can reconnect to after the process ends anyway).
#[derive(Debug, Clone)]
pub struct TrustStore {
    backing: Backing,
}

#[derive(Debug, Clone)]
enum Backing {
    Dir(StateDir),
    Memory(Arc<Mutex<Vec<KnownPeer>>>),
}

impl TrustStore {
    /// The store in `dir`.
    pub fn in_dir(dir: StateDir) -> Self {
        Self {
            backing: Backing::Dir(dir),
        }
    }

    /// The store of the device `settings` describe: in its state directory, in memory when the
    /// device is ephemeral. Opens no socket and reads no key: for listing and forgetting.
    pub fn from_settings(settings: &localpair_core::Settings) -> Result<Self, Error> {
        Ok(match StateDir::of_device(&settings.config().device)? {
            Some(dir) => Self::in_dir(dir),
            None => Self::in_memory(),
        })
    }

    /// A store that lives as long as this value.
    pub fn in_memory() -> Self {
        Self {
            backing: Backing::Memory(Arc::default()),
        }
    }

    /// Where it is kept, when on disk.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.backing {
            Backing::Dir(dir) => Some(dir.file(FILE)),
            Backing::Memory(_) => None,
        }
    }

    /// Every known peer, in the order they were paired.
    pub fn peers(&self) -> Result<Vec<KnownPeer>, Error> {
        match &self.backing {
            Backing::Dir(dir) => read(dir),
            Backing::Memory(list) => {
                Ok(list.lock().unwrap_or_else(PoisonError::into_inner).clone())
            }
        }
    }

    /// The known peer with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Result<Option<KnownPeer>, Error> {
        Ok(self
            .peers()?
            .into_iter()
            .find(|p| p.fingerprint == *fingerprint))
    }

    /// Applies `change` to the list under the lock and saves it; returns what `change` returned.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<KnownPeer>) -> T) -> Result<T, Error> {
        match &self.backing {
            Backing::Dir(dir) => {
                let _lock = dir.lock(FILE)?;
                let mut peers = read(dir)?;
                let result = change(&mut peers);
                keep_distinct(&mut peers);
                if peers.len() > MAX_PEERS {
                    return Err(Error::TrustStore {
                        path: dir.file(FILE),
                        reason: format!(
                            "holds {MAX_PEERS} peers already: forget one with `localpair forget`"
                        ),
                    });
                }
                dir.write(FILE, render(&peers)?.as_bytes())?;
                Ok(result)
            }
            Backing::Memory(list) => {
                let mut peers = list.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(change(&mut peers))
            }
        }
    }

    /// Adds or replaces the peer with `peer`'s fingerprint (a second pairing keeps the alias).
    pub fn save(&self, peer: KnownPeer) -> Result<(), Error> {
        self.update(
            |peers| match peers.iter_mut().find(|p| p.fingerprint == peer.fingerprint) {
                Some(existing) => {
                    let alias = std::mem::take(&mut existing.alias);
                    *existing = peer;
                    existing.alias = alias;
                }
                None => peers.push(peer),
            },
        )
    }

    /// Records a contact with a known peer (`false` when it is not known, e.g. forgotten meanwhile).
    pub fn touch(
        &self,
        fingerprint: &Fingerprint,
        addr: Option<SocketAddr>,
        name: Option<&str>,
        link_port: Option<u16>,
    ) -> Result<bool, Error> {
        self.update(
            |peers| match peers.iter_mut().find(|p| p.fingerprint == *fingerprint) {
                Some(peer) => {
                    peer.seen(addr, name);
                    if link_port.is_some() {
                        peer.link_port = link_port;
                    }
                    true
                }
                None => false,
            },
        )
    }

    /// Removes the peer `who` names (see [`find`]); returns it.
    pub fn forget(&self, who: &str) -> Result<KnownPeer, Error> {
        let peer = find(&self.peers()?, who)?;
        self.update(|peers| peers.retain(|p| p.fingerprint != peer.fingerprint))?;
        Ok(peer)
    }

    /// The one known peer `who` names (see [`find`]).
    pub fn find(&self, who: &str) -> Result<KnownPeer, Error> {
        find(&self.peers()?, who)
    }
}

/// One entry per key (the later wins), so what is written always parses.
fn keep_distinct(peers: &mut Vec<KnownPeer>) {
    let mut i = peers.len();
    while i > 0 {
        i -= 1;
        let key = peers[i].fingerprint;
        if peers[..i].iter().any(|p| p.fingerprint == key) {
            let later = peers.remove(i);
            if let Some(first) = peers.iter_mut().find(|p| p.fingerprint == key) {
                *first = later;
            }
        }
    }
}

fn read(dir: &StateDir) -> Result<Vec<KnownPeer>, Error> {
    let path = dir.file(FILE);
    match dir.read(FILE, MAX_BYTES)? {
        None => Ok(Vec::new()),
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| Error::TrustStore {
                path: path.clone(),
                reason: "is not UTF-8 text".to_owned(),
            })?;
            parse(&text, &path)
        }
    }
}

/// The one peer `who` names: its alias or name (any case), its device id, or a prefix of at
/// least 4 hex digits of its fingerprint. None or several is an error listing the candidates.
pub fn find(peers: &[KnownPeer], who: &str) -> Result<KnownPeer, Error> {
    let who = who.trim();
    let lower = who.to_ascii_lowercase();
    let is_hex = lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit());
    let matches: Vec<&KnownPeer> = peers
        .iter()
        .filter(|p| {
            (!p.alias.is_empty() && p.alias.eq_ignore_ascii_case(who))
                || (!p.name.is_empty() && p.name.eq_ignore_ascii_case(who))
                || (is_hex && p.fingerprint.to_string().starts_with(&lower))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::UnknownPeer {
            who: who.to_owned(),
            known: describe(peers.iter()),
        }),
        several => Err(Error::AmbiguousPeer {
            who: who.to_owned(),
            matching: describe(several.iter().copied()),
        }),
    }
}

fn describe<'a>(peers: impl Iterator<Item = &'a KnownPeer>) -> String {
    let list: Vec<String> = peers
        .map(|p| format!("{} [{}]", p.label(), p.id()))
        .collect();
    if list.is_empty() {
        "none (pair first)".to_owned()
    } else {
        list.join(", ")
    }
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(byte: u8, name: &str) -> KnownPeer {
        KnownPeer::new(
            Fingerprint::from_bytes([byte; 32]),
            name,
            Some(SocketAddr::from(([10, 0, 0, byte], 4000))),
            PairedHow::QrPre,
        )
    }

    #[test]
    fn round_trips_through_its_text() {
        let mut a = peer(1, "laptop");
        a.alias = "work".into();
        a.link_port = Some(47_000);
        let peers = vec![a, peer(2, "phone")];
        let text = render(&peers).unwrap();
        assert!(text.starts_with("# localpair"));
        let back = parse(&text, std::path::Path::new("t")).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].alias, "work");
        assert_eq!(back[0].link_port, Some(47_000));
        assert_eq!(back[1].last_addrs, peers[1].last_addrs);
    }

    #[test]
    fn a_broken_file_names_the_file_and_the_line() {
        let text = "version = 1\n\n[[peer]]\nfingerprint = \"zz\"\n";
        let error = parse(text, std::path::Path::new("/s/trusted-peers.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/s/trusted-peers.toml"), "{error}");
        assert!(error.contains("line 4"), "{error}");
        let error = parse("version = 2\n", std::path::Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("version 2"), "{error}");
    }

    #[test]
    fn peers_are_found_by_alias_name_id_or_fingerprint_prefix() {
        let mut a = peer(0xab, "laptop");
        a.alias = "Work".into();
        let peers = vec![a, peer(0xcd, "phone"), peer(0xce, "Phone")];
        assert_eq!(find(&peers, "work").unwrap().name, "laptop");
        assert_eq!(find(&peers, "LAPTOP").unwrap().alias, "Work");
        assert_eq!(find(&peers, "abab").unwrap().name, "laptop");
        assert_eq!(find(&peers, &"ab".repeat(8)).unwrap().name, "laptop");
        let error = find(&peers, "phone").unwrap_err().to_string();
        assert!(
            error.contains("phone [cdcd") && error.contains("Phone [cece"),
            "{error}"
        );
        let error = find(&peers, "tablet").unwrap_err().to_string();
        assert!(
            error.contains("laptop") || error.contains("Work"),
            "{error}"
        );
        assert!(
            find(&peers, "ab").is_err(),
            "two hex digits are too short a prefix"
        );
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for text in [
            "",
            "version",
            "[[peer]]",
            "version = 1\n[[peer]]\n",
            "\u{0}\u{ffff}",
        ] {
            let _ = parse(text, std::path::Path::new("f"));
        }
    }

    #[test]
    fn saving_twice_keeps_the_alias_and_memory_stores_work() {
        let store = TrustStore::in_memory();
        let mut first = peer(3, "desk");
        first.alias = "mine".into();
        store.save(first).unwrap();
        store.save(peer(3, "desk renamed")).unwrap();
        let all = store.peers().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].alias, "mine");
        assert_eq!(all[0].name, "desk renamed");
        assert!(
            store
                .touch(&all[0].fingerprint, None, None, Some(9))
                .unwrap()
        );
        assert_eq!(store.forget("mine").unwrap().name, "desk renamed");
        assert!(store.peers().unwrap().is_empty());
    }
}
