//! The training loop of SPEC 2.5. It knows nothing about terminals or files: it reports
//! [`Event`]s to a [`Reporter`] and stops when its [`Interrupter`] is raised.

pub mod checkpoint;
pub mod optim;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};

use crate::config::{Config, Method};
use crate::data::augment::Augment;
use crate::data::loader::{Batch, Loader};
use crate::data::ImageSet;
use crate::eval::{EvalError, Evaluator};
use crate::events::{Event, Reporter};
use crate::model::{losses, trainable_parameter_count, CdNet, NetSpec, Outputs};
use crate::store::checkpoint::{
    Checkpoint, CheckpointMeta, NetMeta, SchedulerMeta, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
};
use crate::store::interchange::load_into;
use crate::store::records::RunRecords;
use crate::store::{is_mark, StoreError};
use checkpoint::RunSaver;
use optim::{cosine_lr, Adam};

/// A stop request shared with a signal handler: the loop stops after the current step.
#[derive(Debug, Clone, Default)]
pub struct Interrupter(Arc<AtomicBool>);

impl Interrupter {
    pub fn new() -> Interrupter {
        Interrupter::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("dataset `{name}` has {images} images, fewer than one batch of {batch_size}; lower batch_size")]
    TooFewImages {
        name: String,
        images: usize,
        batch_size: i64,
    },
    #[error("training diverged at epoch {epoch} step {step}: the loss is {value}")]
    NonFinite { epoch: i64, step: i64, value: f64 },
    #[error("evaluation failed: {0}")]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("cannot save the run: {0}")]
    Save(#[from] StoreError),
    #[error("cannot resume from the checkpoint of epoch {epoch}: {reason}")]
    Resume { epoch: i64, reason: String },
}

/// Per-step losses as plain numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    pub instance: f64,
    pub feature: f64,
    pub total: f64,
}

/// How a call to [`Trainer::run`] ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Last epoch completed in full.
    pub last_epoch: i64,
    pub stopped: bool,
    /// Every step's losses, in order (for tests and reports).
    pub steps: Vec<StepLosses>,
}

/// A model, its optimiser and its data, ready to train.
pub struct Trainer {
    pub cfg: Config,
    pub device: Device,
    pub vs: nn::VarStore,
    pub net: CdNet,
    pub adam: Adam,
    pub loader: Loader,
    /// Clustering metrics after epochs as `evaluation_mode` says (SPEC 2.6).
    pub evaluator: Evaluator,
    /// Best scores and records columns so far (saved in every checkpoint).
    pub records: RunRecords,
    /// Saves checkpoints, models and records at each epoch's end; `None` saves nothing.
    pub saver: Option<RunSaver>,
    images: usize,
}

impl Trainer {
    /// Builds the network on `device` with PyTorch's initialisation drawn from `cfg.seed`, and an
    /// Adam optimiser over all trainable parameters.
    pub fn new(cfg: &Config, set: ImageSet, device: Device) -> Result<Trainer, TrainError> {
        if (set.len() as i64) < cfg.batch_size {
            return Err(TrainError::TooFewImages {
                name: set.name.clone(),
                images: set.len(),
                batch_size: cfg.batch_size,
            });
        }
        let vs = nn::VarStore::new(device);
        let net = CdNet::new(&vs.root(), NetSpec::from_config(cfg), cfg.seed);
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let adam = Adam::new(named, cfg.learning_rate, cfg.weight_decay);
        let images = set.len();
        let set = Arc::new(set);
        let evaluator = Evaluator::new(cfg, set.clone());
        let loader = Loader::new(
            set,
            Augment::from_config(cfg),
            cfg.batch_size as usize,
            cfg.workers,
            cfg.prefetch,
            cfg.seed,
        );
        Ok(Trainer {
            cfg: cfg.clone(),
            device,
            vs,
            net,
            adam,
            loader,
            evaluator,
            records: RunRecords::default(),
            saver: None,
            images,
        })
    }

    /// Every tensor of the network (parameters and BN buffers) under its reference name, sorted.
    pub fn model_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The resumable state after `epoch` completed.
    pub fn snapshot(&self, epoch: i64) -> Checkpoint {
        let cfg = &self.cfg;
        Checkpoint {
            meta: CheckpointMeta {
                format: CHECKPOINT_FORMAT.into(),
                version: CHECKPOINT_VERSION,
                dataset: cfg.dataset.clone(),
                experiment: cfg.experiment_name(),
                epoch,
                epochs: cfg.epochs,
                net: NetMeta::from_spec(&self.net.spec),
                optimizer_step: self.adam.step,
                lr: self.lr_for_epoch(epoch),
                scheduler: cfg.use_scheduler.then_some(SchedulerMeta {
                    t_max: cfg.epochs,
                    last_epoch: epoch,
                }),
                records: self.records.clone(),
                source: None,
            },
            model: self.model_tensors(),
            optimizer: self.adam.state(),
        }
    }

