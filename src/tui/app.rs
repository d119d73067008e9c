//! The shell every screen lives in: a stack of screens (Esc goes back), a confirmation dialog, the
//! `?` help overlay, the header and the key footer. Screens are state machines: they draw from
//! their state, turn keys into [`Cmd`]s, and read new data from files when polled; none of that
//! needs a terminal, so the state is tested without drawing and the drawing with `TestBackend`.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::{Glyphs, Theme};
use super::widgets;

/// The smallest terminal the screens are laid out for; below it the UI says so.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// What every screen may read: where runs live, how to start `cdw`, the look, the time.
pub struct Ctx {
    /// The records root (`--records`), where every run has a folder.
    pub records: PathBuf,
    /// The checkpoints root (`--checkpoints`).
    pub checkpoints: PathBuf,
    /// How the records root is shown (as the user typed it).
    pub records_label: String,
    /// How the checkpoints root is shown.
    pub checkpoints_label: String,
    /// A config file (`--config`) that launched trainings are given.
    pub config: Option<PathBuf>,
    /// The `cdw` binary that long jobs run as.
    pub exe: PathBuf,
    pub theme: Theme,
    pub glyphs: Glyphs,
    /// The time screens show and compare against (fixed in snapshot tests).
    pub now: SystemTime,
    /// The processes this UI started and has not yet seen end (reaped on each poll, so a finished
    /// training is not left as a zombie that still looks alive).
    pub children: Vec<Child>,
}

impl Ctx {
    /// A context for `records`/`checkpoints` with the default look, for tests and tools.
    pub fn new(records: PathBuf, checkpoints: PathBuf) -> Ctx {
        Ctx {
            records_label: records.display().to_string(),
            checkpoints_label: checkpoints.display().to_string(),
            records,
            checkpoints,
            config: None,
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cdw")),
            theme: Theme::default(),
            glyphs: Glyphs { ascii: false },
            now: SystemTime::now(),
            children: Vec::new(),
        }
    }

    /// `path` for display: under the records or checkpoints root it starts with the root as the
    /// user named it.
    pub fn show_path(&self, path: &std::path::Path) -> String {
        let roots = [
            (&self.records, &self.records_label),
            (&self.checkpoints, &self.checkpoints_label),
        ];
        for (root, label) in roots {
            if let Ok(rest) = path.strip_prefix(root) {
                return std::path::Path::new(label).join(rest).display().to_string();
            }
        }
        path.display().to_string()
    }

    /// Waits for the children that have ended, so their pids stop looking alive.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

/// True when `every` has passed since `last` (or there was no last time), and then `last` is now:
/// how screens pace their looks at files.
pub fn due(last: &mut Option<Instant>, every: Duration) -> bool {
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

/// A yes/no question in a dialog; the answer goes back to the screen that asked, with its tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub tag: &'static str,
    pub title: String,
    /// What will happen, one line each (what is kept, what goes).
    pub lines: Vec<String>,
    /// The label of the yes choice ("Stop", "Delete", ...).
    pub yes: String,
}

/// One key of a screen, for its footer and the `?` help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHelp {
    pub keys: &'static str,
    pub what: &'static str,
    /// Shown in the footer (the main keys); every key is in the help.
    pub footer: bool,
}

impl KeyHelp {
    pub const fn main(keys: &'static str, what: &'static str) -> KeyHelp {
        KeyHelp {
            keys,
            what,
            footer: true,
        }
    }
    pub const fn more(keys: &'static str, what: &'static str) -> KeyHelp {
        KeyHelp {
            keys,
            what,
            footer: false,
        }
    }
}

/// What a screen asks the shell to do after a key.
pub enum Cmd {
    /// The key is not this screen's: the shell's own keys (q, ?, Esc) apply.
    None,
    /// The key was used; redraw.
    Done,
    /// Open a screen on top (Esc comes back).
    Push(Box<dyn Screen>),
    /// Close this screen.
    Pop,
    /// Replace this screen.
    Replace(Box<dyn Screen>),
    /// Ask a yes/no question; the answer goes to [`Screen::answered`].
    Ask(Question),
    /// A one-line message under the screen (errors start with "error:").
    Note(String),
    Quit,
}

/// One screen of the workbench.
pub trait Screen {
    /// The name in the header ("Runs", "cifar10 / CD_..." ).
    fn title(&self) -> String;
    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx);
    fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> Cmd;
    /// A mouse event inside the screen's `area`.
    fn mouse(&mut self, _event: MouseEvent, _area: Rect, _ctx: &mut Ctx) -> Cmd {
        Cmd::None
    }
    /// Reads whatever changed on disk since the last poll; true when the screen must redraw.
    fn poll(&mut self, _ctx: &mut Ctx) -> bool {
        false
    }
    /// Every key of this screen.
    fn keys(&self) -> Vec<KeyHelp>;
    fn answered(&mut self, _tag: &'static str, _yes: bool, _ctx: &mut Ctx) -> Cmd {
        Cmd::None
    }
    /// True while the screen takes text (a field being edited, a filter being typed): then q and
    /// ? are letters, and only Esc and Enter are special.
    fn typing(&self) -> bool {
        false
    }
}

