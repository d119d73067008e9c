//! `cdw evaluate`: the six clustering metrics of a model on the whole evaluation set, as a table
//! or JSON, with optional `.npy` dumps of the embeddings and t-SNE pictures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

use crate::config::{Config, Method};
use crate::data;
use crate::device;
use crate::eval::{self, npy, Clustering, Progress, Scores};
use crate::model::{CdNet, NetSpec};
use crate::store::RunDir;

use super::{EvaluateArgs, Failure};

/// What was evaluated, for the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
enum ModelSource {
    File(PathBuf),
    /// No model given: the network as initialised from the seed (a baseline, not a result).
    Initialised,
}

#[derive(Debug, Serialize)]
struct Report {
    dataset: String,
    method: &'static str,
    model: ModelSource,
    device: String,
    samples: usize,
    clusters: usize,
    backbone: Scores,
    feature: Scores,
    seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<PathBuf>,
}

pub fn run(args: &EvaluateArgs) -> Result<ExitCode, Failure> {
    let cfg = args.config.resolve()?;
    let device = device::resolve(cfg.device).map_err(Failure::usage)?;
    let run_dir = RunDir::for_config(&args.records, &cfg);
    let source = match (&args.model, args.epoch) {
        (Some(path), _) => ModelSource::File(path.clone()),
        (None, Some(epoch)) => {
            let path = epoch_model_path(&run_dir, epoch);
            if !path.exists() {
                return Err(Failure::usage(format!(
                    "no saved model for epoch {epoch} of this run: {} does not exist (pass the file with --model PATH)",
                    path.display()
                )));
            }
            ModelSource::File(path)
        }
        (None, None) => ModelSource::Initialised,
    };
    let set = data::load(&cfg).map_err(Failure::runtime)?;

    let mut vs = nn::VarStore::new(device);
    let net = CdNet::new(&vs.root(), NetSpec::from_config(&cfg), cfg.seed);
    match &source {
        ModelSource::File(path) => {
            let extra = load_weights(&mut vs, path).map_err(Failure::usage)?;
            if !extra.is_empty() {
                eprintln!(
                    "note: {} entries of {} are not part of this {} network and were ignored (e.g. {})",
                    extra.len(),
                    path.display(),
                    cfg.method.name(),
                    extra[0]
                );
            }
        }
        ModelSource::Initialised => eprintln!(
            "note: no --model or --epoch given: evaluating the freshly initialised network (seed {}), a baseline rather than a trained result",
            cfg.seed
        ),
    }

    let mut bar = EvalBar::new();
    let clustering = eval::cluster(&net, &set, None, &cfg, device, &mut |p| bar.show(p))
        .map_err(Failure::runtime)?;
    let mut files = Vec::new();
    if let Some(dir) = &args.dump {
        files.extend(dump(dir, &clustering).map_err(Failure::runtime)?);
    }
    if args.tsne {
        let maps = eval::tsne_maps(&net, &set, &cfg, device, &mut |p| bar.show(p))
            .map_err(Failure::runtime)?;
        let stem = match (&source, args.epoch) {
            (ModelSource::File(_), Some(epoch)) if args.model.is_none() => {
                format!("evaluate_epoch_{epoch:04}")
            }
            (ModelSource::File(p), _) => format!(
                "evaluate_{}",
                p.file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy())
            ),
            (ModelSource::Initialised, _) => "evaluate_initialised".into(),
        };
        files.extend(
            maps.write(&run_dir.tsne_dir(), &stem)
                .map_err(Failure::runtime)?,
        );
    }
    bar.finish();

    let e = clustering.evaluation;
    let report = Report {
        dataset: cfg.dataset.clone(),
        method: cfg.method.name(),
        model: source,
        device: device::name(device),
        samples: e.samples,
        clusters: e.clusters,
        backbone: e.backbone,
        feature: e.feature,
        seconds: e.seconds,
        files,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Failure::runtime)?
        );
    } else {
        print!("{}", table(&report, &cfg));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the run keeps the model of `epoch`.
// The model files are defined by the checkpoint work; this is the name it is expected to use.
fn epoch_model_path(run: &RunDir, epoch: i64) -> PathBuf {
    run.path.join(format!("model_{epoch}.safetensors"))
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("model file {path}: expected a .safetensors file with the reference parameter names")]
    NotSafetensors { path: PathBuf },
    #[error("cannot read model file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("model file {path} lacks {count} parameters of this network, e.g. `{first}` (does it match backbone, method, hidden_dim and feature_num?)")]
    Missing {
        path: PathBuf,
        count: usize,
        first: String,
    },
    #[error("model file {path}: `{name}` has shape {got:?}, this network expects {expected:?} (check backbone, hidden_dim and feature_num)")]
    Shape {
        path: PathBuf,
        name: String,
        got: Vec<i64>,
        expected: Vec<i64>,
    },
}

