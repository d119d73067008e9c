//! Resumable checkpoints and saved models of a run, in `<checkpoints>/<dataset>/<experiment>/`.
//!
//! A checkpoint is one safetensors file: the network's tensors (`model.<name>`, BN buffers
//! included), the Adam state (`optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`,
//! `optimizer.step`), and a JSON document under the metadata key `cdw_checkpoint` with the epoch,
//! the scheduler position, the best scores and the records ([`CheckpointMeta`]). One file written
//! atomically means a kill at any moment leaves the previous checkpoint loadable.
//!
//! Files: `checkpoint.safetensors` (the latest epoch), `checkpoint_epoch_{N}.safetensors` (kept at
//! every 100th epoch), `model_{tag}.safetensors` and `resnet_{tag}.safetensors` (tag `epoch_{N}`,
//! `best`, `final`): the network with the reference PyTorch names, and its backbone alone with the
//! names of `model.resnet.state_dict()`, as the reference saves them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::records::RunRecords;
use super::tensors::{read_safetensors, write_safetensors};
use super::{dataset_dir_name, is_mark, StoreError};
use crate::config::{Backbone, Config, Method};
use crate::events::ModelTag;
use crate::model::NetSpec;

pub const CHECKPOINT_FORMAT: &str = "cdw-checkpoint";
pub const CHECKPOINT_VERSION: u32 = 1;
/// Metadata key of the checkpoint's JSON document.
pub const META_KEY: &str = "cdw_checkpoint";
/// Metadata key of a saved model's JSON document.
pub const MODEL_META_KEY: &str = "cdw_model";

/// The architecture as stored in files (names, not enums, so the JSON reads plainly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetMeta {
    pub backbone: String,
    pub hidden_dim: i64,
    pub feature_num: i64,
    pub method: String,
}

impl NetMeta {
    pub fn from_spec(s: &NetSpec) -> NetMeta {
        NetMeta {
            backbone: s.backbone.name().into(),
            hidden_dim: s.hidden_dim,
            feature_num: s.feature_num,
            method: s.method.name().into(),
        }
    }

    pub fn to_spec(&self) -> Result<NetSpec, String> {
        let backbone = Backbone::parse(&self.backbone)
            .ok_or_else(|| format!("unknown backbone `{}`", self.backbone))?;
        let method = match self.method.as_str() {
            "cd" => Method::Cd,
            "simclr" => Method::Simclr,
            m => return Err(format!("unknown method `{m}`")),
        };
        Ok(NetSpec {
            backbone,
            hidden_dim: self.hidden_dim,
            feature_num: self.feature_num,
            method,
        })
    }

    /// Why `cfg` cannot continue from this network, if it cannot.
    pub fn mismatch(&self, cfg: &Config) -> Option<String> {
        let want = NetMeta::from_spec(&NetSpec::from_config(cfg));
        // SimCLR has no feature predictor: feature_num does not shape its network.
        let same = want.backbone == self.backbone
            && want.hidden_dim == self.hidden_dim
            && want.method == self.method
            && (want.method == "simclr" || want.feature_num == self.feature_num);
        (!same).then(|| {
            format!(
                "the checkpoint holds a {} network (hidden_dim {}, feature_num {}, method {}) but the \
                 config asks for {} (hidden_dim {}, feature_num {}, method {})",
                self.backbone,
                self.hidden_dim,
                self.feature_num,
                self.method,
                want.backbone,
                want.hidden_dim,
                want.feature_num,
                want.method
            )
        })
    }
}

/// `CosineAnnealingLR` position: the learning rate of epoch `e` is a pure function of `e`, so
/// the position is the number of epochs stepped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerMeta {
    pub t_max: i64,
    pub last_epoch: i64,
}

/// Everything in a checkpoint besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: String,
    pub version: u32,
    pub dataset: String,
    pub experiment: String,
    /// Last epoch completed; a resumed run starts at `epoch + 1`.
    pub epoch: i64,
    pub epochs: i64,
    pub net: NetMeta,
    /// Adam steps taken.
    pub optimizer_step: i64,
    /// Learning rate of the last completed epoch.
    pub lr: f64,
    pub scheduler: Option<SchedulerMeta>,
    pub records: RunRecords,
    /// Where an imported checkpoint came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A resumable training state.
#[derive(Debug)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// The network's tensors under their reference names.
    pub model: Vec<(String, Tensor)>,
    /// The optimiser state as `Adam::state` names it.
    pub optimizer: Vec<(String, Tensor)>,
}

