//! The Runs screen, the first one: every run under the records root in a sortable, filterable
//! table. Enter opens a run's dashboard; n starts a new run; r resumes, s stops, d deletes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::app::{Cmd, Ctx, KeyHelp, Question, Screen};
use super::checkpoints::CheckpointsScreen;
use super::{jobs, widgets};
use crate::store::runs::{list_runs, RunSummary, ShownState};

/// How often the table re-reads the records root.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The columns the table sorts by (`o` cycles, `O` reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Updated,
    State,
    Dataset,
    Experiment,
    BestFeature,
    BestBackbone,
}

impl SortBy {
    const ALL: [SortBy; 6] = [
        SortBy::Updated,
        SortBy::State,
        SortBy::Dataset,
        SortBy::Experiment,
        SortBy::BestFeature,
        SortBy::BestBackbone,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SortBy::Updated => "updated",
            SortBy::State => "state",
            SortBy::Dataset => "dataset",
            SortBy::Experiment => "experiment",
            SortBy::BestFeature => "best NMI f",
            SortBy::BestBackbone => "best NMI h",
        }
    }
    fn next(self) -> SortBy {
        let i = SortBy::ALL.iter().position(|s| *s == self).unwrap_or(0);
        SortBy::ALL[(i + 1) % SortBy::ALL.len()]
    }
}

/// Opens the dashboard of a run. The dashboard screen registers itself here.
pub type OpenRun = fn(&RunSummary, &mut Ctx) -> Cmd;
/// Opens the new-run screen.
pub type OpenNew = fn(&mut Ctx) -> Cmd;

pub struct RunsScreen {
    all: Vec<RunSummary>,
    /// Indices into `all` of the rows shown (filtered and sorted).
    shown: Vec<usize>,
    table: TableState,
    sort: SortBy,
    reverse: bool,
    filter: Input,
    filtering: bool,
    last_read: Option<Instant>,
    /// The run a question is about.
    asked: Option<RunSummary>,
    /// The rows' screen area of the last draw (for mouse clicks).
    rows_area: Rect,
    /// The runs chosen with space for Compare, in the order chosen (their colours there).
    chosen: Vec<PathBuf>,
    open_run: OpenRun,
    open_new: OpenNew,
}

fn no_dashboard(_: &RunSummary, _: &mut Ctx) -> Cmd {
    Cmd::Note("error: the dashboard is not available in this build".into())
}
fn no_new_run(_: &mut Ctx) -> Cmd {
    Cmd::Note("error: the new-run screen is not available in this build".into())
}

impl RunsScreen {
    pub fn new(ctx: &mut Ctx) -> RunsScreen {
        let mut s = RunsScreen {
            all: Vec::new(),
            shown: Vec::new(),
            table: TableState::default(),
            sort: SortBy::Updated,
            reverse: false,
            filter: Input::default(),
            filtering: false,
            last_read: None,
            asked: None,
            rows_area: Rect::default(),
            chosen: Vec::new(),
            open_run: no_dashboard,
            open_new: no_new_run,
        };
        s.refresh(ctx);
        s
    }

    /// Sets what Enter opens.
    pub fn with_open_run(mut self, open_run: OpenRun) -> RunsScreen {
        self.open_run = open_run;
        self
    }

    /// Sets what Enter and n open.
    pub fn with_screens(mut self, open_run: OpenRun, open_new: OpenNew) -> RunsScreen {
        self.open_run = open_run;
        self.open_new = open_new;
        self
    }

    /// Re-reads the records root, keeping the selected run selected.
    pub fn refresh(&mut self, ctx: &Ctx) {
        let selected = self.selected().map(|r| r.path.clone());
        self.all = list_runs(&ctx.records, ctx.now);
        self.last_read = Some(Instant::now());
        self.apply_view(selected.as_deref());
    }