/// Copies the tensors of a `.safetensors` file into `vs`, checking names and shapes first (a bare
/// copy would broadcast a wrong shape silently). Returns the file's names the network lacks.
fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<Vec<String>, LoadError> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return Err(LoadError::NotSafetensors { path: path.into() });
    }
    let read_err = |reason: String| LoadError::Read {
        path: path.into(),
        reason,
    };
    if !path.is_file() {
        return Err(read_err("no such file".into()));
    }
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| read_err(e.to_string()))?
        .into_iter()
        .collect();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let missing: Vec<&String> = vars
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !file.contains_key(*n))
        .collect();
    if let Some(first) = missing.first() {
        return Err(LoadError::Missing {
            path: path.into(),
            count: missing.len(),
            first: (*first).clone(),
        });
    }
    for (name, var) in &vars {
        let src = &file[name];
        if src.size() != var.size() {
            return Err(LoadError::Shape {
                path: path.into(),
                name: name.clone(),
                got: src.size(),
                expected: var.size(),
            });
        }
    }
    tch::no_grad(|| -> Result<(), LoadError> {
        for (name, var) in &mut vars {
            let src = file[name.as_str()]
                .to_kind(var.kind())
                .to_device(var.device());
            var.f_copy_(&src).map_err(|e| read_err(e.to_string()))?;
        }
        Ok(())
    })?;
    let known: std::collections::HashSet<&String> = vars.iter().map(|(n, _)| n).collect();
    let mut extra: Vec<String> = file
        .keys()
        .filter(|k| !known.contains(k))
        .cloned()
        .collect();
    extra.sort();
    Ok(extra)
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

fn table(r: &Report, cfg: &Config) -> String {
    let model = match &r.model {
        ModelSource::File(p) => p.display().to_string(),
        ModelSource::Initialised => "freshly initialised network (untrained)".into(),
    };
    let final_name = match cfg.method {
        Method::Cd => "feature (f)",
        Method::Simclr => "final (z)",
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

/// A progress bar on stderr for the long stages (hidden when stderr is not a terminal).
struct EvalBar {
    bar: Option<ProgressBar>,
    stage: String,
}

impl EvalBar {
    fn new() -> EvalBar {
        EvalBar {
            bar: None,
            stage: String::new(),
        }
    }

    fn show(&mut self, p: Progress) {
        let (stage, done, total) = match p {
            Progress::Embedding { done, total } => ("embedding".to_string(), done, total),
            Progress::KMeans {
                space,
                restart,
                restarts,
            } => (format!("k-means {space}"), restart, restarts),
            Progress::Tsne {
                space,
                iteration,
                iterations,
            } => (format!("t-SNE {space}"), iteration, iterations),
        };
        if stage != self.stage {
            self.finish();
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(stage.clone());
            self.bar = Some(bar);
            self.stage = stage;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn tiny() -> (Config, nn::VarStore, CdNet) {
        let over: Vec<String> = ["hidden_dim=16", "feature_num=8"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cfg = ConfigFile::builtin().resolve("shapes", &over).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CdNet::new(&vs.root(), NetSpec::from_config(&cfg), 1);
        (cfg, vs, net)
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let (cfg, vs, _) = tiny();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        vs.save(&path).unwrap();
        let mut other = nn::VarStore::new(Device::Cpu);
        let _net = CdNet::new(&other.root(), NetSpec::from_config(&cfg), 2);
        let name = "feature_predictor.3.weight";
        assert!(!vs.variables()[name].equal(&other.variables()[name]));
        assert_eq!(
            load_weights(&mut other, &path).unwrap(),
            Vec::<String>::new()
        );
        for (n, t) in vs.variables() {
            assert!(t.equal(&other.variables()[&n]), "{n}");
        }
    }

    #[test]
    fn wrong_model_files_are_clear_errors() {
        let (cfg, vs, _) = tiny();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        vs.save(&path).unwrap();
        // A SimCLR network has no feature predictor: the CD entries are reported as ignored.
        let mut simclr_cfg = cfg.clone();
        simclr_cfg.method = Method::Simclr;
        let mut simclr = nn::VarStore::new(Device::Cpu);
        let _n = CdNet::new(&simclr.root(), NetSpec::from_config(&simclr_cfg), 0);
        let extra = load_weights(&mut simclr, &path).unwrap();
        assert_eq!(extra.len(), 12); // 2 linear weights + 2 x 5 BatchNorm entries
        assert!(extra.iter().all(|e| e.starts_with("feature_predictor.")));
        // The other way round, parameters are missing.
        let simclr_path = dir.path().join("s.safetensors");
        simclr.save(&simclr_path).unwrap();
        let (_, mut cd, _) = tiny();
        let err = load_weights(&mut cd, &simclr_path).unwrap_err().to_string();
        assert!(err.contains("lacks 12 parameters"), "{err}");
        // Another feature_num: same names, other shapes.
        let mut wide_cfg = cfg.clone();
        wide_cfg.feature_num = 16;
        let mut wide = nn::VarStore::new(Device::Cpu);
        let _w = CdNet::new(&wide.root(), NetSpec::from_config(&wide_cfg), 0);
        let err = load_weights(&mut wide, &path).unwrap_err().to_string();
        assert!(err.contains("has shape [8"), "{err}");
        let err = load_weights(&mut wide, &dir.path().join("m.pt")).unwrap_err();
        assert!(err.to_string().contains("expected a .safetensors file"));
        let err = load_weights(&mut wide, &dir.path().join("none.safetensors")).unwrap_err();
        assert!(
            err.to_string().ends_with("none.safetensors: no such file"),
            "{err}"
        );
    }
}
