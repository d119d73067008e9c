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
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::records::RunRecords;
use super::tensors::{read_safetensors, read_safetensors_metadata, write_safetensors};
use super::{dataset_dir_name, is_mark, StoreError, MARK_EVERY};
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

impl CheckpointMeta {
    /// The checkpoint document in the string metadata of the safetensors file `path`; a file
    /// that is not a checkpoint (a saved model, a foreign file, another format) is a clear error.
    pub fn from_metadata(
        path: &Path,
        metadata: &HashMap<String, String>,
    ) -> Result<CheckpointMeta, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        let json = metadata.get(META_KEY).ok_or_else(|| {
            corrupt(format!(
                "expected a cdw checkpoint (safetensors with `{META_KEY}` metadata); this file has none{}",
                if metadata.contains_key(MODEL_META_KEY) {
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
        Ok(meta)
    }
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
        let meta = CheckpointMeta::from_metadata(path, &file.metadata)?;
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

/// What a file of a run's checkpoint directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedKind {
    /// `checkpoint.safetensors`: the resumable state of the last completed epoch.
    Latest,
    /// `checkpoint_epoch_N.safetensors`: a checkpoint kept at a 100-epoch mark.
    Kept,
    /// `model_{tag}.safetensors`: the whole network, reference names.
    Model(ModelTag),
    /// `resnet_{tag}.safetensors`: the backbone alone.
    Backbone(ModelTag),
}

impl SavedKind {
    /// The kind a file name says, if it is one of a run's saved files.
    fn of_file_name(name: &str) -> Option<SavedKind> {
        if name == LATEST_FILE {
            return Some(SavedKind::Latest);
        }
        let stem = name.strip_suffix(".safetensors")?;
        if let Some(n) = stem.strip_prefix("checkpoint_epoch_") {
            return n.parse::<i64>().ok().map(|_| SavedKind::Kept);
        }
        if let Some(tag) = stem.strip_prefix("model_") {
            return tag.parse().ok().map(SavedKind::Model);
        }
        stem.strip_prefix("resnet_")?
            .parse()
            .ok()
            .map(SavedKind::Backbone)
    }

    /// A resumable checkpoint (latest or kept)?
    pub fn is_checkpoint(self) -> bool {
        matches!(self, SavedKind::Latest | SavedKind::Kept)
    }
}

/// One file of a run's checkpoint directory, as its name and safetensors header describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedFile {
    pub path: PathBuf,
    pub kind: SavedKind,
    /// The epoch its metadata records (`None` for a model file without cdw metadata).
    pub epoch: Option<i64>,
    /// Size on disk.
    pub bytes: u64,
    pub modified: SystemTime,
    /// A checkpoint's metadata (epoch, network, optimiser step, records, ...).
    pub checkpoint: Option<CheckpointMeta>,
}

const LATEST_FILE: &str = "checkpoint.safetensors";

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
        self.path.join(LATEST_FILE)
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
        self.save_keeping(ckpt, MARK_EVERY)
    }

    /// Writes `ckpt` as the latest checkpoint, and keeps a copy (`checkpoint_epoch_N`) at every
    /// 100th epoch and every `keep_every`th (`keep_checkpoint_every` of the config), so a run can
    /// later be resumed from there.
    pub fn save_keeping(&self, ckpt: &Checkpoint, keep_every: i64) -> Result<PathBuf, StoreError> {
        self.create()?;
        let last = self.last_path();
        ckpt.write(&last)?;
        let epoch = ckpt.meta.epoch;
        if is_mark(epoch) || (keep_every > 0 && epoch % keep_every == 0) {
            let kept = self.kept_path(ckpt.meta.epoch);
            // A hard link costs nothing; the next atomic write of `last` replaces its name only.
            let tmp = kept.with_extension("safetensors.tmp");
            let _ = fs::remove_file(&tmp);
            let linked = fs::hard_link(&last, &tmp).or_else(|_| fs::copy(&last, &tmp).map(|_| ()));
            linked
                .and_then(|()| fs::rename(&tmp, &kept))
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

    /// The checkpoints and models in the directory (none when it does not exist), sorted by
    /// file name, read from their names and safetensors headers only: no tensor is loaded. A
    /// header that does not read is an error naming the file.
    pub fn list(&self) -> Result<Vec<SavedFile>, StoreError> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Read {
                path: self.path.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(kind) = name.to_str().and_then(SavedKind::of_file_name) else {
                continue;
            };
            files.push(saved_file(entry.path(), kind)?);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Epochs that can be resumed from: the kept ones and the latest.
    pub fn available_epochs(&self) -> Result<Vec<i64>, StoreError> {
        let mut epochs: Vec<i64> = self
            .list()?
            .into_iter()
            .filter(|f| f.kind.is_checkpoint())
            .filter_map(|f| f.epoch)
            .collect();
        epochs.sort_unstable();
        epochs.dedup();
        Ok(epochs)
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
        let avail = self.available_epochs()?;
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
        for e in self.available_epochs()?.into_iter().filter(|&e| e > epoch) {
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

/// What the name and header of `path` say of it.
fn saved_file(path: PathBuf, kind: SavedKind) -> Result<SavedFile, StoreError> {
    let stat = fs::metadata(&path).map_err(|source| StoreError::Read {
        path: path.clone(),
        source,
    })?;
    let metadata = read_safetensors_metadata(&path)?;
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.clone(),
        what,
    };
    let (epoch, checkpoint) = if kind.is_checkpoint() {
        let meta = CheckpointMeta::from_metadata(&path, &metadata)?;
        (Some(meta.epoch), Some(meta))
    } else {
        let epoch = match metadata.get(MODEL_META_KEY) {
            Some(json) => Some(
                serde_json::from_str::<ModelMeta>(json)
                    .map_err(|e| corrupt(format!("model metadata is unreadable: {e}")))?
                    .epoch,
            ),
            None => None,
        };
        (epoch, None)
    };
    Ok(SavedFile {
        bytes: stat.len(),
        modified: stat.modified().map_err(|source| StoreError::Read {
            path: path.clone(),
            source,
        })?,
        path,
        kind,
        epoch,
        checkpoint,
    })
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
        assert_eq!(dir.available_epochs().unwrap(), [100, 200, 201]);
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
        assert_eq!(dir.available_epochs().unwrap(), [100, 201]);
    }

    #[test]
    fn checkpoints_are_also_kept_every_n_epochs_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir {
            path: tmp.path().join("c"),
        };
        for e in 1..=5 {
            dir.save_keeping(&ckpt(e), 2).unwrap();
        }
        assert_eq!(dir.available_epochs().unwrap(), [2, 4, 5]);
        assert_eq!(dir.load_epoch(2).unwrap().meta.epoch, 2);
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir {
            path: tmp.path().join("c"),
        };
        for e in [1, 2, 100] {
            dir.save_keeping(&ckpt(e), 0).unwrap();
        }
        assert_eq!(dir.available_epochs().unwrap(), [100], "0: the marks only");
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

    #[test]
    fn a_listing_reads_headers_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir {
            path: tmp.path().join("c"),
        };
        assert_eq!(dir.list().unwrap(), []);
        dir.save(&ckpt(100)).unwrap();
        dir.save(&ckpt(101)).unwrap();
        let c = ckpt(101);
        let m = ModelMeta {
            dataset: "shapes".into(),
            experiment: "x".into(),
            epoch: 100,
            net: c.meta.net.clone(),
        };
        dir.save_model(ModelTag::Epoch(100), &c.model, &m).unwrap();
        fs::write(dir.path.join("checkpoint.safetensors.tmp"), b"half written").unwrap();
        fs::write(dir.path.join("notes.txt"), b"not a saved file").unwrap();
        // The latest checkpoint's tensor data is cut short: listing it reads no tensor.
        let latest = dir.last_path();
        let bytes = fs::read(&latest).unwrap();
        fs::write(&latest, &bytes[..bytes.len() - 8]).unwrap();
        assert!(Checkpoint::read(&latest).is_err(), "the tensors are gone");

        let files = dir.list().unwrap();
        let seen: Vec<(String, SavedKind, Option<i64>)> = files
            .iter()
            .map(|f| {
                let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, f.kind, f.epoch)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "checkpoint.safetensors".into(),
                    SavedKind::Latest,
                    Some(101)
                ),
                (
                    "checkpoint_epoch_100.safetensors".into(),
                    SavedKind::Kept,
                    Some(100)
                ),
                (
                    "model_epoch_100.safetensors".into(),
                    SavedKind::Model(ModelTag::Epoch(100)),
                    Some(100)
                ),
                (
                    "resnet_epoch_100.safetensors".into(),
                    SavedKind::Backbone(ModelTag::Epoch(100)),
                    Some(100)
                ),
            ]
        );
        assert_eq!(files[0].checkpoint, Some(meta(101)));
        assert_eq!(files[0].bytes, bytes.len() as u64 - 8);
        assert!(files[0].modified <= SystemTime::now());
        assert_eq!(files[2].checkpoint, None);
        assert_eq!(dir.available_epochs().unwrap(), [100, 101]);

        // A header that does not read is an error naming its file.
        let kept = dir.kept_path(100);
        fs::write(&kept, b"\x10\0\0\0\0\0\0\0{not json at all}").unwrap();
        let err = dir.list().unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", kept.display())), "{err}");
        assert!(err.contains("the header is not JSON"), "{err}");
    }
}
