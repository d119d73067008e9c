//! The Records screen: any run's records, or CSV files and folders given to `cdw records`, as a
//! table (rows = epochs or 100-epoch marks, columns = every metric; scrolled both ways, sorted by
//! a column, each column's best value marked, columns hidden and shown) or as charts of the chosen
//! metrics against epoch with the dashboard's smoothing. Several sources (a folder of the
//! reference's records, or several paths) are stepped through with Tab.
//!
//! Only the rows on screen are turned into cells, so a 10,000-row file draws as fast as a short
//! one. A run's records are re-read when its files change, so a live run's table grows.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{due, Cmd, Ctx, KeyHelp, Screen};
use super::plot::{self, Curve};
use super::widgets::{self, cut, fmt_value, fmt_x};
use crate::store::table::{open_path, Source, Table};

/// How often a source's files are looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The most metrics charted at once.
const MAX_CHARTED: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Chart,
}

pub struct RecordsScreen {
    title: String,
    sources: Vec<Source>,
    at: usize,
    view: View,
    /// The selected column (index into the table's columns).
    col: usize,
    /// The first metric column drawn (horizontal scroll).
    col_from: usize,
    /// The selected row, as a position in `order`.
    row: usize,
    /// The first row drawn (vertical scroll).
    row_from: usize,
    /// Rows in the order shown (file order, or sorted).
    order: Vec<usize>,
    /// Sorted by this column name, descending when true.
    sort: Option<(String, bool)>,
    /// Column names hidden from the table.
    hidden: Vec<String>,
    /// Column names drawn in the chart view, in the order chosen.
    charted: Vec<String>,
    smoothing: f64,
    /// Rows of the last table draw (for paging).
    page: usize,
    last_look: Option<Instant>,
    stamp: Option<SystemTime>,
}

impl RecordsScreen {
    /// The records of sources already read (a run, or the paths of `cdw records`).
    pub fn new(title: String, sources: Vec<Source>) -> RecordsScreen {
        let mut s = RecordsScreen {
            title,
            sources,
            at: 0,
            view: View::Table,
            col: 0,
            col_from: 0,
            row: 0,
            row_from: 0,
            order: Vec::new(),
            sort: None,
            hidden: Vec::new(),
            charted: Vec::new(),
            smoothing: 0.0,
            page: 10,
            last_look: Some(Instant::now()),
            stamp: None,
        };
        s.stamp = s.source_stamp();
        s.reorder();
        s.charted = s.default_charted();
        s
    }

    /// A run's records (metrics.csv joined with evaluation.csv, or its records CSV).
    pub fn for_run(dir: &Path) -> RecordsScreen {
        let source = Source::run(dir);
        RecordsScreen::new(format!("Records {}", source.name), vec![source])
    }

    /// The sources of every path (`cdw records PATH...`); an error names the path that fails.
    pub fn for_paths(paths: &[std::path::PathBuf]) -> Result<RecordsScreen, String> {
        let mut sources = Vec::new();
        for p in paths {
            sources.extend(open_path(p)?);
        }
        let title = match sources.as_slice() {
            [one] => format!("Records {}", one.name),
            _ => format!("Records ({} files)", sources.len()),
        };
        Ok(RecordsScreen::new(title, sources))
    }

