//! What `cdw bench tui` measures, drawn into ratatui's `TestBackend` so the measure is the drawing
//! (state to cells, the buffer diff) without a terminal's speed in it: frame times of the dashboard
//! over a run of 1000 epochs and 100,000 steps (with an evaluation after every epoch), of the
//! Compare screen with four such runs overlaid, and the time the Records screen takes to open and
//! first draw a 10,000-row CSV and a 1000-epoch run.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{Ctx, Screen};
use super::compare::CompareScreen;
use super::dashboard::Dashboard;
use super::feed::Feed;
use super::gpu::{DeviceReading, GpuView};
use super::records::RecordsScreen;
use crate::events::{Event, Scores};
use crate::store::runs::{RunSummary, ShownState};
use crate::store::table::Table;
use crate::store::{evaluation_header, METRICS_HEADER};

/// The history drawn: epochs, and steps per epoch.
pub const EPOCHS: i64 = 1000;
pub const STEPS_PER_EPOCH: i64 = 100;

/// A run `epochs` epochs long (of `STEPS_PER_EPOCH` steps), its losses falling with noise.
pub fn long_feed(epochs: i64) -> Feed {
    let mut f = Feed::default();
    f.apply(&Event::Started {
        experiment: "bs128_lr0.0003_ResNet34".into(),
        dataset: "cifar10".into(),
        method: "cd".into(),
        device: "cuda:0".into(),
        parameters: 21_800_000,
        images: 60_000,
        epochs: epochs + 500,
        start_epoch: 1,
        steps_per_epoch: STEPS_PER_EPOCH,
        batch_size: 128,
    });
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        #[allow(clippy::cast_precision_loss)]
        let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
        u - 0.5
    };
    for e in 1..=epochs {
        #[allow(clippy::cast_precision_loss)]
        let base = 4.0 + 5.0 / (1.0 + e as f64 / 50.0);
        for s in 1..=STEPS_PER_EPOCH {
            let total = base + 0.4 * noise();
            f.apply(&Event::Step {
                epoch: e,
                step: s,
                steps: STEPS_PER_EPOCH,
                instance_loss: total * 0.6,
                feature_loss: total * 0.4,
                total_loss: total,
                lr: 0.0003,
                images_per_sec: 2400.0,
            });
        }
        f.apply(&Event::Epoch {
            epoch: e,
            epochs: epochs + 500,
            instance_loss: base * 0.6,
            feature_loss: base * 0.4,
            total_loss: base,
            lr: 0.0003,
            seconds: 5.3,
            images_per_sec: 2400.0,
        });
        #[allow(clippy::cast_precision_loss)]
        let nmi = 0.6 * (1.0 - (-(e as f64) / 200.0).exp()) + 0.02 * noise();
        let s = Scores::from_values([nmi, nmi * 0.8, nmi + 0.2, nmi, nmi * 0.8, nmi + 0.2]);
        f.apply(&Event::Evaluation {
            epoch: e,
            samples: 6000,
            clusters: 10,
            current: s,
            best: s,
            seconds: 0.8,
        });
    }
    f
}

