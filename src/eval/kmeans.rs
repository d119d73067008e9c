//! k-means as scikit-learn's `KMeans(n_init=10)` runs it: greedy k-means++ seeding with
//! `2 + ln k` local trials, Lloyd iterations until the assignments stop changing or the centres
//! move less than `tol` times the mean feature variance, and the restart of lowest inertia kept.
//!
//! Distances are matrix products on the device the data lives on (GPU when present), in row
//! blocks so no large distance matrix has to exist at once. The restarts run side by side: one
//! product per block serves all of them, which reads the data once per iteration instead of once
//! per restart and iteration.

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
    /// Largest distance (or one-hot) block computed at once, in elements; bounds memory.
    pub max_block: i64,
}

impl KMeansParams {
    pub fn new(k: usize, seed: u64) -> KMeansParams {
        KMeansParams {
            k,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed,
            max_block: 1 << 24,
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

/// Above this k the centre sums use one `index_add` per restart instead of a one-hot product
/// (whose cost grows with k).
const ONE_HOT_MAX_K: i64 = 64;

/// Data prepared once for all restarts: centred f32 rows and their squared norms.
pub struct Prepared {
    x: Tensor,
    sq_norms: Tensor,
    mean: Tensor,
    /// Absolute convergence threshold on the squared centre shift.
    tol: f64,
    max_block: i64,
}

/// The outcome of one restart's Lloyd run (centred coordinates).
#[derive(Debug)]
pub struct Lloyd {
    pub centres: Tensor,
    pub labels: Tensor,
    pub inertia: f64,
    pub iterations: usize,
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
            max_block: params.max_block.max(1),
        })
    }

    pub fn rows(&self) -> i64 {
        self.x.size()[0]
    }

    pub fn device(&self) -> Device {
        self.x.device()
    }

    /// Row blocks `(start, len)` such that `len * width` stays within the block size.
    fn blocks(&self, width: i64) -> impl Iterator<Item = (i64, i64)> {
        let n = self.rows();
        let step = (self.max_block / width.max(1)).max(1);
        (0..n)
            .step_by(step as usize)
            .map(move |s| (s, step.min(n - s)))
    }

    /// For R sets of K centres `[R, K, D]`: the nearest centre of every row in each set and the
    /// squared distance to it, both `[R, N]`. All sets share one matrix product per row block.
    pub fn assign(&self, centres: &Tensor) -> (Tensor, Tensor) {
        let (r, k) = (centres.size()[0], centres.size()[1]);
        let flat = centres.reshape([r * k, -1]);
        let c_sq = flat.square().sum_dim_intlist(1, false, Kind::Float);
        let minus_two_ct = (&flat * -2.0).tr().contiguous();
        let mut labels = Vec::new();
        let mut dists = Vec::new();
        for (start, len) in self.blocks(r * k) {
            // |c|^2 - 2 x.c in one fused product; |x|^2 is added after the minimum.
            let d = c_sq.addmm(&self.x.narrow(0, start, len), &minus_two_ct);
            let (m, idx) = d.view([len, r, k]).min_dim(2, false);
            let x_sq = self.sq_norms.narrow(0, start, len).unsqueeze(1);
            dists.push((m + x_sq).clamp_min(0.0));
            labels.push(idx);
        }
        let cat = |v: Vec<Tensor>| Tensor::cat(&v, 0).tr().contiguous();
        (cat(labels), cat(dists))
    }

    /// Sums `[R * K, D]` and counts `[R * K]` of the rows assigned to each centre.
    fn centre_sums(&self, labels: &Tensor, k: i64) -> (Tensor, Tensor) {
        let r = labels.size()[0];
        let d = self.x.size()[1];
        let opts = (Kind::Float, self.device());
        let offsets = Tensor::arange(r, (Kind::Int64, self.device())).unsqueeze(1) * k;
        let global = labels + offsets;
        let mut sums = Tensor::zeros([r * k, d], opts);
        let mut counts = Tensor::zeros([r * k], opts);
        if k <= ONE_HOT_MAX_K {
            // One product for all restarts: one-hot(assignments)^T x rows.
            let columns = global.tr();
            for (start, len) in self.blocks(r * k) {
                let one_hot = Tensor::zeros([len, r * k], opts).scatter_value(
                    1,
                    &columns.narrow(0, start, len),
                    1.0,
                );
                sums += one_hot.tr().mm(&self.x.narrow(0, start, len));
                counts += one_hot.sum_dim_intlist(0, false, Kind::Float);
            }
        } else {
            for i in 0..r {
                let g = global.get(i);
                let _ = sums.index_add_(0, &g, &self.x);
                counts += g.bincount(None::<Tensor>, r * k).to_kind(Kind::Float);
            }
        }
        (sums, counts)
    }

