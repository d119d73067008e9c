//! Frame times of the dashboard for `cdw bench tui`: a run of 1000 epochs and 100,000 steps (with
//! an evaluation after every epoch) drawn into ratatui's `TestBackend`, so the measure is the
//! drawing (state to cells, the buffer diff) without a terminal's speed in it.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{Ctx, Screen};
use super::dashboard::Dashboard;
use super::feed::Feed;
use super::gpu::{DeviceReading, GpuView};
use crate::events::{Event, Scores};
use crate::store::runs::{RunSummary, ShownState};

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
    // TestBackend cannot fail.
    let Ok(mut term) = Terminal::new(TestBackend::new(width, height));
    let mut times = Vec::with_capacity(frames);
    for i in 0..=frames {
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
        let t = Instant::now();
        let drawn = term.draw(|f| {
            let area = f.area();
            dash.draw(f, area, &ctx);
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
