//! The Compare screen: two or more runs chosen on the Runs screen (space), opened together with
//! `c`. Each run keeps one colour everywhere (the order it was chosen in): the same metric of every
//! run overlaid on shared axes, a table of each run's final and best value with the difference to
//! the first run, and the config fields in which the runs differ.
//!
//! The state (which metrics exist, the rows of the table, the config diff) is worked out without
//! drawing and tested that way; the records are re-read when a run's files change, so a live run's
//! curve grows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{due, Cmd, Ctx, KeyHelp, Screen};
use super::plot::{self, Curve};
use super::widgets::{self, cut, fmt_value};
use crate::store::runs::read_config_fields;
use crate::store::table::{better, Better, Source};

/// How often the runs' files are looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The metrics offered first, in this order, where the runs have them.
const FIRST_METRICS: [&str; 10] = [
    "nmi_feature",
    "nmi_backbone",
    "acc_feature",
    "acc_backbone",
    "ari_feature",
    "ari_backbone",
    "total_loss",
    "instance_loss",
    "feature_loss",
    "images_per_sec",
];

/// One compared run.
pub struct Member {
    pub source: Source,
    /// The run's config fields, or why they could not be read.
    pub config: Result<BTreeMap<String, String>, String>,
    stamp: Option<SystemTime>,
}

impl Member {
    fn read(dir: &Path) -> Member {
        let source = Source::run(dir);
        let config = read_config_fields(dir).map_err(|e| e.to_string());
        let mut m = Member {
            source,
            config,
            stamp: None,
        };
        m.stamp = m.newest_file();
        m
    }

    fn newest_file(&self) -> Option<SystemTime> {
        self.source
            .files()
            .iter()
            .filter_map(|f| f.metadata().and_then(|m| m.modified()).ok())
            .max()
    }
}

/// One run's row of the side table for the chosen metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub last: Option<f64>,
    pub best: Option<f64>,
    /// The x (epoch, or 100-epoch mark) of the best value.
    pub best_at: Option<f64>,
    /// `last` and `best` minus the first run's.
    pub last_delta: Option<f64>,
    pub best_delta: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Curves,
    Config,
}

pub struct CompareScreen {
    members: Vec<Member>,
    /// Every metric some run has, the common scores first.
    metrics: Vec<String>,
    metric: usize,
    view: View,
    smoothing: f64,
    /// The first config-diff line drawn.
    diff_from: usize,
    last_look: Option<Instant>,
}

