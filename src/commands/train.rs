//! `cdw train`: resolve the config, load the dataset, resume a checkpoint when asked (or when
//! `reload` finds one), train, and keep the run's files.
//!
//! A run that fails before its first epoch leaves nothing behind: the folder of a new run (and its
//! lock) is made only once the data is loaded and the trainer built. A run whose folder exists is
//! locked at once, so a second training of it is refused before it loads anything.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::console::{reporter_for_stdout, DecodeBar};
use crate::data;
use crate::device;
use crate::eval::Evaluator;
use crate::events::{Event, Fanout, Reporter};
use crate::store::checkpoint::{Checkpoint, CheckpointDir};
use crate::store::lock::RunLock;
use crate::store::records::write_records_csv;
use crate::store::{RunDir, RunLog, RunPaths, RunState};
use crate::train::checkpoint::RunSaver;
use crate::train::{Interrupter, Trainer};

use super::{Failure, TrainArgs};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Where a training starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Fresh,
    /// From the latest checkpoint, or from the one kept at this epoch.
    Resume {
        epoch: Option<i64>,
    },
}

/// What `cdw train` is asked to do, worked out before anything is loaded.
struct Plan {
    cfg: Config,
    paths: RunPaths,
    start: Start,
}

/// The run directory `--resume RUN` (or another `flag`) names: a directory with a config
/// snapshot, or DATASET/EXPERIMENT under `records`.
pub(super) fn run_dir(flag: &str, run: &Path, records: &Path) -> Result<RunDir, Failure> {
    for candidate in [run.to_path_buf(), records.join(run)] {
        let dir = RunDir { path: candidate };
        if dir.config_path().is_file() {
            return Ok(dir);
        }
    }
    Err(Failure::usage(format!(
        "{flag} {}: no run there (expected a run directory holding config.yaml, e.g. {}/shapes/bs64_lr0.0003_ResNet18, or DATASET/EXPERIMENT under {})",
        run.display(),
        records.display(),
        records.display()
    )))
}

/// The config, the run's folders and where it starts. A fresh run resumes its latest checkpoint
/// when `reload` is on (and `--fresh` is not given) and there is one.
fn plan(args: &TrainArgs) -> Result<Plan, Failure> {
    let Some(run) = &args.resume else {
        let cfg = args.config.resolve()?;
        let paths = args.roots.paths(&cfg);
        let reload = cfg.reload && !args.fresh && paths.checkpoints.last_path().is_file();
        let start = if reload {
            Start::Resume { epoch: None }
        } else {
            Start::Fresh
        };
        return Ok(Plan { cfg, paths, start });
    };
    let dir = run_dir("--resume", run, &args.roots.records)?;
    let cfg = dir.read_config(&args.config.set).map_err(Failure::usage)?;
    if cfg.experiment_name() != dir.experiment() {
        return Err(Failure::usage(format!(
            "--set changes the experiment name to {} ({}): a resumed run keeps its experiment; \
             start a new run instead",
            cfg.experiment_name(),
            dir.path.display()
        )));
    }
    let paths = RunPaths {
        checkpoints: CheckpointDir::for_config(&args.roots.checkpoints, &cfg),
        run: dir,
    };
    let start = Start::Resume {
        epoch: args.from_epoch,
    };
    Ok(Plan { cfg, paths, start })
}

impl Plan {
    /// The checkpoint to resume, when resuming.
    fn checkpoint(&self) -> Result<Option<Checkpoint>, Failure> {
        let dir = &self.paths.checkpoints;
        let ckpt = match self.start {
            Start::Fresh => return Ok(None),
            Start::Resume { epoch: Some(n) } => dir.load_epoch(n).map_err(Failure::runtime)?,
            Start::Resume { epoch: None } => {
                dir.load_last().map_err(Failure::runtime)?.ok_or_else(|| {
                    Failure::runtime(format!(
                        "no checkpoint to resume in {} (was `checkpoint` off?)",
                        dir.path.display()
                    ))
                })?
            }
        };
        Ok(Some(ckpt))
    }
}

