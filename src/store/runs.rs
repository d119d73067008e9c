//! Every run under a records root, as a list a UI or `cdw runs` shows: dataset, experiment,
//! method, state as it should be shown (a `running` run whose process is gone, or whose files
//! stopped changing, is `crashed`), epochs, best NMI, speed and age.
//!
//! A run folder is `<records>/<dataset>/<experiment>/` holding cdw's files (`status.json`,
//! `metrics.csv`, ...) or only a reference `records_*.csv`. A training the workbench launched
//! writes [`LAUNCH_FILE`] there first, so it is listed (as `starting`) before cdw's own files
//! exist, and its output goes to [`LAUNCH_LOG`].

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::lock::process_alive;
use super::records::read_records_csv;
use super::{
    read_evaluations, read_metrics, write_atomic, RunDir, RunState, RunStatus, StoreError,
};

/// The stdout and stderr of a training launched in the background (by the workbench).
pub const LAUNCH_LOG: &str = "train.log";
/// What the workbench launched, written before the process starts: the command and its pid.
pub const LAUNCH_FILE: &str = "launch.json";

/// How long a `running` run may go without writing before it is shown as crashed, at least.
pub const STALE_AT_LEAST: Duration = Duration::from_mins(10);

/// A background training as the workbench started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub pid: u32,
    /// The `cdw` arguments, for display.
    pub command: Vec<String>,
    /// Seconds since the Unix epoch.
    pub started: u64,
}

/// Writes `launch.json` into `dir` (creating it).
pub fn record_launch(dir: &Path, launch: &Launch) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(launch).map_err(|e| StoreError::Corrupt {
        path: dir.join(LAUNCH_FILE),
        what: e.to_string(),
    })?;
    write_atomic(&dir.join(LAUNCH_FILE), json.as_bytes())
}

/// Reads `launch.json` of a run folder, if the workbench launched it.
pub fn read_launch(dir: &Path) -> Option<Launch> {
    let text = fs::read_to_string(dir.join(LAUNCH_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A run's state as a user should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownState {
    /// Launched, its process alive, no epoch begun yet (loading data, building the network).
    Starting,
    Running,
    Finished,
    Stopped,
    Failed,
    /// Said `running`, but its process is gone or its files stopped changing long ago.
    Crashed,
    /// Only reference-format records (`records_*.csv`), no cdw run files.
    Reference,
}

impl ShownState {
    pub fn name(self) -> &'static str {
        match self {
            ShownState::Starting => "starting",
            ShownState::Running => "running",
            ShownState::Finished => "finished",
            ShownState::Stopped => "stopped",
            ShownState::Failed => "failed",
            ShownState::Crashed => "crashed",
            ShownState::Reference => "reference",
        }
    }

    /// A training process is (or should be) at work on it.
    pub fn is_live(self) -> bool {
        matches!(self, ShownState::Starting | ShownState::Running)
    }

    /// It can be resumed: it ended without finishing, and has something to resume from.
    pub fn is_resumable(self) -> bool {
        matches!(
            self,
            ShownState::Stopped | ShownState::Crashed | ShownState::Failed
        )
    }
}

/// One row of the runs table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run folder.
    pub path: PathBuf,
    /// Its folder under the records root (the dataset, or a folder dataset's name).
    pub dataset: String,
    pub experiment: String,
    /// `cd` or `simclr` (from the config snapshot); empty when unknown (reference records).
    pub method: String,
    pub shown: ShownState,
    /// Last epoch completed in full.
    pub epoch: i64,
    /// Epochs asked for (0 when unknown).
    pub epochs: i64,
    pub best_nmi_feature: Option<f64>,
    pub best_nmi_backbone: Option<f64>,
    /// Training speed of the last completed epoch.
    pub images_per_sec: Option<f64>,
    /// The newest modification time of the run's files.
    #[serde(serialize_with = "unix_seconds")]
    pub modified: SystemTime,
    /// The training's pid (from status.json or launch.json).
    pub pid: Option<u32>,
    /// Why it failed or crashed.
    pub error: Option<String>,
}

// serde's `serialize_with` hands the field by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

impl RunSummary {
    /// `DATASET/EXPERIMENT`, as `cdw train --resume` takes it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.dataset, self.experiment)
    }
}

/// Every run folder under `records`, newest first. Folders that are neither a cdw run nor
/// reference records are left out; a run whose files cannot be read is listed with what could.
pub fn list_runs(records: &Path, now: SystemTime) -> Vec<RunSummary> {
    let mut runs = Vec::new();
    for dataset in sorted_dirs(records) {
        for run in sorted_dirs(&dataset) {
            if let Some(s) = summarize(&run, now) {
                runs.push(s);
            }
        }
    }
    runs.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    runs
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The files of a run folder and the newest modification time among them.
fn newest_file(dir: &Path) -> Option<SystemTime> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .filter_map(|m| m.modified().ok())
        .max()
}