    /// Filters and sorts `all` into `shown`; selects `keep` if it is still shown.
    fn apply_view(&mut self, keep: Option<&Path>) {
        let needle = self.filter.value().to_lowercase();
        let mut shown: Vec<usize> = (0..self.all.len())
            .filter(|&i| {
                let r = &self.all[i];
                needle.is_empty()
                    || format!(
                        "{}/{} {} {}",
                        r.dataset,
                        r.experiment,
                        r.method,
                        r.shown.name()
                    )
                    .to_lowercase()
                    .contains(&needle)
            })
            .collect();
        let all = &self.all;
        let key_f = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
        shown.sort_by(|&a, &b| {
            let (x, y) = (&all[a], &all[b]);
            let o = match self.sort {
                SortBy::Updated => y.modified.cmp(&x.modified),
                SortBy::State => state_rank(x.shown).cmp(&state_rank(y.shown)),
                SortBy::Dataset => x.dataset.cmp(&y.dataset),
                SortBy::Experiment => x.experiment.cmp(&y.experiment),
                SortBy::BestFeature => {
                    key_f(y.best_nmi_feature).total_cmp(&key_f(x.best_nmi_feature))
                }
                SortBy::BestBackbone => {
                    key_f(y.best_nmi_backbone).total_cmp(&key_f(x.best_nmi_backbone))
                }
            };
            let o = o.then_with(|| x.path.cmp(&y.path));
            if self.reverse {
                o.reverse()
            } else {
                o
            }
        });
        self.shown = shown;
        let index = keep
            .and_then(|p| self.shown.iter().position(|&i| self.all[i].path == p))
            .or(if self.shown.is_empty() { None } else { Some(0) });
        let index = index.map(|i| i.min(self.shown.len().saturating_sub(1)));
        self.table.select(index);
    }

    /// The selected run.
    pub fn selected(&self) -> Option<&RunSummary> {
        let i = self.table.selected()?;
        self.shown.get(i).map(|&k| &self.all[k])
    }

    /// The runs chosen for Compare, in the order chosen.
    pub fn chosen(&self) -> &[PathBuf] {
        &self.chosen
    }

    /// Space: the selected run joins the runs to compare, or leaves them.
    fn toggle_chosen(&mut self) -> Cmd {
        let Some(run) = self.selected() else {
            return Cmd::Done;
        };
        let path = run.path.clone();
        let name = run.name();
        let note = if let Some(i) = self.chosen.iter().position(|p| *p == path) {
            self.chosen.remove(i);
            format!("{name} left out of the comparison")
        } else {
            self.chosen.push(path);
            format!("{name} chosen to compare")
        };
        self.move_by(1);
        let hint = match self.chosen.len() {
            0 => String::new(),
            1 => "; choose one more with space".to_string(),
            n => format!("; c compares the {n} chosen"),
        };
        Cmd::Note(format!("{note}{hint}"))
    }

    /// c: the chosen runs (at least two) side by side.
    fn compare(&self) -> Cmd {
        let live: Vec<PathBuf> = self
            .chosen
            .iter()
            .filter(|p| self.all.iter().any(|r| r.path == **p))
            .cloned()
            .collect();
        if live.len() < 2 {
            return Cmd::Note(format!(
                "error: Compare needs two or more runs; {} chosen (space chooses the selected run)",
                live.len()
            ));
        }
        Cmd::Push(Box::new(super::compare::CompareScreen::new(&live)))
    }

    /// The runs in the order shown.
    pub fn rows(&self) -> Vec<&RunSummary> {
        self.shown.iter().map(|&i| &self.all[i]).collect()
    }

    pub fn sort(&self) -> (SortBy, bool) {
        (self.sort, self.reverse)
    }

    fn move_by(&mut self, delta: isize) {
        if self.shown.is_empty() {
            return;
        }
        let cur = self.table.selected().unwrap_or(0);
        let last = self.shown.len() - 1;
        let next = cur.saturating_add_signed(delta).min(last);
        self.table.select(Some(next));
    }

