//! The terminal workbench: `cdw` with no command. It reads runs only through [`crate::store`] and
//! [`crate::events`], and starts every long job as a separate `cdw` process in its own session
//! ([`jobs`]), so it can quit, crash or lose its terminal while the work goes on, and it never
//! creates a CUDA context. Nothing outside this module imports ratatui or crossterm.
//!
//! The loop ([`run`]) waits on three things with `tokio::select!`: terminal input (crossterm's
//! event stream), a file-poll tick, and the once-a-second clock; it redraws only when one of them
//! changed something.

pub mod app;
pub mod bench;
pub mod checkpoints;
pub mod compare;
pub mod dashboard;
pub mod evaluation;
pub mod feed;
pub mod gpu;
pub mod jobs;
pub mod newrun;
pub mod plot;
pub mod records;
pub mod runs;
pub mod series;
pub mod theme;
pub mod widgets;

#[cfg(test)]
mod snapshots;
#[cfg(test)]
pub(crate) mod testing;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use ratatui::crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

use app::{App, Ctx};
use theme::{Glyphs, Theme};

/// How often the screens look at their files (events.jsonl, status.json).
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// What `cdw` (no command) was started with.
#[derive(Debug, Clone)]
pub struct Options {
    pub records: PathBuf,
    pub checkpoints: PathBuf,
    pub config: Option<PathBuf>,
    pub theme: Option<PathBuf>,
    pub ascii: bool,
    /// `cdw records PATH...`: open the Records screen of these files and folders first.
    pub open_records: Vec<PathBuf>,
}

/// The user's folder for `theme.yaml` and other settings (XDG config dir on Linux).
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "cdw").map(|d| d.config_dir().to_path_buf())
}

/// Opens the workbench. Exit code 2 when stdout is not a terminal or the theme is bad.
pub fn run(opts: &Options) -> ExitCode {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        eprintln!(
            "cdw: not a terminal, so the workbench cannot open; use the headless commands \
             (cdw runs, cdw train, cdw evaluate, cdw --help)"
        );
        return ExitCode::from(2);
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = match Theme::resolve(opts.theme.as_deref(), config_dir().as_deref(), no_color) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Paths are read before the terminal is taken, so a bad one is a plain error message.
    let first_records = if opts.open_records.is_empty() {
        None
    } else {
        match records::RecordsScreen::for_paths(&opts.open_records) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let mut ctx = Ctx::new(opts.records.clone(), opts.checkpoints.clone());
    ctx.config.clone_from(&opts.config);
    ctx.theme = theme;
    ctx.glyphs = Glyphs { ascii: opts.ascii };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .and_then(|rt| rt.block_on(session(&mut ctx, first_records)));
    match result {
        Ok(()) => {
            if let Some(note) = quit_note(&ctx) {
                println!("{note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the terminal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The line printed after quitting while trainings run on.
pub fn quit_note(ctx: &Ctx) -> Option<String> {
    let running: Vec<String> = crate::store::runs::list_runs(&ctx.records, ctx.now)
        .into_iter()
        .filter(|r| r.shown.is_live())
        .map(|r| format!("{}/{}", r.dataset, r.experiment))
        .collect();
    match running.len() {
        0 => None,
        1 => Some(format!(
            "cdw: {} is still training in the background; run `cdw` to follow it.",
            running[0]
        )),
        n => Some(format!(
            "cdw: {n} runs are still training in the background ({}); run `cdw` to follow them.",
            running.join(", ")
        )),
    }
}

/// Puts the terminal back (raw mode off, main screen, no mouse capture, cursor shown).
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, DisableMouseCapture);
    let _ = execute!(io::stdout(), ratatui::crossterm::cursor::Show);
}

async fn session(ctx: &mut Ctx, first: Option<records::RecordsScreen>) -> io::Result<()> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    // A panic anywhere restores the terminal first, then prints a readable message.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        eprintln!("cdw: the workbench crashed (trainings it started go on). Please report this:");
        default_hook(info);
    }));
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let result = event_loop(&mut terminal, ctx, first).await;
    restore();
    let _ = std::panic::take_hook();
    io::stdout().flush()?;
    result
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    ctx: &mut Ctx,
    first: Option<records::RecordsScreen>,
) -> io::Result<()> {
    let mut app = App::new(Box::new(
        runs::RunsScreen::new(ctx).with_screens(open_dashboard, open_new_run),
    ));
    if let Some(screen) = first {
        app.open(Box::new(screen));
    }
    let mut input = EventStream::new();
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut shown_second = now_second();
    loop {
        if dirty {
            terminal.draw(|f| app.draw(f, ctx))?;
            dirty = false;
        }
        tokio::select! {
            event = input.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    dirty |= app.key(key, ctx);
                }
                Some(Ok(TermEvent::Mouse(m))) => {
                    let size = terminal.size()?;
                    dirty |= app.mouse(m, ratatui::layout::Rect::new(0, 0, size.width, size.height), ctx);
                }
                Some(Ok(TermEvent::Resize(_, _))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = poll.tick() => {
                ctx.now = SystemTime::now();
                dirty |= app.poll(ctx);
                // The clock: ages and ETAs move once a second even when no file changed.
                let second = now_second();
                if second != shown_second {
                    shown_second = second;
                    dirty = true;
                }
            }
        }
        if app.quit {
            return Ok(());
        }
    }
}

/// Enter on the Runs screen: the run's live dashboard.
pub fn open_dashboard(run: &crate::store::runs::RunSummary, ctx: &mut Ctx) -> app::Cmd {
    app::Cmd::Push(Box::new(dashboard::Dashboard::open(run, ctx)))
}

/// n on the Runs screen: the New-run screen.
pub fn open_new_run(ctx: &mut Ctx) -> app::Cmd {
    match newrun::NewRunScreen::new(ctx, open_launched) {
        Ok(s) => app::Cmd::Push(Box::new(s)),
        Err(e) => app::Cmd::Note(format!("error: {e}")),
    }
}

/// After a launch from the New-run screen: the new run's dashboard in its place.
fn open_launched(dir: &std::path::Path, ctx: &mut Ctx) -> app::Cmd {
    match crate::store::runs::summarize(dir, ctx.now) {
        Some(run) => app::Cmd::Replace(Box::new(dashboard::Dashboard::open(&run, ctx))),
        None => app::Cmd::Note(format!("error: no run appeared in {}", dir.display())),
    }
}

fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
