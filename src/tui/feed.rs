//! One run's history as the dashboard shows it, folded from its events: the loss of every step
//! and epoch, the evaluations, where the training is now, how fast it goes, when it will end, and
//! the lines of its log pane. Nothing here draws; the state is tested on plain event lists.

use std::time::Duration;

use crate::events::{EvaluationStage, Event, Scores, Space};
use crate::store::{EpochMetrics, EvaluationRow};

/// Losses at one point of the x axis (a global step, or an epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPoint {
    pub x: f64,
    pub total: f64,
    pub instance: f64,
    pub feature: f64,
}

/// One completed epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    pub epoch: i64,
    pub loss: LossPoint,
    pub seconds: f64,
    pub images_per_sec: f64,
}

/// One evaluation after an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint {
    pub epoch: i64,
    pub current: Scores,
    pub best: Scores,
    pub seconds: f64,
}

/// What kind of line the log pane shows (its colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Info,
    Good,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub kind: LogKind,
    pub text: String,
}

/// How the training ended, as its events say.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Finished,
    Stopped(i64),
    Failed(String),
}

/// An evaluation in progress: its stage and how far it got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub epoch: i64,
    pub stage: EvaluationStage,
    pub space: Option<Space>,
    pub done: usize,
    pub total: usize,
}

impl Progress {
    /// The progress an `evaluation_progress` event reports; `None` for any other event.
    pub fn of(event: &Event) -> Option<Progress> {
        match *event {
            Event::EvaluationProgress {
                epoch,
                stage,
                space,
                done,
                total,
            } => Some(Progress {
                epoch,
                stage,
                space,
                done,
                total,
            }),
            _ => None,
        }
    }
}

/// The time left, as far as it can be told yet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Eta {
    /// Until the current epoch's steps are done.
    pub epoch: Option<Duration>,
    /// Until the last epoch is done, evaluations included.
    pub run: Option<Duration>,
}

/// The run's history and its present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    pub device: String,
    pub images: usize,
    pub epochs: i64,
    pub steps_per_epoch: i64,
    pub batch_size: i64,
    /// The first epoch the latest training session trained (greater than 1 after a resume).
    pub start_epoch: i64,
    /// Training sessions seen (1, or more after resumes).
    pub sessions: usize,
    /// Every step's losses, x = the global step `(epoch - 1) * steps + step`.
    pub steps: Vec<LossPoint>,
    pub epoch_rows: Vec<EpochPoint>,
    pub evals: Vec<EvalPoint>,
    /// The epoch being trained and its step (0 before the first step).
    pub epoch: i64,
    pub step: i64,
    pub images_per_sec: f64,
    pub evaluating: Option<Progress>,
    pub ended: Option<Ended>,
    pub log: Vec<LogLine>,
}

/// Log lines kept; older ones go (the files keep everything).
const LOG_KEEP: usize = 2000;

impl Feed {
    /// The history of a run that has no event log (made before cdw wrote one, or copied without
    /// it): its epochs and evaluations from `metrics.csv` and `evaluation.csv`.
    pub fn from_records(metrics: &[EpochMetrics], evals: &[EvaluationRow], epochs: i64) -> Feed {
        let mut f = Feed {
            epochs,
            ..Feed::default()
        };
        for m in metrics {
            f.apply(&Event::Epoch {
                epoch: m.epoch,
                epochs,
                instance_loss: m.instance_loss,
                feature_loss: m.feature_loss,
                total_loss: m.total_loss,
                lr: m.lr,
                seconds: m.seconds,
                images_per_sec: m.images_per_sec,
            });
        }
        for r in evals {
            f.evals.push(EvalPoint {
                epoch: r.epoch,
                current: r.current,
                best: r.best,
                seconds: r.seconds,
            });
        }
        f
    }

