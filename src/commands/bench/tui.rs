//! `cdw bench tui`: how long the workbench takes to draw its dashboard over a long run (1000
//! epochs, 100,000 steps, an evaluation after each epoch), with a new step before every frame,
//! and its Compare screen with four 1000-epoch runs overlaid, at 80x24 and 200x60 (or the sizes
//! asked for): median and 99th percentile over the frames. The goal is under 5 ms a frame. Also
//! the time the Records screen takes to open and first draw a 10,000-row CSV and a 1000-epoch run
//! (goal: well under a second). Idle CPU and terminal bytes of a real UI following a real
//! training are measured by `scripts/bench_tui_idle.sh`.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::load_average;
use crate::commands::Failure;
use crate::tui::bench::{
    compare_frame_times, frame_times, records_open_time, write_big_csv, write_runs, EPOCHS,
    STEPS_PER_EPOCH,
};

/// Rows of the CSV the Records screen opens, and runs the Compare screen overlays.
const CSV_ROWS: usize = 10_000;
const COMPARED_RUNS: usize = 4;

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Terminal sizes, WIDTHxHEIGHT, comma-separated [default: 80x24,200x60].
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub size: Vec<(u16, u16)>,
    /// Frames timed at each size.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames: u32,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}`: expected WIDTHxHEIGHT with each from 40 to 1000, e.g. 80x24");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u16 = w.trim().parse().map_err(|_| bad())?;
    let h: u16 = h.trim().parse().map_err(|_| bad())?;
    if !(40..=1000).contains(&w) || !(12..=1000).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

#[derive(Debug, Serialize)]
struct SizeResult {
    width: u16,
    height: u16,
    frames: usize,
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    epochs: i64,
    steps: i64,
    load_average: Option<[f64; 3]>,
    /// The dashboard's frame times.
    sizes: Vec<SizeResult>,
    /// The Compare screen's, with `compared_runs` runs of `epochs` epochs overlaid.
    compared_runs: usize,
    compare: Vec<SizeResult>,
    /// Open and first draw in the Records screen, at the first size.
    records: RecordsResult,
}

#[derive(Debug, Serialize)]
struct RecordsResult {
    csv_rows: usize,
    csv_ms: f64,
    run_epochs: i64,
    run_ms: f64,
}

fn size_result(width: u16, height: u16, mut t: Vec<Duration>) -> SizeResult {
    t.sort();
    SizeResult {
        width,
        height,
        frames: t.len(),
        median_ms: quantile_ms(&t, 0.5),
        p99_ms: quantile_ms(&t, 0.99),
        max_ms: quantile_ms(&t, 1.0),
    }
}

/// The Records and Compare measures over files written to a temporary folder (removed after).
fn measure_files(
    sizes: &[(u16, u16)],
    frames: usize,
) -> Result<(Vec<SizeResult>, RecordsResult), String> {
    let dir = std::env::temp_dir().join(format!("cdw-bench-tui-{}", std::process::id()));
    let result = (|| {
        let io =
            |e: std::io::Error| format!("writing the benchmark's runs in {}: {e}", dir.display());
        let runs = write_runs(&dir, COMPARED_RUNS, EPOCHS).map_err(io)?;
        let csv = dir.join("records.csv");
        write_big_csv(&csv, CSV_ROWS).map_err(io)?;
        let (w, h) = sizes.first().copied().unwrap_or((80, 24));
        let records = RecordsResult {
            csv_rows: CSV_ROWS,
            csv_ms: records_open_time(&csv, w, h)?.as_secs_f64() * 1000.0,
            run_epochs: EPOCHS,
            run_ms: records_open_time(&runs[0], w, h)?.as_secs_f64() * 1000.0,
        };
        let compare = sizes
            .iter()
            .map(|&(w, h)| size_result(w, h, compare_frame_times(&runs, w, h, frames)))
            .collect();
        Ok((compare, records))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The `q`-quantile of sorted durations, in ms (nearest rank).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(args: &TuiArgs) -> Result<(), Failure> {
    let sizes = if args.size.is_empty() {
        vec![(80, 24), (200, 60)]
    } else {
        args.size.clone()
    };
    let frames = args.frames as usize;
    let (compare, records) = measure_files(&sizes, frames).map_err(Failure::runtime)?;
    let report = Report {
        epochs: EPOCHS,
        steps: EPOCHS * STEPS_PER_EPOCH,
        load_average: load_average(),
        sizes: sizes
            .iter()
            .map(|&(w, h)| size_result(w, h, frame_times(w, h, frames)))
            .collect(),
        compared_runs: COMPARED_RUNS,
        compare,
        records,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Failure::runtime)?
        );
        return Ok(());
    }
    println!(
        "dashboard frame time, {} epochs / {} steps of history, a new step each frame",
        report.epochs, report.steps
    );
    print_sizes(&report.sizes);
    println!(
        "compare frame time, {} runs of {} epochs overlaid, the metric changed each frame",
        report.compared_runs, report.epochs
    );
    print_sizes(&report.compare);
    let r = &report.records;
    println!(
        "records: open and first draw of a {}-row CSV {:.1} ms, of a {}-epoch run {:.1} ms",
        r.csv_rows, r.csv_ms, r.run_epochs, r.run_ms
    );
    Ok(())
}

fn print_sizes(sizes: &[SizeResult]) {
    println!(
        "{:>9}  {:>6}  {:>9}  {:>9}  {:>9}",
        "size", "frames", "median", "p99", "max"
    );
    for s in sizes {
        println!(
            "{:>9}  {:>6}  {:>6.2} ms  {:>6.2} ms  {:>6.2} ms",
            format!("{}x{}", s.width, s.height),
            s.frames,
            s.median_ms,
            s.p99_ms,
            s.max_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(parse_size("80x24"), Ok((80, 24)));
        assert_eq!(parse_size("200X60"), Ok((200, 60)));
        assert_eq!(
            parse_size("10x5").unwrap_err(),
            "`10x5`: expected WIDTHxHEIGHT with each from 40 to 1000, e.g. 80x24"
        );
        assert!(parse_size("80").is_err());
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let t: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&t, 0.5), 100.0);
        assert_eq!(quantile_ms(&t, 0.99), 198.0);
        assert_eq!(quantile_ms(&t, 1.0), 200.0);
    }
}