impl Checkpoint {
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let mut tensors = Vec::with_capacity(self.model.len() + self.optimizer.len());
        for (n, t) in &self.model {
            tensors.push((format!("model.{n}"), t.shallow_clone()));
        }
        for (n, t) in &self.optimizer {
            tensors.push((format!("optimizer.{n}"), t.shallow_clone()));
        }
        let json = serde_json::to_string(&self.meta).expect("checkpoint metadata serialises");
        write_safetensors(
            path,
            &tensors,
            HashMap::from([(META_KEY.to_string(), json)]),
        )
    }

    /// Reads a checkpoint; a file that is not one (a saved model, a foreign or truncated file)
    /// is a clear error.
    pub fn read(path: &Path) -> Result<Checkpoint, StoreError> {
        let file = read_safetensors(path)?;
        let corrupt = |what: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        let json = file.metadata.get(META_KEY).ok_or_else(|| {
            corrupt(format!(
                "expected a cdw checkpoint (safetensors with `{META_KEY}` metadata); this file has none{}",
                if file.metadata.contains_key(MODEL_META_KEY) {
                    " (it is a saved model: weights only, no optimiser state)"
                } else {
                    ""
                }
            ))
        })?;
        let meta: CheckpointMeta = serde_json::from_str(json)
            .map_err(|e| corrupt(format!("checkpoint metadata is unreadable: {e}")))?;
        if meta.format != CHECKPOINT_FORMAT || meta.version > CHECKPOINT_VERSION {
            return Err(corrupt(format!(
                "expected {CHECKPOINT_FORMAT} version <= {CHECKPOINT_VERSION}, found {} version {}",
                meta.format, meta.version
            )));
        }
        let mut model = Vec::new();
        let mut optimizer = Vec::new();
        for (n, t) in file.tensors {
            if let Some(m) = n.strip_prefix("model.") {
                model.push((m.to_string(), t));
            } else if let Some(o) = n.strip_prefix("optimizer.") {
                optimizer.push((o.to_string(), t));
            }
        }
        Ok(Checkpoint {
            meta,
            model,
            optimizer,
        })
    }
}

/// What a saved model file records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub dataset: String,
    pub experiment: String,
    pub epoch: i64,
    pub net: NetMeta,
}

/// The checkpoint directory of one run.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    pub path: PathBuf,
}

impl CheckpointDir {
    /// `<checkpoints>/<dataset>/<experiment>` for `cfg`.
    pub fn for_config(root: &Path, cfg: &Config) -> CheckpointDir {
        CheckpointDir {
            path: root.join(dataset_dir_name(cfg)).join(cfg.experiment_name()),
        }
    }

    pub fn last_path(&self) -> PathBuf {
        self.path.join("checkpoint.safetensors")
    }

    pub fn kept_path(&self, epoch: i64) -> PathBuf {
        self.path
            .join(format!("checkpoint_epoch_{epoch}.safetensors"))
    }

    /// `model_{tag}.safetensors` (full network, reference names).
    pub fn model_path(&self, tag: ModelTag) -> PathBuf {
        self.path.join(format!("model_{tag}.safetensors"))
    }

    /// `resnet_{tag}.safetensors` (the backbone alone).
    pub fn backbone_path(&self, tag: ModelTag) -> PathBuf {
        self.path.join(format!("resnet_{tag}.safetensors"))
    }