/// The times of `frames` frames of the dashboard screen over `long_feed(EPOCHS)` at `width` x `height`,
/// a new step arriving before each frame (the worst case: every frame redraws the curves). The
/// first frame (allocating the buffers) is not counted.
pub fn frame_times(width: u16, height: u16, frames: usize) -> Vec<Duration> {
    let mut ctx = Ctx::new(PathBuf::from("records"), PathBuf::from("checkpoints"));
    ctx.now = SystemTime::now();
    let run = RunSummary {
        path: PathBuf::from("records/cifar10/bs128_lr0.0003_ResNet34"),
        dataset: "cifar10".into(),
        experiment: "bs128_lr0.0003_ResNet34".into(),
        method: "cd".into(),
        shown: ShownState::Running,
        epoch: EPOCHS,
        epochs: EPOCHS + 500,
        best_nmi_feature: None,
        best_nmi_backbone: None,
        images_per_sec: Some(2400.0),
        modified: ctx.now,
        pid: None,
        error: None,
    };
    let mut gpu = GpuView::default();
    for i in 0..60u32 {
        gpu.record(vec![DeviceReading {
            index: 0,
            name: "NVIDIA H200".into(),
            memory_used: Some(40 << 30),
            memory_total: Some(150 << 30),
            utilisation: Some(60 + i % 40),
            temperature: Some(60),
            power: Some(500_000),
            process_memory: Some(38 << 30),
        }]);
    }
    let mut dash = Dashboard::with_feed(&run, long_feed(EPOCHS), gpu);
    time_frames(&mut dash, &mut ctx, width, height, frames, |dash, _, i| {
        let n = i64::try_from(i).unwrap_or(i64::MAX);
        dash.apply(&Event::Step {
            epoch: EPOCHS + 1 + n / STEPS_PER_EPOCH,
            step: n % STEPS_PER_EPOCH + 1,
            steps: STEPS_PER_EPOCH,
            instance_loss: 2.4,
            feature_loss: 1.6,
            total_loss: 4.0,
            lr: 0.0003,
            images_per_sec: 2400.0,
        });
    })
}

