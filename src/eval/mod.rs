//! Clustering evaluation (SPEC 2.6): embeddings of the evaluation set in eval mode, k-means on
//! them, NMI / ARI / ACC against the labels, the `evaluation_mode` schedule during training, and
//! t-SNE pictures. The running best values live in the run's records
//! ([`crate::store::records::RunRecords`]), which checkpoints carry across a resume.
//!
//! Long work reports [`Progress`] through a callback, so the same code drives the progress bar of
//! `cdw evaluate`, the [`Event::EvaluationProgress`] events of a training run, and tests. The
//! callback can ask to stop: the embedding pass stops after the batch, k-means and t-SNE after the
//! output they are working on, with [`EvalError::Interrupted`].

pub mod embed;
pub mod kmeans;
pub mod metrics;
pub mod npy;
pub mod picture;
pub mod tsne;

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::Device;

use crate::config::{Config, EvaluationMode};
use crate::data::ImageSet;
pub use crate::events::Space;
use crate::events::{EvaluationStage, Event, Reporter, Scores, SpaceScores};
use crate::model::CdNet;
use crate::store::records::RunRecords;
use crate::store::{is_mark, write_atomic, StoreError};
pub use embed::{embed, EmbedSettings, Embeddings};
pub use kmeans::{kmeans, KMeansError, KMeansParams, KMeansResult};
pub use metrics::MetricsError;
pub use tsne::{tsne, TsneError, TsneParams, TsneResult};

/// Samples in a t-SNE map.
pub const TSNE_SAMPLES: usize = 1000;
/// t-SNE pictures are drawn only up to this many classes (SPEC 2.5).
pub const TSNE_MAX_CLASSES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("nothing to evaluate: the evaluation set is empty")]
    Empty,
    #[error("k-means on the {space} output: {source}")]
    KMeans { space: Space, source: KMeansError },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("t-SNE of the {space} output: {source}")]
    Tsne { space: Space, source: TsneError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the picture {path} as PNG: {reason}")]
    Picture { path: PathBuf, reason: String },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// The progress callback asked to stop (a Ctrl-C during training).
    #[error("the evaluation was interrupted")]
    Interrupted,
}

/// Where a long evaluation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Embedding {
        done: usize,
        total: usize,
    },
    KMeans {
        space: Space,
        restart: usize,
        restarts: usize,
    },
    Tsne {
        space: Space,
        iteration: usize,
        iterations: usize,
    },
}

impl Progress {
    /// The stage, the output it works on (none while embedding), and done / total.
    pub fn parts(self) -> (EvaluationStage, Option<Space>, usize, usize) {
        match self {
            Progress::Embedding { done, total } => (EvaluationStage::Embedding, None, done, total),
            Progress::KMeans {
                space,
                restart,
                restarts,
            } => (EvaluationStage::Kmeans, Some(space), restart, restarts),
            Progress::Tsne {
                space,
                iteration,
                iterations,
            } => (EvaluationStage::Tsne, Some(space), iteration, iterations),
        }
    }

    /// What a progress bar calls this stage (`embedding`, `k-means backbone`, ...).
    pub fn label(self) -> String {
        let (stage, space, ..) = self.parts();
        stage.label(space)
    }

    /// This progress as the event of the evaluation after `epoch`.
    pub fn event(self, epoch: i64) -> Event {
        let (stage, space, done, total) = self.parts();
        Event::EvaluationProgress {
            epoch,
            stage,
            space,
            done,
            total,
        }
    }
}

/// The six numbers of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evaluation {
    pub backbone: SpaceScores,
    pub feature: SpaceScores,
    /// Images evaluated.
    pub samples: usize,
    /// k of k-means: the distinct labels among them.
    pub clusters: usize,
    pub seconds: f64,
}

/// An evaluation with what it was computed from (for `--dump` and pictures).
#[derive(Debug)]
pub struct Clustering {
    pub evaluation: Evaluation,
    pub embeddings: Embeddings,
    pub backbone_clusters: Vec<i64>,
    pub feature_clusters: Vec<i64>,
}

fn embed_settings(cfg: &Config, device: Device) -> EmbedSettings {
    EmbedSettings {
        image_size: cfg.image_size as u32,
        batch_size: cfg.batch_size.max(1) as usize,
        workers: cfg.workers,
        device,
    }
}

