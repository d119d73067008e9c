//! The real `cdw` binary driven in tmux at 80x24, as a user over SSH would.
//!
//! - A new run is set up in the New-run form, launched, and followed on its dashboard; the UI
//!   quits and the training goes on; the whole tmux server is killed (a dropped SSH connection)
//!   and the training still goes on; a new `cdw` finds it running and stops it, and its epochs
//!   are kept.
//! - A stopped run is resumed from the Runs screen, with the same checks.
//! - A finished run is resumed from an earlier checkpoint on its Checkpoints screen, to more
//!   epochs: its history is cut back and extended while the UI closes and reopens; then a model
//!   is evaluated from the same screen and its scores are shown.
//!
//! Each test has its own tmux server (socket), so one test's `kill-server` never reaches the
//! other. Skipped, with the reason printed, only without tmux.

// Each test is one scenario, read top to bottom as a user would go through it.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const CDW: &str = env!("CARGO_BIN_EXE_cdw");

/// One tmux server of a test, with the UI in its session `e2e`.
struct Tmux {
    socket: &'static str,
    records: PathBuf,
    checkpoints: PathBuf,
    /// The training to kill if the test fails half-way, so no process outlives it.
    training: Option<i32>,
}

impl Tmux {
    /// None (with the reason printed) when tmux is not installed. A server left on the socket by
    /// an earlier, interrupted run of the test is killed first.
    fn new(socket: &'static str, root: &Path) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipped: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let t = Tmux {
            socket,
            records: root.join("records"),
            checkpoints: root.join("checkpoints"),
            training: None,
        };
        t.run(&["kill-server"]);
        Some(t)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// `cdw` on the test's records, in a new 80x24 session; the pane stays when it exits.
    fn open_ui(&self) {
        let cmd = format!(
            "{CDW} --records {} --checkpoints {}; echo UI-EXITED; sleep 600",
            self.records.display(),
            self.checkpoints.display()
        );
        self.run(&[
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

    /// Waits until `ok` holds, at most `secs` seconds; panics with `what` and the screen
    /// otherwise.
    fn wait_for(&self, what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "timed out waiting for {what}; screen:\n{}",
                self.screen()
            );
            sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the screen shows what `ok` looks for.
    fn wait_screen(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) {
        self.wait_for(what, secs, || ok(&self.screen()));
    }

    /// Enter on the selected field, its text cleared, `value` typed, Enter.
    fn set_field(&self, value: &str) {
        self.keys(&["Enter"]);
        for _ in 0..12 {
            self.keys(&["BSpace"]);
        }
        self.keys(&["-l", value]);
        self.keys(&["Enter"]);
    }

    /// The run's training from its launch.json, guarded from here on.
    fn launched(&mut self, run: &Path) -> i32 {
        self.wait_for("launch.json", 30, || run.join("launch.json").is_file());
        let launch: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(run.join("launch.json")).unwrap()).unwrap();
        let pid = i32::try_from(launch["pid"].as_i64().unwrap()).unwrap();
        self.training = Some(pid);
        pid
    }

    /// q quits the UI with the note that the training goes on; then the terminal goes away
    /// entirely, as when SSH drops. The epochs advance after each.
    fn quit_and_drop_the_terminal(&self, run: &Path, pid: i32) {
        self.keys(&["q"]);
        self.wait_screen("the UI to exit", 20, |s| s.contains("UI-EXITED"));
        assert!(
            self.screen().contains("still training in the background"),
            "{}",
            self.screen()
        );
        assert!(alive(pid));
        let after_quit = completed_epochs(run);
        self.wait_for("an epoch after quitting", 120, || {
            completed_epochs(run) > after_quit
        });
        self.run(&["kill-server"]);
        let after_kill = completed_epochs(run);
        self.wait_for("an epoch after the tmux server died", 120, || {
            completed_epochs(run) > after_kill
        });
        assert!(alive(pid));
    }

    /// A new UI finds the run live on the Runs screen and stops it (s, y): `stopped`, with every
    /// epoch completed before the stop kept.
    fn reopen_and_stop(&self, run: &Path, pid: i32) {
        self.open_ui();
        self.wait_screen("the live run on a new Runs screen", 30, |s| {
            s.contains("running")
        });
        let before = completed_epochs(run);
        self.keys(&["s"]);
        self.wait_screen("the stop confirmation", 10, |s| s.contains("Stop shapes/"));
        self.keys(&["y"]);
        self.wait_for("status stopped", 120, || state(run) == "stopped");
        self.wait_screen("stopped on screen", 30, |s| s.contains("stopped"));
        let kept = completed_epochs(run);
        assert!(kept >= before && kept >= 3, "epochs kept: {kept}");
        assert_eq!(
            last_metrics_epoch(run),
            kept,
            "metrics.csv ends at the last epoch"
        );
        self.wait_for("the training to exit", 30, || !alive(pid));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Some(pid) = self.training.filter(|&p| alive(p)) {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        self.run(&["kill-server"]);
    }
}

fn completed_epochs(run: &Path) -> usize {
    fs::read_to_string(run.join("metrics.csv"))
        .map_or(0, |t| t.lines().skip(1).filter(|l| !l.is_empty()).count())
}

/// The epoch column of metrics.csv's last row.
fn last_metrics_epoch(run: &Path) -> usize {
    let text = fs::read_to_string(run.join("metrics.csv")).unwrap_or_default();
    text.lines()
        .rfind(|l| !l.is_empty())
        .and_then(|l| l.split(',').next())
        .and_then(|e| e.parse().ok())
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

/// The completed epochs the dashboard's gauge shows (`epoch     3/500 ...`).
fn dashboard_epoch(screen: &str) -> Option<usize> {
    let line = screen
        .lines()
        .find(|l| l.trim_start().starts_with("epoch "))?;
    let count = line.trim_start()["epoch ".len()..].trim_start();
    count.split('/').next()?.trim().parse().ok()
}

/// The latest loss the dashboard's state line shows (`running · cpu · 81.4 img/s · loss 2.8710`).
fn dashboard_loss(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains(" · loss "))?;
    let at = line.find(" · loss ")? + " · loss ".len();
    Some(line[at..].split_whitespace().next()?.to_string())
}

#[test]
fn a_new_run_is_set_up_in_the_form_launched_and_followed_live() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut tmux) = Tmux::new("cdw-e2e-new", dir.path()) else {
        return;
    };
    let run = tmux.records.join("shapes").join("bs16_lr0.0003_ResNet18");
    tmux.open_ui();
    tmux.wait_screen("the Runs screen", 30, |s| s.contains("n new run"));
    tmux.keys(&["n"]);
    tmux.wait_screen("the dataset picker", 20, |s| s.contains("built-in"));
    // s jumps to shapes.
    tmux.keys(&["s", "Enter"]);
    tmux.wait_screen("the form", 20, |s| {
        s.contains("batch_size") && s.contains("New run › shapes")
    });
    // batch_size is the first field, epochs the second, shapes_images the one before the last.
    tmux.set_field("16");
    tmux.keys(&["j"]);
    tmux.set_field("500");
    tmux.keys(&["End", "k"]);
    tmux.set_field("64");
    tmux.wait_screen("the changes in the panel", 20, |s| {
        s.contains("experiment bs16_lr0.0003_ResNet18") && s.contains("epochs: ")
    });
    tmux.keys(&["L"]);
    let pid = tmux.launched(&run);
    tmux.wait_screen("the dashboard of the new run", 60, |s| {
        s.contains("shapes / bs16_lr0.0003_ResNet18")
    });
    tmux.wait_screen("a completed epoch and a loss on the dashboard", 180, |s| {
        dashboard_epoch(s).is_some_and(|e| e >= 1) && dashboard_loss(s).is_some()
    });
    let (epoch, loss) = {
        let s = tmux.screen();
        (dashboard_epoch(&s).unwrap(), dashboard_loss(&s).unwrap())
    };
    tmux.wait_screen("the dashboard's epoch and loss to change", 120, |s| {
        dashboard_epoch(s).is_some_and(|e| e > epoch)
            && dashboard_loss(s).is_some_and(|l| l != loss)
    });
    let cfg = fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(
        cfg.contains("epochs: 500") && cfg.contains("shapes_images: 64"),
        "{cfg}"
    );
    assert_eq!(state(&run), "running");
    tmux.quit_and_drop_the_terminal(&run, pid);
    tmux.reopen_and_stop(&run, pid);
}

#[test]
fn a_stopped_run_is_resumed_from_the_runs_screen_and_survives_a_dropped_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut tmux) = Tmux::new("cdw-e2e-resume", dir.path()) else {
        return;
    };
    let run = tmux.records.join("shapes").join("bs16_lr0.0003_ResNet18");
    let r = tmux.records.display().to_string();
    let c = tmux.checkpoints.display().to_string();

    // A stopped run to resume: one epoch of a small shapes training, then Ctrl-C.
    let mut first = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--records", &r])
        .args(["--checkpoints", &c])
        .args(["--set", "shapes_images=64", "--set", "batch_size=16"])
        .args(["--set", "epochs=500"])
        .args(["--set", "shapes_resolution=16", "--set", "image_size=16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tmux.training = Some(i32::try_from(first.id()).unwrap());
    tmux.wait_for("a first epoch", 240, || completed_epochs(&run) >= 1);
    let pid = i32::try_from(first.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(first.wait().unwrap().code(), Some(130));
    assert_eq!(state(&run), "stopped");

    tmux.open_ui();
    tmux.wait_screen("the stopped run on the Runs screen", 30, |s| {
        s.contains("stopped")
    });
    // r resumes it in the background.
    tmux.keys(&["r"]);
    let train_pid = tmux.launched(&run);
    tmux.wait_for("the resumed run shown running", 60, || {
        state(&run) == "running" && tmux.screen().contains("running")
    });
    let before = completed_epochs(&run);
    tmux.wait_for("an epoch after the resume", 120, || {
        completed_epochs(&run) > before
    });

    // Enter opens its dashboard: the epoch gauge moves as it trains.
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the dashboard", 20, |s| s.contains("loss · steps"));
    let shown = dashboard_epoch(&tmux.screen()).expect("an epoch gauge");
    tmux.wait_screen("the dashboard's epoch to advance", 120, |s| {
        dashboard_epoch(s).is_some_and(|e| e > shown)
    });
    assert!(
        tmux.screen().contains("shapes / bs16_lr0.0003_ResNet18"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["Escape"]);
    tmux.wait_screen("the Runs screen again", 20, |s| s.contains("Enter open"));

    tmux.quit_and_drop_the_terminal(&run, train_pid);
    tmux.reopen_and_stop(&run, train_pid);
}

/// The epoch column of every row of metrics.csv, in order.
fn metrics_epochs(run: &Path) -> Vec<usize> {
    fs::read_to_string(run.join("metrics.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect()
}

#[test]
fn a_finished_run_is_resumed_from_an_earlier_checkpoint_and_a_model_evaluated_from_the_menu() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut tmux) = Tmux::new("cdw-e2e-checkpoints", dir.path()) else {
        return;
    };
    let run = tmux.records.join("shapes").join("bs16_lr0.0003_ResNet18");
    let ckpts = tmux
        .checkpoints
        .join("shapes")
        .join("bs16_lr0.0003_ResNet18");
    let r = tmux.records.display().to_string();
    let c = tmux.checkpoints.display().to_string();

    // A finished 3-epoch run that kept a checkpoint at every epoch.
    let status = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--records", &r])
        .args(["--checkpoints", &c])
        .args(["--set", "shapes_images=64", "--set", "batch_size=16"])
        .args(["--set", "epochs=3", "--set", "keep_checkpoint_every=1"])
        .args(["--set", "shapes_resolution=16", "--set", "image_size=16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(state(&run), "finished");
    assert_eq!(metrics_epochs(&run), [1, 2, 3]);
    for e in 1..=3 {
        assert!(ckpts
            .join(format!("checkpoint_epoch_{e}.safetensors"))
            .is_file());
    }

    // m opens its checkpoints: latest, then the kept ones, newest first.
    tmux.open_ui();
    tmux.wait_screen("the finished run on the Runs screen", 30, |s| {
        s.contains("finished")
    });
    tmux.keys(&["m"]);
    tmux.wait_screen("the Checkpoints screen", 20, |s| {
        s.contains("Checkpoints of shapes/bs16_lr0.0003_ResNet18") && s.contains("model final")
    });
    // latest (3), kept 3, kept 2, kept 1.
    tmux.keys(&["j", "j", "j"]);
    tmux.wait_screen("epoch 1 selected", 10, |s| {
        s.contains("checkpoint_epoch_1.safetensors ·")
    });
    tmux.keys(&["r"]);
    tmux.wait_screen("the epoch count to train to", 10, |s| {
        s.contains("train to epoch: 3")
    });
    tmux.keys(&["BSpace"]);
    tmux.keys(&["-l", "10"]);
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the resume question", 10, |s| {
        s.contains("from epoch 1?") && s.contains("epochs 2..3 is cut back")
    });
    let question = tmux.screen();
    assert!(
        question.contains("checkpoint_epoch_2.safetensors,"),
        "{question}"
    );
    tmux.keys(&["y"]);
    let pid = tmux.launched(&run);
    tmux.wait_for(
        "the training to say it resumed after epoch 1 of 10",
        60,
        || {
            fs::read_to_string(run.join("train.log"))
                .unwrap_or_default()
                .contains("after epoch 1 of 10")
        },
    );
    // Epochs 2 and 3 were cut back and are trained again, once each.
    tmux.wait_for("epoch 4", 240, || completed_epochs(&run) >= 4);
    assert_eq!(metrics_epochs(&run)[..4], [1, 2, 3, 4]);

    // The UI closes (and its terminal goes) while it trains: the epochs go on; a new UI shows
    // the run, which ends finished at 10 epochs, each trained once.
    tmux.keys(&["q"]);
    tmux.wait_screen("the UI to exit", 20, |s| s.contains("UI-EXITED"));
    tmux.run(&["kill-server"]);
    let closed_at = completed_epochs(&run);
    assert!(
        closed_at < 10,
        "still training when the UI closed: {closed_at}"
    );
    tmux.wait_for("an epoch while no UI is open", 120, || {
        completed_epochs(&run) > closed_at
    });
    // The old server's socket goes away before a new one can start on it.
    sleep(Duration::from_secs(1));
    tmux.open_ui();
    tmux.wait_screen("the Runs screen again", 30, |s| s.contains("bs16_lr0.0003"));
    tmux.wait_for("the run to finish", 240, || state(&run) == "finished");
    tmux.wait_for("the training to exit", 30, || !alive(pid));
    assert_eq!(metrics_epochs(&run), (1..=10).collect::<Vec<_>>());

    // Evaluate the final model from the menu and see its scores.
    tmux.wait_screen("finished on screen", 30, |s| s.contains("finished"));
    tmux.keys(&["m"]);
    tmux.wait_screen("the Checkpoints screen", 20, |s| {
        s.contains("Checkpoints of")
    });
    // The last file is the final model, the resumed run's: epoch 10.
    tmux.keys(&["End"]);
    tmux.wait_screen("model final selected", 10, |s| {
        s.contains("model_final.safetensors")
            && s.lines()
                .any(|l| l.contains("model final") && l.split_whitespace().nth(2) == Some("10"))
    });
    tmux.keys(&["e"]);
    tmux.wait_screen("the evaluation's scores", 240, |s| {
        s.contains("evaluated: NMI f ")
    });
    // The scores on screen are those of the evaluation's result line in its log.
    let log = fs::read_to_string(run.join("evaluate_model_final.log")).unwrap();
    let result: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "evaluate_result")
        .unwrap_or_else(|| panic!("no result in the log: {log}"));
    let nmi = |space: &str| result["report"][space]["nmi"].as_f64().unwrap();
    let shown = format!(
        "evaluated: NMI f {:.3} h {:.3}",
        nmi("feature"),
        nmi("backbone")
    );
    let screen = tmux.screen();
    assert!(screen.contains(&shown), "{shown} not on screen:\n{screen}");
    eprintln!("{screen}");
}
