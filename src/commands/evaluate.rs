//! `cdw evaluate`: the six clustering metrics of a model on the whole evaluation set, as a table
//! or JSON, with optional `.npy` dumps of the embeddings and t-SNE pictures.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tch::{nn, Device, Kind, Tensor};

use crate::config::{Config, Method};
use crate::console::{JsonLines, StageBar};
use crate::data;
use crate::device;
use crate::eval::{self, npy, Clustering};
use crate::events::{EvaluateReport, EvaluatedModel, Event, ModelTag, Reporter};
use crate::model::{CdNet, NetSpec};
use crate::store::checkpoint::{CheckpointDir, SavedKind};
use crate::store::interchange::{load_into, match_network, read_weights};

use super::{EvaluateArgs, Failure};

pub fn run(args: &EvaluateArgs) -> Result<ExitCode, Failure> {
    if !args.json {
        let mut bar = StageBar::default();
        let report = evaluate(args, &mut bar);
        bar.finish();
        print!("{}", table(&report?));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = JsonLines;
    match evaluate(args, &mut out) {
        Ok(report) => {
            out.report(&Event::EvaluateResult { report });
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            out.report(&Event::Failed {
                error: failure.message.clone(),
            });
            Err(failure)
        }
    }
}

/// Loads the model and the evaluation set, clusters, and writes what was asked for (dumps,
/// t-SNE maps); progress goes to `reporter` as [`Event::EvaluationProgress`] of the model's epoch
/// (0 when unknown).
fn evaluate(args: &EvaluateArgs, reporter: &mut dyn Reporter) -> Result<EvaluateReport, Failure> {
    let cfg = match &args.run {
        Some(run) => super::train::run_dir("--run", run, &args.roots.records)?
            .read_config(&args.config.set)
            .map_err(Failure::usage)?,
        None => args.config.resolve()?,
    };
    let device = device::resolve(cfg.device).map_err(Failure::usage)?;
    let paths = args.roots.paths(&cfg);
    let source = match (&args.model, args.epoch) {
        (Some(path), _) => EvaluatedModel::File(path.clone()),
        (None, Some(epoch)) => EvaluatedModel::File(epoch_weights(&paths.checkpoints, epoch)?),
        (None, None) if args.run.is_some() => {
            let last = paths.checkpoints.last_path();
            if !last.is_file() {
                return Err(Failure::usage(format!(
                    "--run: the run has no checkpoint to evaluate ({} does not exist); pass --model PATH",
                    last.display()
                )));
            }
            EvaluatedModel::File(last)
        }
        (None, None) => EvaluatedModel::Initialised,
    };
    let (_vs, net, spec, epoch) = match &source {
        EvaluatedModel::File(path) => load_network(path, &cfg, device)?,
        EvaluatedModel::Initialised => {
            eprintln!(
                "note: no --model or --epoch given: evaluating the freshly initialised network (seed {}), a baseline rather than a trained result",
                cfg.seed
            );
            let vs = nn::VarStore::new(device);
            let spec = NetSpec::from_config(&cfg);
            let net = CdNet::new(&vs.root(), spec, cfg.seed);
            (vs, net, spec, 0)
        }
    };
    // The network evaluated is the file's; its method decides what the final output is.
    let mut cfg = cfg;
    cfg.method = spec.method;
    let set = data::load_evaluation(&cfg).map_err(Failure::runtime)?;

    let mut progress = |p: eval::Progress| {
        reporter.report(&p.event(epoch));
        ControlFlow::Continue(())
    };
    let clustering =
        eval::cluster(&net, &set, None, &cfg, device, &mut progress).map_err(Failure::runtime)?;
    let mut files = Vec::new();
    if let Some(dir) = &args.dump {
        files.extend(dump(dir, &clustering).map_err(Failure::runtime)?);
    }
    if args.tsne {
        let maps =
            eval::tsne_maps(&net, &set, &cfg, device, &mut progress).map_err(Failure::runtime)?;
        let stem = match (&source, args.epoch) {
            (EvaluatedModel::File(_), Some(epoch)) if args.model.is_none() => {
                format!("evaluate_epoch_{epoch:04}")
            }
            (EvaluatedModel::File(p), _) => format!(
                "evaluate_{}",
                p.file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy())
            ),
            (EvaluatedModel::Initialised, _) => "evaluate_initialised".into(),
        };
        files.extend(
            maps.write(&paths.run.tsne_dir(), &stem)
                .map_err(Failure::runtime)?,
        );
    }
    let e = clustering.evaluation;
    Ok(EvaluateReport {
        dataset: cfg.dataset.clone(),
        method: cfg.method.name().to_string(),
        model: source,
        device: device::name(device),
        samples: e.samples,
        clusters: e.clusters,
        backbone: e.backbone,
        feature: e.feature,
        seconds: e.seconds,
        files,
    })
}

/// The weights a run kept for `epoch`: the saved model `model_epoch_N`, else the checkpoint kept at
/// that epoch (or the latest one when it is that epoch).
fn epoch_weights(dir: &CheckpointDir, epoch: i64) -> Result<PathBuf, Failure> {
    let model = dir.model_path(ModelTag::Epoch(epoch));
    if model.exists() {
        return Ok(model);
    }
    let kept = dir.kept_path(epoch);
    if kept.exists() {
        return Ok(kept);
    }
    let saved = dir.list().map_err(Failure::runtime)?;
    if let Some(latest) = saved
        .iter()
        .find(|f| f.kind == SavedKind::Latest && f.epoch == Some(epoch))
    {
        return Ok(latest.path.clone());
    }
    let available = dir.available_epochs().map_err(Failure::runtime)?;
    Err(Failure::usage(format!(
        "no saved model or checkpoint of epoch {epoch} in {} (models are kept every 100 epochs; checkpoints of epochs: {}); pass a file with --model PATH",
        dir.path.display(),
        if available.is_empty() {
            "none".to_string()
        } else {
            available.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
        }
    )))
}

