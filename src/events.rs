//! The plain values a run reports: the training loop emits them, the run store persists them as
//! JSON lines, and every front end (progress bar, JSON output, the TUI) renders them. The other
//! long commands (`cdw datasets download`, `cdw evaluate`) report through the same values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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
    /// The clustering metrics after an epoch (SPEC 2.6), with their running maxima. Serialised
    /// flat: `nmi_backbone, ..., acc_feature, best_nmi_backbone, ..., best_acc_feature`.
    Evaluation {
        epoch: i64,
        /// Images evaluated (the whole set, or the fraction `evaluation_mode` asks for).
        samples: usize,
        /// k of k-means: the distinct labels among them.
        clusters: usize,
        /// The scores of this evaluation.
        #[serde(flatten)]
        current: Scores,
        /// The records' running maxima, which include `current`.
        #[serde(flatten, with = "best_prefixed")]
        best: Scores,
        seconds: f64,
    },
    /// How far the evaluation after `epoch` has got, so a long one visibly moves: reported after
    /// each batch of the embedding pass, each k-means restart and every 50 t-SNE iterations.
    EvaluationProgress {
        epoch: i64,
        stage: EvaluationStage,
        /// The output being clustered or mapped (`backbone` or `feature`); absent while embedding.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<Space>,
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
        tag: ModelTag,
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
    /// The run (or download, or evaluation) failed with this error.
    Failed { error: String },
    /// How far `cdw datasets download` has got: bytes of the archive downloaded, hashed or
    /// extracted (`total` absent when the server does not say); `check` reads the result.
    DownloadProgress {
        dataset: String,
        stage: DownloadStage,
        done: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// The dataset is present and complete in `path` (downloaded now, or already there).
    Downloaded { dataset: String, path: String },
    /// The dataset cannot be downloaded by cdw (ImageNet-10): how to get it by hand.
    DownloadManual {
        dataset: String,
        instructions: String,
    },
    /// What `cdw evaluate` measured.
    EvaluateResult { report: EvaluateReport },
}

/// The stages of a dataset download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadStage {
    /// Fetching the archive (done/total: bytes).
    Download,
    /// Checking the archive's MD5 (done/total: bytes).
    Md5,
    /// Extracting the archive (done/total: archive bytes read).
    Extract,
    /// Reading the extracted dataset to check it.
    Check,
}

impl fmt::Display for DownloadStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DownloadStage::Download => "download",
            DownloadStage::Md5 => "md5",
            DownloadStage::Extract => "extract",
            DownloadStage::Check => "check",
        })
    }
}

/// The report of `cdw evaluate`: the clustering scores of a model on the whole evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
    pub dataset: String,
    pub method: String,
    pub model: EvaluatedModel,
    pub device: String,
    pub samples: usize,
    pub clusters: usize,
    pub backbone: SpaceScores,
    pub feature: SpaceScores,
    pub seconds: f64,
    /// The `.npy` dumps and t-SNE files written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

/// What `cdw evaluate` evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum EvaluatedModel {
    /// A weights file: a cdw model or checkpoint, or a state_dict.
    File(PathBuf),
    /// No model given: the network as initialised from the seed (a baseline, not a result).
    Initialised,
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
    pub fn label(self, space: Option<Space>) -> String {
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

/// Which network output is clustered or mapped: the backbone's `h` or the final output (`f`, or
/// `z` for SimCLR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    Backbone,
    Feature,
}

impl Space {
    pub const ALL: [Space; 2] = [Space::Backbone, Space::Feature];

    /// `backbone` or `feature`, as files and events name it.
    pub fn name(self) -> &'static str {
        match self {
            Space::Backbone => "backbone",
            Space::Feature => "feature",
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// NMI, ARI and ACC of one clustering (of one [`Space`]) against the labels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SpaceScores {
    pub nmi: f64,
    pub ari: f64,
    pub acc: f64,
}

/// The six clustering scores of one evaluation: NMI / ARI / ACC of the backbone and of the final
/// output. The same type holds an evaluation's scores and their running maxima.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Scores {
    pub nmi_backbone: f64,
    pub ari_backbone: f64,
    pub acc_backbone: f64,
    pub nmi_feature: f64,
    pub ari_feature: f64,
    pub acc_feature: f64,
}

impl Scores {
    /// The field names in field order, as `evaluation.csv`, the records CSV and the events name
    /// the scores; [`Scores::values`] gives the values in the same order.
    pub const NAMES: [&'static str; 6] = [
        "nmi_backbone",
        "ari_backbone",
        "acc_backbone",
        "nmi_feature",
        "ari_feature",
        "acc_feature",
    ];

    /// The values in the order of [`Scores::NAMES`].
    pub fn values(&self) -> [f64; 6] {
        [
            self.nmi_backbone,
            self.ari_backbone,
            self.acc_backbone,
            self.nmi_feature,
            self.ari_feature,
            self.acc_feature,
        ]
    }

