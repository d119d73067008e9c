//! New run: pick a dataset (present, missing with its download command, or built-in), edit the
//! config fields of `cdw config fields` in a form, and launch the training in the background.
//! Every edit goes through the same `--set` path as the CLI, so a bad value shows the CLI's
//! exact message; the panel shows the experiment name and the fields changed from the dataset's
//! defaults, and says when a run of that name exists (resume it or start afresh).

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::app::{Cmd, Ctx, KeyHelp, Question, Screen};
use super::jobs;
use super::runs::human_bytes;
use super::widgets;
use crate::config::{Config, ConfigFile, Field, Kind, FIELDS};
use crate::data::catalog::{self, Status};
use crate::store::RunDir;

/// What opens once a training is launched: the dashboard of its run folder.
pub type OpenDashboard = fn(&std::path::Path, &mut Ctx) -> Cmd;

/// One dataset of the picker.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub name: String,
    /// `built-in`, `present`, `incomplete`, `invalid` or `missing`.
    pub status: &'static str,
    /// Images and size on disk, or how to get it.
    pub detail: String,
}

pub struct NewRunScreen {
    file: ConfigFile,
    datasets: Vec<DatasetRow>,
    picked: usize,
    /// The form, once a dataset is chosen.
    form: Option<Form>,
    open_dashboard: OpenDashboard,
}

/// The form over every config field of one dataset.
pub struct Form {
    pub dataset: String,
    defaults: Config,
    pub cfg: Config,
    /// `key=value` pairs set so far, in order (what `--set` will be given).
    pub sets: Vec<String>,
    pub row: usize,
    /// The field being edited and its text.
    editing: Option<Input>,
    /// The message of the last rejected value.
    pub error: Option<String>,
}

/// Whether a run has been started in `dir` (its config snapshot is written first).
fn run_exists(dir: &RunDir) -> bool {
    dir.config_path().is_file()
}

impl Form {
    pub fn new(dataset: &str, defaults: Config) -> Form {
        Form {
            dataset: dataset.to_string(),
            cfg: defaults.clone(),
            defaults,
            sets: Vec::new(),
            row: 0,
            editing: None,
            error: None,
        }
    }

    pub fn field(&self) -> &'static str {
        FIELDS[self.row].name
    }

    /// Sets `field` to `text` through the `--set` path; the CLI's message when it is refused.
    pub fn set(&mut self, field: &str, text: &str) -> Result<(), String> {
        let arg = format!("{field}={text}");
        let mut cfg = self.cfg.clone();
        cfg.apply_overrides(std::slice::from_ref(&arg))
            .map_err(|e| e.to_string())?;
        cfg.dataset.clone_from(&self.dataset);
        self.cfg = cfg;
        self.sets
            .retain(|s| s.split_once('=').map(|(k, _)| k) != Some(field));
        if let Some(f) = Field::named(field) {
            if f.show(&self.cfg) != f.show(&self.defaults) {
                self.sets.push(arg);
            }
        }
        Ok(())
    }

    /// The fields that differ from the dataset's defaults: (name, default, now).
    pub fn diff(&self) -> Vec<(&'static str, String, String)> {
        FIELDS
            .iter()
            .zip(Field::show_all(&self.defaults))
            .zip(Field::show_all(&self.cfg))
            .filter_map(|((f, was), now)| (was != now).then_some((f.name, was, now)))
            .collect()
    }

    /// The run folder this form's training writes to.
    pub fn run_dir(&self, records: &std::path::Path) -> RunDir {
        RunDir::for_config(records, &self.cfg)
    }

    /// The `cdw train` arguments of this form.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--dataset".to_string(), self.dataset.clone()];
        for s in &self.sets {
            args.push("--set".into());
            args.push(s.clone());
        }
        args
    }

    /// The selected field.
    pub fn selected(&self) -> &'static Field {
        &FIELDS[self.row]
    }

    /// Applies the text being edited; on a refusal the editor stays open with the message.
    fn apply_edit(&mut self) {
        let Some(input) = self.editing.take() else {
            return;
        };
        match self.set(self.field(), input.value()) {
            Ok(()) => self.error = None,
            Err(e) => {
                self.error = Some(e);
                self.editing = Some(input);
            }
        }
    }

    /// Moves a boolean or choice field to its next (or previous) value; false for other kinds.
    fn cycle(&mut self, back: bool) -> bool {
        let field = self.selected();
        let Some(next) = field.next_choice(&field.show(&self.cfg), back) else {
            return false;
        };
        self.error = self.set(field.name, &next).err();
        true
    }

    /// Enter on the row: booleans and closed choices move on, other fields open for editing.
    fn activate(&mut self) {
        let field = self.selected();
        if matches!(field.kind, Kind::Bool | Kind::Choice { open: false, .. }) {
            self.cycle(false);
        } else {
            self.editing = Some(Input::new(field.show(&self.cfg)));
        }
    }
}

