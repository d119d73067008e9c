//! `cdw evaluate` end to end on the built-in shapes dataset: JSON output, `.npy` dumps, t-SNE
//! pictures, a saved model, and the errors a user can cause.

use std::path::Path;
use std::process::{Command, Output};

fn cdw(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdw"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run cdw")
}

const SMALL: [&str; 8] = [
    "--set",
    "shapes_images=64",
    "--set",
    "hidden_dim=16",
    "--set",
    "feature_num=8",
    "--set",
    "device=cpu",
];

/// Shape and dtype from an `.npy` header.
fn npy_header(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    String::from_utf8(bytes[10..10 + len].to_vec()).unwrap()
}

#[test]
fn json_dump_and_tsne() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "evaluate",
        "--dataset",
        "shapes",
        "--json",
        "--dump",
        "dump",
        "--tsne",
    ];
    args.extend(SMALL);
    let out = cdw(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("evaluating the freshly initialised network"),
        "{stderr}"
    );
    // Every stdout line is an event: the progress of each stage, then the report.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let (last, progress) = events.split_last().unwrap();
    assert_eq!(last["event"], "evaluate_result", "{last}");
    let stages: Vec<String> = progress
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "evaluation_progress", "{e}");
            assert_eq!(e["epoch"], 0, "an initialised network has no epoch: {e}");
            let space = e["space"]
                .as_str()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            format!("{}{space}", e["stage"].as_str().unwrap())
        })
        .collect();
    let mut order = stages.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            "embedding",
            "kmeans backbone",
            "kmeans feature",
            "embedding",
            "tsne backbone",
            "tsne feature"
        ]
    );
    assert_eq!(progress[0]["total"], 64);
    assert_eq!(
        stages.iter().filter(|s| *s == "kmeans feature").count(),
        10,
        "one event per k-means restart"
    );
    let report = &last["report"];
    assert_eq!(report["dataset"], "shapes");
    assert_eq!(report["model"]["kind"], "initialised");
    assert_eq!(report["samples"], 64);
    assert_eq!(report["clusters"], 4);
    for space in ["backbone", "feature"] {
        for metric in ["nmi", "ari", "acc"] {
            assert!(report[space][metric].is_f64(), "{space}.{metric}: {report}");
        }
        let acc = report[space]["acc"].as_f64().unwrap();
        assert!((0.25..=1.0).contains(&acc), "{space} ACC {acc}");
    }
    let d = dir.path().join("dump");
    assert!(npy_header(&d.join("h.npy"))
        .contains("'descr': '<f4', 'fortran_order': False, 'shape': (64, 512)"));
    assert!(npy_header(&d.join("f.npy")).contains("'shape': (64, 8)"));
    for name in ["labels", "indices", "kmeans_backbone", "kmeans_feature"] {
        let h = npy_header(&d.join(format!("{name}.npy")));
        assert!(h.contains("'<i8'") && h.contains("(64,)"), "{name}: {h}");
    }
    let tsne = dir
        .path()
        .join("records/shapes/bs64_lr0.0003_ResNet18/tsne");
    for f in [
        "evaluate_initialised_backbone.png",
        "evaluate_initialised_feature.png",
    ] {
        let img = image::open(tsne.join(f)).unwrap();
        assert_eq!(img.width(), 890, "{f}");
    }
    let csv = std::fs::read_to_string(tsne.join("evaluate_initialised.csv")).unwrap();
    assert_eq!(csv.lines().count(), 65);
    assert_eq!(report["files"].as_array().unwrap().len(), 9);
}

#[test]
fn a_saved_model_is_evaluated_and_bad_arguments_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    // A missing file and a missing epoch model are user errors (exit code 2).
    let mut args = vec![
        "evaluate",
        "--dataset",
        "shapes",
        "--model",
        "weights.safetensors",
    ];
    args.extend(SMALL);
    let out = cdw(&args, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: cannot read weights.safetensors"),
        "{stderr}"
    );

    let mut args = vec!["evaluate", "--dataset", "shapes", "--epoch", "100"];
    args.extend(SMALL);
    let out = cdw(&args, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no saved model or checkpoint of epoch 100 in checkpoints/shapes/"),
        "{stderr}"
    );
    // With --json the failure is also the one event on stdout; the exit code stays.
    args.push("--json");
    let out = cdw(&args, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed: serde_json::Value = serde_json::from_str(stdout.trim_end()).unwrap();
    assert_eq!(failed["event"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("no saved model or checkpoint of epoch 100 in checkpoints/shapes/"),
        "{error}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("error: {error}")),
        "{stdout}"
    );

    let out = cdw(
        &[
            "evaluate",
            "--dataset",
            "shapes",
            "--epoch",
            "1",
            "--model",
            "m.safetensors",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));

    // A model file written from a network of this configuration (another seed) loads and is
    // evaluated as a table.
    let model = dir.path().join("m.safetensors");
    {
        let cfg = cdw::config::ConfigFile::builtin()
            .resolve("shapes", &["hidden_dim=16".into(), "feature_num=8".into()])
            .unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = cdw::model::CdNet::new(&vs.root(), cdw::model::NetSpec::from_config(&cfg), 7);
        vs.save(&model).unwrap();
    }
    let mut args = vec![
        "evaluate",
        "--dataset",
        "shapes",
        "--model",
        "m.safetensors",
    ];
    args.extend(SMALL);
    let out = cdw(&args, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("shapes (cd), 64 images, k = 4, on cpu in "),
        "{stdout}"
    );
    assert!(stdout.contains("model: m.safetensors\n"), "{stdout}");
    assert!(
        stdout.contains("                  NMI     ARI     ACC\nbackbone (h)  "),
        "{stdout}"
    );
    assert!(stdout.contains("\nfeature (f)   "), "{stdout}");
}
