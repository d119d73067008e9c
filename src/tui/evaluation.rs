//! An evaluation running as its own `cdw evaluate --json` process, followed through its log in
//! the run folder: `evaluate.log` for the dashboard's evaluation of the latest checkpoint,
//! `evaluate_<file stem>.log` for one chosen on the Checkpoints screen. The log is a list of
//! JSON events (`evaluation_progress`, then `evaluate_result` or `failed`), so any screen, in this
//! UI or the next one, can follow it from the start and show the same progress and result.

use std::fs;
use std::path::{Path, PathBuf};

use super::app::Ctx;
use super::feed::{LogKind, Progress};
use super::jobs::Job;
use crate::events::{EvaluateReport, Event, Scores};
use crate::store::follow::EventFollower;

/// The log of the dashboard's evaluation (the latest checkpoint).
pub const EVALUATE_LOG: &str = "evaluate.log";

/// The log of the evaluation of the weights file `model`: `evaluate_<stem>.log`.
pub fn log_name(model: &Path) -> String {
    let stem = model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    format!("evaluate_{stem}.log")
}

/// What the log lines call the evaluation whose log is `log`: "evaluation of the latest
/// checkpoint" for `evaluate.log`, "evaluation of <stem>" for `evaluate_<stem>.log`.
pub fn what_of_log(log: &Path) -> String {
    match log.file_name().and_then(|n| n.to_str()) {
        Some(EVALUATE_LOG) | None => "evaluation of the latest checkpoint".to_string(),
        Some(name) => format!(
            "evaluation of {}",
            name.trim_start_matches("evaluate_")
                .trim_end_matches(".log")
        ),
    }
}

/// Is `name` the name of an evaluation log?
pub fn is_log_name(name: &str) -> bool {
    name == EVALUATE_LOG
        || name
            .strip_prefix("evaluate_")
            .is_some_and(|r| r.ends_with(".log"))
}

/// The evaluation logs in the run folder `run`, sorted by name.
pub fn logs_in(run: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(run)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_log_name))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// One line of scores, as the log pane and the Checkpoints screen show a result.
pub fn result_line(what: &str, report: &EvaluateReport) -> String {
    let s = Scores::from_spaces(report.backbone, report.feature);
    format!(
        "{what}: NMI f {:.3} h {:.3} · ARI f {:.3} h {:.3} · ACC f {:.3} h {:.3} ({} images, {:.1} s)",
        s.nmi_feature,
        s.nmi_backbone,
        s.ari_feature,
        s.ari_backbone,
        s.acc_feature,
        s.acc_backbone,
        report.samples,
        report.seconds
    )
}

