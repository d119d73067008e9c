//! `cdw runs`: the workbench's Runs table without a terminal UI, for scripts (`--json`) and for
//! people without a TTY.

use std::time::SystemTime;

use super::{Failure, RunsArgs};
use crate::store::runs::{list_runs, RunSummary};

pub fn run(args: &RunsArgs) -> Result<(), Failure> {
    let runs = list_runs(&args.roots.records, SystemTime::now());
    if args.json {
        let text = serde_json::to_string_pretty(&runs).map_err(Failure::runtime)?;
        println!("{text}");
        return Ok(());
    }
    if runs.is_empty() {
        println!(
            "no runs under {} (start one with `cdw train --dataset shapes`)",
            args.roots.records.display()
        );
        return Ok(());
    }
    print!("{}", table(&runs, SystemTime::now()));
    Ok(())
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"))
}

/// The runs as aligned text columns.
pub fn table(runs: &[RunSummary], now: SystemTime) -> String {
    let header = [
        "STATE",
        "DATASET",
        "EXPERIMENT",
        "METHOD",
        "EPOCH",
        "NMI_F",
        "NMI_H",
        "IMG/S",
        "UPDATED",
    ];
    let rows: Vec<[String; 9]> = runs
        .iter()
        .map(|r| {
            let age = now.duration_since(r.modified).unwrap_or_default().as_secs();
            [
                r.shown.name().to_string(),
                r.dataset.clone(),
                r.experiment.clone(),
                if r.method.is_empty() {
                    "-".into()
                } else {
                    r.method.clone()
                },
                if r.epochs > 0 {
                    format!("{}/{}", r.epoch, r.epochs)
                } else {
                    r.epoch.to_string()
                },
                score(r.best_nmi_feature),
                score(r.best_nmi_backbone),
                r.images_per_sec.map_or("-".into(), |v| format!("{v:.0}")),
                match age {
                    0..=59 => format!("{age}s ago"),
                    60..=3599 => format!("{}m ago", age / 60),
                    3600..=86_399 => format!("{}h ago", age / 3600),
                    _ => format!("{}d ago", age / 86_400),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    for r in runs.iter().filter(|r| r.error.is_some()) {
        out.push_str(&format!(
            "{}: {}\n",
            r.name(),
            r.error.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// `cdw records PATH... --print`: every table as aligned text, each column's best value marked
/// with `*`, a bad line named under its table. A path that does not open is an error (exit 2).
pub fn print_records(paths: &[std::path::PathBuf]) -> Result<(), Failure> {
    for path in paths {
        let sources = crate::store::table::open_path(path).map_err(Failure::usage)?;
        for s in sources {
            println!("# {}", s.name);
            match &s.table {
                Ok(t) => print!("{}", records_text(t)),
                Err(e) => println!("error: {e}"),
            }
            println!();
        }
    }
    Ok(())
}

/// A table as aligned text: the x column, then every metric; `*` after each column's best.
pub fn records_text(t: &crate::store::table::Table) -> String {
    let best: Vec<Option<usize>> = (0..t.columns.len()).map(|c| t.best_row(c)).collect();
    let mut rows: Vec<Vec<String>> = vec![std::iter::once(t.x.clone())
        .chain(t.columns.iter().cloned())
        .collect()];
    for r in 0..t.rows() {
        let mut row = vec![format!("{}", t.xs[r])];
        for (c, b) in best.iter().enumerate() {
            let mark = if *b == Some(r) { "*" } else { "" };
            row.push(
                t.get(r, c)
                    .map_or_else(|| "-".into(), |v| format!("{v}{mark}")),
            );
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..=t.columns.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if let Some(p) = &t.problem {
        out.push_str(&format!("skipped {p}\n"));
    }
    out
}