    /// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`) for `restarts` independent seedings
    /// at once: each new centre is the best of `2 + ln k` candidates drawn proportionally to the
    /// squared distance to the centres chosen so far. Returns `[restarts, k, D]`.
    pub fn kmeans_plusplus(&self, k: usize, restarts: usize, rng: &mut impl Rng) -> Tensor {
        let n = self.rows();
        let r = restarts as i64;
        let device = self.device();
        let trials = 2 + (k as f64).ln() as i64;
        let first: Vec<i64> = (0..r).map(|_| rng.gen_range(0..n)).collect();
        let mut chosen = vec![Tensor::from_slice(&first).to_device(device).unsqueeze(1)];
        let mut closest = self.sq_dist_to_rows(&chosen[0].squeeze_dim(1)); // [R, N]
        let mut potential = closest.sum_dim_intlist(1, true, Kind::Double); // [R, 1]
        for _ in 1..k {
            let draws: Vec<f64> = (0..r * trials).map(|_| rng.gen::<f64>()).collect();
            let targets = Tensor::from_slice(&draws)
                .to_device(device)
                .view([r, trials])
                * &potential;
            let cumulative = closest.cumsum(1, Kind::Double);
            let candidates = targets
                .searchsorted(&cumulative, false, false, "left", None::<Tensor>)
                .clamp_max(n - 1); // [R, T]
            let to_candidates = self
                .sq_dist_to_rows(&candidates.flatten(0, 1))
                .view([r, trials, n])
                .minimum(&closest.unsqueeze(1));
            let potentials = to_candidates.sum_dim_intlist(2, false, Kind::Double); // [R, T]
            let best = potentials.argmin(1, true); // [R, 1]
            potential = potentials.gather(1, &best, false);
            closest = to_candidates
                .gather(1, &best.unsqueeze(2).expand([r, 1, n], false), false)
                .squeeze_dim(1);
            chosen.push(candidates.gather(1, &best, false));
        }
        let index = Tensor::cat(&chosen, 1); // [R, k]
        self.x
            .index_select(0, &index.flatten(0, 1))
            .view([r, k as i64, -1])
    }

    /// Squared distances from the rows at `index` to every row: `[len(index), N]`.
    fn sq_dist_to_rows(&self, index: &Tensor) -> Tensor {
        let rows = self.x.index_select(0, index);
        let m = rows.size()[0];
        let minus_two_rows = &rows * -2.0;
        let out: Vec<Tensor> = self
            .blocks(m)
            .map(|(start, len)| {
                self.sq_norms
                    .narrow(0, start, len)
                    .unsqueeze(0)
                    .addmm(&minus_two_rows, &self.x.narrow(0, start, len).tr())
            })
            .collect();
        let rows_sq = self.sq_norms.index_select(0, index).unsqueeze(1);
        (Tensor::cat(&out, 1) + rows_sq).clamp_min(0.0)
    }