/// The summary of one run folder; `None` when it holds no run.
pub fn summarize(path: &Path, now: SystemTime) -> Option<RunSummary> {
    let dir = RunDir {
        path: path.to_path_buf(),
    };
    let dataset = path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let status = dir.read_status().ok();
    let launch = read_launch(path);
    let reference = reference_records(path);
    if status.is_none() && launch.is_none() && reference.is_none() {
        return None;
    }
    let modified = newest_file(path).unwrap_or(SystemTime::UNIX_EPOCH);
    let metrics = read_metrics(&dir.metrics_path()).unwrap_or_default();
    let best = read_evaluations(&dir.evaluation_path())
        .ok()
        .and_then(|rows| rows.last().map(|r| r.best));
    let mut s = RunSummary {
        path: path.to_path_buf(),
        dataset,
        experiment: dir.experiment(),
        method: method_of(&dir),
        shown: ShownState::Reference,
        epoch: metrics.last().map_or(0, |m| m.epoch),
        epochs: 0,
        best_nmi_feature: best.map(|b| b.nmi_feature),
        best_nmi_backbone: best.map(|b| b.nmi_backbone),
        images_per_sec: metrics.last().map(|m| m.images_per_sec),
        modified,
        pid: None,
        error: None,
    };
    let longest_epoch = metrics.iter().map(|m| m.seconds).fold(0.0, f64::max);
    match (status, launch) {
        (Some(st), launch) => {
            // A launch.json newer than status.json is a resume still starting.
            let restarting = launch.as_ref().filter(|l| {
                l.pid != st.pid && process_alive(l.pid) && st.state != RunState::Running
            });
            s.epoch = st.epoch;
            s.epochs = st.epochs;
            s.error.clone_from(&st.error);
            if let Some(l) = restarting {
                s.pid = Some(l.pid);
                s.shown = ShownState::Starting;
            } else {
                s.pid = Some(st.pid);
                s.shown = shown_state(&st, modified, now, longest_epoch);
                if s.shown == ShownState::Crashed && s.error.is_none() {
                    s.error = Some(crash_reason(&st, modified));
                }
            }
        }
        (None, Some(l)) => {
            s.pid = Some(l.pid);
            if process_alive(l.pid) {
                s.shown = ShownState::Starting;
            } else {
                s.shown = ShownState::Failed;
                s.error = Some(last_log_line(path).unwrap_or_else(|| {
                    "the training ended before its first epoch (no output)".to_string()
                }));
            }
        }
        (None, None) => {
            if let Some(columns) = reference {
                if let Some(last) = columns.last() {
                    s.epoch = last.epoch;
                    s.best_nmi_feature = Some(last.best.nmi_feature);
                    s.best_nmi_backbone = Some(last.best.nmi_backbone);
                }
                s.method = String::new();
            }
        }
    }
    Some(s)
}

/// How long files may stay unchanged before a `running` run is shown as crashed: ten minutes,
/// or three times its longest epoch so far (an evaluation or a slow epoch is not a crash).
pub fn stale_after(longest_epoch_seconds: f64) -> Duration {
    let three = Duration::try_from_secs_f64(3.0 * longest_epoch_seconds).unwrap_or(Duration::ZERO);
    three.max(STALE_AT_LEAST)
}

/// `status.state` as it should be shown, given the newest file time of the run.
pub fn shown_state(
    status: &RunStatus,
    modified: SystemTime,
    now: SystemTime,
    longest_epoch_seconds: f64,
) -> ShownState {
    match status.state {
        RunState::Finished => ShownState::Finished,
        RunState::Stopped => ShownState::Stopped,
        RunState::Failed => ShownState::Failed,
        RunState::Running => {
            let quiet = now.duration_since(modified).unwrap_or(Duration::ZERO);
            if !process_alive(status.pid) || quiet > stale_after(longest_epoch_seconds) {
                ShownState::Crashed
            } else {
                ShownState::Running
            }
        }
    }
}

fn crash_reason(status: &RunStatus, modified: SystemTime) -> String {
    let when = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if process_alive(status.pid) {
        format!(
            "no file written since {} (process {} still exists but makes no progress)",
            utc_time(when),
            status.pid
        )
    } else {
        format!(
            "process {} is gone; last written {} (killed, out of memory, or the machine restarted)",
            status.pid,
            utc_time(when)
        )
    }
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds.
pub fn utc_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60
    )
}

fn last_log_line(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(LAUNCH_LOG)).ok()?;
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| {
            // A JSON `failed` event carries the error; anything else is shown as printed.
            serde_json::from_str::<crate::events::Event>(l)
                .ok()
                .and_then(|e| match e {
                    crate::events::Event::Failed { error } => Some(error),
                    _ => None,
                })
                .unwrap_or_else(|| l.to_string())
        })
}

