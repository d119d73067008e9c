//! Run directories and the files a run leaves behind: the resolved config, the per-epoch metrics
//! CSV, the append-only event log (JSON lines another process can follow), and the run status.
//!
//! Layout: `<records>/<dataset>/<experiment>/{config.yaml, metrics.csv, evaluation.csv, events.jsonl,
//! status.json, records_<experiment>.csv, lock, tsne/}` and `<checkpoints>/<dataset>/<experiment>/` (see [`checkpoint`]).

pub mod checkpoint;
pub mod follow;
pub mod interchange;
pub mod lock;
pub mod records;
pub mod runs;
pub mod table;
pub mod tensors;
pub mod torch_file;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::events::{Event, Reporter, Scores};
use checkpoint::CheckpointDir;

/// Columns of `metrics.csv`, one row per completed epoch.
pub const METRICS_HEADER: &str =
    "epoch,instance_loss,feature_loss,total_loss,lr,seconds,images_per_sec";

/// Columns of `evaluation.csv`, one row per evaluated epoch (SPEC 2.6): `epoch,samples,clusters`,
/// the six [`Scores`] (`nmi_backbone,...,acc_feature`), the same prefixed `best_`, `seconds`.
pub fn evaluation_header() -> String {
    let mut header = String::from("epoch,samples,clusters");
    for prefix in ["", "best_"] {
        for name in Scores::NAMES {
            header.push_str(&format!(",{prefix}{name}"));
        }
    }
    header.push_str(",seconds");
    header
}

/// Every this many epochs is a mark (SPEC 2.5): training evaluates whatever `evaluation_mode`
/// says and draws the t-SNE pictures, the records get a column, a checkpoint is kept and the
/// model saved. One number for all of them, so the records never lose their scores.
pub const MARK_EVERY: i64 = 100;

/// Whether `epoch` (1-based) is a [`MARK_EVERY`] mark.
pub fn is_mark(epoch: i64) -> bool {
    epoch > 0 && epoch % MARK_EVERY == 0
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("run {run} is being trained by process {pid} (lock file {lock}); stop that training first, or pick another experiment")]
    Locked {
        run: PathBuf,
        pid: u32,
        lock: PathBuf,
    },
    #[error("no checkpoint of epoch {epoch} in {path}; available: {available}")]
    NoCheckpoint {
        path: PathBuf,
        epoch: i64,
        available: String,
    },
}

