//! How a headless command shows its events: progress bars on a terminal (training epochs and
//! evaluation stages, image decoding, downloads), or one JSON object per line when stdout is not
//! a terminal or `--json` asks. Every progress bar of cdw is made here.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::data::download::DownloadEvent;
use crate::data::DecodeProgress;
use crate::events::{DownloadStage, EvaluationStage, Event, Reporter, Space};

/// Bar layouts (indicatif templates).
const EPOCH_TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {msg}";
const STAGE_TEMPLATE: &str = "{prefix:>16} [{bar:30}] {pos}/{len} {elapsed}";
const DECODE_TEMPLATE: &str = "decoding {prefix} [{bar:30}] {pos}/{len} images {per_sec} ETA {eta}";
const BYTES_TEMPLATE: &str =
    "{prefix:<11} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";
const SPINNER_TEMPLATE: &str = "{prefix:<11} {spinner} {bytes} {binary_bytes_per_sec}";

/// A hidden-when-not-a-terminal bar of `len` steps drawn with `template` (a template that does
/// not parse falls back to indicatif's default look rather than failing a run).
fn new_bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::new(len);
    bar.set_style(style);
    bar
}

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
            let bar = new_bar(total as u64, STAGE_TEMPLATE);
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

/// Shows the [`Event::EvaluationProgress`] of an evaluation outside training (`cdw evaluate`), a
/// bar per stage.
impl Reporter for StageBar {
    fn report(&mut self, event: &Event) {
        if let Event::EvaluationProgress {
            stage,
            space,
            done,
            total,
            ..
        } = event
        {
            self.show(&stage.label(*space), *done, *total);
        }
    }
}

/// A bar for decoding a dataset's images (hidden when stderr is not a terminal); a concatenation
/// restarts it for each part.
pub struct DecodeBar(ProgressBar);

impl Default for DecodeBar {
    fn default() -> DecodeBar {
        DecodeBar(new_bar(0, DECODE_TEMPLATE))
    }
}