/// Scores `net` on the images `subset` of `set` (all of them when `None`): embeddings in eval mode
/// on `device`, k-means (k = distinct labels, 10 restarts, `cfg.seed`) on `h` and on the final
/// output, NMI / ARI / ACC of each.
pub fn evaluate(
    net: &CdNet,
    set: &ImageSet,
    subset: Option<&[usize]>,
    cfg: &Config,
    device: Device,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<Evaluation, EvalError> {
    Ok(cluster(net, set, subset, cfg, device, progress)?.evaluation)
}

/// [`evaluate`], keeping the embeddings and the cluster assignments.
pub fn cluster(
    net: &CdNet,
    set: &ImageSet,
    subset: Option<&[usize]>,
    cfg: &Config,
    device: Device,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<Clustering, EvalError> {
    let start = Instant::now();
    let all: Vec<usize>;
    let indices = if let Some(s) = subset {
        s
    } else {
        all = (0..set.len()).collect();
        &all
    };
    if indices.is_empty() {
        return Err(EvalError::Empty);
    }
    let embeddings = embed(
        net,
        set,
        indices,
        embed_settings(cfg, device),
        &mut |done, total| progress(Progress::Embedding { done, total }),
    )?;
    let mut classes = embeddings.labels.clone();
    classes.sort_unstable();
    classes.dedup();
    let params = KMeansParams::new(classes.len(), cfg.seed);
    let mut run = |space: Space, x: &tch::Tensor| -> Result<(Vec<i64>, SpaceScores), EvalError> {
        let km = stops_after(progress, |report| {
            kmeans(x, &params, &mut |restart, restarts| {
                report(Progress::KMeans {
                    space,
                    restart,
                    restarts,
                });
            })
            .map_err(|source| EvalError::KMeans { space, source })
        })?;
        let scores = metrics::scores(&embeddings.labels, &km.labels)?;
        Ok((km.labels, scores))
    };
    let (backbone_clusters, backbone) = run(Space::Backbone, &embeddings.h)?;
    let (feature_clusters, feature) = run(Space::Feature, &embeddings.f)?;
    Ok(Clustering {
        evaluation: Evaluation {
            backbone,
            feature,
            samples: indices.len(),
            clusters: classes.len(),
            seconds: start.elapsed().as_secs_f64(),
        },
        embeddings,
        backbone_clusters,
        feature_clusters,
    })
}

/// Runs `work`, which cannot stop midway (k-means, t-SNE), with a sink that passes its progress
/// on; a break asked for meanwhile turns the finished work into [`EvalError::Interrupted`].
fn stops_after<T>(
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
    work: impl FnOnce(&mut dyn FnMut(Progress)) -> Result<T, EvalError>,
) -> Result<T, EvalError> {
    let mut stop = false;
    let done = work(&mut |p| stop |= progress(p).is_break())?;
    if stop {
        Err(EvalError::Interrupted)
    } else {
        Ok(done)
    }
}

/// The images evaluated during training under `mode`: `None` for the whole set, or for a fraction
/// a subset of `round(fraction * len)` images (at least one) drawn once from `seed`, sorted.
pub fn evaluation_subset(mode: EvaluationMode, len: usize, seed: u64) -> Option<Vec<usize>> {
    match mode {
        EvaluationMode::All | EvaluationMode::None => None,
        EvaluationMode::Fraction(f) if f >= 1.0 => None,
        EvaluationMode::Fraction(f) => {
            let count = ((f * len as f64).round() as usize).clamp(1.min(len), len);
            Some(sample_sorted(len, count, seed ^ 0x6576_616c_7375_6273)) // "evalsubs"
        }
    }
}

/// The fixed random images of the t-SNE maps: `TSNE_SAMPLES` of `len` (all when fewer), sorted.
pub fn tsne_subset(len: usize, seed: u64) -> Vec<usize> {
    sample_sorted(len, TSNE_SAMPLES.min(len), seed ^ 0x7473_6e65_7361_6d70) // "tsnesamp"
}

fn sample_sorted(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = rand::seq::index::sample(&mut rng, len, count).into_vec();
    v.sort_unstable();
    v
}

/// Whether training evaluates after `epoch` (1-based) of `epochs` under `mode`: every epoch, or
/// for `none` only at each 100-epoch mark and after the last epoch.
pub fn evaluates_at(mode: EvaluationMode, epoch: i64, epochs: i64) -> bool {
    match mode {
        EvaluationMode::All | EvaluationMode::Fraction(_) => true,
        EvaluationMode::None => epoch == epochs || is_mark(epoch),
    }
}

/// Whether training draws the t-SNE pictures after `epoch`: at each 100-epoch mark, for at most
/// 20 classes.
pub fn tsne_at(epoch: i64, classes: usize) -> bool {
    is_mark(epoch) && classes <= TSNE_MAX_CLASSES
}

impl Evaluation {
    /// The six numbers, as the records and events hold them.
    pub fn scores(&self) -> Scores {
        Scores::from_spaces(self.backbone, self.feature)
    }

    /// The event that reports this evaluation at `epoch`, with the running maxima `best` (the
    /// records' best values, which include this one).
    pub fn event(&self, epoch: i64, best: Scores) -> Event {
        Event::Evaluation {
            epoch,
            samples: self.samples,
            clusters: self.clusters,
            current: self.scores(),
            best,
            seconds: self.seconds,
        }
    }
}

/// Two t-SNE maps (of `h` and of the final output) of the same images.
#[derive(Debug, Clone)]
pub struct TsneMaps {
    pub indices: Vec<usize>,
    pub labels: Vec<i64>,
    pub backbone: TsneResult,
    pub feature: TsneResult,
}

/// t-SNE maps of the [`tsne_subset`] images of `set`.
pub fn tsne_maps(
    net: &CdNet,
    set: &ImageSet,
    cfg: &Config,
    device: Device,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<TsneMaps, EvalError> {
    let indices = tsne_subset(set.len(), cfg.seed);
    if indices.len() < 2 {
        return Err(EvalError::Empty);
    }
    let e = embed(
        net,
        set,
        &indices,
        embed_settings(cfg, device),
        &mut |done, total| progress(Progress::Embedding { done, total }),
    )?;
    let params = TsneParams {
        // Fewer samples than the perplexity allows (tiny sets): shrink it as far as needed.
        perplexity: 30f64.min((indices.len() as f64 - 1.0) / 3.0).max(1.0),
        ..TsneParams::default()
    };
    let mut map = |space: Space, x: &tch::Tensor| {
        stops_after(progress, |report| {
            tsne(x, &params, &mut |iteration, iterations| {
                report(Progress::Tsne {
                    space,
                    iteration,
                    iterations,
                });
            })
            .map_err(|source| EvalError::Tsne { space, source })
        })
    };
    let backbone = map(Space::Backbone, &e.h)?;
    let feature = map(Space::Feature, &e.f)?;
    Ok(TsneMaps {
        indices,
        labels: e.labels,
        backbone,
        feature,
    })
}

impl TsneMaps {
    /// Writes `{stem}_backbone.png`, `{stem}_feature.png` and `{stem}.csv` (columns
    /// `index,label,backbone_x,backbone_y,feature_x,feature_y`) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, EvalError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        for (space, map) in [
            (Space::Backbone, &self.backbone),
            (Space::Feature, &self.feature),
        ] {
            let path = dir.join(format!("{stem}_{space}.png"));
            let img = picture::scatter(&map.points, &self.labels);
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| EvalError::Picture {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            write_atomic(&path, &png)?;
            written.push(path);
        }
        let mut csv = String::from("index,label,backbone_x,backbone_y,feature_x,feature_y\n");
        for (i, (&index, label)) in self.indices.iter().zip(&self.labels).enumerate() {
            let (b, f) = (self.backbone.points[i], self.feature.points[i]);
            let _ = writeln!(csv, "{index},{label},{},{},{},{}", b[0], b[1], f[0], f[1]);
        }
        let path = dir.join(format!("{stem}.csv"));
        write_atomic(&path, csv.as_bytes())?;
        written.push(path);
        Ok(written)
    }
}

/// Reports `p` as an event of the evaluation after `epoch`, then asks `stop` whether to go on.
fn report_progress(
    reporter: &mut dyn Reporter,
    stop: &dyn Fn() -> bool,
    epoch: i64,
    p: Progress,
) -> ControlFlow<()> {
    reporter.report(&p.event(epoch));
    if stop() {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// Evaluation during training: the subset drawn once, the schedule, and the t-SNE pictures at
/// each 100-epoch mark.
#[derive(Debug)]
pub struct Evaluator {
    set: Arc<ImageSet>,
    cfg: Config,
    subset: Option<Vec<usize>>,
    classes: usize,
    /// Where the t-SNE pictures go (the run's `tsne/` folder); none: no pictures.
    tsne_dir: Option<PathBuf>,
}

impl Evaluator {
    /// Evaluates on `set` as `cfg` says, drawing the t-SNE pictures into `tsne_dir` (none: no
    /// pictures).
    pub fn new(cfg: &Config, set: Arc<ImageSet>, tsne_dir: Option<PathBuf>) -> Evaluator {
        let subset = evaluation_subset(cfg.evaluation_mode, set.len(), cfg.seed);
        let classes = cfg
            .class_num
            .map_or_else(|| set.distinct_labels(), |c| c as usize);
        Evaluator {
            cfg: cfg.clone(),
            subset,
            classes,
            set,
            tsne_dir,
        }
    }

    /// After `epoch`: evaluates when the mode says so, folds the scores into `records` (running
    /// best, best-model epoch) and reports an [`Event::Evaluation`]; at each 100-epoch mark it also
    /// writes the t-SNE pictures (when a folder is set and there are at most 20 classes).
    ///
    /// Progress goes out as [`Event::EvaluationProgress`]; after each report `stop()` is asked
    /// whether to cut the work short. A cut-short evaluation reports and records nothing (`None`);
    /// cut-short pictures are not written.
    pub fn after_epoch(
        &mut self,
        net: &CdNet,
        device: Device,
        epoch: i64,
        records: &mut RunRecords,
        reporter: &mut dyn Reporter,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Evaluation>, EvalError> {
        if !evaluates_at(self.cfg.evaluation_mode, epoch, self.cfg.epochs) {
            return Ok(None);
        }
        let evaluation = match evaluate(
            net,
            &self.set,
            self.subset.as_deref(),
            &self.cfg,
            device,
            &mut |p| report_progress(reporter, stop, epoch, p),
        ) {
            Err(EvalError::Interrupted) => return Ok(None),
            e => e?,
        };
        records.observe(epoch, evaluation.scores());
        reporter.report(&evaluation.event(epoch, records.best));
        let done = Ok(Some(evaluation));
        if let Some(dir) = &self.tsne_dir {
            if tsne_at(epoch, self.classes) {
                let mut progress = |p| report_progress(reporter, stop, epoch, p);
                let maps = match tsne_maps(net, &self.set, &self.cfg, device, &mut progress) {
                    Err(EvalError::Interrupted) => return done,
                    m => m?,
                };
                let files = maps.write(dir, &format!("epoch_{epoch:04}"))?;
                reporter.report(&Event::TsneWritten {
                    epoch,
                    files: files.iter().map(|f| f.display().to_string()).collect(),
                });
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::data::shapes;
    use crate::events::Collect;
    use crate::model::NetSpec;
    use tch::nn;

    #[test]
    fn schedule_follows_the_mode() {
        let none = EvaluationMode::None;
        let at: Vec<i64> = (1..=250).filter(|&e| evaluates_at(none, e, 250)).collect();
        assert_eq!(at, [100, 200, 250]);
        assert!((1..=5).all(|e| evaluates_at(EvaluationMode::All, e, 5)));
        assert!(evaluates_at(EvaluationMode::Fraction(0.1), 3, 5));
        assert!(tsne_at(200, 20) && !tsne_at(200, 21) && !tsne_at(150, 10) && !tsne_at(0, 1));
    }

    #[test]
    fn fraction_subset_is_drawn_once_from_the_seed() {
        assert_eq!(evaluation_subset(EvaluationMode::All, 100, 1), None);
        assert_eq!(evaluation_subset(EvaluationMode::None, 100, 1), None);
        assert_eq!(
            evaluation_subset(EvaluationMode::Fraction(1.0), 100, 1),
            None
        );
        let a = evaluation_subset(EvaluationMode::Fraction(0.1), 1000, 42).unwrap();
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && *a.last().unwrap() < 1000);
        assert_eq!(
            Some(a.clone()),
            evaluation_subset(EvaluationMode::Fraction(0.1), 1000, 42)
        );
        assert_ne!(
            Some(a),
            evaluation_subset(EvaluationMode::Fraction(0.1), 1000, 43)
        );
        assert_eq!(
            evaluation_subset(EvaluationMode::Fraction(0.001), 10, 1)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(tsne_subset(5000, 42).len(), 1000);
        assert_eq!(tsne_subset(300, 42), (0..300).collect::<Vec<_>>());
    }

    fn shapes_setup(extra: &[&str]) -> (Config, ImageSet, nn::VarStore, CdNet) {
        let mut over: Vec<String> = [
            "image_size=32",
            "hidden_dim=16",
            "feature_num=8",
            "batch_size=16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        over.extend(extra.iter().map(|s| s.to_string()));
        let cfg = ConfigFile::builtin().resolve("shapes", &over).unwrap();
        let (set, _) = shapes::generate(48, 32, 3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CdNet::new(&vs.root(), NetSpec::from_config(&cfg), cfg.seed);
        (cfg, set, vs, net)
    }

    #[test]
    fn evaluate_scores_both_outputs_and_reports_progress() {
        let (cfg, set, _vs, net) = shapes_setup(&[]);
        let mut seen = Vec::new();
        let c = cluster(&net, &set, None, &cfg, Device::Cpu, &mut |p| {
            seen.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
        let e = c.evaluation;
        assert_eq!((e.samples, e.clusters), (48, set.distinct_labels()));
        for s in [e.backbone, e.feature] {
            assert!((0.0..=1.0).contains(&s.nmi) && (0.0..=1.0).contains(&s.acc));
            assert!(
                s.acc >= 1.0 / e.clusters as f64 - 1e-12,
                "ACC below chance: {s:?}"
            );
        }
        // The reported numbers are the metrics of the kept assignments.
        let again = metrics::scores(&c.embeddings.labels, &c.feature_clusters).unwrap();
        assert_eq!(again, e.feature);
        assert_eq!(
            seen.first(),
            Some(&Progress::Embedding {
                done: 16,
                total: 48
            })
        );
        assert!(seen.contains(&Progress::KMeans {
            space: Space::Feature,
            restart: 10,
            restarts: 10
        }));
        // Deterministic: same network, same numbers.
        let e2 = evaluate(&net, &set, None, &cfg, Device::Cpu, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((e2.backbone, e2.feature), (e.backbone, e.feature));
        let err = evaluate(&net, &set, Some(&[]), &cfg, Device::Cpu, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "nothing to evaluate: the evaluation set is empty"
        );
    }

    #[test]
    fn a_break_during_kmeans_or_tsne_ends_after_that_output() {
        let (cfg, set, _vs, net) = shapes_setup(&[]);
        let mut seen = Vec::new();
        let err = cluster(&net, &set, None, &cfg, Device::Cpu, &mut |p| {
            seen.push(p.label());
            match p {
                Progress::KMeans { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .unwrap_err();
        assert!(matches!(err, EvalError::Interrupted), "{err}");
        // The backbone's restarts all ran (they advance together); the feature's never started.
        assert_eq!(seen.iter().filter(|l| *l == "k-means backbone").count(), 10);
        assert!(!seen.iter().any(|l| l.contains("feature")), "{seen:?}");
        let mut seen = Vec::new();
        let err = tsne_maps(&net, &set, &cfg, Device::Cpu, &mut |p| {
            seen.push(p.label());
            match p {
                Progress::Tsne { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .unwrap_err();
        assert!(matches!(err, EvalError::Interrupted), "{err}");
        assert!(seen.iter().any(|l| l == "t-SNE backbone"));
        assert!(!seen.iter().any(|l| l == "t-SNE feature"), "{seen:?}");
    }

    #[test]
    fn evaluator_reports_on_schedule_and_writes_pictures_at_marks() {
        let (mut cfg, set, _vs, net) = shapes_setup(&["evaluation_mode=0.5"]);
        cfg.epochs = 100;
        let dir = tempfile::tempdir().unwrap();
        let mut evaluator = Evaluator::new(&cfg, Arc::new(set), Some(dir.path().join("tsne")));
        let mut events = Collect::default();
        let mut records = RunRecords::default();
        let first = evaluator
            .after_epoch(&net, Device::Cpu, 1, &mut records, &mut events, &|| false)
            .unwrap()
            .unwrap();
        // A new best NMI: the "best" model is due at this epoch.
        assert_eq!(records.best_epoch, Some(1));
        // The records' running maxima start at 0, as the reference's do (ARI can be negative).
        let e = first.scores();
        assert_eq!(records.best.nmi_feature, e.nmi_feature);
        assert_eq!(records.best.ari_backbone, e.ari_backbone.max(0.0));
        assert_eq!(records.best_nmi, e.nmi_backbone.max(e.nmi_feature));
        assert_eq!(first.samples, 24);
        assert!(
            !dir.path().join("tsne").exists(),
            "no pictures before epoch 100"
        );
        // Same network, same scores: no improvement the second time.
        let again = evaluator
            .after_epoch(&net, Device::Cpu, 100, &mut records, &mut events, &|| false)
            .unwrap();
        assert!(again.is_some());
        assert_eq!(records.best_epoch, Some(1));
        // Each evaluation shows its progress: the embedding pass batch by batch, then the ten
        // k-means restarts of each output, then the scores; at the mark the t-SNE maps follow.
        let progress = |e: &Event| match e {
            Event::EvaluationProgress {
                epoch,
                stage,
                space,
                done,
                total,
            } => format!("{epoch} {} {done}/{total}", stage.label(*space)),
            Event::Evaluation { epoch, samples, .. } => format!("{epoch} scores of {samples}"),
            Event::TsneWritten { epoch, files } => format!("{epoch} wrote {}", files.len()),
            other => panic!("unexpected event {other:?}"),
        };
        let lines: Vec<String> = events.0.iter().map(progress).collect();
        let kmeans = |epoch: i64, space: &str| -> Vec<String> {
            (1..=10)
                .map(|r| format!("{epoch} k-means {space} {r}/10"))
                .collect()
        };
        let mut expected = vec!["1 embedding 16/24".to_string(), "1 embedding 24/24".into()];
        expected.extend(kmeans(1, "backbone"));
        expected.extend(kmeans(1, "feature"));
        expected.push("1 scores of 24".into());
        expected.extend([
            "100 embedding 16/24".to_string(),
            "100 embedding 24/24".into(),
        ]);
        expected.extend(kmeans(100, "backbone"));
        expected.extend(kmeans(100, "feature"));
        expected.push("100 scores of 24".into());
        expected.extend(["16/48", "32/48", "48/48"].map(|d| format!("100 embedding {d}")));
        assert_eq!(lines[..expected.len()], expected[..], "{lines:#?}");
        // t-SNE reports every 50 iterations of each map (it may stop early once converged).
        let tsne = &lines[expected.len()..lines.len() - 1];
        let backbone = tsne
            .iter()
            .filter(|l| l.starts_with("100 t-SNE backbone "))
            .count();
        assert!(backbone >= 5, "{tsne:#?}");
        assert_eq!(tsne[0], "100 t-SNE backbone 50/1000");
        assert!(tsne[backbone..]
            .iter()
            .all(|l| l.starts_with("100 t-SNE feature ")));
        assert!(tsne.len() > backbone, "{tsne:#?}");
        assert_eq!(lines.last().unwrap(), "100 wrote 3");
        let Some(Event::TsneWritten { files, .. }) = events.0.last() else {
            unreachable!()
        };
        assert!(files[2].ends_with("tsne/epoch_0100.csv"), "{files:?}");
        let csv = std::fs::read_to_string(dir.path().join("tsne/epoch_0100.csv")).unwrap();
        assert_eq!(csv.lines().count(), 49);
        assert!(csv.starts_with("index,label,backbone_x,backbone_y,feature_x,feature_y\n0,"));
        let png = image::open(dir.path().join("tsne/epoch_0100_feature.png")).unwrap();
        assert_eq!(png.width(), 890);
        assert!(dir.path().join("tsne/epoch_0100_backbone.png").exists());
    }
}