fn dataset_rows(file: &ConfigFile) -> Vec<DatasetRow> {
    file.dataset_names()
        .into_iter()
        .map(|name| {
            let root = file
                .resolve(&name, &[])
                .map_or_else(|_| PathBuf::from("./data"), |c| c.data_root);
            let (status, detail) = match catalog::named(&name) {
                None => ("built-in", "generated on the fly".to_string()),
                Some(ds) => match catalog::status(ds, &root) {
                    Status::Missing { .. } => ("missing", ds.download_command(&root)),
                    Status::Invalid { error, .. } => ("invalid", error.to_string()),
                    Status::Present {
                        images,
                        complete,
                        bytes,
                        ..
                    } => (
                        if complete { "present" } else { "incomplete" },
                        format!("{images} images, {}", human_bytes(bytes)),
                    ),
                },
            };
            DatasetRow {
                name,
                status,
                detail,
            }
        })
        .collect()
}

impl NewRunScreen {
    /// The screen over the config file the workbench was given (or the built-in one).
    pub fn new(ctx: &Ctx, open_dashboard: OpenDashboard) -> Result<NewRunScreen, String> {
        let file = ConfigFile::load(ctx.config.as_deref()).map_err(|e| e.to_string())?;
        Ok(NewRunScreen {
            datasets: dataset_rows(&file),
            file,
            picked: 0,
            form: None,
            open_dashboard,
        })
    }

    pub fn datasets(&self) -> &[DatasetRow] {
        &self.datasets
    }

    pub fn form(&self) -> Option<&Form> {
        self.form.as_ref()
    }