impl DecodeBar {
    /// Shows `p` (callable from the decoding threads).
    pub fn show(&self, p: DecodeProgress<'_>) {
        let bar = &self.0;
        if bar.prefix() != p.dataset {
            bar.set_prefix(p.dataset.to_string());
            bar.reset();
        }
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
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

    /// Clears the bar of the epoch under way.
    fn clear_epoch_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// The run's header lines; the ETA counts the steps from here.
    fn started(&mut self, event: &Event) {
        let Event::Started {
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
        } = event
        else {
            return;
        };
        println!(
            "experiment: {experiment} ({method} on {dataset}, {images} images, batch {batch_size})"
        );
        println!("device: {device}");
        println!("{} trainable parameters", thousands(*parameters));
        self.steps_per_epoch = *steps_per_epoch;
        self.total_steps = steps_per_epoch * (epochs - start_epoch + 1);
        self.started = Some(Instant::now());
    }

    /// Moves the epoch's bar and its loss / throughput / ETA message.
    fn step(&mut self, event: &Event) {
        let Event::Step {
            epoch,
            step,
            steps,
            total_loss,
            instance_loss,
            feature_loss,
            images_per_sec,
            ..
        } = event
        else {
            return;
        };
        self.steps_done += 1;
        let eta = self.eta();
        let bar = self
            .bar
            .get_or_insert_with(|| new_bar(*steps as u64, EPOCH_TEMPLATE));
        bar.set_prefix(format!("epoch {epoch}"));
        bar.set_position(*step as u64);
        bar.set_message(format!(
            "loss {total_loss:.4} (inst {instance_loss:.4} feat {feature_loss:.4}) {images_per_sec:.0} img/s ETA {}",
            hms(eta)
        ));
    }

    /// A bar for the stage of the evaluation under way.
    fn evaluation_progress(
        &mut self,
        epoch: i64,
        stage: EvaluationStage,
        space: Option<Space>,
        done: usize,
        total: usize,
    ) {
        self.clear_epoch_bar();
        let label = format!("eval {epoch}: {}", stage.label(space));
        self.stage.show(&label, done, total);
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
            Event::Started { .. } => self.started(event),
            Event::Step { .. } => self.step(event),
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
                self.clear_epoch_bar();
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
            } => self.evaluation_progress(*epoch, *stage, *space, *done, *total),
            Event::TsneWritten { files, .. } => {
                for f in files {
                    println!("wrote {f}");
                }
            }
            Event::Evaluation { .. } => {
                self.clear_epoch_bar();
                if let Some(line) = evaluation_line(event) {
                    println!("{line}");
                }
            }
            Event::Stopped {
                epoch,
                step,
                reason,
            } => {
                self.clear_epoch_bar();
                println!("stopped ({reason}) at epoch {epoch} step {step}");
            }
            Event::ModelSaved { tag, path, .. } => println!("saved model ({tag}): {path}"),
            Event::Finished { epochs, seconds } => println!(
                "finished {epochs} epochs in {}",
                hms(Duration::from_secs_f64(*seconds))
            ),
            Event::Failed { error } => {
                self.clear_epoch_bar();
                eprintln!("failed: {error}");
            }
            // Checkpoints are silent; the other commands' events are not training's.
            Event::Checkpoint { .. }
            | Event::DownloadProgress { .. }
            | Event::Downloaded { .. }
            | Event::DownloadManual { .. }
            | Event::EvaluateResult { .. } => {}
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

/// Shows a download's events on stderr: a bar per stage on a terminal, a line per stage
/// otherwise.
pub struct DownloadBars {
    bar: Option<ProgressBar>,
    stage: &'static str,
    terminal: bool,
}

impl Default for DownloadBars {
    fn default() -> DownloadBars {
        DownloadBars {
            bar: None,
            stage: "",
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl DownloadBars {
    /// The bar of `stage`, created when the stage starts.
    fn bar(&mut self, stage: &'static str, total: Option<u64>) -> &ProgressBar {
        if self.stage != stage {
            self.finish();
            self.stage = stage;
            if !self.terminal {
                eprintln!("{stage}...");
            }
        }
        let bar = self.bar.get_or_insert_with(|| {
            let template = if total.is_some() {
                BYTES_TEMPLATE
            } else {
                SPINNER_TEMPLATE
            };
            let bar = new_bar(total.unwrap_or(0), template);
            bar.set_prefix(stage);
            bar
        });
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar
    }

    pub fn show(&mut self, event: DownloadEvent) {
        match event {
            DownloadEvent::Request { url, resume_from } => {
                self.finish();
                if resume_from > 0 {
                    eprintln!("resuming {url} after {}", human_bytes(resume_from));
                } else {
                    eprintln!("downloading {url}");
                }
            }
            DownloadEvent::Received { done, total } => {
                self.bar("downloading", total).set_position(done);
            }
            DownloadEvent::Retry {
                attempt,
                done,
                reason,
            } => {
                self.finish();
                eprintln!(
                    "connection broke off after {} ({reason}); resuming (try {attempt})",
                    human_bytes(done)
                );
            }
            DownloadEvent::Found { path } => {
                eprintln!("using the archive already at {}", path.display());
            }
            DownloadEvent::Hashing { done, total, .. } => {
                self.bar("checking MD5", Some(total)).set_position(done);
            }
            DownloadEvent::Extracting { done, total, .. } => {
                self.bar("extracting", Some(total)).set_position(done);
            }
            DownloadEvent::Replacing { path } => {
                self.finish();
                eprintln!("replacing {}", path.display());
            }
            DownloadEvent::Checking { path } => {
                self.finish();
                eprintln!("checking {}", path.display());
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.stage = "";
    }
}

/// The stage, bytes done and total of a download event; `None` for what is only worth a line on
/// stderr (requests, retries, a found archive, a replaced folder).
fn download_stage(event: &DownloadEvent) -> Option<(DownloadStage, u64, Option<u64>)> {
    match *event {
        DownloadEvent::Received { done, total } => Some((DownloadStage::Download, done, total)),
        DownloadEvent::Hashing { done, total, .. } => Some((DownloadStage::Md5, done, Some(total))),
        DownloadEvent::Extracting { done, total, .. } => {
            Some((DownloadStage::Extract, done, Some(total)))
        }
        DownloadEvent::Checking { .. } => Some((DownloadStage::Check, 0, None)),
        DownloadEvent::Request { .. }
        | DownloadEvent::Retry { .. }
        | DownloadEvent::Found { .. }
        | DownloadEvent::Replacing { .. } => None,
    }
}

/// A download's progress as the [`Event::DownloadProgress`] of `dataset` (see
/// [`download_stage`] for what has none).
pub fn download_event(dataset: &str, event: &DownloadEvent) -> Option<Event> {
    let (stage, done, total) = download_stage(event)?;
    Some(Event::DownloadProgress {
        dataset: dataset.to_string(),
        stage,
        done,
        total,
    })
}

/// A download's progress as JSON lines on stdout, at most ten a second (the first of each stage,
/// and the one that completes it when the total is known, always), its notes on stderr.
pub struct DownloadJson {
    dataset: String,
    out: JsonLines,
    notes: DownloadBars,
    last: Option<(DownloadStage, Instant)>,
}

impl DownloadJson {
    pub fn new(dataset: &str) -> DownloadJson {
        DownloadJson {
            dataset: dataset.to_string(),
            out: JsonLines,
            notes: DownloadBars {
                bar: None,
                stage: "",
                terminal: false,
            },
            last: None,
        }
    }

    pub fn show(&mut self, event: DownloadEvent) {
        let Some((stage, done, total)) = download_stage(&event) else {
            self.notes.show(event);
            return;
        };
        let due = match self.last {
            Some((last, at)) => {
                last != stage || total == Some(done) || at.elapsed() >= Duration::from_millis(100)
            }
            None => true,
        };
        if due {
            self.last = Some((stage, Instant::now()));
            self.out.report(&Event::DownloadProgress {
                dataset: self.dataset.clone(),
                stage,
                done,
                total,
            });
        }
    }

    /// Reports `event` (the download's outcome).
    pub fn report(&mut self, event: &Event) {
        self.out.report(event);
    }
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
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
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(thousands(0), "0");
    }

    #[test]
    fn hms_formats_hours_minutes_seconds() {
        assert_eq!(hms(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(hms(Duration::from_secs(59)), "0:00:59");
    }

    #[test]
    fn every_bar_template_parses() {
        for t in [
            EPOCH_TEMPLATE,
            STAGE_TEMPLATE,
            DECODE_TEMPLATE,
            BYTES_TEMPLATE,
            SPINNER_TEMPLATE,
        ] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(170_052_171), "162.2 MiB");
    }

    #[test]
    fn download_events_become_progress_of_four_stages() {
        use std::path::PathBuf;
        let path = PathBuf::from("data/x.tar.gz");
        let cases = [
            (
                DownloadEvent::Received {
                    done: 10,
                    total: None,
                },
                Some((DownloadStage::Download, 10, None)),
            ),
            (
                DownloadEvent::Hashing {
                    path: path.clone(),
                    done: 5,
                    total: 9,
                },
                Some((DownloadStage::Md5, 5, Some(9))),
            ),
            (
                DownloadEvent::Extracting {
                    path: path.clone(),
                    done: 9,
                    total: 9,
                },
                Some((DownloadStage::Extract, 9, Some(9))),
            ),
            (
                DownloadEvent::Checking { path: path.clone() },
                Some((DownloadStage::Check, 0, None)),
            ),
            (DownloadEvent::Found { path }, None),
        ];
        for (event, want) in cases {
            let got = download_event("cifar10", &event);
            let want = want.map(|(stage, done, total)| Event::DownloadProgress {
                dataset: "cifar10".into(),
                stage,
                done,
                total,
            });
            assert_eq!(got, want, "{event:?}");
        }
        let json = serde_json::to_string(&download_event(
            "stl10",
            &DownloadEvent::Received {
                done: 3,
                total: Some(7),
            },
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"{"event":"download_progress","dataset":"stl10","stage":"download","done":3,"total":7}"#
        );
    }
}
