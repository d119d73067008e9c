//! Any records CSV as one table of numbers, for the records browser: cdw's `metrics.csv` and
//! `evaluation.csv` (one row per epoch, one column per metric), the reference's transposed
//! `records_<experiment>.csv` (header `,0,1,...`, one row per metric, one column per 100-epoch
//! mark), or any other CSV with a header of names. A run opens as its metrics and evaluations
//! joined on the epoch.
//!
//! Reading never fails on a bad line: the rows that parse are kept and the first bad line is named
//! in [`Table::problem`], so a half-written or hand-edited file still opens.

use std::fs;
use std::path::{Path, PathBuf};

use super::records::records_file_name;
use super::{RunDir, StoreError};

/// A table of numbers: rows along `x` (epochs or marks), one column per metric.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The name of the x column (`epoch`, or `row` when the file has none).
    pub x: String,
    /// The metric names, in the file's order.
    pub columns: Vec<String>,
    /// The x value of each row.
    pub xs: Vec<f64>,
    /// `cells[row][column]`; `None` where the file has no value (empty or `nan`).
    pub cells: Vec<Vec<Option<f64>>>,
    /// The first line that did not parse, as `line N: why` (the rows after it that parse are kept).
    pub problem: Option<String>,
}

/// Which way a metric improves, for the browser's "best" mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Not a score (learning rate, seconds, sample counts).
    Neither,
}

/// How a metric named `name` improves: losses down; NMI, ARI, ACC and throughput up.
pub fn better(name: &str) -> Better {
    let n = name.to_ascii_lowercase();
    if n.contains("loss") {
        Better::Lower
    } else if ["nmi", "ari", "acc", "images_per_sec", "auc", "purity"]
        .iter()
        .any(|k| n.contains(k))
    {
        Better::Higher
    } else {
        Better::Neither
    }
}

impl Table {
    pub fn rows(&self) -> usize {
        self.xs.len()
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn get(&self, row: usize, column: usize) -> Option<f64> {
        self.cells
            .get(row)
            .and_then(|r| r.get(column))
            .copied()
            .flatten()
    }

    /// The `(x, value)` points of a column, rows without a value left out.
    pub fn series(&self, column: usize) -> Vec<(f64, f64)> {
        (0..self.rows())
            .filter_map(|r| self.get(r, column).map(|v| (self.xs[r], v)))
            .collect()
    }

    /// The row of the column's best value (the first of equal ones), by [`better`].
    pub fn best_row(&self, column: usize) -> Option<usize> {
        let want = better(self.columns.get(column)?);
        let mut best: Option<(usize, f64)> = None;
        for r in 0..self.rows() {
            let Some(v) = self.get(r, column) else {
                continue;
            };
            let wins = match (best, want) {
                (_, Better::Neither) => return None,
                (None, _) => true,
                (Some((_, b)), Better::Higher) => v > b,
                (Some((_, b)), Better::Lower) => v < b,
            };
            if wins && v.is_finite() {
                best = Some((r, v));
            }
        }
        best.map(|(r, _)| r)
    }

    /// The last value of a column (its final one).
    pub fn last(&self, column: usize) -> Option<f64> {
        (0..self.rows()).rev().find_map(|r| self.get(r, column))
    }

    /// Parses CSV text: transposed records (header `,0,1,...`) or a header of names.
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = rdr.records();
        let header = match records.next() {
            None => return Err("the file is empty: expected a header line".into()),
            Some(Err(e)) => return Err(format!("line 1: {e}")),
            Some(Ok(h)) => h,
        };
        let header: Vec<String> = header.iter().map(|s| s.trim().to_string()).collect();
        let transposed = header.len() > 1
            && header[0].is_empty()
            && header[1..]
                .iter()
                .enumerate()
                .all(|(i, h)| h.parse::<usize>() == Ok(i));
        let mut lines = Vec::new();
        let mut problem = None;
        for (i, rec) in records.enumerate() {
            let line = i + 2;
            match rec {
                Ok(r) if r.iter().all(|c| c.trim().is_empty()) => {}
                Ok(r) => lines.push((line, r)),
                Err(e) => {
                    problem.get_or_insert(format!("line {line}: {e}"));
                }
            }
        }
        let mut table = if transposed {
            Table::from_transposed(header.len() - 1, &lines, &mut problem)
        } else {
            Table::from_rows(&header, &lines, &mut problem)?
        };
        table.problem = problem;
        Ok(table)
    }

