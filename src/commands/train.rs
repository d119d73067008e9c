//! `cdw train`: resolve the config, load the dataset, train, and keep the run's files.

use std::process::ExitCode;

use crate::console::reporter_for_stdout;
use crate::data;
use crate::device;
use crate::events::{Event, Fanout, Reporter};
use crate::store::{RunDir, RunLog, RunState};
use crate::train::{Interrupter, Trainer};

use super::{Failure, TrainArgs};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: &TrainArgs) -> Result<ExitCode, Failure> {
    let cfg = args.config.resolve()?;
    let device = device::resolve(cfg.device).map_err(Failure::usage)?;
    let set = data::load(&cfg).map_err(Failure::runtime)?;

    let stop = Interrupter::new();
    install_interrupt_handler(stop.clone());

    let mut trainer = Trainer::new(&cfg, set, device).map_err(Failure::usage)?;
    let mut log =
        RunLog::start(RunDir::for_config(&args.records, &cfg), &cfg).map_err(Failure::runtime)?;
    let run_path = log.dir().path.clone();
    trainer.evaluator.tsne_dir = Some(log.dir().tsne_dir());
    let mut console = reporter_for_stdout(args.json);
    let result = {
        let mut fan = Fanout(vec![console.as_mut(), &mut log]);
        let r = trainer.run(1, &mut fan, &stop);
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
fn install_interrupt_handler(stop: Interrupter) {
    let _ = ctrlc::set_handler(move || {
        if stop.is_stopped() {
            eprintln!("\ninterrupted twice: exiting now");
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!("\ninterrupt received: stopping after the current step (press Ctrl-C again to exit at once)");
        stop.stop();
    });
}
