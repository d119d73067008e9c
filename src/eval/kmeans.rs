//! k-means as scikit-learn's `KMeans(n_init=10)` runs it: greedy k-means++ seeding with
//! `2 + ln k` local trials, Lloyd iterations until the assignments stop changing or the centres
//! move less than `tol` times the mean feature variance, and the restart of lowest inertia kept.
//!
//! Distances are matrix products on the device the data lives on (GPU when present), in row
//! chunks so the N x K distance matrix never has to exist at once.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    #[error("k-means needs at least one cluster (k = 0)")]
    NoClusters,
    #[error("k-means with k = {k} needs at least {k} samples, got {samples}")]
    TooFewSamples { samples: i64, k: usize },
    #[error("k-means expects an N x D matrix, got a tensor of shape {shape:?}")]
    NotAMatrix { shape: Vec<i64> },
    #[error("k-means input holds NaN or infinite values (did training diverge?)")]
    NonFinite,
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Settings of a k-means run; [`KMeansParams::new`] gives scikit-learn's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub k: usize,
    /// Restarts from fresh k-means++ seeds; the lowest inertia wins.
    pub n_init: usize,
    pub max_iter: usize,
    /// Relative tolerance: convergence when the squared centre shift is at most
    /// `tol * mean(per-feature variance)`.
    pub tol: f64,
    pub seed: u64,
    /// Rows per distance block (bounds memory at `chunk_rows * k` floats).
    pub chunk_rows: i64,
}

impl KMeansParams {
    pub fn new(k: usize, seed: u64) -> KMeansParams {
        KMeansParams {
            k,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed,
            chunk_rows: 1 << 16,
        }
    }
}

/// The kept clustering.
#[derive(Debug)]
pub struct KMeansResult {
    /// Cluster of each row, 0..k.
    pub labels: Vec<i64>,
    /// k x D centres, on the CPU, in the input's coordinates.
    pub centres: Tensor,
    /// Sum of squared distances of the rows to their centres.
    pub inertia: f64,
    /// Lloyd iterations of the kept restart.
    pub iterations: usize,
}

/// Data prepared once for all restarts: centred f32 rows and their squared norms.
pub struct Prepared {
    x: Tensor,
    sq_norms: Tensor,
    mean: Tensor,
    /// Absolute convergence threshold on the squared centre shift.
    tol: f64,
    chunk_rows: i64,
}

impl Prepared {
    /// Checks and centres `x` (centring keeps the `|x|^2 - 2 x.c + |c|^2` expansion precise in
    /// f32, as scikit-learn does).
    pub fn new(x: &Tensor, params: &KMeansParams) -> Result<Prepared, KMeansError> {
        let shape = x.size();
        if shape.len() != 2 {
            return Err(KMeansError::NotAMatrix { shape });
        }
        if params.k == 0 {
            return Err(KMeansError::NoClusters);
        }
        if shape[0] < params.k as i64 {
            return Err(KMeansError::TooFewSamples {
                samples: shape[0],
                k: params.k,
            });
        }
        let x = x.to_kind(Kind::Float);
        if !bool::try_from(x.isfinite().all())? {
            return Err(KMeansError::NonFinite);
        }
        let mean = x.mean_dim(0, true, Kind::Float);
        let x = (&x - &mean).contiguous();
        let variance = f64::try_from(x.var_dim(0, false, false).mean(Kind::Double))?;
        let sq_norms = x.square().sum_dim_intlist(1, false, Kind::Float);
        Ok(Prepared {
            x,
            sq_norms,
            mean,
            tol: params.tol * variance,
            chunk_rows: params.chunk_rows.max(1),
        })
    }

    pub fn rows(&self) -> i64 {
        self.x.size()[0]
    }

    pub fn device(&self) -> Device {
        self.x.device()
    }

    /// Nearest centre of every row and the squared distance to it.
    pub fn assign(&self, centres: &Tensor) -> (Tensor, Tensor) {
        let c_sq = centres.square().sum_dim_intlist(1, false, Kind::Float);
        let minus_two_ct = (centres * -2.0).tr().contiguous();
        let mut labels = Vec::new();
        let mut dists = Vec::new();
        let n = self.rows();
        let mut start = 0;
        while start < n {
            let len = self.chunk_rows.min(n - start);
            let chunk = self.x.narrow(0, start, len);
            // |c|^2 - 2 x.c in one fused product; |x|^2 is added after the minimum.
            let d = c_sq.addmm(&chunk, &minus_two_ct);
            let (m, idx) = d.min_dim(1, false);
            dists.push((m + self.sq_norms.narrow(0, start, len)).clamp_min(0.0));
            labels.push(idx);
            start += len;
        }
        (Tensor::cat(&labels, 0), Tensor::cat(&dists, 0))
    }

