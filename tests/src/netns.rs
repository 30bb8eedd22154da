//! Entering network namespaces from threads, and finding the processes inside one.

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::{io, panic};

use crate::LabError;

/// Where `ip netns` keeps its named namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

pub(crate) fn netns_path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Moves the *calling thread* into the named network namespace; only ever called on threads this crate spawned,
/// because a thread cannot reliably go back.
fn enter(netns: &str) -> Result<(), LabError> {
    let err = |source| LabError::Setns {
        netns: netns.to_owned(),
        source,
    };
    let file = File::open(netns_path(netns)).map_err(err)?;
    setns_net(file.as_fd()).map_err(err)
}

#[allow(unsafe_code)]
fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns(2) only reads the descriptor, which the borrow keeps open for the call; it changes the calling
    // thread's network namespace and no memory that Rust manages.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `f` on a fresh thread inside `netns` and waits for it; a panic in `f` is resumed on the caller.
pub(crate) fn run_in<T, F>(netns: &str, f: F) -> Result<T, LabError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name(format!("lab:{netns}"))
            .spawn_scoped(s, || enter(netns).map(|()| f()))
            .map_err(|e| LabError::io("spawning a namespace thread", e))?;
        match handle.join() {
            Ok(result) => result,
            Err(payload) => panic::resume_unwind(payload),
        }
    })
}

/// Starts `f` on a new thread inside `netns`; returns once the thread is in the namespace.
pub(crate) fn spawn_in<T, F>(netns: &str, f: F) -> Result<NsThread<T>, LabError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let ns = netns.to_owned();
    let handle = thread::Builder::new()
        .name(format!("lab:{netns}"))
        .spawn(move || match enter(&ns) {
            Ok(()) => {
                let _ = tx.send(Ok(()));
                Some(f())
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                None
            }
        })
        .map_err(|e| LabError::io("spawning a namespace thread", e))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(NsThread {
            handle,
            netns: netns.to_owned(),
        }),
        Ok(Err(e)) => Err(e),
        // The thread died before reporting: only a panic in `enter` could do that; surface it.
        Err(_) => match handle.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(_) => Err(LabError::Setns {
                netns: netns.to_owned(),
                source: io::Error::other("namespace thread exited before entering"),
            }),
        },
    }
}

/// A thread running inside a host's network namespace (see [`Host::spawn`](crate::Host::spawn)).
///
/// Dropping it detaches the thread, like [`JoinHandle`]. Threads the closure starts (a tokio runtime's workers)
/// inherit the namespace, because Linux copies it from the creating thread.
#[derive(Debug)]
pub struct NsThread<T> {
    handle: JoinHandle<Option<T>>,
    netns: String,
}

impl<T> NsThread<T> {
    /// Waits for the closure's result; a panic inside it is resumed here, so test assertions fail the test.
    pub fn join(self) -> T {
        match self.try_join() {
            Ok(v) => v,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Waits for the closure; `Err` holds the panic payload instead of resuming it.
    pub fn try_join(self) -> thread::Result<T> {
        self.handle.join().map(|v| match v {
            Some(v) => v,
            // `spawn_in` only hands out an NsThread after the thread entered the namespace and went on to `f`.
            None => unreachable!("namespace thread handed out although entering failed"),
        })
    }

    /// Whether the closure has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The namespace the thread runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

/// Writes `/proc/sys` values inside `netns`: `/proc/sys/net` shows the namespace of the thread that opens it.
pub(crate) fn write_sysctls(netns: &str, values: &[(&str, &str)]) -> Result<(), LabError> {
    run_in(netns, || {
        for (key, value) in values {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            fs::write(&path, value)
                .map_err(|e| LabError::io(format!("setting sysctl {key}={value} in {netns}"), e))?;
        }
        Ok(())
    })?
}

/// The identity (device, inode) of a named namespace, comparable with `/proc/<pid>/ns/net`.
pub(crate) fn netns_id(name: &str) -> Option<(u64, u64)> {
    fs::metadata(netns_path(name))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Pids of processes (thread-group leaders) inside one of the namespaces `names` (identified by `ids`), never our
/// own process.
///
/// Also matches `ip netns exec <name> ...` processes that have not entered the namespace yet: a command spawned just
/// before teardown would otherwise slip through and run on. Scanning /proc once covers every namespace of a lab,
/// instead of one `ip netns pids` per namespace.
pub(crate) fn pids_in(names: &[&str], ids: &[(u64, u64)]) -> Vec<u32> {
    if names.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
                || fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| is_netns_exec(&cmdline, names))
        })
        .collect()
}

/// Whether a NUL-separated command line is `ip [opts] netns exec <one of names> ...`.
fn is_netns_exec(cmdline: &[u8], names: &[&str]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    args.windows(3)
        .any(|w| w[0] == b"netns" && w[1] == b"exec" && names.iter().any(|n| n.as_bytes() == w[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_netns_exec() {
        let names = ["lp-1-0-sw", "lp-1-0-h1"];
        assert!(is_netns_exec(
            b"ip\0netns\0exec\0lp-1-0-h1\0sleep\0forever\0",
            &names
        ));
        assert!(!is_netns_exec(
            b"ip\0netns\0exec\0lp-1-0-h2\0sleep\0",
            &names
        ));
        assert!(!is_netns_exec(b"sleep\0forever\0", &names));
    }
}
