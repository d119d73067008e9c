//! The Checkpoints screen of one run (`m` on the Runs screen or the dashboard): the resumable
//! checkpoint of the latest epoch, every kept `checkpoint_epoch_N`, and the saved models
//! (`model_epoch_N`, `best`, `final`), each with its epoch, size, age and the loss and scores the
//! records hold for that epoch. On the selected file:
//! - `r` resumes the run from it (`cdw train --resume RUN --from-epoch N`, to an epoch count edited
//!   first), after a question that says which later epochs are cut back;
//! - `e` evaluates it (`cdw evaluate --model FILE --json`), with a gauge, then its scores;
//! - `x` exports it (`cdw export FILE --out PATH`) to a path edited in place;
//! - `i` imports a reference `.pth` / `.pth.tar` (`cdw import`).
//!
//! Every action is its own `cdw` process with its output in the run folder, so it goes on when the
//! UI quits, and an evaluation's result is found again from its log when the screen reopens.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::app::{due, Cmd, Ctx, KeyHelp, Question, Screen};
use super::evaluation::{self, Evaluation};
use super::feed::LogKind;
use super::jobs::{self, Job};
use super::runs::{checkpoint_dir, human_bytes, state_style};
use super::widgets;
use crate::events::ModelTag;
use crate::store::checkpoint::{CheckpointDir, SavedFile, SavedKind};
use crate::store::lock::process_alive;
use crate::store::runs::{summarize, RunSummary};
use crate::store::table::{self, read_run_table};
use crate::store::RunDir;

/// How often the folder and the run's state are read again.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// The output of an export or import started here, in the run folder.
pub const EXPORT_LOG: &str = "export.log";
pub const IMPORT_LOG: &str = "import.log";

/// One file of the list, with what the records say of its epoch.
pub struct Entry {
    pub file: SavedFile,
    /// `latest`, `kept`, `model best`, `model epoch_100`, ...
    pub label: String,
    /// The total loss, feature NMI and backbone NMI recorded at the file's epoch.
    pub loss: Option<f64>,
    pub nmi_feature: Option<f64>,
    pub nmi_backbone: Option<f64>,
    /// Its evaluation from this screen (now or earlier), followed through its log.
    pub eval: Option<Evaluation>,
}