    /// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): each new centre is the best of
    /// `2 + ln k` candidates drawn proportionally to the squared distance to the chosen centres.
    pub fn kmeans_plusplus(&self, k: usize, rng: &mut impl Rng) -> Tensor {
        let n = self.rows();
        let device = self.device();
        let trials = 2 + (k as f64).ln() as i64;
        let first = rng.gen_range(0..n);
        let mut chosen = vec![Tensor::from_slice(&[first]).to_device(device)];
        let mut closest = self.sq_dist_to_rows(&chosen[0]).squeeze_dim(0);
        let mut potential = closest.sum(Kind::Double);
        for _ in 1..k {
            let draws: Vec<f64> = (0..trials).map(|_| rng.gen::<f64>()).collect();
            let targets = Tensor::from_slice(&draws).to_device(device) * &potential;
            let cumulative = closest.cumsum(0, Kind::Double);
            let candidates = targets
                .searchsorted(&cumulative, false, false, "left", None::<Tensor>)
                .clamp_max(n - 1);
            let to_candidates = self.sq_dist_to_rows(&candidates).minimum(&closest);
            let potentials = to_candidates.sum_dim_intlist(1, false, Kind::Double);
            let best = potentials.argmin(0, true);
            potential = potentials.index_select(0, &best).squeeze();
            closest = to_candidates.index_select(0, &best).squeeze_dim(0);
            chosen.push(candidates.index_select(0, &best));
        }
        self.x.index_select(0, &Tensor::cat(&chosen, 0))
    }

    /// Squared distances from the rows at `index` to every row: [len(index), N].
    fn sq_dist_to_rows(&self, index: &Tensor) -> Tensor {
        let rows = self.x.index_select(0, index);
        let rows_sq = self.sq_norms.index_select(0, index);
        let mut out = Vec::new();
        let n = self.rows();
        let mut start = 0;
        while start < n {
            let len = self.chunk_rows.min(n - start);
            let d = self
                .sq_norms
                .narrow(0, start, len)
                .unsqueeze(0)
                .addmm(&(&rows * -2.0), &self.x.narrow(0, start, len).tr());
            out.push(d);
            start += len;
        }
        (Tensor::cat(&out, 1) + rows_sq.unsqueeze(1)).clamp_min(0.0)
    }

    /// Lloyd's algorithm from `centres` (as scikit-learn's `_kmeans_single_lloyd`); returns the
    /// final centres, their assignment, inertia and the number of iterations run.
    pub fn lloyd(&self, centres: &Tensor, max_iter: usize) -> Result<Lloyd, KMeansError> {
        let k = centres.size()[0];
        let mut centres = centres.shallow_clone();
        let mut previous: Option<Tensor> = None;
        let mut iterations = 0;
        for _ in 0..max_iter {
            iterations += 1;
            let (labels, dists) = self.assign(&centres);
            let updated = self.update_centres(&labels, &dists, k)?;
            let shift = f64::try_from((&updated - &centres).square().sum(Kind::Double))?;
            centres = updated;
            if previous.as_ref().is_some_and(|p| p.equal(&labels)) {
                break; // strict convergence: the assignment no longer changes
            }
            previous = Some(labels);
            if shift <= self.tol {
                break;
            }
        }
        let (labels, dists) = self.assign(&centres);
        Ok(Lloyd {
            inertia: f64::try_from(dists.sum(Kind::Double))?,
            centres,
            labels,
            iterations,
        })
    }