    fn from_rows(
        header: &[String],
        lines: &[(usize, csv::StringRecord)],
        problem: &mut Option<String>,
    ) -> Result<Table, String> {
        if header.iter().any(String::is_empty) {
            return Err(format!(
                "line 1: expected a header of column names, found `{}`",
                header.join(",")
            ));
        }
        let x_col = header.iter().position(|h| h == "epoch");
        let mut t = Table {
            x: x_col.map_or("row", |i| header[i].as_str()).to_string(),
            columns: header
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != x_col)
                .map(|(_, h)| h.clone())
                .collect(),
            ..Table::default()
        };
        for (line, rec) in lines {
            if rec.len() != header.len() {
                problem.get_or_insert(format!(
                    "line {line}: {} fields where the header has {}",
                    rec.len(),
                    header.len()
                ));
                continue;
            }
            let mut row = Vec::with_capacity(t.columns.len());
            let mut x = None;
            let mut bad = None;
            for (i, cell) in rec.iter().enumerate() {
                match number(cell) {
                    Ok(v) if Some(i) == x_col => x = v,
                    Ok(v) => row.push(v),
                    Err(()) => {
                        bad = Some(format!(
                            "`{}` in column {} is not a number",
                            cell, header[i]
                        ));
                        break;
                    }
                }
            }
            if let Some(why) = bad {
                problem.get_or_insert(format!("line {line}: {why}"));
                continue;
            }
            let x = match (x_col, x) {
                (None, _) => (t.xs.len() + 1) as f64,
                (Some(_), Some(x)) => x,
                (Some(_), None) => {
                    problem.get_or_insert(format!("line {line}: no epoch"));
                    continue;
                }
            };
            t.xs.push(x);
            t.cells.push(row);
        }
        Ok(t)
    }

    /// Rows are metrics and columns marks: the table is turned so rows are marks. The `epoch`
    /// row, when there is one, gives each mark's x.
    fn from_transposed(
        width: usize,
        lines: &[(usize, csv::StringRecord)],
        problem: &mut Option<String>,
    ) -> Table {
        let mut names = Vec::new();
        let mut values: Vec<Vec<Option<f64>>> = Vec::new();
        'lines: for (line, rec) in lines {
            let name = rec.get(0).unwrap_or("").trim().to_string();
            if name.is_empty() {
                problem.get_or_insert(format!("line {line}: no row name"));
                continue;
            }
            let mut row = Vec::with_capacity(width);
            for i in 0..width {
                let cell = rec.get(i + 1).unwrap_or("");
                if let Ok(v) = number(cell) {
                    row.push(v);
                } else {
                    problem.get_or_insert(format!(
                        "line {line}: `{cell}` in row {name}, column {i} is not a number"
                    ));
                    continue 'lines;
                }
            }
            names.push(name);
            values.push(row);
        }
        let x_row = names.iter().position(|n| n == "epoch");
        let xs = (0..width)
            .map(|i| {
                x_row
                    .and_then(|r| values[r][i])
                    .unwrap_or((i + 1) as f64 * 100.0)
            })
            .collect();
        let keep: Vec<usize> = (0..names.len()).filter(|&r| Some(r) != x_row).collect();
        Table {
            x: "epoch".into(),
            columns: keep.iter().map(|&r| names[r].clone()).collect(),
            xs,
            cells: (0..width)
                .map(|i| keep.iter().map(|&r| values[r][i]).collect())
                .collect(),
            problem: None,
        }
    }

    /// Reads a CSV file.
    pub fn read(path: &Path) -> Result<Table, StoreError> {
        let text = fs::read_to_string(path).map_err(|source| StoreError::Read {
            path: path.into(),
            source,
        })?;
        Table::parse(&text).map_err(|what| StoreError::Corrupt {
            path: path.into(),
            what,
        })
    }

    /// Both tables on one x axis (rows of either, sorted by x). A column name of `other` that
    /// `self` has too is prefixed with `prefix`.
    pub fn join(self, other: Table, prefix: &str) -> Table {
        let mut xs: Vec<f64> = self.xs.iter().chain(&other.xs).copied().collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut columns = self.columns.clone();
        for c in &other.columns {
            columns.push(if self.columns.contains(c) {
                format!("{prefix}{c}")
            } else {
                c.clone()
            });
        }
        let left = self.columns.len();
        let mut cells = vec![vec![None; columns.len()]; xs.len()];
        let at = |x: f64| xs.binary_search_by(|p| p.total_cmp(&x)).unwrap_or(0);
        for (r, x) in self.xs.iter().enumerate() {
            cells[at(*x)][..left].copy_from_slice(&self.cells[r]);
        }
        for (r, x) in other.xs.iter().enumerate() {
            cells[at(*x)][left..].copy_from_slice(&other.cells[r]);
        }
        Table {
            x: self.x,
            columns,
            xs,
            cells,
            problem: self.problem.or(other.problem),
        }
    }
}