    pub fn table(&self) -> Option<&Table> {
        self.sources
            .get(self.at)
            .and_then(|s| s.table.as_ref().ok())
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn source_name(&self) -> &str {
        self.sources.get(self.at).map_or("", |s| s.name.as_str())
    }

    /// The selected column's name.
    pub fn column_name(&self) -> Option<&str> {
        self.table()
            .and_then(|t| t.columns.get(self.col))
            .map(String::as_str)
    }

    pub fn charted(&self) -> &[String] {
        &self.charted
    }

    /// The x values of the rows in the order shown.
    pub fn shown_xs(&self) -> Vec<f64> {
        self.table()
            .map(|t| self.order.iter().map(|&r| t.xs[r]).collect())
            .unwrap_or_default()
    }

    /// The first score column (`nmi_feature`, else any NMI, else the first) charted on opening.
    fn default_charted(&self) -> Vec<String> {
        let Some(t) = self.table() else {
            return Vec::new();
        };
        let pick = ["total_loss", "nmi_feature", "best_nmi_feature"]
            .iter()
            .filter(|n| t.column(n).is_some())
            .map(|n| (*n).to_string())
            .collect::<Vec<_>>();
        if pick.is_empty() {
            t.columns.first().cloned().into_iter().collect()
        } else {
            pick
        }
    }

    fn visible_columns(&self) -> Vec<usize> {
        self.table()
            .map_or_else(Vec::new, |t| self.visible_columns_of(t))
    }

    /// The columns of `t` not hidden.
    fn visible_columns_of(&self, t: &Table) -> Vec<usize> {
        (0..t.columns.len())
            .filter(|&c| !self.hidden.contains(&t.columns[c]))
            .collect()
    }

    /// Recomputes the row order after a sort or a reload, keeping the selected row's x.
    fn reorder(&mut self) {
        let keep = self
            .table()
            .and_then(|t| self.order.get(self.row).and_then(|&r| t.xs.get(r).copied()));
        let Some(t) = self.table() else {
            self.order.clear();
            return;
        };
        let mut order: Vec<usize> = (0..t.rows()).collect();
        if let Some((name, desc)) = &self.sort {
            if let Some(c) = t.column(name) {
                // Rows without a value go last either way.
                order.sort_by(|&a, &b| match (t.get(a, c), t.get(b, c)) {
                    (Some(x), Some(y)) if *desc => y.total_cmp(&x),
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.cmp(&b),
                });
            }
        }
        let row = keep
            .and_then(|x| order.iter().position(|&r| t.xs[r] == x))
            .unwrap_or(0);
        let cols = t.columns.len();
        self.order = order;
        self.row = row;
        self.col = self.col.min(cols.saturating_sub(1));
    }

    fn move_row(&mut self, by: isize) {
        let n = self.order.len();
        if n == 0 {
            return;
        }
        self.row = self.row.saturating_add_signed(by).min(n - 1);
    }

    fn move_col(&mut self, by: isize) {
        let vis = self.visible_columns();
        if vis.is_empty() {
            return;
        }
        let at = vis.iter().position(|&c| c >= self.col).unwrap_or(0);
        let to = at.saturating_add_signed(by).min(vis.len() - 1);
        self.col = vis[to];
    }

    fn switch_source(&mut self, by: isize) {
        let n = self.sources.len();
        if n < 2 {
            return;
        }
        self.at = (self.at as isize + by).rem_euclid(n as isize) as usize;
        self.row = 0;
        self.row_from = 0;
        self.col_from = 0;
        let name = self.column_name().map(str::to_string);
        self.col = self
            .table()
            .and_then(|t| name.and_then(|n| t.column(&n)))
            .unwrap_or(0);
        self.stamp = self.source_stamp();
        self.reorder();
        if self.charted.is_empty() {
            self.charted = self.default_charted();
        }
    }

    /// The newest modification time of the files behind the current source.
    fn source_stamp(&self) -> Option<SystemTime> {
        self.sources
            .get(self.at)?
            .files()
            .iter()
            .filter_map(|f| f.metadata().and_then(|m| m.modified()).ok())
            .max()
    }

    fn reload(&mut self) {
        if let Some(s) = self.sources.get_mut(self.at) {
            s.reload();
        }
        self.reorder();
    }
}

impl Screen for RecordsScreen {
    fn title(&self) -> String {
        self.title.clone()
    }

    fn keys(&self) -> Vec<KeyHelp> {
        let mut keys = vec![
            KeyHelp::main("c", "table/chart"),
            KeyHelp::main("space", "chart column"),
            KeyHelp::main("o", "sort by column"),
            KeyHelp::main("x", "hide column"),
        ];
        if self.sources.len() > 1 {
            keys.insert(0, KeyHelp::main("Tab", "next file"));
            keys.push(KeyHelp::more("Shift-Tab", "previous file"));
        }
        keys.extend([
            KeyHelp::more("O", "back to the file's order"),
            KeyHelp::more("a", "show every hidden column"),
            KeyHelp::more("+ -", "smoothing of the charts"),
            KeyHelp::more("←→ h l", "choose a column"),
            KeyHelp::more("↑↓ j k PgUp PgDn Home End", "move through the rows"),
            KeyHelp::more("wheel", "scroll the rows"),
        ]);
        keys
    }