pub fn run(args: &TrainArgs) -> Result<ExitCode, Failure> {
    let plan = plan(args)?;
    let cfg = &plan.cfg;
    let device = device::resolve(cfg.device).map_err(Failure::usage)?;
    let run_dir = &plan.paths.run;
    let early_lock = if run_dir.path.is_dir() {
        Some(RunLock::acquire(run_dir).map_err(Failure::runtime)?)
    } else {
        None
    };
    let resume = plan.checkpoint()?;
    let mut trainer = build_trainer(&plan, device)?;
    let start_epoch = match &resume {
        Some(ckpt) => trainer.restore(ckpt).map_err(Failure::runtime)?,
        None => 1,
    };
    // From here on the run has files: its folder, its lock, its logs.
    let _lock = match early_lock {
        Some(lock) => lock,
        None => RunLock::acquire(run_dir).map_err(Failure::runtime)?,
    };
    let mut log = match &resume {
        Some(ckpt) => resume_log(&plan, ckpt, start_epoch - 1, &trainer)?,
        None => RunLog::start(run_dir.clone(), cfg).map_err(Failure::runtime)?,
    };

    let stop = Interrupter::new();
    install_interrupt_handler(stop.clone());
    let mut console = reporter_for_stdout(args.json);
    let result = {
        let mut fan = Fanout(vec![console.as_mut(), &mut log]);
        let r = trainer.run(start_epoch, &mut fan, &stop);
        if let Err(e) = &r {
            fan.report(&Event::Failed {
                error: e.to_string(),
            });
        }
        r
    };
    match result {
        Ok(summary) if summary.stopped => {
            log.finish(RunState::Stopped, None)
                .map_err(Failure::runtime)?;
            eprintln!(
                "interrupted: stopped after epoch {} completed; records kept in {}",
                summary.last_epoch,
                run_dir.path.display()
            );
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Ok(_) => {
            log.finish(RunState::Finished, None)
                .map_err(Failure::runtime)?;
            if !args.json {
                eprintln!("records: {}", run_dir.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = log.finish(RunState::Failed, Some(e.to_string()));
            Err(Failure::runtime(e))
        }
    }
}

/// Loads the training set (and, for a concatenation, the evaluation set) and builds the trainer
/// that evaluates into the run's `tsne/` folder and saves into its folders.
fn build_trainer(plan: &Plan, device: tch::Device) -> Result<Trainer, Failure> {
    let cfg = &plan.cfg;
    let bar = DecodeBar::default();
    let set = data::load_with_progress(cfg, &|p| bar.show(p));
    bar.finish();
    let set = Arc::new(set.map_err(Failure::runtime)?);
    let eval_set = if cfg.customize_datasets {
        // Trained on the concatenation, judged on the named dataset alone (SPEC 2.7).
        Arc::new(data::load_evaluation(cfg).map_err(Failure::runtime)?)
    } else {
        set.clone()
    };
    let evaluator = Evaluator::new(cfg, eval_set, Some(plan.paths.run.tsne_dir()));
    let saver = RunSaver {
        checkpoints: plan.paths.checkpoints.clone(),
        run: Some(plan.paths.run.clone()),
        checkpoint: cfg.checkpoint,
        save_model: cfg.save_model,
        keep_every: cfg.keep_checkpoint_every,
    };
    Trainer::new(cfg, set, evaluator, Some(saver), device).map_err(Failure::usage)
}

/// Continues the logs of a run resumed after epoch `done`: later history is cut back (rows,
/// events, kept checkpoints) and the records CSV rewritten from the checkpoint's records.
fn resume_log(
    plan: &Plan,
    ckpt: &Checkpoint,
    done: i64,
    trainer: &Trainer,
) -> Result<RunLog, Failure> {
    let (cfg, run_dir) = (&plan.cfg, &plan.paths.run);
    let log = RunLog::resume(run_dir.clone(), cfg, done).map_err(Failure::runtime)?;
    plan.paths
        .checkpoints
        .forget_after(done)
        .map_err(Failure::runtime)?;
    write_records_csv(
        &run_dir.records_path(&run_dir.experiment()),
        &trainer.records().columns,
    )
    .map_err(Failure::runtime)?;
    eprintln!(
        "resuming {} after epoch {done} of {}{}",
        run_dir.path.display(),
        cfg.epochs,
        ckpt.meta
            .source
            .as_ref()
            .map(|s| format!(" (imported from {s})"))
            .unwrap_or_default()
    );
    Ok(log)
}

/// Ctrl-C (or SIGTERM) asks the loop to stop after the current step; a second one exits at once.
/// The handler writes with `writeln!` and ignores errors: with stderr closed, `eprintln!` would
/// panic and kill the handler thread, leaving later signals unanswered.
fn install_interrupt_handler(stop: Interrupter) {
    use std::io::Write;
    let _ = ctrlc::set_handler(move || {
        let mut err = std::io::stderr();
        if stop.is_stopped() {
            let _ = writeln!(err, "\ninterrupted twice: exiting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        let _ = writeln!(
            err,
            "\ninterrupt received: stopping after the current step or evaluation stage (press Ctrl-C again to exit at once)"
        );
        stop.stop();
    });
}