/// A cell: a number, or `None` when empty or `nan`.
fn number(cell: &str) -> Result<Option<f64>, ()> {
    let s = cell.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    s.parse::<f64>().map(Some).map_err(|_| ())
}

/// One table the browser can show, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// What the browser calls it (a file name, or `dataset/experiment` for a run).
    pub name: String,
    /// A CSV file, or a run's folder.
    pub path: PathBuf,
    /// The table, or why it could not be read at all.
    pub table: Result<Table, String>,
}

impl Source {
    /// A CSV file, read.
    pub fn file(path: &Path) -> Source {
        Source {
            name: name_of(path),
            path: path.to_path_buf(),
            table: Table::read(path).map_err(|e| e.to_string()),
        }
    }

    /// A run's records, read ([`read_run_table`]), named `dataset/experiment` after its folder
    /// and the folder above it.
    pub fn run(dir: &Path) -> Source {
        let run = RunDir {
            path: dir.to_path_buf(),
        };
        let dataset = dir.parent().map(name_of).unwrap_or_default();
        Source {
            name: format!("{dataset}/{}", run.experiment()),
            path: dir.to_path_buf(),
            table: read_run_table(&run).map_err(|e| e.to_string()),
        }
    }

    fn is_run(&self) -> bool {
        self.path.is_dir()
    }

    /// The files the table is read from (those of them that exist).
    pub fn files(&self) -> Vec<PathBuf> {
        if self.is_run() {
            run_files(&RunDir {
                path: self.path.clone(),
            })
            .into_iter()
            .filter(|f| f.is_file())
            .collect()
        } else {
            vec![self.path.clone()]
        }
    }

