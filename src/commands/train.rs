//! `cdw train`: resolve the config, load the dataset, resume a checkpoint when asked (or when
//! `reload` finds one), train, and keep the run's files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;
use crate::console::reporter_for_stdout;
use crate::device;
use crate::events::{Event, Fanout, Reporter};
use crate::store::checkpoint::{Checkpoint, CheckpointDir};
use crate::store::lock::RunLock;
use crate::store::records::write_records_csv;
use crate::store::{RunDir, RunLog, RunState};
use crate::train::checkpoint::RunSaver;
use crate::train::{Interrupter, Trainer};

use super::{Failure, TrainArgs};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The run directory `--resume RUN` names: a directory with a config snapshot, or
/// DATASET/EXPERIMENT under `records`.
fn resume_dir(run: &Path, records: &Path) -> Result<RunDir, Failure> {
    for candidate in [run.to_path_buf(), records.join(run)] {
        if candidate.join("config.yaml").is_file() {
            return Ok(RunDir { path: candidate });
        }
    }
    Err(Failure::usage(format!(
        "--resume {}: no run there (expected a run directory holding config.yaml, e.g. {}/shapes/bs64_lr0.0003_ResNet18, or DATASET/EXPERIMENT under {})",
        run.display(),
        records.display(),
        records.display()
    )))
}

/// The config and, when resuming, the checkpoint to resume.
fn plan(args: &TrainArgs) -> Result<(Config, Option<Checkpoint>), Failure> {
    let Some(run) = &args.resume else {
        let cfg = args.config.resolve()?;
        let ckpt = if cfg.reload && !args.fresh {
            CheckpointDir::for_config(&args.checkpoints, &cfg)
                .load_last()
                .map_err(Failure::runtime)?
        } else {
            None
        };
        return Ok((cfg, ckpt));
    };
    let dir = resume_dir(run, &args.records)?;
    let cfg = dir.read_config(&args.config.set).map_err(Failure::usage)?;
    if cfg.experiment_name() != dir.path.file_name().unwrap_or_default().to_string_lossy() {
        return Err(Failure::usage(format!(
            "--set changes the experiment name to {} ({}): a resumed run keeps its experiment; \
             start a new run instead",
            cfg.experiment_name(),
            dir.path.display()
        )));
    }
    let ckpts = CheckpointDir::for_config(&args.checkpoints, &cfg);
    let ckpt = match args.from_epoch {
        Some(n) => ckpts.load_epoch(n).map_err(Failure::runtime)?,
        None => ckpts
            .load_last()
            .map_err(Failure::runtime)?
            .ok_or_else(|| {
                Failure::runtime(format!(
                    "no checkpoint to resume in {} (was `checkpoint` off?)",
                    ckpts.path.display()
                ))
            })?,
    };
    Ok((cfg, Some(ckpt)))
}

pub fn run(args: &TrainArgs) -> Result<ExitCode, Failure> {
    let (cfg, resume) = plan(args)?;
    let device = device::resolve(cfg.device).map_err(Failure::usage)?;
    let run_dir = RunDir::for_config(&args.records, &cfg);
    let ckpt_dir = CheckpointDir::for_config(&args.checkpoints, &cfg);
    let _lock = RunLock::acquire(&run_dir.path).map_err(Failure::runtime)?;
    let set = super::datasets::load_with_bar(&cfg).map_err(Failure::runtime)?;

    let stop = Interrupter::new();
    install_interrupt_handler(stop.clone());

    let set = std::sync::Arc::new(set);
    let eval_set = if cfg.customize_datasets {
        // Trained on the concatenation, judged on the named dataset alone (SPEC 2.7).
        std::sync::Arc::new(crate::data::load_evaluation(&cfg).map_err(Failure::runtime)?)
    } else {
        set.clone()
    };
    let evaluator = crate::eval::Evaluator::new(&cfg, eval_set, Some(run_dir.tsne_dir()));
    let saver = RunSaver {
        checkpoints: ckpt_dir.clone(),
        run: Some(run_dir.clone()),
        checkpoint: cfg.checkpoint,
        save_model: cfg.save_model,
    };
    let mut trainer =
        Trainer::new(&cfg, set, evaluator, Some(saver), device).map_err(Failure::usage)?;
    let (start_epoch, mut log) = match &resume {
        Some(ckpt) => {
            let start = trainer.restore(ckpt).map_err(Failure::runtime)?;
            let done = start - 1;
            let log = RunLog::resume(run_dir.clone(), &cfg, done).map_err(Failure::runtime)?;
            ckpt_dir.forget_after(done).map_err(Failure::runtime)?;
            write_records_csv(
                &run_dir.records_path(&cfg.experiment_name()),
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
            (start, log)
        }
        None => (
            1,
            RunLog::start(run_dir.clone(), &cfg).map_err(Failure::runtime)?,
        ),
    };
    let run_path: PathBuf = run_dir.path.clone();
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
                run_path.display()
            );
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Ok(_) => {
            log.finish(RunState::Finished, None)
                .map_err(Failure::runtime)?;
            if !args.json {
                eprintln!("records: {}", run_path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = log.finish(RunState::Failed, Some(e.to_string()));
            Err(Failure::runtime(e))
        }
    }
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
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        let _ = writeln!(
            err,
            "\ninterrupt received: stopping after the current step or evaluation stage (press Ctrl-C again to exit at once)"
        );
        stop.stop();
    });
}