fn method_of(dir: &RunDir) -> String {
    dir.read_config(&[])
        .map(|c| c.method.name().to_string())
        .unwrap_or_default()
}

/// The columns of the folder's reference-format records, when it has a `records_*.csv`.
fn reference_records(path: &Path) -> Option<Vec<super::records::RecordColumn>> {
    let entries = fs::read_dir(path).ok()?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("records_") && n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    let first = files.first()?;
    Some(read_records_csv(first).unwrap_or_default())
}

/// A run's config snapshot (`config.yaml`) as `field -> value` text, for showing the fields in
/// which runs differ. Nested mappings are named `outer.inner`; lists are written `[a, b]`. A run
/// without a snapshot (a folder of reference records) has none.
pub fn read_config_fields(dir: &Path) -> Result<BTreeMap<String, String>, StoreError> {
    let path = RunDir {
        path: dir.to_path_buf(),
    }
    .config_path();
    let mut out = BTreeMap::new();
    if !path.is_file() {
        return Ok(out);
    }
    let text = fs::read_to_string(&path).map_err(|source| StoreError::Read {
        path: path.clone(),
        source,
    })?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            what: e.to_string(),
        })?;
    flatten_yaml("", &value, &mut out);
    Ok(out)
}

fn flatten_yaml(prefix: &str, value: &serde_yaml::Value, out: &mut BTreeMap<String, String>) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = yaml_text(k);
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_yaml(&name, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), yaml_text(other));
        }
    }
}

