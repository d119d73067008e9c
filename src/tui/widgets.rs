//! Pieces every screen draws with: framed blocks, the header, the key footer, the help overlay,
//! the confirmation dialog, a text progress bar, and short time and number formats.

use std::time::{Duration, SystemTime};

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{Ctx, KeyHelp, Question};

/// A framed block with a title, in the theme's border style (`focus`: the active panel).
pub fn block<'a>(title: &'a str, focus: bool, ctx: &Ctx) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_set(ctx.glyphs.border_set())
        .border_style(if focus {
            ctx.theme.border_focus
        } else {
            ctx.theme.border
        })
        .title(Span::styled(format!(" {title} "), ctx.theme.title))
}

/// The top line: `cdw › Runs › ...` and the records root on the right.
pub fn header(frame: &mut Frame, area: Rect, titles: &[String], ctx: &Ctx) {
    let sep = if ctx.glyphs.ascii { " > " } else { " › " };
    let mut spans = vec![Span::styled("cdw", ctx.theme.title)];
    for t in titles {
        spans.push(Span::styled(sep, ctx.theme.dim));
        spans.push(Span::styled(t.clone(), ctx.theme.text));
    }
    let right = format!("records: {}", ctx.records_label);
    let used: usize = spans.iter().map(Span::width).sum();
    let room = usize::from(area.width).saturating_sub(used + 2);
    if right.chars().count() <= room {
        spans.push(Span::raw(" ".repeat(room - right.chars().count() + 2)));
        spans.push(Span::styled(right, ctx.theme.dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The bottom line: the screen's main keys, then `Esc back  ? help  q quit`, cut to the width.
pub fn footer(frame: &mut Frame, area: Rect, keys: &[KeyHelp], nested: bool, ctx: &Ctx) {
    let mut all: Vec<(&str, &str)> = keys
        .iter()
        .filter(|k| k.footer)
        .map(|k| (k.keys, k.what))
        .collect();
    if nested {
        all.push(("Esc", "back"));
    }
    all.push(("?", "help"));
    all.push(("q", "quit"));
    frame.render_widget(Paragraph::new(key_line(&all, area.width, ctx)), area);
}

/// `k what  k what ...` as one line no wider than `width`: keys that do not fit are left out
/// (they are all in the help), except the last ones (help, quit), which always stay.
pub fn key_line(keys: &[(&str, &str)], width: u16, ctx: &Ctx) -> Line<'static> {
    let width = usize::from(width);
    let item_len = |(k, w): &(&str, &str)| k.chars().count() + 1 + w.chars().count() + 2;
    let tail: usize = keys.iter().rev().take(2).map(item_len).sum();
    let mut used = 0;
    let mut spans = Vec::new();
    for (i, item) in keys.iter().enumerate() {
        let len = item_len(item);
        let is_tail = i + 2 >= keys.len();
        if !is_tail && used + len + tail > width {
            continue;
        }
        used += len;
        spans.push(Span::styled(item.0.to_string(), ctx.theme.key));
        spans.push(Span::styled(format!(" {}  ", item.1), ctx.theme.dim));
    }
    Line::from(spans)
}

/// A centred rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(r);
    r
}

/// The `?` overlay: every key of the current screen and the shell's own, in one column, or in two
/// side by side when one does not fit the height (a screen with many keys at 80x24).
pub fn help(frame: &mut Frame, area: Rect, title: &str, keys: &[KeyHelp], ctx: &Ctx) {
    const SHELL: [(&str, &str); 3] = [
        ("Esc", "back to the previous screen"),
        ("?", "this help (any key closes it)"),
        ("q  Ctrl-C", "quit (trainings go on in the background)"),
    ];
    let entry = |k: &str, w: &str, style, kw: usize| {
        Line::from(vec![
            Span::styled(format!("{k:>kw$}  "), ctx.theme.key),
            Span::styled(w.to_string(), style),
        ])
    };
    let one_column = keys.len() + 1 + SHELL.len() + 2 <= usize::from(area.height);
    let t = format!("Keys: {title}");
    if one_column || area.width < 60 {
        let mut lines: Vec<Line> = keys
            .iter()
            .map(|k| entry(k.keys, k.what, ctx.theme.text, 12))
            .collect();
        lines.push(Line::from(""));
        lines.extend(SHELL.iter().map(|(k, w)| entry(k, w, ctx.theme.dim, 12)));
        let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
        let r = centered(area, 64, h);
        frame.render_widget(Clear, r);
        frame.render_widget(Paragraph::new(lines).block(block(&t, true, ctx)), r);
        return;
    }
    let kw = keys
        .iter()
        .map(|k| k.keys.chars().count())
        .chain(SHELL.iter().map(|(k, _)| k.chars().count()))
        .max()
        .unwrap_or(0)
        .min(14);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|k| entry(k.keys, k.what, ctx.theme.text, kw))
        .collect();
    lines.extend(SHELL.iter().map(|(k, w)| entry(k, w, ctx.theme.dim, kw)));
    let rows = lines.len().div_ceil(2);
    let right = lines.split_off(rows);
    let h = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let r = centered(area, area.width.min(100), h);
    frame.render_widget(Clear, r);
    let b = block(&t, true, ctx);
    let inner = b.inner(r);
    frame.render_widget(b, r);
    let [l, rt] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), l);
    frame.render_widget(Paragraph::new(right), rt);
}

