//! Weights and training state to and from the reference PyTorch code.
//!
//! Import reads `torch.save` files ([`super::torch_file`]): a plain `state_dict` (`.pth`) or the
//! reference's training checkpoint (`.pth.tar`: `state_dict`, `optimizer`, `epoch`, `records`,
//! `best_metrics`, `best_nmi`, optional `scheduler`), infers the architecture from the tensor
//! shapes, checks every name and shape against this project's network, and turns it into a cdw
//! [`Checkpoint`] a run continues from. Export writes the network as safetensors with the
//! reference names, which `load_state_dict(strict=True)` accepts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{nn, Device, Kind, Tensor};

use super::checkpoint::{
    Checkpoint, CheckpointMeta, ModelMeta, NetMeta, SchedulerMeta, CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION, MODEL_META_KEY,
};
use super::records::{RecordColumn, RunRecords};
use super::tensors::{read_safetensors, write_safetensors};
use super::torch_file::{TorchFile, TorchFileError};
use super::StoreError;
use crate::config::{Backbone, Method};
use crate::events::Scores;
use crate::model::{CdNet, NetSpec};
use crate::pickle::Value;

#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    #[error(transparent)]
    Torch(#[from] TorchFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {what}")]
    Content { path: PathBuf, what: String },
}

/// Buffers of a PyTorch state_dict (not parameters: no optimiser state).
fn is_buffer(name: &str) -> bool {
    name.ends_with(".running_mean")
        || name.ends_with(".running_var")
        || name.ends_with(".num_batches_tracked")
}

/// The architecture a reference state_dict holds, from its names and shapes.
pub fn infer_spec(sd: &[(String, Tensor)]) -> Result<NetSpec, String> {
    let has = |n: &str| sd.iter().any(|(k, _)| k == n);
    let shape = |n: &str| sd.iter().find(|(k, _)| k == n).map(|(_, t)| t.size());
    if !sd.iter().any(|(k, _)| k.starts_with("resnet.")) {
        return Err(if has("conv1.weight") && has("layer1.0.conv1.weight") {
            "this is a backbone alone (as resnet_epoch_N.pth holds it); import needs the whole \
             network (model_epoch_N.pth, best_model.pth or a training checkpoint)"
                .into()
        } else {
            let sample: Vec<&str> = sd.iter().take(5).map(|(k, _)| k.as_str()).collect();
            format!(
                "expected the reference CD network's names (resnet.*, instance_projector.*, \
                 feature_predictor.*); found {}",
                sample.join(", ")
            )
        });
    }
    let mut blocks = [0usize; 4];
    for (l, count) in blocks.iter_mut().enumerate() {
        let prefix = format!("resnet.layer{}.", l + 1);
        let mut ids: Vec<&str> = sd
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix)?.split('.').next())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        *count = ids.len();
    }
    let bottleneck = has("resnet.layer1.0.conv3.weight");
    let backbone = match (blocks, bottleneck) {
        ([2, 2, 2, 2], false) => Backbone::ResNet18,
        ([3, 4, 6, 3], false) => Backbone::ResNet34,
        ([3, 4, 6, 3], true) => Backbone::ResNet50,
        _ => {
            return Err(format!(
                "a ResNet with {:?} {} blocks per stage is none of ResNet18 ([2, 2, 2, 2] basic), \
                 ResNet34 ([3, 4, 6, 3] basic), ResNet50 ([3, 4, 6, 3] bottleneck)",
                blocks,
                if bottleneck { "bottleneck" } else { "basic" }
            ))
        }
    };
    // The rows of a Linear weight: its output size. A file's shapes are the user's: a weight
    // without rows is an error naming it, not a panic.
    let rows = |name: &str| -> Result<Option<i64>, String> {
        match shape(name) {
            None => Ok(None),
            Some(s) => s.first().copied().map(Some).ok_or_else(|| {
                format!("tensor `{name}` has shape {s:?}; a Linear weight has two dimensions")
            }),
        }
    };
    let hidden_dim = rows("instance_projector.3.weight")?
        .ok_or("no instance_projector.3.weight (the projector's last Linear)")?;
    let (method, feature_num) = match rows("feature_predictor.3.weight")? {
        Some(k) => (Method::Cd, k),
        // SimCLR has no feature predictor; feature_num does not matter then.
        None => (Method::Simclr, 128),
    };
    Ok(NetSpec {
        backbone,
        hidden_dim,
        feature_num,
        method,
    })
}

