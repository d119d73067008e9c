//! Kills `cdw train` with SIGKILL at several moments, resumes each time (`reload: true`), and
//! checks that the run completes with the history of an uninterrupted run: every epoch once in
//! metrics.csv and events.jsonl, with the same losses, and a final checkpoint.

// Each test is one scenario, read top to bottom as a user would go through it.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const EPOCHS: i64 = 6;

fn train_cmd(records: &Path, checkpoints: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdw"));
    c.args(["train", "--dataset", "shapes", "--json"]);
    for s in [
        "shapes_images=16",
        "batch_size=8",
        "image_size=32",
        "hidden_dim=16",
        "feature_num=8",
        "workers=1",
        &format!("epochs={EPOCHS}"),
    ] {
        c.args(["--set", s]);
    }
    c.arg("--records").arg(records);
    c.arg("--checkpoints").arg(checkpoints);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

const RUN: &str = "shapes/bs8_lr0.0003_ResNet18";
const STEPS_PER_EPOCH: i64 = 2;

/// Follows a child's JSON-lines stdout: sends the start epoch of its `started` event, then one
/// message per `step` event.
fn step_events(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<i64> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let msg = match v["event"].as_str() {
                Some("started") => v["start_epoch"].as_i64(),
                Some("step") => Some(0),
                _ => None,
            };
            if let Some(m) = msg {
                if tx.send(m).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// (epoch, instance, feature, total) rows of a run's metrics.csv.
fn metrics(records: &Path) -> Vec<(i64, f64, f64, f64)> {
    let text = fs::read_to_string(records.join(RUN).join("metrics.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// A small deterministic generator for the kill moments (reproducible failures).
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (ref_rec, ref_ck) = (tmp.path().join("ref/records"), tmp.path().join("ref/ckpt"));
    let out = train_cmd(&ref_rec, &ref_ck).output().unwrap();
    assert!(
        out.status.success(),
        "reference run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = metrics(&ref_rec);
    assert_eq!(
        reference.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=EPOCHS).collect::<Vec<_>>()
    );

    let (rec, ck) = (tmp.path().join("records"), tmp.path().join("ckpt"));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut kills = Vec::new();
    let mut checked_lock = false;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_mins(15),
            "the run did not complete after kills at {kills:?}"
        );
        let mut child = train_cmd(&rec, &ck).stdout(Stdio::piped()).spawn().unwrap();
        if !checked_lock {
            // While this training holds the run, a second one is refused with a clear message.
            let lock = rec.join(RUN).join("lock");
            let t = Instant::now();
            while !lock.exists() && t.elapsed() < Duration::from_mins(1) {
                sleep(Duration::from_millis(20));
            }
            let second = train_cmd(&rec, &ck).output().unwrap();
            assert!(!second.status.success());
            let msg = String::from_utf8_lossy(&second.stderr);
            assert!(
                msg.contains(&format!("is being trained by process {}", child.id())),
                "{msg}"
            );
            checked_lock = true;
        }
        // Kill moments are chosen in steps of this run (after a random number of step events,
        // plus a random delay that sometimes lands in a checkpoint write), so they fall inside
        // the run however fast the machine is.
        let events = step_events(&mut child);
        let status = if kills.len() < 3 {
            let started = events
                .recv_timeout(Duration::from_mins(2))
                .expect("a started event");
            let remaining = (EPOCHS - started + 1) * STEPS_PER_EPOCH;
            let target = 1 + (rng.next_f64() * (remaining / 2) as f64) as i64;
            let mut seen = 0;
            while seen < target {
                match events.recv_timeout(Duration::from_mins(2)) {
                    Ok(_) => seen += 1,
                    Err(e) => panic!("no step event from the training ({e}) after {seen} steps"),
                }
            }
            sleep(Duration::from_millis((rng.next_f64() * 60.0) as u64));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills.push((started, target));
            None
        } else {
            Some(child.wait().unwrap())
        };
        if let Some(s) = status {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            assert!(s.success(), "resumed run failed: {err}");
            break;
        }
    }
    eprintln!("killed after {kills:?}");
    assert_eq!(kills.len(), 3);

    // Every epoch once, with the losses of the uninterrupted run (resume is exact).
    let got = metrics(&rec);
    assert_eq!(got.len(), reference.len(), "{got:?}");
    for (g, r) in got.iter().zip(&reference) {
        assert_eq!(g.0, r.0);
        for (a, b) in [(g.1, r.1), (g.2, r.2), (g.3, r.3)] {
            assert!((a - b).abs() < 1e-5, "epoch {}: {a} vs {b}", g.0);
        }
    }
    // The event log parses line by line, and each epoch ends once.
    let events = fs::read_to_string(rec.join(RUN).join("events.jsonl")).unwrap();
    let mut epochs = Vec::new();
    for line in events.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "epoch" {
            epochs.push(v["epoch"].as_i64().unwrap());
        }
    }
    assert_eq!(epochs, (1..=EPOCHS).collect::<Vec<_>>());
    assert!(events.lines().last().unwrap().contains("\"finished\""));
    let status: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(rec.join(RUN).join("status.json")).unwrap())
            .unwrap();
    assert_eq!(status["state"], "finished");
    assert_eq!(status["epoch"], EPOCHS);
    assert!(!rec.join(RUN).join("lock").exists());
    assert!(ck.join(RUN).join("model_final.safetensors").exists());
    let final_ck = ck.join(RUN).join("checkpoint.safetensors");
    let c = cdw::store::checkpoint::Checkpoint::read(&final_ck).unwrap();
    assert_eq!(c.meta.epoch, EPOCHS);
    // The same final weights as the uninterrupted run.
    let r =
        cdw::store::checkpoint::Checkpoint::read(&ref_ck.join(RUN).join("checkpoint.safetensors"))
            .unwrap();
    for ((n, a), (m, b)) in c.model.iter().zip(&r.model) {
        assert_eq!(n, m);
        let d = (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-5, "{n} differs by {d}");
    }
}
