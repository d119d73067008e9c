//! Weights moving between `PyTorch` and cdw: `scripts/reference_model.py` builds the reference network
//! with the venv's torch + torchvision and writes a `state_dict`, a reference training checkpoint and
//! input/outputs; cdw imports them (the outputs must equal `PyTorch`'s) and exports a safetensors
//! file that `PyTorch` loads with strict=True and that gives the same outputs.
//!
//! Skipped, with the reason printed, when no Python with torch and torchvision is found
//! ($`CDW_VENV` or ./.venv).

// Each test is one scenario, read top to bottom as a user would go through it.
#![allow(clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cdw::model::CdNet;
use cdw::store::checkpoint::Checkpoint;
use cdw::store::interchange::{import_torch, load_into};
use cdw::store::torch_file::TorchFile;
use tch::{nn, Device, Kind, Tensor};

/// Runs `command` and fails the test with its stderr unless it succeeds.
fn succeeded(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python_with_torch() -> Result<PathBuf, String> {
    let venv = std::env::var_os("CDW_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    if !py.exists() {
        return Err(format!("no Python at {}", py.display()));
    }
    let ok = Command::new(&py)
        .args(["-c", "import torch, torchvision"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(py)
    } else {
        Err(format!(
            "{} cannot import torch and torchvision",
            py.display()
        ))
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_model.py")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

const CKPT_NAME: &str = "shapes_checkpoint_bs8_lr0.0003_ResNet18.pth.tar";

#[test]
fn pytorch_weights_import_and_export_with_equal_outputs() {
    let py = match python_with_torch() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: {why}; the PyTorch interchange test needs torch and torchvision");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    succeeded(
        Command::new(&py)
            .arg(script())
            .args(["write"])
            .arg(tmp.path()),
    );

    let io = TorchFile::open(&tmp.path().join("io.pth")).unwrap();
    let io = io.state_dict(&io.root).unwrap().unwrap();
    let get = |n: &str| &io.iter().find(|(k, _)| k == n).unwrap().1;

    // The plain state_dict: h and f in eval mode equal PyTorch's.
    let imported = import_torch(&tmp.path().join("state_dict.pth"), "shapes", "x").unwrap();
    assert_eq!(imported.source_kind, "state_dict");
    let spec = imported.checkpoint.meta.net.to_spec().unwrap();
    assert_eq!(
        (spec.backbone.name(), spec.hidden_dim, spec.feature_num),
        ("ResNet18", 16, 8)
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CdNet::new(&vs.root(), spec, 0);
    load_into(&vs, &imported.checkpoint.model).unwrap();
    let o = tch::no_grad(|| net.forward_t(get("x"), false));
    let dh = max_diff(&o.h, get("h"));
    let df = max_diff(o.f.as_ref().unwrap(), get("f"));
    assert!(dh < 1e-4 && df < 1e-4, "h differs by {dh}, f by {df}");

    // The reference training checkpoint: epoch, Adam state mapped to the right parameters,
    // records and best scores.
    let full = import_torch(
        &tmp.path().join(CKPT_NAME),
        "shapes",
        "bs8_lr0.0003_ResNet18",
    )
    .unwrap();
    let m = &full.checkpoint.meta;
    assert_eq!(full.source_kind, "training checkpoint");
    assert_eq!((m.epoch, m.optimizer_step), (2, 2));
    assert_eq!(m.records.best_nmi, 0.42);
    assert_eq!(m.records.best.acc_backbone, 0.52);
    assert_eq!(m.records.columns.len(), 1);
    assert_eq!(m.records.columns[0].epoch, 100);
    assert_eq!(m.records.columns[0].current.unwrap().nmi_feature, 0.39);
    assert_eq!(
        m.scheduler.as_ref().map(|s| (s.t_max, s.last_epoch)),
        Some((10, 2))
    );
    let opt = |n: &str| {
        &full
            .checkpoint
            .optimizer
            .iter()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
    };
    assert_eq!(
        max_diff(
            opt("exp_avg.resnet.conv1.weight"),
            get("adam_exp_avg.resnet.conv1.weight")
        ),
        0.0
    );
    assert_eq!(
        max_diff(
            opt("exp_avg_sq.instance_projector.3.bias"),
            get("adam_exp_avg_sq.instance_projector.3.bias")
        ),
        0.0
    );
    assert_eq!(opt("step").int64_value(&[]), 2);
    // Adam over this project's network accepts the imported state.
    let mut params: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut adam = cdw::train::optim::Adam::new(params, 3e-4, 0.0);
    adam.load_state(&full.checkpoint.optimizer).unwrap();
    assert_eq!(adam.step, 2);

    // The CLI: import by the reference file name into checkpoints/<dataset>/<experiment>/, then
    // export, then PyTorch loads the export strictly and gives the same outputs.
    let cdw = env!("CARGO_BIN_EXE_cdw");
    let ck = tmp.path().join("checkpoints");
    succeeded(
        Command::new(cdw)
            .arg("import")
            .arg(tmp.path().join(CKPT_NAME))
            .arg("--checkpoints")
            .arg(&ck),
    );
    let written = ck.join("shapes/bs8_lr0.0003_ResNet18/checkpoint.safetensors");
    assert_eq!(Checkpoint::read(&written).unwrap().meta.epoch, 2);
    let exported = tmp.path().join("export.safetensors");
    succeeded(
        Command::new(cdw)
            .arg("export")
            .arg(&written)
            .arg("--out")
            .arg(&exported),
    );
    let out = Command::new(&py)
        .arg(script())
        .arg("check")
        .arg(tmp.path())
        .arg(&exported)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyTorch check failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.starts_with("loaded strict;"), "{said}");
}
