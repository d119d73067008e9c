//! The live view of one run: progress and ETA, the loss chart (smoothed as TensorBoard does, the
//! raw curve dimmed behind, downsampled per column), the six scores as sparklines with their
//! best epoch marked, the GPU panel, and the run's log. It follows the run's `events.jsonl`; a
//! run without one (older, or copied) is shown from its `metrics.csv` and `evaluation.csv`.
//! `e` evaluates the latest checkpoint in a separate `cdw evaluate --json` process whose result
//! appears in the log pane.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

use super::app::{Cmd, Ctx, KeyHelp, Question, Screen};
use super::checkpoints::CheckpointsScreen;
use super::evaluation::{self, Evaluation, EVALUATE_LOG};
use super::feed::{Ended, Feed, LogKind, LossPoint};
use super::gpu::{GpuView, Sampler};
use super::jobs;
use super::records::RecordsScreen;
use super::runs::{checkpoint_dir, human_bytes, state_style};
use super::series::{downsample_by, y_bounds, Smoother};
use super::widgets;
use crate::events::Event;
use crate::store::follow::EventFollower;
use crate::store::records::read_records_csv;
use crate::store::runs::{summarize, RunSummary, ShownState};
use crate::store::{read_evaluations, read_metrics, RunDir};

/// How often the GPU panel reads NVML and /proc.
pub const GPU_EVERY: Duration = Duration::from_secs(2);
/// How often the run's state (status.json, pid) is read again.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Points of the recent window: steps, or epochs.
const RECENT_STEPS: usize = 2000;
const RECENT_EPOCHS: usize = 50;

/// The loss chart's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Steps,
    Epochs,
}

/// How the loss chart is drawn; keys change it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartView {
    /// TensorBoard's smoothing weight, 0 to 0.99.
    pub smoothing: f64,
    /// Only the recent window, or the whole history.
    pub recent: bool,
    pub axis: XAxis,
    /// total, instance, feature.
    pub show: [bool; 3],
}

impl Default for ChartView {
    fn default() -> Self {
        ChartView {
            smoothing: 0.6,
            recent: false,
            axis: XAxis::Steps,
            show: [true, true, true],
        }
    }
}

const CURVES: [&str; 3] = ["total", "instance", "feature"];

/// One loss curve as drawn: its index in [`CURVES`], the raw points, the smoothed points.
type Curve = (usize, Vec<(f64, f64)>, Vec<(f64, f64)>);

fn curve(p: &LossPoint, i: usize) -> f64 {
    match i {
        0 => p.total,
        1 => p.instance,
        _ => p.feature,
    }
}

/// The smoothed step curves, kept between frames for one smoothing weight and history.
#[derive(Default)]
struct SmoothCache {
    /// The smoothing weight's bits and the history's generation they were made for.
    key: Option<(u64, usize)>,
    smoothers: [Smoother; 3],
    values: [Vec<f64>; 3],
}

pub struct Dashboard {
    run: RunSummary,
    events: EventFollower,
    feed: Feed,
    /// The history came from the CSV records (there is no event log).
    from_records: bool,
    /// The evaluation this dashboard started.
    eval: Option<Evaluation>,
    /// Every other evaluation log of the run (from the Checkpoints screen, or an earlier UI):
    /// their results go to the log pane too.
    others: Vec<Evaluation>,
    gpu: GpuView,
    sampler: Option<Sampler>,
    gpu_at: Option<Instant>,
    status_at: Instant,
    pub view: ChartView,
    /// Log lines scrolled up from the newest.
    log_up: usize,
    /// The log pane's area at the last draw (for mouse scrolling).
    log_area: Rect,
    smoothed: SmoothCache,
    /// Counts the times the history was read anew (the smoothing cache is then stale).
    generation: usize,
}

impl Dashboard {
    /// The dashboard of `run`, reading GPUs through NVML when the machine has it.
    pub fn open(run: &RunSummary, ctx: &mut Ctx) -> Dashboard {
        Dashboard::with_sampler(run, ctx, Some(Sampler::new()))
    }

    /// The dashboard with a given GPU sampler (`None`: the panel is filled by the caller, as the
    /// snapshot tests do with fake readings).
    pub fn with_sampler(run: &RunSummary, ctx: &mut Ctx, sampler: Option<Sampler>) -> Dashboard {
        let dir = RunDir {
            path: run.path.clone(),
        };
        let mut d = Dashboard {
            run: run.clone(),
            events: EventFollower::new(dir.events_path()),
            feed: Feed::default(),
            from_records: false,
            eval: None,
            others: Vec::new(),
            gpu: GpuView::default(),
            sampler,
            gpu_at: None,
            status_at: Instant::now(),
            view: ChartView::default(),
            log_up: 0,
            log_area: Rect::default(),
            smoothed: SmoothCache::default(),
            generation: 0,
        };
        if dir.events_path().exists() {
            d.read_events();
        } else {
            d.load_records();
        }
        // Records without an event log have no steps; a live run's steps are on their way.
        if d.from_records && d.feed.steps.is_empty() {
            d.view.axis = XAxis::Epochs;
        }
        d.find_evaluations();
        d.poll(ctx);
        d
    }

