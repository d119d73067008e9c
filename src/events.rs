//! The plain values a run reports: the training loop emits them, the run store persists them as
//! JSON lines, and every front end (progress bar, JSON output, the TUI) renders them.

use serde::{Deserialize, Serialize};

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run is set up and about to train.
    Started {
        experiment: String,
        dataset: String,
        method: String,
        device: String,
        parameters: i64,
        images: usize,
        epochs: i64,
        /// First epoch this process trains (greater than 1 when resuming).
        start_epoch: i64,
        steps_per_epoch: i64,
        batch_size: i64,
    },
    /// One optimiser step.
    Step {
        epoch: i64,
        /// 1-based step within the epoch.
        step: i64,
        steps: i64,
        instance_loss: f64,
        feature_loss: f64,
        total_loss: f64,
        lr: f64,
        /// Training images per second over this epoch so far (each image gives two views).
        images_per_sec: f64,
    },
    /// An epoch ended: mean losses over its steps.
    Epoch {
        epoch: i64,
        epochs: i64,
        instance_loss: f64,
        feature_loss: f64,
        total_loss: f64,
        lr: f64,
        seconds: f64,
        images_per_sec: f64,
    },
    /// The clustering metrics after an epoch (SPEC 2.6), with their running maxima.
    Evaluation {
        epoch: i64,
        /// Images evaluated (the whole set, or the fraction `evaluation_mode` asks for).
        samples: usize,
        /// k of k-means: the distinct labels among them.
        clusters: usize,
        nmi_backbone: f64,
        ari_backbone: f64,
        acc_backbone: f64,
        nmi_feature: f64,
        ari_feature: f64,
        acc_feature: f64,
        best_nmi_backbone: f64,
        best_ari_backbone: f64,
        best_acc_backbone: f64,
        best_nmi_feature: f64,
        best_ari_feature: f64,
        best_acc_feature: f64,
        seconds: f64,
    },
    /// How far the evaluation after `epoch` has got, so a long one visibly moves: reported after
    /// each batch of the embedding pass, each k-means restart and every 50 t-SNE iterations.
    EvaluationProgress {
        epoch: i64,
        stage: EvaluationStage,
        /// The output being clustered or mapped (`backbone` or `feature`); absent while embedding.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<String>,
        done: usize,
        total: usize,
    },
    /// The t-SNE maps of `epoch` were written: PNG pictures and the CSV of 2-D points.
    TsneWritten { epoch: i64, files: Vec<String> },
    /// A resumable checkpoint of `epoch` was written (the run can be resumed after it).
    Checkpoint { epoch: i64, path: String },
    /// Network weights were saved: `tag` is `epoch_N`, `best` or `final`.
    ModelSaved {
        epoch: i64,
        tag: String,
        path: String,
    },
    /// The run stopped early on request (Ctrl-C); everything up to `epoch` is kept.
    Stopped {
        epoch: i64,
        step: i64,
        reason: String,
    },
    /// The last epoch finished.
    Finished { epochs: i64, seconds: f64 },
    /// The run failed with this error.
    Failed { error: String },
}

/// The long stages of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationStage {
    /// Images through the network (done/total: images).
    Embedding,
    /// k-means restarts (done/total: restarts).
    Kmeans,
    /// t-SNE optimisation (done/total: iterations).
    Tsne,
}

impl EvaluationStage {
    /// What a progress bar calls the stage: `embedding`, `k-means feature`, `t-SNE backbone`.
    pub fn label(self, space: Option<&str>) -> String {
        let name = match self {
            EvaluationStage::Embedding => "embedding",
            EvaluationStage::Kmeans => "k-means",
            EvaluationStage::Tsne => "t-SNE",
        };
        match space {
            Some(space) => format!("{name} {space}"),
            None => name.to_string(),
        }
    }
}

/// Receives the events of a run. The training loop knows nothing else about its audience.
pub trait Reporter {
    fn report(&mut self, event: &Event);
}

/// Forwards every event to several reporters (e.g. the console and the run's event log).
pub struct Fanout<'a>(pub Vec<&'a mut dyn Reporter>);

impl Reporter for Fanout<'_> {
    fn report(&mut self, event: &Event) {
        for r in self.0.iter_mut() {
            r.report(event);
        }
    }
}

/// Keeps every event; for tests and for callers that inspect a run afterwards.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Event>);

impl Reporter for Collect {
    fn report(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_tagged_json() {
        let e = Event::Stopped {
            epoch: 3,
            step: 7,
            reason: "interrupted".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"stopped","epoch":3,"step":7,"reason":"interrupted"}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn evaluation_progress_names_its_stage_and_space() {
        let e = Event::EvaluationProgress {
            epoch: 2,
            stage: EvaluationStage::Kmeans,
            space: Some("feature".into()),
            done: 3,
            total: 10,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"evaluation_progress","epoch":2,"stage":"kmeans","space":"feature","done":3,"total":10}"#
        );
        let embedding = r#"{"event":"evaluation_progress","epoch":2,"stage":"embedding","done":128,"total":1000}"#;
        let back: Event = serde_json::from_str(embedding).unwrap();
        assert_eq!(
            back,
            Event::EvaluationProgress {
                epoch: 2,
                stage: EvaluationStage::Embedding,
                space: None,
                done: 128,
                total: 1000
            }
        );
        assert_eq!(serde_json::to_string(&back).unwrap(), embedding);
        assert_eq!(EvaluationStage::Embedding.label(None), "embedding");
        assert_eq!(
            EvaluationStage::Tsne.label(Some("backbone")),
            "t-SNE backbone"
        );
    }
}