    /// Means of the assigned rows; an empty cluster takes the row farthest from its centre (taken
    /// from that row's cluster), as scikit-learn relocates empty clusters.
    fn update_centres(
        &self,
        labels: &Tensor,
        dists: &Tensor,
        k: i64,
    ) -> Result<Tensor, KMeansError> {
        let d = self.x.size()[1];
        let sums =
            Tensor::zeros([k, d], (Kind::Float, self.device())).index_add(0, labels, &self.x);
        let counts = labels.bincount(None::<Tensor>, k).to_kind(Kind::Float);
        let counts_host: Vec<f32> = Vec::try_from(counts.to_device(Device::Cpu))?;
        let empty: Vec<i64> = (0..k).filter(|&c| counts_host[c as usize] == 0.0).collect();
        if !empty.is_empty() {
            let (_, far) = dists.topk(empty.len() as i64, 0, true, true);
            let far: Vec<i64> = Vec::try_from(far.to_device(Device::Cpu))?;
            let donors: Vec<i64> = Vec::try_from(
                labels
                    .index_select(0, &Tensor::from_slice(&far).to_device(self.device()))
                    .to_device(Device::Cpu),
            )?;
            for ((&cluster, &row), &donor) in empty.iter().zip(&far).zip(&donors) {
                let point = self.x.get(row);
                let _ = sums.get(donor).g_sub_(&point);
                let _ = counts
                    .get(donor)
                    .g_sub_(&Tensor::from(1f32).to_device(self.device()));
                sums.get(cluster).copy_(&point);
                let _ = counts.get(cluster).fill_(1.0);
            }
        }
        Ok(sums / counts.clamp_min(1.0).unsqueeze(1))
    }
}

/// The outcome of one Lloyd run (in centred coordinates).
pub struct Lloyd {
    pub centres: Tensor,
    pub labels: Tensor,
    pub inertia: f64,
    pub iterations: usize,
}

