//! Clustering metrics of SPEC 2.6, computed as scikit-learn computes them: NMI with arithmetic
//! normalisation, the adjusted Rand index, and clustering accuracy with the optimal one-to-one
//! cluster-to-class assignment (Hungarian algorithm).

use std::collections::BTreeMap;

use crate::events::SpaceScores;

/// Why metrics could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("cannot score an empty clustering (0 samples)")]
    Empty,
    #[error(
        "labels and cluster assignments differ in length: {labels} labels, {clusters} assignments"
    )]
    LengthMismatch { labels: usize, clusters: usize },
}

/// The three metrics of `clusters` against `labels`.
pub fn scores(labels: &[i64], clusters: &[i64]) -> Result<SpaceScores, MetricsError> {
    let table = Contingency::new(labels, clusters)?;
    Ok(SpaceScores {
        nmi: table.nmi(),
        ari: table.ari(),
        acc: table.acc(),
    })
}

/// Normalised mutual information (arithmetic mean of the two entropies as the normaliser).
pub fn nmi(labels: &[i64], clusters: &[i64]) -> Result<f64, MetricsError> {
    Ok(Contingency::new(labels, clusters)?.nmi())
}

/// Adjusted Rand index.
pub fn ari(labels: &[i64], clusters: &[i64]) -> Result<f64, MetricsError> {
    Ok(Contingency::new(labels, clusters)?.ari())
}

/// Clustering accuracy: matched samples under the best one-to-one cluster-to-class map, over N.
pub fn acc(labels: &[i64], clusters: &[i64]) -> Result<f64, MetricsError> {
    Ok(Contingency::new(labels, clusters)?.acc())
}

/// The classes x clusters count table, with the distinct values renumbered 0.. in sorted order.
#[derive(Debug, Clone)]
struct Contingency {
    n: u64,
    /// counts[class][cluster]
    counts: Vec<Vec<u64>>,
    class_sizes: Vec<u64>,
    cluster_sizes: Vec<u64>,
}

impl Contingency {
    fn new(labels: &[i64], clusters: &[i64]) -> Result<Contingency, MetricsError> {
        if labels.len() != clusters.len() {
            return Err(MetricsError::LengthMismatch {
                labels: labels.len(),
                clusters: clusters.len(),
            });
        }
        if labels.is_empty() {
            return Err(MetricsError::Empty);
        }
        let index = |values: &[i64]| -> BTreeMap<i64, usize> {
            let mut m: BTreeMap<i64, usize> = values.iter().map(|&v| (v, 0)).collect();
            for (i, v) in m.values_mut().enumerate() {
                *v = i;
            }
            m
        };
        let (ci, ki) = (index(labels), index(clusters));
        let mut counts = vec![vec![0u64; ki.len()]; ci.len()];
        for (l, c) in labels.iter().zip(clusters) {
            counts[ci[l]][ki[c]] += 1;
        }
        let class_sizes = counts.iter().map(|r| r.iter().sum()).collect();
        let cluster_sizes = (0..ki.len())
            .map(|j| counts.iter().map(|r| r[j]).sum())
            .collect();
        Ok(Contingency {
            n: labels.len() as u64,
            counts,
            class_sizes,
            cluster_sizes,
        })
    }

    /// Mutual information in nats, term by term as scikit-learn's `mutual_info_score`.
    fn mutual_information(&self) -> f64 {
        if self.class_sizes.len() == 1 || self.cluster_sizes.len() == 1 {
            return 0.0;
        }
        let n = self.n as f64;
        let log_n = n.ln();
        let mut mi = 0.0;
        for (i, row) in self.counts.iter().enumerate() {
            for (j, &nij) in row.iter().enumerate() {
                if nij == 0 {
                    continue;
                }
                let nij = nij as f64;
                let outer = self.class_sizes[i] as f64 * self.cluster_sizes[j] as f64;
                let p = nij / n;
                let term = p * (nij.ln() - log_n) + p * (-outer.ln() + log_n + log_n);
                // scikit-learn zeroes terms below machine epsilon before summing.
                if term.abs() >= f64::EPSILON {
                    mi += term;
                }
            }
        }
        mi.max(0.0)
    }