    fn ask_stop(&mut self, run: RunSummary) -> Cmd {
        if !run.shown.is_live() {
            return Cmd::Note(format!(
                "error: {} is {}, not running: nothing to stop",
                run.name(),
                run.shown.name()
            ));
        }
        let q = Question {
            tag: "stop",
            title: format!("Stop {}?", run.name()),
            lines: vec![
                format!(
                    "The training finishes its current step and exits as stopped. Every completed \
                     epoch is kept ({} of {}), with its checkpoint and records.",
                    run.epoch, run.epochs
                ),
                "Resume it later with r.".to_string(),
            ],
            yes: "Stop".into(),
        };
        self.asked = Some(run);
        Cmd::Ask(q)
    }

    fn ask_delete(&mut self, run: RunSummary, ctx: &Ctx) -> Cmd {
        if run.shown.is_live() {
            return Cmd::Note(format!(
                "error: {} is {}: stop it (s) before deleting it",
                run.name(),
                run.shown.name()
            ));
        }
        let ckpt = checkpoint_dir(&run, ctx);
        let mut lines = vec![format!(
            "records:     {} ({})",
            ctx.show_path(&run.path),
            human_bytes(dir_bytes(&run.path))
        )];
        if ckpt.is_dir() {
            lines.push(format!(
                "checkpoints: {} ({})",
                ckpt.display(),
                human_bytes(dir_bytes(&ckpt))
            ));
        } else {
            lines.push("checkpoints: none".to_string());
        }
        lines.push("Both folders are removed for good.".into());
        let q = Question {
            tag: "delete",
            title: format!("Delete {}?", run.name()),
            lines,
            yes: "Delete".into(),
        };
        self.asked = Some(run);
        Cmd::Ask(q)
    }

