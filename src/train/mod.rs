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
    cfg: Config,
    device: Device,
    vs: nn::VarStore,
    net: CdNet,
    adam: Adam,
    loader: Loader,
    /// Clustering metrics after epochs as `evaluation_mode` says (SPEC 2.6).
    evaluator: Evaluator,
    /// Best scores and records columns so far (saved in every checkpoint).
    records: RunRecords,
    /// Saves checkpoints, models and records at each epoch's end; `None` saves nothing.
    saver: Option<RunSaver>,
    images: usize,
}

/// How far [`Trainer::train_epoch`] got.
struct EpochRun {
    /// Steps taken.
    steps: i64,
    /// A stop request ended the epoch before its last step.
    interrupted: bool,
}

/// Images per second of `steps` batches of `batch_size` in `seconds`.
fn images_per_sec(steps: i64, batch_size: i64, seconds: f64) -> f64 {
    (steps * batch_size) as f64 / seconds.max(1e-9)
}

impl Trainer {
    /// Builds the network on `device` with PyTorch's initialisation drawn from `cfg.seed`, an
    /// Adam optimiser over all trainable parameters, and the loader of `set`. After each epoch
    /// `evaluator` scores the network and `saver` (when given) keeps the run's files.
    pub fn new(
        cfg: &Config,
        set: Arc<ImageSet>,
        evaluator: Evaluator,
        saver: Option<RunSaver>,
        device: Device,
    ) -> Result<Trainer, TrainError> {
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
            saver,
            images,
        })
    }

    /// Best scores and records columns so far.
    pub fn records(&self) -> &RunRecords {
        &self.records
    }

    /// Adam steps taken so far.
    pub fn optimizer_step(&self) -> i64 {
        self.adam.step
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

    /// Trains epochs `start_epoch..=cfg.epochs`, reporting every step and epoch. A stop request
    /// ends the run after the current step (or, at an epoch's last step, after that epoch's
    /// bookkeeping), reported as [`Event::Stopped`].
    pub fn run(
        &mut self,
        start_epoch: i64,
        reporter: &mut dyn Reporter,
        stop: &Interrupter,
    ) -> Result<TrainSummary, TrainError> {
        reporter.report(&self.started(start_epoch));
        let run_start = Instant::now();
        let mut summary = TrainSummary {
            last_epoch: start_epoch - 1,
            stopped: false,
            steps: Vec::new(),
        };
        for epoch in start_epoch..=self.cfg.epochs {
            let ran = self.train_epoch(epoch, reporter, stop, &mut summary.steps)?;
            if !ran.interrupted {
                self.finish_epoch(epoch, reporter, stop)?;
                summary.last_epoch = epoch;
            }
            if ran.interrupted || (stop.is_stopped() && epoch < self.cfg.epochs) {
                reporter.report(&Event::Stopped {
                    epoch,
                    step: ran.steps,
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

    /// The event that opens a run starting at `start_epoch`.
    fn started(&self, start_epoch: i64) -> Event {
        Event::Started {
            experiment: self.cfg.experiment_name(),
            dataset: self.cfg.dataset.clone(),
            method: self.cfg.method.name().into(),
            device: crate::device::name(self.device),
            parameters: self.parameter_count(),
            images: self.images,
            epochs: self.cfg.epochs,
            start_epoch,
            steps_per_epoch: self.loader.steps_per_epoch() as i64,
            batch_size: self.cfg.batch_size,
        }
    }

    /// The steps of `epoch`, each reported and its losses appended to `losses`, then the epoch's
    /// mean losses; a stop request ends it after the current step.
    fn train_epoch(
        &mut self,
        epoch: i64,
        reporter: &mut dyn Reporter,
        stop: &Interrupter,
        losses: &mut Vec<StepLosses>,
    ) -> Result<EpochRun, TrainError> {
        let steps = self.loader.steps_per_epoch() as i64;
        let b = self.cfg.batch_size;
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
            losses.push(l);
            reporter.report(&Event::Step {
                epoch,
                step: done,
                steps,
                instance_loss: l.instance,
                feature_loss: l.feature,
                total_loss: l.total,
                lr,
                images_per_sec: images_per_sec(done, b, epoch_start.elapsed().as_secs_f64()),
            });
            if stop.is_stopped() && done < steps {
                return Ok(EpochRun {
                    steps: done,
                    interrupted: true,
                });
            }
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let n = done.max(1) as f64;
        reporter.report(&Event::Epoch {
            epoch,
            epochs: self.cfg.epochs,
            instance_loss: sums.instance / n,
            feature_loss: sums.feature / n,
            total_loss: sums.total / n,
            lr,
            seconds,
            images_per_sec: images_per_sec(done, b, seconds),
        });
        Ok(EpochRun {
            steps: done,
            interrupted: false,
        })
    }

    /// After a completed epoch: the evaluation, then the bookkeeping (the records column at a
    /// mark, then the saver's files). Evaluation comes first because a new best NMI saves the
    /// "best" model. A stop request skips it, or cuts it short, so the run ends promptly with the
    /// epoch's checkpoint.
    fn finish_epoch(
        &mut self,
        epoch: i64,
        reporter: &mut dyn Reporter,
        stop: &Interrupter,
    ) -> Result<(), TrainError> {
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
        if is_mark(epoch) {
            self.records.mark(epoch);
        }
        if let Some(saver) = &self.saver {
            saver.end_of_epoch(&self.snapshot(epoch), reporter)?;
        }
        Ok(())
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

    /// A trainer of `set` that evaluates on it and saves nothing.
    fn untracked(cfg: &Config, set: ImageSet) -> Result<Trainer, TrainError> {
        let set = Arc::new(set);
        let evaluator = Evaluator::new(cfg, set.clone(), None);
        Trainer::new(cfg, set, evaluator, None, Device::Cpu)
    }

    fn first_epoch_losses(cfg: &Config) -> Vec<StepLosses> {
        let (set, _) = shapes::generate(32, 32, cfg.seed);
        let mut cfg = cfg.clone();
        cfg.epochs = 1;
        let mut t = untracked(&cfg, set).unwrap();
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
        let mut t = untracked(&cfg, set).unwrap();
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
        let mut t = untracked(&cfg, set).unwrap();
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
        let mut t = untracked(&cfg, set).unwrap();
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
        let err = untracked(&cfg, set).err().unwrap();
        assert_eq!(
            err.to_string(),
            "dataset `shapes` has 32 images, fewer than one batch of 64; lower batch_size"
        );
    }
}

/// Training with a [`RunSaver`]: resuming from its checkpoints, and failing to write them.
#[cfg(test)]
mod saving_tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::config::ConfigFile;
    use crate::data::shapes;
    use crate::events::Collect;
    use crate::store::checkpoint::CheckpointDir;

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
        let set = Arc::new(set);
        let saver = dir.map(|d| RunSaver {
            checkpoints: CheckpointDir {
                path: d.to_path_buf(),
            },
            run: None,
            checkpoint: true,
            save_model: true,
            keep_every: cfg.keep_checkpoint_every,
        });
        let evaluator = Evaluator::new(cfg, set.clone(), None);
        Trainer::new(cfg, set, evaluator, saver, Device::Cpu).unwrap()
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
        use std::os::unix::fs::PermissionsExt;
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
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            fs::read(dir.join("checkpoint.safetensors")).unwrap(),
            before
        );
        let kept = Checkpoint::read(&dir.join("checkpoint.safetensors")).unwrap();
        assert_eq!(kept.meta.epoch, 1);
    }
}