    /// Reads the table again (after its files changed).
    pub fn reload(&mut self) {
        let fresh = if self.is_run() {
            Source::run(&self.path)
        } else {
            Source::file(&self.path)
        };
        self.table = fresh.table;
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

/// A run's record files, in the order [`read_run_table`] prefers them: `metrics.csv`,
/// `evaluation.csv`, `records_<experiment>.csv`.
fn run_files(dir: &RunDir) -> [PathBuf; 3] {
    [
        dir.metrics_path(),
        dir.evaluation_path(),
        dir.records_path(&dir.experiment()),
    ]
}

/// A run's records as one table: `metrics.csv` joined with `evaluation.csv` on the epoch (an
/// evaluation column named like a metrics column gets `eval_` in front), or, for a run with
/// neither (a folder of the reference's records), its `records_<experiment>.csv`.
pub fn read_run_table(dir: &RunDir) -> Result<Table, StoreError> {
    let [metrics, evals, records] = run_files(dir);
    let read = |p: &Path| p.is_file().then(|| Table::read(p)).transpose();
    match (read(&metrics)?, read(&evals)?) {
        (Some(m), Some(e)) => Ok(m.join(e, "eval_")),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) if records.is_file() => Table::read(&records),
        (None, None) => Err(StoreError::Corrupt {
            path: dir.path.clone(),
            what: format!(
                "expected metrics.csv, evaluation.csv or {} in the run directory",
                records_file_name(&dir.experiment())
            ),
        }),
    }
}

/// The entries of folder `path` that `keep` accepts, sorted by path.
fn sorted_entries(path: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, String> {
    let mut found: Vec<PathBuf> = fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| keep(p))
        .collect();
    found.sort();
    Ok(found)
}

/// What `cdw records PATH` opens: a CSV file as itself; a run folder (one with `metrics.csv`,
/// `evaluation.csv` or its own records CSV) as its joined table; any other folder as each of its
/// CSV files, by name, or, with none, as the runs below it (a dataset's folder). Unreadable
/// files are kept as sources with their error, so the browser can say what is wrong with each.
pub fn open_path(path: &Path) -> Result<Vec<Source>, String> {
    if path.is_file() {
        return Ok(vec![Source::file(path)]);
    }
    if !path.is_dir() {
        return Err(format!(
            "{}: no such file or folder (give a CSV file, a run folder or a folder of CSV files)",
            path.display()
        ));
    }
    let run = RunDir {
        path: path.to_path_buf(),
    };
    if run_files(&run).iter().any(|f| f.is_file()) {
        return Ok(vec![Source::run(path)]);
    }
    let files = sorted_entries(path, |p| {
        p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv"))
    })?;
    if !files.is_empty() {
        return Ok(files.iter().map(|p| Source::file(p)).collect());
    }
    // A dataset's folder (or the records root): the runs below it.
    let mut runs = Vec::new();
    for d in sorted_entries(path, Path::is_dir)? {
        if let Ok(found) = open_path(&d) {
            runs.extend(found.into_iter().filter(Source::is_run));
        }
    }
    if runs.is_empty() {
        return Err(format!(
            "{}: no CSV files and no run's records in this folder",
            path.display()
        ));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_epoch_csv_reads_as_rows_of_epochs() {
        let t = Table::parse(
            "epoch,instance_loss,total_loss,lr\n1,4.5,8.25,0.0003\n2,4.25,,0.0003\n3,nan,7.5,0.0003\n",
        )
        .unwrap();
        assert_eq!(t.x, "epoch");
        assert_eq!(t.columns, ["instance_loss", "total_loss", "lr"]);
        assert_eq!(t.xs, [1.0, 2.0, 3.0]);
        assert_eq!(t.get(1, 1), None);
        assert_eq!(t.get(2, 0), None);
        assert_eq!(t.series(1), [(1.0, 8.25), (3.0, 7.5)]);
        assert_eq!(t.best_row(1), Some(2), "a loss is best when lowest");
        assert_eq!(t.best_row(0), Some(1));
        assert_eq!(t.best_row(2), None, "the learning rate has no best");
        assert_eq!(t.last(0), Some(4.25));
        assert_eq!(t.problem, None);
    }

    #[test]
    fn the_reference_s_transposed_records_turn_into_rows_of_marks() {
        let t = Table::parse(
            ",0,1,2\nepoch,100.0,200.0,300.0\nbest_nmi_feature,0.5,0.6,0.6\nnmi_feature,0.5,0.6,\n",
        )
        .unwrap();
        assert_eq!(t.x, "epoch");
        assert_eq!(t.columns, ["best_nmi_feature", "nmi_feature"]);
        assert_eq!(t.xs, [100.0, 200.0, 300.0]);
        assert_eq!(t.cells[2], [Some(0.6), None]);
        assert_eq!(t.best_row(0), Some(1), "the first of equal best values");
    }

    #[test]
    fn a_malformed_file_keeps_the_rows_that_parse_and_names_the_first_bad_line() {
        let t = Table::parse("epoch,nmi\n1,0.1\n2,zero\n3\n4,0.4\n").unwrap();
        assert_eq!(t.xs, [1.0, 4.0]);
        assert_eq!(
            t.problem.as_deref(),
            Some("line 3: `zero` in column nmi is not a number")
        );
        let t = Table::parse("epoch,nmi\n1,0.1\n3\n").unwrap();
        assert_eq!(
            t.problem.as_deref(),
            Some("line 3: 1 fields where the header has 2")
        );
        assert!(Table::parse("").unwrap_err().contains("empty"));
        let t = Table::parse("a,b\n1,2\n3,4\n").unwrap();
        assert_eq!((t.x.as_str(), t.xs.as_slice()), ("row", &[1.0, 2.0][..]));
    }

    #[test]
    fn joining_puts_both_files_on_one_epoch_axis() {
        let m = Table::parse("epoch,total_loss,seconds\n1,8.0,10\n2,7.0,10\n3,6.0,10\n").unwrap();
        let e = Table::parse("epoch,nmi_feature,seconds\n2,0.25,1.5\n4,0.5,1.5\n").unwrap();
        let t = m.join(e, "eval_");
        assert_eq!(
            t.columns,
            ["total_loss", "seconds", "nmi_feature", "eval_seconds"]
        );
        assert_eq!(t.xs, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.cells[1], [Some(7.0), Some(10.0), Some(0.25), Some(1.5)]);
        assert_eq!(t.cells[3], [None, None, Some(0.5), Some(1.5)]);
    }

    #[test]
    fn paths_open_as_files_runs_or_folders_of_csv_files() {
        let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs");
        let run = open_path(&runs.join("cifar10/bs128_lr0.0003_ResNet34")).unwrap();
        assert_eq!(run.len(), 1);
        assert_eq!(run[0].name, "cifar10/bs128_lr0.0003_ResNet34");
        let t = run[0].table.as_ref().unwrap();
        assert!(t.column("total_loss").is_some() && t.column("best_acc_feature").is_some());
        assert!(t.column("eval_seconds").is_some());
        // The reference's folder: only its records CSV.
        let reference = open_path(&runs.join("cifar10/reference_CD")).unwrap();
        let t = reference[0].table.as_ref().unwrap();
        assert_eq!(t.rows(), 10);
        assert_eq!(t.xs[9], 1000.0);
        // A plain folder of CSV files, one source each, sorted; a bad one says why.
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("b.csv"), "epoch,nmi\n1,0.5\n").unwrap();
        fs::write(tmp.path().join("a.csv"), "").unwrap();
        fs::write(tmp.path().join("notes.txt"), "x").unwrap();
        let s = open_path(tmp.path()).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a.csv", "b.csv"]
        );
        assert!(s[0].table.as_ref().unwrap_err().contains("empty"));
        let err = open_path(&tmp.path().join("missing")).unwrap_err();
        assert!(err.contains("no such file or folder"), "{err}");
        // A dataset's folder opens every run below it.
        let shapes = open_path(&runs.join("shapes")).unwrap();
        assert!(shapes.len() >= 3, "{shapes:?}");
        assert!(shapes.iter().all(|s| s.name.starts_with("shapes/")));
        let err = open_path(&tmp.path().join("missing")).unwrap_err();
        assert!(err.contains("no such file or folder"), "{err}");
    }
}