    /// Takes one event into the history: the progress events here, the rest in [`Feed::logged`].
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started {
                device,
                images,
                epochs,
                start_epoch,
                steps_per_epoch,
                batch_size,
                ..
            } => self.started(
                device,
                *images,
                *epochs,
                *start_epoch,
                *steps_per_epoch,
                *batch_size,
            ),
            Event::Step {
                epoch,
                step,
                steps,
                instance_loss,
                feature_loss,
                total_loss,
                images_per_sec,
                ..
            } => {
                self.epoch = *epoch;
                self.step = *step;
                self.steps_per_epoch = *steps;
                self.images_per_sec = *images_per_sec;
                #[allow(clippy::cast_precision_loss)]
                let x = ((epoch - 1) * steps + step) as f64;
                self.steps.push(LossPoint {
                    x,
                    total: *total_loss,
                    instance: *instance_loss,
                    feature: *feature_loss,
                });
            }
            Event::Epoch {
                epoch,
                epochs,
                instance_loss,
                feature_loss,
                total_loss,
                seconds,
                images_per_sec,
                ..
            } => {
                self.epochs = *epochs;
                #[allow(clippy::cast_precision_loss)]
                self.epoch_done(EpochPoint {
                    epoch: *epoch,
                    loss: LossPoint {
                        x: *epoch as f64,
                        total: *total_loss,
                        instance: *instance_loss,
                        feature: *feature_loss,
                    },
                    seconds: *seconds,
                    images_per_sec: *images_per_sec,
                });
            }
            Event::Evaluation {
                epoch,
                current,
                best,
                seconds,
                ..
            } => self.evaluated(EvalPoint {
                epoch: *epoch,
                current: *current,
                best: *best,
                seconds: *seconds,
            }),
            Event::EvaluationProgress { .. } => self.evaluating = Progress::of(event),
            other => self.logged(other),
        }
    }

    /// The events that add a log line (files written) or end the session.
    fn logged(&mut self, event: &Event) {
        match event {
            Event::TsneWritten { epoch, .. } => {
                self.push(
                    LogKind::Info,
                    format!("t-SNE maps of epoch {epoch} written"),
                );
            }
            Event::Checkpoint { epoch, .. } => {
                self.push(LogKind::Info, format!("checkpoint after epoch {epoch}"));
            }
            Event::ModelSaved { epoch, tag, .. } => {
                self.push(LogKind::Info, format!("model {tag} saved (epoch {epoch})"));
            }
            Event::Stopped { epoch, reason, .. } => self.end(
                Ended::Stopped(*epoch),
                LogKind::Warn,
                format!("stopped after epoch {epoch}: {reason}"),
            ),
            Event::Finished { epochs, seconds } => self.end(
                Ended::Finished,
                LogKind::Good,
                format!(
                    "finished {epochs} epochs in {}",
                    super::widgets::clock(Duration::from_secs_f64(seconds.max(0.0)))
                ),
            ),
            Event::Failed { error } => self.end(
                Ended::Failed(error.clone()),
                LogKind::Error,
                format!("failed: {error}"),
            ),
            // Progress events are taken by `apply`; downloads and `cdw evaluate`'s result are
            // not a training's.
            _ => {}
        }
    }

    /// A training session starts (the first, or a resume).
    fn started(
        &mut self,
        device: &str,
        images: usize,
        epochs: i64,
        start_epoch: i64,
        steps_per_epoch: i64,
        batch_size: i64,
    ) {
        device.clone_into(&mut self.device);
        self.images = images;
        self.epochs = epochs;
        self.start_epoch = start_epoch;
        self.steps_per_epoch = steps_per_epoch;
        self.batch_size = batch_size;
        self.sessions += 1;
        self.epoch = start_epoch;
        self.step = 0;
        self.ended = None;
        let text = if start_epoch > 1 {
            format!("resumed at epoch {start_epoch} of {epochs} on {device}")
        } else {
            format!("started on {device}: {images} images, {epochs} epochs")
        };
        self.push(LogKind::Info, text);
    }

    /// An epoch ends; a resumed run's later rows (cut back on disk) give way to it.
    fn epoch_done(&mut self, row: EpochPoint) {
        self.images_per_sec = row.images_per_sec;
        self.epoch_rows.retain(|r| r.epoch < row.epoch);
        self.epoch_rows.push(row);
        self.push(
            LogKind::Info,
            format!(
                "epoch {}: loss {:.4} in {:.1} s",
                row.epoch, row.loss.total, row.seconds
            ),
        );
    }

    /// An evaluation ends; a new best feature NMI is logged as good news.
    fn evaluated(&mut self, point: EvalPoint) {
        let EvalPoint {
            epoch,
            current,
            best,
            ..
        } = point;
        self.evaluating = None;
        self.evals.retain(|e| e.epoch < epoch);
        self.evals.push(point);
        let record = current.nmi_feature >= best.nmi_feature && epoch > 0;
        self.push(
            if record { LogKind::Good } else { LogKind::Info },
            format!(
                "epoch {epoch} evaluated: NMI feature {:.3}, backbone {:.3}{}",
                current.nmi_feature,
                current.nmi_backbone,
                if record { " (best)" } else { "" }
            ),
        );
    }

    /// The training ended, one way or another.
    fn end(&mut self, ended: Ended, kind: LogKind, text: String) {
        self.evaluating = None;
        self.ended = Some(ended);
        self.push(kind, text);
    }

    pub fn push(&mut self, kind: LogKind, text: String) {
        self.log.push(LogLine { kind, text });
        if self.log.len() > LOG_KEEP {
            self.log.drain(..self.log.len() - LOG_KEEP);
        }
    }

    /// The last epoch completed in full.
    pub fn done_epochs(&self) -> i64 {
        self.epoch_rows.last().map_or(0, |r| r.epoch)
    }

    /// The latest evaluation.
    pub fn last_eval(&self) -> Option<&EvalPoint> {
        self.evals.last()
    }

    /// Seconds one epoch takes, evaluation included: the mean of the last (up to) ten measured
    /// epochs plus the evaluations made over them; before any epoch ends, the current epoch's
    /// speed over its steps.
    pub fn epoch_seconds(&self) -> Option<f64> {
        let recent = &self.epoch_rows[self.epoch_rows.len().saturating_sub(10)..];
        if let (Some(first), false) = (recent.first(), recent.is_empty()) {
            let train: f64 = recent.iter().map(|r| r.seconds).sum();
            let eval: f64 = self
                .evals
                .iter()
                .filter(|e| e.epoch >= first.epoch)
                .map(|e| e.seconds)
                .sum();
            #[allow(clippy::cast_precision_loss)]
            return Some((train + eval) / recent.len() as f64);
        }
        self.step_seconds()
            .map(|s| s * f64::from(u32::try_from(self.steps_per_epoch).unwrap_or(0)))
    }

    /// Seconds per step at the current speed.
    fn step_seconds(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let batch = self.batch_size as f64;
        (self.images_per_sec > 0.0 && batch > 0.0).then(|| batch / self.images_per_sec)
    }

    /// Time left in the epoch and in the run. The run's count starts at the last completed epoch
    /// whatever session trained it, so a resumed run is not told to train its first epochs again.
    pub fn eta(&self) -> Eta {
        if self.ended.is_some() || self.epochs == 0 {
            return Eta::default();
        }
        let done = self.done_epochs();
        // The epoch at work: the one of the steps seen, unless it already ended.
        let in_epoch = self.step > 0 && self.epoch > done;
        let left_in_epoch = if in_epoch {
            self.step_seconds().map(|s| {
                s * f64::from(u32::try_from(self.steps_per_epoch - self.step).unwrap_or(0))
            })
        } else {
            None
        };
        let per_epoch = self.epoch_seconds();
        let whole_left = self.epochs - done - i64::from(in_epoch);
        let run = match (per_epoch, in_epoch) {
            (Some(p), true) => left_in_epoch.map(|l| l + p * whole_left.max(0) as f64),
            (Some(p), false) => Some(p * whole_left.max(0) as f64),
            (None, _) => None,
        };
        let secs = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).ok();
        Eta {
            epoch: left_in_epoch.and_then(secs),
            run: run.and_then(secs),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn started(start_epoch: i64, epochs: i64, steps: i64) -> Event {
        Event::Started {
            experiment: "bs32_lr0.0003_ResNet18".into(),
            dataset: "shapes".into(),
            method: "cd".into(),
            device: "cuda:0".into(),
            parameters: 11_000_000,
            images: usize::try_from(steps * 32).unwrap(),
            epochs,
            start_epoch,
            steps_per_epoch: steps,
            batch_size: 32,
        }
    }

    pub fn step(epoch: i64, step: i64, steps: i64, loss: f64, ips: f64) -> Event {
        Event::Step {
            epoch,
            step,
            steps,
            instance_loss: loss * 0.6,
            feature_loss: loss * 0.4,
            total_loss: loss,
            lr: 0.0003,
            images_per_sec: ips,
        }
    }

    pub fn epoch(epoch: i64, epochs: i64, loss: f64, seconds: f64) -> Event {
        Event::Epoch {
            epoch,
            epochs,
            instance_loss: loss * 0.6,
            feature_loss: loss * 0.4,
            total_loss: loss,
            lr: 0.0003,
            seconds,
            images_per_sec: 100.0,
        }
    }

    pub fn evaluation(epoch: i64, nmi: f64, best: f64, seconds: f64) -> Event {
        let s = |v: f64| Scores::from_values([v, v / 2.0, v + 0.3, v, v / 2.0, v + 0.3]);
        Event::Evaluation {
            epoch,
            samples: 1024,
            clusters: 4,
            current: s(nmi),
            best: s(best),
            seconds,
        }
    }

    fn feed(events: &[Event]) -> Feed {
        let mut f = Feed::default();
        for e in events {
            f.apply(e);
        }
        f
    }

    fn secs(d: Option<Duration>) -> f64 {
        d.expect("an ETA").as_secs_f64()
    }

    #[test]
    fn steps_and_epochs_build_the_history() {
        let f = feed(&[
            started(1, 10, 4),
            step(1, 1, 4, 9.0, 64.0),
            step(1, 2, 4, 8.0, 64.0),
            step(1, 3, 4, 7.0, 64.0),
            step(1, 4, 4, 6.0, 64.0),
            epoch(1, 10, 7.5, 2.0),
            evaluation(1, 0.2, 0.2, 1.0),
            step(2, 1, 4, 5.0, 64.0),
        ]);
        assert_eq!(f.steps.len(), 5);
        assert_eq!(f.steps[4].x, 5.0, "global step of epoch 2, step 1");
        assert_eq!(f.done_epochs(), 1);
        assert_eq!((f.epoch, f.step), (2, 1));
        assert_eq!(f.evals.len(), 1);
        assert_eq!(f.log[0].text, "started on cuda:0: 128 images, 10 epochs");
        assert_eq!(
            f.log[2].text,
            "epoch 1 evaluated: NMI feature 0.200, backbone 0.200 (best)"
        );
        assert_eq!(f.log[2].kind, LogKind::Good);
    }

    #[test]
    fn eta_counts_measured_epochs_and_their_evaluations() {
        // 4 steps of 32 images at 64 img/s: 0.5 s a step. Epochs take 2 s plus a 1 s evaluation.
        let f = feed(&[
            started(1, 10, 4),
            epoch(1, 10, 7.5, 2.0),
            evaluation(1, 0.2, 0.2, 1.0),
            epoch(2, 10, 7.0, 2.0),
            evaluation(2, 0.3, 0.3, 1.0),
            step(3, 1, 4, 5.0, 64.0),
        ]);
        let eta = f.eta();
        assert!((secs(eta.epoch) - 1.5).abs() < 1e-9, "3 steps of 0.5 s");
        // The rest of epoch 3 (1.5 s), then epochs 4..=10 at 3 s.
        assert!((secs(eta.run) - (1.5 + 7.0 * 3.0)).abs() < 1e-9, "{eta:?}");
    }

    #[test]
    fn eta_after_a_resume_counts_from_the_last_completed_epoch() {
        let mut events = vec![started(1, 10, 4)];
        for e in 1..=5 {
            events.push(epoch(e, 10, 7.0, 10.0));
        }
        events.push(Event::Stopped {
            epoch: 5,
            step: 2,
            reason: "interrupted".into(),
        });
        let mut f = feed(&events);
        assert_eq!(f.eta(), Eta::default(), "a stopped run has no ETA");
        f.apply(&started(6, 10, 4));
        assert_eq!(f.sessions, 2);
        assert_eq!(
            f.log.last().unwrap().text,
            "resumed at epoch 6 of 10 on cuda:0"
        );
        // Epochs 6..=10 are left, at the 10 s the first session measured.
        assert!((secs(f.eta().run) - 50.0).abs() < 1e-9);
        assert_eq!(f.eta().epoch, None, "no step of epoch 6 yet");
        f.apply(&step(6, 2, 4, 5.0, 64.0));
        // Two steps of 0.5 s left in epoch 6, then four epochs of 10 s.
        assert!((secs(f.eta().run) - 41.0).abs() < 1e-9);
    }

    #[test]
    fn before_the_first_epoch_the_eta_comes_from_the_step_speed() {
        let f = feed(&[started(1, 2, 4), step(1, 1, 4, 9.0, 64.0)]);
        // 3 steps left of 0.5 s, then one epoch of 4 steps.
        assert!((secs(f.eta().run) - 3.5).abs() < 1e-9);
    }

    #[test]
    fn a_history_cut_back_replaces_later_rows() {
        let f = feed(&[
            started(1, 10, 4),
            epoch(1, 10, 7.0, 1.0),
            epoch(2, 10, 6.0, 1.0),
            evaluation(2, 0.3, 0.3, 1.0),
            // Resumed from epoch 1's checkpoint without the follower noticing a new file.
            started(2, 10, 4),
            epoch(2, 10, 5.0, 1.0),
            evaluation(2, 0.25, 0.25, 1.0),
        ]);
        assert_eq!(f.epoch_rows.len(), 2);
        assert_eq!(f.epoch_rows[1].loss.total, 5.0);
        assert_eq!(f.evals.len(), 1);
        assert_eq!(f.evals[0].current.nmi_feature, 0.25);
    }

    #[test]
    fn endings_are_said() {
        let f = feed(&[
            started(1, 1, 1),
            Event::Failed {
                error: "CUDA out of memory".into(),
            },
        ]);
        assert_eq!(f.ended, Some(Ended::Failed("CUDA out of memory".into())));
        assert_eq!(f.log.last().unwrap().kind, LogKind::Error);
        let f = feed(&[
            started(1, 1, 1),
            Event::Finished {
                epochs: 1,
                seconds: 75.0,
            },
        ]);
        assert_eq!(f.log.last().unwrap().text, "finished 1 epochs in 1:15");
    }
}
