//! Long jobs as separate `cdw` processes: each in its own session (so closing the terminal or
//! losing the SSH connection does not reach it), stdin from /dev/null, stdout and stderr appended
//! to a log file in the run folder (so nothing it prints can write over the screen).

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use super::app::Ctx;
use crate::store::runs::{record_launch, Launch, LAUNCH_LOG};

/// A `cdw` command to start in the background.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
}

impl Job {
    pub fn new(
        exe: &Path,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        log: PathBuf,
    ) -> Job {
        Job {
            exe: exe.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
            log,
        }
    }

    /// The command line, for the log pane and error messages.
    pub fn display(&self) -> String {
        let mut s = String::from("cdw");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Starts the job in a new session; returns the child (to be reaped) at once.
    pub fn spawn(&self) -> io::Result<Child> {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir)?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            // The log is not a terminal, so cdw writes JSON lines there, never a progress bar.
            .stderr(Stdio::from(err));
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it makes the
        // child the leader of a new session with no controlling terminal, so the terminal's
        // hangup (a dropped SSH connection) is not delivered to it.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn()
    }
}

/// Starts `cdw train ARGS --records R --checkpoints C [--config F]` for the run folder `run_dir`:
/// writes its `launch.json` (so the Runs screen lists it at once, as starting), sends its output to
/// the run's `train.log`, and keeps the child to be reaped. Returns the pid.
pub fn launch_training(ctx: &mut Ctx, run_dir: &Path, args: &[String]) -> Result<u32, String> {
    let mut all: Vec<String> = vec!["train".into()];
    all.extend(args.iter().cloned());
    all.push("--records".into());
    all.push(ctx.records.display().to_string());
    all.push("--checkpoints".into());
    all.push(ctx.checkpoints.display().to_string());
    if let Some(c) = &ctx.config {
        all.push("--config".into());
        all.push(c.display().to_string());
    }
    let job = Job::new(&ctx.exe, all.clone(), run_dir.join(LAUNCH_LOG));
    let child = job
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", job.display()))?;
    let pid = child.id();
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ctx.children.push(child);
    record_launch(
        run_dir,
        &Launch {
            pid,
            command: all,
            started,
        },
    )
    .map_err(|e| format!("started pid {pid}, but {e}"))?;
    Ok(pid)
}

/// Asks the process `pid` to stop gracefully (SIGINT: the training finishes its step, keeps every
/// completed epoch and exits as `stopped`).
pub fn interrupt(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("pid {pid}")))?;
    // SAFETY: kill has no memory effects; a wrong pid only yields an error.
    if unsafe { libc::kill(pid, libc::SIGINT) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The last `n` lines of a log file (empty when it does not exist).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_job_runs_in_its_own_session_with_output_in_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run/train.log");
        // The shell prints its session id and its own pid: they are equal for a session leader.
        let job = Job::new(
            Path::new("/bin/sh"),
            [
                "-c",
                "echo sid=$(ps -o sid= -p $$ | tr -d ' ') pid=$$; echo oops >&2",
            ],
            log.clone(),
        );
        let mut child = job.spawn().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success());
        let text = fs::read_to_string(&log).unwrap();
        let first = text.lines().next().unwrap();
        let (sid, pid) = first
            .strip_prefix("sid=")
            .and_then(|r| r.split_once(" pid="))
            .unwrap();
        assert_eq!(sid, pid, "{text}");
        assert!(text.contains("oops"), "stderr goes to the log too: {text}");
        assert_eq!(log_tail(&log, 1), vec!["oops".to_string()]);
        assert!(log_tail(&dir.path().join("none"), 3).is_empty());
    }

    #[test]
    fn interrupt_sends_sigint() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("l");
        let job = Job::new(
            Path::new("/bin/sh"),
            [
                "-c",
                "trap 'echo got-int; exit 3' INT; while true; do sleep 0.05; done",
            ],
            log.clone(),
        );
        let mut child = job.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        interrupt(child.id()).unwrap();
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no exit after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(3));
        assert!(fs::read_to_string(&log).unwrap().contains("got-int"));
        assert_eq!(
            job.display(),
            "cdw -c trap 'echo got-int; exit 3' INT; while true; do sleep 0.05; done"
        );
    }
}
