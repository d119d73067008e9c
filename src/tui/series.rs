//! Curves for the charts: TensorBoard's debiased exponential moving average, and downsampling to
//! the screen's columns that keeps each column's minimum and maximum, so a spike survives and a
//! 100,000-step history draws as fast as a short one.

/// TensorBoard's smoothing (its scalar dashboard's `smoothing` slider, 0 to 0.99): an exponential
/// moving average `last = last * w + (1 - w) * y`, divided by `1 - w^n` after `n` finite points so
/// the first points are not pulled towards 0. A point that is not finite is kept as it is and does
/// not move the average.
pub fn smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let mut s = Smoother::new(weight);
    values.iter().map(|&y| s.push(y)).collect()
}

/// [`smooth`] one point at a time, so a growing series is smoothed once, not at every frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoother {
    weight: f64,
    last: f64,
    /// w^n after n finite points, kept as a product rather than a power per point.
    w_n: f64,
}

impl Default for Smoother {
    /// No smoothing.
    fn default() -> Smoother {
        Smoother::new(0.0)
    }
}

impl Smoother {
    pub fn new(weight: f64) -> Smoother {
        Smoother {
            weight: weight.clamp(0.0, 0.999),
            last: 0.0,
            w_n: 1.0,
        }
    }

    /// The smoothed value of the next point `y`.
    pub fn push(&mut self, y: f64) -> f64 {
        let w = self.weight;
        if !y.is_finite() || w == 0.0 {
            return y;
        }
        self.last = self.last * w + (1.0 - w) * y;
        self.w_n *= w;
        self.last / (1.0 - self.w_n)
    }
}

/// At most about `2 * columns` points of `points` (sorted by x): the x range is cut into
/// `columns` equal buckets, and each bucket keeps its lowest and its highest point, in x order.
/// Fewer points than that come back unchanged.
pub fn downsample(points: &[(f64, f64)], columns: usize) -> Vec<(f64, f64)> {
    downsample_by(points.len(), |i| points[i], columns)
}

/// [`downsample`] of the `n` points `point(0), ..., point(n - 1)`, read in place.
pub fn downsample_by(
    n: usize,
    point: impl Fn(usize) -> (f64, f64),
    columns: usize,
) -> Vec<(f64, f64)> {
    if columns == 0 || n <= 2 * columns {
        return (0..n).map(point).collect();
    }
    let (x0, x1) = (point(0).0, point(n - 1).0);
    let span = x1 - x0;
    if span <= 0.0 {
        return (0..n).map(point).collect();
    }
    #[allow(clippy::cast_precision_loss)]
    let per = span / columns as f64;
    let mut out = Vec::with_capacity(2 * columns + 1);
    let mut i = 0;
    for c in 0..columns {
        #[allow(clippy::cast_precision_loss)]
        let end = if c + 1 == columns {
            f64::INFINITY
        } else {
            x0 + per * (c + 1) as f64
        };
        if i >= n || point(i).0 >= end {
            continue;
        }
        let (mut lo, mut hi) = ((i, point(i)), (i, point(i)));
        while i < n {
            let p = point(i);
            if p.0 >= end {
                break;
            }
            if p.1 < lo.1 .1 {
                lo = (i, p);
            }
            if p.1 > hi.1 .1 {
                hi = (i, p);
            }
            i += 1;
        }
        let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
        out.push(a.1);
        if b.0 != a.0 {
            out.push(b.1);
        }
    }
    out
}

/// The range of the y values of `series` (finite ones), widened a little so a flat curve still
/// has height; `(0, 1)` when there is none.
pub fn y_bounds<'a>(series: impl IntoIterator<Item = &'a [(f64, f64)]>) -> [f64; 2] {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in series {
        for &(_, y) in s {
            if y.is_finite() {
                lo = lo.min(y);
                hi = hi.max(y);
            }
        }
    }
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-3) * 0.01);
    [lo - pad, hi + pad]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TensorBoard's `resampleSmoothing`/`smooth` in plain form, step by step, for a fixed series.
    #[test]
    fn smoothing_follows_tensorboards_debiased_formula() {
        let ys = [1.0, 3.0, 2.0, 5.0, 4.0];
        let w = 0.6;
        let got = smooth(&ys, w);
        // last_1 = 0.4, debias 1 - 0.6 = 0.4 -> 1.0
        // last_2 = 0.24 + 1.2 = 1.44, debias 1 - 0.36 = 0.64 -> 2.25
        // last_3 = 0.864 + 0.8 = 1.664, debias 1 - 0.216 = 0.784 -> 2.1224489...
        // last_4 = 0.9984 + 2.0 = 2.9984, debias 1 - 0.1296 = 0.8704 -> 3.4448529...
        // last_5 = 1.79904 + 1.6 = 3.39904, debias 1 - 0.07776 = 0.92224 -> 3.6856350...
        let want = [1.0, 2.25, 2.122_448_979_6, 3.444_852_941_2, 3.685_634_975_7];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?}");
        }
        assert_eq!(smooth(&ys, 0.0), ys.to_vec(), "weight 0 leaves it");
        for v in smooth(&[2.0; 4], 0.9) {
            assert!((v - 2.0).abs() < 1e-12, "a constant stays");
        }
        // Point by point gives the same as the whole series.
        let mut s = Smoother::new(w);
        let one_by_one: Vec<f64> = ys.iter().map(|&y| s.push(y)).collect();
        assert_eq!(one_by_one, got);
    }

    #[test]
    fn smoothing_keeps_points_that_are_not_finite_out_of_the_average() {
        let got = smooth(&[1.0, f64::NAN, 3.0], 0.5);
        assert_eq!(got[0], 1.0);
        assert!(got[1].is_nan());
        // The NaN did not count: the second finite point is debiased with n = 2.
        let want = (0.25 + 1.5) / 0.75;
        assert!((got[2] - want).abs() < 1e-12, "{got:?}");
    }

    #[test]
    fn downsampling_keeps_each_columns_min_and_max() {
        // 10,000 points of a slow ramp with one spike up and one spike down.
        let mut pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (f64::from(i), f64::from(i) * 1e-4))
            .collect();
        pts[4321].1 = 50.0;
        pts[7777].1 = -20.0;
        let got = downsample(&pts, 100);
        assert!(got.len() <= 200, "{}", got.len());
        assert!(got.contains(&(4321.0, 50.0)), "the spike up survives");
        assert!(got.contains(&(7777.0, -20.0)), "the spike down survives");
        assert_eq!(got[0], pts[0], "the first point is a minimum");
        assert_eq!(got[got.len() - 1], pts[9999], "the last point is a maximum");
        assert!(got.windows(2).all(|p| p[0].0 < p[1].0), "x order kept");
        let short = &pts[..150];
        assert_eq!(
            downsample(short, 100),
            short.to_vec(),
            "short series unchanged"
        );
    }

    #[test]
    fn bounds_pad_flat_and_empty_series() {
        assert_eq!(y_bounds([&[][..]]), [0.0, 1.0]);
        let [lo, hi] = y_bounds([&[(0.0, 2.0), (1.0, 2.0)][..]]);
        assert!(lo < 2.0 && hi > 2.0);
        let [lo, hi] = y_bounds([&[(0.0, 0.0), (1.0, 10.0)][..], &[(0.0, f64::NAN)][..]]);
        assert!((lo + 0.5).abs() < 1e-12 && (hi - 10.5).abs() < 1e-12);
    }
}
