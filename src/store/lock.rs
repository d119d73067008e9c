//! One training at a time per run: a `lock` file in the run directory holding the owner's PID.
//! A lock left by a process that no longer exists (killed, crashed) is taken over. Taking the
//! lock creates the run directory, so a new run takes it only once it is ready to train.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use super::{RunDir, StoreError};

/// Held while a training writes a run; removed on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    pid: u32,
}

/// Whether process `pid` exists (signal 0 probes without signalling).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 performs only the existence and permission checks.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl RunLock {
    /// Takes the lock of `run` (its directory is created if needed).
    pub fn acquire(run: &RunDir) -> Result<RunLock, StoreError> {
        let dir = &run.path;
        fs::create_dir_all(dir).map_err(|source| StoreError::Write {
            path: dir.clone(),
            source,
        })?;
        let path = run.lock_path();
        let pid = std::process::id();
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(format!("{pid}\n").as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|source| StoreError::Write {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(RunLock { path, pid });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match owner {
                        Some(owner) if owner != pid && process_alive(owner) => {
                            return Err(StoreError::Locked {
                                run: dir.clone(),
                                pid: owner,
                                lock: path,
                            });
                        }
                        // Dead owner, unreadable (torn) lock, or our own PID: stale.
                        _ => {
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(source) => return Err(StoreError::Write { path, source }),
            }
        }
        Err(StoreError::Locked {
            run: dir.clone(),
            pid: 0,
            lock: path,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only remove a lock that is still ours.
        let ours = fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(self.pid);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_owner_blocks_and_a_dead_one_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: tmp.path().join("run"),
        };
        let dir = &run.path;
        // A live process other than us: our parent (the test harness's parent shell or cargo).
        let parent = std::os::unix::process::parent_id();
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("lock"), format!("{parent}\n")).unwrap();
        let err = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(
            err.contains(&format!("being trained by process {parent}")),
            "{err}"
        );
        // A PID that cannot exist (above the kernel's pid_max limit of 2^22).
        fs::write(dir.join("lock"), "99999999\n").unwrap();
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("lock")).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!dir.join("lock").exists());
    }
}