    /// The scores whose values, in the order of [`Scores::NAMES`], are `v`.
    pub fn from_values(v: [f64; 6]) -> Scores {
        let [nmi_backbone, ari_backbone, acc_backbone, nmi_feature, ari_feature, acc_feature] = v;
        Scores {
            nmi_backbone,
            ari_backbone,
            acc_backbone,
            nmi_feature,
            ari_feature,
            acc_feature,
        }
    }

    /// The scores whose value of each of [`Scores::NAMES`] is `value(name)`.
    pub fn from_names(value: impl FnMut(&'static str) -> f64) -> Scores {
        Scores::from_values(Scores::NAMES.map(value))
    }

    /// The scores of the two clusterings.
    pub fn from_spaces(backbone: SpaceScores, feature: SpaceScores) -> Scores {
        let [b, f] = [backbone, feature];
        Scores::from_values([b.nmi, b.ari, b.acc, f.nmi, f.ari, f.acc])
    }

    /// The three scores of one clustering.
    pub fn space(&self, space: Space) -> SpaceScores {
        let v = self.values();
        let at = match space {
            Space::Backbone => 0,
            Space::Feature => 3,
        };
        SpaceScores {
            nmi: v[at],
            ari: v[at + 1],
            acc: v[at + 2],
        }
    }

    /// `(name, value)` in the order of [`Scores::NAMES`].
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f64)> {
        Scores::NAMES.into_iter().zip(self.values())
    }

    /// The score called `name` (one of [`Scores::NAMES`]).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.named().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Each score the larger of the two.
    pub fn max(&self, other: &Scores) -> Scores {
        let (a, b) = (self.values(), other.values());
        Scores::from_values(std::array::from_fn(|i| a[i].max(b[i])))
    }

    /// The selection score of the "best" model: the larger of the two NMIs (SPEC 2.5).
    pub fn best_nmi(&self) -> f64 {
        self.nmi_backbone.max(self.nmi_feature)
    }
}

/// (De)serialises [`Scores`] with every name prefixed `best_`, so an evaluation's running maxima
/// sit flat beside its scores (`best_nmi_backbone`, ...).
mod best_prefixed {
    use std::fmt;

    use serde::de::{Error, MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Scores;

    const PREFIX: &str = "best_";

    pub fn serialize<S: Serializer>(scores: &Scores, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(scores.named().map(|(n, v)| (format!("{PREFIX}{n}"), v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scores, D::Error> {
        struct Prefixed;
        impl<'de> Visitor<'de> for Prefixed {
            type Value = Scores;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "the six scores named {PREFIX}<score>")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scores, A::Error> {
                let mut values = [None; 6];
                while let Some(key) = map.next_key::<String>()? {
                    let slot = key
                        .strip_prefix(PREFIX)
                        .and_then(|n| Scores::NAMES.iter().position(|m| *m == n));
                    match slot {
                        Some(i) => values[i] = Some(map.next_value::<f64>()?),
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let mut out = [0.0; 6];
                for ((slot, value), name) in out.iter_mut().zip(values).zip(Scores::NAMES) {
                    *slot = value.ok_or_else(|| {
                        A::Error::custom(format!("missing field `{PREFIX}{name}`"))
                    })?;
                }
                Ok(Scores::from_values(out))
            }
        }
        d.deserialize_map(Prefixed)
    }
}

/// Which saved network a `model_{tag}` file holds: the one of a 100-epoch mark, the best so far,
/// or the last. Written `epoch_N`, `best` or `final` (in file names and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelTag {
    Epoch(i64),
    Best,
    Final,
}

impl fmt::Display for ModelTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelTag::Epoch(n) => write!(f, "epoch_{n}"),
            ModelTag::Best => f.write_str("best"),
            ModelTag::Final => f.write_str("final"),
        }
    }
}

impl FromStr for ModelTag {
    type Err = String;

    fn from_str(s: &str) -> Result<ModelTag, String> {
        match s {
            "best" => Ok(ModelTag::Best),
            "final" => Ok(ModelTag::Final),
            _ => s
                .strip_prefix("epoch_")
                .and_then(|n| n.parse().ok())
                .map(ModelTag::Epoch)
                .ok_or_else(|| format!("`{s}` is not a model tag (epoch_N, best or final)")),
        }
    }
}

impl Serialize for ModelTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ModelTag, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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
        for r in &mut self.0 {
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
            space: Some(Space::Feature),
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
            EvaluationStage::Tsne.label(Some(Space::Backbone)),
            "t-SNE backbone"
        );
    }

    fn scores(x: f64) -> Scores {
        Scores::from_values([x, x / 2.0, x + 0.25, x - 0.125, -x, x / 4.0])
    }