/// An evaluation followed through its log.
pub struct Evaluation {
    follower: EventFollower,
    /// What is evaluated, for the log lines ("evaluation of model_best").
    pub what: String,
    /// The latest progress reported.
    pub progress: Option<Progress>,
    /// The result, once it came.
    pub report: Option<EvaluateReport>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Evaluation {
    /// Follows the log `log` from its start (an evaluation started earlier, maybe by another UI).
    pub fn follow(log: PathBuf, what: String) -> Evaluation {
        Evaluation {
            follower: EventFollower::new(log),
            what,
            progress: None,
            report: None,
            error: None,
        }
    }

    /// Starts `cdw evaluate --run RUN [--model FILE] --json --records R --checkpoints C
    /// [--config F]` with its output in `run/<log>` (an older log of that name is removed first),
    /// keeps the child to be reaped, and follows it. Returns the command line too, for the log.
    pub fn start(
        ctx: &mut Ctx,
        run: &Path,
        model: Option<&Path>,
        log: &str,
        what: String,
    ) -> Result<(Evaluation, String), String> {
        let log = run.join(log);
        let _ = fs::remove_file(&log);
        let mut args = vec![
            "evaluate".to_string(),
            "--run".into(),
            run.display().to_string(),
        ];
        if let Some(m) = model {
            args.push("--model".into());
            args.push(m.display().to_string());
        }
        args.extend([
            "--json".into(),
            "--records".into(),
            ctx.records.display().to_string(),
            "--checkpoints".into(),
            ctx.checkpoints.display().to_string(),
        ]);
        if let Some(c) = &ctx.config {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        let job = Job::new(&ctx.exe, args, log.clone());
        let child = job
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", job.display()))?;
        ctx.children.push(child);
        Ok((Evaluation::follow(log, what), job.display()))
    }

    pub fn log(&self) -> &Path {
        self.follower.path()
    }

    /// Ended with a result or a failure.
    pub fn done(&self) -> bool {
        self.report.is_some() || self.error.is_some()
    }

    /// Reads what the evaluation wrote since the last poll: the log lines to show (its result or
    /// its failure) and whether anything changed.
    pub fn poll(&mut self) -> (Vec<(LogKind, String)>, bool) {
        let got = self.follower.poll();
        if got.restarted {
            // Started again (the log was replaced): forget the old run of it.
            self.progress = None;
            self.report = None;
            self.error = None;
        }
        let mut lines = Vec::new();
        let mut changed = got.restarted || got.skipped > 0;
        for e in got.events {
            match e {
                Event::EvaluationProgress { .. } => {
                    self.progress = Progress::of(&e);
                    changed = true;
                }
                Event::EvaluateResult { report } => {
                    lines.push((LogKind::Good, result_line(&self.what, &report)));
                    self.report = Some(report);
                    self.progress = None;
                }
                Event::Failed { error } => {
                    lines.push((LogKind::Error, format!("{} failed: {error}", self.what)));
                    self.error = Some(error);
                    self.progress = None;
                }
                _ => {}
            }
        }
        changed |= !lines.is_empty();
        (lines, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULT: &str = r#"{"event":"evaluate_result","report":{"dataset":"shapes","method":"cd","model":{"kind":"file","path":"c"},"device":"cpu","samples":1024,"clusters":4,"backbone":{"nmi":0.25,"ari":0.17,"acc":0.45},"feature":{"nmi":0.26,"ari":0.18,"acc":0.44},"seconds":2.5}}"#;

    #[test]
    fn an_evaluation_log_is_followed_to_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("evaluate_model_best.log");
        fs::write(
            &log,
            "args: evaluate\n{\"event\":\"evaluation_progress\",\"epoch\":3,\"stage\":\"kmeans\",\"space\":\"feature\",\"done\":3,\"total\":10}\n",
        )
        .unwrap();
        let mut e = Evaluation::follow(log.clone(), "evaluation of model_best".into());
        let (lines, changed) = e.poll();
        assert!(changed && lines.is_empty());
        let p = e.progress.unwrap();
        assert_eq!((p.done, p.total, p.epoch), (3, 10, 3));
        assert!(!e.done());
        fs::write(
            &log,
            format!("{}\n{RESULT}\n", fs::read_to_string(&log).unwrap()),
        )
        .unwrap();
        let (lines, _) = e.poll();
        assert_eq!(
            lines,
            vec![(
                LogKind::Good,
                "evaluation of model_best: NMI f 0.260 h 0.250 · ARI f 0.180 h 0.170 · ACC f 0.440 h 0.450 (1024 images, 2.5 s)"
                    .to_string()
            )]
        );
        assert!(e.done() && e.progress.is_none());
        assert_eq!(e.report.as_ref().unwrap().samples, 1024);
    }

    #[test]
    fn a_failure_is_a_log_line_and_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("evaluate.log");
        fs::write(&log, "{\"event\":\"failed\",\"error\":\"no checkpoint\"}\n").unwrap();
        let mut e = Evaluation::follow(log, "evaluation".into());
        let (lines, _) = e.poll();
        assert_eq!(
            lines,
            vec![(LogKind::Error, "evaluation failed: no checkpoint".into())]
        );
        assert_eq!(e.error.as_deref(), Some("no checkpoint"));
        assert!(e.done());
    }

    #[test]
    fn log_names_and_the_logs_of_a_run() {
        assert_eq!(
            log_name(Path::new("/c/checkpoint_epoch_2.safetensors")),
            "evaluate_checkpoint_epoch_2.log"
        );
        assert!(is_log_name("evaluate.log") && is_log_name("evaluate_model_best.log"));
        assert!(!is_log_name("train.log") && !is_log_name("evaluate_x.jsonl"));
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "train.log",
            "evaluate_model_final.log",
            "evaluate.log",
            "events.jsonl",
        ] {
            fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<String> = logs_in(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["evaluate.log", "evaluate_model_final.log"]);
    }
}