    fn nmi(&self) -> f64 {
        let (classes, clusters) = (self.class_sizes.len(), self.cluster_sizes.len());
        // Both labellings constant: a perfect (if trivial) match.
        if classes == 1 && clusters == 1 {
            return 1.0;
        }
        let mi = self.mutual_information();
        if mi == 0.0 {
            return 0.0;
        }
        let normaliser = f64::midpoint(entropy(&self.class_sizes), entropy(&self.cluster_sizes));
        mi / normaliser
    }

    fn ari(&self) -> f64 {
        // Pair confusion matrix as scikit-learn builds it; i128 because tp * tn overflows i64
        // from about 50,000 samples on.
        let n = i128::from(self.n);
        let sum_squares: i128 = self
            .counts
            .iter()
            .flatten()
            .map(|&c| i128::from(c) * i128::from(c))
            .sum();
        let squares = |sizes: &[u64]| sizes.iter().map(|&s| i128::from(s) * i128::from(s)).sum();
        let (class_sq, cluster_sq): (i128, i128) =
            (squares(&self.class_sizes), squares(&self.cluster_sizes));
        let tp = sum_squares - n;
        let fp = cluster_sq - sum_squares;
        let fne = class_sq - sum_squares;
        let tn = n * n - fp - fne - sum_squares;
        if fne == 0 && fp == 0 {
            return 1.0;
        }
        let num = 2.0 * (tp * tn - fne * fp) as f64;
        let den = ((tp + fne) * (fne + tn) + (tp + fp) * (fp + tn)) as f64;
        num / den
    }

    fn acc(&self) -> f64 {
        // Square profit matrix clusters x classes, padded with zeros when the counts differ.
        let size = self.class_sizes.len().max(self.cluster_sizes.len());
        let mut profit = vec![vec![0i64; size]; size];
        for (class, row) in self.counts.iter().enumerate() {
            for (cluster, &c) in row.iter().enumerate() {
                profit[cluster][class] = c as i64;
            }
        }
        let assignment = max_weight_assignment(&profit);
        let matched: i64 = assignment
            .iter()
            .enumerate()
            .map(|(row, &col)| profit[row][col])
            .sum();
        matched as f64 / self.n as f64
    }
}

/// Shannon entropy (nats) of a distribution given by counts, as scikit-learn's `entropy`.
fn entropy(sizes: &[u64]) -> f64 {
    let sizes: Vec<f64> = sizes
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| s as f64)
        .collect();
    if sizes.len() <= 1 {
        return 0.0;
    }
    let total: f64 = sizes.iter().sum();
    let log_total = total.ln();
    -sizes
        .iter()
        .map(|&s| (s / total) * (s.ln() - log_total))
        .sum::<f64>()
}