    fn key(&mut self, key: KeyEvent, _ctx: &mut Ctx) -> Cmd {
        match key.code {
            KeyCode::Tab => self.switch_source(1),
            KeyCode::BackTab => self.switch_source(-1),
            KeyCode::Char('c') => {
                self.view = match self.view {
                    View::Table => View::Chart,
                    View::Chart => View::Table,
                };
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_row(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_row(-1),
            KeyCode::PageDown => self.move_row(self.page as isize),
            KeyCode::PageUp => self.move_row(-(self.page as isize)),
            KeyCode::Home => self.row = 0,
            KeyCode::End => self.move_row(isize::MAX / 2),
            KeyCode::Right | KeyCode::Char('l') => self.move_col(1),
            KeyCode::Left | KeyCode::Char('h') => self.move_col(-1),
            KeyCode::Char(' ') => {
                let Some(name) = self.column_name().map(str::to_string) else {
                    return Cmd::Done;
                };
                if let Some(i) = self.charted.iter().position(|c| *c == name) {
                    self.charted.remove(i);
                    return Cmd::Note(format!("{name} left out of the charts"));
                }
                if self.charted.len() >= MAX_CHARTED {
                    return Cmd::Note(format!(
                        "error: at most {MAX_CHARTED} metrics are charted at once; space on a \
                         charted column takes it out"
                    ));
                }
                self.charted.push(name.clone());
                return Cmd::Note(format!("{name} charted ({} in all)", self.charted.len()));
            }
            KeyCode::Char('o') => {
                let Some(name) = self.column_name().map(str::to_string) else {
                    return Cmd::Done;
                };
                let desc = match &self.sort {
                    Some((n, d)) if *n == name => !d,
                    _ => true,
                };
                self.sort = Some((name.clone(), desc));
                self.reorder();
                self.row = 0;
                return Cmd::Note(format!(
                    "sorted by {name}, {}",
                    if desc {
                        "highest first"
                    } else {
                        "lowest first"
                    }
                ));
            }
            KeyCode::Char('O') => {
                self.sort = None;
                self.reorder();
            }
            KeyCode::Char('x') => {
                let vis = self.visible_columns();
                if vis.len() <= 1 {
                    return Cmd::Note("error: the last column shown cannot be hidden".into());
                }
                let Some(name) = self.column_name().map(str::to_string) else {
                    return Cmd::Done;
                };
                self.hidden.push(name.clone());
                let at = vis.iter().position(|&c| c == self.col).unwrap_or(0);
                let rest: Vec<usize> = vis.into_iter().filter(|&c| c != self.col).collect();
                self.col = rest[at.min(rest.len() - 1)];
                return Cmd::Note(format!(
                    "{name} hidden ({} hidden; a shows them)",
                    self.hidden.len()
                ));
            }
            KeyCode::Char('a') => self.hidden.clear(),
            KeyCode::Char('+' | '=') => self.smoothing = (self.smoothing + 0.1).min(0.9),
            KeyCode::Char('-') => self.smoothing = (self.smoothing - 0.1).max(0.0),
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn mouse(&mut self, event: MouseEvent, _area: Rect, _ctx: &mut Ctx) -> Cmd {
        match event.kind {
            MouseEventKind::ScrollDown => self.move_row(3),
            MouseEventKind::ScrollUp => self.move_row(-3),
            _ => return Cmd::None,
        }
        Cmd::Done
    }

    fn poll(&mut self, _ctx: &mut Ctx) -> bool {
        if !due(&mut self.last_look, RELOAD_EVERY) {
            return false;
        }
        let stamp = self.source_stamp();
        if stamp == self.stamp {
            return false;
        }
        self.stamp = stamp;
        self.reload();
        true
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let many = self.sources.len() > 1;
        let [top, body] =
            Layout::vertical([Constraint::Length(u16::from(many) + 1), Constraint::Min(3)])
                .areas(area);
        self.draw_top(frame, top, ctx);
        let Some(source) = self.sources.get(self.at) else {
            frame.render_widget(
                Paragraph::new("nothing to show").block(widgets::block("Records", true, ctx)),
                body,
            );
            return;
        };
        if let Err(e) = &source.table {
            frame.render_widget(
                Paragraph::new(Span::styled(format!("error: {e}"), ctx.theme.error))
                    .wrap(Wrap { trim: true })
                    .block(widgets::block(&source.name, true, ctx)),
                body,
            );
            return;
        }
        // The table is moved out while it is drawn (the drawing updates the scroll state) and
        // put back after, rather than copied at every frame.
        let at = self.at;
        let table = std::mem::replace(&mut self.sources[at].table, Ok(Table::default()))
            .unwrap_or_default();
        match self.view {
            View::Table => self.draw_table(frame, body, &table, ctx),
            View::Chart => self.draw_charts(frame, body, &table, ctx),
        }
        self.sources[at].table = Ok(table);
    }
}

impl RecordsScreen {
    /// The file list (when there are several) and the line about this table.
    fn draw_top(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let mut lines = Vec::new();
        if self.sources.len() > 1 {
            let mut spans = vec![Span::styled(
                format!("{}/{} ", self.at + 1, self.sources.len()),
                ctx.theme.dim,
            )];
            // The current file first-visible: the list starts a little before it.
            let from = self.at.saturating_sub(2);
            for (i, s) in self.sources.iter().enumerate().skip(from) {
                let style = if i == self.at {
                    ctx.theme.selected
                } else if s.table.is_err() {
                    ctx.theme.error
                } else {
                    ctx.theme.text
                };
                spans.push(Span::styled(format!(" {} ", s.name), style));
            }
            lines.push(Line::from(spans));
        }
        let about = match self.table() {
            Some(t) => {
                let mut spans = vec![Span::styled(
                    format!(
                        "{} rows × {} metrics{}",
                        t.rows(),
                        t.columns.len(),
                        match &self.sort {
                            Some((n, true)) => format!(" · sorted by {n}, highest first"),
                            Some((n, false)) => format!(" · sorted by {n}, lowest first"),
                            None => String::new(),
                        }
                    ),
                    ctx.theme.dim,
                )];
                if !self.hidden.is_empty() {
                    spans.push(Span::styled(
                        format!(" · {} hidden", self.hidden.len()),
                        ctx.theme.dim,
                    ));
                }
                if let Some(p) = &t.problem {
                    spans.push(Span::styled(format!(" · skipped {p}"), ctx.theme.warn));
                }
                Line::from(spans)
            }
            None => Line::from(""),
        };
        lines.push(about);
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_table(&mut self, frame: &mut Frame, area: Rect, t: &Table, ctx: &Ctx) {
        let title = format!("{} · table", self.source_name());
        let block = widgets::block(&title, true, ctx);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let rows_h = usize::from(inner.height.saturating_sub(1));
        self.page = rows_h.max(1);
        if self.row < self.row_from {
            self.row_from = self.row;
        } else if rows_h > 0 && self.row >= self.row_from + rows_h {
            self.row_from = self.row + 1 - rows_h;
        }
        let x_w =
            t.xs.iter()
                .map(|x| fmt_x(*x).len())
                .max()
                .unwrap_or(1)
                .max(t.x.len());
        let vis = self.visible_columns_of(t);
        let width = |c: usize| t.columns[c].chars().count().clamp(7, 18);
        // Scroll so the selected column is drawn.
        let room = usize::from(inner.width).saturating_sub(x_w + 1);
        let at = vis.iter().position(|&c| c == self.col).unwrap_or(0);
        let mut from = vis
            .iter()
            .position(|&c| c >= self.col_from)
            .unwrap_or(0)
            .min(at);
        while from < at && vis[from..=at].iter().map(|&c| width(c) + 1).sum::<usize>() > room {
            from += 1;
        }
        self.col_from = vis.get(from).copied().unwrap_or(0);
        let mut shown = Vec::new();
        let mut used = 0;
        for &c in &vis[from.min(vis.len())..] {
            if used + width(c) + 1 > room && !shown.is_empty() {
                break;
            }
            used += width(c) + 1;
            shown.push(c);
        }
        let best: Vec<Option<usize>> = shown.iter().map(|&c| t.best_row(c)).collect();
        let mut lines = Vec::with_capacity(rows_h + 1);
        let mut head = vec![Span::styled(format!("{:>x_w$} ", t.x), ctx.theme.header)];
        for &c in &shown {
            let w = width(c);
            let mut style = ctx.theme.header;
            if c == self.col {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let mark = if self.charted.contains(&t.columns[c]) {
                "~"
            } else {
                ""
            };
            let name: String = format!("{mark}{}", t.columns[c]);
            let name = cut(&name, w);
            head.push(Span::styled(format!("{name:>w$}"), style));
            head.push(Span::raw(" "));
        }
        lines.push(Line::from(head));
        for (pos, &r) in self
            .order
            .iter()
            .enumerate()
            .skip(self.row_from)
            .take(rows_h)
        {
            let selected = pos == self.row;
            let base = if selected {
                ctx.theme.selected
            } else {
                Style::default()
            };
            let mut spans = vec![Span::styled(
                format!("{:>x_w$} ", fmt_x(t.xs[r])),
                base.patch(ctx.theme.dim),
            )];
            for (i, &c) in shown.iter().enumerate() {
                let w = width(c);
                let v = t.get(r, c).map_or_else(|| "-".to_string(), fmt_value);
                let style = if best[i] == Some(r) {
                    base.patch(ctx.theme.best)
                } else {
                    base.patch(ctx.theme.text)
                };
                spans.push(Span::styled(format!("{v:>w$}"), style));
                spans.push(Span::styled(" ", base));
            }
            lines.push(Line::from(spans));
        }
        if t.rows() == 0 {
            lines.push(Line::from(Span::styled("no rows yet", ctx.theme.dim)));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_charts(&self, frame: &mut Frame, area: Rect, t: &Table, ctx: &Ctx) {
        let names: Vec<&String> = self
            .charted
            .iter()
            .filter(|n| t.column(n).is_some())
            .collect();
        let title_of = |what: &str| {
            format!(
                "{} · {what} · smoothing {:.1}",
                self.source_name(),
                self.smoothing
            )
        };
        let empty = "no metric is charted: c for the table, space on a column charts it";
        // Each metric on its own axes while they fit at 6 lines or more; else all on one.
        let stacked = !names.is_empty() && usize::from(area.height) / names.len() >= 6;
        let curve = |i: usize, n: &String| Curve {
            name: n.clone(),
            color: ctx.theme.series_color(i),
            points: t.column(n).map(|c| t.series(c)).unwrap_or_default(),
        };
        if !stacked {
            let curves: Vec<Curve> = names.iter().enumerate().map(|(i, n)| curve(i, n)).collect();
            plot::draw(
                frame,
                area,
                &title_of("chart"),
                &curves,
                self.smoothing,
                empty,
                ctx,
            );
            return;
        }
        let areas = Layout::vertical(vec![Constraint::Ratio(1, names.len() as u32); names.len()])
            .split(area);
        for (i, (n, a)) in names.iter().zip(areas.iter()).enumerate() {
            plot::draw(
                frame,
                *a,
                &title_of(n),
                &[curve(i, n)],
                self.smoothing,
                "no values in this column",
                ctx,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::App;
    use crate::tui::testing::{self, draw, key, text};

    fn fixture(rel: &str) -> RecordsScreen {
        let p = testing::fixture_root().join(rel);
        RecordsScreen::for_paths(&[p]).unwrap()
    }

    #[test]
    fn a_run_opens_with_its_metrics_and_evaluations_and_sorts_by_a_column() {
        let mut s = fixture("cifar10/bs128_lr0.0003_ResNet34");
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = testing::ctx(dir.path());
        let t = s.table().unwrap();
        assert_eq!(t.rows(), 57);
        assert_eq!(
            s.charted(),
            ["total_loss", "nmi_feature", "best_nmi_feature"]
        );
        let nmi = t.column("nmi_feature").unwrap();
        while s.column_name() != Some("nmi_feature") {
            s.key(key(KeyCode::Right), &mut ctx);
        }
        assert_eq!(s.col, nmi);
        s.key(key(KeyCode::Char('o')), &mut ctx);
        let xs = s.shown_xs();
        let t = s.table().unwrap();
        let first = t.get(t.xs.iter().position(|x| *x == xs[0]).unwrap(), nmi);
        let max = (0..t.rows())
            .filter_map(|r| t.get(r, nmi))
            .fold(f64::MIN, f64::max);
        assert_eq!(first, Some(max), "highest first");
        s.key(key(KeyCode::Char('o')), &mut ctx);
        assert!(s.shown_xs() != xs, "o again: lowest first");
        s.key(key(KeyCode::Char('O')), &mut ctx);
        assert_eq!(s.shown_xs(), (1..=57).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn columns_hide_and_chart_and_the_last_one_stays() {
        let mut s = fixture("cifar10/reference_CD");
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = testing::ctx(dir.path());
        let n = s.table().unwrap().columns.len();
        assert_eq!(n, 12);
        for _ in 0..n - 1 {
            s.key(key(KeyCode::Char('x')), &mut ctx);
        }
        assert_eq!(s.visible_columns().len(), 1);
        let Cmd::Note(note) = s.key(key(KeyCode::Char('x')), &mut ctx) else {
            panic!("a note")
        };
        assert!(note.contains("cannot be hidden"), "{note}");
        s.key(key(KeyCode::Char('a')), &mut ctx);
        assert_eq!(s.visible_columns().len(), n);
        assert_eq!(s.charted(), ["nmi_feature", "best_nmi_feature"]);
        // Space on the first column (best_nmi_feature) takes it out of the charts.
        for _ in 0..n {
            s.key(key(KeyCode::Left), &mut ctx);
        }
        assert_eq!(s.column_name(), Some("best_nmi_feature"));
        s.key(key(KeyCode::Char(' ')), &mut ctx);
        assert_eq!(s.charted(), ["nmi_feature"]);
    }

    #[test]
    fn a_live_run_s_table_grows_when_its_files_change() {
        let dir = testing::fixture_copy(Duration::from_secs(30));
        let run = dir.path().join("cifar10/bs128_lr0.0003_ResNet34");
        let mut s = RecordsScreen::for_run(&run);
        let mut ctx = testing::ctx(dir.path());
        let before = s.table().unwrap().rows();
        let mut metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        metrics.push_str("58,3.0,2.0,5.0,0.0003,12.0,80.0\n");
        std::fs::write(run.join("metrics.csv"), metrics).unwrap();
        s.last_look = None;
        assert!(s.poll(&mut ctx));
        assert_eq!(s.table().unwrap().rows(), before + 1);
        s.last_look = None;
        assert!(!s.poll(&mut ctx), "nothing changed since");
    }

    fn app_of(s: RecordsScreen) -> (tempfile::TempDir, Ctx, App) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = testing::ctx(dir.path());
        (dir, ctx, App::new(Box::new(s)))
    }

    #[test]
    fn records_table_80x24() {
        let (_d, ctx, mut app) = app_of(fixture("cifar10/bs128_lr0.0003_ResNet34"));
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 80, 24)));
    }

    #[test]
    fn records_table_scrolled_160x48() {
        let (_d, mut ctx, mut app) = app_of(fixture("cifar10/bs128_lr0.0003_ResNet34"));
        for _ in 0..9 {
            app.key(key(KeyCode::Right), &mut ctx);
        }
        app.key(key(KeyCode::End), &mut ctx);
        insta::assert_snapshot!(text(&draw(&mut app, &ctx, 160, 48)));
    }

    #[test]
    fn records_chart_80x24_and_160x48() {
        let (_d, mut ctx, mut app) = app_of(fixture("cifar10/bs128_lr0.0003_ResNet34"));
        app.key(key(KeyCode::Char('c')), &mut ctx);
        insta::assert_snapshot!("records_chart_80x24", text(&draw(&mut app, &ctx, 80, 24)));
        insta::assert_snapshot!("records_chart_160x48", text(&draw(&mut app, &ctx, 160, 48)));
    }

    #[test]
    fn reference_records_folder_80x24_and_160x48() {
        // A folder of the reference's records CSVs (one bad, one good), opened unchanged.
        let dir = tempfile::tempdir().unwrap();
        let reference =
            testing::fixture_root().join("cifar10/reference_CD/records_reference_CD.csv");
        std::fs::copy(&reference, dir.path().join("records_CD_cifar10.csv")).unwrap();
        let mut text_csv = std::fs::read_to_string(&reference).unwrap();
        text_csv = text_csv.replace("0.6473", "oops");
        std::fs::write(dir.path().join("records_CD_cifar100.csv"), text_csv).unwrap();
        let s = RecordsScreen::for_paths(&[dir.path().to_path_buf()]).unwrap();
        let (_d, mut ctx, mut app) = app_of(s);
        insta::assert_snapshot!(
            "reference_records_folder_80x24",
            text(&draw(&mut app, &ctx, 80, 24))
        );
        app.key(key(KeyCode::Tab), &mut ctx);
        insta::assert_snapshot!(
            "reference_records_folder_160x48",
            text(&draw(&mut app, &ctx, 160, 48))
        );
    }

    #[test]
    fn ten_thousand_rows_draw_without_building_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("epoch,total_loss,nmi_feature\n");
        for e in 1..=10_000 {
            csv.push_str(&format!(
                "{e},{},{}\n",
                10.0 / f64::from(e),
                f64::from(e) / 1e4
            ));
        }
        let path = dir.path().join("big.csv");
        std::fs::write(&path, csv).unwrap();
        let s = RecordsScreen::for_paths(&[path]).unwrap();
        let (_d, mut ctx, mut app) = app_of(s);
        app.key(key(KeyCode::End), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(shown.contains("10000"), "{shown}");
        app.key(key(KeyCode::Char('c')), &mut ctx);
        let shown = text(&draw(&mut app, &ctx, 80, 24));
        assert!(
            shown.contains("10000"),
            "the x axis ends at the last epoch: {shown}"
        );
    }
}