/// A confirmation: what will happen, then `y <yes>   n cancel`.
pub fn dialog(frame: &mut Frame, area: Rect, q: &Question, ctx: &Ctx) {
    let mut lines: Vec<Line> = q
        .lines
        .iter()
        .map(|l| Line::from(Span::styled(l.clone(), ctx.theme.text)))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("y", ctx.theme.key),
        Span::styled(format!(" {}    ", q.yes), ctx.theme.text),
        Span::styled("n", ctx.theme.key),
        Span::styled(" cancel", ctx.theme.text),
    ]));
    let w = 60.min(area.width);
    // Wrapped lines take more rows than there are lines: count them at the dialog's width.
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let h = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(&q.title, true, ctx)),
        r,
    );
}

/// A progress bar of `width` characters for `done` of `total`.
pub fn bar(done: f64, total: f64, width: usize, ctx: &Ctx) -> String {
    let share = if total > 0.0 {
        (done / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Rounding down: a bar is full only when the work is done.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let full = ((share * width as f64).floor() as usize).min(width);
    let mut s = String::with_capacity(width * 3);
    for _ in 0..full {
        s.push(ctx.glyphs.full());
    }
    for _ in full..width {
        s.push(ctx.glyphs.empty());
    }
    s
}

/// How long ago `then` was, from `now`: `12s`, `4m`, `3h`, `2d`.
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    let d = now.duration_since(then).unwrap_or(Duration::ZERO);
    short_duration(d)
}

/// A duration in its largest unit: `12s`, `4m`, `3h`, `2d`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A duration as `h:mm:ss` (or `m:ss` under an hour), for ETAs.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A score with three decimals, or `-` when there is none.
pub fn score(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "-".to_string(),
    }
}

/// A style for text that is `dim` or not.
pub fn dim_if(dim: bool, ctx: &Ctx) -> Style {
    if dim {
        ctx.theme.dim
    } else {
        ctx.theme.text
    }
}

/// An epoch or mark: whole numbers without a fraction.
pub fn fmt_x(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// A cell: four decimals for small values, fewer for large ones, scientific for tiny ones.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if a < 1e-3 {
        format!("{v:.2e}")
    } else if a < 100.0 {
        format!("{v:.4}")
    } else if a < 1e6 {
        format!("{v:.1}")
    } else {
        format!("{v:.3e}")
    }
}

/// `s` cut to `w` characters with an ellipsis.
pub fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(short_duration(Duration::from_secs(12)), "12s");
        assert_eq!(short_duration(Duration::from_mins(5)), "5m");
        assert_eq!(short_duration(Duration::from_secs(7300)), "2h");
        assert_eq!(short_duration(Duration::from_secs(200_000)), "2d");
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 7 * 60 + 9)), "3:07:09");
    }

    #[test]
    fn bars_fill_in_proportion_and_only_when_done() {
        let ctx = Ctx::new("r".into(), "c".into());
        assert_eq!(bar(5.0, 10.0, 10, &ctx), "█████░░░░░");
        assert_eq!(bar(99.0, 100.0, 10, &ctx), "█████████░");
        assert_eq!(bar(10.0, 10.0, 4, &ctx), "████");
        assert_eq!(bar(1.0, 0.0, 3, &ctx), "░░░");
    }

    #[test]
    fn the_footer_keeps_help_and_quit_when_narrow() {
        let ctx = Ctx::new("r".into(), "c".into());
        let keys = [
            ("Enter", "open"),
            ("n", "new run"),
            ("?", "help"),
            ("q", "quit"),
        ];
        let text = |w| {
            key_line(&keys, w, &ctx)
                .spans
                .iter()
                .map(|s| s.content.to_string())
                .collect::<String>()
        };
        assert_eq!(text(80).trim_end(), "Enter open  n new run  ? help  q quit");
        assert_eq!(text(30).trim_end(), "Enter open  ? help  q quit");
        assert_eq!(text(16).trim_end(), "? help  q quit");
    }
}
