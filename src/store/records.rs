//! The reference-format records of a run (SPEC 2.10): running best clustering scores and one
//! column per 100-epoch mark, written as `records_{experiment}.csv` transposed the way the
//! reference's `pandas.DataFrame(records).T.to_csv()` writes it, and read back from either this
//! file or the per-epoch `metrics.csv`.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{read_metrics, write_atomic, EpochMetrics, RunDir, StoreError};
use crate::config::python_float;
use crate::events::Scores;

/// One column of the records CSV: the epoch, the running best scores, and the scores of that
/// epoch (absent when no evaluation ran before the mark).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordColumn {
    pub epoch: i64,
    pub best: Scores,
    pub current: Option<Scores>,
}

/// Row names of the records CSV, in the reference's order.
pub const RECORD_ROWS: [&str; 13] = [
    "epoch",
    "best_nmi_feature",
    "best_ari_feature",
    "best_acc_feature",
    "best_nmi_backbone",
    "best_ari_backbone",
    "best_acc_backbone",
    "nmi_backbone",
    "ari_backbone",
    "acc_backbone",
    "nmi_feature",
    "ari_feature",
    "acc_feature",
];

/// The record keeping of a run, saved in every checkpoint so a resumed run continues it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunRecords {
    /// Running maxima of each score (0 before any evaluation, as the reference starts).
    pub best: Scores,
    /// Best `max(nmi_backbone, nmi_feature)` so far: the "best" model's score.
    pub best_nmi: f64,
    /// Epoch of the best model, when one was saved.
    pub best_epoch: Option<i64>,
    /// The latest evaluation and its epoch.
    pub last: Option<(i64, Scores)>,
    pub columns: Vec<RecordColumn>,
}

impl RunRecords {
    /// Takes in an evaluation of `epoch`; true when it beats the best NMI so far (save the "best"
    /// model then).
    pub fn observe(&mut self, epoch: i64, scores: Scores) -> bool {
        self.best = self.best.max(&scores);
        self.last = Some((epoch, scores));
        if scores.best_nmi() > self.best_nmi {
            self.best_nmi = scores.best_nmi();
            self.best_epoch = Some(epoch);
            true
        } else {
            false
        }
    }

    /// Appends the column of a 100-epoch mark.
    pub fn mark(&mut self, epoch: i64) {
        let current = self.last.filter(|(e, _)| *e == epoch).map(|(_, s)| s);
        self.columns.retain(|c| c.epoch != epoch);
        self.columns.push(RecordColumn {
            epoch,
            best: self.best,
            current,
        });
    }

    /// Forgets every column after `epoch` (resuming from an older checkpoint).
    pub fn truncate_after(&mut self, epoch: i64) {
        self.columns.retain(|c| c.epoch <= epoch);
    }
}

/// `records_{experiment}.csv`.
pub fn records_file_name(experiment: &str) -> String {
    format!("records_{experiment}.csv")
}

fn cell(v: Option<f64>) -> String {
    v.map(python_float).unwrap_or_default()
}

/// The records CSV text: header `,0,1,...`, then the 13 rows of [`RECORD_ROWS`].
pub fn records_csv(columns: &[RecordColumn]) -> String {
    let mut out = String::new();
    for i in 0..columns.len() {
        out.push_str(&format!(",{i}"));
    }
    out.push('\n');
    for row in RECORD_ROWS {
        out.push_str(row);
        for c in columns {
            let v = if row == "epoch" {
                // The reference's frame is all floats once transposed: epochs print as 100.0.
                Some(c.epoch as f64)
            } else if let Some(score) = row.strip_prefix("best_") {
                c.best.get(score)
            } else {
                c.current.and_then(|s| s.get(row))
            };
            out.push(',');
            out.push_str(&cell(v));
        }
        out.push('\n');
    }
    out
}