/// Checks `sd` against a freshly built network of `spec` (names, shapes) and returns it in the
/// network's kinds, sorted by name; the error lists what is missing, unexpected or misshapen.
pub fn match_network(
    sd: &[(String, Tensor)],
    spec: NetSpec,
) -> Result<Vec<(String, Tensor)>, String> {
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = CdNet::new(&vs.root(), spec, 0);
    let want: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let have: HashMap<&str, &Tensor> = sd.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let missing: Vec<&str> = want
        .keys()
        .filter(|k| !have.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    let unexpected: Vec<&str> = sd
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !want.contains_key(*k))
        .collect();
    let misshapen: Vec<String> = want
        .iter()
        .filter_map(|(k, w)| {
            let h = have.get(k.as_str())?;
            (h.size() != w.size())
                .then(|| format!("{k}: file {:?}, network {:?}", h.size(), w.size()))
        })
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !misshapen.is_empty() {
        let mut parts = Vec::new();
        let list = |v: &[&str]| {
            let mut s = v.iter().take(8).copied().collect::<Vec<_>>().join(", ");
            if v.len() > 8 {
                s.push_str(&format!(" and {} more", v.len() - 8));
            }
            s
        };
        if !missing.is_empty() {
            parts.push(format!("missing keys: {}", list(&missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected keys: {}", list(&unexpected)));
        }
        if !misshapen.is_empty() {
            parts.push(format!("shape mismatches: {}", misshapen.join("; ")));
        }
        return Err(format!(
            "the weights do not fit a {} network (hidden_dim {}, feature_num {}): {}",
            spec.backbone.name(),
            spec.hidden_dim,
            spec.feature_num,
            parts.join("; ")
        ));
    }
    Ok(want
        .iter()
        .map(|(k, w)| (k.clone(), have[k.as_str()].to_kind(w.kind())))
        .collect())
}

/// Copies `tensors` into the variables of `vs` (parameters and buffers) by name; every variable
/// must be present with its shape.
pub fn load_into(vs: &nn::VarStore, tensors: &[(String, Tensor)]) -> Result<(), String> {
    let have: HashMap<&str, &Tensor> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    for (name, var) in vs.variables() {
        let src = have
            .get(name.as_str())
            .ok_or_else(|| format!("no tensor `{name}`"))?;
        if src.size() != var.size() {
            return Err(format!(
                "tensor `{name}` has shape {:?}, the network {:?}",
                src.size(),
                var.size()
            ));
        }
        let mut dst = var.shallow_clone();
        tch::no_grad(|| dst.copy_(&src.to_kind(var.kind())));
    }
    Ok(())
}

/// Reads `dataset` and `experiment` from a reference checkpoint name,
/// `{dataset}_checkpoint_{experiment}.pth.tar`.
pub fn reference_run_name(path: &Path) -> Option<(String, String)> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".pth.tar")
        .or_else(|| name.strip_suffix(".pth"))
        .unwrap_or(name);
    let (dataset, experiment) = stem.split_once("_checkpoint_")?;
    (!dataset.is_empty() && !experiment.is_empty())
        .then(|| (dataset.to_string(), experiment.to_string()))
}

/// What an import produced, and what it could not carry over.
#[derive(Debug)]
pub struct Imported {
    pub checkpoint: Checkpoint,
    /// "state_dict" or "training checkpoint".
    pub source_kind: &'static str,
    pub notes: Vec<String>,
}

fn float_of(f: &TorchFile, v: &Value) -> Result<Option<f64>, TorchFileError> {
    if let Some(x) = v.as_f64() {
        return Ok(Some(x));
    }
    Ok(f.tensor(v)?
        .map(|t| t.to_kind(Kind::Double).double_value(&[])))
}

/// Reads a reference `torch.save` file as a cdw checkpoint of run `dataset`/`experiment`.
pub fn import_torch(
    path: &Path,
    dataset: &str,
    experiment: &str,
) -> Result<Imported, InterchangeError> {
    let file = TorchFile::open(path)?;
    let content = |what: String| InterchangeError::Content {
        path: path.to_path_buf(),
        what,
    };
    let root = &file.root;
    let (sd, full) = read_state_dict(&file)?;
    let spec = infer_spec(&sd).map_err(content)?;
    let model = match_network(&sd, spec).map_err(content)?;
    let mut notes = Vec::new();
    let adam = if let Some(opt) = root.get("optimizer").filter(|_| full) {
        Some(read_adam(&file, opt, &sd)?)
    } else {
        notes.push(if full {
            "the checkpoint has no optimizer state: Adam starts afresh".to_string()
        } else {
            "a state_dict holds weights only: Adam starts afresh".to_string()
        });
        None
    };
    let (optimizer, missing) =
        adam_state(&model, adam.as_ref().map(|a| &a.moments)).map_err(content)?;
    if adam.is_some() && missing > 0 {
        notes.push(format!(
            "{missing} parameters had no Adam state (never updated): their moments start at zero"
        ));
    }
    let step = adam.as_ref().map_or(0, |a| a.step);
    let mut optimizer = optimizer;
    optimizer.push(("step".into(), Tensor::from(step)));

    let scheduler = root.get("scheduler").filter(|_| full).and_then(|s| {
        Some(SchedulerMeta {
            t_max: s.get("T_max")?.as_int()?,
            last_epoch: s.get("last_epoch")?.as_int()?,
        })
    });
    let meta = CheckpointMeta {
        format: CHECKPOINT_FORMAT.into(),
        version: CHECKPOINT_VERSION,
        dataset: dataset.into(),
        experiment: experiment.into(),
        epoch: imported_epoch(path, root, full),
        epochs: scheduler.as_ref().map_or(0, |s| s.t_max),
        net: NetMeta::from_spec(&spec),
        optimizer_step: step,
        lr: adam.as_ref().and_then(|a| a.lr).unwrap_or(0.0),
        scheduler,
        records: if full {
            read_reference_records(&file, root)?
        } else {
            RunRecords::default()
        },
        source: Some(path.display().to_string()),
    };
    Ok(Imported {
        checkpoint: Checkpoint {
            meta,
            model,
            optimizer,
        },
        source_kind: if full {
            "training checkpoint"
        } else {
            "state_dict"
        },
        notes,
    })
}

/// The state_dict of a torch.save file: the file itself, or (`true`) the `state_dict`, `net` or
/// `model` of a training checkpoint; names as the reference's (`module.` of nn.DataParallel
/// dropped).
fn read_state_dict(file: &TorchFile) -> Result<(Vec<(String, Tensor)>, bool), InterchangeError> {
    let content = |what: String| InterchangeError::Content {
        path: file.path.clone(),
        what,
    };
    let root = &file.root;
    let (mut sd, full) = if let Some(sd) = file.state_dict(root)? {
        (sd, false)
    } else {
        let inner = ["state_dict", "net", "model"]
            .iter()
            .find_map(|k| root.get(k))
            .ok_or_else(|| content(not_a_checkpoint(root)))?;
        let sd = file.state_dict(inner)?.ok_or_else(|| {
            content(format!(
                "the checkpoint's state_dict is not a dict of tensors (found {})",
                inner.describe()
            ))
        })?;
        (sd, true)
    };
    if !sd.is_empty() && sd.iter().all(|(k, _)| k.starts_with("module.")) {
        for (k, _) in &mut sd {
            *k = k["module.".len()..].to_string();
        }
    }
    Ok((sd, full))
}

/// Why `root` is neither a state_dict nor a training checkpoint.
fn not_a_checkpoint(root: &Value) -> String {
    let keys: Vec<String> = root
        .dict_items()
        .map(|items| {
            items
                .iter()
                .map(|(k, _)| k.as_text().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "expected a state_dict (parameter names to tensors) or a training checkpoint (a dict with \
         `state_dict` or `net`); found {}",
        if keys.is_empty() {
            root.describe()
        } else {
            format!("a dict with keys {}", keys.join(", "))
        }
    )
}

/// What a reference `optimizer.state_dict()` holds of Adam.
struct ReferenceAdam {
    /// `exp_avg`, `exp_avg_sq` by parameter name.
    moments: HashMap<String, (Tensor, Tensor)>,
    step: i64,
    /// The learning rate of the first parameter group.
    lr: Option<f64>,
}

/// Reads Adam's state from the reference optimizer `opt`; its parameters are numbered in
/// `model.parameters()` order, which is the state_dict `sd`'s order without buffers.
fn read_adam(
    file: &TorchFile,
    opt: &Value,
    sd: &[(String, Tensor)],
) -> Result<ReferenceAdam, InterchangeError> {
    let content = |what: String| InterchangeError::Content {
        path: file.path.clone(),
        what,
    };
    let param_order: Vec<&str> = sd
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !is_buffer(k))
        .collect();
    let groups = opt
        .get("param_groups")
        .and_then(Value::as_seq)
        .ok_or_else(|| content("optimizer state has no param_groups".into()))?;
    let mut lr = None;
    let mut index_of_param = Vec::new();
    for g in groups {
        if lr.is_none() {
            lr = g.get("lr").and_then(Value::as_f64);
        }
        let ids = g
            .get("params")
            .and_then(Value::as_seq)
            .ok_or_else(|| content("optimizer param_group has no params".into()))?;
        index_of_param.extend(ids.iter().filter_map(Value::as_int));
    }
    if index_of_param.len() != param_order.len() {
        return Err(content(format!(
            "the optimizer holds {} parameters but the network has {}",
            index_of_param.len(),
            param_order.len()
        )));
    }
    let mut adam = ReferenceAdam {
        moments: HashMap::new(),
        step: 0,
        lr,
    };
    let state = opt.get("state").and_then(Value::dict_items).unwrap_or(&[]);
    for (k, s) in state {
        let Some(idx) = k.as_int() else { continue };
        let Some(pos) = index_of_param.iter().position(|&i| i == idx) else {
            continue;
        };
        let name = param_order[pos];
        let tensor_at = |key: &str| -> Result<Tensor, InterchangeError> {
            let v = s
                .get(key)
                .ok_or_else(|| content(format!("Adam state of {name} has no {key}")))?;
            file.tensor(v)?
                .ok_or_else(|| content(format!("Adam state {key} of {name} is not a tensor")))
        };
        let (m, v) = (tensor_at("exp_avg")?, tensor_at("exp_avg_sq")?);
        if let Some(st) = s.get("step") {
            if let Some(x) = float_of(file, st)? {
                adam.step = adam.step.max(x.round() as i64);
            }
        }
        adam.moments.insert(name.to_string(), (m, v));
    }
    Ok(adam)
}

/// cdw's Adam tensors for `model`: `exp_avg.<name>` of every trainable tensor, then
/// `exp_avg_sq.<name>`, from `moments` (zeros where a parameter has none); with how many
/// parameters had none.
fn adam_state(
    model: &[(String, Tensor)],
    moments: Option<&HashMap<String, (Tensor, Tensor)>>,
) -> Result<(Vec<(String, Tensor)>, usize), String> {
    let trainable: Vec<&(String, Tensor)> = model.iter().filter(|(k, _)| !is_buffer(k)).collect();
    let mut optimizer = Vec::with_capacity(2 * trainable.len());
    let mut missing = 0;
    for (key, squared) in [("exp_avg", false), ("exp_avg_sq", true)] {
        for (name, p) in &trainable {
            let t = if let Some((m, v)) = moments.and_then(|m| m.get(name)) {
                let t = if squared { v } else { m };
                if t.size() != p.size() {
                    return Err(format!(
                        "Adam state of {name} has shape {:?}, the parameter {:?}",
                        t.size(),
                        p.size()
                    ));
                }
                t.to_kind(p.kind())
            } else {
                if !squared {
                    missing += 1;
                }
                p.zeros_like()
            };
            optimizer.push((format!("{key}.{name}"), t));
        }
    }
    Ok((optimizer, missing))
}

/// The last completed epoch of an import: a checkpoint's `epoch`, or N of a `model_epoch_N.pth`
/// state_dict (0 when neither says).
fn imported_epoch(path: &Path, root: &Value, full: bool) -> i64 {
    if full {
        return root.get("epoch").and_then(Value::as_int).unwrap_or(0);
    }
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("model_epoch_"))
        .and_then(|n| n.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The reference's `records` (dict of lists), `best_metrics` and `best_nmi`.
fn read_reference_records(file: &TorchFile, root: &Value) -> Result<RunRecords, TorchFileError> {
    let mut r = RunRecords::default();
    let num = |v: Option<&Value>| -> Result<Option<f64>, TorchFileError> {
        match v {
            Some(v) => float_of(file, v),
            None => Ok(None),
        }
    };
    if let Some(b) = root.get("best_metrics") {
        r.best = read_scores(|name| Ok(num(b.get(name))?.or(Some(0.0))))?.unwrap_or_default();
    }
    r.best_nmi = num(root.get("best_nmi"))?.unwrap_or(0.0);
    if let Some(rec) = root.get("records") {
        let col = |name: &str, i: usize| -> Result<Option<f64>, TorchFileError> {
            num(rec.get(name).and_then(Value::as_seq).and_then(|s| s.get(i)))
        };
        let n = rec
            .get("epoch")
            .and_then(Value::as_seq)
            .map_or(0, |s| s.len());
        for i in 0..n {
            let Some(epoch) = col("epoch", i)? else {
                continue;
            };
            let best = read_scores(|name| Ok(col(&format!("best_{name}"), i)?.or(Some(0.0))))?;
            r.columns.push(RecordColumn {
                epoch: epoch as i64,
                best: best.unwrap_or_default(),
                current: read_scores(|name| col(name, i))?,
            });
        }
    }
    Ok(r)
}

/// The six scores `value` gives by name; `None` when any of them is missing.
fn read_scores(
    mut value: impl FnMut(&str) -> Result<Option<f64>, TorchFileError>,
) -> Result<Option<Scores>, TorchFileError> {
    let mut values = [0.0; 6];
    for (v, name) in values.iter_mut().zip(Scores::NAMES) {
        match value(name)? {
            Some(x) => *v = x,
            None => return Ok(None),
        }
    }
    Ok(Some(Scores::from_values(values)))
}

/// The network weights held by `path`: a cdw checkpoint or a saved model (safetensors).
pub fn read_weights(path: &Path) -> Result<(Vec<(String, Tensor)>, ModelMeta), StoreError> {
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let file = read_safetensors(path)?;
    if file.metadata.contains_key(super::checkpoint::META_KEY) {
        let c = Checkpoint::read(path)?;
        let meta = ModelMeta {
            dataset: c.meta.dataset,
            experiment: c.meta.experiment,
            epoch: c.meta.epoch,
            net: c.meta.net,
        };
        return Ok((c.model, meta));
    }
    if let Some(json) = file.metadata.get(MODEL_META_KEY) {
        let meta: ModelMeta = serde_json::from_str(json)
            .map_err(|e| corrupt(format!("model metadata is unreadable: {e}")))?;
        return Ok((file.tensors, meta));
    }
    // A safetensors state_dict from elsewhere: infer what it holds.
    let spec = infer_spec(&file.tensors).map_err(corrupt)?;
    let model = match_network(&file.tensors, spec).map_err(corrupt)?;
    Ok((
        model,
        ModelMeta {
            dataset: String::new(),
            experiment: String::new(),
            epoch: 0,
            net: NetMeta::from_spec(&spec),
        },
    ))
}

/// Writes the network of a checkpoint or saved model as a safetensors state_dict with the
/// reference names (`num_batches_tracked` as int64), loadable with `load_state_dict(strict=True)`.
pub fn export_safetensors(from: &Path, out: &Path) -> Result<ModelMeta, StoreError> {
    let (model, meta) = read_weights(from)?;
    let spec = meta.net.to_spec().map_err(|what| StoreError::Corrupt {
        path: from.to_path_buf(),
        what,
    })?;
    let model = match_network(&model, spec).map_err(|what| StoreError::Corrupt {
        path: from.to_path_buf(),
        what,
    })?;
    let json = serde_json::to_string(&meta).expect("model metadata serialises");
    write_safetensors(
        out,
        &model,
        HashMap::from([
            ("format".to_string(), "pt".to_string()),
            (MODEL_META_KEY.to_string(), json),
        ]),
    )?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of(backbone: Backbone, method: Method) -> Vec<(String, Tensor)> {
        let spec = NetSpec {
            backbone,
            hidden_dim: 32,
            feature_num: 24,
            method,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let _n = CdNet::new(&vs.root(), spec, 0);
        vs.variables().into_iter().collect()
    }

    #[test]
    fn infers_each_backbone_and_the_head_sizes() {
        for b in Backbone::ALL {
            let spec = infer_spec(&names_of(b, Method::Cd)).unwrap();
            assert_eq!(spec.backbone, b);
            assert_eq!((spec.hidden_dim, spec.feature_num), (32, 24));
            assert_eq!(spec.method, Method::Cd);
        }
        let s = infer_spec(&names_of(Backbone::ResNet18, Method::Simclr)).unwrap();
        assert_eq!(s.method, Method::Simclr);
    }

    #[test]
    fn foreign_and_partial_state_dicts_are_refused_with_reasons() {
        let backbone_only: Vec<(String, Tensor)> = names_of(Backbone::ResNet18, Method::Cd)
            .into_iter()
            .filter_map(|(k, t)| Some((k.strip_prefix("resnet.")?.to_string(), t)))
            .collect();
        let err = infer_spec(&backbone_only).unwrap_err();
        assert!(err.contains("backbone alone"), "{err}");
        let mut sd = names_of(Backbone::ResNet18, Method::Cd);
        sd.retain(|(k, _)| k != "resnet.bn1.running_var");
        sd.push((
            "extra.weight".into(),
            Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        ));
        let spec = infer_spec(&sd).unwrap();
        let err = match_network(&sd, spec).unwrap_err();
        assert!(
            err.contains("missing keys: resnet.bn1.running_var"),
            "{err}"
        );
        assert!(err.contains("unexpected keys: extra.weight"), "{err}");
    }

    #[test]
    fn a_weight_without_rows_is_an_error_naming_it() {
        let mut sd = names_of(Backbone::ResNet18, Method::Cd);
        for (k, t) in &mut sd {
            if k == "instance_projector.3.weight" {
                *t = Tensor::from(1.5f32);
            }
        }
        assert_eq!(
            infer_spec(&sd).unwrap_err(),
            "tensor `instance_projector.3.weight` has shape []; a Linear weight has two dimensions"
        );
    }

    #[test]
    fn reference_checkpoint_names_give_dataset_and_experiment() {
        assert_eq!(
            reference_run_name(Path::new(
                "checkpoints/cifar10_checkpoint_bs128_lr0.0003_ResNet34.pth.tar"
            )),
            Some(("cifar10".into(), "bs128_lr0.0003_ResNet34".into()))
        );
        assert_eq!(reference_run_name(Path::new("model_epoch_100.pth")), None);
    }
}
