//! Line charts of named metric curves against epoch, shared by the Records and Compare screens:
//! each curve smoothed as the dashboard smooths ([`series::smooth`]) and downsampled to the
//! chart's columns, on one pair of axes.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

use super::app::Ctx;
use super::series::{downsample, smooth, y_bounds};
use super::widgets;

/// One curve to draw.
pub struct Curve {
    pub name: String,
    pub color: Color,
    /// `(epoch, value)` points in epoch order.
    pub points: Vec<(f64, f64)>,
}

/// Draws `curves` in a framed chart titled `title`, smoothed with `smoothing` (0: raw). With
/// smoothing, the raw curve is drawn dimmed under the smoothed one. `empty` is said when there
/// is nothing to draw.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    curves: &[Curve],
    smoothing: f64,
    empty: &str,
    ctx: &Ctx,
) {
    let block = widgets::block(title, true, ctx);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if curves.iter().all(|c| c.points.is_empty()) {
        frame.render_widget(Paragraph::new(Span::styled(empty, ctx.theme.dim)), inner);
        return;
    }
    // Braille gives two dots a column: twice the columns keep every column's min and max.
    let columns = usize::from(inner.width) * 2;
    let mut raw = Vec::new();
    let mut smoothed = Vec::new();
    for c in curves {
        let ys: Vec<f64> = c.points.iter().map(|p| p.1).collect();
        let sm: Vec<(f64, f64)> = c
            .points
            .iter()
            .zip(smooth(&ys, smoothing))
            .map(|(p, y)| (p.0, y))
            .collect();
        raw.push(downsample(&c.points, columns));
        smoothed.push(downsample(&sm, columns));
    }
    let bounds = y_bounds(raw.iter().chain(&smoothed).map(std::vec::Vec::as_slice));
    let x0 = curves
        .iter()
        .filter_map(|c| c.points.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let x1 = curves
        .iter()
        .filter_map(|c| c.points.last().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(x0 + 1.0);
    let marker = ctx.glyphs.marker();
    let mut datasets = Vec::new();
    if smoothing > 0.0 {
        for r in &raw {
            datasets.push(
                Dataset::default()
                    .marker(marker)
                    .graph_type(GraphType::Line)
                    .style(ctx.theme.raw)
                    .data(r),
            );
        }
    }
    for (c, s) in curves.iter().zip(&smoothed) {
        datasets.push(
            Dataset::default()
                .name(c.name.clone())
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(c.color))
                .data(s),
        );
    }
    let label = |v: f64| Span::styled(format!("{v:.0}"), ctx.theme.dim);
    let value = |v: f64| Span::styled(format!("{v:.3}"), ctx.theme.dim);
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([label(x0), label(x1)])
                .style(ctx.theme.dim),
        )
        .y_axis(
            Axis::default()
                .bounds(bounds)
                .labels([value(bounds[0]), value(bounds[1])])
                .style(ctx.theme.dim),
        )
        .legend_position(Some(LegendPosition::BottomRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(chart, inner);
}
