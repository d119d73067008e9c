//! The real `cdw` binary driven in tmux at 80x24, as a user over SSH would: a stopped run is
//! resumed from the Runs screen, the UI quits and the training goes on; the whole tmux server is
//! killed (a dropped SSH connection) and the training still goes on; a new `cdw` finds it running
//! and stops it, and its epochs are kept. Skipped, with the reason printed, only without tmux.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const CDW: &str = env!("CARGO_BIN_EXE_cdw");
const SOCKET: &str = "cdw-e2e";

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-L")
        .arg(SOCKET)
        .args(args)
        .output()
        .expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screen() -> String {
    tmux(&["capture-pane", "-p", "-t", "e2e"])
}

/// Waits until `ok` holds, at most `secs` seconds; panics with `what` and the screen otherwise.
fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; screen:\n{}",
            screen()
        );
        sleep(Duration::from_millis(200));
    }
}

fn completed_epochs(run: &Path) -> usize {
    fs::read_to_string(run.join("metrics.csv"))
        .map(|t| t.lines().skip(1).filter(|l| !l.is_empty()).count())
        .unwrap_or(0)
}

fn state(run: &Path) -> String {
    let text = fs::read_to_string(run.join("status.json")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn open_ui(records: &Path, checkpoints: &Path) {
    let cmd = format!(
        "{CDW} --records {} --checkpoints {}; echo UI-EXITED; sleep 600",
        records.display(),
        checkpoints.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "80",
        "-y",
        "24",
        "sh",
        "-c",
        &cmd,
    ]);
}

#[test]
fn a_training_started_from_the_ui_survives_quitting_and_a_dropped_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let checkpoints = dir.path().join("checkpoints");
    let run: PathBuf = records.join("shapes").join("bs16_lr0.0003_ResNet18");
    let r = records.display().to_string();
    let c = checkpoints.display().to_string();

    // A stopped run to resume: one epoch of a small shapes training, then Ctrl-C.
    let mut first = Command::new(CDW)
        .args([
            "train",
            "--dataset",
            "shapes",
            "--records",
            &r,
            "--checkpoints",
            &c,
        ])
        .args([
            "--set",
            "shapes_images=64",
            "--set",
            "batch_size=16",
            "--set",
            "epochs=500",
        ])
        .args(["--set", "shapes_resolution=16", "--set", "image_size=16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while completed_epochs(&run) < 1 {
        assert!(t.elapsed() < Duration::from_secs(240), "no first epoch");
        sleep(Duration::from_millis(200));
    }
    let pid = i32::try_from(first.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let code = first.wait().unwrap().code();
    assert_eq!(code, Some(130));
    assert_eq!(state(&run), "stopped");

    tmux(&["kill-server"]);
    open_ui(&records, &checkpoints);
    wait_for("the stopped run on the Runs screen", 30, || {
        screen().contains("stopped")
    });
    // r resumes it in the background.
    tmux(&["send-keys", "-t", "e2e", "r"]);
    wait_for("launch.json", 30, || run.join("launch.json").is_file());
    let launch: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("launch.json")).unwrap()).unwrap();
    let train_pid = i32::try_from(launch["pid"].as_i64().unwrap()).unwrap();
    let cleanup = scopeguard(train_pid);
    wait_for("the resumed run shown running", 60, || {
        state(&run) == "running" && screen().contains("running")
    });
    let before = completed_epochs(&run);
    wait_for("an epoch after the resume", 120, || {
        completed_epochs(&run) > before
    });

    // Enter opens its dashboard: the epoch gauge and the loss chart move as it trains.
    tmux(&["send-keys", "-t", "e2e", "Enter"]);
    wait_for("the dashboard", 20, || screen().contains("loss · steps"));
    let shown = dashboard_epoch(&screen()).expect("an epoch gauge");
    wait_for("the dashboard's epoch to advance", 120, || {
        dashboard_epoch(&screen()).is_some_and(|e| e > shown)
    });
    assert!(
        screen().contains("shapes / bs16_lr0.0003_ResNet18"),
        "{}",
        screen()
    );
    tmux(&["send-keys", "-t", "e2e", "Escape"]);
    wait_for("the Runs screen again", 20, || {
        screen().contains("Enter open")
    });

    // q quits the UI with a note; the training goes on.
    tmux(&["send-keys", "-t", "e2e", "q"]);
    wait_for("the UI to exit", 20, || screen().contains("UI-EXITED"));
    assert!(
        screen().contains("still training in the background"),
        "{}",
        screen()
    );
    assert!(alive(train_pid));
    let after_quit = completed_epochs(&run);
    wait_for("an epoch after quitting", 120, || {
        completed_epochs(&run) > after_quit
    });

    // The terminal goes away entirely, as when SSH drops.
    tmux(&["kill-server"]);
    let after_kill = completed_epochs(&run);
    wait_for("an epoch after the tmux server died", 120, || {
        completed_epochs(&run) > after_kill
    });
    assert!(alive(train_pid));

    // A new UI finds it live, and stops it.
    open_ui(&records, &checkpoints);
    wait_for("the live run on a new Runs screen", 30, || {
        screen().contains("running")
    });
    tmux(&["send-keys", "-t", "e2e", "s"]);
    wait_for("the stop confirmation", 10, || {
        screen().contains("Stop shapes/")
    });
    tmux(&["send-keys", "-t", "e2e", "y"]);
    wait_for("status stopped", 120, || state(&run) == "stopped");
    wait_for("stopped on screen", 30, || screen().contains("stopped"));
    let kept = completed_epochs(&run);
    assert!(kept > after_kill, "epochs kept: {kept}");
    wait_for("the training to exit", 30, || !alive(train_pid));
    tmux(&["kill-server"]);
    drop(cleanup);
}

/// The completed epochs the dashboard's gauge shows (`epoch     3/500 ...`).
fn dashboard_epoch(screen: &str) -> Option<usize> {
    let line = screen
        .lines()
        .find(|l| l.trim_start().starts_with("epoch "))?;
    let count = line.trim_start()["epoch ".len()..].trim_start();
    count.split('/').next()?.trim().parse().ok()
}

/// Kills the training if the test fails half-way, so no process outlives it.
struct Guard(i32);
impl Drop for Guard {
    fn drop(&mut self) {
        if alive(self.0) {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
        tmux(&["kill-server"]);
    }
}
fn scopeguard(pid: i32) -> Guard {
    Guard(pid)
}
