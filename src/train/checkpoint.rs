//! When a run saves (SPEC 2.5): a resumable checkpoint every epoch, the network every 100 epochs,
//! at a new best NMI and at the end, and the records CSV at every 100-epoch mark and at the end.
//! How files look is the store's business ([`crate::store::checkpoint`]).

use crate::events::{Event, ModelTag, Reporter};
use crate::store::checkpoint::{CheckpointDir, ModelMeta, NetMeta};
use crate::store::records::write_records_csv;
use crate::store::{is_mark, RunDir, StoreError};

use super::Trainer;

/// Saves a run's checkpoints, models and records at the end of each epoch.
#[derive(Debug, Clone)]
pub struct RunSaver {
    pub checkpoints: CheckpointDir,
    /// Where the records CSV goes (`None`: no records file, e.g. in tests).
    pub run: Option<RunDir>,
    /// `checkpoint` of the config: write a resumable checkpoint every epoch.
    pub checkpoint: bool,
    /// `save_model` of the config: save the network every 100 epochs, at best and at the end.
    pub save_model: bool,
}

impl RunSaver {
    /// Saves what epoch `epoch` calls for. The checkpoint is written last: once it names an
    /// epoch, everything that epoch saves is on disk, so a resume never misses a model or record.
    pub fn end_of_epoch(
        &self,
        trainer: &Trainer,
        epoch: i64,
        reporter: &mut dyn Reporter,
    ) -> Result<(), StoreError> {
        let cfg = &trainer.cfg;
        let last = epoch == cfg.epochs;
        if self.save_model {
            let model = trainer.model_tensors();
            let meta = ModelMeta {
                dataset: cfg.dataset.clone(),
                experiment: cfg.experiment_name(),
                epoch,
                net: NetMeta::from_spec(&trainer.net.spec),
            };
            let mut tags = Vec::new();
            if trainer.records.best_epoch == Some(epoch) {
                tags.push(ModelTag::Best);
            }
            if is_mark(epoch) {
                tags.push(ModelTag::Epoch(epoch));
            }
            if last {
                tags.push(ModelTag::Final);
            }
            for tag in tags {
                let path = self.checkpoints.save_model(tag, &model, &meta)?;
                reporter.report(&Event::ModelSaved {
                    epoch,
                    tag,
                    path: path.display().to_string(),
                });
            }
        }
        if let Some(run) = &self.run {
            if is_mark(epoch) || last {
                write_records_csv(
                    &run.records_path(&cfg.experiment_name()),
                    &trainer.records.columns,
                )?;
            }
        }
        if self.checkpoint {
            let path = self.checkpoints.save(&trainer.snapshot(epoch))?;
            reporter.report(&Event::Checkpoint {
                epoch,
                path: path.display().to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use tch::Device;

    use super::*;
    use crate::config::{Config, ConfigFile};
    use crate::data::shapes;
    use crate::events::Collect;
    use crate::store::checkpoint::Checkpoint;
    use crate::train::{Interrupter, StepLosses, TrainError};

    /// SPEC's tiny CPU run: shapes, ResNet18, 32 px, batch 8, 32 images (4 steps per epoch).
    fn tiny(epochs: i64) -> Config {
        let over: Vec<String> = [
            "batch_size=8",
            "image_size=32",
            "hidden_dim=16",
            "feature_num=8",
            "workers=2",
            "backbone=ResNet18",
            "shapes_images=32",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("epochs={epochs}")])
        .collect();
        ConfigFile::builtin().resolve("shapes", &over).unwrap()
    }

    fn trainer(cfg: &Config, dir: Option<&Path>) -> Trainer {
        let (set, _) = shapes::generate(32, 32, cfg.seed);
        let mut t = Trainer::new(cfg, set, Device::Cpu).unwrap();
        t.saver = dir.map(|d| RunSaver {
            checkpoints: CheckpointDir {
                path: d.to_path_buf(),
            },
            run: None,
            checkpoint: true,
            save_model: true,
        });
        t
    }

    /// Raises the interrupter when epoch `after` ends, so the loop stops cleanly there.
    struct StopAfter {
        after: i64,
        stop: Interrupter,
        events: Vec<Event>,
    }

    impl Reporter for StopAfter {
        fn report(&mut self, e: &Event) {
            if matches!(e, Event::Epoch { epoch, .. } if *epoch == self.after) {
                self.stop.stop();
            }
            self.events.push(e.clone());
        }
    }

    fn assert_losses_close(a: &[StepLosses], b: &[StepLosses]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            for (u, v) in [
                (x.instance, y.instance),
                (x.feature, y.feature),
                (x.total, y.total),
            ] {
                assert!((u - v).abs() < 1e-5, "step {i}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn one_epoch_resume_one_epoch_equals_two_straight() {
        let cfg = tiny(2);
        let mut straight = trainer(&cfg, None);
        let a = straight
            .run(1, &mut Collect::default(), &Interrupter::new())
            .unwrap();
        assert_eq!(a.steps.len(), 8);

        let tmp = tempfile::tempdir().unwrap();
        let mut first = trainer(&cfg, Some(tmp.path()));
        let stop = Interrupter::new();
        let mut rep = StopAfter {
            after: 1,
            stop: stop.clone(),
            events: Vec::new(),
        };
        let b = first.run(1, &mut rep, &stop).unwrap();
        assert!(b.stopped && b.last_epoch == 1);
        assert!(rep
            .events
            .iter()
            .any(|e| matches!(e, Event::Checkpoint { epoch: 1, .. })));
        drop(first);

        let ckpt = CheckpointDir {
            path: tmp.path().to_path_buf(),
        }
        .load_last()
        .unwrap()
        .unwrap();
        assert_eq!(ckpt.meta.epoch, 1);
        assert_eq!(ckpt.meta.optimizer_step, 4);
        let mut resumed = trainer(&cfg, Some(tmp.path()));
        let start = resumed.restore(&ckpt).unwrap();
        assert_eq!(start, 2);
        let c = resumed
            .run(start, &mut Collect::default(), &Interrupter::new())
            .unwrap();
        let joined: Vec<StepLosses> = b.steps.iter().chain(&c.steps).copied().collect();
        assert_losses_close(&joined, &a.steps);

        assert_eq!(resumed.adam.step, straight.adam.step);
        let want = straight.model_tensors();
        let got = resumed.model_tensors();
        assert_eq!(want.len(), got.len());
        for ((n, w), (m, g)) in want.iter().zip(&got) {
            assert_eq!(n, m);
            let diff = (w.to_kind(tch::Kind::Double) - g.to_kind(tch::Kind::Double))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-6, "{n} differs by {diff}");
        }
        // The final epoch saved the final model and a checkpoint of epoch 2.
        assert!(tmp.path().join("model_final.safetensors").exists());
        assert!(tmp.path().join("resnet_final.safetensors").exists());
        let last = Checkpoint::read(&tmp.path().join("checkpoint.safetensors")).unwrap();
        assert_eq!(last.meta.epoch, 2);
    }

    #[test]
    fn resuming_a_different_network_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut t = trainer(&tiny(1), Some(tmp.path()));
        t.run(1, &mut Collect::default(), &Interrupter::new())
            .unwrap();
        let ckpt = Checkpoint::read(&tmp.path().join("checkpoint.safetensors")).unwrap();
        let mut cfg = tiny(2);
        cfg.feature_num = 4;
        let err = trainer(&cfg, None).restore(&ckpt).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot resume from the checkpoint of epoch 1: the checkpoint holds a ResNet18 network (hidden_dim 16, feature_num 8"),
            "{err}"
        );
    }

    /// Makes `dir` refuse new files. Root ignores permission bits, so then the temporary file's
    /// name is taken by a directory instead, which fails the same `create` call.
    fn make_unwritable(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
        if fs::write(dir.join("probe"), b"x").is_ok() {
            let _ = fs::remove_file(dir.join("probe"));
            fs::create_dir(dir.join("checkpoint.safetensors.tmp")).unwrap();
        }
    }

    #[test]
    fn unwritable_checkpoint_dir_fails_clearly_and_keeps_the_last_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt");
        let cfg = tiny(2);
        let mut t = trainer(&cfg, Some(&dir));
        let stop = Interrupter::new();
        let mut rep = StopAfter {
            after: 1,
            stop: stop.clone(),
            events: Vec::new(),
        };
        t.run(1, &mut rep, &stop).unwrap();
        let before = fs::read(dir.join("checkpoint.safetensors")).unwrap();
        make_unwritable(&dir);
        let err = t
            .run(2, &mut Collect::default(), &Interrupter::new())
            .unwrap_err();
        assert!(matches!(err, TrainError::Save(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "cannot save the run: cannot write {}",
                dir.display()
            )),
            "{msg}"
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            fs::read(dir.join("checkpoint.safetensors")).unwrap(),
            before
        );
        let kept = Checkpoint::read(&dir.join("checkpoint.safetensors")).unwrap();
        assert_eq!(kept.meta.epoch, 1);
    }
}