    /// The dashboard of `run` over a history already read (for `cdw bench tui`): no files are
    /// followed and no GPU is sampled.
    pub fn with_feed(run: &RunSummary, feed: Feed, gpu: GpuView) -> Dashboard {
        Dashboard {
            run: run.clone(),
            events: EventFollower::new(run.path.join("none")),
            feed,
            from_records: false,
            eval: None,
            others: Vec::new(),
            gpu,
            sampler: None,
            gpu_at: None,
            status_at: Instant::now(),
            view: ChartView::default(),
            log_up: 0,
            log_area: Rect::default(),
            smoothed: SmoothCache::default(),
            generation: 0,
        }
    }

    /// Takes one more event into the history, as following the run would.
    pub fn apply(&mut self, event: &Event) {
        self.feed.apply(event);
    }

    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    pub fn gpu_mut(&mut self) -> &mut GpuView {
        &mut self.gpu
    }

    fn load_records(&mut self) {
        let dir = RunDir {
            path: self.run.path.clone(),
        };
        let metrics = read_metrics(&dir.metrics_path()).unwrap_or_default();
        let evals = read_evaluations(&dir.evaluation_path()).unwrap_or_default();
        self.feed = Feed::from_records(&metrics, &evals, self.run.epochs);
        if metrics.is_empty() && evals.is_empty() {
            // Reference records: the best scores at each 100-epoch mark.
            if let Some(path) = reference_csv(&self.run.path) {
                for c in read_records_csv(&path).unwrap_or_default() {
                    self.feed.evals.push(super::feed::EvalPoint {
                        epoch: c.epoch,
                        current: c.current.unwrap_or(c.best),
                        best: c.best,
                        seconds: 0.0,
                    });
                }
                self.feed.push(
                    LogKind::Info,
                    format!("reference records only ({})", path.display()),
                );
            }
        }
        self.from_records = true;
    }

    /// Reads new events; true when there were any.
    fn read_events(&mut self) -> bool {
        let got = self.events.poll();
        if got.restarted {
            // The history was cut back (a resume from an older checkpoint): build it again.
            self.feed = Feed::default();
            self.generation += 1;
        }
        for e in &got.events {
            self.feed.apply(e);
        }
        got.restarted || !got.events.is_empty()
    }

    fn read_eval(&mut self) -> bool {
        let mut changed = false;
        for job in self.eval.iter_mut().chain(self.others.iter_mut()) {
            let (lines, moved) = job.poll();
            changed |= moved;
            for (kind, text) in lines {
                self.feed.push(kind, text);
            }
        }
        if self.eval.as_ref().is_some_and(Evaluation::done) {
            self.eval = None;
        }
        changed
    }

    /// Follows the run's evaluation logs not followed yet (from the start: their results join the
    /// log pane).
    fn find_evaluations(&mut self) {
        for log in evaluation::logs_in(&self.run.path) {
            let followed = self
                .eval
                .iter()
                .chain(self.others.iter())
                .any(|e| e.log() == log);
            if !followed {
                let what = evaluation::what_of_log(&log);
                self.others.push(Evaluation::follow(log, what));
            }
        }
    }

    /// Starts `cdw evaluate --run RUN --json` on the run's latest checkpoint.
    fn evaluate(&mut self, ctx: &mut Ctx) -> Cmd {
        if self.eval.is_some() {
            return Cmd::Note("error: an evaluation is already running".into());
        }
        let last = checkpoint_dir(&self.run, ctx).join("checkpoint.safetensors");
        if !last.is_file() {
            return Cmd::Note(format!(
                "error: no checkpoint to evaluate yet ({} does not exist)",
                last.display()
            ));
        }
        // Its log is about to be replaced: the new evaluation is followed instead.
        self.others
            .retain(|e| e.log().file_name() != Some(EVALUATE_LOG.as_ref()));
        let what = evaluation::what_of_log(Path::new(EVALUATE_LOG));
        match Evaluation::start(ctx, &self.run.path, None, EVALUATE_LOG, what) {
            Ok((eval, command)) => {
                self.feed.push(LogKind::Info, format!("started {command}"));
                self.eval = Some(eval);
                self.log_up = 0;
                Cmd::Note("evaluating the latest checkpoint in the background".into())
            }
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    fn ask_stop(&self) -> Cmd {
        if !self.run.shown.is_live() || self.run.pid.is_none() {
            return Cmd::Note(format!(
                "error: {} is {}, not running",
                self.run.name(),
                self.run.shown.name()
            ));
        }
        Cmd::Ask(Question {
            tag: "stop",
            title: format!("Stop {}?", self.run.name()),
            lines: vec![
                format!(
                    "The training finishes its step and exits; all {} completed epochs, their \
                     checkpoint and records are kept.",
                    self.feed.done_epochs()
                ),
                "Resume it later with r on the Runs screen.".into(),
            ],
            yes: "Stop".into(),
        })
    }

    fn scroll_log(&mut self, by: isize) {
        let max = self.feed.log.len().saturating_sub(1);
        self.log_up = self.log_up.saturating_add_signed(by).min(max);
    }
}

/// The reference records CSV of a folder that holds only one.
fn reference_csv(dir: &std::path::Path) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("records_") && n.ends_with(".csv"))
        })
}

impl Screen for Dashboard {
    fn title(&self) -> String {
        format!("{} / {}", self.run.dataset, self.run.experiment)
    }

    fn keys(&self) -> Vec<KeyHelp> {
        vec![
            KeyHelp::main("s", "stop"),
            KeyHelp::main("e", "evaluate now"),
            KeyHelp::main("m", "checkpoints"),
            KeyHelp::main("t", "records"),
            KeyHelp::main("1 2 3", "curves"),
            KeyHelp::main("+ -", "smoothing"),
            KeyHelp::main("w", "window"),
            KeyHelp::main("x", "steps/epochs"),
            KeyHelp::more("↑↓ PgUp PgDn", "scroll the log"),
            KeyHelp::more("End", "follow the newest log lines"),
            KeyHelp::more("wheel", "scroll the log"),
        ]
    }

    fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        match key.code {
            KeyCode::Char('s') => return self.ask_stop(),
            KeyCode::Char('e') => return self.evaluate(ctx),
            KeyCode::Char('m') => {
                return Cmd::Push(Box::new(CheckpointsScreen::new(&self.run, ctx)));
            }
            KeyCode::Char('t') => {
                return Cmd::Push(Box::new(RecordsScreen::for_run(&self.run.path)));
            }
            KeyCode::Char(c @ '1'..='3') => {
                let i = usize::from(c as u8 - b'1');
                self.view.show[i] = !self.view.show[i];
            }
            KeyCode::Char('+' | '=') => {
                self.view.smoothing = (self.view.smoothing + 0.05).min(0.99);
            }
            KeyCode::Char('-') => self.view.smoothing = (self.view.smoothing - 0.05).max(0.0),
            KeyCode::Char('w') => self.view.recent = !self.view.recent,
            KeyCode::Char('x') => {
                if self.feed.steps.is_empty() {
                    return Cmd::Note("this run has no step history, only epochs".into());
                }
                self.view.axis = match self.view.axis {
                    XAxis::Steps => XAxis::Epochs,
                    XAxis::Epochs => XAxis::Steps,
                };
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll_log(1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_log(-1),
            KeyCode::PageUp => self.scroll_log(10),
            KeyCode::PageDown => self.scroll_log(-10),
            KeyCode::End => self.log_up = 0,
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn mouse(&mut self, event: MouseEvent, _area: Rect, _ctx: &mut Ctx) -> Cmd {
        let inside = self.log_area.contains((event.column, event.row).into());
        match event.kind {
            MouseEventKind::ScrollUp if inside => self.scroll_log(3),
            MouseEventKind::ScrollDown if inside => self.scroll_log(-3),
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn answered(&mut self, tag: &'static str, yes: bool, _ctx: &mut Ctx) -> Cmd {
        if tag != "stop" || !yes {
            return Cmd::Done;
        }
        match self.run.pid.map(jobs::interrupt) {
            Some(Ok(())) => Cmd::Note(format!(
                "asked {} to stop; it keeps every completed epoch",
                self.run.name()
            )),
            Some(Err(e)) => Cmd::Note(format!("error: could not signal {}: {e}", self.run.name())),
            None => Cmd::Note(format!("error: {} has no process id", self.run.name())),
        }
    }

    fn poll(&mut self, ctx: &mut Ctx) -> bool {
        let mut changed = false;
        if !self.from_records || self.events.path().exists() {
            if self.from_records {
                // The run started writing events (a resume of an old run): follow them now.
                self.from_records = false;
                self.feed = Feed::default();
                self.generation += 1;
            }
            changed |= self.read_events();
        }
        changed |= self.read_eval();
        if self.status_at.elapsed() >= STATUS_EVERY {
            self.status_at = Instant::now();
            self.find_evaluations();
            if let Some(s) = summarize(&self.run.path, ctx.now) {
                if s.shown != self.run.shown || s.pid != self.run.pid || s.error != self.run.error {
                    changed = true;
                }
                self.run = s;
            }
        }
        if let Some(sampler) = &mut self.sampler {
            if self.gpu_at.is_none_or(|t| t.elapsed() >= GPU_EVERY) {
                self.gpu_at = Some(Instant::now());
                let pid = self.run.pid.filter(|_| self.run.shown.is_live());
                sampler.sample(&mut self.gpu, pid);
                if self.feed.device == "cpu" && self.gpu.devices.is_empty() {
                    self.gpu.unavailable = Some("CPU run".into());
                }
                changed = true;
            }
        }
        changed
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let wide = area.width >= 120 && area.height >= 30;
        if area.height < 16 || area.width < 60 {
            // Small: progress, the chart, and the newest log lines.
            let [top, chart, log] = Layout::vertical([
                Constraint::Length(3),
                Constraint::Min(3),
                Constraint::Length(2),
            ])
            .areas(area);
            self.draw_progress(frame, top, ctx);
            self.draw_chart(frame, chart, ctx);
            self.draw_log(frame, log, false, ctx);
            return;
        }
        if wide {
            let [top, middle, bottom] = Layout::vertical([
                Constraint::Length(3),
                Constraint::Percentage(58),
                Constraint::Min(6),
            ])
            .areas(area);
            self.draw_progress(frame, top, ctx);
            let [chart, scores] =
                Layout::horizontal([Constraint::Percentage(62), Constraint::Min(30)]).areas(middle);
            self.draw_chart(frame, chart, ctx);
            self.draw_scores(frame, scores, false, ctx);
            let [gpu, log] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Min(30)]).areas(bottom);
            self.draw_gpu(frame, gpu, true, ctx);
            self.draw_log(frame, log, true, ctx);
        } else {
            let [top, chart, scores, gpu, log] = Layout::vertical([
                Constraint::Length(3),
                Constraint::Min(6),
                Constraint::Length(5),
                Constraint::Length(2),
                Constraint::Length(4),
            ])
            .areas(area);
            self.draw_progress(frame, top, ctx);
            self.draw_chart(frame, chart, ctx);
            self.draw_scores(frame, scores, true, ctx);
            self.draw_gpu(frame, gpu, false, ctx);
            self.draw_log(frame, log, true, ctx);
        }
    }
}

impl Dashboard {
    fn draw_progress(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let f = &self.feed;
        // A run that is not training has no time left to show (a crashed one may never end).
        let eta = if self.run.shown.is_live() {
            f.eta()
        } else {
            super::feed::Eta::default()
        };
        let bar_w = usize::from(area.width).saturating_sub(46).clamp(6, 40);
        let epochs = f.epochs.max(self.run.epochs);
        let done = f.done_epochs().max(self.run.epoch);
        let in_epoch = f.step > 0 && f.epoch > done;
        // The epoch at work while one is, else the last one completed; the bar is the share done.
        let shown_epoch = if in_epoch { f.epoch } else { done };
        #[allow(clippy::cast_precision_loss)]
        let (done_f, epochs_f) = (done as f64, epochs as f64);
        let share = if epochs > 0 { done_f / epochs_f } else { 0.0 };
        let eta_text = |label: &str, d: Option<Duration>| match d {
            Some(d) => format!("{label} {}", widgets::clock(d)),
            None => String::new(),
        };
        let epoch_line = Line::from(vec![
            Span::styled(
                format!("epoch {shown_epoch:>5}/{epochs:<5} "),
                ctx.theme.text,
            ),
            Span::styled(widgets::bar(done_f, epochs_f, bar_w, ctx), ctx.theme.gauge),
            Span::styled(format!(" {:>3.0}%  ", share * 100.0), ctx.theme.text),
            Span::styled(eta_text("ETA run", eta.run), ctx.theme.dim),
        ]);
        let steps = f.steps_per_epoch;
        let step = if in_epoch { f.step } else { 0 };
        let step_line = if steps > 0 {
            #[allow(clippy::cast_precision_loss)]
            let bar = widgets::bar(step as f64, steps as f64, bar_w, ctx);
            Line::from(vec![
                Span::styled(format!("step  {step:>5}/{steps:<5} "), ctx.theme.text),
                Span::styled(bar, ctx.theme.gauge),
                Span::raw("       "),
                Span::styled(eta_text("ETA epoch", eta.epoch), ctx.theme.dim),
            ])
        } else {
            Line::from(Span::styled("step      -", ctx.theme.dim))
        };
        frame.render_widget(
            Paragraph::new(vec![epoch_line, step_line, self.state_line(ctx)]),
            area,
        );
    }

    /// `running · cuda:0 · 81.4 img/s · loss 2.8710`, what the evaluation is doing, or why the run ended.
    fn state_line(&self, ctx: &Ctx) -> Line<'static> {
        let f = &self.feed;
        let mut spans = vec![Span::styled(
            self.run.shown.name().to_string(),
            state_style(self.run.shown, ctx),
        )];
        let mut add = |s: String, style: Style| {
            spans.push(Span::styled(" · ", ctx.theme.dim));
            spans.push(Span::styled(s, style));
        };
        if !f.device.is_empty() {
            add(f.device.clone(), ctx.theme.text);
        }
        if f.images_per_sec > 0.0 && self.run.shown.is_live() {
            add(format!("{:.1} img/s", f.images_per_sec), ctx.theme.text);
        }
        // The latest total loss: of the last step, or of the last epoch from the records.
        if let Some(p) = f.steps.last().or(f.epoch_rows.last().map(|r| &r.loss)) {
            add(format!("loss {:.4}", p.total), ctx.theme.text);
        }
        if let Some(p) = self.eval.as_ref().and_then(|j| j.progress).or(f.evaluating) {
            add(
                format!(
                    "evaluating {} {}/{}",
                    p.stage.label(p.space),
                    p.done,
                    p.total
                ),
                ctx.theme.warn,
            );
        } else if self.eval.is_some() {
            add("evaluation starting".into(), ctx.theme.warn);
        }
        match (&f.ended, &self.run.error) {
            (_, Some(e)) if !self.run.shown.is_live() => add(e.clone(), ctx.theme.error),
            (Some(Ended::Failed(e)), _) => add(e.clone(), ctx.theme.error),
            _ => {}
        }
        if self.from_records && self.run.shown != ShownState::Reference {
            add("from metrics.csv (no event log)".into(), ctx.theme.dim);
        }
        Line::from(spans)
    }

    /// The loss curves of the chosen axis and window, downsampled to `columns`. The smoothing
    /// runs over the whole history (so the recent window starts smoothed, not warming up), and
    /// for steps it is kept between frames: a new step smooths one point.
    fn curves(&mut self, columns: usize) -> Vec<Curve> {
        let epoch_points: Vec<LossPoint>;
        let points: &[LossPoint] = match self.view.axis {
            XAxis::Steps => &self.feed.steps,
            XAxis::Epochs => {
                epoch_points = self.feed.epoch_rows.iter().map(|r| r.loss).collect();
                &epoch_points
            }
        };
        let (keep, key) = match self.view.axis {
            XAxis::Steps => (
                RECENT_STEPS,
                Some((self.view.smoothing.to_bits(), self.generation)),
            ),
            XAxis::Epochs => (RECENT_EPOCHS, None),
        };
        let cache = &mut self.smoothed;
        if key.is_none() || cache.key != key || cache.values[0].len() > points.len() {
            *cache = SmoothCache {
                key,
                smoothers: [Smoother::new(self.view.smoothing); 3],
                values: Default::default(),
            };
        }
        for p in &points[cache.values[0].len()..] {
            for (i, values) in cache.values.iter_mut().enumerate() {
                values.push(cache.smoothers[i].push(curve(p, i)));
            }
        }
        let from = if self.view.recent {
            points.len().saturating_sub(keep)
        } else {
            0
        };
        let shown = &points[from..];
        let mut out = Vec::new();
        for i in (0..3).filter(|&i| self.view.show[i]) {
            let sm = &cache.values[i][from..];
            out.push((
                i,
                downsample_by(shown.len(), |j| (shown[j].x, curve(&shown[j], i)), columns),
                downsample_by(shown.len(), |j| (shown[j].x, sm[j]), columns),
            ));
        }
        out
    }

    fn draw_chart(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!(
            "loss · {} · smoothing {:.2} · {}",
            match self.view.axis {
                XAxis::Steps => "steps",
                XAxis::Epochs => "epochs",
            },
            self.view.smoothing,
            if self.view.recent { "recent" } else { "all" }
        );
        let block = widgets::block(&title, true, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        // Braille gives two dots a column: twice the columns keep every column's min and max.
        let curves = self.curves(usize::from(inner.width) * 2);
        if curves.iter().all(|(_, raw, _)| raw.is_empty()) {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    if self.view.show.iter().any(|s| *s) {
                        "no losses yet: the first step is on its way"
                    } else {
                        "every curve is hidden: 1 2 3 show them"
                    },
                    ctx.theme.dim,
                )),
                inner,
            );
            return;
        }
        let bounds = y_bounds(curves.iter().map(|(_, _, s)| s.as_slice()));
        let x0 = curves
            .iter()
            .filter_map(|(_, r, _)| r.first().map(|p| p.0))
            .fold(f64::INFINITY, f64::min);
        let x1 = curves
            .iter()
            .filter_map(|(_, r, _)| r.last().map(|p| p.0))
            .fold(f64::NEG_INFINITY, f64::max)
            .max(x0 + 1.0);
        let mut datasets = Vec::new();
        for (_, raw, _) in &curves {
            datasets.push(
                Dataset::default()
                    .marker(ctx.glyphs.marker())
                    .graph_type(GraphType::Line)
                    .style(ctx.theme.raw)
                    .data(raw),
            );
        }
        for (i, _, sm) in &curves {
            datasets.push(
                Dataset::default()
                    .name(CURVES[*i])
                    .marker(ctx.glyphs.marker())
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(ctx.theme.series_color(*i)))
                    .data(sm),
            );
        }
        let label = |v: f64| Span::styled(format!("{v:.0}"), ctx.theme.dim);
        let chart = Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .bounds([x0, x1])
                    .labels([label(x0), label(x1)])
                    .style(ctx.theme.dim),
            )
            .y_axis(
                Axis::default()
                    .bounds(bounds)
                    .labels([
                        Span::styled(format!("{:.2}", bounds[0]), ctx.theme.dim),
                        Span::styled(format!("{:.2}", bounds[1]), ctx.theme.dim),
                    ])
                    .style(ctx.theme.dim),
            )
            .legend_position(Some(LegendPosition::TopRight))
            .hidden_legend_constraints((Constraint::Ratio(1, 3), Constraint::Ratio(1, 2)));
        frame.render_widget(chart, inner);
    }

    /// The six scores: each with its current and best value and a sparkline over the
    /// evaluations, the best one marked. `pairs`: backbone and feature side by side (3 rows).
    fn draw_scores(&self, frame: &mut Frame, area: Rect, pairs: bool, ctx: &Ctx) {
        let block = widgets::block("scores (f: feature, h: backbone)", false, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if self.feed.evals.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "no evaluation yet (evaluation_mode none, or the first epoch is running)",
                    ctx.theme.dim,
                )),
                inner,
            );
            return;
        }
        // (metric, space letter, index into Scores::values)
        let order = [
            ("NMI", 'f', 3),
            ("NMI", 'h', 0),
            ("ARI", 'f', 4),
            ("ARI", 'h', 1),
            ("ACC", 'f', 5),
            ("ACC", 'h', 2),
        ];
        let mut lines = Vec::new();
        if pairs {
            let half = inner.width / 2;
            for row in order.chunks(2) {
                let mut spans = self.score_cell(row[0], half, ctx);
                spans.push(Span::raw(" "));
                spans.extend(self.score_cell(row[1], inner.width.saturating_sub(half + 1), ctx));
                lines.push(Line::from(spans));
            }
        } else {
            for cell in order {
                lines.push(Line::from(self.score_cell(cell, inner.width, ctx)));
                lines.push(Line::default());
            }
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn score_cell(
        &self,
        (name, sp, k): (&str, char, usize),
        width: u16,
        ctx: &Ctx,
    ) -> Vec<Span<'static>> {
        let values: Vec<f64> = self
            .feed
            .evals
            .iter()
            .map(|e| e.current.values()[k])
            .collect();
        let last = self.feed.evals.last().map_or(0.0, |e| e.best.values()[k]);
        let (best_i, best) =
            values
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
                );
        let best = best.max(last);
        let epoch = self.feed.evals.get(best_i).map_or(0, |e| e.epoch);
        let current = values.last().copied().unwrap_or(0.0);
        let head = format!("{name} {sp} {current:.3} best {best:.3} e{epoch:<4} ");
        let room = usize::from(width).saturating_sub(head.chars().count());
        let mut spans = vec![
            Span::styled(format!("{name} {sp} "), ctx.theme.dim),
            Span::styled(format!("{current:.3}"), ctx.theme.text),
            Span::styled(format!(" best {best:.3} e{epoch:<4} "), ctx.theme.best),
        ];
        if room >= 3 {
            spans.extend(spark(&values, best_i, room, ctx));
        }
        spans
    }

    fn draw_gpu(&self, frame: &mut Frame, area: Rect, framed: bool, ctx: &Ctx) {
        let inner = if framed {
            let block = widgets::block("GPU", false, ctx);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            inner
        } else {
            area
        };
        frame.render_widget(
            Paragraph::new(gpu_lines(&self.gpu, framed, inner.width, ctx)),
            inner,
        );
    }

    fn draw_log(&mut self, frame: &mut Frame, area: Rect, framed: bool, ctx: &Ctx) {
        let inner = if framed {
            let title = if self.log_up > 0 {
                format!("log (scrolled up {}; End follows)", self.log_up)
            } else {
                "log".to_string()
            };
            let block = widgets::block(&title, false, ctx);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            inner
        } else {
            area
        };
        self.log_area = area;
        let rows = usize::from(inner.height);
        let end = self.feed.log.len().saturating_sub(self.log_up);
        let start = end.saturating_sub(rows);
        let lines: Vec<Line> = self.feed.log[start..end]
            .iter()
            .map(|l| {
                let style = match l.kind {
                    LogKind::Info => ctx.theme.text,
                    LogKind::Good => ctx.theme.ok,
                    LogKind::Warn => ctx.theme.warn,
                    LogKind::Error => ctx.theme.error,
                };
                Line::from(Span::styled(l.text.clone(), style))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// A sparkline of `values` in `width` columns (each column the highest value it covers), the
/// column of value `best` drawn in the best style.
fn spark(values: &[f64], best: usize, width: usize, ctx: &Ctx) -> Vec<Span<'static>> {
    if values.is_empty() || width == 0 {
        return Vec::new();
    }
    let cols = width.min(values.len());
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let bars = ctx.glyphs.bars();
    let mut spans = Vec::with_capacity(cols);
    for c in 0..cols {
        let a = c * values.len() / cols;
        let b = ((c + 1) * values.len() / cols).max(a + 1);
        let v = values[a..b]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let level = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((level * 7.0).round() as usize).min(7);
        let is_best = (a..b).contains(&best);
        spans.push(Span::styled(
            bars[i].to_string(),
            if is_best {
                ctx.theme.best
            } else {
                Style::default().fg(ctx.theme.series_color(0))
            },
        ));
    }
    spans
}

/// N/A for a reading a device does not give.
fn or_na<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "N/A".to_string(), f)
}