    /// Loads a checkpoint's weights, buffers, optimiser state and records; returns the epoch to
    /// start from. The network in the checkpoint must be the one the config describes.
    pub fn restore(&mut self, ckpt: &Checkpoint) -> Result<i64, TrainError> {
        let epoch = ckpt.meta.epoch;
        let fail = |reason: String| TrainError::Resume { epoch, reason };
        if let Some(why) = ckpt.meta.net.mismatch(&self.cfg) {
            return Err(fail(why));
        }
        load_into(&self.vs, &ckpt.model).map_err(|e| fail(format!("the checkpoint has {e}")))?;
        self.adam.load_state(&ckpt.optimizer).map_err(fail)?;
        self.records = ckpt.meta.records.clone();
        self.records.truncate_after(epoch);
        Ok(epoch + 1)
    }

    /// Bookkeeping at the end of a completed epoch: the records column at 100-epoch marks, then
    /// the saver's files.
    fn end_of_epoch(&mut self, epoch: i64, reporter: &mut dyn Reporter) -> Result<(), TrainError> {
        if is_mark(epoch) {
            self.records.mark(epoch);
        }
        if let Some(saver) = &self.saver {
            saver.end_of_epoch(self, epoch, reporter)?;
        }
        Ok(())
    }

    pub fn parameter_count(&self) -> i64 {
        trainable_parameter_count(&self.vs)
    }

    /// Learning rate of `epoch` (1-based).
    pub fn lr_for_epoch(&self, epoch: i64) -> f64 {
        if self.cfg.use_scheduler {
            cosine_lr(self.cfg.learning_rate, epoch - 1, self.cfg.epochs)
        } else {
            self.cfg.learning_rate
        }
    }

    /// Forward of both views: separately (the reference; BN statistics per view-batch), or as one
    /// 2B batch when `fused_views` is on.
    fn forward_views(&self, x1: &Tensor, x2: &Tensor) -> (Outputs, Outputs) {
        if self.cfg.fused_views {
            let b = x1.size()[0];
            let o = self.net.forward_t(&Tensor::cat(&[x1, x2], 0), true);
            let split = |t: &Tensor| (t.narrow(0, 0, b), t.narrow(0, b, b));
            let (h1, h2) = split(&o.h);
            let (z1, z2) = split(&o.z);
            let (f1, f2) = match &o.f {
                Some(f) => {
                    let (a, b) = split(f);
                    (Some(a), Some(b))
                }
                None => (None, None),
            };
            (
                Outputs {
                    h: h1,
                    z: z1,
                    f: f1,
                },
                Outputs {
                    h: h2,
                    z: z2,
                    f: f2,
                },
            )
        } else {
            (self.net.forward_t(x1, true), self.net.forward_t(x2, true))
        }
    }