    #[test]
    fn an_evaluation_serialises_flat_with_best_prefixed() {
        let e = Event::Evaluation {
            epoch: 3,
            samples: 1024,
            clusters: 4,
            current: scores(0.5),
            best: Scores {
                ari_feature: 0.0,
                ..scores(0.75)
            },
            seconds: 1.5,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"evaluation","epoch":3,"samples":1024,"clusters":4,"nmi_backbone":0.5,"ari_backbone":0.25,"acc_backbone":0.75,"nmi_feature":0.375,"ari_feature":-0.5,"acc_feature":0.125,"best_nmi_backbone":0.75,"best_ari_backbone":0.375,"best_acc_backbone":1.0,"best_nmi_feature":0.625,"best_ari_feature":0.0,"best_acc_feature":0.1875,"seconds":1.5}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        let torn = json.replace(r#""best_acc_feature":0.1875,"#, "");
        let err = serde_json::from_str::<Event>(&torn)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `best_acc_feature`"), "{err}");
    }

    #[test]
    fn scores_name_their_values_in_one_order() {
        let s = scores(0.5);
        let json = serde_json::to_value(s).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names = Scores::NAMES.to_vec();
        keys.sort_unstable();
        names.sort_unstable();
        assert_eq!(keys, names);
        for (name, value) in s.named() {
            assert_eq!(json[name].as_f64(), Some(value), "{name}");
            assert_eq!(s.get(name), Some(value));
        }
        assert_eq!(s.get("seconds"), None);
        assert_eq!(Scores::from_names(|n| s.get(n).unwrap()), s);
        let (b, f) = (s.space(Space::Backbone), s.space(Space::Feature));
        assert_eq!((b.nmi, b.ari, b.acc), (0.5, 0.25, 0.75));
        assert_eq!((f.nmi, f.ari, f.acc), (0.375, -0.5, 0.125));
        assert_eq!(Scores::from_spaces(b, f), s);
        assert_eq!(s.best_nmi(), 0.5);
        let m = s.max(&scores(0.25));
        assert_eq!(m.ari_feature, -0.25);
        assert_eq!(m.nmi_backbone, 0.5);
    }

    #[test]
    fn model_tags_read_and_write_as_file_names_do() {
        for (tag, text) in [
            (ModelTag::Epoch(300), "epoch_300"),
            (ModelTag::Best, "best"),
            (ModelTag::Final, "final"),
        ] {
            assert_eq!(tag.to_string(), text);
            assert_eq!(text.parse::<ModelTag>(), Ok(tag));
        }
        let e = Event::ModelSaved {
            epoch: 100,
            tag: ModelTag::Epoch(100),
            path: "m".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"model_saved","epoch":100,"tag":"epoch_100","path":"m"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        assert!("epoch_x".parse::<ModelTag>().is_err());
        assert_eq!(Space::Feature.to_string(), "feature");
    }

    #[test]
    fn the_other_commands_events_have_their_documented_json() {
        let report = EvaluateReport {
            dataset: "shapes".into(),
            method: "cd".into(),
            model: EvaluatedModel::File("m.safetensors".into()),
            device: "cpu".into(),
            samples: 64,
            clusters: 4,
            backbone: SpaceScores {
                nmi: 0.5,
                ari: 0.25,
                acc: 0.75,
            },
            feature: SpaceScores::default(),
            seconds: 2.0,
            files: Vec::new(),
        };
        let e = Event::EvaluateResult { report };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"evaluate_result","report":{"dataset":"shapes","method":"cd","model":{"kind":"file","path":"m.safetensors"},"device":"cpu","samples":64,"clusters":4,"backbone":{"nmi":0.5,"ari":0.25,"acc":0.75},"feature":{"nmi":0.0,"ari":0.0,"acc":0.0},"seconds":2.0}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        assert_eq!(
            serde_json::to_string(&EvaluatedModel::Initialised).unwrap(),
            r#"{"kind":"initialised"}"#
        );
        for (e, json) in [
            (
                Event::DownloadProgress {
                    dataset: "stl10".into(),
                    stage: DownloadStage::Check,
                    done: 0,
                    total: None,
                },
                r#"{"event":"download_progress","dataset":"stl10","stage":"check","done":0}"#,
            ),
            (
                Event::Downloaded {
                    dataset: "stl10".into(),
                    path: "data/stl10_binary".into(),
                },
                r#"{"event":"downloaded","dataset":"stl10","path":"data/stl10_binary"}"#,
            ),
            (
                Event::DownloadManual {
                    dataset: "imagenet10".into(),
                    instructions: "get it".into(),
                },
                r#"{"event":"download_manual","dataset":"imagenet10","instructions":"get it"}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
            assert_eq!(serde_json::from_str::<Event>(json).unwrap(), e);
        }
        assert_eq!(DownloadStage::Md5.to_string(), "md5");
    }
}