fn gib(b: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let g = b as f64 / f64::from(1u32 << 30);
    format!("{g:.1}")
}

/// The GPU panel's lines: one per device (with its utilisation history when `history`), and the
/// training process's own use.
pub fn gpu_lines(v: &GpuView, history: bool, width: u16, ctx: &Ctx) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for d in &v.devices {
        let r = &d.last;
        let mem = match (r.memory_used, r.memory_total) {
            (Some(u), Some(t)) => format!("{}/{} GiB", gib(u), gib(t)),
            _ => "N/A".into(),
        };
        let mut text = format!(
            "GPU{} {}  mem {mem}  util {}  {}  {}",
            r.index,
            r.name,
            or_na(r.utilisation, |u| format!("{u}%")),
            or_na(r.temperature, |t| format!("{t}°C")),
            or_na(r.power, |p| format!("{:.0} W", f64::from(p) / 1000.0)),
        );
        if let Some(p) = r.process_memory {
            text.push_str(&format!("  run {} GiB", gib(p)));
        }
        lines.push(Line::from(Span::styled(text, ctx.theme.text)));
        if history && d.utilisation.len() > 1 {
            let room = usize::from(width).saturating_sub(6);
            #[allow(clippy::cast_precision_loss)]
            let util: Vec<f64> = d.utilisation.iter().map(|&u| u as f64).collect();
            let mut spans = vec![Span::styled("util ", ctx.theme.dim)];
            spans.extend(spark_fixed(&util, 100.0, room, ctx));
            lines.push(Line::from(spans));
            if let Some(total) = r.memory_total.filter(|t| *t > 0) {
                #[allow(clippy::cast_precision_loss)]
                let mem: Vec<f64> = d.memory.iter().map(|&m| m as f64).collect();
                let mut spans = vec![Span::styled("mem  ", ctx.theme.dim)];
                #[allow(clippy::cast_precision_loss)]
                spans.extend(spark_fixed(&mem, (total >> 20) as f64, room, ctx));
                lines.push(Line::from(spans));
            }
        }
    }
    if let Some(why) = &v.unavailable {
        lines.push(Line::from(Span::styled(
            format!("GPU: {why}"),
            ctx.theme.dim,
        )));
    }
    let process = match v.pid {
        Some(pid) => format!(
            "training pid {pid}: CPU {}  RAM {}",
            or_na(v.process.cpu_percent, |c| format!("{c:.0}%")),
            or_na(v.process.rss, human_bytes),
        ),
        None => "no training process".to_string(),
    };
    lines.push(Line::from(Span::styled(process, ctx.theme.dim)));
    lines
}

