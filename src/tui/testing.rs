//! Drawing screens into ratatui's `TestBackend` for the snapshot tests, with a fixed clock and
//! fixture runs copied into a temporary records root.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{App, Ctx};

/// The time every snapshot is drawn at: 2026-12-01 12:00:00 UTC.
pub fn fixed_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_hours(498_924)
}

/// The fixture runs of `tests/fixtures/runs/`.
pub fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs")
}

/// A copy of the fixture runs in a temporary folder (tests may change it), with every file's
/// modification time set to `fixed_now() - age` so ages and crash detection are the same on
/// every machine.
pub fn fixture_copy(age: Duration) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy_tree(&fixture_root(), dir.path(), fixed_now() - age);
    dir
}

fn copy_tree(from: &Path, to: &Path, mtime: SystemTime) {
    fs::create_dir_all(to).expect("create fixture folder");
    for entry in fs::read_dir(from).expect("read fixture folder") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target, mtime);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
            let f = fs::File::options()
                .write(true)
                .open(&target)
                .expect("open fixture copy");
            f.set_modified(mtime).expect("set mtime");
        }
    }
}

/// A context over `records` with the dark theme and the fixed clock.
pub fn ctx(records: &Path) -> Ctx {
    let mut c = Ctx::new(records.to_path_buf(), records.join("../checkpoints"));
    c.now = fixed_now();
    c.records_label = "records".into();
    c.checkpoints_label = "checkpoints".into();
    c.exe = PathBuf::from("cdw");
    c
}

/// Draws the app at `w` x `h`.
pub fn draw(app: &mut App, ctx: &Ctx, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| app.draw(f, ctx)).expect("draw");
    t.backend().buffer().clone()
}

/// The buffer's text, one line per row, trailing spaces cut (what a snapshot compares).
pub fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A key press.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Types `s` as key presses.
pub fn type_text(app: &mut App, ctx: &mut Ctx, s: &str) {
    for c in s.chars() {
        app.key(key(KeyCode::Char(c)), ctx);
    }
}