/// Draws `screen` `frames` + 1 times at `width` x `height`, calling `before` ahead of each frame
/// (outside the timing), and returns the draw times of all frames but the first (which allocates
/// the buffers).
fn time_frames<S: Screen>(
    screen: &mut S,
    ctx: &mut Ctx,
    width: u16,
    height: u16,
    frames: usize,
    mut before: impl FnMut(&mut S, &mut Ctx, usize),
) -> Vec<Duration> {
    // TestBackend cannot fail.
    let Ok(mut term) = Terminal::new(TestBackend::new(width, height));
    let mut times = Vec::with_capacity(frames);
    for i in 0..=frames {
        before(screen, ctx, i);
        let t = Instant::now();
        let drawn = term.draw(|f| {
            let area = f.area();
            screen.draw(f, area, ctx);
        });
        if drawn.is_err() {
            break;
        }
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    times
}

/// Writes `runs` finished runs of `epochs` epochs under `root/cifar10/` (metrics.csv,
/// evaluation.csv after every epoch, config.yaml differing in batch size and method), as the
/// Compare and Records benchmarks read them; returns their folders.
pub fn write_runs(root: &Path, runs: usize, epochs: i64) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::with_capacity(runs);
    for r in 0..runs {
        let batch = 64 << (r % 3);
        let method = if r % 2 == 0 { "cd" } else { "simclr" };
        let suffix = if method == "simclr" { "_simclr" } else { "" };
        let dir = root
            .join("cifar10")
            .join(format!("bs{batch}_lr0.0003_ResNet34{suffix}_{r}"));
        fs::create_dir_all(&dir)?;
        let mut metrics = format!("{METRICS_HEADER}\n");
        let mut evals = format!("{}\n", evaluation_header());
        #[allow(clippy::cast_precision_loss)]
        for e in 1..=epochs {
            let x = e as f64;
            let loss = 4.0 + 5.0 / (1.0 + x / 50.0) + 0.01 * r as f64;
            metrics.push_str(&format!(
                "{e},{:.4},{:.4},{loss:.4},0.0003,5.30,2400.0\n",
                loss * 0.6,
                loss * 0.4
            ));
            let nmi = (0.6 - 0.05 * r as f64) * (1.0 - (-x / 200.0).exp());
            let s = [nmi, nmi * 0.8, nmi + 0.2, nmi, nmi * 0.8, nmi + 0.2];
            let cells: Vec<String> = s
                .iter()
                .chain(s.iter())
                .map(|v| format!("{v:.4}"))
                .collect();
            evals.push_str(&format!("{e},6000,10,{},0.80\n", cells.join(",")));
        }
        fs::write(dir.join("metrics.csv"), metrics)?;
        fs::write(dir.join("evaluation.csv"), evals)?;
        fs::write(
            dir.join("config.yaml"),
            format!(
                "dataset: cifar10\nbatch_size: {batch}\nepochs: {epochs}\nmethod: {method}\n\
                 backbone: ResNet34\nlearning_rate: 0.0003\nseed: 42\n"
            ),
        )?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Writes a CSV of `rows` rows and ten metric columns at `path`.
pub fn write_big_csv(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut text = String::from(
        "epoch,total_loss,instance_loss,feature_loss,nmi_feature,ari_feature,acc_feature,\
         nmi_backbone,ari_backbone,acc_backbone,lr\n",
    );
    #[allow(clippy::cast_precision_loss)]
    for i in 1..=rows {
        let x = i as f64;
        let loss = 4.0 + 5.0 / (1.0 + x / 500.0);
        let nmi = 0.6 * (1.0 - (-x / 2000.0).exp());
        text.push_str(&format!(
            "{i},{loss:.5},{:.5},{:.5},{nmi:.5},{:.5},{:.5},{nmi:.5},{:.5},{:.5},0.0003\n",
            loss * 0.6,
            loss * 0.4,
            nmi * 0.8,
            nmi + 0.2,
            nmi * 0.8,
            nmi + 0.2
        ));
    }
    fs::write(path, text)
}

/// How long the Records screen takes to open `path` (a CSV file or a run folder: read, parsed,
/// joined) and draw its first frame at `width` x `height`.
pub fn records_open_time(path: &Path, width: u16, height: u16) -> Result<Duration, String> {
    let ctx = Ctx::new(PathBuf::from("records"), PathBuf::from("checkpoints"));
    let Ok(mut term) = Terminal::new(TestBackend::new(width, height));
    let t = Instant::now();
    let mut screen = RecordsScreen::for_paths(&[path.to_path_buf()])?;
    term.draw(|f| {
        let area = f.area();
        screen.draw(f, area, &ctx);
    })
    .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if screen.table().map_or(0, Table::rows) == 0 {
        return Err(format!("{} opened with no rows", path.display()));
    }
    Ok(took)
}

/// The times of `frames` frames of the Compare screen over the runs in `runs`, overlaid, at
/// `width` x `height`, the metric stepped before each frame (so every frame draws new curves).
/// The first frame is not counted.
pub fn compare_frame_times(
    runs: &[PathBuf],
    width: u16,
    height: u16,
    frames: usize,
) -> Vec<Duration> {
    let mut ctx = Ctx::new(PathBuf::from("records"), PathBuf::from("checkpoints"));
    let mut screen = CompareScreen::new(runs);
    time_frames(
        &mut screen,
        &mut ctx,
        width,
        height,
        frames,
        |screen, ctx, i| {
            // Back and forth between the first two metrics (both scores of every run).
            let step = if i % 2 == 0 {
                KeyCode::Right
            } else {
                KeyCode::Left
            };
            screen.key(KeyEvent::new(step, KeyModifiers::NONE), ctx);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_runs_open_in_records_and_compare() {
        let dir = tempfile::tempdir().unwrap();
        let runs = write_runs(dir.path(), 4, 30).unwrap();
        let csv = dir.path().join("big.csv");
        write_big_csv(&csv, 500).unwrap();
        assert!(records_open_time(&csv, 80, 24).is_ok());
        assert!(records_open_time(&runs[0], 80, 24).is_ok());
        let screen = RecordsScreen::for_paths(&[runs[1].clone()]).unwrap();
        let t = screen.table().unwrap();
        assert_eq!(t.rows(), 30);
        assert!(t.column("nmi_feature").is_some() && t.column("total_loss").is_some());
        let compare = CompareScreen::new(&runs);
        assert_eq!(compare.metric(), Some("nmi_feature"));
        assert_eq!(compare.standings("nmi_feature").len(), 4);
        // The config diff sees the batch sizes and methods that differ.
        let diff: Vec<String> = compare.config_diff().into_iter().map(|(f, _)| f).collect();
        assert_eq!(diff, ["batch_size", "method"]);
        assert_eq!(compare_frame_times(&runs, 80, 24, 3).len(), 3);
    }
}