/// Hungarian algorithm (shortest augmenting paths with potentials, O(n^3)) on a square matrix:
/// returns, for each row, the column assigned to it so that the total weight is maximal.
pub fn max_weight_assignment(weights: &[Vec<i64>]) -> Vec<usize> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    // Minimise cost = -weight. Rows and columns are 1-based inside; 0 is the virtual start.
    let cost = |i: usize, j: usize| -weights[i - 1][j - 1];
    let mut u = vec![0i64; n + 1];
    let mut v = vec![0i64; n + 1];
    // col_owner[j]: the row matched to column j (0 = none).
    let mut col_owner = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        col_owner[0] = row;
        let mut j0 = 0usize;
        let mut minv = vec![i64::MAX; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = col_owner[j0];
            let mut delta = i64::MAX;
            let mut j1 = 0usize;
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let reduced = cost(i0, j) - u[i0] - v[j];
                if reduced < minv[j] {
                    minv[j] = reduced;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[col_owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if col_owner[j0] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the start.
        loop {
            let j1 = way[j0];
            col_owner[j0] = col_owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0usize; n];
    for j in 1..=n {
        assignment[col_owner[j] - 1] = j - 1;
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[derive(serde::Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        labels: Vec<i64>,
        clusters: Vec<i64>,
        nmi: f64,
        ari: f64,
        acc: f64,
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference/cluster_metrics.json"
    );

    #[test]
    fn fixture_cases_match_to_1e_9() {
        let text = std::fs::read_to_string(FIXTURE)
            .expect("tests/fixtures/reference/cluster_metrics.json");
        let fixture: Fixture = serde_json::from_str(&text).unwrap();
        assert_eq!(fixture.cases.len(), 5);
        for case in &fixture.cases {
            let s = scores(&case.labels, &case.clusters).unwrap();
            assert!(
                (s.nmi - case.nmi).abs() < 1e-9,
                "{} nmi {} vs {}",
                case.name,
                s.nmi,
                case.nmi
            );
            assert!(
                (s.ari - case.ari).abs() < 1e-9,
                "{} ari {} vs {}",
                case.name,
                s.ari,
                case.ari
            );
            assert!(
                (s.acc - case.acc).abs() < 1e-9,
                "{} acc {} vs {}",
                case.name,
                s.acc,
                case.acc
            );
        }
    }

    #[test]
    fn one_cluster_scores_zero_nmi_and_ari() {
        let labels = [0, 0, 1, 1, 2, 2];
        let s = scores(&labels, &[5; 6]).unwrap();
        assert_eq!(s.nmi, 0.0);
        assert_eq!(s.ari, 0.0);
        assert!((s.acc - 1.0 / 3.0).abs() < 1e-12);
        // One class and one cluster: both labellings constant, a perfect match.
        let s = scores(&[3; 4], &[1; 4]).unwrap();
        assert_eq!((s.nmi, s.ari, s.acc), (1.0, 1.0, 1.0));
    }

    #[test]
    fn more_clusters_than_classes() {
        // Each class split in two clusters: only one cluster per class can be matched.
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        let clusters = [0, 0, 1, 1, 2, 2, 3, 3];
        let s = scores(&labels, &clusters).unwrap();
        assert_eq!(s.acc, 0.5);
        // scikit-learn 1.9.1 gives NMI 0.666666666666667 (= 2 ln2 / (ln2 + 2 ln2)) and
        // ARI 0.36363636363636365 (= 4/11), in both directions.
        assert!((s.nmi - 2.0 / 3.0).abs() < 1e-12, "{}", s.nmi);
        assert!((s.ari - 4.0 / 11.0).abs() < 1e-12, "{}", s.ari);
        // More classes than clusters: the extra classes go unmatched.
        let s = scores(&clusters, &labels).unwrap();
        assert_eq!(s.acc, 0.5);
        assert!((s.nmi - 2.0 / 3.0).abs() < 1e-12 && (s.ari - 4.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn empty_and_mismatched_input_are_errors() {
        assert_eq!(scores(&[], &[]).unwrap_err(), MetricsError::Empty);
        assert_eq!(
            scores(&[1, 2], &[1]).unwrap_err().to_string(),
            "labels and cluster assignments differ in length: 2 labels, 1 assignments"
        );
        assert_eq!(
            MetricsError::Empty.to_string(),
            "cannot score an empty clustering (0 samples)"
        );
    }

    #[test]
    fn ari_does_not_overflow_on_large_sets() {
        // 60,000 samples, 10 balanced classes, perfectly clustered (permuted ids).
        let labels: Vec<i64> = (0..60_000).map(|i| i % 10).collect();
        let clusters: Vec<i64> = labels.iter().map(|l| (l * 7 + 3) % 10).collect();
        let s = scores(&labels, &clusters).unwrap();
        assert_eq!((s.ari, s.acc), (1.0, 1.0));
        assert!((s.nmi - 1.0).abs() < 1e-12);
    }

    fn brute_force_best(weights: &[Vec<i64>]) -> i64 {
        fn go(w: &[Vec<i64>], row: usize, used: &mut Vec<bool>) -> i64 {
            if row == w.len() {
                return 0;
            }
            let mut best = i64::MIN;
            for c in 0..w.len() {
                if !used[c] {
                    used[c] = true;
                    best = best.max(w[row][c] + go(w, row + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(weights, 0, &mut vec![false; weights.len()])
    }

    #[test]
    fn hungarian_equals_brute_force_on_random_matrices() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for trial in 0..200 {
            let n = 1 + trial % 7;
            let w: Vec<Vec<i64>> = (0..n)
                .map(|_| (0..n).map(|_| rng.gen_range(0..50)).collect())
                .collect();
            let a = max_weight_assignment(&w);
            let mut cols = a.clone();
            cols.sort_unstable();
            assert_eq!(cols, (0..n).collect::<Vec<_>>(), "not a permutation");
            let total: i64 = a.iter().enumerate().map(|(r, &c)| w[r][c]).sum();
            assert_eq!(total, brute_force_best(&w), "{w:?}");
        }
    }
}
