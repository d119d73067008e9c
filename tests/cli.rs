//! The real `cdw` binary: linking, `info`, headless training output, errors and Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdw::events::Event;

const CDW: &str = env!("CARGO_BIN_EXE_cdw");

/// A training small enough for a few seconds on 2 CPU cores.
const TINY: [&str; 14] = [
    "--set",
    "shapes_images=64",
    "--set",
    "batch_size=16",
    "--set",
    "hidden_dim=32",
    "--set",
    "feature_num=16",
    "--set",
    "workers=1",
    "--set",
    "image_size=32",
    "--set",
    "epochs=2",
];

#[test]
fn binary_links_libtorch_cuda_with_an_rpath() {
    let out = Command::new("readelf")
        .args(["-d", CDW])
        .output()
        .expect("readelf (binutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Shared library: [libtorch_cuda.so]"),
        "libtorch_cuda.so not NEEDED:\n{text}"
    );
    let runpath = text
        .lines()
        .find(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .unwrap_or_else(|| panic!("no RUNPATH/RPATH:\n{text}"));
    let dir = runpath.split('[').nth(1).unwrap().trim_end_matches(']');
    assert!(
        std::path::Path::new(dir).join("libtorch_cuda.so").exists(),
        "rpath {dir} holds no libtorch_cuda.so"
    );
}

#[test]
fn info_reports_libtorch_and_cuda() {
    let out = Command::new(CDW)
        .arg("info")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libtorch 2.11.0"), "{text}");
    assert!(text.contains("CUDA available: "), "{text}");
    assert!(text.lines().any(|l| l.starts_with("threads: ")), "{text}");
}

#[test]
fn train_prints_json_lines_and_keeps_records() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--records"])
        .arg(tmp.path())
        .arg("--checkpoints")
        .arg(tmp.path().join("checkpoints"))
        .args(TINY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("experiment bs16_lr0.0003_ResNet18 on cpu:"),
        "{stderr}"
    );
    assert!(stderr.contains(" trainable parameters"), "{stderr}");
    let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event: {l}: {e}")))
        .collect();
    assert!(matches!(
        events[0],
        Event::Started {
            steps_per_epoch: 4,
            epochs: 2,
            ..
        }
    ));
    let steps = events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .count();
    assert_eq!(steps, 8);
    assert!(matches!(
        events.last().unwrap(),
        Event::Finished { epochs: 2, .. }
    ));
    let run = tmp.path().join("shapes/bs16_lr0.0003_ResNet18");
    let metrics = cdw::store::read_metrics(&run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.iter().map(|m| m.epoch).collect::<Vec<_>>(), [1, 2]);
    let status = std::fs::read_to_string(run.join("status.json")).unwrap();
    assert!(status.contains("\"state\": \"finished\""), "{status}");
}

#[test]
fn bad_config_exits_2_with_one_line() {
    let out = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--set", "batch_size=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: config field `batch_size`: 1 is out of range; allowed: an integer >= 2\n"
    );
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return; // this check is for machines without a GPU
    }
    let out = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--set", "device=cuda"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: device `cuda` was requested but CUDA is not available"),
        "{err}"
    );
}

#[test]
fn ctrl_c_stops_after_the_current_step() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(CDW)
        .args(["train", "--dataset", "shapes", "--records"])
        .arg(tmp.path())
        .arg("--checkpoints")
        .arg(tmp.path().join("checkpoints"))
        .args(TINY)
        .args(["--set", "epochs=50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for the first step, then interrupt.
    let start = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("training ended before its first step")
            .unwrap();
        if line.contains("\"event\":\"step\"") {
            break;
        }
        assert!(start.elapsed() < Duration::from_mins(2));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let last: Event = serde_json::from_str(rest.last().expect("a stopped event")).unwrap();
    assert!(matches!(last, Event::Stopped { .. }), "{last:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: stopped after epoch"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let run = tmp.path().join("shapes/bs16_lr0.0003_ResNet18");
    let status = std::fs::read_to_string(run.join("status.json")).unwrap();
    assert!(status.contains("\"state\": \"stopped\""), "{status}");
    // Every line of the metrics file is complete.
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(text.ends_with('\n'));
    let rows = cdw::store::read_metrics(&run.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), text.lines().count() - 1);
}

#[test]
fn config_fields_json_describes_every_field_for_an_editor() {
    let out = Command::new(CDW)
        .args(["config", "fields", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 34, "{names:?}");
    assert_eq!(names[..3], ["batch_size", "epochs", "learning_rate"]);
    let field = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap().clone();
    let backbone = field("backbone");
    assert_eq!(backbone["group"], "network");
    assert_eq!(backbone["kind"], "choice");
    assert_eq!(
        backbone["choices"],
        serde_json::json!(["ResNet18", "ResNet34", "ResNet50"])
    );
    assert_eq!(backbone["default"], "ResNet34");
    let keep = field("keep_checkpoint_every");
    assert_eq!(
        (&keep["kind"], &keep["default"]),
        (&"int".into(), &100.into())
    );
    let bs = field("batch_size");
    assert_eq!(
        (&bs["kind"], &bs["default"], &bs["allowed"], &bs["group"]),
        (
            &"int".into(),
            &128.into(),
            &"an integer >= 2".into(),
            &"optimisation".into()
        )
    );
    assert_eq!(field("evaluation_mode")["open"], true);
    assert_eq!(field("custom_datasets")["kind"], "list");
    assert_eq!(field("use_scheduler")["kind"], "bool");
    assert_eq!(field("shapes_images")["group"], "cdw");
    assert!(fields
        .iter()
        .all(|f| !f["about"].as_str().unwrap().is_empty()));

    let out = Command::new(CDW)
        .args(["config", "fields"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("# optimisation\nbatch_size             128        an integer >= 2\n"),
        "{text}"
    );
    assert!(text.contains("# additions of cdw\n"), "{text}");
}

#[test]
fn records_print_shows_a_reference_folder_and_refuses_a_missing_path() {
    let runs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs");
    let out = Command::new(CDW)
        .args(["records", "--print"])
        .arg(runs.join("cifar10/reference_CD"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# cifar10/reference_CD");
    assert!(lines[1].starts_with("epoch  best_nmi_feature"), "{text}");
    assert_eq!(
        lines.len(),
        2 + 10 + 1,
        "a header, ten marks, a blank line: {text}"
    );
    // The best of each score column is the last mark's, marked with *.
    assert!(
        lines[11].starts_with(" 1000") && lines[11].contains("0.7429*"),
        "{text}"
    );
    let out = Command::new(CDW)
        .args(["records", "--print", "no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no/such/folder: no such file or folder"),
        "{err}"
    );
}