    fn pick(&mut self) -> Cmd {
        let Some(row) = self.datasets.get(self.picked) else {
            return Cmd::Done;
        };
        if row.status == "missing" {
            return Cmd::Note(format!(
                "error: {} is missing; get it with `{}`",
                row.name, row.detail
            ));
        }
        match self.file.resolve(&row.name, &[]) {
            Ok(cfg) => {
                self.form = Some(Form::new(&row.name, cfg));
                Cmd::Done
            }
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    fn launch(&mut self, fresh: bool, ctx: &mut Ctx) -> Cmd {
        let Some(form) = self.form.as_ref() else {
            return Cmd::Done;
        };
        let dir = form.run_dir(&ctx.records).path;
        let mut args = form.args();
        if fresh {
            args.push("--fresh".into());
        }
        match jobs::launch_training(ctx, &dir, &args) {
            Ok(_) => (self.open_dashboard)(&dir, ctx),
            Err(e) => Cmd::Note(format!("error: {e}")),
        }
    }

    fn ask_launch(&mut self, ctx: &mut Ctx) -> Cmd {
        let Some(dir) = self.form.as_ref().map(|f| f.run_dir(&ctx.records)) else {
            return Cmd::Done;
        };
        if !run_exists(&dir) {
            return self.launch(false, ctx);
        }
        Cmd::Ask(Question {
            tag: "existing",
            title: format!("{} exists", ctx.show_path(&dir.path)),
            lines: vec![
                "A run of this experiment is there already.".into(),
                "y: resume it from its latest checkpoint (the config's `reload`)".into(),
                "n: start afresh (--fresh); its records are replaced".into(),
            ],
            yes: "Resume".into(),
        })
    }

    fn form_key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        let Some(form) = self.form.as_mut() else {
            return Cmd::None;
        };
        if let Some(input) = form.editing.as_mut() {
            match key.code {
                KeyCode::Enter => form.apply_edit(),
                KeyCode::Esc => {
                    form.editing = None;
                    form.error = None;
                }
                _ => {
                    input.handle_event(&ratatui::crossterm::event::Event::Key(key));
                }
            }
            return Cmd::Done;
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => form.row = (form.row + 1).min(FIELDS.len() - 1),
            KeyCode::Up | KeyCode::Char('k') => form.row = form.row.saturating_sub(1),
            KeyCode::PageDown => form.row = next_group(form.row, false),
            KeyCode::PageUp => form.row = next_group(form.row, true),
            KeyCode::Home => form.row = 0,
            KeyCode::End => form.row = FIELDS.len() - 1,
            KeyCode::Enter | KeyCode::Char('e') => form.activate(),
            KeyCode::Char(' ' | 'l') | KeyCode::Right => {
                if !form.cycle(false) {
                    form.activate();
                }
            }
            KeyCode::Left | KeyCode::Char('h') => {
                if !form.cycle(true) {
                    return Cmd::None;
                }
            }
            KeyCode::Char('d') => {
                let field = form.selected();
                let default = field.show(&form.defaults);
                form.error = form.set(field.name, &default).err();
            }
            KeyCode::Char('L') | KeyCode::F(5) => return self.ask_launch(ctx),
            KeyCode::Esc => self.form = None,
            _ => return Cmd::None,
        }
        Cmd::Done
    }
}

/// The first field of the next group (or of this group, then the previous one, going back).
fn next_group(row: usize, back: bool) -> usize {
    let group = FIELDS[row].group;
    if back {
        let start = (0..=row)
            .rev()
            .take_while(|&i| FIELDS[i].group == group)
            .last()
            .unwrap_or(row);
        if start < row || start == 0 {
            return start;
        }
        let prev = FIELDS[start - 1].group;
        (0..start)
            .rev()
            .take_while(|&i| FIELDS[i].group == prev)
            .last()
            .unwrap_or(0)
    } else {
        (row..FIELDS.len())
            .find(|&i| FIELDS[i].group != group)
            .unwrap_or(FIELDS.len() - 1)
    }
}

impl Screen for NewRunScreen {
    fn title(&self) -> String {
        match &self.form {
            Some(f) => format!("New run › {}", f.dataset),
            None => "New run".into(),
        }
    }

    fn typing(&self) -> bool {
        self.form.as_ref().is_some_and(|f| f.editing.is_some())
    }

    fn keys(&self) -> Vec<KeyHelp> {
        if self.form.is_some() {
            vec![
                KeyHelp::main("Enter", "edit / toggle"),
                KeyHelp::main("←→", "choice"),
                KeyHelp::main("L F5", "launch"),
                KeyHelp::main("↑↓", "field"),
                KeyHelp::more("PgUp PgDn", "previous / next group"),
                KeyHelp::more("Home End", "first / last field"),
                KeyHelp::more("d", "back to the dataset's default"),
                KeyHelp::more("Esc", "cancel the edit, or back to the datasets"),
            ]
        } else {
            vec![
                KeyHelp::main("Enter", "choose"),
                KeyHelp::main("↑↓", "move"),
                KeyHelp::more("a-z", "the first dataset of that letter"),
            ]
        }
    }

    fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd {
        if self.form.is_some() {
            return self.form_key(key, ctx);
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.picked = (self.picked + 1).min(self.datasets.len().saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => self.picked = self.picked.saturating_sub(1),
            KeyCode::Enter => return self.pick(),
            // A letter moves to the first dataset whose name starts with it.
            KeyCode::Char(c) => match self.datasets.iter().position(|d| d.name.starts_with(c)) {
                Some(i) => self.picked = i,
                None => return Cmd::None,
            },
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn answered(&mut self, tag: &'static str, yes: bool, ctx: &mut Ctx) -> Cmd {
        if tag == "existing" {
            return self.launch(!yes, ctx);
        }
        Cmd::Done
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        match &self.form {
            None => self.draw_picker(frame, area, ctx),
            Some(form) => draw_form(form, frame, area, ctx),
        }
    }
}

impl NewRunScreen {
    fn draw_picker(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let block = widgets::block("Dataset", true, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let lines: Vec<Line> = self
            .datasets
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let style = if i == self.picked {
                    ctx.theme.selected
                } else {
                    ctx.theme.text
                };
                let status = match d.status {
                    "missing" | "invalid" => ctx.theme.error,
                    "incomplete" => ctx.theme.warn,
                    _ => ctx.theme.ok,
                };
                Line::from(vec![
                    Span::styled(format!("{:<14}", d.name), style),
                    Span::styled(format!("{:<11}", d.status), status),
                    Span::styled(d.detail.clone(), ctx.theme.dim),
                ])
            })
            .collect();
        let [list, detail] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), list);
        // The selected dataset's detail in full (a download command is longer than a row).
        if let Some(d) = self.datasets.get(self.picked) {
            let what = match d.status {
                "missing" => format!("{}: missing; get it with `{}`", d.name, d.detail),
                _ => format!("{}: {}, {}", d.name, d.status, d.detail),
            };
            frame.render_widget(
                Paragraph::new(what)
                    .style(ctx.theme.dim)
                    .wrap(ratatui::widgets::Wrap { trim: false }),
                detail,
            );
        }
    }
}

fn draw_form(form: &Form, frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let wide = area.width >= 110;
    let [fields, side] = if wide {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Min(30)]).areas(area)
    } else {
        Layout::vertical([Constraint::Min(5), Constraint::Length(6)]).areas(area)
    };
    draw_fields(form, frame, fields, ctx);
    draw_run_panel(form, frame, side, ctx);
}

