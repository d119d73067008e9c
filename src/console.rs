//! How a headless run shows its events: a progress bar with loss, throughput and ETA on a
//! terminal, or one JSON object per line when stdout is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{Event, Reporter, Space};

/// Chooses the progress bar on a terminal and JSON lines otherwise.
pub fn reporter_for_stdout(force_json: bool) -> Box<dyn Reporter> {
    if force_json || !std::io::stdout().is_terminal() {
        Box::new(JsonLines)
    } else {
        Box::new(ProgressReporter::default())
    }
}

/// One JSON object per event on stdout (header lines go to stderr so stdout stays parseable).
pub struct JsonLines;

impl Reporter for JsonLines {
    fn report(&mut self, event: &Event) {
        if let Event::Started {
            experiment,
            device,
            parameters,
            ..
        } = event
        {
            eprintln!(
                "experiment {experiment} on {device}: {} trainable parameters",
                thousands(*parameters)
            );
        }
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, event);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// A progress bar per stage of a long job (embedding, k-means, t-SNE, ...) on stderr, hidden when
/// stderr is not a terminal. A new label starts a new bar.
#[derive(Default)]
pub struct StageBar {
    bar: Option<ProgressBar>,
    label: String,
}

impl StageBar {
    /// Shows `done` of `total` for the stage `label`.
    pub fn show(&mut self, label: &str, done: usize, total: usize) {
        if self.bar.is_none() || label != self.label {
            self.finish();
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            self.bar = Some(bar);
            self.label = label.to_string();
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    /// Clears the bar of the current stage.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A progress bar per epoch and a summary line per epoch; a bar per stage of an evaluation.
#[derive(Default)]
pub struct ProgressReporter {
    bar: Option<ProgressBar>,
    stage: StageBar,
    started: Option<Instant>,
    steps_per_epoch: i64,
    total_steps: i64,
    steps_done: i64,
}

impl ProgressReporter {
    fn eta(&self) -> Duration {
        let Some(t0) = self.started else {
            return Duration::ZERO;
        };
        if self.steps_done == 0 {
            return Duration::ZERO;
        }
        let per_step = t0.elapsed().as_secs_f64() / self.steps_done as f64;
        Duration::from_secs_f64(per_step * (self.total_steps - self.steps_done).max(0) as f64)
    }
}

/// `11637696` as `11,637,696`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Reporter for ProgressReporter {
    fn report(&mut self, event: &Event) {
        if !matches!(event, Event::EvaluationProgress { .. }) {
            self.stage.finish();
        }
        match event {
            Event::Started {
                experiment,
                dataset,
                method,
                device,
                parameters,
                images,
                epochs,
                start_epoch,
                steps_per_epoch,
                batch_size,
            } => {
                println!("experiment: {experiment} ({method} on {dataset}, {images} images, batch {batch_size})");
                println!("device: {device}");
                println!("{} trainable parameters", thousands(*parameters));
                self.steps_per_epoch = *steps_per_epoch;
                self.total_steps = steps_per_epoch * (epochs - start_epoch + 1);
                self.started = Some(Instant::now());
            }
            Event::Step {
                epoch,
                step,
                steps,
                total_loss,
                instance_loss,
                feature_loss,
                images_per_sec,
                ..
            } => {
                self.steps_done += 1;
                let eta = self.eta();
                let bar = self.bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(*steps as u64);
                    b.set_style(
                        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    b
                });
                bar.set_prefix(format!("epoch {epoch}"));
                bar.set_position(*step as u64);
                bar.set_message(format!(
                    "loss {total_loss:.4} (inst {instance_loss:.4} feat {feature_loss:.4}) {images_per_sec:.0} img/s ETA {}",
                    hms(eta)
                ));
            }
            Event::Epoch {
                epoch,
                epochs,
                instance_loss,
                feature_loss,
                total_loss,
                lr,
                seconds,
                images_per_sec,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                println!(
                    "epoch {epoch}/{epochs}: loss {total_loss:.4} (instance {instance_loss:.4}, feature {feature_loss:.4}) lr {lr:.3e} {seconds:.1}s {images_per_sec:.0} img/s"
                );
            }
            Event::EvaluationProgress {
                epoch,
                stage,
                space,
                done,
                total,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let label = format!("eval {epoch}: {}", stage.label(*space));
                self.stage.show(&label, *done, *total);
            }
            Event::TsneWritten { files, .. } => {
                for f in files {
                    println!("wrote {f}");
                }
            }
            Event::Evaluation { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                if let Some(line) = evaluation_line(event) {
                    println!("{line}");
                }
            }
            Event::Stopped {
                epoch,
                step,
                reason,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                println!("stopped ({reason}) at epoch {epoch} step {step}");
            }
            Event::Checkpoint { .. } => {}
            Event::ModelSaved { tag, path, .. } => println!("saved model ({tag}): {path}"),
            Event::Finished { epochs, seconds } => println!(
                "finished {epochs} epochs in {}",
                hms(Duration::from_secs_f64(*seconds))
            ),
            Event::Failed { error } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("failed: {error}");
            }
        }
    }
}

/// One line for an [`Event::Evaluation`]: the six metrics and the best NMI so far.
pub fn evaluation_line(event: &Event) -> Option<String> {
    let Event::Evaluation {
        epoch,
        samples,
        clusters,
        current,
        best,
        seconds,
    } = event
    else {
        return None;
    };
    let mut line = format!("  eval epoch {epoch} ({samples} images, k={clusters}, {seconds:.1}s):");
    for (i, space) in Space::ALL.into_iter().enumerate() {
        let s = current.space(space);
        let sep = if i == 0 { "" } else { " |" };
        line.push_str(&format!(
            "{sep} {space} NMI {:.4} ARI {:.4} ACC {:.4}",
            s.nmi, s.ari, s.acc
        ));
    }
    line.push_str(&format!(
        " | best NMI {:.4} / {:.4}",
        best.nmi_backbone, best.nmi_feature
    ));
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Scores;

    #[test]
    fn evaluation_line_shows_the_six_metrics() {
        let e = Event::Evaluation {
            epoch: 7,
            samples: 6000,
            clusters: 10,
            current: Scores::from_values([0.5, 0.25, 0.625, 0.4, 0.2, 0.5]),
            best: Scores::from_values([0.55, 0.3, 0.7, 0.45, 0.2, 0.5]),
            seconds: 12.34,
        };
        assert_eq!(
            evaluation_line(&e).unwrap(),
            "  eval epoch 7 (6000 images, k=10, 12.3s): backbone NMI 0.5000 ARI 0.2500 ACC 0.6250 | feature NMI 0.4000 ARI 0.2000 ACC 0.5000 | best NMI 0.5500 / 0.4500"
        );
        assert_eq!(evaluation_line(&Event::Failed { error: "x".into() }), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(11_637_696), "11,637,696");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(thousands(0), "0");
    }

    #[test]
    fn hms_formats_hours_minutes_seconds() {
        assert_eq!(hms(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(hms(Duration::from_secs(59)), "0:00:59");
    }
}
