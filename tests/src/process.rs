//! Child processes: running helper commands, a guard that kills a child on drop, finding workspace binaries.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};
use std::{env, io, thread};

use crate::LabError;

/// Renders a command line for error messages, so a failure can be re-run by hand.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion, feeding `stdin`, and returns its stdout; a non-zero exit becomes
/// [`LabError::Command`] with the command line and stderr.
pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String, LabError> {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Scripts are a few hundred bytes, far below the pipe buffer, so writing before reading cannot deadlock.
        pipe.write_all(input.as_bytes())
            .map_err(|e| LabError::io(format!("writing stdin of `{command}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io(format!("waiting for `{command}`"), e))?;
    check(command, &out)
}

fn check(command: String, out: &Output) -> Result<String, LabError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip [-n netns] -batch -` with one command per line: one process for a whole setup step.
pub(crate) fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<(), LabError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"]);
    let script = lines.join("\n") + "\n";
    run(&mut cmd, Some(&script)).map_err(|e| match e {
        // The batch text is the interesting part of the command line: put it in the error.
        LabError::Command {
            command,
            status,
            stderr,
        } => LabError::Command {
            command: format!("{command} <<< {script:?}"),
            status,
            stderr,
        },
        other => other,
    })?;
    Ok(())
}

/// Sends `signal` to `pid`; errors (already gone) are ignored because callers only want it dead.
#[allow(unsafe_code)]
pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        // 0 and negative pids address process groups, never what a caller means here.
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Finds `program` on `PATH` (plus the sbin directories, which a non-login root shell may lack).
pub(crate) fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A child process that is killed (SIGKILL) and reaped when the guard is dropped.
///
/// A panicking test therefore never leaves `localpair host` or `tcpdump` running. It dereferences to
/// [`Child`], so `guard.stdout.take()`, `guard.id()` and friends work as usual.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    command: String,
    remove_on_drop: Vec<PathBuf>,
}

impl ChildGuard {
    /// Spawns `cmd` and guards the child.
    pub fn spawn(cmd: &mut Command) -> Result<Self, LabError> {
        let command = describe(cmd);
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(Self {
            child: Some(child),
            command,
            remove_on_drop: Vec::new(),
        })
    }

    /// Guards an already spawned child.
    pub fn new(child: Child) -> Self {
        let command = format!("pid {}", child.id());
        Self {
            child: Some(child),
            command,
            remove_on_drop: Vec::new(),
        }
    }

    /// Deletes `path` once the child is gone (a config file it reads, say).
    pub fn remove_on_drop(&mut self, path: PathBuf) {
        self.remove_on_drop.push(path);
    }

    /// The command line the child was started with (for messages).
    pub fn command_line(&self) -> &str {
        &self.command
    }

    fn child(&self) -> &Child {
        match &self.child {
            Some(c) => c,
            // `child` is only taken by `into_inner` and `drop`, which consume the guard.
            None => unreachable!("ChildGuard used after into_inner"),
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        match &mut self.child {
            Some(c) => c,
            None => unreachable!("ChildGuard used after into_inner"),
        }
    }

    /// Sends SIGTERM, so the child can shut down cleanly; the guard still kills it on drop if it does not.
    pub fn terminate(&self) {
        signal(self.child().id(), libc::SIGTERM);
    }

    /// Waits up to `timeout` for the child to exit; `Ok(None)` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        let deadline = Instant::now() + timeout;
        let command = self.command.clone();
        loop {
            let status = self
                .child_mut()
                .try_wait()
                .map_err(|e| LabError::io(format!("waiting for `{command}`"), e))?;
            if status.is_some() || Instant::now() >= deadline {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Collects stdout and stderr (those that were piped) until the child exits, for at most `timeout`.
    ///
    /// On timeout the child is killed and [`LabError::Timeout`] carries what it wrote on stderr so far. Output is
    /// collected until the pipes close or 250 ms after the child ended, whichever is first: a grandchild
    /// that inherited the pipes (`sh -c "a; b"`) must not make this wait for it.
    pub fn wait_with_output_timeout(mut self, timeout: Duration) -> Result<Output, LabError> {
        let out = Drain::start(self.child_mut().stdout.take());
        let err = Drain::start(self.child_mut().stderr.take());
        let status = self.wait_timeout(timeout)?;
        let timed_out = status.is_none();
        let status = match status {
            Some(s) => s,
            None => {
                let _ = self.child_mut().kill();
                self.child_mut()
                    .wait()
                    .map_err(|e| LabError::io(format!("reaping `{}`", self.command), e))?
            }
        };
        let grace_end = Instant::now() + OUTPUT_GRACE;
        let stdout = out.finish(grace_end);
        let stderr = err.finish(grace_end);
        if timed_out {
            return Err(LabError::Timeout(format!(
                "`{}` did not exit within {timeout:?}; stderr: {}",
                self.command,
                String::from_utf8_lossy(&stderr).trim()
            )));
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Gives up the guard: the caller owns the child and must reap it.
    pub fn into_inner(mut self) -> Child {
        match self.child.take() {
            Some(c) => c,
            None => unreachable!("ChildGuard used after into_inner"),
        }
    }
}

/// How long [`ChildGuard::wait_with_output_timeout`] keeps reading after the child ended.
const OUTPUT_GRACE: Duration = Duration::from_millis(250);

/// Reads a pipe on a thread into a shared buffer, so the bytes read so far can be taken without waiting for EOF.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Drain {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            if let Some(mut pipe) = pipe {
                // A read error just ends the capture: the output is diagnostic, not essential.
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    lock(&shared).extend_from_slice(&chunk[..n]);
                }
            }
            let _ = tx.send(());
        });
        Self { buf, done }
    }

    fn finish(self, deadline: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        std::mem::take(&mut *lock(&self.buf))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child()
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.child_mut()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            // Reap, so no zombie keeps a pid (and its namespace reference) around.
            let _ = child.wait();
        }
        for path in self.remove_on_drop.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Finds the workspace binary `localpair` (see [`workspace_bin`]).
pub fn localpair_bin() -> Result<PathBuf, LabError> {
    workspace_bin("localpair")
}

/// Finds a binary built by this workspace.
///
/// Order: the env var `<NAME>_BIN` (upper case, `-` as `_`, e.g. `LOCALPAIR_BIN`) if set and non-empty; else
/// next to the running executable: test executables live in `target/<profile>/deps/`, binaries in
/// `target/<profile>/`. Cargo does not build other packages' binaries for a test, so a missing binary is an error
/// that says which `cargo build` to run.
pub fn workspace_bin(name: &str) -> Result<PathBuf, LabError> {
    let var = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(value) = env::var_os(&var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LabError::BinaryNotFound {
                name: name.to_owned(),
                searched: vec![path],
                hint: format!("{var} is set but does not name a file"),
            })
        };
    }
    let exe = env::current_exe().map_err(|e| LabError::io("locating the current executable", e))?;
    let searched = bin_candidates(&exe, name);
    if let Some(found) = searched.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let build = if name == "localpair" {
        "cargo build -p localpair-cli".to_owned()
    } else {
        format!("cargo build --bin {name}")
    };
    Err(LabError::BinaryNotFound {
        name: name.to_owned(),
        searched,
        hint: format!("run `{build}` first (same profile as the tests), or set {var}"),
    })
}

fn bin_candidates(exe: &Path, name: &str) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let here = dir.join(name);
    let up = dir.parent().map(|p| p.join(name));
    // target/<profile>/deps/ (tests) and target/<profile>/examples/ hold helpers, not the binaries.
    let nested = matches!(
        dir.file_name().and_then(OsStr::to_str),
        Some("deps" | "examples")
    );
    match (nested, up) {
        (true, Some(up)) => vec![up, here],
        (false, Some(up)) => vec![here, up],
        (_, None) => vec![here],
    }
}

/// Reads one value out of `/proc/self/status` (e.g. the effective uid) without unsafe code.
pub(crate) fn effective_uid() -> io::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| io::Error::other("no Uid line in /proc/self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_prefer_parent_of_deps() {
        let c = bin_candidates(Path::new("/t/target/debug/deps/lab-123"), "localpair");
        assert_eq!(
            c,
            vec![
                PathBuf::from("/t/target/debug/localpair"),
                PathBuf::from("/t/target/debug/deps/localpair")
            ]
        );
        let c = bin_candidates(Path::new("/t/target/debug/lab"), "localpair");
        assert_eq!(c[0], PathBuf::from("/t/target/debug/localpair"));
    }

    #[test]
    fn missing_binary_says_what_to_build() {
        let err = workspace_bin("no-such-lab-binary").expect_err("must be missing");
        let msg = err.to_string();
        assert!(
            msg.contains("cargo build --bin no-such-lab-binary"),
            "{msg}"
        );
        assert!(msg.contains("NO_SUCH_LAB_BINARY_BIN"), "{msg}");
    }

    #[test]
    fn describe_quotes_odd_args() {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", "x", "addr add", "it's"]);
        assert_eq!(describe(&cmd), r"ip -n x 'addr add' 'it'\''s'");
    }

    #[test]
    fn failing_command_reports_line_and_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            None,
        )
        .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("sh -c"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
    }

    #[test]
    fn guard_kills_on_drop() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("30")).expect("spawn sleep");
        let pid = guard.id();
        drop(guard);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn euid_parses() {
        effective_uid().expect("uid");
    }
}