/// A sparkline against a fixed top (`top` = the highest bar), the newest `width` values.
fn spark_fixed(values: &[f64], top: f64, width: usize, ctx: &Ctx) -> Vec<Span<'static>> {
    let bars = ctx.glyphs.bars();
    let start = values.len().saturating_sub(width);
    let text: String = values[start..]
        .iter()
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = ((v / top).clamp(0.0, 1.0) * 7.0).round() as usize;
            bars[i.min(7)]
        })
        .collect();
    vec![Span::styled(
        text,
        Style::default().fg(ctx.theme.series_color(0)),
    )]
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use ratatui::crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::App;
    use crate::tui::feed::tests::{epoch, evaluation, started, step};
    use crate::tui::gpu::DeviceReading;
    use crate::tui::testing::{self, draw, key, text};

    const RUNNING: &str = "shapes/bs32_lr0.0003_ResNet18";
    const FINISHED: &str = "shapes/bs64_lr0.0003_ResNet18";

    /// The dashboard of the fixture run `name` (files written 30 s before the fixed clock), with
    /// no GPU sampler.
    fn open(name: &str) -> (tempfile::TempDir, Ctx, Dashboard) {
        let dir = testing::fixture_copy(Duration::from_secs(30));
        let mut ctx = testing::ctx(dir.path());
        let run = summarize(&dir.path().join(name), ctx.now).expect("a fixture run");
        let dash = Dashboard::with_sampler(&run, &mut ctx, None);
        (dir, ctx, dash)
    }

    /// The dashboard in the shell (header, footer, notes, dialogs).
    fn app(d: Dashboard) -> App {
        App::new(Box::new(d))
    }

    /// The note a key gives.
    fn note(cmd: Cmd) -> String {
        match cmd {
            Cmd::Note(n) => n,
            _ => panic!("expected a note"),
        }
    }

    /// An H200 as NVML reports it, the training holding 11.9 GiB of it.
    fn fake_gpu(view: &mut GpuView) {
        for i in 0..12u32 {
            view.record(vec![DeviceReading {
                index: 0,
                name: "NVIDIA H200".into(),
                memory_used: Some((12 << 30) + u64::from(i) * (1 << 26)),
                memory_total: Some(150_754_820_096),
                utilisation: Some(40 + (i * 37) % 60),
                temperature: Some(61),
                power: Some(412_000),
                process_memory: Some(12_776_046_592),
            }]);
        }
        view.record(vec![DeviceReading {
            index: 1,
            name: "NVIDIA H200".into(),
            memory_used: Some(1 << 29),
            memory_total: Some(150_754_820_096),
            utilisation: None,
            temperature: None,
            power: None,
            process_memory: None,
        }]);
        view.pid = Some(4242);
        view.process.cpu_percent = Some(104.0);
        view.process.rss = Some(3_400_000_000);
    }

    #[test]
    fn running_80x24_with_fake_nvml() {
        let (_d, ctx, mut d) = open(RUNNING);
        fake_gpu(d.gpu_mut());
        let mut app = app(d);
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }

    #[test]
    fn running_160x48_with_fake_nvml() {
        let (_d, ctx, mut d) = open(RUNNING);
        fake_gpu(d.gpu_mut());
        let mut app = app(d);
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 160, 48)));
    }

    #[test]
    fn running_80x24_without_nvml() {
        let (_d, ctx, mut d) = open(RUNNING);
        let g = d.gpu_mut();
        g.unavailable = Some("no NVML (libnvidia-ml.so: cannot open shared object file)".into());
        g.pid = Some(4242);
        g.process.cpu_percent = Some(180.0);
        g.process.rss = Some(2_100_000_000);
        let mut app = app(d);
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }

    #[test]
    fn finished_run_without_event_log_160x48() {
        let (_d, ctx, d) = open(FINISHED);
        let mut app = app(d);
        let shown = text(&draw(&mut app, &ctx, 160, 48));
        assert!(shown.contains("from metrics.csv (no event log)"), "{shown}");
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn the_fixture_history_is_read_and_the_eta_is_measured() {
        let (_d, _ctx, d) = open(RUNNING);
        let f = d.feed();
        assert_eq!(f.steps.len(), 6 * 32 + 12);
        assert_eq!(f.done_epochs(), 6);
        assert_eq!(f.evals.len(), 6);
        assert_eq!((f.epoch, f.step), (7, 12));
        // 20 steps of 32 images at 81.4 img/s left in epoch 7.
        let left = f.eta().epoch.unwrap().as_secs_f64();
        assert!((left - 20.0 * 32.0 / 81.4).abs() < 1e-6, "{left}");
        // Then 33 epochs at the measured mean (12.6 s training + 1.5 s evaluation).
        let run = f.eta().run.unwrap().as_secs_f64();
        assert!(
            (run - (left + 33.0 * (75.6 / 6.0 + 1.5))).abs() < 1e-6,
            "{run}"
        );
    }

    #[test]
    fn keys_change_the_chart_and_say_what_they_cannot_do() {
        let (_d, mut ctx, mut d) = open(RUNNING);
        for c in ['2', '3'] {
            d.key(key(KeyCode::Char(c)), &mut ctx);
        }
        assert_eq!(d.view.show, [true, false, false]);
        for _ in 0..30 {
            d.key(key(KeyCode::Char('+')), &mut ctx);
        }
        assert!((d.view.smoothing - 0.99).abs() < 1e-12);
        for _ in 0..30 {
            d.key(key(KeyCode::Char('-')), &mut ctx);
        }
        assert_eq!(d.view.smoothing, 0.0);
        d.key(key(KeyCode::Char('x')), &mut ctx);
        assert_eq!(d.view.axis, XAxis::Epochs);
        d.key(key(KeyCode::Char('1')), &mut ctx);
        let mut app = app(d);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(shown.contains("every curve is hidden"), "{shown}");

        // The finished run has no step history, no process to stop, no checkpoint.
        let (_d2, mut ctx2, mut d2) = open(FINISHED);
        assert_eq!(d2.view.axis, XAxis::Epochs);
        assert_eq!(
            note(d2.key(key(KeyCode::Char('x')), &mut ctx2)),
            "this run has no step history, only epochs"
        );
        assert_eq!(
            note(d2.key(key(KeyCode::Char('s')), &mut ctx2)),
            "error: shapes/bs64_lr0.0003_ResNet18 is finished, not running"
        );
        let n = note(d2.key(key(KeyCode::Char('e')), &mut ctx2));
        assert!(n.starts_with("error: no checkpoint to evaluate yet"), "{n}");
    }

    #[test]
    fn stop_asks_first_and_says_what_is_kept() {
        let (_d, mut ctx, d) = open(RUNNING);
        let mut app = app(d);
        app.key(key(KeyCode::Char('s')), &mut ctx);
        let q = app.question().expect("a question").clone();
        assert_eq!(q.title, "Stop shapes/bs32_lr0.0003_ResNet18?");
        assert!(
            q.lines[0].contains("all 6 completed epochs"),
            "{:?}",
            q.lines
        );
        app.key(key(KeyCode::Char('n')), &mut ctx);
        assert!(app.question().is_none());
    }

    #[test]
    fn new_events_are_followed_and_a_history_cut_back_is_rebuilt() {
        let (dir, mut ctx, mut d) = open(RUNNING);
        let events = dir.path().join(RUNNING).join("events.jsonl");
        let mut f = fs::OpenOptions::new().append(true).open(&events).unwrap();
        for e in [step(7, 13, 32, 6.4, 81.5), step(7, 14, 32, 6.3, 81.5)] {
            writeln!(f, "{}", serde_json::to_string(&e).unwrap()).unwrap();
        }
        assert!(d.poll(&mut ctx));
        assert_eq!(d.feed().step, 14);
        assert!(!d.poll(&mut ctx), "nothing new, nothing to redraw");

        // A resume from epoch 2 rewrites the log with the history up to epoch 2.
        let mut text = String::new();
        for e in [
            started(1, 40, 32),
            epoch(1, 40, 8.4, 12.0),
            evaluation(1, 0.1, 0.1, 1.5),
            epoch(2, 40, 7.8, 12.0),
            started(3, 40, 32),
        ] {
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        let tmp = dir.path().join("events.new");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &events).unwrap();
        assert!(d.poll(&mut ctx));
        let feed = d.feed();
        assert_eq!(feed.done_epochs(), 2);
        assert_eq!(feed.steps.len(), 0);
        assert_eq!(feed.sessions, 2);
        assert_eq!(
            feed.log.last().unwrap().text,
            "resumed at epoch 3 of 40 on cuda:0"
        );
    }

    #[test]
    fn evaluate_runs_a_separate_process_and_shows_its_result() {
        let (d, mut ctx, dash) = open(RUNNING);
        let mut app = app(dash);
        let ckpt = ctx.checkpoints.join(RUNNING);
        fs::create_dir_all(&ckpt).unwrap();
        fs::write(ckpt.join("checkpoint.safetensors"), b"").unwrap();
        // A stand-in for `cdw evaluate --json`: its arguments, a progress event, the result.
        let exe = d.path().join("fake-cdw");
        fs::write(
            &exe,
            r#"#!/bin/sh
echo "args: $*" >&2
echo '{"event":"evaluation_progress","epoch":6,"stage":"kmeans","space":"feature","done":3,"total":10}'
sleep 0.3
echo '{"event":"evaluate_result","report":{"dataset":"shapes","method":"cd","model":{"kind":"file","path":"c"},"device":"cpu","samples":1024,"clusters":4,"backbone":{"nmi":0.25,"ari":0.17,"acc":0.45},"feature":{"nmi":0.26,"ari":0.18,"acc":0.44},"seconds":2.5}}'
"#,
        )
        .unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        ctx.exe = exe;
        app.key(key(KeyCode::Char('e')), &mut ctx);
        assert_eq!(
            app.note(),
            Some("evaluating the latest checkpoint in the background")
        );
        let started = std::time::Instant::now();
        let mut saw_progress = false;
        loop {
            app.poll(&mut ctx);
            let shown = text(&draw(&mut app, &ctx, 160, 48));
            saw_progress |= shown.contains("evaluating k-means feature 3/10");
            if shown.contains("NMI f 0.260 h 0.250") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no result: {shown}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(saw_progress, "the progress was shown while it ran");
        let log = fs::read_to_string(d.path().join(RUNNING).join(EVALUATE_LOG)).unwrap();
        let run_dir = d.path().join(RUNNING);
        assert!(
            log.contains(&format!(
                "args: evaluate --run {} --json",
                run_dir.display()
            )),
            "{log}"
        );
        // Done: a second one may start.
        app.key(key(KeyCode::Char('e')), &mut ctx);
        assert_eq!(
            app.note(),
            Some("evaluating the latest checkpoint in the background")
        );
    }

    #[test]
    fn every_size_draws_without_panic() {
        let (_d, ctx, mut d) = open(RUNNING);
        fake_gpu(d.gpu_mut());
        let mut app = app(d);
        for (w, h) in (40..=200)
            .step_by(9)
            .flat_map(|w| (12..=60).step_by(5).map(move |h| (w, h)))
        {
            draw(&mut app, &ctx, w, h);
        }
    }
}