/// Runs `params.n_init` restarts on the rows of `x` (N x D, any float kind, on any device) and
/// keeps the lowest inertia. `progress(done, total)` is called after each restart.
pub fn kmeans(
    x: &Tensor,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<KMeansResult, KMeansError> {
    let _guard = tch::no_grad_guard();
    let data = Prepared::new(x, params)?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut best: Option<Lloyd> = None;
    let n_init = params.n_init.max(1);
    for restart in 0..n_init {
        let seeds = data.kmeans_plusplus(params.k, &mut rng);
        let run = data.lloyd(&seeds, params.max_iter)?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
        progress(restart + 1, n_init);
    }
    let best = best.expect("at least one restart ran");
    Ok(KMeansResult {
        labels: Vec::try_from(best.labels.to_device(Device::Cpu))?,
        centres: (&best.centres + &data.mean).to_device(Device::Cpu),
        inertia: best.inertia,
        iterations: best.iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics;

    /// `per` points around each of `centres` (rows), Gaussian noise of `sigma`.
    fn blobs(centres: &[Vec<f32>], per: usize, sigma: f64, seed: u64) -> (Tensor, Vec<i64>) {
        tch::manual_seed(seed as i64);
        let d = centres[0].len() as i64;
        let mut parts = Vec::new();
        let mut labels = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            let noise = Tensor::randn([per as i64, d], (Kind::Float, Device::Cpu)) * sigma;
            parts.push(noise + Tensor::from_slice(centre).unsqueeze(0));
            labels.extend(std::iter::repeat_n(c as i64, per));
        }
        (Tensor::cat(&parts, 0), labels)
    }

    fn random_centres(k: usize, d: usize, scale: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..k)
            .map(|_| (0..d).map(|_| rng.gen_range(-scale..scale)).collect())
            .collect()
    }

    #[test]
    fn well_separated_blobs_are_recovered_exactly() {
        let (x, labels) = blobs(&random_centres(6, 8, 20.0, 3), 50, 0.5, 3);
        // Shuffle the rows so cluster ids cannot follow the input order.
        let perm = Tensor::randperm(300, (Kind::Int64, Device::Cpu));
        let x = x.index_select(0, &perm);
        let order: Vec<i64> = Vec::try_from(&perm).unwrap();
        let labels: Vec<i64> = order.iter().map(|&i| labels[i as usize]).collect();
        let r = kmeans(&x, &KMeansParams::new(6, 42), &mut |_, _| {}).unwrap();
        let s = metrics::scores(&labels, &r.labels).unwrap();
        assert_eq!((s.nmi, s.ari, s.acc), (1.0, 1.0, 1.0), "{s:?}");
        assert_eq!(r.centres.size(), [6, 8]);
        // Inertia is about N * D * sigma^2 = 300 * 8 * 0.25.
        assert!((r.inertia / 600.0 - 1.0).abs() < 0.15, "{}", r.inertia);
    }

    #[test]
    fn same_seed_same_result_and_progress_per_restart() {
        let (x, _) = blobs(&random_centres(4, 5, 3.0, 9), 40, 1.0, 9);
        let mut calls = Vec::new();
        let a = kmeans(&x, &KMeansParams::new(4, 1), &mut |d, t| calls.push((d, t))).unwrap();
        let b = kmeans(&x, &KMeansParams::new(4, 1), &mut |_, _| {}).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.inertia, b.inertia);
        assert_eq!(calls, (1..=10).map(|d| (d, 10)).collect::<Vec<_>>());
    }

    #[test]
    fn best_restart_is_no_worse_than_a_single_one() {
        let (x, _) = blobs(&random_centres(8, 4, 2.0, 5), 30, 1.0, 5);
        let mut one = KMeansParams::new(8, 5);
        one.n_init = 1;
        let single = kmeans(&x, &one, &mut |_, _| {}).unwrap();
        let ten = kmeans(&x, &KMeansParams::new(8, 5), &mut |_, _| {}).unwrap();
        assert!(ten.inertia <= single.inertia);
    }

    #[test]
    fn empty_clusters_are_refilled() {
        // Two identical starting centres: one of them gets no points in the first assignment.
        let x = Tensor::from_slice(&[0f32, 0.0, 0.1, 0.0, 10.0, 0.0, 10.1, 0.0]).reshape([4, 2]);
        let data = Prepared::new(&x, &KMeansParams::new(2, 0)).unwrap();
        let start = Tensor::from_slice(&[-4.0f32, 0.0, -4.0, 0.0]).reshape([2, 2]);
        let run = data.lloyd(&start, 300).unwrap();
        let labels: Vec<i64> = Vec::try_from(&run.labels).unwrap();
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[2], labels[3]);
        assert_ne!(labels[0], labels[2]);
        assert!((run.inertia - 0.01).abs() < 1e-5, "{}", run.inertia);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let x = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let err = |x: &Tensor, k| {
            kmeans(x, &KMeansParams::new(k, 0), &mut |_, _| {})
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&x, 4),
            "k-means with k = 4 needs at least 4 samples, got 3"
        );
        assert_eq!(err(&x, 0), "k-means needs at least one cluster (k = 0)");
        assert_eq!(
            err(&Tensor::zeros([3], (Kind::Float, Device::Cpu)), 1),
            "k-means expects an N x D matrix, got a tensor of shape [3]"
        );
        let nan = Tensor::from_slice(&[1f32, f32::NAN, 0.0, 1.0]).reshape([2, 2]);
        assert!(err(&nan, 1).contains("NaN"));
    }

    #[test]
    fn matches_linfa_from_the_same_initial_centres() {
        use linfa::prelude::*;
        use linfa_clustering::{KMeans, KMeansInit};
        use ndarray::Array2;

        // Overlapping blobs, so Lloyd needs many iterations and local optima are possible.
        for (k, d, seed) in [(5usize, 16usize, 1u64), (10, 32, 2), (3, 2, 3)] {
            let (x, _) = blobs(&random_centres(k, d, 3.0, seed), 300, 1.5, seed);
            let n = x.size()[0] as usize;
            let params = KMeansParams::new(k, seed);
            let data = Prepared::new(&x, &params).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let start = data.kmeans_plusplus(k, &mut rng);
            let ours = data.lloyd(&start, 300).unwrap();

            // linfa on the same centred data from the same centres.
            let flat: Vec<f64> = Vec::try_from(data.x.to_kind(Kind::Double).flatten(0, 1)).unwrap();
            let records = Array2::from_shape_vec((n, d), flat).unwrap();
            let init: Vec<f64> = Vec::try_from(start.to_kind(Kind::Double).flatten(0, 1)).unwrap();
            let init = Array2::from_shape_vec((k, d), init).unwrap();
            let model = KMeans::params(k)
                .n_runs(1)
                .max_n_iterations(300)
                .tolerance(1e-8)
                .init_method(KMeansInit::Precomputed(init))
                .fit(&DatasetBase::from(records))
                .unwrap();
            let linfa_centres = Tensor::from_slice(model.centroids().as_slice().unwrap())
                .reshape([k as i64, d as i64])
                .to_kind(Kind::Float);
            let (_, dists) = data.assign(&linfa_centres);
            let linfa_inertia = f64::try_from(dists.sum(Kind::Double)).unwrap();
            let rel = (ours.inertia - linfa_inertia).abs() / linfa_inertia;
            eprintln!(
                "k={k} d={d}: inertia ours {:.3} ({} iterations), linfa {linfa_inertia:.3}",
                ours.inertia, ours.iterations
            );
            assert!(
                rel < 0.005,
                "k={k} d={d}: ours {} linfa {linfa_inertia} ({:.3}%)",
                ours.inertia,
                rel * 100.0
            );
        }
    }
}