    fn create(&self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.path).map_err(|source| StoreError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes `ckpt` as the latest checkpoint, and keeps a copy at every 100th epoch.
    pub fn save(&self, ckpt: &Checkpoint) -> Result<PathBuf, StoreError> {
        self.create()?;
        let last = self.last_path();
        ckpt.write(&last)?;
        if is_mark(ckpt.meta.epoch) {
            let kept = self.kept_path(ckpt.meta.epoch);
            // A hard link costs nothing; the next atomic write of `last` replaces its name only.
            let tmp = kept.with_extension("safetensors.tmp");
            let _ = fs::remove_file(&tmp);
            let linked = fs::hard_link(&last, &tmp).or_else(|_| fs::copy(&last, &tmp).map(|_| ()));
            linked
                .and_then(|_| fs::rename(&tmp, &kept))
                .map_err(|source| StoreError::Write { path: kept, source })?;
        }
        Ok(last)
    }

    /// The latest checkpoint, if there is one.
    pub fn load_last(&self) -> Result<Option<Checkpoint>, StoreError> {
        let p = self.last_path();
        if !p.exists() {
            return Ok(None);
        }
        Checkpoint::read(&p).map(Some)
    }

    /// Epochs that can be resumed from: the kept ones and the latest.
    pub fn available_epochs(&self) -> Vec<i64> {
        let mut epochs: Vec<i64> = fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = e.file_name().to_str()?.to_string();
                n.strip_prefix("checkpoint_epoch_")?
                    .strip_suffix(".safetensors")?
                    .parse()
                    .ok()
            })
            .collect();
        if let Ok(Some(last)) = self.load_last() {
            epochs.push(last.meta.epoch);
        }
        epochs.sort_unstable();
        epochs.dedup();
        epochs
    }

    /// The checkpoint of `epoch`: the latest when it is that epoch, else a kept one.
    pub fn load_epoch(&self, epoch: i64) -> Result<Checkpoint, StoreError> {
        let kept = self.kept_path(epoch);
        if kept.exists() {
            return Checkpoint::read(&kept);
        }
        if let Some(last) = self.load_last()? {
            if last.meta.epoch == epoch {
                return Ok(last);
            }
        }
        let avail = self.available_epochs();
        Err(StoreError::NoCheckpoint {
            path: self.path.clone(),
            epoch,
            available: if avail.is_empty() {
                "none".into()
            } else {
                avail
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// Removes kept checkpoints after `epoch` (a run cut back to `epoch` will write its own).
    pub fn forget_after(&self, epoch: i64) -> Result<(), StoreError> {
        for e in self.available_epochs().into_iter().filter(|&e| e > epoch) {
            let p = self.kept_path(e);
            if p.exists() {
                fs::remove_file(&p).map_err(|source| StoreError::Write { path: p, source })?;
            }
        }
        Ok(())
    }

    /// Writes `model_{tag}` and `resnet_{tag}`: the network with the reference names, and its
    /// backbone with the names of `model.resnet.state_dict()`.
    pub fn save_model(
        &self,
        tag: ModelTag,
        model: &[(String, Tensor)],
        meta: &ModelMeta,
    ) -> Result<PathBuf, StoreError> {
        self.create()?;
        let json = serde_json::to_string(meta).expect("model metadata serialises");
        let metadata = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            (MODEL_META_KEY.to_string(), json),
        ]);
        let path = self.model_path(tag);
        write_safetensors(&path, model, metadata.clone())?;
        let backbone: Vec<(String, Tensor)> = model
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("resnet.")
                    .map(|s| (s.to_string(), t.shallow_clone()))
            })
            .collect();
        write_safetensors(&self.backbone_path(tag), &backbone, metadata)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn meta(epoch: i64) -> CheckpointMeta {
        CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            dataset: "shapes".into(),
            experiment: "bs8_lr0.0003_ResNet18".into(),
            epoch,
            epochs: 300,
            net: NetMeta {
                backbone: "ResNet18".into(),
                hidden_dim: 16,
                feature_num: 8,
                method: "cd".into(),
            },
            optimizer_step: epoch * 4,
            lr: 0.0003,
            scheduler: None,
            records: RunRecords::default(),
            source: None,
        }
    }

    fn ckpt(epoch: i64) -> Checkpoint {
        Checkpoint {
            meta: meta(epoch),
            model: vec![
                (
                    "resnet.conv1.weight".into(),
                    Tensor::full([2, 2], epoch as f64, (Kind::Float, Device::Cpu)),
                ),
                (
                    "resnet.bn1.num_batches_tracked".into(),
                    Tensor::from(epoch * 4),
                ),
            ],
            optimizer: vec![("step".into(), Tensor::from(epoch * 4))],
        }
    }

    #[test]
    fn latest_and_kept_checkpoints_load_by_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir {
            path: tmp.path().join("c"),
        };
        assert!(dir.load_last().unwrap().is_none());
        for e in [99, 100, 101, 200, 201] {
            dir.save(&ckpt(e)).unwrap();
        }
        assert_eq!(dir.available_epochs(), [100, 200, 201]);
        let last = dir.load_last().unwrap().unwrap();
        assert_eq!(last.meta, meta(201));
        // Tensors come back sorted by name.
        assert_eq!(last.model[0].0, "resnet.bn1.num_batches_tracked");
        assert_eq!(last.model[0].1.kind(), Kind::Int64);
        assert_eq!(last.model[1].1.double_value(&[0, 0]), 201.0);
        assert_eq!(last.optimizer[0].1.int64_value(&[]), 804);
        let c100 = dir.load_epoch(100).unwrap();
        assert_eq!(c100.meta.epoch, 100);
        assert_eq!(c100.model[1].1.double_value(&[0, 0]), 100.0);
        let err = dir.load_epoch(150).unwrap_err().to_string();
        assert!(err.contains("no checkpoint of epoch 150"), "{err}");
        assert!(err.contains("100, 200, 201"), "{err}");
        dir.forget_after(100).unwrap();
        assert_eq!(dir.available_epochs(), [100, 201]);
    }

    #[test]
    fn a_saved_model_is_not_a_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir {
            path: tmp.path().to_path_buf(),
        };
        let c = ckpt(3);
        let m = ModelMeta {
            dataset: "shapes".into(),
            experiment: "x".into(),
            epoch: 3,
            net: c.meta.net.clone(),
        };
        let p = dir.save_model(ModelTag::Final, &c.model, &m).unwrap();
        let err = Checkpoint::read(&p).unwrap_err().to_string();
        assert!(err.contains("expected a cdw checkpoint"), "{err}");
        assert!(err.contains("it is a saved model"), "{err}");
        let backbone = read_safetensors(&dir.backbone_path(ModelTag::Final)).unwrap();
        let names: Vec<&str> = backbone.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bn1.num_batches_tracked", "conv1.weight"]);
    }
}