/// Builds the network a weights file holds (a cdw model or checkpoint, or a safetensors
/// state_dict with the reference names) on `device` and loads it; with the epoch the file
/// records (0 for a foreign state_dict).
fn load_network(
    path: &Path,
    cfg: &Config,
    device: Device,
) -> Result<(nn::VarStore, CdNet, NetSpec, i64), Failure> {
    let (tensors, meta) = read_weights(path).map_err(Failure::usage)?;
    let spec = meta
        .net
        .to_spec()
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    if let Some(why) = meta.net.mismatch(cfg) {
        eprintln!(
            "note: {} holds another network than the config describes ({why}); evaluating the file's network",
            path.display()
        );
    }
    let tensors = match_network(&tensors, spec)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let vs = nn::VarStore::new(device);
    let net = CdNet::new(&vs.root(), spec, cfg.seed);
    load_into(&vs, &tensors).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    Ok((vs, net, spec, meta.epoch))
}

/// Writes the embeddings, labels, image indices and k-means assignments as `.npy` files.
fn dump(dir: &Path, c: &Clustering) -> Result<Vec<PathBuf>, eval::EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| crate::store::StoreError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut matrix = |name: &str, t: &Tensor| -> Result<(), eval::EvalError> {
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let data: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let path = dir.join(name);
        npy::write_npy(&path, &shape, &data)?;
        written.push(path);
        Ok(())
    };
    matrix("h.npy", &c.embeddings.h)?;
    matrix("f.npy", &c.embeddings.f)?;
    let indices: Vec<i64> = c.embeddings.indices.iter().map(|&i| i as i64).collect();
    for (name, v) in [
        ("labels.npy", &c.embeddings.labels),
        ("indices.npy", &indices),
        ("kmeans_backbone.npy", &c.backbone_clusters),
        ("kmeans_feature.npy", &c.feature_clusters),
    ] {
        let path = dir.join(name);
        npy::write_npy(&path, &[v.len()], v)?;
        written.push(path);
    }
    Ok(written)
}

fn table(r: &EvaluateReport) -> String {
    let model = match &r.model {
        EvaluatedModel::File(p) => p.display().to_string(),
        EvaluatedModel::Initialised => "freshly initialised network (untrained)".into(),
    };
    let final_name = if r.method == Method::Simclr.name() {
        "final (z)"
    } else {
        "feature (f)"
    };
    let mut out = format!(
        "{} ({}), {} images, k = {}, on {} in {:.1} s\nmodel: {model}\n\n{:<13} {:>7} {:>7} {:>7}\n",
        r.dataset, r.method, r.samples, r.clusters, r.device, r.seconds, "", "NMI", "ARI", "ACC"
    );
    for (name, s) in [("backbone (h)", &r.backbone), (final_name, &r.feature)] {
        out.push_str(&format!(
            "{name:<13} {:>7.4} {:>7.4} {:>7.4}\n",
            s.nmi, s.ari, s.acc
        ));
    }
    if !r.files.is_empty() {
        out.push('\n');
        for f in &r.files {
            out.push_str(&format!("wrote {}\n", f.display()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn tiny(extra: &[&str]) -> Config {
        let mut over: Vec<String> = vec!["hidden_dim=16".into(), "feature_num=8".into()];
        over.extend(extra.iter().map(|s| s.to_string()));
        ConfigFile::builtin().resolve("shapes", &over).unwrap()
    }

    #[test]
    fn a_state_dict_loads_into_the_network_it_describes() {
        let cfg = tiny(&[]);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = CdNet::new(&vs.root(), NetSpec::from_config(&cfg), 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        vs.save(&path).unwrap();
        let (loaded, net, spec, _) = load_network(&path, &cfg, Device::Cpu).unwrap();
        assert_eq!(spec, NetSpec::from_config(&cfg));
        assert_eq!(net.spec, spec);
        for (n, t) in vs.variables() {
            assert!(t.equal(&loaded.variables()[&n]), "{n}");
        }
        // A config asking for SimCLR still evaluates the file's CD network.
        let (_, _, spec, _) = load_network(&path, &tiny(&["method=simclr"]), Device::Cpu).unwrap();
        assert_eq!(spec.method, Method::Cd);
    }

    #[test]
    fn missing_epochs_and_bad_files_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = CheckpointDir {
            path: dir.path().to_path_buf(),
        };
        let err = epoch_weights(&ckpt, 100).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(
            err.message
                .starts_with("no saved model or checkpoint of epoch 100 in "),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("checkpoints of epochs: none"),
            "{}",
            err.message
        );
        std::fs::write(ckpt.model_path(ModelTag::Epoch(100)), b"x").unwrap();
        assert_eq!(
            epoch_weights(&ckpt, 100).unwrap(),
            ckpt.model_path(ModelTag::Epoch(100))
        );
        let bad = dir.path().join("bad.safetensors");
        std::fs::write(&bad, b"not a safetensors file").unwrap();
        let err = load_network(&bad, &tiny(&[]), Device::Cpu).err().unwrap();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("bad.safetensors"), "{}", err.message);
    }
}
