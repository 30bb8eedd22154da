//! The state directory: what makes a device the same device tomorrow (its key; the pairing crate
//! keeps its trust store here too).
//!
//! Default location: the platform's state directory (`$XDG_STATE_HOME/localpair`, else
//! `~/.local/state/localpair` on Linux; the local data directory elsewhere), or `[device]
//! state_dir`. The directory is mode 0700 and every file 0600. Files are written atomically (a
//! temporary file created exclusively in the same directory, fsync, rename, fsync of the
//! directory: [`write_private`], which the CLI uses for every file it writes that holds a secret),
//! so a crash leaves the old or the new file, never a torn one. Symbolic links are
//! never followed, and a file that group or others can read is refused with the `chmod` that fixes
//! it: another user on the machine must not read the device key.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;

/// The name of this program's directory inside the platform's state directory.
const APP: &str = "localpair";
/// How long [`StateDir::lock`] waits for another process to release a lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting [`StateDir::lock`] tries again.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// A private directory for this device's state.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// An advisory lock on one state file, held until dropped. Other processes that ask for the same
/// lock wait (up to [`LOCK_TIMEOUT`]).
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn state_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl StateDir {
    /// The platform's default: `$XDG_STATE_HOME/localpair` or `~/.local/state/localpair` on
    /// Linux, the local data directory elsewhere (macOS and Windows have no state directory).
    pub fn default_path() -> Result<PathBuf, Error> {
        let dirs = directories::ProjectDirs::from("", "", APP).ok_or_else(|| {
            state_error(
                Path::new("~"),
                "no home directory: set [device] state_dir, or use --state-dir or --ephemeral",
            )
        })?;
        Ok(dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf())
    }

    /// The state directory `[device]` names (`state_dir`, else the platform's), opened; `None`
    /// for an ephemeral device.
    pub fn of_device(device: &crate::config::DeviceConfig) -> Result<Option<Self>, Error> {
        if device.ephemeral {
            return Ok(None);
        }
        let path = match &device.state_dir {
            Some(dir) => dir.clone(),
            None => Self::default_path()?,
        };
        Self::open(path).map(Some)
    }

    /// Opens `path`, creating it (and its parents) with mode 0700 when missing. An existing
    /// directory that others may enter is tightened to 0700; a symbolic link is refused.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(state_error(
                    &path,
                    "is a symbolic link; give the real directory",
                ));
            }
            Ok(meta) if !meta.is_dir() => return Err(state_error(&path, "is not a directory")),
            Ok(_) => tighten_dir(&path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(&path).map_err(|e| state_error(&path, e))?;
                // `mode` applies to the last component only; make sure of it under any umask.
                tighten_dir(&path)?;
            }
            Err(e) => return Err(state_error(&path, e)),
        }
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of file `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Reads file `name`, at most `cap` bytes (a longer file is an error, not read further);
    /// `Ok(None)` when it does not exist. Refuses a symbolic link and a file that group or others
    /// can read or write.
    pub fn read(&self, name: &str, cap: usize) -> Result<Option<Vec<u8>>, Error> {
        let path = self.file(name);
        let mut file = match open_nofollow(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(&path, refusal(&e))),
        };
        let meta = file.metadata().map_err(|e| state_error(&path, e))?;
        if !meta.is_file() {
            return Err(state_error(&path, "is not a regular file"));
        }
        check_private(&path, &meta)?;
        let mut bytes = Vec::new();
        let cap64 = u64::try_from(cap).unwrap_or(u64::MAX);
        (&mut file)
            .take(cap64.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| state_error(&path, e))?;
        if bytes.len() > cap {
            return Err(state_error(&path, format!("is larger than {cap} bytes")));
        }
        Ok(Some(bytes))
    }

    /// Replaces file `name` with `bytes` atomically: a temporary file created exclusively (never
    /// through a symbolic link) with mode 0600 in this directory, written and synced, renamed
    /// over the old one, and the directory synced.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.file(name);
        write_private(&path, bytes).map_err(|e| state_error(&path, e))?;
        self.sweep_temporaries(name);
        Ok(())
    }

    /// Removes the temporary files of `name` that a killed writer left behind (its pid is in the
    /// name and no longer runs). Linux only: elsewhere they stay, harmless, until removed by hand.
    fn sweep_temporaries(&self, name: &str) {
        #[cfg(target_os = "linux")]
        {
            let prefix = format!(".{name}.");
            let Ok(entries) = std::fs::read_dir(&self.path) else {
                return;
            };
            for entry in entries.flatten() {
                let file = entry.file_name();
                let Some(rest) = file
                    .to_str()
                    .and_then(|f| f.strip_prefix(&prefix))
                    .and_then(|f| f.strip_suffix(".tmp"))
                else {
                    continue;
                };
                let dead = rest
                    .split('.')
                    .next()
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if dead {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = name;
    }

    /// Takes the advisory lock for `name` (a `<name>.lock` file beside it), waiting up to
    /// [`LOCK_TIMEOUT`] for another process to release it.
    pub fn lock(&self, name: &str) -> Result<StateLock, Error> {
        let path = self.file(&format!("{name}.lock"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        }
        let file = options
            .open(&path)
            .map_err(|e| state_error(&path, refusal(&e)))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StateLock { file }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(state_error(
                        &path,
                        format!(
                            "another localpair process holds this lock for more than {} s",
                            LOCK_TIMEOUT.as_secs()
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(state_error(&path, e)),
            }
        }
    }
}

/// Replaces `path` with `bytes` atomically, readable by this user only: a temporary file with a
/// random name, created exclusively (`O_EXCL`: never through a symbolic link or over an existing
/// file, whoever planted it) with mode 0600 in the target's own directory, written and synced,
/// then renamed over `path`, and the directory synced. Readers see the old file or the new one,
/// never half of one, and nobody else can open the new one at any point.
///
/// When `path` itself is a symbolic link, the rename replaces the link with the new file: what it
/// pointed to is never written. (In a sticky directory like `/tmp` a link planted by another user
/// cannot be replaced at all and the write fails.) The temporary file is named
/// `.<file name>.<pid>.<random>.tmp` and removed when anything fails.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let suffix =
        crate::identity::random_bytes::<6>().map_err(|e| std::io::Error::other(e.to_string()))?;
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        crate::identity::hex(&suffix)
    ));
    write_via(&temp, path, dir, bytes)
}

/// [`write_private`] through the temporary file `temp` in `dir`.
fn write_via(temp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(temp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(temp, path));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(temp);
        return Err(e);
    }
    // The rename is durable only once the directory itself is on disk.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Opens for reading without following a final symbolic link.
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::other("is a symbolic link"));
    }
    options.open(path)
}

/// What an open that met a symbolic link means, in words.
fn refusal(error: &std::io::Error) -> String {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return "is a symbolic link; localpair does not follow links in its state directory"
            .to_owned();
    }
    error.to_string()
}

/// A state file must be this user's alone.
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecureFile {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn tighten_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| state_error(path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| state_error(path, e))?;
            tracing::info!(path = %path.display(), "state directory tightened to mode 0700");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lp-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = scratch("write");
        let state = StateDir::open(dir.join("nested")).unwrap();
        state.write("f", b"one").unwrap();
        state.write("f", b"two").unwrap();
        assert_eq!(state.read("f", 16).unwrap().unwrap(), b"two");
        assert_eq!(state.read("missing", 16).unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state.file("f")), 0o600);
            assert_eq!(mode(state.path()), 0o700);
        }
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(state.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        assert!(
            state
                .read("f", 2)
                .unwrap_err()
                .to_string()
                .contains("larger than 2")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_file_and_a_symlink_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("refuse");
        let state = StateDir::open(&dir).unwrap();
        state.write("key", b"secret").unwrap();
        std::fs::set_permissions(state.file("key"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        let error = state.read("key", 64).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::os::unix::fs::symlink("/etc/hostname", state.file("link")).unwrap();
        let error = state.read("link", 64).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_writes_are_0600_and_never_follow_a_planted_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("private");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

        // A link at the target is replaced by the new file; what it pointed to is not written.
        let target = dir.join("code.png");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_private(&target, b"image").unwrap();
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"image");
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");

        // A link (or anything) at the temporary name: the write fails, nothing is followed, the
        // target keeps its old contents and the planted link stays as it was.
        let temp = dir.join(".code.png.planted.tmp");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let error = write_via(&temp, &target, &dir, b"other").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&target).unwrap(), b"image");
        assert!(std::fs::symlink_metadata(&temp).unwrap().is_symlink());

        // Over an existing readable file: replaced by a private one; no temporary left behind.
        let report = dir.join("report.json");
        std::fs::write(&report, b"old").unwrap();
        std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&report, b"new").unwrap();
        assert_eq!(mode(&report), 0o600);
        let temporaries = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.ends_with(".tmp") && !name.contains("planted")
            })
            .count();
        assert_eq!(temporaries, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let dir = scratch("lock");
        let state = StateDir::open(&dir).unwrap();
        let held = state.lock("trust").unwrap();
        let other = File::options()
            .write(true)
            .open(state.file("trust.lock"))
            .unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
