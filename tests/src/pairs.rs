//! `localpair host`, `join`, `listen` and `connect` on lab hosts, the way the end-to-end suites and
//! lab-bench drive them.

use std::io::{Read as _, Write as _};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{ChildGuard, Host, LabError, Localpair, Ran, Running};

/// How long one step of a pairing may take before a test calls it hung.
pub const STEP: Duration = Duration::from_secs(20);

/// `localpair --json host --flow FLOW --qr none` with `config` on `host`, started; returns it with
/// its code, once the code is printed.
pub fn start_host(host: &Host, flow: &str, config: &str) -> Result<(Running, String), LabError> {
    let running = Localpair::on(host)?
        .config(config)?
        .args(["--json", "host", "--flow", flow, "--qr", "none"])
        .start()?;
    let first = running.next_json(STEP)?;
    let code = first["code"].as_str().map(str::to_owned).ok_or_else(|| {
        LabError::Timeout(format!(
            "the host's first line holds no code: {first}; stderr: {}",
            running.stderr()
        ))
    })?;
    Ok((running, code))
}

/// `localpair --json host --short` with `config` on `host`, started; returns it with its first
/// line (`short_code`, `channel`, `expires_in_s`), once printed.
pub fn start_short_host(
    host: &Host,
    config: &str,
) -> Result<(Running, serde_json::Value), LabError> {
    let running = Localpair::on(host)?
        .config(config)?
        .args(["--json", "host", "--short"])
        .start()?;
    let first = running.next_json(STEP)?;
    if first["short_code"].as_str().is_none() {
        return Err(LabError::Timeout(format!(
            "the host's first line holds no short code: {first}; stderr: {}",
            running.stderr()
        )));
    }
    Ok((running, first))
}

/// `localpair --json join --short CODE` with `config` on `joiner`, to the end.
pub fn join_short(joiner: &Host, code: &str, config: &str) -> Result<Ran, LabError> {
    Localpair::on(joiner)?
        .config(config)?
        .args(["--json", "join", "--short", code])
        .run(crate::CLI_TIMEOUT)
}

/// `localpair --json join CODE` with `config` on `joiner`, to the end.
pub fn join(joiner: &Host, code: &str, config: &str) -> Result<Ran, LabError> {
    Localpair::on(joiner)?
        .config(config)?
        .args(["--json", "join", code])
        .run(crate::CLI_TIMEOUT)
}

/// Pairs `joiner` with `host` (pre-shared flow, default settings) and checks that both sides say
/// so; returns the joiner's JSON.
pub fn pair(host: &Host, joiner: &Host) -> Result<serde_json::Value, LabError> {
    let (running, code) = start_host(host, "pre", "")?;
    let joined = join(joiner, &code, "")?;
    if joined.code() != Some(0) {
        return Err(LabError::Timeout(format!(
            "join failed: {}\nhost: {}",
            joined.stderr,
            running.stderr()
        )));
    }
    let hosted = running.next_json(STEP)?;
    if hosted["paired"] != true || !running.wait(STEP)?.success() {
        return Err(LabError::Timeout(format!(
            "the host did not pair: {hosted}"
        )));
    }
    Ok(joined.json())
}

/// A running `localpair listen`, its stdout (the bytes peers sent) collected whole.
#[derive(Debug)]
pub struct Listener {
    child: ChildGuard,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    ready: mpsc::Receiver<()>,
}

impl Listener {
    /// `localpair listen` (with `--once` when `once`) with `config` on `host`; returns once it
    /// listens.
    pub fn start(host: &Host, config: &str, once: bool) -> Result<Self, LabError> {
        let mut args = vec!["listen"];
        if once {
            args.push("--once");
        }
        let mut child = Localpair::on(host)?.config(config)?.args(args).spawn()?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(out) = &mut out {
                let _ = out.read_to_end(&mut bytes);
            }
            bytes
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, ready) = mpsc::channel();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut told = false;
            while let Some(Ok(n)) = err.as_mut().map(|e| e.read(&mut buf)) {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if !told && text.contains("Listening for known peers") {
                        told = true;
                        let _ = tx.send(());
                    }
                }
            }
        });
        let listener = Self {
            child,
            stdout: Some(stdout),
            stderr,
            ready,
        };
        listener.ready.recv_timeout(STEP).map_err(|_| {
            LabError::Timeout(format!("listen did not start: {}", listener.stderr()))
        })?;
        Ok(listener)
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until stderr contains `text`, at most `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(text) {
            if Instant::now() > deadline {
                return Err(LabError::Timeout(format!(
                    "listen never said {text:?}: {}",
                    self.stderr()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Asks it to stop (SIGTERM, as a service manager would): it says goodbye where discovery
    /// can. Dropping the listener kills it instead (SIGKILL: no goodbye).
    pub fn terminate(&self) {
        self.child.terminate();
    }

    /// Waits for the exit (`--once`), at most `timeout`; the status and every byte received.
    pub fn finish(mut self, timeout: Duration) -> Result<(ExitStatus, Vec<u8>), LabError> {
        let status = self
            .child
            .wait_timeout(timeout)?
            .ok_or_else(|| LabError::Timeout(format!("listen still running: {}", self.stderr())))?;
        let bytes = self
            .stdout
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Ok((status, bytes))
    }
}

/// `localpair --json connect PEER` with `config` on `host`, `input` on its stdin; runs to the end.
pub fn connect(host: &Host, peer: &str, config: &str, input: &[u8]) -> Result<Ran, LabError> {
    let mut child = Localpair::on(host)?
        .config(config)?
        .args(["--json", "connect", peer])
        .stdin_piped()
        .spawn()?;
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input);
        }
    });
    let output = child.wait_with_output_timeout(crate::CLI_TIMEOUT)?;
    let _ = writer.join();
    Ok(Ran::from_output(output))
}