    /// Lloyd's algorithm (as scikit-learn's `_kmeans_single_lloyd`) from each of the R seedings
    /// `[R, K, D]`, all advanced together; a restart leaves the batch when its assignment stops
    /// changing or its centres move less than the tolerance. `finished(done)` is called as
    /// restarts finish.
    pub fn lloyd(
        &self,
        seeds: &Tensor,
        max_iter: usize,
        finished: &mut dyn FnMut(usize),
    ) -> Result<Vec<Lloyd>, KMeansError> {
        let (r, k) = (seeds.size()[0], seeds.size()[1]);
        let mut centres = seeds.shallow_clone();
        let mut ids: Vec<usize> = (0..r as usize).collect();
        let mut previous: Option<Tensor> = None;
        let mut done: Vec<Option<(Tensor, usize)>> = (0..r).map(|_| None).collect();
        let mut finished_count = 0;
        for iteration in 1..=max_iter.max(1) {
            let (labels, dists) = self.assign(&centres);
            let (mut sums, mut counts) = self.centre_sums(&labels, k);
            let changed = match &previous {
                Some(p) => labels.ne_tensor(p).any_dim(1, false).to_kind(Kind::Float),
                None => Tensor::ones([ids.len() as i64], (Kind::Float, self.device())),
            };
            // One device-to-host copy for the counts and the "assignment changed" flags.
            let host: Vec<f32> =
                Vec::try_from(Tensor::cat(&[&counts, &changed], 0).to_device(Device::Cpu))?;
            let (count_host, changed_host) = host.split_at(ids.len() * k as usize);
            for (pos, counts_r) in count_host.chunks_exact(k as usize).enumerate() {
                if counts_r.contains(&0.0) {
                    self.relocate_empty(
                        pos as i64,
                        k,
                        counts_r,
                        &labels,
                        &dists,
                        &mut sums,
                        &mut counts,
                    )?;
                }
            }
            let updated =
                (sums / counts.clamp_min(1.0).unsqueeze(1)).view([-1, k, self.x.size()[1]]);
            let shift: Vec<f64> = Vec::try_from(
                (&updated - &centres)
                    .square()
                    .sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Double)
                    .to_device(Device::Cpu),
            )?;
            centres = updated;
            // Strict convergence (unchanged assignment) or a shift within the tolerance.
            let keep: Vec<i64> = (0..ids.len())
                .filter(|&pos| {
                    changed_host[pos] != 0.0 && shift[pos] > self.tol && iteration < max_iter
                })
                .map(|pos| pos as i64)
                .collect();
            if keep.len() < ids.len() {
                for pos in 0..ids.len() {
                    if !keep.contains(&(pos as i64)) {
                        done[ids[pos]] = Some((centres.get(pos as i64), iteration));
                        finished_count += 1;
                        finished(finished_count);
                    }
                }
                if keep.is_empty() {
                    break;
                }
                let index = Tensor::from_slice(&keep).to_device(self.device());
                centres = centres.index_select(0, &index);
                ids = keep.iter().map(|&p| ids[p as usize]).collect();
                previous = Some(labels.index_select(0, &index));
            } else {
                previous = Some(labels);
            }
        }
        let (finals, iterations): (Vec<Tensor>, Vec<usize>) = done
            .into_iter()
            .map(|d| d.expect("every restart finishes by max_iter"))
            .unzip();
        let finals = Tensor::stack(&finals, 0);
        let (labels, dists) = self.assign(&finals);
        let inertia: Vec<f64> = Vec::try_from(
            dists
                .sum_dim_intlist(1, false, Kind::Double)
                .to_device(Device::Cpu),
        )?;
        Ok((0..r)
            .map(|i| Lloyd {
                centres: finals.get(i),
                labels: labels.get(i),
                inertia: inertia[i as usize],
                iterations: iterations[i as usize],
            })
            .collect())
    }

    /// Gives each empty cluster of restart `pos` the row farthest from its centre, taken out of
    /// that row's cluster, as scikit-learn relocates empty clusters.
    #[allow(clippy::too_many_arguments)]
    fn relocate_empty(
        &self,
        pos: i64,
        k: i64,
        counts_host: &[f32],
        labels: &Tensor,
        dists: &Tensor,
        sums: &mut Tensor,
        counts: &mut Tensor,
    ) -> Result<(), KMeansError> {
        let empty: Vec<i64> = (0..k).filter(|&c| counts_host[c as usize] == 0.0).collect();
        let (_, far) = dists.get(pos).topk(empty.len() as i64, 0, true, true);
        let donors: Vec<i64> =
            Vec::try_from(labels.get(pos).index_select(0, &far).to_device(Device::Cpu))?;
        let far: Vec<i64> = Vec::try_from(far.to_device(Device::Cpu))?;
        let base = pos * k;
        for ((&cluster, &row), &donor) in empty.iter().zip(&far).zip(&donors) {
            let point = self.x.get(row);
            let _ = sums.get(base + donor).g_sub_(&point);
            let _ = counts
                .get(base + donor)
                .g_sub_(&Tensor::from(1f32).to_device(self.device()));
            sums.get(base + cluster).copy_(&point);
            let _ = counts.get(base + cluster).fill_(1.0);
        }
        Ok(())
    }
}

