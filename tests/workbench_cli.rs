//! `cdw` without a terminal, and `cdw runs`, on a copy of the fixture runs.

use std::path::Path;
use std::process::Command;

const CDW: &str = env!("CARGO_BIN_EXE_cdw");

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs"),
        dir.path(),
    );
    dir
}

#[test]
fn cdw_without_a_terminal_says_so_and_exits_2() {
    let out = Command::new(CDW).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "cdw: not a terminal, so the workbench cannot open; use the headless commands (cdw runs, cdw train, cdw evaluate, cdw --help)"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn cdw_runs_prints_the_table() {
    let dir = fixtures();
    let out = Command::new(CDW)
        .args(["runs", "--records"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("STATE"), "{text}");
    let row = |exp: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some(exp))
            .unwrap_or_else(|| panic!("{exp} in {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        &row("bs64_lr0.0003_ResNet18")[..7],
        [
            "finished",
            "shapes",
            "bs64_lr0.0003_ResNet18",
            "cd",
            "10/10",
            "0.329",
            "0.330"
        ]
    );
    assert_eq!(
        &row("bs32_lr0.0003_ResNet18")[..5],
        ["running", "shapes", "bs32_lr0.0003_ResNet18", "cd", "6/40"]
    );
    assert_eq!(row("bs128_lr0.0003_ResNet34")[0], "crashed");
    assert_eq!(
        &row("reference_CD")[..6],
        ["reference", "cifar10", "reference_CD", "-", "1000", "0.743"]
    );
    assert!(
        text.contains("cifar10/bs128_lr0.0003_ResNet34: process 9999999 is gone"),
        "{text}"
    );
}

#[test]
fn cdw_runs_json_is_one_array() {
    let dir = fixtures();
    let out = Command::new(CDW)
        .args(["runs", "--json", "--records"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 5);
    let simclr = runs
        .iter()
        .find(|r| r["experiment"] == "bs64_lr0.0003_ResNet18_simclr")
        .unwrap();
    assert_eq!(simclr["shown"], "stopped");
    assert_eq!(simclr["method"], "simclr");
    assert_eq!(simclr["epoch"], 8);
    assert_eq!(simclr["epochs"], 10);
    assert!(simclr["modified"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn cdw_runs_on_an_empty_root_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CDW)
        .args(["runs", "--records"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cdw train --dataset shapes"));
}