impl CompareScreen {
    /// The runs in these folders, in this order (the first is the one differences are taken to).
    pub fn new(runs: &[PathBuf]) -> CompareScreen {
        let members: Vec<Member> = runs.iter().map(|r| Member::read(r)).collect();
        let mut s = CompareScreen {
            members,
            metrics: Vec::new(),
            metric: 0,
            view: View::Curves,
            smoothing: 0.0,
            diff_from: 0,
            last_look: Some(Instant::now()),
        };
        s.metrics = s.find_metrics();
        s
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn metrics(&self) -> &[String] {
        &self.metrics
    }

    /// The metric overlaid.
    pub fn metric(&self) -> Option<&str> {
        self.metrics.get(self.metric).map(String::as_str)
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// Every column of any run, [`FIRST_METRICS`] first, the rest in the order they are met.
    fn find_metrics(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for m in &self.members {
            if let Ok(t) = &m.source.table {
                for c in &t.columns {
                    if !all.contains(c) {
                        all.push(c.clone());
                    }
                }
            }
        }
        let mut out: Vec<String> = FIRST_METRICS
            .iter()
            .filter(|n| all.iter().any(|c| c == *n))
            .map(|n| (*n).to_string())
            .collect();
        let rest: Vec<String> = all.into_iter().filter(|c| !out.contains(c)).collect();
        out.extend(rest);
        out
    }

    /// Each run's final and best value of `metric`, and their differences to the first run's.
    pub fn standings(&self, metric: &str) -> Vec<Standing> {
        let raw: Vec<(Option<f64>, Option<f64>, Option<f64>)> = self
            .members
            .iter()
            .map(|m| {
                let Ok(t) = &m.source.table else {
                    return (None, None, None);
                };
                let Some(c) = t.column(metric) else {
                    return (None, None, None);
                };
                let best = t.best_row(c);
                (
                    t.last(c),
                    best.and_then(|r| t.get(r, c)),
                    best.map(|r| t.xs[r]),
                )
            })
            .collect();
        let (first_last, first_best) = raw.first().map_or((None, None), |r| (r.0, r.1));
        let minus = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        raw.iter()
            .enumerate()
            .map(|(i, &(last, best, best_at))| Standing {
                last,
                best,
                best_at,
                last_delta: if i == 0 {
                    None
                } else {
                    minus(last, first_last)
                },
                best_delta: if i == 0 {
                    None
                } else {
                    minus(best, first_best)
                },
            })
            .collect()
    }

    /// The config fields in which the runs differ (a field one run lacks differs), with each run's
    /// value (`None` where it has none), in field order.
    pub fn config_diff(&self) -> Vec<(String, Vec<Option<String>>)> {
        let configs: Vec<Option<&BTreeMap<String, String>>> = self
            .members
            .iter()
            .map(|m| m.config.as_ref().ok())
            .collect();
        let mut fields: Vec<&String> = configs.iter().flatten().flat_map(|c| c.keys()).collect();
        fields.sort();
        fields.dedup();
        fields
            .into_iter()
            .filter_map(|f| {
                let values: Vec<Option<String>> = configs
                    .iter()
                    .map(|c| c.and_then(|c| c.get(f)).cloned())
                    .collect();
                let differ = values.iter().any(|v| *v != values[0]);
                differ.then(|| (f.clone(), values))
            })
            .collect()
    }

    fn move_metric(&mut self, by: isize) {
        let n = self.metrics.len();
        if n == 0 {
            return;
        }
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        let to = (self.metric as isize + by).rem_euclid(n as isize) as usize;
        self.metric = to;
    }

    /// Re-reads the runs whose files changed; true when any did.
    fn reload_changed(&mut self) -> bool {
        let mut changed = false;
        for m in &mut self.members {
            let stamp = m.newest_file();
            if stamp != m.stamp {
                m.stamp = stamp;
                m.source.reload();
                changed = true;
            }
        }
        if changed {
            let keep = self.metric().map(str::to_string);
            self.metrics = self.find_metrics();
            self.metric = keep
                .and_then(|k| self.metrics.iter().position(|m| *m == k))
                .unwrap_or(0);
        }
        changed
    }

    /// The colour of run `i`: the same in the legend, the curves, the table and the diff.
    fn color(i: usize, ctx: &Ctx) -> Color {
        ctx.theme.series_color(i)
    }

    /// The run's short name (its experiment folder; the dataset when the experiments are alike).
    fn short_name(&self, i: usize) -> String {
        let name = &self.members[i].source.name;
        let experiment = name.rsplit('/').next().unwrap_or(name);
        let clash = self
            .members
            .iter()
            .enumerate()
            .any(|(j, m)| j != i && m.source.name.rsplit('/').next() == Some(experiment));
        if clash {
            name.clone()
        } else {
            experiment.to_string()
        }
    }
}

impl Screen for CompareScreen {
    fn title(&self) -> String {
        format!("Compare ({} runs)", self.members.len())
    }

    fn keys(&self) -> Vec<KeyHelp> {
        vec![
            KeyHelp::main("←→", "metric"),
            KeyHelp::main("d", "config diff"),
            KeyHelp::main("+ -", "smoothing"),
            KeyHelp::more("h l Tab Shift-Tab", "metric"),
            KeyHelp::more("↑↓ j k PgUp PgDn", "scroll the config diff"),
        ]
    }

    fn key(&mut self, key: KeyEvent, _ctx: &mut Ctx) -> Cmd {
        match key.code {
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => self.move_metric(1),
            KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => self.move_metric(-1),
            KeyCode::Char('d') => {
                self.view = match self.view {
                    View::Curves => View::Config,
                    View::Config => View::Curves,
                };
            }
            KeyCode::Char('+' | '=') => self.smoothing = (self.smoothing + 0.1).min(0.9),
            KeyCode::Char('-') => self.smoothing = (self.smoothing - 0.1).max(0.0),
            KeyCode::Down | KeyCode::Char('j') => self.diff_from += 1,
            KeyCode::Up | KeyCode::Char('k') => self.diff_from = self.diff_from.saturating_sub(1),
            KeyCode::PageDown => self.diff_from += 10,
            KeyCode::PageUp => self.diff_from = self.diff_from.saturating_sub(10),
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn mouse(&mut self, event: MouseEvent, _area: Rect, _ctx: &mut Ctx) -> Cmd {
        match event.kind {
            MouseEventKind::ScrollDown => self.diff_from += 3,
            MouseEventKind::ScrollUp => self.diff_from = self.diff_from.saturating_sub(3),
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn poll(&mut self, _ctx: &mut Ctx) -> bool {
        due(&mut self.last_look, RELOAD_EVERY) && self.reload_changed()
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let [legend, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        self.draw_legend(frame, legend, ctx);
        if self.view == View::Config {
            self.draw_diff(frame, body, ctx);
            return;
        }
        let runs = u16::try_from(self.members.len()).unwrap_or(u16::MAX);
        if body.width >= 120 {
            let [chart, side] =
                Layout::horizontal([Constraint::Min(40), Constraint::Length(64)]).areas(body);
            self.draw_chart(frame, chart, ctx);
            let [table, diff] =
                Layout::vertical([Constraint::Length(runs + 3), Constraint::Min(3)]).areas(side);
            self.draw_standings(frame, table, ctx);
            self.draw_diff(frame, diff, ctx);
        } else {
            let [chart, table] =
                Layout::vertical([Constraint::Min(6), Constraint::Length(runs + 3)]).areas(body);
            self.draw_chart(frame, chart, ctx);
            self.draw_standings(frame, table, ctx);
        }
    }
}

impl CompareScreen {
    /// One line: each run's colour and name.
    fn draw_legend(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let mut spans = Vec::new();
        for i in 0..self.members.len() {
            let style = Style::default().fg(Self::color(i, ctx));
            spans.push(Span::styled(format!("{} ", ctx.glyphs.full()), style));
            spans.push(Span::styled(self.short_name(i), style));
            spans.push(Span::raw("  "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_chart(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let Some(metric) = self.metric() else {
            plot::draw(
                frame,
                area,
                "Compare",
                &[],
                0.0,
                "none of these runs has records yet",
                ctx,
            );
            return;
        };
        let curves: Vec<Curve> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Curve {
                name: self.short_name(i),
                color: Self::color(i, ctx),
                points: m
                    .source
                    .table
                    .as_ref()
                    .ok()
                    .and_then(|t| t.column(metric).map(|c| t.series(c)))
                    .unwrap_or_default(),
            })
            .collect();
        let title = format!(
            "{metric} ({}/{}) · smoothing {:.1}",
            self.metric + 1,
            self.metrics.len(),
            self.smoothing
        );
        plot::draw(
            frame,
            area,
            &title,
            &curves,
            self.smoothing,
            "no run has values of this metric",
            ctx,
        );
    }

    /// The final and best value of the metric per run, with the differences to the first run.
    fn draw_standings(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let metric = self.metric().unwrap_or("");
        let direction = match better(metric) {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
            Better::Neither => "neither is better",
        };
        let title = format!("{metric}: final and best ({direction})");
        let block = widgets::block(&title, false, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let cells = 5 * 9 + 2;
        let name_w = usize::from(inner.width).saturating_sub(cells).max(6);
        let mut lines = vec![Line::from(Span::styled(
            format!(
                "{:<name_w$} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "run", "final", "Δ final", "best", "Δ best", "at"
            ),
            ctx.theme.header,
        ))];
        let direction = better(metric);
        let delta = |d: Option<f64>| -> Span<'static> {
            let Some(d) = d else {
                return Span::styled(format!("{:>8} ", ""), ctx.theme.dim);
            };
            let good = match direction {
                Better::Higher => Some(d > 0.0),
                Better::Lower => Some(d < 0.0),
                Better::Neither => None,
            };
            let style = if d == 0.0 || good.is_none() {
                ctx.theme.dim
            } else if good == Some(true) {
                ctx.theme.best
            } else {
                ctx.theme.error
            };
            let sign = if d > 0.0 { "+" } else { "" };
            Span::styled(format!("{:>8} ", format!("{sign}{}", fmt_value(d))), style)
        };
        let value = |v: Option<f64>| format!("{:>8} ", v.map_or("-".into(), fmt_value));
        for (i, s) in self.standings(metric).iter().enumerate() {
            let style = Style::default().fg(Self::color(i, ctx));
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{:<name_w$} ", cut(&self.short_name(i), name_w)),
                    style,
                ),
                Span::styled(value(s.last), ctx.theme.text),
                delta(s.last_delta),
                Span::styled(value(s.best), ctx.theme.text),
                delta(s.best_delta),
                Span::styled(
                    format!("{:>8}", s.best_at.map_or("-".into(), widgets::fmt_x)),
                    ctx.theme.dim,
                ),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    /// The config fields that differ, each run's value in its colour.
    fn draw_diff(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let diff = self.config_diff();
        let title = match diff.len() {
            0 => "Config: the same in every field".to_string(),
            1 => "Config: 1 field differs".to_string(),
            n => format!("Config: {n} fields differ"),
        };
        let block = widgets::block(&title, false, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let rows = usize::from(inner.height);
        self.diff_from = self.diff_from.min(diff.len().saturating_sub(rows));
        let mut lines = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if let Err(e) = &m.config {
                lines.push(Line::from(Span::styled(
                    format!("{}: {e}", self.short_name(i)),
                    ctx.theme.error,
                )));
            }
        }
        let field_w = diff
            .iter()
            .map(|(f, _)| f.chars().count())
            .max()
            .unwrap_or(0)
            .min(24);
        for (field, values) in diff.iter().skip(self.diff_from) {
            let mut spans = vec![Span::styled(
                format!("{:<field_w$} ", cut(field, field_w)),
                ctx.theme.text,
            )];
            for (i, v) in values.iter().enumerate() {
                let style = Style::default().fg(Self::color(i, ctx));
                spans.push(Span::styled(
                    format!(" {}", v.as_deref().unwrap_or("-")),
                    style,
                ));
            }
            lines.push(Line::from(spans));
        }
        if self
            .members
            .iter()
            .all(|m| m.config.as_ref().is_ok_and(BTreeMap::is_empty))
        {
            lines.push(Line::from(Span::styled(
                "none of these runs has a config snapshot (config.yaml)",
                ctx.theme.dim,
            )));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::App;
    use crate::tui::testing::{self, draw, key, text};

    fn pair() -> CompareScreen {
        let root = testing::fixture_root().join("shapes");
        CompareScreen::new(&[
            root.join("bs64_lr0.0003_ResNet18"),
            root.join("bs64_lr0.0003_ResNet18_simclr"),
        ])
    }

    #[test]
    fn metrics_start_with_the_scores_and_cover_every_run_s_columns() {
        let s = pair();
        assert_eq!(s.metric(), Some("nmi_feature"));
        assert_eq!(
            &s.metrics()[..3],
            ["nmi_feature", "nmi_backbone", "acc_feature"]
        );
        for m in s.members() {
            for c in &m.source.table.as_ref().unwrap().columns {
                assert!(s.metrics().contains(c), "{c}");
            }
        }
    }

    #[test]
    fn standings_take_final_and_best_values_and_differences_to_the_first_run() {
        let s = pair();
        let st = s.standings("nmi_feature");
        // The fixture CSVs: the CD run's last nmi_feature is its best; SimCLR's are read the same.
        let table = |i: usize| s.members()[i].source.table.as_ref().unwrap();
        let c0 = table(0).column("nmi_feature").unwrap();
        let c1 = table(1).column("nmi_feature").unwrap();
        let last0 = table(0).last(c0).unwrap();
        let last1 = table(1).last(c1).unwrap();
        let best1 = (0..table(1).rows())
            .filter_map(|r| table(1).get(r, c1))
            .fold(f64::MIN, f64::max);
        assert_eq!(st[0].last, Some(last0));
        assert_eq!(st[0].last_delta, None, "no difference for the first run");
        assert_eq!(st[1].last, Some(last1));
        assert_eq!(st[1].best, Some(best1));
        assert!((st[1].last_delta.unwrap() - (last1 - last0)).abs() < 1e-12);
        // A loss: the best is the lowest.
        let loss = s.standings("total_loss");
        let c = table(0).column("total_loss").unwrap();
        let lowest = (0..table(0).rows())
            .filter_map(|r| table(0).get(r, c))
            .fold(f64::MAX, f64::min);
        assert_eq!(loss[0].best, Some(lowest));
        assert_eq!(loss[0].best_at, Some(10.0));
    }

    #[test]
    fn the_config_diff_lists_only_the_fields_that_differ() {
        let s = pair();
        let diff = s.config_diff();
        assert_eq!(
            diff,
            vec![(
                "method".to_string(),
                vec![Some("cd".to_string()), Some("simclr".to_string())]
            )]
        );
        let root = testing::fixture_root();
        let three = CompareScreen::new(&[
            root.join("shapes/bs64_lr0.0003_ResNet18"),
            root.join("shapes/bs32_lr0.0003_ResNet18"),
            root.join("cifar10/reference_CD"),
        ]);
        let diff = three.config_diff();
        let batch = diff.iter().find(|(f, _)| f == "batch_size").unwrap();
        assert_eq!(
            batch.1,
            vec![Some("64".to_string()), Some("32".to_string()), None]
        );
        // The reference run has no config: every field differs by its absence, even the seed the
        // other two share.
        let seed = diff.iter().find(|(f, _)| f == "seed").unwrap();
        assert_eq!(
            seed.1,
            vec![Some("42".to_string()), Some("42".to_string()), None]
        );
    }

    #[test]
    fn keys_step_the_metric_and_switch_to_the_config_view() {
        let mut s = pair();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = testing::ctx(dir.path());
        s.key(key(KeyCode::Right), &mut ctx);
        assert_eq!(s.metric(), Some("nmi_backbone"));
        s.key(key(KeyCode::Left), &mut ctx);
        s.key(key(KeyCode::Left), &mut ctx);
        assert_eq!(s.metric(), s.metrics().last().map(String::as_str), "wraps");
        s.key(key(KeyCode::Char('d')), &mut ctx);
        assert_eq!(s.view(), View::Config);
    }

    #[test]
    fn a_live_run_s_curve_grows_when_its_files_change() {
        let dir = testing::fixture_copy(Duration::from_secs(30));
        let run = dir.path().join("shapes/bs64_lr0.0003_ResNet18");
        let mut s = CompareScreen::new(&[
            run.clone(),
            dir.path().join("shapes/bs64_lr0.0003_ResNet18_simclr"),
        ]);
        let rows = s.members()[0].source.table.as_ref().unwrap().rows();
        let mut metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        metrics.push_str("11,3.0,2.0,5.0,0.0003,12.0,80.0\n");
        std::fs::write(run.join("metrics.csv"), metrics).unwrap();
        let mut ctx = testing::ctx(dir.path());
        s.last_look = None;
        assert!(s.poll(&mut ctx));
        assert_eq!(
            s.members()[0].source.table.as_ref().unwrap().rows(),
            rows + 1
        );
        assert_eq!(s.metric(), Some("nmi_feature"), "the metric stays chosen");
    }

    #[test]
    fn compare_cd_simclr_80x24_and_160x48() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = testing::ctx(dir.path());
        let mut app = App::new(Box::new(pair()));
        insta::assert_snapshot!(
            "compare_cd_simclr_80x24",
            text(&draw(&mut app, &ctx, 80, 24))
        );
        insta::assert_snapshot!(
            "compare_cd_simclr_160x48",
            text(&draw(&mut app, &ctx, 160, 48))
        );
    }

    #[test]
    fn compare_config_diff_80x24() {
        let root = testing::fixture_root();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = testing::ctx(dir.path());
        let mut app = App::new(Box::new(CompareScreen::new(&[
            root.join("shapes/bs64_lr0.0003_ResNet18"),
            root.join("shapes/bs32_lr0.0003_ResNet18"),
            root.join("shapes/bs64_lr0.0003_ResNet18_simclr"),
            root.join("cifar10/bs128_lr0.0003_ResNet34"),
        ])));
        app.key(key(KeyCode::Char('d')), &mut ctx);
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }
}