impl Entry {
    pub fn name(&self) -> String {
        self.file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A text being typed: what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editing {
    /// The epoch count a resume trains to.
    Epochs,
    /// The path an export writes.
    Export,
    /// The reference file to import.
    Import,
}

/// An export or import running in the background.
struct Action {
    what: String,
    pid: u32,
    log: PathBuf,
}

pub struct CheckpointsScreen {
    run: RunSummary,
    dir: CheckpointDir,
    entries: Vec<Entry>,
    /// Why the folder could not be listed.
    problem: Option<String>,
    table: TableState,
    editing: Option<(Editing, Input)>,
    /// The resume the open question is about: from epoch, to epoch.
    asked: Option<(i64, i64)>,
    action: Option<Action>,
    /// The last line of the last export or import.
    result: Option<(LogKind, String)>,
    last_look: Option<Instant>,
}

/// Orders the list: the latest checkpoint, kept ones (newest first), then models: best, final,
/// then by epoch, newest first.
fn rank(f: &SavedFile) -> (u8, i64) {
    let epoch = f.epoch.unwrap_or(0);
    match f.kind {
        SavedKind::Latest => (0, 0),
        SavedKind::Kept => (1, -epoch),
        SavedKind::Model(ModelTag::Best) => (2, 0),
        SavedKind::Model(ModelTag::Final) => (3, 0),
        SavedKind::Model(ModelTag::Epoch(n)) => (4, -n),
        SavedKind::Backbone(_) => (5, -epoch),
    }
}

fn label(kind: SavedKind) -> String {
    match kind {
        SavedKind::Latest => "latest".into(),
        SavedKind::Kept => "kept".into(),
        SavedKind::Model(tag) => format!("model {tag}"),
        SavedKind::Backbone(tag) => format!("backbone {tag}"),
    }
}

/// The value of `column` at epoch `epoch` of `table`.
fn at_epoch(table: Option<&table::Table>, column: &str, epoch: Option<i64>) -> Option<f64> {
    let (t, epoch) = (table?, epoch?);
    let c = t.column(column)?;
    #[allow(clippy::cast_precision_loss)]
    let row = t.xs.iter().position(|&x| x == epoch as f64)?;
    t.get(row, c)
}

impl CheckpointsScreen {
    pub fn new(run: &RunSummary, ctx: &Ctx) -> CheckpointsScreen {
        let mut s = CheckpointsScreen {
            run: run.clone(),
            dir: CheckpointDir {
                path: checkpoint_dir(run, ctx),
            },
            entries: Vec::new(),
            problem: None,
            table: TableState::default(),
            editing: None,
            asked: None,
            action: None,
            result: None,
            last_look: Some(Instant::now()),
        };
        s.reload();
        s.table.select((!s.entries.is_empty()).then_some(0));
        s
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn selected(&self) -> Option<&Entry> {
        self.table.selected().and_then(|i| self.entries.get(i))
    }

    pub fn editing(&self) -> Option<(Editing, &str)> {
        self.editing.as_ref().map(|(e, i)| (*e, i.value()))
    }

    /// Reads the folder and the records again, keeping the evaluations followed and the file
    /// selected.
    fn reload(&mut self) {
        let keep = self.selected().map(|e| e.file.path.clone());
        let files = match self.dir.list() {
            Ok(files) => {
                self.problem = None;
                files
            }
            Err(e) => {
                self.problem = Some(e.to_string());
                Vec::new()
            }
        };
        let table = read_run_table(&RunDir {
            path: self.run.path.clone(),
        })
        .ok();
        let mut old: Vec<Entry> = std::mem::take(&mut self.entries);
        let mut files: Vec<SavedFile> = files
            .into_iter()
            .filter(|f| !matches!(f.kind, SavedKind::Backbone(_)))
            .collect();
        files.sort_by_key(rank);
        for file in files {
            let eval = match old.iter().position(|e| e.file.path == file.path) {
                Some(i) => old.swap_remove(i).eval,
                None => self.found_evaluation(&file.path),
            };
            let t = table.as_ref();
            self.entries.push(Entry {
                label: label(file.kind),
                loss: at_epoch(t, "total_loss", file.epoch),
                nmi_feature: at_epoch(t, "nmi_feature", file.epoch),
                nmi_backbone: at_epoch(t, "nmi_backbone", file.epoch),
                eval,
                file,
            });
        }
        let at = keep
            .and_then(|k| self.entries.iter().position(|e| e.file.path == k))
            .or_else(|| (!self.entries.is_empty()).then_some(0));
        self.table.select(at);
        self.poll_evaluations();
    }

    /// The evaluation of `model` started earlier (its log is in the run folder), if there is one.
    fn found_evaluation(&self, model: &Path) -> Option<Evaluation> {
        let log = self.run.path.join(evaluation::log_name(model));
        log.is_file()
            .then(|| Evaluation::follow(log.clone(), evaluation::what_of_log(&log)))
    }

    fn poll_evaluations(&mut self) -> bool {
        let mut changed = false;
        for e in &mut self.entries {
            if let Some(ev) = &mut e.eval {
                changed |= ev.poll().1;
            }
        }
        changed
    }

    fn move_by(&mut self, by: isize) {
        if self.entries.is_empty() {
            return;
        }
        let cur = self.table.selected().unwrap_or(0);
        let next = cur.saturating_add_signed(by).min(self.entries.len() - 1);
        self.table.select(Some(next));
    }

    /// The run's state now (a training may have started or ended since the screen opened).
    fn fresh_run(&mut self, ctx: &Ctx) -> &RunSummary {
        if let Some(s) = summarize(&self.run.path, ctx.now) {
            self.run = s;
        }
        &self.run
    }

    /// `r`: asks for the epoch count to train to (the run's own, or one more than the file's).
    fn start_resume(&mut self, ctx: &Ctx) -> Cmd {
        let Some(entry) = self.selected() else {
            return Cmd::Done;
        };
        if !entry.file.kind.is_checkpoint() {
            return Cmd::Note(format!(
                "error: {} is a saved model without the optimizer's state; resume from a \
                 checkpoint (latest or kept)",
                entry.name()
            ));
        }
        let Some(from) = entry.file.epoch else {
            return Cmd::Done;
        };
        let run = self.fresh_run(ctx).clone();
        if run.shown.is_live() {
            return Cmd::Note(format!(
                "error: {} is {}: stop it (s on the Runs screen) before resuming it from another \
                 checkpoint",
                run.name(),
                run.shown.name()
            ));
        }
        let to = run.epochs.max(from + 1);
        self.editing = Some((Editing::Epochs, Input::new(to.to_string())));
        Cmd::Done
    }

    /// The epoch count is typed: the question that says what goes.
    fn ask_resume(&mut self, typed: &str) -> Cmd {
        let Some(entry) = self.selected() else {
            return Cmd::Done;
        };
        let from = entry.file.epoch.unwrap_or(0);
        let to = match typed.trim().parse::<i64>() {
            Ok(n) if n > from => n,
            _ => {
                return Cmd::Note(format!(
                    "error: epochs `{typed}`: a whole number above {from} (the checkpoint's epoch) \
                     is needed"
                ))
            }
        };
        let done = self.run.epoch;
        let mut lines = vec![if done > from {
            format!(
                "The history of epochs {}..{done} is cut back: their rows of metrics.csv and \
                 evaluation.csv and their events are removed.",
                from + 1
            )
        } else {
            format!("Nothing is cut back: epoch {from} is the last one trained.")
        }];
        let mut later: Vec<(i64, String)> = self
            .entries
            .iter()
            .filter(|e| e.file.kind == SavedKind::Kept)
            .filter_map(|e| e.file.epoch.filter(|&n| n > from).map(|n| (n, e.name())))
            .collect();
        later.sort();
        let later: Vec<String> = later.into_iter().map(|(_, name)| name).collect();
        if !later.is_empty() {
            lines.push(format!("Deleted: {}.", later.join(", ")));
        }
        lines.push(format!(
            "Training continues from epoch {} to epoch {to} (cdw train --resume {} --from-epoch \
             {from} --set epochs={to}).",
            from + 1,
            self.run.name()
        ));
        self.asked = Some((from, to));
        Cmd::Ask(Question {
            tag: "resume",
            title: format!("Resume {} from epoch {from}?", self.run.name()),
            lines,
            yes: "Resume".into(),
        })
    }

    fn resume(&mut self, from: i64, to: i64, ctx: &mut Ctx) -> Cmd {
        if self.fresh_run(ctx).shown.is_live() {
            return Cmd::Note(format!("error: {} started meanwhile", self.run.name()));
        }
        let args = vec![
            "--resume".to_string(),
            self.run.path.display().to_string(),
            "--from-epoch".into(),
            from.to_string(),
            "--set".into(),
            format!("epochs={to}"),
        ];
        match jobs::launch_training(ctx, &self.run.path, &args) {
            Ok(pid) => Cmd::Note(format!(
                "resuming {} from epoch {from} to {to} (pid {pid}; output in {}/train.log)",
                self.run.name(),
                ctx.show_path(&self.run.path)
            )),
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    /// `e`: evaluates the selected file in the background.
    fn evaluate(&mut self, ctx: &mut Ctx) -> Cmd {
        let run = self.run.path.clone();
        let Some(i) = self.table.selected().filter(|&i| i < self.entries.len()) else {
            return Cmd::Done;
        };
        let entry = &mut self.entries[i];
        if entry
            .eval
            .as_ref()
            .is_some_and(|e| !e.done() && e.progress.is_some())
        {
            return Cmd::Note(format!(
                "error: {} is being evaluated already",
                entry.name()
            ));
        }
        let model = entry.file.path.clone();
        let log = evaluation::log_name(&model);
        match Evaluation::start(
            ctx,
            &run,
            Some(&model),
            &log,
            evaluation::what_of_log(Path::new(&log)),
        ) {
            Ok((eval, _)) => {
                entry.eval = Some(eval);
                Cmd::Note(format!(
                    "evaluating {} in the background (output in {}/{log})",
                    entry.name(),
                    ctx.show_path(&run)
                ))
            }
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    fn start_export(&mut self) -> Cmd {
        let Some(entry) = self.selected() else {
            return Cmd::Done;
        };
        let stem = entry
            .file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = format!(
            "exports/{}_{}_{stem}.safetensors",
            self.run.dataset, self.run.experiment
        );
        self.editing = Some((Editing::Export, Input::new(out)));
        Cmd::Done
    }

    /// Starts `cdw export` or `cdw import` with its output in the run folder.
    fn start_action(&mut self, kind: Editing, typed: &str, ctx: &mut Ctx) -> Cmd {
        if let Some(a) = &self.action {
            return Cmd::Note(format!("error: {} is still running", a.what));
        }
        let path = typed.trim();
        if path.is_empty() {
            return Cmd::Note("error: no path given".into());
        }
        let (args, log, what) = match kind {
            Editing::Export => {
                let Some(entry) = self.selected() else {
                    return Cmd::Done;
                };
                (
                    vec![
                        "export".to_string(),
                        entry.file.path.display().to_string(),
                        "--out".into(),
                        path.to_string(),
                    ],
                    EXPORT_LOG,
                    format!("export of {}", entry.name()),
                )
            }
            Editing::Import => {
                if !Path::new(path).is_file() {
                    return Cmd::Note(format!("error: {path} is not a file"));
                }
                (
                    vec![
                        "import".to_string(),
                        path.to_string(),
                        "--checkpoints".into(),
                        ctx.checkpoints.display().to_string(),
                    ],
                    IMPORT_LOG,
                    format!("import of {path}"),
                )
            }
            Editing::Epochs => return Cmd::Done,
        };
        let log = self.run.path.join(log);
        let _ = std::fs::remove_file(&log);
        let job = Job::new(&ctx.exe, args, log.clone());
        match job.spawn() {
            Ok(child) => {
                let pid = child.id();
                ctx.children.push(child);
                self.result = Some((LogKind::Info, format!("{what}: running")));
                self.action = Some(Action { what, pid, log });
                Cmd::Done
            }
            Err(e) => Cmd::Note(format!("error: could not start `{}`: {e}", job.display())),
        }
    }

    /// The export or import ended: its last line is the result.
    fn poll_action(&mut self) -> bool {
        let Some(a) = &self.action else {
            return false;
        };
        if process_alive(a.pid) {
            return false;
        }
        let last = jobs::log_tail(&a.log, 1).pop().unwrap_or_default();
        let kind = if last.starts_with("error") || last.contains("error:") {
            LogKind::Error
        } else {
            LogKind::Good
        };
        let text = if last.is_empty() {
            format!("{}: ended without output", a.what)
        } else {
            last
        };
        self.result = Some((kind, text));
        self.action = None;
        self.reload();
        true
    }

    fn edit_key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        let Some((kind, input)) = &mut self.editing else {
            return Cmd::None;
        };
        match key.code {
            KeyCode::Esc => {
                self.editing = None;
                Cmd::Done
            }
            KeyCode::Enter => {
                let (kind, typed) = (*kind, input.value().to_string());
                self.editing = None;
                match kind {
                    Editing::Epochs => self.ask_resume(&typed),
                    Editing::Export | Editing::Import => self.start_action(kind, &typed, ctx),
                }
            }
            _ => {
                input.handle_event(&ratatui::crossterm::event::Event::Key(key));
                Cmd::Done
            }
        }
    }
}

impl Screen for CheckpointsScreen {
    fn title(&self) -> String {
        format!("Checkpoints of {}", self.run.name())
    }

    fn typing(&self) -> bool {
        self.editing.is_some()
    }

    fn keys(&self) -> Vec<KeyHelp> {
        if self.editing.is_some() {
            return vec![
                KeyHelp::main("Enter", "accept"),
                KeyHelp::main("Esc", "cancel"),
            ];
        }
        vec![
            KeyHelp::main("r", "resume from it"),
            KeyHelp::main("e", "evaluate"),
            KeyHelp::main("x", "export"),
            KeyHelp::main("i", "import .pth"),
            KeyHelp::more("↑↓ j k", "move"),
            KeyHelp::more("Home End", "first, last"),
        ]
    }

    fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        if self.editing.is_some() {
            return self.edit_key(key, ctx);
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Home => self.move_by(isize::MIN / 2),
            KeyCode::End => self.move_by(isize::MAX / 2),
            KeyCode::Char('r') | KeyCode::Enter => return self.start_resume(ctx),
            KeyCode::Char('e') => return self.evaluate(ctx),
            KeyCode::Char('x') => return self.start_export(),
            KeyCode::Char('i') => {
                self.editing = Some((Editing::Import, Input::default()));
            }
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn answered(&mut self, tag: &'static str, yes: bool, ctx: &mut Ctx) -> Cmd {
        match (tag, self.asked.take()) {
            ("resume", Some((from, to))) if yes => self.resume(from, to, ctx),
            _ => Cmd::Done,
        }
    }

    fn poll(&mut self, ctx: &mut Ctx) -> bool {
        let mut changed = self.poll_evaluations() | self.poll_action();
        if due(&mut self.last_look, LOOK_EVERY) {
            let before: Vec<(PathBuf, u64)> = self
                .entries
                .iter()
                .map(|e| (e.file.path.clone(), e.file.bytes))
                .collect();
            let state = self.run.shown;
            self.fresh_run(ctx);
            self.reload();
            let after: Vec<(PathBuf, u64)> = self
                .entries
                .iter()
                .map(|e| (e.file.path.clone(), e.file.bytes))
                .collect();
            changed |= before != after || state != self.run.shown;
        }
        changed
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let [info, list, detail] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(4),
            Constraint::Length(if area.height >= 18 { 6 } else { 4 }),
        ])
        .areas(area);
        let state = Line::from(vec![
            Span::styled(
                format!("{} ", self.run.shown.name()),
                state_style(self.run.shown, ctx),
            ),
            Span::styled(
                format!(
                    "{}/{} epochs · {}",
                    self.run.epoch,
                    self.run.epochs,
                    ctx.show_path(&self.dir.path)
                ),
                ctx.theme.dim,
            ),
        ]);
        frame.render_widget(Paragraph::new(state), info);
        self.draw_list(frame, list, ctx);
        self.draw_detail(frame, detail, ctx);
    }
}

impl CheckpointsScreen {
    fn draw_list(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!("Files ({})", self.entries.len());
        let block = widgets::block(&title, true, ctx);
        if self.entries.is_empty() {
            let text = self.problem.clone().unwrap_or_else(|| {
                format!(
                    "No checkpoints in {}. A run keeps its latest checkpoint (checkpoint: true), a \
                     copy at every 100th epoch and every keep_checkpoint_every-th.",
                    ctx.show_path(&self.dir.path)
                )
            });
            let style = if self.problem.is_some() {
                ctx.theme.error
            } else {
                ctx.theme.dim
            };
            frame.render_widget(
                Paragraph::new(text)
                    .style(style)
                    .wrap(Wrap { trim: true })
                    .block(block),
                area,
            );
            return;
        }
        let wide = area.width >= 100;
        let mut header = vec!["file", "epoch", "size", "saved", "loss", "NMI f", "NMI h"];
        if wide {
            header.push("evaluated: NMI f / h");
        }
        let rows: Vec<Row> = self
            .entries
            .iter()
            .map(|e| {
                let mut cells = vec![
                    Cell::from(e.label.clone()),
                    Cell::from(e.file.epoch.map(|n| n.to_string()).unwrap_or_default()),
                    Cell::from(human_bytes(e.file.bytes)),
                    Cell::from(widgets::ago(e.file.modified, ctx.now)),
                    Cell::from(e.loss.map(|v| format!("{v:.4}")).unwrap_or_default()),
                    Cell::from(widgets::score(e.nmi_feature)),
                    Cell::from(widgets::score(e.nmi_backbone)),
                ];
                if wide {
                    cells.push(Cell::from(eval_cell(e.eval.as_ref())));
                }
                Row::new(cells)
            })
            .collect();
        let mut widths = vec![
            Constraint::Length(17),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
        ];
        if wide {
            widths.push(Constraint::Min(20));
        }
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(ctx.theme.header))
            .row_highlight_style(ctx.theme.selected)
            .block(block);
        frame.render_stateful_widget(table, area, &mut self.table);
    }

    /// The selected file: its name and network, its evaluation (a gauge, then the scores), the
    /// last export or import, or the text being edited.
    fn draw_detail(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let block = widgets::block("Selected", false, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let width = usize::from(inner.width);
        let mut lines: Vec<Line> = Vec::new();
        if let Some(e) = self.selected() {
            let mut about = e.name();
            if let Some(m) = &e.file.checkpoint {
                about.push_str(&format!(
                    " · {} {} · Adam step {} · lr {}",
                    m.net.backbone, m.net.method, m.optimizer_step, m.lr
                ));
                if let Some(src) = &m.source {
                    about.push_str(&format!(" · imported from {src}"));
                }
            }
            lines.push(Line::styled(widgets::cut(&about, width), ctx.theme.text));
            lines.push(eval_line(e, width, ctx));
        }
        if let Some((kind, input)) = &self.editing {
            let prompt = match kind {
                Editing::Epochs => "train to epoch: ",
                Editing::Export => "export to: ",
                Editing::Import => "import (.pth / .pth.tar): ",
            };
            lines.push(Line::from(vec![
                Span::styled(prompt, ctx.theme.key),
                Span::styled(input.value().to_string(), ctx.theme.text),
            ]));
            let y = inner.y + u16::try_from(lines.len() - 1).unwrap_or(0);
            let x = inner.x + u16::try_from(prompt.len() + input.visual_cursor()).unwrap_or(0);
            if y < inner.bottom() {
                frame.set_cursor_position((x.min(inner.right().saturating_sub(1)), y));
            }
        } else if let Some((kind, text)) = &self.result {
            let style = match kind {
                LogKind::Error => ctx.theme.error,
                LogKind::Good => ctx.theme.ok,
                _ => ctx.theme.text,
            };
            lines.push(Line::styled(text.clone(), style));
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}

/// The list's column for an evaluation: its feature and backbone NMI, or how far it is.
fn eval_cell(eval: Option<&Evaluation>) -> String {
    match eval {
        None => String::new(),
        Some(e) => match (&e.report, &e.error, &e.progress) {
            (Some(r), _, _) => format!("{:.3} / {:.3}", r.feature.nmi, r.backbone.nmi),
            (_, Some(_), _) => "failed".into(),
            (_, _, Some(p)) => format!("{} {}/{}", p.stage.label(p.space), p.done, p.total),
            _ => "starting".into(),
        },
    }
}

/// The detail's evaluation line: a gauge while it runs, then the scores or the failure.
fn eval_line(e: &Entry, width: usize, ctx: &Ctx) -> Line<'static> {
    let Some(ev) = &e.eval else {
        return Line::styled("not evaluated from here yet (e)", ctx.theme.dim);
    };
    if let Some(r) = &ev.report {
        return Line::styled(
            widgets::cut(&evaluation::result_line("evaluated", r), width),
            ctx.theme.ok,
        );
    }
    if let Some(err) = &ev.error {
        return Line::styled(
            widgets::cut(&format!("evaluation failed: {err}"), width),
            ctx.theme.error,
        );
    }
    match &ev.progress {
        Some(p) => {
            let label = format!(" {} {}/{}", p.stage.label(p.space), p.done, p.total);
            let bar_width = width.saturating_sub(label.len() + 12).clamp(4, 40);
            #[allow(clippy::cast_precision_loss)]
            let bar = widgets::bar(p.done as f64, p.total as f64, bar_width, ctx);
            Line::from(vec![
                Span::styled("evaluating ", ctx.theme.warn),
                Span::styled(bar, ctx.theme.gauge),
                Span::styled(label, ctx.theme.text),
            ])
        }
        None => Line::styled("evaluation starting", ctx.theme.warn),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use ratatui::crossterm::event::KeyCode;
    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::store::checkpoint::{
        Checkpoint, CheckpointMeta, ModelMeta, NetMeta, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
    };
    use crate::store::records::RunRecords;
    use crate::store::runs::list_runs;
    use crate::tui::app::App;
    use crate::tui::testing::{self, draw, key, text, type_text};

    /// The finished 10-epoch fixture run.
    const RUN: &str = "shapes/bs64_lr0.0003_ResNet18";

    fn net() -> NetMeta {
        NetMeta {
            backbone: "ResNet18".into(),
            hidden_dim: 16,
            feature_num: 8,
            method: "cd".into(),
        }
    }

    fn checkpoint(epoch: i64) -> Checkpoint {
        Checkpoint {
            meta: CheckpointMeta {
                format: CHECKPOINT_FORMAT.into(),
                version: CHECKPOINT_VERSION,
                dataset: "shapes".into(),
                experiment: "bs64_lr0.0003_ResNet18".into(),
                epoch,
                epochs: 10,
                net: net(),
                optimizer_step: epoch * 16,
                lr: 0.0003,
                scheduler: None,
                records: RunRecords::default(),
                source: None,
            },
            model: vec![(
                "resnet.conv1.weight".into(),
                Tensor::full([64, 64], 0.5, (Kind::Float, Device::Cpu)),
            )],
            optimizer: vec![("step".into(), Tensor::from(epoch * 16))],
        }
    }

    /// The fixture runs, with checkpoints for `RUN`: the latest (epoch 10), kept ones at 4 and 8,
    /// and the best (epoch 9) and final models, all written 30 s before the fixed clock.
    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Ctx, RunSummary) {
        let records = testing::fixture_copy(Duration::from_secs(30));
        let ckpts = tempfile::tempdir().unwrap();
        let mut ctx = testing::ctx(records.path());
        ctx.checkpoints = ckpts.path().to_path_buf();
        let dir = CheckpointDir {
            path: ckpts.path().join(RUN),
        };
        for e in [4, 8, 10] {
            dir.save_keeping(&checkpoint(e), 4).unwrap();
        }
        let model = checkpoint(9).model;
        for (tag, epoch) in [(ModelTag::Best, 9), (ModelTag::Final, 10)] {
            let meta = ModelMeta {
                dataset: "shapes".into(),
                experiment: "bs64_lr0.0003_ResNet18".into(),
                epoch,
                net: net(),
            };
            dir.save_model(tag, &model, &meta).unwrap();
        }
        for f in fs::read_dir(&dir.path).unwrap() {
            let f = fs::File::options()
                .write(true)
                .open(f.unwrap().path())
                .unwrap();
            f.set_modified(testing::fixed_now() - Duration::from_secs(30))
                .unwrap();
        }
        let run = list_runs(records.path(), ctx.now)
            .into_iter()
            .find(|r| r.name() == RUN)
            .unwrap();
        (records, ckpts, ctx, run)
    }

    /// A stand-in for the `cdw` binary: a shell script with this body.
    fn fake_cdw(dir: &Path, body: &str) -> PathBuf {
        let exe = dir.join("fake-cdw");
        fs::write(&exe, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn note(cmd: Cmd) -> String {
        match cmd {
            Cmd::Note(n) => n,
            _ => String::new(),
        }
    }

    #[test]
    fn the_list_has_checkpoints_then_models_with_the_records_of_their_epoch() {
        let (_r, _c, ctx, run) = setup();
        let s = CheckpointsScreen::new(&run, &ctx);
        let rows: Vec<(String, Option<i64>)> = s
            .entries()
            .iter()
            .map(|e| (e.label.clone(), e.file.epoch))
            .collect();
        assert_eq!(
            rows,
            [
                ("latest".to_string(), Some(10)),
                ("kept".into(), Some(8)),
                ("kept".into(), Some(4)),
                ("model best".into(), Some(9)),
                ("model final".into(), Some(10)),
            ]
        );
        let e8 = &s.entries()[1];
        let table = read_run_table(&RunDir {
            path: run.path.clone(),
        })
        .unwrap();
        let row = table.xs.iter().position(|&x| x == 8.0).unwrap();
        let want = table.get(row, table.column("total_loss").unwrap());
        assert!(want.is_some());
        assert_eq!(e8.loss, want);
        assert_eq!(
            e8.nmi_feature,
            table.get(row, table.column("nmi_feature").unwrap())
        );
        assert_eq!(e8.name(), "checkpoint_epoch_8.safetensors");
    }

    #[test]
    fn resume_asks_for_the_epochs_states_what_is_cut_and_starts_the_training() {
        let (_r, c, mut ctx, run) = setup();
        ctx.exe = fake_cdw(c.path(), "echo \"args: $*\"");
        let mut s = CheckpointsScreen::new(&run, &ctx);
        s.key(key(KeyCode::Down), &mut ctx);
        s.key(key(KeyCode::Down), &mut ctx); // kept, epoch 4
        s.key(key(KeyCode::Char('r')), &mut ctx);
        assert_eq!(s.editing(), Some((Editing::Epochs, "10")));
        // A count not above the checkpoint's epoch is refused, with what is allowed.
        for _ in 0..2 {
            s.key(key(KeyCode::Backspace), &mut ctx);
        }
        s.key(key(KeyCode::Char('3')), &mut ctx);
        let n = note(s.key(key(KeyCode::Enter), &mut ctx));
        assert_eq!(
            n,
            "error: epochs `3`: a whole number above 4 (the checkpoint's epoch) is needed"
        );
        s.key(key(KeyCode::Char('r')), &mut ctx);
        s.key(key(KeyCode::Backspace), &mut ctx);
        s.key(key(KeyCode::Char('2')), &mut ctx);
        let Cmd::Ask(q) = s.key(key(KeyCode::Enter), &mut ctx) else {
            panic!("no question")
        };
        assert_eq!(q.title, format!("Resume {RUN} from epoch 4?"));
        assert_eq!(
            q.lines,
            [
                "The history of epochs 5..10 is cut back: their rows of metrics.csv and \
                 evaluation.csv and their events are removed."
                    .to_string(),
                "Deleted: checkpoint_epoch_8.safetensors.".into(),
                format!(
                    "Training continues from epoch 5 to epoch 12 (cdw train --resume {RUN} \
                     --from-epoch 4 --set epochs=12)."
                ),
            ]
        );
        let n = note(s.answered("resume", true, &mut ctx));
        assert!(
            n.starts_with(&format!("resuming {RUN} from epoch 4 to 12 (pid ")),
            "{n}"
        );
        let log = run.path.join("train.log");
        let t = Instant::now();
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("args:")
        {
            assert!(t.elapsed() < Duration::from_secs(10), "the job never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        let line = fs::read_to_string(&log).unwrap();
        assert!(
            line.contains(&format!(
                "args: train --resume {} --from-epoch 4 --set epochs=12 --records",
                run.path.display()
            )),
            "{line}"
        );
    }

    #[test]
    fn a_model_is_not_resumable_and_a_live_run_is_not_resumed_from_here() {
        let (_r, _c, mut ctx, run) = setup();
        let mut s = CheckpointsScreen::new(&run, &ctx);
        s.key(key(KeyCode::End), &mut ctx); // model final
        let n = note(s.key(key(KeyCode::Char('r')), &mut ctx));
        assert!(
            n.starts_with("error: model_final.safetensors is a saved model without"),
            "{n}"
        );
        assert_eq!(s.editing(), None);
        // The running fixture run, with a checkpoint of its own: the resume is refused.
        let live = list_runs(&ctx.records, ctx.now)
            .into_iter()
            .find(|r| r.shown.is_live())
            .unwrap();
        CheckpointDir {
            path: checkpoint_dir(&live, &ctx),
        }
        .save(&checkpoint(6))
        .unwrap();
        // Its status says pid 1, which is alive: it stays running.
        let mut s = CheckpointsScreen::new(&live, &ctx);
        let n = note(s.key(key(KeyCode::Char('r')), &mut ctx));
        assert!(n.contains("is running: stop it"), "{n}");
    }

    const EVALUATION: &str = r#"echo "args: $*" >&2
echo '{"event":"evaluation_progress","epoch":8,"stage":"kmeans","space":"feature","done":3,"total":10}'
sleep 0.4
echo '{"event":"evaluate_result","report":{"dataset":"shapes","method":"cd","model":{"kind":"file","path":"c"},"device":"cpu","samples":1024,"clusters":4,"backbone":{"nmi":0.25,"ari":0.17,"acc":0.45},"feature":{"nmi":0.26,"ari":0.18,"acc":0.44},"seconds":2.5}}'"#;

    #[test]
    fn evaluate_shows_a_gauge_then_the_scores_and_they_are_there_when_reopened() {
        let (_r, c, mut ctx, run) = setup();
        ctx.exe = fake_cdw(c.path(), EVALUATION);
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        app.key(key(KeyCode::Down), &mut ctx); // kept, epoch 8
        app.key(key(KeyCode::Char('e')), &mut ctx);
        assert_eq!(
            app.note(),
            Some(
                format!(
                    "evaluating checkpoint_epoch_8.safetensors in the background (output in \
                     records/{RUN}/evaluate_checkpoint_epoch_8.log)"
                )
                .as_str()
            )
        );
        let t = Instant::now();
        let mut saw_gauge = false;
        loop {
            app.poll(&mut ctx);
            let shown = text(&draw(&mut app, &ctx, 160, 48));
            saw_gauge |= shown.contains("evaluating") && shown.contains("k-means feature 3/10");
            if shown.contains("evaluated: NMI f 0.260 h 0.250") {
                assert!(shown.contains("0.260 / 0.250"), "{shown}");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no result: {shown}");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(saw_gauge, "the gauge was shown while it ran");
        let log = fs::read_to_string(run.path.join("evaluate_checkpoint_epoch_8.log")).unwrap();
        assert!(
            log.contains(&format!(
                "args: evaluate --run {} --model {} --json",
                run.path.display(),
                c.path()
                    .join(RUN)
                    .join("checkpoint_epoch_8.safetensors")
                    .display()
            )),
            "{log}"
        );
        // A new screen (the UI reopened) finds the result in the run folder.
        let s = CheckpointsScreen::new(&run, &ctx);
        let r = s.entries()[1]
            .eval
            .as_ref()
            .unwrap()
            .report
            .as_ref()
            .unwrap();
        assert_eq!(r.feature.nmi, 0.26);
        assert!(s.entries()[0].eval.is_none());
    }

    #[test]
    fn export_writes_to_the_edited_path_and_shows_the_result_line() {
        let (_r, c, mut ctx, run) = setup();
        ctx.exe = fake_cdw(
            c.path(),
            "echo \"exported ResNet18 network of epoch 10 to $4\"",
        );
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        app.key(key(KeyCode::Char('x')), &mut ctx);
        let want = "exports/shapes_bs64_lr0.0003_ResNet18_checkpoint.safetensors";
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(shown.contains(&format!("export to: {want}")), "{shown}");
        // q is a letter while typing: the path is edited, the UI does not quit.
        for _ in 0..want.len() {
            app.key(key(KeyCode::Backspace), &mut ctx);
        }
        type_text(&mut app, &mut ctx, "q.safetensors");
        assert!(!app.quit);
        app.key(key(KeyCode::Enter), &mut ctx);
        let t = Instant::now();
        loop {
            app.poll(&mut ctx);
            let shown = text(&draw(&mut app, &ctx, 80, 24));
            if shown.contains("exported ResNet18 network of epoch 10 to q.safetensors") {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no result: {shown}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // An import of a file that is not there is refused before anything starts.
        app.key(key(KeyCode::Char('i')), &mut ctx);
        type_text(&mut app, &mut ctx, "/no/such.pth.tar");
        app.key(key(KeyCode::Enter), &mut ctx);
        assert_eq!(app.note(), Some("error: /no/such.pth.tar is not a file"));
    }

    #[test]
    fn checkpoints_80x24() {
        let (_r, _c, ctx, run) = setup();
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }

    #[test]
    fn checkpoints_160x48() {
        let (_r, _c, ctx, run) = setup();
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 160, 48)));
    }

    #[test]
    fn checkpoints_resume_question_80x24() {
        let (_r, _c, mut ctx, run) = setup();
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        app.key(key(KeyCode::Down), &mut ctx);
        app.key(key(KeyCode::Char('r')), &mut ctx);
        app.key(key(KeyCode::Enter), &mut ctx);
        assert!(app.question().is_some());
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }

    #[test]
    fn no_checkpoints_says_where_it_looked() {
        let (_r, _c, ctx, mut run) = setup();
        run.experiment = "bs64_lr0.0003_ResNet18_simclr".into();
        let mut app = App::new(Box::new(CheckpointsScreen::new(&run, &ctx)));
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(shown.contains("No checkpoints in"), "{shown}");
    }
}
