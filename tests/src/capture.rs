//! Packet capture inside a host with tcpdump, so a test can inspect exactly what went over the wire.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::process::{self, ChildGuard};
use crate::{Host, LabError};

static NEXT_CAPTURE: AtomicU32 = AtomicU32::new(0);

/// How long tcpdump may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Packets that are in flight when `stop` is called are still in the kernel or in tcpdump; give them this long to
/// reach the file before tcpdump is told to quit.
const SETTLE: Duration = Duration::from_millis(100);

/// A running `tcpdump` in a host (see [`Host::capture`]). Dropping it without [`stop`](Self::stop) kills tcpdump and
/// deletes the file.
#[derive(Debug)]
pub struct Capture {
    child: Option<ChildGuard>,
    file: PathBuf,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Capture {
    pub(crate) fn start(host: &Host, iface: &str) -> Result<Self, LabError> {
        if process::find_in_path("tcpdump").is_none() {
            return Err(LabError::Unavailable(
                "tcpdump is not installed (apt-get install tcpdump)".to_owned(),
            ));
        }
        let file = std::env::temp_dir().join(format!(
            "lp-{}-{}.pcap",
            std::process::id(),
            NEXT_CAPTURE.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cmd = host.command("tcpdump");
        cmd.args([
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
        ])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut cmd)?;
        let Some(pipe) = child.stderr.take() else {
            return Err(LabError::io(
                "starting tcpdump",
                std::io::Error::other("stderr was not piped"),
            ));
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        // tcpdump says "listening on" once the capture socket is bound; until then packets would be missed.
        // The thread keeps draining stderr afterwards so tcpdump never blocks on a full pipe.
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut capture = Self {
            child: Some(child),
            file,
            stderr: Some(stderr),
        };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            let command = capture
                .child
                .as_ref()
                .map(|c| c.command_line().to_owned())
                .unwrap_or_default();
            let stderr = capture.finish();
            return Err(LabError::Timeout(format!(
                "`{command}` did not start listening within {START_TIMEOUT:?}; stderr: {}",
                stderr.trim()
            )));
        }
        Ok(capture)
    }

    /// Stops tcpdump (after a short settle time for in-flight packets) and returns the pcap file's bytes.
    ///
    /// Searching them for a byte string is enough to prove a secret never crossed the wire:
    /// `pcap.windows(secret.len()).any(|w| w == secret)`.
    pub fn stop(mut self) -> Result<Vec<u8>, LabError> {
        thread::sleep(SETTLE);
        if let Some(child) = &self.child {
            child.terminate();
        }
        if let Some(child) = &mut self.child
            && child.wait_timeout(Duration::from_secs(2))?.is_none()
        {
            let _ = child.kill();
        }
        self.finish();
        let bytes = std::fs::read(&self.file)
            .map_err(|e| LabError::io(format!("reading capture {}", self.file.display()), e));
        let _ = std::fs::remove_file(&self.file);
        bytes
    }

    /// Ends tcpdump (killed by the guard if still running) and returns what it wrote on stderr.
    fn finish(&mut self) -> String {
        drop(self.child.take());
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
        let _ = std::fs::remove_file(&self.file);
    }
}