/// Runs `params.n_init` restarts on the rows of `x` (N x D, any float kind, on any device) and
/// keeps the lowest inertia. The restarts advance together, sharing each pass over the data;
/// `progress(done, total)` is called as each restart finishes.
pub fn kmeans(
    x: &Tensor,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<KMeansResult, KMeansError> {
    let _guard = tch::no_grad_guard();
    let data = Prepared::new(x, params)?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let n_init = params.n_init.max(1);
    let seeds = data.kmeans_plusplus(params.k, n_init, &mut rng);
    let runs = data.lloyd(&seeds, params.max_iter, &mut |done| progress(done, n_init))?;
    // The first of equal inertias, as a sequential run keeping strict improvements would.
    let best = runs
        .into_iter()
        .reduce(|best, run| {
            if run.inertia < best.inertia {
                run
            } else {
                best
            }
        })
        .expect("at least one restart ran");
    Ok(KMeansResult {
        labels: Vec::try_from(best.labels.to_device(Device::Cpu))?,
        centres: (&best.centres + &data.mean.squeeze_dim(0)).to_device(Device::Cpu),
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
    fn the_restart_of_lowest_inertia_is_kept() {
        let (x, _) = blobs(&random_centres(8, 4, 2.0, 5), 30, 1.0, 5);
        let params = KMeansParams::new(8, 5);
        let kept = kmeans(&x, &params, &mut |_, _| {}).unwrap();
        // The same seeds, run by hand.
        let data = Prepared::new(&x, &params).unwrap();
        let seeds = data.kmeans_plusplus(8, 10, &mut ChaCha8Rng::seed_from_u64(5));
        let runs = data.lloyd(&seeds, 300, &mut |_| {}).unwrap();
        let inertias: Vec<f64> = runs.iter().map(|r| r.inertia).collect();
        let lowest = inertias.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(kept.inertia, lowest);
        assert!(
            inertias.iter().any(|&i| i > lowest),
            "restarts differ: {inertias:?}"
        );
        // The inertia is that of the returned labels and centres.
        let c: Vec<f32> = Vec::try_from(kept.centres.flatten(0, 1)).unwrap();
        let rows: Vec<f32> = Vec::try_from(x.flatten(0, 1)).unwrap();
        let by_hand: f64 = kept
            .labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                (0..4)
                    .map(|j| {
                        (f64::from(rows[i * 4 + j]) - f64::from(c[l as usize * 4 + j])).powi(2)
                    })
                    .sum::<f64>()
            })
            .sum();
        assert!(
            (by_hand - kept.inertia).abs() < 1e-4 * by_hand,
            "{by_hand} vs {}",
            kept.inertia
        );
    }

    #[test]
    fn empty_clusters_are_refilled() {
        // Two identical starting centres: one of them gets no points in the first assignment.
        let x = Tensor::from_slice(&[0f32, 0.0, 0.1, 0.0, 10.0, 0.0, 10.1, 0.0]).reshape([4, 2]);
        let data = Prepared::new(&x, &KMeansParams::new(2, 0)).unwrap();
        let start = Tensor::from_slice(&[-4.0f32, 0.0, -4.0, 0.0]).reshape([1, 2, 2]);
        let run = &data.lloyd(&start, 300, &mut |_| {}).unwrap()[0];
        let labels: Vec<i64> = Vec::try_from(&run.labels).unwrap();
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[2], labels[3]);
        assert_ne!(labels[0], labels[2]);
        assert!((run.inertia - 0.01).abs() < 1e-5, "{}", run.inertia);
    }

    #[test]
    fn restarts_side_by_side_equal_restarts_one_by_one() {
        let (x, _) = blobs(&random_centres(7, 6, 2.0, 4), 60, 1.0, 4);
        let data = Prepared::new(&x, &KMeansParams::new(7, 4)).unwrap();
        let seeds = data.kmeans_plusplus(7, 5, &mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(seeds.size(), [5, 7, 6]);
        let mut finished = Vec::new();
        let together = data.lloyd(&seeds, 300, &mut |d| finished.push(d)).unwrap();
        assert_eq!(finished, [1, 2, 3, 4, 5]);
        let iterations: Vec<usize> = together.iter().map(|r| r.iterations).collect();
        assert!(
            iterations.iter().min() < iterations.iter().max(),
            "{iterations:?}"
        );
        for (i, run) in together.iter().enumerate() {
            let alone = &data
                .lloyd(&seeds.narrow(0, i as i64, 1), 300, &mut |_| {})
                .unwrap()[0];
            assert_eq!(run.iterations, alone.iterations);
            assert!((run.inertia - alone.inertia).abs() <= 1e-6 * alone.inertia);
            assert!(run.labels.equal(&alone.labels));
        }
        // Small blocks give the same assignment as one block.
        let mut small = KMeansParams::new(7, 4);
        small.max_block = 100;
        let blocked = Prepared::new(&x, &small).unwrap();
        let (a, da) = data.assign(&seeds);
        let (b, db) = blocked.assign(&seeds);
        assert!(a.equal(&b));
        assert!(da.allclose(&db, 1e-5, 1e-4, false));
    }

    #[test]
    fn centre_sums_agree_with_a_plain_loop_for_small_and_large_k() {
        tch::manual_seed(8);
        let x = Tensor::randn([300, 3], (Kind::Float, Device::Cpu));
        let data = Prepared::new(&x, &KMeansParams::new(1, 0)).unwrap();
        let rows: Vec<f32> = Vec::try_from(data.x.flatten(0, 1)).unwrap();
        for k in [3i64, ONE_HOT_MAX_K + 6] {
            let labels = Tensor::randint(k, [2, 300], (Kind::Int64, Device::Cpu));
            let (sums, counts) = data.centre_sums(&labels, k);
            let host: Vec<i64> = Vec::try_from(labels.flatten(0, 1)).unwrap();
            let mut want = vec![0f64; (2 * k * 3) as usize];
            let mut want_counts = vec![0f64; (2 * k) as usize];
            for (i, &c) in host.iter().enumerate() {
                let (restart, row) = (i as i64 / 300, i % 300);
                let g = (restart * k + c) as usize;
                want_counts[g] += 1.0;
                for j in 0..3 {
                    want[g * 3 + j] += f64::from(rows[row * 3 + j]);
                }
            }
            let got: Vec<f32> = Vec::try_from(sums.flatten(0, 1)).unwrap();
            let got_counts: Vec<f32> = Vec::try_from(&counts).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(*g) - w).abs() < 1e-3, "k={k}: {g} vs {w}");
            }
            assert_eq!(
                got_counts.iter().map(|&c| f64::from(c)).collect::<Vec<_>>(),
                want_counts
            );
        }
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
            let start = data.kmeans_plusplus(k, 1, &mut rng);
            let ours = data.lloyd(&start, 300, &mut |_| {}).unwrap().remove(0);

            // linfa on the same centred data from the same centres.
            let flat: Vec<f64> = Vec::try_from(data.x.to_kind(Kind::Double).flatten(0, 1)).unwrap();
            let records = Array2::from_shape_vec((n, d), flat).unwrap();
            let init: Vec<f64> = Vec::try_from(start.to_kind(Kind::Double).flatten(0, 2)).unwrap();
            let init = Array2::from_shape_vec((k, d), init).unwrap();
            let model = KMeans::params(k)
                .n_runs(1)
                .max_n_iterations(300)
                .tolerance(1e-8)
                .init_method(KMeansInit::Precomputed(init))
                .fit(&DatasetBase::from(records))
                .unwrap();
            let linfa_centres = Tensor::from_slice(model.centroids().as_slice().unwrap())
                .reshape([1, k as i64, d as i64])
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
