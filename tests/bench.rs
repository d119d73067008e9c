//! `cdw bench data`: arguments, the JSON report and the table, on tiny settings.

use std::process::{Command, Output};

use serde_json::Value;

const CDW: &str = env!("CARGO_BIN_EXE_cdw");

fn cdw(args: &[&str]) -> Output {
    Command::new(CDW).args(args).output().unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn data_json_reports_every_setting() {
    let out = cdw(&[
        "bench",
        "data",
        "--source",
        "cifar",
        "--batches",
        "2",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--workers",
        "1,2",
        "--json",
    ]);
    let r = json(&out);
    assert_eq!(r["bench"], "data");
    assert_eq!(r["pipeline"], "cdw");
    assert!(r["cores"].as_u64().unwrap() >= 1);
    assert_eq!(r["s"], 1.0);
    assert_eq!(r["blur"], false);
    assert!(r["jpeg"].is_null());
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "one per worker count");
    for (t, workers) in results.iter().zip([1, 2]) {
        assert_eq!(t["source"], "cifar");
        assert_eq!(t["image_size"], 32);
        assert_eq!(t["workers"], workers);
        assert_eq!(t["batch_size"], 8);
        assert_eq!(t["batches"], 2);
        // The first wave (one batch per worker) is the warm-up.
        assert_eq!(t["warmup_batches"], workers);
        let rate = t["images_per_sec"].as_f64().unwrap();
        assert!(rate > 0.0);
        assert_eq!(t["views_per_sec"].as_f64().unwrap(), 2.0 * rate);
        assert!(
            t["cpu_images_per_sec"].is_null() || t["cpu_images_per_sec"].as_f64().unwrap() > 0.0
        );
        assert!(t["seconds"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn data_writes_a_jpeg_folder_once_and_times_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("jpegs");
    let dir_arg = dir.to_str().unwrap();
    let args = [
        "bench",
        "data",
        "--source",
        "jpeg",
        "--jpeg-dir",
        dir_arg,
        "--jpeg-images",
        "5",
        "--batch-size",
        "4",
        "--batches",
        "1",
        "--workers",
        "1",
        "--image-size",
        "16",
        "--json",
    ];
    let first = json(&cdw(&args));
    assert_eq!(first["jpeg"]["written"], true);
    assert_eq!(first["jpeg"]["files"], 5);
    assert_eq!(first["jpeg"]["width"], 500);
    assert_eq!(first["jpeg"]["height"], 375);
    let files = std::fs::read_dir(dir.join("synthetic")).unwrap().count();
    assert_eq!(files, 5, "kept for the torchvision script");
    assert_eq!(first["decode"][0]["workers"], 1);
    assert_eq!(first["decode"][0]["images"], 5);
    let t = &first["results"][0];
    assert_eq!(
        (t["source"].as_str(), t["image_size"].as_u64()),
        (Some("jpeg"), Some(16))
    );

    // The folder now exists: read, not written again.
    let second = json(&cdw(&args));
    assert_eq!(second["jpeg"]["written"], false);
    assert_eq!(second["jpeg"]["files"], 5);
}

#[test]
fn data_prints_a_table_by_default() {
    let out = cdw(&[
        "bench",
        "data",
        "--source",
        "cifar",
        "--batches",
        "1",
        "--batch-size",
        "4",
        "--image-size",
        "16",
        "--workers",
        "1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("images/s") && text.contains("load average"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("cifar"))
        .unwrap_or_else(|| panic!("no cifar row:\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[..5], ["cifar", "16", "1", "4", "1"], "{row}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["bench", "data", "--source", "png"][..],
        &["bench", "data", "--workers", "0"],
        &["bench", "data", "--batch-size", "0"],
        &["bench", "data", "--image-size", "4"],
        &["bench", "data", "--s=-1", "--source", "cifar"],
        &["bench"],
    ] {
        let out = cdw(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn a_missing_or_broken_jpeg_folder_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // An existing folder that is not an image folder (no class sub-folders).
    let out = cdw(&[
        "bench",
        "data",
        "--source",
        "jpeg",
        "--jpeg-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no class sub-folders"), "{err}");
}
