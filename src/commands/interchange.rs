//! `cdw import` and `cdw export`: checkpoints to and from the reference PyTorch code.

use std::path::PathBuf;

use crate::store::checkpoint::CheckpointDir;
use crate::store::interchange::{export_safetensors, import_torch, reference_run_name};

use super::{ExportArgs, Failure, ImportArgs};

pub fn import(args: &ImportArgs) -> Result<(), Failure> {
    let from_name = reference_run_name(&args.file);
    let dataset = args
        .dataset
        .clone()
        .or_else(|| from_name.as_ref().map(|n| n.0.clone()));
    let experiment = args
        .experiment
        .clone()
        .or_else(|| from_name.as_ref().map(|n| n.1.clone()));
    let out: PathBuf = match (&args.out, &dataset, &experiment) {
        (Some(out), _, _) => out.clone(),
        (None, Some(d), Some(e)) => CheckpointDir {
            path: args.checkpoints.join(d).join(e),
        }
        .last_path(),
        _ => {
            return Err(Failure::usage(format!(
                "cannot tell the run of {}: the reference names training checkpoints \
                 {{dataset}}_checkpoint_{{experiment}}.pth.tar; give --dataset and --experiment \
                 (e.g. --dataset cifar10 --experiment bs128_lr0.0003_ResNet34), or --out FILE",
                args.file.display()
            )))
        }
    };
    if out.exists() && !args.force {
        return Err(Failure::usage(format!(
            "{} exists; pass --force to replace it",
            out.display()
        )));
    }
    let imported = import_torch(
        &args.file,
        dataset.as_deref().unwrap_or(""),
        experiment.as_deref().unwrap_or(""),
    )
    .map_err(Failure::runtime)?;
    let m = &imported.checkpoint.meta;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", parent.display())))?;
    }
    imported.checkpoint.write(&out).map_err(Failure::runtime)?;
    println!(
        "imported {} ({}): {} network, hidden_dim {}, feature_num {}, method {}",
        args.file.display(),
        imported.source_kind,
        m.net.backbone,
        m.net.hidden_dim,
        m.net.feature_num,
        m.net.method
    );
    println!(
        "epoch {}, Adam step {}, lr {}, best NMI {}, {} records columns",
        m.epoch,
        m.optimizer_step,
        m.lr,
        m.records.best_nmi,
        m.records.columns.len()
    );
    for note in &imported.notes {
        println!("note: {note}");
    }
    println!("wrote {}", out.display());
    if let (None, Some(d), Some(e)) = (&args.out, &dataset, &experiment) {
        println!(
            "continue it with: cdw train --dataset {d} --set ... (a config whose experiment name is {e}, reload: true)"
        );
    }
    Ok(())
}

pub fn export(args: &ExportArgs) -> Result<(), Failure> {
    let meta = export_safetensors(&args.checkpoint, &args.out).map_err(Failure::runtime)?;
    println!(
        "exported {} network of epoch {} to {} (reference names; load with \
         model.load_state_dict(safetensors.torch.load_file(...), strict=True))",
        meta.net.backbone,
        meta.epoch,
        args.out.display()
    );
    Ok(())
}
