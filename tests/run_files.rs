//! What `cdw train` leaves in `records/` and `checkpoints/`: nothing for a run that fails before
//! its first epoch, its files and a `failed` status for one that fails later, and a refusal for a
//! run another training holds.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use cdw::events::Event;
use cdw::store::{RunDir, RunState};

/// The entries of `dir` (none when it does not exist), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `cdw train` of `dataset` into `tmp/records` and `tmp/checkpoints`, data under `tmp/data`.
fn train(tmp: &Path, dataset: &str, extra: &[&str]) -> (i32, String, String) {
    let (records, checkpoints) = (tmp.join("records"), tmp.join("checkpoints"));
    let data_root = format!("data_root={}", tmp.join("data").display());
    let mut args = vec![
        "train",
        "--dataset",
        dataset,
        "--records",
        records.to_str().unwrap(),
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--set",
        &data_root,
    ];
    args.extend(extra);
    common::cdw(&args, None)
}

#[test]
fn a_dataset_that_is_not_there_leaves_no_run_behind() {
    let tmp = tempfile::tempdir().unwrap();
    for (dataset, says) in [
        ("cifar10", "cdw datasets download cifar10"),
        ("folder:/nonexistent", "/nonexistent"),
    ] {
        let (code, _, err) = train(tmp.path(), dataset, &[]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(entries(&tmp.path().join("records")), Vec::<String>::new());
        assert_eq!(
            entries(&tmp.path().join("checkpoints")),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_run_held_by_a_live_training_is_refused_before_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("records/shapes/bs64_lr0.0003_ResNet18");
    std::fs::create_dir_all(&run).unwrap();
    // This test process is alive and is not the cdw it starts.
    let holder = std::process::id();
    std::fs::write(run.join("lock"), format!("{holder}\n")).unwrap();
    let (code, out, err) = train(tmp.path(), "shapes", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("is being trained by process {holder}")),
        "{err}"
    );
    assert_eq!(out, "", "nothing trained");
    assert_eq!(entries(&run), ["lock"]);
}

#[test]
fn a_run_that_fails_after_an_epoch_keeps_its_files_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let (records, checkpoints) = (tmp.path().join("records"), tmp.path().join("checkpoints"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdw"))
        .args(["train", "--dataset", "shapes", "--json", "--records"])
        .arg(&records)
        .arg("--checkpoints")
        .arg(&checkpoints)
        .args(["--set", "shapes_images=64", "--set", "batch_size=16"])
        .args(["--set", "hidden_dim=32", "--set", "feature_num=16"])
        .args(["--set", "workers=1", "--set", "image_size=32"])
        .args(["--set", "epochs=20", "--set", "save_model=false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ckpt_dir = checkpoints.join("shapes/bs16_lr0.0003_ResNet18");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Once epoch 1 is checkpointed, the checkpoint's temporary name is taken by a folder, so the
    // next epoch cannot save (root ignores permission bits; a folder in the way stops anyone).
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with(r#"{"event":"checkpoint","epoch":1,"#) {
            std::fs::create_dir(ckpt_dir.join("checkpoint.safetensors.tmp")).unwrap();
            break;
        }
    }
    let events: Vec<Event> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let Some(Event::Failed { error }) = events.last() else {
        panic!("the last event is not `failed`: {events:?}");
    };
    assert!(
        error.starts_with("cannot save the run: cannot write "),
        "{error}"
    );
    assert!(stderr.contains(&format!("error: {error}")), "{stderr}");

    let run = RunDir {
        path: records.join("shapes/bs16_lr0.0003_ResNet18"),
    };
    let status = run.read_status().unwrap();
    assert_eq!(status.state, RunState::Failed);
    assert_eq!(status.error.as_deref(), Some(error.as_str()));
    // The epoch after the first completed; its checkpoint (the first save after the folder was
    // put in the way: normally epoch 2's) failed.
    let failed_at = status.epoch;
    assert!(failed_at >= 2, "{status:?}");
    let metrics = cdw::store::read_metrics(&run.metrics_path()).unwrap();
    assert_eq!(
        metrics.iter().map(|m| m.epoch).collect::<Vec<_>>(),
        (1..=failed_at).collect::<Vec<_>>()
    );
    for file in ["config.yaml", "events.jsonl", "metrics.csv", "status.json"] {
        assert!(run.path.join(file).is_file(), "{file} kept");
    }
    assert!(!run.lock_path().exists(), "the lock is released");
    let kept = cdw::store::checkpoint::Checkpoint::read(&ckpt_dir.join("checkpoint.safetensors"));
    assert_eq!(kept.unwrap().meta.epoch, failed_at - 1);
}