/// The fields under their group headings, then what the selected one does and accepts.
fn draw_fields(form: &Form, frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let block = widgets::block("Config", true, ctx);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Two lines below the fields: what the selected one does, and what it accepts (or the error).
    let rows = usize::from(inner.height.saturating_sub(2)).max(1);
    // The fields under their group headings; the window scrolls to keep the selection in view.
    let mut listed: Vec<Option<usize>> = Vec::with_capacity(FIELDS.len() + 5);
    for (i, f) in FIELDS.iter().enumerate() {
        if i == 0 || FIELDS[i - 1].group != f.group {
            listed.push(None);
        }
        listed.push(Some(i));
    }
    let at = listed
        .iter()
        .position(|r| *r == Some(form.row))
        .unwrap_or(0);
    let first = (at + 1).saturating_sub(rows);
    // Every value shown, from one serialisation of each config per frame.
    let (now, was) = (Field::show_all(&form.cfg), Field::show_all(&form.defaults));
    let mut lines: Vec<Line> = listed
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(k, r)| {
            let Some(i) = *r else {
                let group = listed[k + 1].map_or("", |i| FIELDS[i].group.title());
                return Line::from(Span::styled(format!("─ {group}"), ctx.theme.title));
            };
            let f = &FIELDS[i];
            let selected = i == form.row;
            let value = match (&form.editing, selected) {
                (Some(input), true) => format!("{}▏", input.value()),
                _ => now[i].clone(),
            };
            let changed = was[i] != now[i];
            let hint = match f.kind {
                Kind::Bool | Kind::Choice { .. } if selected && form.editing.is_none() => " ‹›",
                _ => "",
            };
            Line::from(vec![
                Span::styled(
                    format!("  {:<22}", f.name),
                    if selected {
                        ctx.theme.selected
                    } else {
                        ctx.theme.text
                    },
                ),
                Span::styled(
                    value,
                    if changed {
                        ctx.theme.best
                    } else {
                        ctx.theme.text
                    },
                ),
                Span::styled(hint, ctx.theme.dim),
            ])
        })
        .collect();
    let field = form.selected();
    lines.push(Line::from(Span::styled(field.about, ctx.theme.text)));
    lines.push(match &form.error {
        Some(e) => Line::from(Span::styled(e.clone(), ctx.theme.error)),
        None => Line::from(Span::styled(
            format!("{}: {}", field.name, field.allowed),
            ctx.theme.dim,
        )),
    });
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The experiment name, whether the run exists, and every field changed from the defaults.
fn draw_run_panel(form: &Form, frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let block = widgets::block("Run", false, ctx);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![Line::from(vec![
        Span::styled("experiment ", ctx.theme.dim),
        Span::styled(form.cfg.experiment_name(), ctx.theme.title),
    ])];
    if run_exists(&form.run_dir(&ctx.records)) {
        lines.push(Line::from(Span::styled(
            "exists: launching asks to resume it or start afresh",
            ctx.theme.warn,
        )));
    }
    let diff = form.diff();
    if diff.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("the defaults of {}", form.dataset),
            ctx.theme.dim,
        )));
    }
    for (name, was, now) in diff {
        lines.push(Line::from(vec![
            Span::styled(format!("{name}: "), ctx.theme.text),
            Span::styled(was, ctx.theme.dim),
            Span::styled(" → ", ctx.theme.dim),
            Span::styled(now, ctx.theme.best),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::App;
    use crate::tui::testing::{self, draw, key, text, type_text};

    fn no_dashboard(_: &std::path::Path, _: &mut Ctx) -> Cmd {
        Cmd::Note("launched".into())
    }

    /// The screen over the fixture runs, with the built-in config file whose data root is a
    /// folder that does not exist (so every downloadable dataset is missing on every machine).
    fn screen() -> (tempfile::TempDir, Ctx, NewRunScreen) {
        let dir = testing::fixture_copy(std::time::Duration::from_secs(30));
        let mut ctx = testing::ctx(dir.path());
        let config = dir.path().join("cdw.yaml");
        let text =
            crate::config::DEFAULT_CONFIG_YAML.replace("data_root: ./data", "data_root: ./no-data");
        assert!(text.contains("./no-data"));
        std::fs::write(&config, text).unwrap();
        ctx.config = Some(config);
        let s = NewRunScreen::new(&ctx, no_dashboard).unwrap();
        (dir, ctx, s)
    }

    fn pick(s: &mut NewRunScreen, ctx: &mut Ctx, name: &str) {
        let i = s.datasets().iter().position(|d| d.name == name).unwrap();
        s.picked = i;
        s.key(key(KeyCode::Enter), ctx);
        assert_eq!(s.form().unwrap().dataset, name);
    }

    fn goto(s: &mut NewRunScreen, field: &str) {
        let form = s.form.as_mut().unwrap();
        form.row = FIELDS.iter().position(|f| f.name == field).unwrap();
    }

    #[test]
    fn the_picker_lists_every_configured_dataset() {
        let (_d, mut ctx, mut s) = screen();
        s.key(key(KeyCode::Char('s')), &mut ctx);
        assert_eq!(s.datasets()[s.picked].name, "shapes", "s jumps to shapes");
        let shapes = s.datasets().iter().find(|d| d.name == "shapes").unwrap();
        assert_eq!(shapes.status, "built-in");
        let names: Vec<&str> = s.datasets().iter().map(|d| d.name.as_str()).collect();
        assert!(names.contains(&"cifar10"), "{names:?}");
    }

    #[test]
    fn the_form_uses_the_cli_validation_and_shows_its_message() {
        let (_d, mut ctx, mut s) = screen();
        pick(&mut s, &mut ctx, "shapes");
        let before = s.form().unwrap().cfg.experiment_name();
        goto(&mut s, "batch_size");
        let mut app = App::new(Box::new(s));
        app.key(key(KeyCode::Enter), &mut ctx);
        for _ in 0..6 {
            app.key(key(KeyCode::Backspace), &mut ctx);
        }
        type_text(&mut app, &mut ctx, "1");
        app.key(key(KeyCode::Enter), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        let cli = crate::config::ConfigFile::builtin()
            .resolve("shapes", &["batch_size=1".into()])
            .unwrap_err()
            .to_string();
        assert!(shown.contains(&cli[..60]), "{cli}\n{shown}");
        // Corrected: the value is taken, the experiment name follows, and the diff lists it.
        app.key(key(KeyCode::Backspace), &mut ctx);
        type_text(&mut app, &mut ctx, "16");
        app.key(key(KeyCode::Enter), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(
            shown.contains("experiment bs16_lr0.0003_ResNet18"),
            "{before}\n{shown}"
        );
        assert!(shown.contains("batch_size: "), "{shown}");
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn booleans_toggle_and_the_args_hold_only_changes() {
        let (_d, mut ctx, mut s) = screen();
        pick(&mut s, &mut ctx, "shapes");
        goto(&mut s, "use_scheduler");
        s.key(key(KeyCode::Char(' ')), &mut ctx);
        let f = s.form().unwrap();
        assert!(f.cfg.use_scheduler);
        assert_eq!(
            f.args(),
            vec!["--dataset", "shapes", "--set", "use_scheduler=true"]
        );
        assert!(f.cfg.experiment_name().ends_with("_scheduler"));
        s.key(key(KeyCode::Char(' ')), &mut ctx);
        let f = s.form().unwrap();
        assert_eq!(f.args(), vec!["--dataset", "shapes"], "back to the default");
        assert!(f.diff().is_empty());
    }

    #[test]
    fn an_existing_run_asks_resume_or_fresh() {
        let (_d, mut ctx, mut s) = screen();
        pick(&mut s, &mut ctx, "shapes");
        let form = s.form.as_mut().unwrap();
        form.set("batch_size", "64").unwrap();
        form.set("backbone", "ResNet18").unwrap();
        form.set("learning_rate", "0.0003").unwrap();
        // The fixture shapes/bs64_lr0.0003_ResNet18 exists.
        match s.key(key(KeyCode::Char('L')), &mut ctx) {
            Cmd::Ask(q) => {
                assert_eq!(q.tag, "existing");
                assert!(
                    q.title.contains("shapes/bs64_lr0.0003_ResNet18"),
                    "{}",
                    q.title
                );
            }
            _ => panic!("expected a question"),
        }
    }

    #[test]
    fn picker_and_form_draw_at_every_size() {
        let (_d, mut ctx, s) = screen();
        let mut app = App::new(Box::new(s));
        for (w, h) in [(40, 12), (80, 24), (160, 48), (57, 19)] {
            draw(&mut app, &ctx, w, h);
        }
        let picker = text(&draw(&mut app, &ctx, 160, 48));
        assert!(
            picker.contains("shapes") && picker.contains("built-in"),
            "{picker}"
        );
        app.key(key(KeyCode::Enter), &mut ctx);
        for (w, h) in [(40, 12), (80, 24), (160, 48), (57, 19)] {
            draw(&mut app, &ctx, w, h);
        }
    }

    #[test]
    fn picker_snapshots() {
        let (_d, mut ctx, s) = screen();
        let mut app = App::new(Box::new(s));
        let small = text(&draw(&mut app, &ctx, 80, 24));
        assert!(
            small.contains("cdw datasets download cifar10 --data-root ./no-data"),
            "{small}"
        );
        insta::assert_snapshot!("picker_80x24", small);
        app.key(key(KeyCode::Char('s')), &mut ctx);
        insta::assert_snapshot!("picker_160x48", text(&draw(&mut app, &ctx, 160, 48)));
    }

    #[test]
    fn a_missing_dataset_says_how_to_get_it_instead_of_opening_the_form() {
        let (_d, mut ctx, mut s) = screen();
        s.key(key(KeyCode::Char('c')), &mut ctx);
        assert_eq!(s.datasets()[s.picked].name, "cifar10");
        match s.key(key(KeyCode::Enter), &mut ctx) {
            Cmd::Note(n) => assert_eq!(
                n,
                "error: cifar10 is missing; get it with `cdw datasets download cifar10 --data-root ./no-data`"
            ),
            _ => panic!("expected a note"),
        }
        assert!(s.form().is_none());
    }

    #[test]
    fn choices_cycle_with_the_arrows_and_d_restores_the_default() {
        let (_d, mut ctx, mut s) = screen();
        pick(&mut s, &mut ctx, "shapes");
        goto(&mut s, "backbone");
        s.key(key(KeyCode::Right), &mut ctx);
        assert_eq!(s.form().unwrap().cfg.backbone.name(), "ResNet34");
        s.key(key(KeyCode::Right), &mut ctx);
        s.key(key(KeyCode::Right), &mut ctx);
        assert_eq!(
            s.form().unwrap().cfg.backbone.name(),
            "ResNet18",
            "wraps around"
        );
        s.key(key(KeyCode::Left), &mut ctx);
        assert_eq!(s.form().unwrap().cfg.backbone.name(), "ResNet50");
        assert_eq!(
            s.form().unwrap().args(),
            vec!["--dataset", "shapes", "--set", "backbone=ResNet50"]
        );
        s.key(key(KeyCode::Char('d')), &mut ctx);
        assert_eq!(s.form().unwrap().cfg.backbone.name(), "ResNet18");
        assert!(s.form().unwrap().diff().is_empty());
        // An open choice takes typed values too: Enter edits evaluation_mode.
        goto(&mut s, "evaluation_mode");
        s.key(key(KeyCode::Enter), &mut ctx);
        assert!(s.typing());
        let mut app = App::new(Box::new(s));
        for _ in 0..6 {
            app.key(key(KeyCode::Backspace), &mut ctx);
        }
        type_text(&mut app, &mut ctx, "0.25");
        app.key(key(KeyCode::Enter), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 160, 48));
        assert!(shown.contains("evaluation_mode: none → 0.25"), "{shown}");
        insta::assert_snapshot!("form_160x48", shown);
    }

    #[test]
    fn the_form_groups_fields_as_the_config_file_does_and_pages_by_group() {
        let (_d, mut ctx, mut s) = screen();
        pick(&mut s, &mut ctx, "shapes");
        let mut app = App::new(Box::new(s));
        let top = text(&draw(&mut app, &ctx, 80, 24));
        assert!(top.contains("─ optimisation"), "{top}");
        assert!(
            top.contains("images per step"),
            "the selected field's description\n{top}"
        );
        app.key(key(KeyCode::PageDown), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(shown.contains("─ network"), "{shown}");
        assert!(
            shown.contains("the ResNet whose output h is evaluated"),
            "{shown}"
        );
        app.key(key(KeyCode::End), &mut ctx);
        let end = text(&draw(&mut app, &ctx, 80, 24));
        assert!(
            end.contains("shapes_resolution") && end.contains("─ additions of cdw"),
            "{end}"
        );
        insta::assert_snapshot!("form_last_group_80x24", end);
        app.key(key(KeyCode::PageUp), &mut ctx);
        app.key(key(KeyCode::PageUp), &mut ctx);
        let data = text(&draw(&mut app, &ctx, 80, 24));
        assert!(
            data.contains("colour-jitter strength"),
            "PgUp: the data group's first field\n{data}"
        );
    }
}