    /// One optimisation step on a batch; returns its losses.
    pub fn step(&mut self, batch: &Batch) -> Result<StepLosses, TrainError> {
        let x1 = batch.view1.to_device(self.device);
        let x2 = batch.view2.to_device(self.device);
        let (o1, o2) = self.forward_views(&x1, &x2);
        let inst = losses::instance_loss(&o1.z, &o2.z, self.cfg.instance_temperature);
        let (feat, total) = match (self.cfg.method, &o1.f, &o2.f) {
            (Method::Cd, Some(f1), Some(f2)) => {
                let feat = losses::feature_loss(f1, f2, self.cfg.feature_temperature).total;
                let total = &inst + &feat;
                (feat, total)
            }
            _ => (inst.zeros_like(), inst.shallow_clone()),
        };
        self.adam.zero_grad();
        total.backward();
        if self.cfg.use_gradnorm {
            self.adam.clip_grad_norm(self.cfg.max_norm);
        }
        self.adam.step();
        // One device-to-host copy for the three numbers.
        let values: Vec<f64> = Vec::try_from(
            Tensor::stack(&[inst.detach(), feat.detach(), total.detach()], 0)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu),
        )?;
        Ok(StepLosses {
            instance: values[0],
            feature: values[1],
            total: values[2],
        })
    }

    /// Trains epochs `start_epoch..=cfg.epochs`, reporting every step and epoch.
    pub fn run(
        &mut self,
        start_epoch: i64,
        reporter: &mut dyn Reporter,
        stop: &Interrupter,
    ) -> Result<TrainSummary, TrainError> {
        let steps = self.loader.steps_per_epoch() as i64;
        let b = self.cfg.batch_size;
        reporter.report(&Event::Started {
            experiment: self.cfg.experiment_name(),
            dataset: self.cfg.dataset.clone(),
            method: self.cfg.method.name().into(),
            device: crate::device::name(self.device),
            parameters: self.parameter_count(),
            images: self.images,
            epochs: self.cfg.epochs,
            start_epoch,
            steps_per_epoch: steps,
            batch_size: b,
        });
        let run_start = Instant::now();
        let mut summary = TrainSummary {
            last_epoch: start_epoch - 1,
            stopped: false,
            steps: Vec::new(),
        };
        for epoch in start_epoch..=self.cfg.epochs {
            let lr = self.lr_for_epoch(epoch);
            self.adam.lr = lr;
            let epoch_start = Instant::now();
            let mut sums = StepLosses {
                instance: 0.0,
                feature: 0.0,
                total: 0.0,
            };
            let mut done = 0i64;
            for batch in self.loader.epoch(epoch, 0) {
                let l = self.step(&batch)?;
                done += 1;
                if !l.total.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        step: done,
                        value: l.total,
                    });
                }
                sums.instance += l.instance;
                sums.feature += l.feature;
                sums.total += l.total;
                summary.steps.push(l);
                let secs = epoch_start.elapsed().as_secs_f64();
                reporter.report(&Event::Step {
                    epoch,
                    step: done,
                    steps,
                    instance_loss: l.instance,
                    feature_loss: l.feature,
                    total_loss: l.total,
                    lr,
                    images_per_sec: (done * b) as f64 / secs.max(1e-9),
                });
                if stop.is_stopped() && done < steps {
                    reporter.report(&Event::Stopped {
                        epoch,
                        step: done,
                        reason: "interrupted".into(),
                    });
                    summary.stopped = true;
                    return Ok(summary);
                }
            }
            let secs = epoch_start.elapsed().as_secs_f64();
            let n = done.max(1) as f64;
            reporter.report(&Event::Epoch {
                epoch,
                epochs: self.cfg.epochs,
                instance_loss: sums.instance / n,
                feature_loss: sums.feature / n,
                total_loss: sums.total / n,
                lr,
                seconds: secs,
                images_per_sec: (done * b) as f64 / secs.max(1e-9),
            });
            // Evaluation before the epoch's bookkeeping: a new best NMI saves the "best" model.
            // A stop request skips it, or cuts it short, so the run ends promptly with the
            // epoch's checkpoint.
            if !stop.is_stopped() {
                self.evaluator.after_epoch(
                    &self.net,
                    self.device,
                    epoch,
                    &mut self.records,
                    reporter,
                    &|| stop.is_stopped(),
                )?;
            }
            self.end_of_epoch(epoch, reporter)?;
            summary.last_epoch = epoch;
            if stop.is_stopped() && epoch < self.cfg.epochs {
                reporter.report(&Event::Stopped {
                    epoch,
                    step: done,
                    reason: "interrupted".into(),
                });
                summary.stopped = true;
                return Ok(summary);
            }
        }
        reporter.report(&Event::Finished {
            epochs: self.cfg.epochs,
            seconds: run_start.elapsed().as_secs_f64(),
        });
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::data::shapes;
    use crate::events::Collect;

    fn tiny_config(extra: &[&str]) -> Config {
        let mut over: Vec<String> = [
            "batch_size=8",
            "epochs=2",
            "image_size=32",
            "hidden_dim=16",
            "feature_num=8",
            "workers=2",
            "backbone=ResNet18",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        over.extend(extra.iter().map(|s| s.to_string()));
        ConfigFile::builtin().resolve("shapes", &over).unwrap()
    }

    fn first_epoch_losses(cfg: &Config) -> Vec<StepLosses> {
        let (set, _) = shapes::generate(32, 32, cfg.seed);
        let mut cfg = cfg.clone();
        cfg.epochs = 1;
        let mut t = Trainer::new(&cfg, set, Device::Cpu).unwrap();
        let mut events = Collect::default();
        let s = t.run(1, &mut events, &Interrupter::new()).unwrap();
        assert!(!s.stopped);
        assert_eq!(s.steps.len(), 4);
        s.steps
    }

    #[test]
    fn same_seed_gives_the_same_first_epoch() {
        let cfg = tiny_config(&[]);
        let a = first_epoch_losses(&cfg);
        let b = first_epoch_losses(&cfg);
        assert_eq!(a, b);
        let c = first_epoch_losses(&tiny_config(&["seed=7"]));
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_reported_in_order_and_stop_works() {
        let cfg = tiny_config(&[]);
        let (set, _) = shapes::generate(32, 32, 1);
        let mut t = Trainer::new(&cfg, set, Device::Cpu).unwrap();
        let stop = Interrupter::new();
        stop.stop();
        let mut events = Collect::default();
        let s = t.run(1, &mut events, &stop).unwrap();
        assert!(s.stopped);
        assert!(matches!(events.0[0], Event::Started { parameters, .. } if parameters > 0));
        assert!(matches!(
            events.0[1],
            Event::Step {
                epoch: 1,
                step: 1,
                steps: 4,
                ..
            }
        ));
        assert_eq!(
            events.0[2],
            Event::Stopped {
                epoch: 1,
                step: 1,
                reason: "interrupted".into()
            }
        );
        assert_eq!(events.0.len(), 3);
    }

    #[test]
    fn evaluation_follows_the_epochs_it_is_due() {
        // shapes evaluates with mode `none`: only after the last epoch here.
        let cfg = tiny_config(&[]);
        let (set, _) = shapes::generate(32, 32, 1);
        let mut t = Trainer::new(&cfg, set, Device::Cpu).unwrap();
        let mut events = Collect::default();
        t.run(1, &mut events, &Interrupter::new()).unwrap();
        let evals: Vec<&Event> = events
            .0
            .iter()
            .filter(|e| matches!(e, Event::Evaluation { .. }))
            .collect();
        assert_eq!(evals.len(), 1);
        assert!(matches!(
            evals[0],
            Event::Evaluation {
                epoch: 2,
                samples: 32,
                clusters: 4,
                ..
            }
        ));
        // Between the last epoch and its scores the evaluation shows how far it has got: the
        // embedding pass (batch 8) up to all 32 images, then the k-means restarts.
        let names: Vec<String> = events.0.iter().map(event_name).collect();
        let epoch = names.iter().rposition(|n| n == "epoch").unwrap();
        let scores = names.iter().position(|n| n == "evaluation").unwrap();
        assert_eq!(scores - epoch - 1, 4 + 2 * 10, "{names:?}");
        let done: Vec<(i64, usize, usize)> = events.0[epoch + 1..scores]
            .iter()
            .filter_map(|e| match e {
                Event::EvaluationProgress {
                    epoch,
                    stage: crate::events::EvaluationStage::Embedding,
                    done,
                    total,
                    ..
                } => Some((*epoch, *done, *total)),
                _ => None,
            })
            .collect();
        assert_eq!(done, [(2, 8, 32), (2, 16, 32), (2, 24, 32), (2, 32, 32)]);
        assert!(matches!(events.0.last(), Some(Event::Finished { .. })));
    }

    fn event_name(e: &Event) -> String {
        serde_json::to_value(e).unwrap()["event"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_stop_during_an_evaluation_cuts_it_short_and_ends_after_the_epoch() {
        /// Raises the stop request on the first progress report of an evaluation.
        struct StopAtEvaluation(Vec<Event>, Interrupter);
        impl Reporter for StopAtEvaluation {
            fn report(&mut self, e: &Event) {
                if matches!(e, Event::EvaluationProgress { .. }) {
                    self.1.stop();
                }
                self.0.push(e.clone());
            }
        }
        let cfg = tiny_config(&["evaluation_mode=all"]);
        let (set, _) = shapes::generate(32, 32, 1);
        let mut t = Trainer::new(&cfg, set, Device::Cpu).unwrap();
        let stop = Interrupter::new();
        let mut seen = StopAtEvaluation(Vec::new(), stop.clone());
        let summary = t.run(1, &mut seen, &stop).unwrap();
        assert!(summary.stopped);
        assert_eq!(summary.last_epoch, 1);
        let names: Vec<String> = seen.0.iter().map(event_name).collect();
        // The first batch of the embedding pass (8 of 32 images) is the last of the evaluation.
        assert_eq!(
            names[names.len() - 3..],
            ["epoch", "evaluation_progress", "stopped"]
        );
        assert!(matches!(
            seen.0[names.len() - 2],
            Event::EvaluationProgress {
                epoch: 1,
                done: 8,
                total: 32,
                ..
            }
        ));
        assert!(matches!(
            seen.0.last(),
            Some(Event::Stopped {
                epoch: 1,
                step: 4,
                ..
            })
        ));
        // Nothing of the cut-short evaluation was recorded.
        assert_eq!(t.records.last, None);
        assert_eq!(t.records.best_epoch, None);
    }

    #[test]
    fn simclr_reports_zero_feature_loss() {
        let steps = first_epoch_losses(&tiny_config(&["method=simclr"]));
        assert!(steps
            .iter()
            .all(|s| s.feature == 0.0 && s.total == s.instance));
    }

    #[test]
    fn too_few_images_is_an_error() {
        let cfg = tiny_config(&["batch_size=64"]);
        let (set, _) = shapes::generate(32, 32, 1);
        let err = Trainer::new(&cfg, set, Device::Cpu).err().unwrap();
        assert_eq!(
            err.to_string(),
            "dataset `shapes` has 32 images, fewer than one batch of 64; lower batch_size"
        );
    }
}
