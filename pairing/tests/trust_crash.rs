//! The trust store survives `kill -9` in the middle of writes: a reader always finds the old or
//! the new file, never a broken one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use localpair_core::Fingerprint;
use localpair_core::state::StateDir;
use localpair_pairing::trust::{KnownPeer, PairedHow, TrustStore};

const CHILD: &str = "LOCALPAIR_TEST_TRUST_WRITER";
const KILLS: usize = 40;

/// The child: rewrites the store as fast as it can until it is killed.
fn write_forever(dir: &Path) -> ! {
    let store = TrustStore::in_dir(StateDir::open(dir).unwrap());
    let mut n: u32 = 0;
    loop {
        n = n.wrapping_add(1);
        store
            .update(|peers| {
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&n.to_be_bytes());
                bytes[4..8].copy_from_slice(&std::process::id().to_be_bytes());
                let addr = SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 4000));
                peers.push(KnownPeer::new(
                    Fingerprint::from_bytes(bytes),
                    &format!("peer number {n} with a longer name to make the file bigger"),
                    Some(addr),
                    PairedHow::QrPre,
                ));
                // Keep the file a few KiB: big enough that a torn write would show.
                if peers.len() > 40 {
                    peers.remove(1);
                }
            })
            .unwrap();
    }
}

#[test]
fn kill_9_during_writes_never_leaves_an_unreadable_store() {
    if let Some(dir) = std::env::var_os(CHILD) {
        write_forever(Path::new(&dir));
    }
    let dir = std::env::temp_dir().join(format!("lp-trust-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = TrustStore::in_dir(StateDir::open(&dir).unwrap());
    store
        .save(KnownPeer::new(
            Fingerprint::from_bytes([0xee; 32]),
            "first",
            None,
            PairedHow::QrPre,
        ))
        .unwrap();
    let me = std::env::current_exe().unwrap();
    let mut seen = Vec::new();
    for round in 0..KILLS {
        let mut child = std::process::Command::new(&me)
            .args([
                "kill_9_during_writes_never_leaves_an_unreadable_store",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it get going, at a different moment each round.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(20 + (round as u64 * 7) % 40));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let peers = store
            .peers()
            .unwrap_or_else(|e| panic!("round {round}: the store broke: {e}"));
        assert_eq!(
            peers[0].name, "first",
            "round {round}: the first entry survives"
        );
        seen.push((peers.len(), started.elapsed()));
    }
    // The writer made progress between kills (the test exercised real writes).
    assert!(seen.iter().any(|(n, _)| *n > 1), "{seen:?}");
    // Temporary files of killed writers are swept by the next write: at most the last one is left.
    store
        .save(KnownPeer::new(
            Fingerprint::from_bytes([0xef; 32]),
            "last",
            None,
            PairedHow::QrPre,
        ))
        .unwrap();
    let temporaries = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(temporaries, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