    fn resume(run: &RunSummary, ctx: &mut Ctx) -> Cmd {
        if !run.shown.is_resumable() {
            let why = match run.shown {
                ShownState::Finished => "finished (all its epochs are done)",
                ShownState::Reference => "reference records only (no cdw checkpoint)",
                _ => "already training",
            };
            return Cmd::Note(format!("error: {} is {why}: nothing to resume", run.name()));
        }
        let args = vec!["--resume".to_string(), run.path.display().to_string()];
        match jobs::launch_training(ctx, &run.path, &args) {
            Ok(pid) => Cmd::Note(format!(
                "resuming {} after epoch {} (pid {pid}; output in {}/train.log)",
                run.name(),
                run.epoch,
                ctx.show_path(&run.path)
            )),
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    fn filter_key(&mut self, key: KeyEvent) -> Cmd {
        match key.code {
            KeyCode::Enter => self.filtering = false,
            KeyCode::Esc => {
                self.filtering = false;
                self.filter.reset();
            }
            _ => {
                self.filter
                    .handle_event(&ratatui::crossterm::event::Event::Key(key));
            }
        }
        let keep = self.selected().map(|r| r.path.clone());
        self.apply_view(keep.as_deref());
        Cmd::Done
    }
}

/// Live runs first, then the ones to look at (crashed, failed), then the rest.
fn state_rank(s: ShownState) -> u8 {
    match s {
        ShownState::Running => 0,
        ShownState::Starting => 1,
        ShownState::Crashed => 2,
        ShownState::Failed => 3,
        ShownState::Stopped => 4,
        ShownState::Finished => 5,
        ShownState::Reference => 6,
    }
}

/// The checkpoints folder of a run: the same `<dataset>/<experiment>` under the checkpoints root.
pub fn checkpoint_dir(run: &RunSummary, ctx: &Ctx) -> PathBuf {
    ctx.checkpoints.join(&run.dataset).join(&run.experiment)
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `1.2 GB`, `340 KB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The runs table when there are no runs: where they are looked for and how to start one.
fn draw_no_runs(frame: &mut Frame, area: Rect, block: Block, ctx: &Ctx) {
    let text = vec![
        Line::from(Span::styled(
            format!("No runs under {} yet.", ctx.records_label),
            ctx.theme.text,
        )),
        Line::from(""),
        Line::from(vec![
            Span::styled("Press ", ctx.theme.dim),
            Span::styled("n", ctx.theme.key),
            Span::styled(
                " to start one (shapes is built in), or run `cdw train --dataset shapes`.",
                ctx.theme.dim,
            ),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
        area,
    );
}

/// The width of the epoch progress bar on a wide screen.
const BAR_WIDTH: u16 = 10;

/// One column of the runs table: its title and width on a wide screen and a narrow one (80
/// columns), and how a run fills it.
struct Column {
    title: &'static str,
    narrow_title: &'static str,
    width: Constraint,
    narrow_width: Constraint,
    /// Shown only on a screen of 100 columns or more.
    wide_only: bool,
    cell: fn(&RunSummary, &Ctx) -> Cell<'static>,
}

impl Column {
    fn title(&self, wide: bool) -> &'static str {
        if wide {
            self.title
        } else {
            self.narrow_title
        }
    }

    fn width(&self, wide: bool) -> Constraint {
        if wide {
            self.width
        } else {
            self.narrow_width
        }
    }
}

/// The runs table's columns, in order.
const COLUMNS: [Column; 10] = [
    Column {
        title: "state",
        narrow_title: "state",
        width: Constraint::Length(9),
        narrow_width: Constraint::Length(9),
        wide_only: false,
        cell: |r, ctx| Cell::from(Span::styled(r.shown.name(), state_style(r.shown, ctx))),
    },
    Column {
        title: "dataset",
        narrow_title: "dataset",
        width: Constraint::Length(12),
        narrow_width: Constraint::Length(9),
        wide_only: false,
        cell: |r, _| Cell::from(r.dataset.clone()),
    },
    Column {
        title: "experiment",
        narrow_title: "experiment",
        width: Constraint::Min(20),
        narrow_width: Constraint::Min(10),
        wide_only: false,
        cell: |r, _| Cell::from(r.experiment.clone()),
    },
    Column {
        title: "method",
        narrow_title: "method",
        width: Constraint::Length(6),
        narrow_width: Constraint::Length(6),
        wide_only: true,
        cell: |r, _| Cell::from(r.method.clone()),
    },
    Column {
        title: "epoch",
        narrow_title: "epoch",
        width: Constraint::Length(9),
        narrow_width: Constraint::Length(7),
        wide_only: false,
        cell: |r, _| {
            Cell::from(if r.epochs > 0 {
                format!("{}/{}", r.epoch, r.epochs)
            } else {
                format!("{}", r.epoch)
            })
        },
    },
    Column {
        title: "",
        narrow_title: "",
        width: Constraint::Length(BAR_WIDTH),
        narrow_width: Constraint::Length(BAR_WIDTH),
        wide_only: true,
        cell: |r, ctx| {
            #[allow(clippy::cast_precision_loss)]
            let bar = widgets::bar(r.epoch as f64, r.epochs as f64, usize::from(BAR_WIDTH), ctx);
            Cell::from(Span::styled(bar, ctx.theme.gauge))
        },
    },
    Column {
        title: "NMI f",
        narrow_title: "NMI f",
        width: Constraint::Length(6),
        narrow_width: Constraint::Length(5),
        wide_only: false,
        cell: |r, _| Cell::from(widgets::score(r.best_nmi_feature)),
    },
    Column {
        title: "NMI h",
        narrow_title: "NMI h",
        width: Constraint::Length(6),
        narrow_width: Constraint::Length(5),
        wide_only: false,
        cell: |r, _| Cell::from(widgets::score(r.best_nmi_backbone)),
    },
    Column {
        title: "img/s",
        narrow_title: "img/s",
        width: Constraint::Length(7),
        narrow_width: Constraint::Length(7),
        wide_only: true,
        cell: |r, _| Cell::from(r.images_per_sec.map_or("-".into(), |v| format!("{v:.0}"))),
    },
    Column {
        title: "updated",
        narrow_title: "upd",
        width: Constraint::Length(7),
        narrow_width: Constraint::Length(4),
        wide_only: false,
        cell: |r, ctx| Cell::from(widgets::ago(r.modified, ctx.now)),
    },
];

/// The style of a state.
pub fn state_style(s: ShownState, ctx: &Ctx) -> Style {
    match s {
        ShownState::Starting | ShownState::Running => ctx.theme.running,
        ShownState::Finished => ctx.theme.finished,
        ShownState::Stopped => ctx.theme.stopped,
        ShownState::Failed => ctx.theme.failed,
        ShownState::Crashed => ctx.theme.crashed,
        ShownState::Reference => ctx.theme.reference,
    }
}

impl Screen for RunsScreen {
    fn title(&self) -> String {
        "Runs".into()
    }

    fn typing(&self) -> bool {
        self.filtering
    }

    fn keys(&self) -> Vec<KeyHelp> {
        vec![
            KeyHelp::main("Enter", "open"),
            KeyHelp::main("n", "new run"),
            KeyHelp::main("r", "resume"),
            KeyHelp::main("s", "stop"),
            KeyHelp::main("d", "delete"),
            KeyHelp::main("t", "records"),
            KeyHelp::main("m", "checkpoints"),
            KeyHelp::main("space", "choose"),
            KeyHelp::main("c", "compare"),
            KeyHelp::main("/", "filter"),
            KeyHelp::main("o", "sort"),
            KeyHelp::more("O", "reverse the order"),
            KeyHelp::more("↑↓ j k", "move"),
            KeyHelp::more("PgUp PgDn Home End", "move faster"),
            KeyHelp::more("click", "select a row; scroll to move"),
        ]
    }

    fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        if self.filtering {
            return self.filter_key(key);
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::Home => self.move_by(isize::MIN / 2),
            KeyCode::End => self.move_by(isize::MAX / 2),
            KeyCode::Char('/') => self.filtering = true,
            KeyCode::Char('o') => {
                self.sort = self.sort.next();
                let keep = self.selected().map(|r| r.path.clone());
                self.apply_view(keep.as_deref());
                return Cmd::Note(format!("sorted by {}", self.sort.name()));
            }
            KeyCode::Char('O') => {
                self.reverse = !self.reverse;
                let keep = self.selected().map(|r| r.path.clone());
                self.apply_view(keep.as_deref());
            }
            KeyCode::Char('n') => return (self.open_new)(ctx),
            KeyCode::Char(' ') => return self.toggle_chosen(),
            KeyCode::Char('c') => return self.compare(),
            KeyCode::Char('m') => match self.selected() {
                Some(run) => return Cmd::Push(Box::new(CheckpointsScreen::new(run, ctx))),
                None => return Cmd::Done,
            },
            KeyCode::Char('t') => match self.selected() {
                Some(run) => {
                    return Cmd::Push(Box::new(super::records::RecordsScreen::for_run(&run.path)))
                }
                None => return Cmd::Done,
            },
            KeyCode::Enter => match self.selected().cloned() {
                Some(run) => return (self.open_run)(&run, ctx),
                None => return Cmd::Done,
            },
            KeyCode::Char('s') => match self.selected().cloned() {
                Some(run) => return self.ask_stop(run),
                None => return Cmd::Done,
            },
            KeyCode::Char('d') => match self.selected().cloned() {
                Some(run) => return self.ask_delete(run, ctx),
                None => return Cmd::Done,
            },
            KeyCode::Char('r') => match self.selected().cloned() {
                Some(run) => {
                    let cmd = RunsScreen::resume(&run, ctx);
                    self.refresh(ctx);
                    return cmd;
                }
                None => return Cmd::Done,
            },
            KeyCode::Esc if !self.filter.value().is_empty() => {
                self.filter.reset();
                let keep = self.selected().map(|r| r.path.clone());
                self.apply_view(keep.as_deref());
            }
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn answered(&mut self, tag: &'static str, yes: bool, ctx: &mut Ctx) -> Cmd {
        let Some(run) = self.asked.take() else {
            return Cmd::Done;
        };
        if !yes {
            return Cmd::Done;
        }
        let cmd = match tag {
            "stop" => match run.pid.map(jobs::interrupt) {
                Some(Ok(())) => Cmd::Note(format!(
                    "asked {} to stop; it keeps every completed epoch",
                    run.name()
                )),
                Some(Err(e)) => Cmd::Note(format!("error: could not signal {}: {e}", run.name())),
                None => Cmd::Note(format!("error: {} has no process id", run.name())),
            },
            "delete" => {
                let ckpt = checkpoint_dir(&run, ctx);
                let result = fs::remove_dir_all(&run.path).and_then(|()| {
                    if ckpt.is_dir() {
                        fs::remove_dir_all(&ckpt)
                    } else {
                        Ok(())
                    }
                });
                match result {
                    Ok(()) => Cmd::Note(format!("deleted {}", run.name())),
                    Err(e) => Cmd::Note(format!("error: deleting {}: {e}", run.name())),
                }
            }
            _ => Cmd::Done,
        };
        self.refresh(ctx);
        cmd
    }

    fn poll(&mut self, ctx: &mut Ctx) -> bool {
        if self.last_read.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
            return false;
        }
        let before = self.all.clone();
        self.refresh(ctx);
        before != self.all
    }

    fn mouse(&mut self, event: MouseEvent, _area: Rect, _ctx: &mut Ctx) -> Cmd {
        match event.kind {
            MouseEventKind::ScrollDown => self.move_by(1),
            MouseEventKind::ScrollUp => self.move_by(-1),
            MouseEventKind::Down(MouseButton::Left) => {
                let r = self.rows_area;
                if event.row < r.y || event.row >= r.y + r.height || event.column < r.x {
                    return Cmd::None;
                }
                let i = self.table.offset() + usize::from(event.row - r.y);
                if i < self.shown.len() {
                    self.table.select(Some(i));
                }
            }
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let show_filter = self.filtering || !self.filter.value().is_empty();
        let [table_area, detail_area, filter_area] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(if area.height >= 16 { 3 } else { 0 }),
            Constraint::Length(u16::from(show_filter)),
        ])
        .areas(area);
        self.draw_table(frame, table_area, ctx);
        if detail_area.height > 0 {
            self.draw_detail(frame, detail_area, ctx);
        }
        if show_filter {
            let prefix = "filter: ";
            let line = Line::from(vec![
                Span::styled(prefix, ctx.theme.key),
                Span::styled(self.filter.value().to_string(), ctx.theme.text),
            ]);
            frame.render_widget(Paragraph::new(line), filter_area);
            if self.filtering {
                let x = filter_area.x
                    + u16::try_from(prefix.len() + self.filter.visual_cursor()).unwrap_or(0);
                frame.set_cursor_position((
                    x.min(filter_area.right().saturating_sub(1)),
                    filter_area.y,
                ));
            }
        }
    }
}

impl RunsScreen {
    fn draw_table(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!(
            "Runs ({}{}) sorted by {}{}",
            self.shown.len(),
            if self.shown.len() == self.all.len() {
                String::new()
            } else {
                format!(" of {}", self.all.len())
            },
            self.sort.name(),
            if self.reverse { ", reversed" } else { "" }
        );
        let block = widgets::block(&title, true, ctx);
        if self.all.is_empty() {
            draw_no_runs(frame, area, block, ctx);
            return;
        }
        let wide = area.width >= 100;
        let columns: Vec<&Column> = COLUMNS.iter().filter(|c| wide || !c.wide_only).collect();
        let header = Row::new(
            std::iter::once(Cell::from(""))
                .chain(columns.iter().map(|c| Cell::from(c.title(wide)))),
        )
        .style(ctx.theme.header);
        let rows: Vec<Row> = self
            .shown
            .iter()
            .map(|&i| {
                let r = &self.all[i];
                Row::new(
                    std::iter::once(self.chosen_mark(r, ctx))
                        .chain(columns.iter().map(|c| (c.cell)(r, ctx))),
                )
            })
            .collect();
        let widths: Vec<Constraint> = std::iter::once(Constraint::Length(1))
            .chain(columns.iter().map(|c| c.width(wide)))
            .collect();
        let inner = block.inner(area);
        self.rows_area = Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        };
        let table = Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1)
            .row_highlight_style(ctx.theme.selected);
        frame.render_stateful_widget(table, area, &mut self.table);
    }

    /// The mark of a run chosen for Compare, in the colour it will have there.
    fn chosen_mark(&self, r: &RunSummary, ctx: &Ctx) -> Cell<'static> {
        match self.chosen.iter().position(|p| *p == r.path) {
            Some(i) => Cell::from(Span::styled(
                ctx.glyphs.full().to_string(),
                Style::default().fg(ctx.theme.series_color(i)),
            )),
            None => Cell::from(""),
        }
    }

    fn draw_detail(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let Some(r) = self.selected() else {
            frame.render_widget(widgets::block("Selected", false, ctx), area);
            return;
        };
        let mut spans = vec![
            Span::styled(r.shown.name(), state_style(r.shown, ctx)),
            Span::styled(format!("  {}", ctx.show_path(&r.path)), ctx.theme.dim),
        ];
        if let Some(pid) = r.pid.filter(|_| r.shown.is_live()) {
            spans.push(Span::styled(format!("  pid {pid}"), ctx.theme.dim));
        }
        if let Some(e) = &r.error {
            spans.push(Span::styled(format!("  {e}"), ctx.theme.error));
        }
        frame.render_widget(
            Paragraph::new(Line::from(spans))
                .wrap(Wrap { trim: true })
                .block(widgets::block("Selected", false, ctx)),
            area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::App;
    use crate::tui::testing::{self, key, type_text};

    fn screen() -> (tempfile::TempDir, Ctx, RunsScreen) {
        let dir = testing::fixture_copy(Duration::from_secs(30));
        let mut ctx = testing::ctx(dir.path());
        let s = RunsScreen::new(&mut ctx);
        (dir, ctx, s)
    }

    fn names(s: &RunsScreen) -> Vec<String> {
        s.rows().iter().map(|r| r.experiment.clone()).collect()
    }

    #[test]
    fn lists_every_fixture_run_with_its_shown_state() {
        let (_d, _ctx, s) = screen();
        let mut states: Vec<(String, &str)> = s
            .rows()
            .iter()
            .map(|r| (r.name(), r.shown.name()))
            .collect();
        states.sort();
        assert_eq!(
            states,
            vec![
                ("cifar10/bs128_lr0.0003_ResNet34".to_string(), "crashed"),
                ("cifar10/reference_CD".to_string(), "reference"),
                ("shapes/bs32_lr0.0003_ResNet18".to_string(), "running"),
                ("shapes/bs64_lr0.0003_ResNet18".to_string(), "finished"),
                (
                    "shapes/bs64_lr0.0003_ResNet18_simclr".to_string(),
                    "stopped"
                ),
            ]
        );
    }

    #[test]
    fn sorting_cycles_and_reverses() {
        let (_d, mut ctx, mut s) = screen();
        s.key(key(KeyCode::Char('o')), &mut ctx);
        assert_eq!(s.sort(), (SortBy::State, false));
        let by_state: Vec<&str> = s.rows().iter().map(|r| r.shown.name()).collect();
        assert_eq!(
            by_state,
            ["running", "crashed", "stopped", "finished", "reference"]
        );
        s.key(key(KeyCode::Char('O')), &mut ctx);
        let reversed: Vec<&str> = s.rows().iter().map(|r| r.shown.name()).collect();
        assert_eq!(
            reversed,
            ["reference", "finished", "stopped", "crashed", "running"]
        );
        // Best feature NMI, highest first; runs without scores last.
        s.key(key(KeyCode::Char('O')), &mut ctx);
        for _ in 0..3 {
            s.key(key(KeyCode::Char('o')), &mut ctx);
        }
        assert_eq!(s.sort().0, SortBy::BestFeature);
        let best: Vec<Option<f64>> = s.rows().iter().map(|r| r.best_nmi_feature).collect();
        for w in best.windows(2) {
            assert!(w[0].unwrap_or(-1.0) >= w[1].unwrap_or(-1.0), "{best:?}");
        }
    }

    #[test]
    fn filter_narrows_by_name_and_esc_clears_it() {
        let (_d, mut ctx, s) = screen();
        let mut app = App::new(Box::new(s));
        app.key(key(KeyCode::Char('/')), &mut ctx);
        // While filtering, q is a letter, not quit.
        type_text(&mut app, &mut ctx, "simclr");
        assert!(!app.quit);
        app.key(key(KeyCode::Enter), &mut ctx);
        let text = testing::text(&testing::draw(&mut app, &ctx, 100, 20));
        assert!(text.contains("Runs (1 of 5)"), "{text}");
        assert!(text.contains("bs64_lr0.0003_ResNet18_simclr"), "{text}");
        app.key(key(KeyCode::Esc), &mut ctx);
        let text = testing::text(&testing::draw(&mut app, &ctx, 100, 20));
        assert!(text.contains("Runs (5)"), "{text}");
    }

    #[test]
    fn stop_and_delete_refuse_what_they_cannot_do() {
        let (_d, mut ctx, mut s) = screen();
        let finished = s
            .rows()
            .iter()
            .find(|r| r.shown == ShownState::Finished)
            .map(|r| (*r).clone())
            .unwrap();
        let Cmd::Note(n) = s.ask_stop(finished.clone()) else {
            panic!("stopping a finished run must say no")
        };
        assert_eq!(
            n,
            "error: shapes/bs64_lr0.0003_ResNet18 is finished, not running: nothing to stop"
        );
        let running = s
            .rows()
            .iter()
            .find(|r| r.shown == ShownState::Running)
            .map(|r| (*r).clone())
            .unwrap();
        let Cmd::Note(n) = s.ask_delete(running, &ctx) else {
            panic!("deleting a running run must say no")
        };
        assert!(n.contains("stop it (s) before deleting it"), "{n}");
        let Cmd::Note(n) = RunsScreen::resume(&finished, &mut ctx) else {
            panic!()
        };
        assert!(n.contains("finished (all its epochs are done)"), "{n}");
    }

    #[test]
    fn delete_removes_records_and_checkpoints_after_yes() {
        let (d, mut ctx, mut s) = screen();
        ctx.checkpoints = d.path().join("ckpt");
        let run = s
            .rows()
            .iter()
            .find(|r| r.shown == ShownState::Stopped)
            .map(|r| (*r).clone())
            .unwrap();
        let ckpt = checkpoint_dir(&run, &ctx);
        fs::create_dir_all(&ckpt).unwrap();
        fs::write(ckpt.join("checkpoint.safetensors"), vec![0u8; 2500]).unwrap();
        let Cmd::Ask(q) = s.ask_delete(run.clone(), &ctx) else {
            panic!()
        };
        assert!(q.lines[1].ends_with("(2.5 KB)"), "{:?}", q.lines);
        // No keeps everything.
        s.answered("delete", false, &mut ctx);
        assert!(run.path.is_dir() && ckpt.is_dir());
        s.ask_delete(run.clone(), &ctx);
        let Cmd::Note(n) = s.answered("delete", true, &mut ctx) else {
            panic!()
        };
        assert_eq!(n, "deleted shapes/bs64_lr0.0003_ResNet18_simclr");
        assert!(!run.path.exists() && !ckpt.exists());
        assert_eq!(s.rows().len(), 4);
        assert!(!names(&s).contains(&run.experiment));
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(340_000), "340.0 KB");
        assert_eq!(human_bytes(1_230_000_000), "1.2 GB");
    }
}