/// Directory name of `cfg`'s dataset in `records/` and `checkpoints/` (a `folder:PATH` dataset
/// uses `folder-<last path component>`).
pub fn dataset_dir_name(cfg: &Config) -> String {
    match cfg.dataset.strip_prefix("folder:") {
        Some(p) => format!(
            "folder-{}",
            Path::new(p)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => cfg.dataset.clone(),
    }
}

/// State of a run as kept in `status.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Finished,
    Failed,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub state: RunState,
    pub experiment: String,
    pub dataset: String,
    /// Last epoch completed in full.
    pub epoch: i64,
    pub epochs: i64,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where one run keeps its files, worked out once: its records folder and its checkpoints folder.
#[derive(Debug, Clone)]
pub struct RunPaths {
    pub run: RunDir,
    pub checkpoints: CheckpointDir,
}

impl RunPaths {
    /// `<records>/<dataset>/<experiment>` and `<checkpoints>/<dataset>/<experiment>` for `cfg`.
    pub fn new(records: &Path, checkpoints: &Path, cfg: &Config) -> RunPaths {
        RunPaths {
            run: RunDir::for_config(records, cfg),
            checkpoints: CheckpointDir::for_config(checkpoints, cfg),
        }
    }
}

/// The directory of one run. Every file name in it comes from here.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// `<records>/<dataset>/<experiment>` for `cfg` (a `folder:PATH` dataset uses the folder name).
    pub fn for_config(records: &Path, cfg: &Config) -> RunDir {
        RunDir {
            path: records
                .join(dataset_dir_name(cfg))
                .join(cfg.experiment_name()),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.yaml")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }
    pub fn evaluation_path(&self) -> PathBuf {
        self.path.join("evaluation.csv")
    }
    /// Folder of the t-SNE pictures and their points.
    pub fn tsne_dir(&self) -> PathBuf {
        self.path.join("tsne")
    }
    pub fn events_path(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }
    pub fn status_path(&self) -> PathBuf {
        self.path.join("status.json")
    }
    /// The PID of the training writing this run ([`lock::RunLock`]).
    pub fn lock_path(&self) -> PathBuf {
        self.path.join("lock")
    }
    /// The reference-format records CSV (SPEC 2.10).
    pub fn records_path(&self, experiment: &str) -> PathBuf {
        self.path.join(records::records_file_name(experiment))
    }

    /// The experiment this directory holds: its name.
    pub fn experiment(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Creates the directory and writes the resolved config snapshot.
    pub fn create(&self, cfg: &Config) -> Result<(), StoreError> {
        let yaml = cfg.to_yaml().map_err(|e| StoreError::Corrupt {
            path: self.config_path(),
            what: e.to_string(),
        })?;
        fs::create_dir_all(&self.path).map_err(|source| StoreError::Write {
            path: self.path.clone(),
            source,
        })?;
        write_atomic(&self.config_path(), yaml.as_bytes())
    }

    /// The run's config snapshot with `overrides` (`key=value`) applied on top.
    pub fn read_config(&self, overrides: &[String]) -> Result<Config, StoreError> {
        let path = self.config_path();
        let text = fs::read_to_string(&path).map_err(|source| StoreError::Read {
            path: path.clone(),
            source,
        })?;
        let corrupt = |e: ConfigError| StoreError::Corrupt {
            path: path.clone(),
            what: e.to_string(),
        };
        let mut cfg = Config::from_snapshot(&text, &path.display().to_string()).map_err(corrupt)?;
        cfg.apply_overrides(overrides).map_err(corrupt)?;
        Ok(cfg)
    }

    pub fn write_status(&self, status: &RunStatus) -> Result<(), StoreError> {
        let json = serde_json::to_string_pretty(status).expect("status serialises");
        write_atomic(&self.status_path(), json.as_bytes())
    }

    pub fn read_status(&self) -> Result<RunStatus, StoreError> {
        let path = self.status_path();
        let text = fs::read_to_string(&path).map_err(|source| StoreError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| StoreError::Read {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }
}

/// Writes `bytes` to `path` through a temporary file, flush and rename, so a crash at any moment
/// leaves either the old or the new file, never a half-written one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut f = File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)
}

/// Persists a run's events: every event to `events.jsonl`, each epoch to `metrics.csv`, and the
/// run state to `status.json`. Lines are flushed as they are written, so another process can
/// follow the run live; an I/O error is kept and reported by [`RunLog::finish`].
pub struct RunLog {
    dir: RunDir,
    events: BufWriter<File>,
    metrics: BufWriter<File>,
    evaluation: BufWriter<File>,
    status: RunStatus,
    error: Option<StoreError>,
}

impl RunLog {
    /// Starts the logs of a fresh run (existing metrics and events of the same run are replaced).
    pub fn start(dir: RunDir, cfg: &Config) -> Result<RunLog, StoreError> {
        dir.create(cfg)?;
        let mut log = RunLog::open(dir, cfg, 0, false)?;
        for (w, header, path) in [
            (&mut log.metrics, METRICS_HEADER, log.dir.metrics_path()),
            (
                &mut log.evaluation,
                &evaluation_header(),
                log.dir.evaluation_path(),
            ),
        ] {
            writeln!(w, "{header}")
                .and_then(|()| w.flush())
                .map_err(|source| StoreError::Write { path, source })?;
        }
        Ok(log)
    }

    /// Continues the logs of a run resumed after `epoch`: rows and events of later epochs (an
    /// epoch cut short by a kill, or history past an older checkpoint) are cut back, then new
    /// ones are appended.
    pub fn resume(dir: RunDir, cfg: &Config, epoch: i64) -> Result<RunLog, StoreError> {
        dir.create(cfg)?;
        cut_history(&dir, epoch)?;
        RunLog::open(dir, cfg, epoch, true)
    }

    /// Opens the three logs (appending, or replacing them) and marks the run as running after
    /// `epoch`.
    fn open(dir: RunDir, cfg: &Config, epoch: i64, append: bool) -> Result<RunLog, StoreError> {
        let open = |p: PathBuf| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&p)
                .map(BufWriter::new)
                .map_err(|source| StoreError::Write { path: p, source })
        };
        let events = open(dir.events_path())?;
        let metrics = open(dir.metrics_path())?;
        let evaluation = open(dir.evaluation_path())?;
        let status = RunStatus {
            state: RunState::Running,
            experiment: cfg.experiment_name(),
            dataset: cfg.dataset.clone(),
            epoch,
            epochs: cfg.epochs,
            pid: std::process::id(),
            error: None,
        };
        dir.write_status(&status)?;
        Ok(RunLog {
            dir,
            events,
            metrics,
            evaluation,
            status,
            error: None,
        })
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    fn write_event(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.events, event)?;
        self.events.write_all(b"\n")?;
        self.events.flush()?;
        if let Event::Epoch {
            epoch,
            instance_loss,
            feature_loss,
            total_loss,
            lr,
            seconds,
            images_per_sec,
            ..
        } = event
        {
            writeln!(
                self.metrics,
                "{epoch},{instance_loss},{feature_loss},{total_loss},{lr},{seconds:.3},{images_per_sec:.1}"
            )?;
            self.metrics.flush()?;
        }
        if let Event::Evaluation {
            epoch,
            samples,
            clusters,
            current,
            best,
            seconds,
        } = event
        {
            let mut row = format!("{epoch},{samples},{clusters}");
            for v in current.values().into_iter().chain(best.values()) {
                row.push_str(&format!(",{v}"));
            }
            writeln!(self.evaluation, "{row},{seconds:.3}")?;
            self.evaluation.flush()?;
        }
        Ok(())
    }

    /// Records the final state; returns the first I/O error met while logging, if any.
    pub fn finish(mut self, state: RunState, error: Option<String>) -> Result<(), StoreError> {
        self.status.state = state;
        self.status.error = error;
        let written = self.dir.write_status(&self.status);
        match self.error.take() {
            Some(e) => Err(e),
            None => written,
        }
    }
}

impl Reporter for RunLog {
    fn report(&mut self, event: &Event) {
        if let Err(source) = self.write_event(event) {
            if self.error.is_none() {
                self.error = Some(StoreError::Write {
                    path: self.dir.path.clone(),
                    source,
                });
            }
        }
        if let Event::Epoch { epoch, .. } = event {
            self.status.epoch = *epoch;
            if let Err(e) = self.dir.write_status(&self.status) {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Cuts `metrics.csv`, `evaluation.csv` and `events.jsonl` back to what happened up to the end of
/// `epoch`: rows of later epochs go, as do events that name a later epoch and lines torn by a
/// crash. Events without an epoch (started, finished, failed) stay: they mark the sessions of the
/// run.
pub fn cut_history(dir: &RunDir, epoch: i64) -> Result<(), StoreError> {
    cut_csv(&dir.metrics_path(), METRICS_HEADER, epoch)?;
    cut_csv(&dir.evaluation_path(), &evaluation_header(), epoch)?;
    let events = dir.events_path();
    let mut out = String::new();
    if let Ok(text) = fs::read_to_string(&events) {
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let later = v
                .get("epoch")
                .and_then(|e| e.as_i64())
                .is_some_and(|e| e > epoch);
            if !later {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    write_atomic(&events, out.as_bytes())
}

/// Keeps the complete rows of a per-epoch CSV (epoch in the first column) up to `epoch`.
fn cut_csv(path: &Path, default_header: &str, epoch: i64) -> Result<(), StoreError> {
    let mut kept = format!("{default_header}\n");
    if let Ok(text) = fs::read_to_string(path) {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or(default_header);
        let width = header.split(',').count();
        kept = format!("{header}\n");
        for line in lines {
            let first = line.split(',').next().and_then(|e| e.parse::<i64>().ok());
            let complete = line.split(',').count() == width;
            if complete && first.is_some_and(|e| e <= epoch) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    write_atomic(path, kept.as_bytes())
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub instance_loss: f64,
    pub feature_loss: f64,
    pub total_loss: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

/// Reads a run's `metrics.csv`; a last line cut short by a crash is ignored.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>, StoreError> {
    read_log_rows(path)
}

/// The complete rows of an append-only CSV log; rows that do not parse (a last line cut short by
/// a crash) are skipped.
fn read_log_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, StoreError> {
    let text = fs::read_to_string(path).map_err(|source| StoreError::Read {
        path: path.into(),
        source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    Ok(rdr.deserialize().filter_map(Result::ok).collect())
}

/// One row of `evaluation.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvaluationRow {
    pub epoch: i64,
    pub samples: usize,
    pub clusters: usize,
    pub current: Scores,
    /// The running maxima after this evaluation.
    pub best: Scores,
    pub seconds: f64,
}

/// Reads a run's `evaluation.csv`; a last line cut short by a crash is ignored.
pub fn read_evaluations(path: &Path) -> Result<Vec<EvaluationRow>, StoreError> {
    let rows: Vec<HashMap<String, String>> = read_log_rows(path)?;
    Ok(rows.iter().filter_map(evaluation_row).collect())
}

/// An `evaluation.csv` row by column name; `None` when a column is missing or not a number.
fn evaluation_row(row: &HashMap<String, String>) -> Option<EvaluationRow> {
    let cell = |name: &str| row.get(name).map(|v| v.trim());
    let number = |name: &str| cell(name)?.parse::<f64>().ok();
    let count = |name: &str| cell(name)?.parse::<usize>().ok();
    let scores = |prefix: &str| -> Option<Scores> {
        let mut values = [0.0; 6];
        for (v, name) in values.iter_mut().zip(Scores::NAMES) {
            *v = number(&format!("{prefix}{name}"))?;
        }
        Some(Scores::from_values(values))
    };
    Some(EvaluationRow {
        epoch: cell("epoch")?.parse().ok()?,
        samples: count("samples")?,
        clusters: count("clusters")?,
        current: scores("")?,
        best: scores("best_")?,
        seconds: number("seconds")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    #[test]
    fn run_log_writes_metrics_events_and_status() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::builtin().resolve("shapes", &[]).unwrap();
        let dir = RunDir::for_config(tmp.path(), &cfg);
        assert!(dir.path.ends_with("shapes/bs64_lr0.0003_ResNet18"));
        let mut log = RunLog::start(dir.clone(), &cfg).unwrap();
        log.report(&Event::Epoch {
            epoch: 1,
            epochs: 10,
            instance_loss: 4.5,
            feature_loss: 1.25,
            total_loss: 5.75,
            lr: 0.0003,
            seconds: 2.0,
            images_per_sec: 512.0,
        });
        assert_eq!(dir.read_status().unwrap().epoch, 1);
        log.finish(RunState::Finished, None).unwrap();
        let rows = read_metrics(&dir.metrics_path()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].total_loss, 5.75);
        let events = fs::read_to_string(dir.events_path()).unwrap();
        let e: Event = serde_json::from_str(events.lines().next().unwrap()).unwrap();
        assert!(matches!(e, Event::Epoch { epoch: 1, .. }));
        let status = dir.read_status().unwrap();
        assert_eq!(status.state, RunState::Finished);
        let snapshot = fs::read_to_string(dir.config_path()).unwrap();
        assert!(snapshot.contains("batch_size: 64"));
    }

    #[test]
    fn config_snapshot_reads_back_with_overrides() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::builtin()
            .resolve("shapes", &["learning_rate=0.001".into()])
            .unwrap();
        let dir = RunDir::for_config(tmp.path(), &cfg);
        dir.create(&cfg).unwrap();
        assert_eq!(dir.read_config(&[]).unwrap(), cfg);
        let longer = dir.read_config(&["epochs=20".into()]).unwrap();
        assert_eq!(longer.epochs, 20);
        assert_eq!(longer.experiment_name(), cfg.experiment_name());
    }

    fn evaluation(epoch: i64) -> Event {
        Event::Evaluation {
            epoch,
            samples: 1024,
            clusters: 4,
            current: Scores::from_values([0.5, 0.25, 0.75, 0.125, -0.5, 0.375]),
            best: Scores::from_values([0.5, 0.25, 0.75, 0.25, 0.0, 0.5]),
            seconds: 1.5,
        }
    }

    #[test]
    fn evaluations_go_to_their_own_csv_and_resume_cuts_them() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::builtin().resolve("shapes", &[]).unwrap();
        let dir = RunDir::for_config(tmp.path(), &cfg);
        let mut log = RunLog::start(dir.clone(), &cfg).unwrap();
        log.report(&evaluation(3));
        log.report(&evaluation(4));
        log.finish(RunState::Stopped, None).unwrap();
        let text = fs::read_to_string(dir.evaluation_path()).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "epoch,samples,clusters,nmi_backbone,ari_backbone,acc_backbone,nmi_feature,ari_feature,acc_feature,best_nmi_backbone,best_ari_backbone,best_acc_backbone,best_nmi_feature,best_ari_feature,best_acc_feature,seconds"
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "3,1024,4,0.5,0.25,0.75,0.125,-0.5,0.375,0.5,0.25,0.75,0.25,0,0.5,1.500"
        );
        let rows = read_evaluations(&dir.evaluation_path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].epoch,
                rows[0].current.ari_feature,
                rows[0].best.nmi_feature
            ),
            (3, -0.5, 0.25)
        );
        assert_eq!(read_metrics(&dir.metrics_path()).unwrap().len(), 0);
        // Resuming after epoch 3 drops the evaluation of epoch 4, then appends.
        let mut log = RunLog::resume(dir.clone(), &cfg, 3).unwrap();
        log.report(&evaluation(5));
        log.finish(RunState::Finished, None).unwrap();
        let rows = read_evaluations(&dir.evaluation_path()).unwrap();
        assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [3, 5]);
    }

    #[test]
    fn resume_cuts_history_after_the_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::builtin().resolve("shapes", &[]).unwrap();
        let dir = RunDir::for_config(tmp.path(), &cfg);
        let mut log = RunLog::start(dir.clone(), &cfg).unwrap();
        for epoch in 1..=3 {
            log.report(&Event::Step {
                epoch,
                step: 1,
                steps: 1,
                instance_loss: 1.0,
                feature_loss: 0.0,
                total_loss: 1.0,
                lr: 0.1,
                images_per_sec: 1.0,
            });
            log.report(&Event::Epoch {
                epoch,
                epochs: 10,
                instance_loss: epoch as f64,
                feature_loss: 0.0,
                total_loss: epoch as f64,
                lr: 0.1,
                seconds: 1.0,
                images_per_sec: 1.0,
            });
        }
        drop(log);
        // A torn line, as a kill mid-write leaves.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.events_path())
            .unwrap();
        f.write_all(b"{\"event\":\"step\",\"epo").unwrap();
        let log = RunLog::resume(dir.clone(), &cfg, 2).unwrap();
        log.finish(RunState::Stopped, None).unwrap();
        let rows = read_metrics(&dir.metrics_path()).unwrap();
        assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
        let events: Vec<Event> = fs::read_to_string(dir.events_path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 4);
        assert!(matches!(events[3], Event::Epoch { epoch: 2, .. }));
    }

    #[test]
    fn metrics_reader_skips_a_torn_last_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("metrics.csv");
        fs::write(
            &p,
            format!("{METRICS_HEADER}\n1,2.0,1.0,3.0,0.1,1.0,10.0\n2,1.9,0.9"),
        )
        .unwrap();
        let rows = read_metrics(&p).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].epoch, 1);
    }
}