/// Writes the records CSV atomically.
pub fn write_records_csv(path: &Path, columns: &[RecordColumn]) -> Result<(), StoreError> {
    write_atomic(path, records_csv(columns).as_bytes())
}

/// Reads a records CSV written by cdw or by the reference implementation.
pub fn read_records_csv(path: &Path) -> Result<Vec<RecordColumn>, StoreError> {
    let text = fs::read_to_string(path).map_err(|source| StoreError::Read {
        path: path.into(),
        source,
    })?;
    parse_records_csv(&text).map_err(|what| StoreError::Corrupt {
        path: path.into(),
        what,
    })
}

fn parse_records_csv(text: &str) -> Result<Vec<RecordColumn>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let width = rdr.headers().map_err(|e| e.to_string())?.len().max(1) - 1;
    let mut rows: std::collections::HashMap<String, Vec<Option<f64>>> =
        std::collections::HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let Some(name) = rec.get(0) else { continue };
        let mut vals = Vec::with_capacity(width);
        for i in 0..width {
            let s = rec.get(i + 1).unwrap_or("").trim();
            vals.push(if s.is_empty() || s.eq_ignore_ascii_case("nan") {
                None
            } else {
                Some(s.parse::<f64>().map_err(|_| {
                    format!("records row `{name}` column {i}: `{s}` is not a number")
                })?)
            });
        }
        rows.insert(name.to_string(), vals);
    }
    for r in RECORD_ROWS {
        if !rows.contains_key(r) {
            return Err(format!(
                "expected a records CSV with rows {}; row `{r}` is missing",
                RECORD_ROWS.join(", ")
            ));
        }
    }
    let get = |row: &str, i: usize| rows[row].get(i).copied().flatten();
    let mut out = Vec::with_capacity(width);
    for i in 0..width {
        let Some(epoch) = get("epoch", i) else {
            return Err(format!("records column {i} has no epoch"));
        };
        let z = |row: &str| get(row, i).unwrap_or(0.0);
        let current = Scores::NAMES
            .iter()
            .all(|r| get(r, i).is_some())
            .then(|| Scores::from_names(z));
        out.push(RecordColumn {
            epoch: epoch as i64,
            best: Scores::from_names(|name| z(&format!("best_{name}"))),
            current,
        });
    }
    Ok(out)
}

/// Everything a records browser shows of a run: per-epoch rows and reference-format columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunHistory {
    pub epochs: Vec<EpochMetrics>,
    pub columns: Vec<RecordColumn>,
}

