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
    /// From a finished process's output.
    pub fn from_output(output: std::process::Output) -> Self {
        let std::process::Output {
            status,
            stdout,
            stderr,
        } = output;
        Self {
            status,
            stdout: String::from_utf8(stdout)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            stderr: String::from_utf8(stderr)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

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
    /// `localpair` in `host`'s namespace, with no inherited `LOCALPAIR_*` variables, the device
    /// named after the host, and the host's own home and state directory (the hosts share one
    /// filesystem and must not share one identity).
    pub fn on(host: &Host) -> Result<Self, LabError> {
        let mut command = host.command(localpair_bin()?);
        for (key, _) in std::env::vars() {
            if (key.starts_with("LOCALPAIR_") && key != "LOCALPAIR_BIN") || key.starts_with("XDG_")
            {
                command.env_remove(key);
            }
        }
        let home = host.files().join("home");
        std::fs::create_dir_all(&home)
            .map_err(|e| LabError::io(format!("creating {}", home.display()), e))?;
        command
            .env("HOME", &home)
            .env("XDG_STATE_HOME", host.files().join("state"))
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

    /// Runs it on a pseudo-terminal (util-linux `script`, inside the host's namespace): its stdin,
    /// stdout and stderr are the terminal, and everything it draws there arrives on stdout.
    /// Call it last, after [`config`](Self::config) and [`args`](Self::args).
    pub fn in_terminal(mut self) -> Self {
        let args: Vec<std::ffi::OsString> =
            self.command.get_args().map(ToOwned::to_owned).collect();
        // `ip netns exec NS` stays outside; the rest becomes the one command line script runs.
        let (netns, inner) = args.split_at(args.len().min(3));
        // A terminal has a size; one made by `script` with stdin not a terminal has none.
        let line = std::iter::once("stty cols 100 rows 30 &&".to_owned())
            .chain(
                inner
                    .iter()
                    .map(|arg| format!("'{}'", arg.to_string_lossy().replace('\'', r"'\''"))),
            )
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(self.command.get_program());
        command
            .args(netns)
            .args(["script", "--quiet", "--return", "--flush", "--command"])
            .arg(line)
            .arg("/dev/null");
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            command.current_dir(dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command = command;
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
        Ok(Ran::from_output(output))
    }

    /// Runs to completion and returns its one JSON object; an exit status other than 0 is an error
    /// carrying stdout and stderr.
    pub fn ok_json(self, timeout: Duration) -> Result<serde_json::Value, LabError> {
        let ran = self.run(timeout)?;
        if ran.code() != Some(0) {
            return Err(LabError::Timeout(format!(
                "localpair exited {}:\n--- stdout\n{}\n--- stderr\n{}",
                ran.status, ran.stdout, ran.stderr
            )));
        }
        Ok(ran.json())
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

/// A `localpair` process whose stdout is read line by line while it runs (`host` prints its code
/// first and the result later).
#[derive(Debug)]
pub struct Running {
    child: ChildGuard,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The next stdout line, waiting at most `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Result<String, LabError> {
        self.lines.recv_timeout(timeout).map_err(|_| {
            LabError::Timeout(format!(
                "no stdout line within {timeout:?}; stderr so far: {}",
                self.stderr()
            ))
        })
    }

    /// The next stdout line as JSON.
    pub fn next_json(&self, timeout: Duration) -> Result<serde_json::Value, LabError> {
        let line = self.next_line(timeout)?;
        serde_json::from_str(&line)
            .map_err(|e| LabError::Timeout(format!("stdout line is not JSON ({e}): {line}")))
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for the exit, at most `timeout`, then kills it.
    pub fn wait(mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        let status = self.child.wait_timeout(timeout)?;
        status.ok_or_else(|| {
            LabError::Timeout(format!(
                "`{}` still running after {timeout:?}; stderr: {}",
                self.child.command_line(),
                self.stderr()
            ))
        })
    }

    /// Waits for the exit (at most `timeout`, then kills it) and returns the status with the whole
    /// of stderr, read to its end.
    pub fn finish(mut self, timeout: Duration) -> Result<(ExitStatus, String), LabError> {
        let status = self.child.wait_timeout(timeout)?;
        let Some(status) = status else {
            return Err(LabError::Timeout(format!(
                "`{}` still running after {timeout:?}; stderr: {}",
                self.child.command_line(),
                self.stderr()
            )));
        };
        if let Some(reader) = self.stderr_reader.take() {
            // The pipe closes with the process; a bounded wait guards against an inheriting child.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !reader.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        Ok((status, self.stderr()))
    }

    /// The process, e.g. to write its stdin or signal it.
    pub fn child(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    /// The process id of `localpair` itself, once it runs (`ip netns exec` starts it and becomes
    /// it under the same pid): what [`Usage::of`](crate::Usage::of) reads.
    pub fn pid(&mut self) -> Result<u32, LabError> {
        let pid = self.child.id();
        crate::usage::wait_for_exec(pid, "localpair", Duration::from_secs(5))?;
        Ok(pid)
    }
}

impl Localpair {
    /// Starts it in the background with stdout read line by line.
    pub fn start(self) -> Result<Running, LabError> {
        use std::io::{BufRead as _, Read as _};
        let mut child = self.spawn()?;
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr_reader = None;
        if let Some(mut pipe) = stderr_pipe {
            let sink = std::sync::Arc::clone(&stderr);
            stderr_reader = Some(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }));
        }
        Ok(Running {
            child,
            lines,
            stderr,
            stderr_reader,
        })
    }
}
