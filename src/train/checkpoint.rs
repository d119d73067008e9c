//! When a run saves (SPEC 2.5): a resumable checkpoint every epoch, the network every 100 epochs,
//! at a new best NMI and at the end, and the records CSV at every 100-epoch mark and at the end.
//! How files look is the store's business ([`crate::store::checkpoint`]).

use crate::events::{Event, ModelTag, Reporter};
use crate::store::checkpoint::{Checkpoint, CheckpointDir, ModelMeta};
use crate::store::records::write_records_csv;
use crate::store::{is_mark, RunDir, StoreError};

/// Saves a run's checkpoints, models and records at the end of each epoch.
#[derive(Debug, Clone)]
pub struct RunSaver {
    pub checkpoints: CheckpointDir,
    /// Where the records CSV goes (`None`: no records file, e.g. in tests).
    pub run: Option<RunDir>,
    /// `checkpoint` of the config: write a resumable checkpoint every epoch.
    pub checkpoint: bool,
    /// `save_model` of the config: save the network every 100 epochs, at best and at the end.
    pub save_model: bool,
    /// `keep_checkpoint_every` of the config: also keep the checkpoint of every N-th epoch.
    pub keep_every: i64,
}

impl RunSaver {
    /// Saves what the end of `state`'s epoch calls for: the models due (`best` when the records
    /// name this epoch best, `epoch_N` at a mark, `final` after the last epoch), the records CSV
    /// (at a mark and at the end), and the checkpoint. The checkpoint is written last: once it
    /// names an epoch, everything that epoch saves is on disk, so a resume never misses a model
    /// or record.
    pub fn end_of_epoch(
        &self,
        state: &Checkpoint,
        reporter: &mut dyn Reporter,
    ) -> Result<(), StoreError> {
        let meta = &state.meta;
        let epoch = meta.epoch;
        let last = epoch == meta.epochs;
        if self.save_model {
            let model_meta = ModelMeta {
                dataset: meta.dataset.clone(),
                experiment: meta.experiment.clone(),
                epoch,
                net: meta.net.clone(),
            };
            let due = [
                (meta.records.best_epoch == Some(epoch), ModelTag::Best),
                (is_mark(epoch), ModelTag::Epoch(epoch)),
                (last, ModelTag::Final),
            ];
            for (_, tag) in due.into_iter().filter(|(due, _)| *due) {
                let path = self
                    .checkpoints
                    .save_model(tag, &state.model, &model_meta)?;
                reporter.report(&Event::ModelSaved {
                    epoch,
                    tag,
                    path: path.display().to_string(),
                });
            }
        }
        if let Some(run) = &self.run {
            if is_mark(epoch) || last {
                write_records_csv(&run.records_path(&meta.experiment), &meta.records.columns)?;
            }
        }
        if self.checkpoint {
            let path = self.checkpoints.save_keeping(state, self.keep_every)?;
            reporter.report(&Event::Checkpoint {
                epoch,
                path: path.display().to_string(),
            });
        }
        Ok(())
    }
}
