//! Every screen drawn into `TestBackend` from the fixture runs (`tests/fixtures/runs/`), at 80x24
//! and 160x48, compared with the snapshots in `src/tui/snapshots/` (insta: `cargo insta review`,
//! or `INSTA_UPDATE=always` to rewrite them after an intended change).

use std::time::Duration;

use ratatui::crossterm::event::KeyCode;

use super::app::App;
use super::runs::RunsScreen;
use super::testing::{self, draw, key, text};

/// The fixture runs last written 30 s before the fixed clock.
fn fixture_app() -> (tempfile::TempDir, super::app::Ctx, App) {
    let dir = testing::fixture_copy(Duration::from_secs(30));
    let mut ctx = testing::ctx(dir.path());
    let app = App::new(Box::new(RunsScreen::new(&mut ctx)));
    (dir, ctx, app)
}

#[test]
fn runs_80x24() {
    let (_d, ctx, mut app) = fixture_app();
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
}

#[test]
fn runs_160x48() {
    let (_d, ctx, mut app) = fixture_app();
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 160, 48)));
}

#[test]
fn runs_help_80x24() {
    let (_d, mut ctx, mut app) = fixture_app();
    app.key(key(KeyCode::Char('?')), &mut ctx);
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
}

#[test]
fn runs_stop_dialog_80x24() {
    let (_d, mut ctx, mut app) = fixture_app();
    // Sorted by state: the running run is first.
    app.key(key(KeyCode::Char('o')), &mut ctx);
    app.key(key(KeyCode::Home), &mut ctx);
    app.key(key(KeyCode::Char('s')), &mut ctx);
    assert!(app.question().is_some());
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    // n cancels: nothing was signalled.
    app.key(key(KeyCode::Char('n')), &mut ctx);
    assert!(app.question().is_none());
}

#[test]
fn runs_delete_dialog_160x48() {
    let (_d, mut ctx, mut app) = fixture_app();
    app.key(key(KeyCode::Char('d')), &mut ctx);
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 160, 48)));
}

#[test]
fn runs_ascii_80x24() {
    let (_d, mut ctx, mut app) = fixture_app();
    ctx.glyphs.ascii = true;
    let shown = text(&draw(&mut app, &ctx, 80, 24));
    assert!(shown.is_ascii(), "{shown}");
    insta::assert_snapshot!(shown);
}

#[test]
fn empty_records_say_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = testing::ctx(dir.path());
    let mut app = App::new(Box::new(RunsScreen::new(&mut ctx)));
    insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
}

#[test]
fn too_small_says_so_and_nothing_panics_at_any_size() {
    let (_d, mut ctx, mut app) = fixture_app();
    let small = text(&draw(&mut app, &ctx, 39, 11));
    assert!(small.contains("too small"), "{small}");
    // Every size from 1x1 to 120x50 draws (with the help and a dialog open, too).
    for (w, h) in (1..=120)
        .step_by(7)
        .flat_map(|w| (1..=50).step_by(3).map(move |h| (w, h)))
    {
        draw(&mut app, &ctx, w, h);
    }
    app.key(key(KeyCode::Char('d')), &mut ctx);
    for (w, h) in [(40, 12), (41, 13), (80, 24), (200, 60), (13, 5)] {
        draw(&mut app, &ctx, w, h);
    }
}