/// A YAML value as one line of text.
fn yaml_text(value: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let parts: Vec<String> = items.iter().map(yaml_text).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Mapping(_) | Value::Tagged(_) => serde_yaml::to_string(value)
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::METRICS_HEADER;

    fn status(state: RunState, pid: u32) -> RunStatus {
        RunStatus {
            state,
            experiment: "CD_x".into(),
            dataset: "shapes".into(),
            epoch: 3,
            epochs: 10,
            pid,
            error: None,
        }
    }

    fn write_run(root: &Path, dataset: &str, exp: &str, st: &RunStatus) -> PathBuf {
        let dir = root.join(dataset).join(exp);
        fs::create_dir_all(&dir).unwrap();
        RunDir { path: dir.clone() }.write_status(st).unwrap();
        dir
    }

    /// A pid that is certainly not alive: a child that has been waited for.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn running_with_a_live_process_and_fresh_files_is_running() {
        let now = SystemTime::now();
        let st = status(RunState::Running, std::process::id());
        assert_eq!(shown_state(&st, now, now, 30.0), ShownState::Running);
        // Nine minutes quiet is still running (an evaluation may take that long).
        let nine = now - Duration::from_mins(9);
        assert_eq!(shown_state(&st, nine, now, 30.0), ShownState::Running);
    }

    #[test]
    fn running_with_a_dead_process_is_crashed() {
        let now = SystemTime::now();
        let st = status(RunState::Running, dead_pid());
        assert_eq!(shown_state(&st, now, now, 30.0), ShownState::Crashed);
    }

    #[test]
    fn running_but_quiet_far_longer_than_an_epoch_is_crashed() {
        let now = SystemTime::now();
        let st = status(RunState::Running, std::process::id());
        // 11 minutes with 30 s epochs: crashed.
        let quiet = now - Duration::from_mins(11);
        assert_eq!(shown_state(&st, quiet, now, 30.0), ShownState::Crashed);
        // The same 11 minutes with 5-minute epochs is within 3 epochs: running.
        assert_eq!(shown_state(&st, quiet, now, 300.0), ShownState::Running);
        assert_eq!(stale_after(300.0), Duration::from_mins(15));
        assert_eq!(stale_after(1.0), STALE_AT_LEAST);
    }

    #[test]
    fn ended_states_show_as_written() {
        let now = SystemTime::now();
        for (state, shown) in [
            (RunState::Finished, ShownState::Finished),
            (RunState::Stopped, ShownState::Stopped),
            (RunState::Failed, ShownState::Failed),
        ] {
            assert_eq!(
                shown_state(&status(state, dead_pid()), now, now, 1.0),
                shown
            );
        }
    }

    #[test]
    fn list_runs_reads_every_kind_of_folder() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // A finished run with metrics and evaluations.
        let fin = write_run(r, "shapes", "CD_a", &status(RunState::Finished, dead_pid()));
        fs::write(
            fin.join("metrics.csv"),
            format!("{METRICS_HEADER}\n1,5,4,9,0.001,2.5,100\n2,4,3,7,0.001,2.0,120.5\n3,4,3,7,0.001,2.0,1"),
        )
        .unwrap();
        let mut eval = crate::store::evaluation_header();
        eval.push_str("\n2,100,10,0.1,0.1,0.2,0.3,0.1,0.2,0.1,0.1,0.2,0.4,0.1,0.2,1.5\n");
        fs::write(fin.join("evaluation.csv"), eval).unwrap();
        // A crashed one (status running, pid dead).
        write_run(r, "cifar10", "CD_b", &status(RunState::Running, dead_pid()));
        // A reference-records-only folder.
        let refdir = r.join("cifar10").join("paper");
        fs::create_dir_all(&refdir).unwrap();
        fs::write(
            refdir.join("records_paper.csv"),
            ",0,1\nepoch,100,200\nbest_nmi_feature,0.5,0.6\nbest_ari_feature,0,0\nbest_acc_feature,0,0\n\
             best_nmi_backbone,0.4,0.45\nbest_ari_backbone,0,0\nbest_acc_backbone,0,0\n\
             nmi_backbone,0,0\nari_backbone,0,0\nacc_backbone,0,0\nnmi_feature,0,0\nari_feature,0,0\nacc_feature,0,0\n",
        )
        .unwrap();
        // Junk: an empty folder and a folder of other files are not runs.
        fs::create_dir_all(r.join("stl10").join("empty")).unwrap();
        fs::create_dir_all(r.join("stl10").join("notes")).unwrap();
        fs::write(r.join("stl10").join("notes").join("a.txt"), "hi").unwrap();
        // A launch whose process died before writing status.json: failed, with the log's error.
        let launched = r.join("shapes").join("CD_c");
        record_launch(
            &launched,
            &Launch {
                pid: dead_pid(),
                command: vec!["train".into()],
                started: 0,
            },
        )
        .unwrap();
        fs::write(
            launched.join(LAUNCH_LOG),
            "{\"event\":\"failed\",\"error\":\"dataset cifar10 is not in data/cifar10\"}\n",
        )
        .unwrap();

        let runs = list_runs(r, SystemTime::now());
        let by = |exp: &str| runs.iter().find(|s| s.experiment == exp).unwrap().clone();
        assert_eq!(runs.len(), 4, "{runs:#?}");
        let a = by("CD_a");
        assert_eq!(a.shown, ShownState::Finished);
        assert_eq!((a.epoch, a.epochs), (3, 10));
        assert_eq!(a.dataset, "shapes");
        assert_eq!(a.best_nmi_backbone, Some(0.1));
        assert_eq!(a.best_nmi_feature, Some(0.4));
        // The last complete row; a cut-short row (1 field less) would be skipped.
        assert_eq!(a.images_per_sec, Some(1.0));
        let b = by("CD_b");
        assert_eq!(b.shown, ShownState::Crashed);
        assert!(b.error.as_deref().unwrap().contains("is gone"), "{b:?}");
        let p = by("paper");
        assert_eq!(p.shown, ShownState::Reference);
        assert_eq!(p.epoch, 200);
        assert_eq!(p.best_nmi_feature, Some(0.6));
        assert_eq!(p.best_nmi_backbone, Some(0.45));
        let c = by("CD_c");
        assert_eq!(c.shown, ShownState::Failed);
        assert_eq!(
            c.error.as_deref(),
            Some("dataset cifar10 is not in data/cifar10")
        );
    }

    #[test]
    fn a_live_launch_without_status_is_starting() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shapes").join("CD_s");
        record_launch(
            &dir,
            &Launch {
                pid: std::process::id(),
                command: vec![],
                started: 0,
            },
        )
        .unwrap();
        let s = summarize(&dir, SystemTime::now()).unwrap();
        assert_eq!(s.shown, ShownState::Starting);
        assert!(s.shown.is_live());
        assert_eq!(s.pid, Some(std::process::id()));
    }

    #[test]
    fn utc_time_is_a_calendar_date() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        // 2026-12-02 13:05 UTC.
        assert_eq!(utc_time(1_796_216_700), "2026-12-02 13:05 UTC");
    }

    #[test]
    fn config_fields_flatten_a_snapshot_and_a_run_without_one_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "dataset: shapes\nbatch_size: 64\ncustom_datasets:\n- cifar10\n- stl10\nextra:\n  depth: 2\n",
        )
        .unwrap();
        let f = read_config_fields(dir.path()).unwrap();
        assert_eq!(f["dataset"], "shapes");
        assert_eq!(f["batch_size"], "64");
        assert_eq!(f["custom_datasets"], "[cifar10, stl10]");
        assert_eq!(f["extra.depth"], "2");
        assert_eq!(f.len(), 4);
        let empty = tempfile::tempdir().unwrap();
        assert!(read_config_fields(empty.path()).unwrap().is_empty());
        std::fs::write(empty.path().join("config.yaml"), "a: [unclosed").unwrap();
        let err = read_config_fields(empty.path()).unwrap_err().to_string();
        assert!(err.contains("config.yaml"), "{err}");
    }
}