/// The screen stack and the shell's own state.
pub struct App {
    stack: Vec<Box<dyn Screen>>,
    question: Option<Question>,
    help: bool,
    note: Option<(String, Instant)>,
    pub quit: bool,
}

/// How long a note stays under the screen.
const NOTE_FOR: Duration = Duration::from_secs(8);

impl App {
    pub fn new(first: Box<dyn Screen>) -> App {
        App {
            stack: vec![first],
            question: None,
            help: false,
            note: None,
            quit: false,
        }
    }

    /// Opens `screen` on top (Esc comes back to the one below).
    pub fn open(&mut self, screen: Box<dyn Screen>) {
        self.stack.push(screen);
    }

    /// The screen on top.
    pub fn top(&mut self) -> &mut dyn Screen {
        let last = self.stack.len() - 1;
        self.stack[last].as_mut()
    }

    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    pub fn question(&self) -> Option<&Question> {
        self.question.as_ref()
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_ref().map(|(n, _)| n.as_str())
    }

    pub fn help_open(&self) -> bool {
        self.help
    }

    /// Handles a key; true when something changed and the screen must redraw.
    pub fn key(&mut self, key: KeyEvent, ctx: &mut Ctx) -> bool {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return true;
        }
        if let Some(q) = self.question.take() {
            match key.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                    let cmd = self.top().answered(q.tag, true, ctx);
                    self.apply(cmd);
                }
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    let cmd = self.top().answered(q.tag, false, ctx);
                    self.apply(cmd);
                }
                _ => self.question = Some(q),
            }
            return true;
        }
        if self.help {
            self.help = false;
            return true;
        }
        let typing = self.top().typing();
        let cmd = self.top().key(key, ctx);
        if !matches!(cmd, Cmd::None) {
            self.apply(cmd);
            return true;
        }
        match key.code {
            KeyCode::Char('q') if !typing => self.quit = true,
            KeyCode::Char('?') if !typing => self.help = true,
            KeyCode::Esc if self.stack.len() > 1 => {
                self.stack.pop();
            }
            _ => return false,
        }
        true
    }

    pub fn mouse(&mut self, event: MouseEvent, area: Rect, ctx: &mut Ctx) -> bool {
        if self.question.is_some() || self.help {
            return false;
        }
        let body = Self::body(area);
        let cmd = self.top().mouse(event, body, ctx);
        let used = !matches!(cmd, Cmd::None);
        self.apply(cmd);
        used
    }

    /// Polls the screen on top (and drops an old note); true when it must redraw.
    pub fn poll(&mut self, ctx: &mut Ctx) -> bool {
        ctx.reap();
        let expired = self
            .note
            .as_ref()
            .is_some_and(|(_, t)| t.elapsed() > NOTE_FOR);
        if expired {
            self.note = None;
        }
        self.top().poll(ctx) || expired
    }

    fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::None | Cmd::Done => {}
            Cmd::Push(s) => self.stack.push(s),
            Cmd::Pop => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                }
            }
            Cmd::Replace(s) => {
                self.stack.pop();
                self.stack.push(s);
            }
            Cmd::Ask(q) => self.question = Some(q),
            Cmd::Note(n) => self.note = Some((n, Instant::now())),
            Cmd::Quit => self.quit = true,
        }
    }

    /// The screen's part of the terminal: everything but the header and footer lines.
    fn body(area: Rect) -> Rect {
        let [_, body, _] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        body
    }

    pub fn draw(&mut self, frame: &mut Frame, ctx: &Ctx) {
        let area = frame.area();
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let text = format!(
                "The terminal is too small ({}x{}): cdw needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
                area.width, area.height
            );
            frame.render_widget(
                Paragraph::new(text)
                    .style(ctx.theme.warn)
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                area,
            );
            return;
        }
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let titles: Vec<String> = self.stack.iter().map(|s| s.title()).collect();
        widgets::header(frame, head, &titles, ctx);
        let keys = self.top().keys();
        self.top().draw(frame, body, ctx);
        match &self.note {
            Some((note, _)) => {
                let style = if note.starts_with("error") {
                    ctx.theme.error
                } else {
                    ctx.theme.ok
                };
                frame.render_widget(
                    Paragraph::new(Line::from(Span::styled(note.clone(), style))),
                    foot,
                );
            }
            None => widgets::footer(frame, foot, &keys, self.stack.len() > 1, ctx),
        }
        if self.help {
            widgets::help(frame, body, &self.top().title(), &keys, ctx);
        }
        if let Some(q) = &self.question {
            widgets::dialog(frame, body, q, ctx);
        }
    }
}
