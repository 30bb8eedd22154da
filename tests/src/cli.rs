//! Running the `localpair` binary on a lab host, with a config file and a clean environment.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::LabError;
use crate::host::Host;
use crate::process::{ChildGuard, localpair_bin};

/// A `localpair` invocation on a host; build it, then [`run`](Localpair::run) or
/// [`spawn`](Localpair::spawn).
#[derive(Debug)]
pub struct Localpair {
    command: Command,
    config: Option<PathBuf>,
}

/// A finished invocation.
#[derive(Debug)]
pub struct Ran {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout parsed as the one JSON object `--json` promises; panics with both streams if not.
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_str(self.stdout.trim()) {
            Ok(value) => value,
            Err(e) => panic!(
                "stdout is not one JSON object ({e}):\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            ),
        }
    }
}

static CONFIGS: AtomicU32 = AtomicU32::new(0);

impl Localpair {
    /// `localpair` in `host`'s namespace, with no inherited `LOCALPAIR_*` variables and the device
    /// named after the host.
    pub fn on(host: &Host) -> Result<Self, LabError> {
        let mut command = host.command(localpair_bin()?);
        for (key, _) in std::env::vars() {
            if key.starts_with("LOCALPAIR_") && key != "LOCALPAIR_BIN" {
                command.env_remove(key);
            }
        }
        command
            .env("LOCALPAIR_DEVICE__NAME", host.name())
            .env_remove("RUST_LOG")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok(Self {
            command,
            config: None,
        })
    }

    /// Writes `toml` to a temporary file and passes it with `--config`.
    pub fn config(mut self, toml: &str) -> Result<Self, LabError> {
        let path = std::env::temp_dir().join(format!(
            "localpair-lab-{}-{}.toml",
            std::process::id(),
            CONFIGS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, toml)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        self.command.arg("--config").arg(&path);
        self.config = Some(path);
        Ok(self)
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Feeds `input` on stdin (for `join` reading a code).
    pub fn stdin_piped(mut self) -> Self {
        self.command.stdin(Stdio::piped());
        self
    }

    /// Runs to completion, killing it after `timeout`.
    pub fn run(self, timeout: Duration) -> Result<Ran, LabError> {
        let output = self.spawn()?.wait_with_output_timeout(timeout)?;
        Ok(Ran {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts it in the background; the guard kills it on drop.
    pub fn spawn(mut self) -> Result<ChildGuard, LabError> {
        let mut child = ChildGuard::spawn(&mut self.command)?;
        if let Some(path) = self.config.take() {
            child.remove_on_drop(path);
        }
        Ok(child)
    }
}

/// How long a CLI command in a lab test may run before the test calls it hung.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