/// Opens a run's records: its `metrics.csv` and/or `records_<experiment>.csv`, the experiment
/// being the directory's name (either file may be missing, as in a directory of reference
/// records; one of them must be there).
pub fn read_run_history(dir: &RunDir) -> Result<RunHistory, StoreError> {
    let metrics = dir.metrics_path();
    let records = dir.records_path(&dir.experiment());
    let (has_metrics, has_records) = (metrics.is_file(), records.is_file());
    if !has_metrics && !has_records {
        return Err(StoreError::Corrupt {
            path: dir.path.clone(),
            what: format!(
                "expected metrics.csv or {} in the run directory",
                records_file_name(&dir.experiment())
            ),
        });
    }
    Ok(RunHistory {
        epochs: if has_metrics {
            read_metrics(&metrics)?
        } else {
            Vec::new()
        },
        columns: if has_records {
            read_records_csv(&records)?
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(x: f64) -> Scores {
        Scores {
            nmi_backbone: x,
            ari_backbone: x / 2.0,
            acc_backbone: x + 0.1,
            nmi_feature: x - 0.1,
            ari_feature: x / 4.0,
            acc_feature: x,
        }
    }

    #[test]
    fn best_scores_are_running_maxima_and_columns_follow_marks() {
        let mut r = RunRecords::default();
        assert!(r.observe(99, scores(0.5)));
        assert!(!r.observe(100, scores(0.4)));
        r.mark(100);
        assert!(r.observe(200, scores(0.6)));
        r.mark(200);
        assert_eq!(r.best_nmi, 0.6);
        assert_eq!(r.best_epoch, Some(200));
        assert_eq!(r.columns[0].best.nmi_backbone, 0.5);
        assert_eq!(r.columns[0].current, Some(scores(0.4)));
        assert_eq!(r.columns[1].best.acc_backbone, 0.7);
        r.truncate_after(150);
        assert_eq!(r.columns.len(), 1);
    }

    #[test]
    fn csv_has_the_reference_layout_and_reads_back() {
        let cols = vec![
            RecordColumn {
                epoch: 100,
                best: scores(0.5),
                current: Some(scores(0.25)),
            },
            RecordColumn {
                epoch: 200,
                best: scores(0.5),
                current: None,
            },
        ];
        let text = records_csv(&cols);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 14);
        assert_eq!(lines[0], ",0,1");
        assert_eq!(lines[1], "epoch,100.0,200.0");
        assert_eq!(lines[2], "best_nmi_feature,0.4,0.4");
        assert_eq!(lines[8], "nmi_backbone,0.25,");
        assert_eq!(lines[13], "acc_feature,0.25,");
        assert_eq!(parse_records_csv(&text).unwrap(), cols);
    }

    #[test]
    fn reads_a_reference_written_file() {
        // As pandas writes it (epoch as float, full float repr).
        let text = ",0\nepoch,100.0\nbest_nmi_feature,0.711\nbest_ari_feature,0.624\n\
            best_acc_feature,0.788\nbest_nmi_backbone,0.725\nbest_ari_backbone,0.62\n\
            best_acc_backbone,0.8\nnmi_backbone,0.7\nari_backbone,0.6\nacc_backbone,0.79\n\
            nmi_feature,0.70\nari_feature,0.61\nacc_feature,0.77\n";
        let cols = parse_records_csv(text).unwrap();
        assert_eq!(cols.len(), 1);
        assert_eq!(cols[0].epoch, 100);
        assert_eq!(cols[0].best.nmi_feature, 0.711);
        assert_eq!(cols[0].current.unwrap().acc_feature, 0.77);
        let err = parse_records_csv(",0\nepoch,1\n").unwrap_err();
        assert!(err.contains("row `best_nmi_feature` is missing"), "{err}");
    }

    #[test]
    fn run_history_reads_the_records_of_the_directory_s_experiment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir {
            path: tmp.path().join("bs64_lr0.0003_ResNet18"),
        };
        fs::create_dir_all(&dir.path).unwrap();
        let err = read_run_history(&dir).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "expected metrics.csv or records_bs64_lr0.0003_ResNet18.csv in the run directory"
            ),
            "{err}"
        );
        let column = |epoch: i64, x: f64| RecordColumn {
            epoch,
            best: scores(x),
            current: Some(scores(x)),
        };
        // Another experiment's records beside it (a folder of reference records) are not read,
        // whatever order the directory lists them in.
        for name in ["bs128_lr0.0003_ResNet18", "bs256_lr0.0003_ResNet18"] {
            write_records_csv(&dir.path.join(records_file_name(name)), &[column(900, 0.9)])
                .unwrap();
        }
        assert!(read_run_history(&dir).is_err());
        write_records_csv(&dir.records_path(&dir.experiment()), &[column(100, 0.5)]).unwrap();
        let history = read_run_history(&dir).unwrap();
        assert_eq!(history.columns, [column(100, 0.5)]);
        assert!(history.epochs.is_empty());
        fs::write(
            dir.metrics_path(),
            format!(
                "{}\n1,2.0,1.0,3.0,0.1,1.0,10.0\n",
                crate::store::METRICS_HEADER
            ),
        )
        .unwrap();
        let history = read_run_history(&dir).unwrap();
        assert_eq!(history.epochs.len(), 1);
        assert_eq!(history.columns.len(), 1);
    }
}
