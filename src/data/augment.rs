//! Image transforms: the two-view training augmentation of SPEC 2.8 and the evaluation transform
//! of SPEC 2.6. Output is CHW `f32` in [0, 1], no mean/std normalisation.
//!
//! The training view follows torchvision's pipeline `RandomResizedCrop` -> `RandomHorizontalFlip`
//! -> `RandomApply(ColorJitter, 0.8)` -> `RandomGrayscale(0.2)` -> `RandomApply(GaussianBlur, 0.5)`,
//! with the crop parameters and random factors drawn as torchvision draws them. A view is made in
//! two steps: every random draw first ([`ViewParams`]), then the pixels. The crop is resized
//! straight from the 8-bit image into the output (PIL's antialiased bilinear, separable, with the
//! flip folded into the horizontal pass); the colour operations and the blur then work in place on
//! the f32 planes, as torchvision's tensor functions do.

// The pixel loops are `inline(always)` on purpose: that puts a copy of them inside the
// `target_feature(enable = "avx2")` functions, where they are compiled for AVX2.
#![allow(clippy::inline_always)]

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::config::Config;

/// Range of the crop's area as a fraction of the image's.
const CROP_SCALE: (f64, f64) = (0.08, 1.0);
/// Range of the crop's aspect ratio (width / height); sampled uniformly in log space.
const CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
const CROP_TRIES: usize = 10;
const FLIP_P: f64 = 0.5;
const JITTER_P: f64 = 0.8;
/// The jitter ranges are this times `s` (SimCLR's `ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)`).
const JITTER_BCS: f64 = 0.8;
const JITTER_HUE: f64 = 0.2;
const GRAYSCALE_P: f64 = 0.2;
const BLUR_P: f64 = 0.5;
const BLUR_KERNEL: usize = 23;
const BLUR_SIGMA: (f64, f64) = (0.1, 2.0);
/// ITU-R 601 luma weights (SPEC 2.8; PIL's `convert("L")`).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// The training augmentation's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub image_size: u32,
    /// Colour-jitter strength.
    pub s: f64,
    pub blur: bool,
}

/// A crop rectangle in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// One colour-jitter operation with its drawn factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ColorOp {
    /// Multiplies every value.
    Brightness(f32),
    /// Blends with the mean luma of the whole image.
    Contrast(f32),
    /// Blends each pixel with its own luma.
    Saturation(f32),
    /// Rotates the hue by this fraction of a turn.
    Hue(f32),
}

/// Every random choice of one view, drawn before any pixel is touched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ViewParams {
    pub crop: Crop,
    pub flip: bool,
    /// The four jitter operations in the order they apply, when jitter was drawn.
    pub jitter: Option<[ColorOp; 4]>,
    pub grayscale: bool,
    pub blur_sigma: Option<f32>,
}

impl Augment {
    pub fn from_config(cfg: &Config) -> Augment {
        Augment {
            image_size: cfg.image_size as u32,
            s: cfg.s,
            blur: cfg.blur,
        }
    }

    /// Values written by [`Augment::view`]: 3 * image_size^2.
    pub fn view_len(&self) -> usize {
        3 * (self.image_size as usize).pow(2)
    }

    /// Writes one augmented view of `img` into `out` (CHW, [0, 1]). Draws only from `rng`, so the
    /// same rng state gives the same view.
    pub fn view<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R, out: &mut [f32]) {
        let params = self.sample(img.width(), img.height(), rng);
        self.render(img, &params, out);
    }

    /// Draws a view's parameters, in torchvision's order (crop, flip, jitter, grayscale, blur).
    pub(crate) fn sample<R: Rng + ?Sized>(
        &self,
        width: u32,
        height: u32,
        rng: &mut R,
    ) -> ViewParams {
        let crop = sample_crop(width, height, rng);
        let flip = rng.gen::<f64>() < FLIP_P;
        let jitter = if rng.gen::<f64>() < JITTER_P {
            Some(sample_jitter(self.s, rng))
        } else {
            None
        };
        let grayscale = rng.gen::<f64>() < GRAYSCALE_P;
        // Without blur the transform is absent from the pipeline, so nothing is drawn for it.
        let blur_sigma = if self.blur && rng.gen::<f64>() < BLUR_P {
            Some(uniform(rng, BLUR_SIGMA.0, BLUR_SIGMA.1) as f32)
        } else {
            None
        };
        ViewParams {
            crop,
            flip,
            jitter,
            grayscale,
            blur_sigma,
        }
    }

    /// Makes the pixels of a view whose parameters are drawn. On x86-64 CPUs with AVX2 the same
    /// code runs compiled for AVX2 (twice the SIMD width). The results are bit-identical either
    /// way: no fused multiply-add is enabled and no loop changes its order of operations.
    pub(crate) fn render(&self, img: &RgbImage, p: &ViewParams, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.render_avx2(img, p, out) };
        }
        self.render_baseline(img, p, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn render_avx2(&self, img: &RgbImage, p: &ViewParams, out: &mut [f32]) {
        self.render_baseline(img, p, out);
    }

    // `inline(always)` here and on the pixel loops below puts a copy of them inside
    // `render_avx2`, where they are compiled for AVX2.
    #[inline(always)]
    fn render_baseline(&self, img: &RgbImage, p: &ViewParams, out: &mut [f32]) {
        let size = self.image_size as usize;
        assert_eq!(out.len(), self.view_len(), "view buffer length");
        resize_region(img, p.crop, size, p.flip, out);
        for op in p.jitter.iter().flatten() {
            op.apply(out);
        }
        if p.grayscale {
            grayscale(out);
        }
        if let Some(sigma) = p.blur_sigma {
            gaussian_blur(out, size, &gaussian_kernel(sigma));
        }
    }
}

/// The evaluation transform: the whole image resized to `size` x `size` (PIL's bilinear,
/// antialiased when shrinking), values / 255.
pub fn eval_view(img: &RgbImage, size: u32, out: &mut [f32]) {
    let (w, h) = img.dimensions();
    let whole = Crop { x: 0, y: 0, w, h };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { resize_region_avx2(img, whole, size as usize, out) };
    }
    resize_region(img, whole, size as usize, false, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resize_region_avx2(img: &RgbImage, crop: Crop, size: usize, out: &mut [f32]) {
    resize_region(img, crop, size, false, out);
}

/// Uniform in [lo, hi), as `torch.empty(1).uniform_(lo, hi)`; an empty range gives `lo`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.gen::<f64>()
}

/// torchvision's `RandomResizedCrop.get_params` with scale (0.08, 1) and ratio (3/4, 4/3):
/// up to ten tries of (area fraction, log-ratio); sizes rounded as Python's `round` (half to
/// even); the first that fits gets a uniform position (row drawn first). Otherwise a centre
/// crop, the whole image with its ratio clamped to [3/4, 4/3].
pub(crate) fn sample_crop<R: Rng + ?Sized>(width: u32, height: u32, rng: &mut R) -> Crop {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = (CROP_RATIO.0.ln(), CROP_RATIO.1.ln());
    for _ in 0..CROP_TRIES {
        let target = area * uniform(rng, CROP_SCALE.0, CROP_SCALE.1);
        let ratio = uniform(rng, log_lo, log_hi).exp();
        let w = (target * ratio).sqrt().round_ties_even();
        let h = (target / ratio).sqrt().round_ties_even();
        if w > 0.0 && w <= f64::from(width) && h > 0.0 && h <= f64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let y = rng.gen_range(0..=height - h);
            let x = rng.gen_range(0..=width - w);
            return Crop { x, y, w, h };
        }
    }
    let in_ratio = f64::from(width) / f64::from(height);
    let (w, h) = if in_ratio < CROP_RATIO.0 {
        (
            width,
            (f64::from(width) / CROP_RATIO.0).round_ties_even() as u32,
        )
    } else if in_ratio > CROP_RATIO.1 {
        (
            (f64::from(height) * CROP_RATIO.1).round_ties_even() as u32,
            height,
        )
    } else {
        (width, height)
    };
    Crop {
        x: (width - w) / 2,
        y: (height - h) / 2,
        w,
        h,
    }
}

/// torchvision's `ColorJitter.get_params` for `ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)`: a random
/// order of the four operations, then the brightness, contrast, saturation and hue factors.
fn sample_jitter<R: Rng + ?Sized>(s: f64, rng: &mut R) -> [ColorOp; 4] {
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    let spread = JITTER_BCS * s;
    // torchvision clips the lower end at 0; the hue shift may not exceed half a turn.
    let (lo, hi) = ((1.0 - spread).max(0.0), 1.0 + spread);
    let brightness = uniform(rng, lo, hi) as f32;
    let contrast = uniform(rng, lo, hi) as f32;
    let saturation = uniform(rng, lo, hi) as f32;
    let hue_max = (JITTER_HUE * s).min(0.5);
    let hue = uniform(rng, -hue_max, hue_max) as f32;
    order.map(|i| match i {
        0 => ColorOp::Brightness(brightness),
        1 => ColorOp::Contrast(contrast),
        2 => ColorOp::Saturation(saturation),
        _ => ColorOp::Hue(hue),
    })
}

impl ColorOp {
    /// Applies the operation in place to CHW planes, as torchvision's tensor functions do
    /// (each result clamped to [0, 1]).
    #[inline(always)]
    pub(crate) fn apply(self, img: &mut [f32]) {
        match self {
            ColorOp::Brightness(f) => img.iter_mut().for_each(|v| *v = unit(f * *v)),
            ColorOp::Contrast(f) => {
                let mean = mean_luma(img);
                let offset = (1.0 - f) * mean;
                for v in img.iter_mut() {
                    *v = unit(f * *v + offset);
                }
            }
            ColorOp::Saturation(f) => saturate(img, f),
            ColorOp::Hue(shift) => shift_hue(img, shift),
        }
    }
}

/// The three planes of a CHW buffer.
fn planes(img: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let n = img.len() / 3;
    let (r, gb) = img.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    (r, g, b)
}

// Plain compare-and-select forms of min, max and clamp: they compile to single SIMD min/max
// instructions, where `f32::min`/`clamp` add NaN handling that the pixel loops never need.
#[inline(always)]
fn min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Clamp to [0, 1].
#[inline(always)]
fn unit(v: f32) -> f32 {
    min(max(v, 0.0), 1.0)
}

/// `out[x] = unit(sum_j weights[j] * src[j * stride + x])`: one separable-filter pass over a
/// line, `stride` 1 along a row or the row length down columns. Blocks of outputs accumulate in
/// registers over all taps, so each output is written once and the block loop vectorises.
#[inline(always)]
fn filter_line(out: &mut [f32], src: &[f32], stride: usize, weights: &[f32]) {
    // Long filters (the blur) are bound by the latency of the add chains: more accumulators in
    // flight help. Short ones (resizing) are bound by loads and stores, and a smaller block
    // leaves a shorter scalar tail.
    if weights.len() > 4 {
        filter_line_blocks::<32>(out, src, stride, weights);
    } else {
        filter_line_blocks::<16>(out, src, stride, weights);
    }
}

#[inline(always)]
fn filter_line_blocks<const BLOCK: usize>(
    out: &mut [f32],
    src: &[f32],
    stride: usize,
    weights: &[f32],
) {
    let n = out.len();
    if weights.is_empty() {
        out.fill(0.0);
        return;
    }
    assert!(
        src.len() >= (weights.len() - 1) * stride + n,
        "filter source too short"
    );
    let mut blocks = out.chunks_exact_mut(BLOCK);
    for (b, block) in (&mut blocks).enumerate() {
        let x = b * BLOCK;
        let mut acc = [0.0f32; BLOCK];
        for (j, &w) in weights.iter().enumerate() {
            let s: &[f32; BLOCK] = src[j * stride + x..][..BLOCK]
                .try_into()
                .expect("a slice of BLOCK elements");
            for (a, &v) in acc.iter_mut().zip(s) {
                *a += w * v;
            }
        }
        for (o, a) in block.iter_mut().zip(acc) {
            *o = unit(a);
        }
    }
    let done = n - blocks.into_remainder().len();
    for x in done..n {
        let mut acc = 0.0f32;
        for (j, &w) in weights.iter().enumerate() {
            acc += w * src[j * stride + x];
        }
        out[x] = unit(acc);
    }
}

/// Mean over the image of 0.299 R + 0.587 G + 0.114 B (by linearity, from the plane sums).
#[inline(always)]
fn mean_luma(img: &[f32]) -> f32 {
    let n = img.len() / 3;
    if n == 0 {
        return 0.0;
    }
    let total: f64 = img
        .chunks_exact(n)
        .zip(LUMA)
        .map(|(plane, w)| f64::from(w) * plane_sum(plane))
        .sum();
    (total / n as f64) as f32
}

/// Sum of a plane in independent f32 lanes (so it vectorises), gathered into f64 per block.
#[inline(always)]
fn plane_sum(xs: &[f32]) -> f64 {
    const LANES: usize = 16;
    let mut total = 0.0f64;
    for block in xs.chunks(LANES * 64) {
        let mut acc = [0.0f32; LANES];
        let lanes = block.chunks_exact(LANES);
        let rest = lanes.remainder();
        for c in lanes {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        total += acc.iter().chain(rest).map(|&a| f64::from(a)).sum::<f64>();
    }
    total
}

/// Blends every pixel with its luma: `f * c + (1 - f) * luma`, clamped.
#[inline(always)]
fn saturate(img: &mut [f32], f: f32) {
    let (r, g, b) = planes(img);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let gray = (1.0 - f) * (LUMA[0] * *r + LUMA[1] * *g + LUMA[2] * *b);
        *r = unit(f * *r + gray);
        *g = unit(f * *g + gray);
        *b = unit(f * *b + gray);
    }
}

/// Writes every pixel's luma to all three channels.
#[inline(always)]
fn grayscale(img: &mut [f32]) {
    let (r, g, b) = planes(img);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let gray = unit(LUMA[0] * *r + LUMA[1] * *g + LUMA[2] * *b);
        (*r, *g, *b) = (gray, gray, gray);
    }
}

/// Rotates the HSV hue by `shift` turns, keeping saturation and value (torchvision's
/// `adjust_hue`). Works on the hue in sixths of a turn: the largest channel (V) and the smallest
/// (V - C) are kept, and channel n of (R, G, B) = (5, 3, 1) becomes
/// `V - C * clamp(min(k, 4 - k), 0, 1)` with `k = (n + hue) mod 6`, the branch-free form of
/// the six-sector HSV -> RGB table. Every step is a select rather than a branch, so the loop
/// vectorises; a grey pixel (C = 0) comes back unchanged.
#[inline(always)]
fn shift_hue(img: &mut [f32], shift: f32) {
    let shift6 = shift.rem_euclid(1.0) * 6.0;
    let wrap = |h: f32| if h >= 6.0 { h - 6.0 } else { h };
    let channel = |n: f32, h: f32, v: f32, c: f32| {
        let k = wrap(n + h);
        v - c * unit(min(k, 4.0 - k))
    };
    let (r, g, b) = planes(img);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (rv, gv, bv) = (*r, *g, *b);
        let v = max(max(rv, gv), bv);
        let c = v - min(min(rv, gv), bv);
        let inv = if c > 0.0 { 1.0 / c } else { 0.0 };
        // Same tie order as torchvision: red wins, then green. h in [-1, 5).
        let h_r = (gv - bv) * inv;
        let h_g = 2.0 + (bv - rv) * inv;
        let h_b = 4.0 + (rv - gv) * inv;
        let h = if v == rv {
            h_r
        } else if v == gv {
            h_g
        } else {
            h_b
        };
        // h + shift6 is in [-1, 11): one correction each way lands in [0, 6).
        let h = h + shift6;
        let h = wrap(if h < 0.0 { h + 6.0 } else { h });
        *r = channel(5.0, h, v, c);
        *g = channel(3.0, h, v, c);
        *b = channel(1.0, h, v, c);
    }
}

/// torchvision's `_get_gaussian_kernel1d(23, sigma)`: exp(-x^2 / 2 sigma^2) at x = -11..=11,
/// normalised to sum 1.
pub(crate) fn gaussian_kernel(sigma: f32) -> [f32; BLUR_KERNEL] {
    let half = (BLUR_KERNEL / 2) as f32;
    let mut k = [0.0f32; BLUR_KERNEL];
    for (i, w) in k.iter_mut().enumerate() {
        let x = (i as f32 - half) / sigma;
        *w = (-0.5 * x * x).exp();
    }
    let total: f32 = k.iter().sum();
    for w in &mut k {
        *w /= total;
    }
    k
}

/// Index into [0, n) of position `i` mirrored at both ends without repeating the edge (torch's
/// "reflect" padding; for pads wider than the image the mirroring continues).
fn reflect(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m >= n as isize { period - m } else { m }) as usize
}

/// Blur taps lighter than this are skipped (the kernel sums to 1): together they weigh under
/// 22 * 1e-9, so a result in [0, 1] moves by less than the f32 spacing at 0.5 (6e-8). Small
/// sigmas have many: over sigma in [0.1, 2.0] about a third of the blur's work is saved.
const NEGLIGIBLE_TAP: f32 = 1e-9;

/// Separable Gaussian blur of the `size` x `size` planes of `img` with reflect padding (as
/// torchvision's `gaussian_blur`, whose 2-D kernel is the outer product of the 1-D one).
#[inline(always)]
pub(crate) fn gaussian_blur(img: &mut [f32], size: usize, kernel: &[f32; BLUR_KERNEL]) {
    if size == 0 {
        return;
    }
    let half = BLUR_KERNEL / 2;
    let skip = kernel
        .iter()
        .take_while(|&&w| w < NEGLIGIBLE_TAP)
        .count()
        .min(half);
    let taps = &kernel[skip..BLUR_KERNEL - skip];
    let padded_len = size + 2 * half;
    // Source index of every padded position, the same along both axes.
    let index: Vec<usize> = (0..padded_len)
        .map(|i| reflect(i as isize - half as isize, size))
        .collect();
    // Vertical pass: the plane with reflected rows above and below. Its first row doubles as the
    // padded row of the horizontal pass.
    let mut padded = vec![0.0f32; padded_len * size];
    for plane in img.chunks_exact_mut(size * size) {
        for row in plane.chunks_exact_mut(size) {
            let prow = &mut padded[..padded_len];
            for (p, &i) in prow.iter_mut().zip(&index) {
                *p = row[i];
            }
            filter_line(row, &prow[skip..], 1, taps);
        }
        for (prow, &i) in padded.chunks_exact_mut(size).zip(&index) {
            prow.copy_from_slice(&plane[i * size..][..size]);
        }
        for (y, row) in plane.chunks_exact_mut(size).enumerate() {
            filter_line(row, &padded[(y + skip) * size..], size, taps);
        }
    }
}

/// One axis of a separable resize: output `i` is the weighted sum of the inputs
/// `start[i] .. start[i] + len[i]`, with weights at `weights[i * stride..]`, followed by zeros
/// up to the next output's (which [`sum_pixel_taps`] relies on).
struct AxisFilter {
    start: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<f32>,
}

impl AxisFilter {
    /// PIL's `precompute_coeffs` for the bilinear (triangle) filter: when shrinking, the
    /// triangle is widened by the shrink factor so every input pixel contributes (antialiasing);
    /// when enlarging it is plain bilinear interpolation with edge pixels repeated. Weights are
    /// normalised per output and multiplied by `gain`.
    fn bilinear(in_size: usize, out_size: usize, gain: f64) -> AxisFilter {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the triangle's support is 1
        let stride = support.ceil() as usize * 2 + 1;
        let mut f = AxisFilter {
            start: Vec::with_capacity(out_size),
            len: Vec::with_capacity(out_size),
            stride,
            weights: vec![0.0; stride * out_size],
        };
        let mut w = vec![0.0f64; stride];
        for (i, out) in f.weights.chunks_exact_mut(stride).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // C's truncating casts, as PIL.
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
            let n = hi.saturating_sub(lo).min(stride);
            let mut total = 0.0;
            for (k, wk) in w[..n].iter_mut().enumerate() {
                let x = ((lo + k) as f64 - center + 0.5) / filter_scale;
                *wk = (1.0 - x.abs()).max(0.0);
                total += *wk;
            }
            let norm = if total == 0.0 { 0.0 } else { gain / total };
            // Taps of weight 0 at either end (PIL keeps them) are dropped: they only cost time.
            let first = w[..n].iter().position(|&wk| wk != 0.0).unwrap_or(n);
            let last = w[..n]
                .iter()
                .rposition(|&wk| wk != 0.0)
                .map_or(first, |l| l + 1);
            for (o, &wk) in out.iter_mut().zip(&w[first..last]) {
                *o = (wk * norm) as f32;
            }
            f.start.push(lo + first);
            f.len.push(last - first);
        }
        f
    }

    fn taps(&self, i: usize) -> (usize, &[f32]) {
        (
            self.start[i],
            &self.weights[i * self.stride..][..self.len[i]],
        )
    }
}

/// Output pixels whose taps [`sum_pixel_taps`] sums side by side: independent chains of adds
/// keep the vector units busy.
const PIXEL_GROUP: usize = 4;

/// The horizontal-pass sums of `outputs`: for each, `sum_j w_j * line[3 * (start + j) + k]` for
/// k = 0, 1, 2 (and a fourth, meaningless lane), added in tap order, so every channel gets the
/// bits of a plain one-channel loop. The outputs are summed over the longest tap list of the
/// group: past its own list an output's weights are 0 (AxisFilter pads them), and adding +0 to
/// a sum of non-negative terms leaves it as it is. `line` holds the row as f32 and enough zeros
/// after it for the longest reach, `3 * (start + stride) + 4` values.
#[inline(always)]
fn sum_pixel_taps(
    line: &[f32],
    filter: &AxisFilter,
    outputs: [usize; PIXEL_GROUP],
) -> [[f32; 4]; PIXEL_GROUP] {
    let n = outputs.iter().map(|&i| filter.len[i]).max().unwrap_or(0);
    let starts = outputs.map(|i| 3 * filter.start[i]);
    let weights = outputs.map(|i| &filter.weights[i * filter.stride..][..n]);
    for s in starts {
        assert!(s + 3 * n < line.len(), "row buffer too short for its taps");
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_setzero_ps, _mm_storeu_ps,
        };
        // SAFETY: SSE is part of x86-64. Every load reads `line[s + 3j .. s + 3j + 4]` with
        // j < n, so below s + 3n + 1 <= line.len() by the assertion above.
        unsafe {
            let mut acc = [_mm_setzero_ps(); PIXEL_GROUP];
            // `j` indexes four weight lists and four places in the row.
            #[allow(clippy::needless_range_loop)]
            for j in 0..n {
                for g in 0..PIXEL_GROUP {
                    let p = _mm_loadu_ps(line.as_ptr().add(starts[g] + 3 * j));
                    let w = _mm_set1_ps(weights[g][j]);
                    acc[g] = _mm_add_ps(acc[g], _mm_mul_ps(w, p));
                }
            }
            let mut out = [[0.0f32; 4]; PIXEL_GROUP];
            for (o, a) in out.iter_mut().zip(acc) {
                _mm_storeu_ps(o.as_mut_ptr(), a);
            }
            out
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut out = [[0.0f32; 4]; PIXEL_GROUP];
        for (g, o) in out.iter_mut().enumerate() {
            for (j, &w) in weights[g].iter().enumerate() {
                for (a, &v) in o.iter_mut().zip(&line[starts[g] + 3 * j..][..4]) {
                    *a += w * v;
                }
            }
        }
        out
    }
}

/// Resizes the `crop` of `img` to `size` x `size` into CHW `out` / 255, mirrored left-right when
/// `flip`: horizontal pass from the 8-bit rows into f32 planes, then the vertical pass.
#[inline(always)]
fn resize_region(img: &RgbImage, crop: Crop, size: usize, flip: bool, out: &mut [f32]) {
    assert_eq!(out.len(), 3 * size * size, "view buffer length");
    let (cw, ch) = (crop.w as usize, crop.h as usize);
    if cw == 0 || ch == 0 || size == 0 {
        out.fill(0.0);
        return;
    }
    let horizontal = AxisFilter::bilinear(cw, size, 1.0 / 255.0);
    let vertical = AxisFilter::bilinear(ch, size, 1.0);
    let row_bytes = img.width() as usize * 3;
    let raw = img.as_raw();

    // Horizontal pass: crop rows -> planes [3][ch][size]. Each row is first widened to f32 (R, G,
    // B interleaved, padded with zeros), so that a pixel reads as one 4-lane vector (R, G, B and
    // the next value, discarded) and [`sum_pixel_taps`] sums the three channels of four output
    // pixels side by side.
    let pad = (horizontal.stride + 1) * 3 + 1;
    let mut line = vec![0.0f32; cw * 3 + pad];
    let mut tmp = vec![0.0f32; 3 * ch * size];
    let (t_r, t_gb) = tmp.split_at_mut(ch * size);
    let (t_g, t_b) = t_gb.split_at_mut(ch * size);
    let rows = t_r
        .chunks_exact_mut(size)
        .zip(t_g.chunks_exact_mut(size))
        .zip(t_b.chunks_exact_mut(size));
    let tap_of = |x: usize| if flip { size - 1 - x } else { x };
    for (y, ((o_r, o_g), o_b)) in rows.enumerate() {
        let src = &raw[(crop.y as usize + y) * row_bytes + crop.x as usize * 3..][..cw * 3];
        for (l, &v) in line.iter_mut().zip(src) {
            *l = f32::from(v);
        }
        for x in (0..size).step_by(PIXEL_GROUP) {
            let outputs: [usize; PIXEL_GROUP] =
                std::array::from_fn(|g| tap_of((x + g).min(size - 1)));
            let sums = sum_pixel_taps(&line, &horizontal, outputs);
            for (g, s) in sums.iter().enumerate().take(size - x) {
                (o_r[x + g], o_g[x + g], o_b[x + g]) = (s[0], s[1], s[2]);
            }
        }
    }

    // Vertical pass, whole rows at a time; the weights are a convex combination, so the final
    // clamp only trims rounding.
    for (src, plane) in tmp
        .chunks_exact(ch * size)
        .zip(out.chunks_exact_mut(size * size))
    {
        for (y, row) in plane.chunks_exact_mut(size).enumerate() {
            let (start, w) = vertical.taps(y);
            filter_line(row, &src[start * size..], size, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A view's parameters that do nothing but crop (and maybe flip).
    fn plain(crop: Crop, flip: bool) -> ViewParams {
        ViewParams {
            crop,
            flip,
            jitter: None,
            grayscale: false,
            blur_sigma: None,
        }
    }

    fn full(img: &RgbImage) -> Crop {
        Crop {
            x: 0,
            y: 0,
            w: img.width(),
            h: img.height(),
        }
    }

    /// A CHW buffer of `n` pixels from (r, g, b) triples.
    fn chw(pixels: &[[f32; 3]]) -> Vec<f32> {
        (0..3)
            .flat_map(|k| pixels.iter().map(move |p| p[k]))
            .collect()
    }

    fn pixel(img: &[f32], i: usize) -> [f32; 3] {
        let n = img.len() / 3;
        [img[i], img[n + i], img[2 * n + i]]
    }

    fn assert_near(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
        }
    }

    fn colourful(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 + 3) as u8,
                (y * 5 + 11) as u8,
                (x * 3 + y * 2 + 40) as u8,
            ])
        })
    }

    // ---- resize ----

    #[test]
    fn flip_mirrors_the_image() {
        let img = colourful(6, 6);
        let aug = Augment {
            image_size: 6,
            s: 0.5,
            blur: false,
        };
        let (mut plain_out, mut flipped) = (vec![0.0; 108], vec![0.0; 108]);
        aug.render(&img, &plain(full(&img), false), &mut plain_out);
        aug.render(&img, &plain(full(&img), true), &mut flipped);
        for k in 0..3 {
            for y in 0..6 {
                for x in 0..6 {
                    let want = f32::from(img.get_pixel(x, y)[k]) / 255.0;
                    let i = k * 36 + y as usize * 6;
                    // Equal sizes: weights 1 and 0, so only f32 rounding of v * (1/255) remains.
                    assert!((plain_out[i + x as usize] - want).abs() <= 1e-6);
                    assert!((flipped[i + 5 - x as usize] - want).abs() <= 1e-6);
                }
            }
        }
    }

    #[test]
    fn flip_is_the_mirror_of_the_resized_crop() {
        // torchvision flips after resizing: output column x of the flipped view is exactly
        // column size - 1 - x of the plain one (the flip only reorders the horizontal taps).
        let img = colourful(20, 16);
        let aug = Augment {
            image_size: 11,
            s: 0.5,
            blur: false,
        };
        let crop = Crop {
            x: 3,
            y: 2,
            w: 7,
            h: 9,
        };
        let (mut plain_out, mut flipped) = (vec![0.0; aug.view_len()], vec![0.0; aug.view_len()]);
        aug.render(&img, &plain(crop, false), &mut plain_out);
        aug.render(&img, &plain(crop, true), &mut flipped);
        for (a, b) in plain_out.chunks_exact(11).zip(flipped.chunks_exact(11)) {
            let mirrored: Vec<f32> = a.iter().rev().copied().collect();
            assert_eq!(mirrored, b);
        }
    }

    /// The resize as first written, one channel at a time: the faster horizontal pass must give
    /// the same bits.
    fn resize_reference(img: &RgbImage, crop: Crop, size: usize, flip: bool) -> Vec<f32> {
        let (cw, ch) = (crop.w as usize, crop.h as usize);
        let horizontal = AxisFilter::bilinear(cw, size, 1.0 / 255.0);
        let vertical = AxisFilter::bilinear(ch, size, 1.0);
        let mut tmp = vec![0.0f32; 3 * ch * size];
        for y in 0..ch {
            for x in 0..size {
                let (start, w) = horizontal.taps(if flip { size - 1 - x } else { x });
                for k in 0..3 {
                    let mut acc = 0.0f32;
                    for (j, &w) in w.iter().enumerate() {
                        let px = img.get_pixel(crop.x + (start + j) as u32, crop.y + y as u32);
                        acc += w * f32::from(px[k]);
                    }
                    tmp[(k * ch + y) * size + x] = acc;
                }
            }
        }
        let mut out = vec![0.0f32; 3 * size * size];
        for k in 0..3 {
            for y in 0..size {
                let (start, w) = vertical.taps(y);
                for x in 0..size {
                    let mut acc = 0.0f32;
                    for (j, &w) in w.iter().enumerate() {
                        acc += w * tmp[(k * ch + start + j) * size + x];
                    }
                    out[(k * size + y) * size + x] = unit(acc);
                }
            }
        }
        out
    }

    #[test]
    fn resize_gives_the_bits_of_the_one_channel_at_a_time_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let img = RgbImage::from_fn(61, 47, |_, _| image::Rgb(rng.gen()));
        for _ in 0..300 {
            let w = rng.gen_range(1..=61);
            let h = rng.gen_range(1..=47);
            let crop = Crop {
                x: rng.gen_range(0..=61 - w),
                y: rng.gen_range(0..=47 - h),
                w,
                h,
            };
            let size = *[1usize, 7, 16, 33, 80].choose(&mut rng).unwrap();
            let flip = rng.gen();
            let want = resize_reference(&img, crop, size, flip);
            let mut got = vec![0.0; 3 * size * size];
            resize_region(&img, crop, size, flip, &mut got);
            assert_eq!(got, want, "{crop:?} -> {size}, flip {flip}");
            // The same through `render`, AVX2 where the CPU has it.
            let aug = Augment {
                image_size: size as u32,
                s: 1.0,
                blur: false,
            };
            aug.render(&img, &plain(crop, flip), &mut got);
            assert_eq!(got, want, "render {crop:?} -> {size}, flip {flip}");
        }
    }

    #[test]
    fn resize_is_the_identity_when_sizes_are_equal() {
        let img = colourful(7, 7);
        let mut out = vec![0.0; 3 * 49];
        eval_view(&img, 7, &mut out);
        let want: Vec<f32> = (0..3)
            .flat_map(|k| img.pixels().map(move |p| f32::from(p[k]) / 255.0))
            .collect();
        assert_near(&out, &want, 1e-6, "identity");
    }

    #[test]
    fn resize_of_a_constant_image_stays_constant() {
        let c = [37u8, 200, 128];
        for (w, h, size) in [(5, 9, 16), (5, 9, 3), (40, 30, 8), (3, 3, 224)] {
            let img = RgbImage::from_pixel(w, h, image::Rgb(c));
            let mut out = vec![0.0; 3 * size * size];
            eval_view(&img, size as u32, &mut out);
            let want: Vec<f32> = (0..3)
                .flat_map(|k| std::iter::repeat_n(f32::from(c[k]) / 255.0, size * size))
                .collect();
            // Normalised weights: only f32 rounding of a few products and sums.
            assert_near(&out, &want, 1e-6, &format!("{w}x{h}->{size}"));
        }
    }

    #[test]
    fn antialiased_2x_shrink_of_a_checkerboard_is_mid_grey() {
        let img = RgbImage::from_fn(16, 16, |x, y| image::Rgb([((x + y) % 2 * 255) as u8; 3]));
        let mut out = vec![0.0; 3 * 64];
        eval_view(&img, 8, &mut out);
        for y in 0..8 {
            for x in 0..8 {
                let corner = (x == 0 || x == 7) && (y == 0 || y == 7);
                // Inside, the widened triangle has weights (1, 3, 3, 1)/8 over two black and two
                // white pixels: exactly 1/2. At a corner PIL drops the outside tap in both
                // directions and renormalises (3, 3, 1)/7: 24/49 when the corner pixel is black,
                // 25/49 when white.
                let want = if !corner {
                    0.5
                } else if x == y {
                    // Output corners (0,0) and (7,7) sit on the black source corners.
                    24.0 / 49.0
                } else {
                    25.0 / 49.0
                };
                assert!(
                    (out[y * 8 + x] - want).abs() <= 1e-6,
                    "({x},{y}): {} vs {want}",
                    out[y * 8 + x]
                );
            }
        }
    }

    #[test]
    fn shrinking_averages_thin_lines_instead_of_missing_them() {
        // A white column every 4 pixels. Plain bilinear at 4x samples between two black
        // columns (0); the antialiased filter averages each 4-pixel cell: 1/4.
        let img = RgbImage::from_fn(16, 16, |x, _| {
            image::Rgb([if x % 4 == 0 { 255 } else { 0 }; 3])
        });
        let mut out = vec![0.0; 3 * 16];
        eval_view(&img, 4, &mut out);
        for y in 0..4 {
            for x in 1..3 {
                assert!((out[y * 4 + x] - 0.25).abs() <= 1e-6, "{}", out[y * 4 + x]);
            }
        }
    }

    #[derive(serde::Deserialize)]
    struct Fixture {
        resize: Vec<ResizeCase>,
        hue: HueCases,
        blur: Vec<BlurCase>,
    }
    #[derive(serde::Deserialize)]
    struct ResizeCase {
        width: u32,
        height: u32,
        size: usize,
        hwc_u8: Vec<u8>,
        chw: Vec<f32>,
    }
    #[derive(serde::Deserialize)]
    struct HueCases {
        pixels_chw: Vec<f32>,
        cases: Vec<HueCase>,
    }
    #[derive(serde::Deserialize)]
    struct HueCase {
        shift: f32,
        chw: Vec<f32>,
    }
    #[derive(serde::Deserialize)]
    struct BlurCase {
        size: usize,
        sigma: f32,
        chw_in: Vec<f32>,
        chw: Vec<f32>,
    }

    fn fixture() -> Fixture {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/augment_torchvision.json"
        ))
        .expect("augment fixture parses")
    }

    // The fixture holds 6 decimals; f32 arithmetic adds ~1e-7. 2e-6 leaves room for both.
    const FIXTURE_TOL: f32 = 2e-6;

    #[test]
    fn resize_matches_torch_antialiased_bilinear() {
        for c in fixture().resize {
            let img = RgbImage::from_raw(c.width, c.height, c.hwc_u8).unwrap();
            let mut out = vec![0.0; 3 * c.size * c.size];
            eval_view(&img, c.size as u32, &mut out);
            let what = format!("{}x{}->{}", c.width, c.height, c.size);
            assert_near(&out, &c.chw, FIXTURE_TOL, &what);
        }
    }

    // ---- colour ----

    #[test]
    fn grayscale_of_known_colours() {
        let mut img = chw(&[[1.0, 0.0, 0.0], [10.0 / 255.0, 200.0 / 255.0, 30.0 / 255.0]]);
        grayscale(&mut img);
        let second = (0.299 * 10.0 + 0.587 * 200.0 + 0.114 * 30.0) / 255.0;
        assert_near(
            &img,
            &[0.299, second, 0.299, second, 0.299, second],
            1e-6,
            "gray",
        );
    }

    #[test]
    fn brightness_scales_and_clamps() {
        let mut img = chw(&[[0.4, 0.8, 0.0]]);
        ColorOp::Brightness(1.5).apply(&mut img);
        assert_near(&img, &[0.6, 1.0, 0.0], 1e-6, "brightness 1.5");
        ColorOp::Brightness(0.5).apply(&mut img);
        assert_near(&img, &[0.3, 0.5, 0.0], 1e-6, "brightness 0.5");
    }

    #[test]
    fn contrast_blends_with_the_mean_luma() {
        let px = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        let mean = f32::midpoint(0.299, 0.114);
        let mut img = chw(&px);
        ColorOp::Contrast(0.5).apply(&mut img);
        let half = |v: f32| 0.5 * v + 0.5 * mean;
        let want = chw(&[
            [half(1.0), half(0.0), half(0.0)],
            [half(0.0), half(0.0), half(1.0)],
        ]);
        assert_near(&img, &want, 1e-6, "contrast 0.5");
        let mut img = chw(&px);
        ColorOp::Contrast(0.0).apply(&mut img);
        assert_near(&img, &[mean; 6], 1e-6, "contrast 0");
        let mut img = chw(&px);
        ColorOp::Contrast(2.0).apply(&mut img);
        // 2v - mean, clamped: 1 -> 1.7935 -> 1; 0 -> -0.2065 -> 0.
        assert_near(&img, &chw(&px), 1e-6, "contrast 2");
    }

    #[test]
    fn saturation_zero_is_grayscale_and_two_doubles_the_colour() {
        let px = [[0.6, 0.4, 0.2]];
        let gray = 0.299 * 0.6 + 0.587 * 0.4 + 0.114 * 0.2; // 0.4014
        let mut img = chw(&px);
        ColorOp::Saturation(0.0).apply(&mut img);
        assert_near(&img, &[gray; 3], 1e-6, "saturation 0");
        let mut img = chw(&px);
        ColorOp::Saturation(2.0).apply(&mut img);
        let want = [2.0 * 0.6 - gray, 2.0 * 0.4 - gray, 2.0 * 0.2 - gray];
        assert_near(
            &img,
            &want.map(|v: f32| v.clamp(0.0, 1.0)),
            1e-6,
            "saturation 2",
        );
    }

    #[test]
    fn hue_shifts_of_primaries() {
        let red = [1.0, 0.0, 0.0];
        let cases = [
            (1.0 / 3.0, [0.0, 1.0, 0.0]),  // a third of a turn: green
            (-1.0 / 3.0, [0.0, 0.0, 1.0]), // back a third: blue
            (1.0 / 6.0, [1.0, 1.0, 0.0]),  // a sixth: yellow
            (0.5, [0.0, 1.0, 1.0]),        // half: cyan
        ];
        for (shift, want) in cases {
            let mut img = chw(&[red, [0.3, 0.3, 0.3]]);
            ColorOp::Hue(shift).apply(&mut img);
            // Hue arithmetic in f32 around h = 2 or 4: a few ulps.
            assert_near(&pixel(&img, 0), &want, 1e-5, &format!("red + {shift}"));
            assert_eq!(pixel(&img, 1), [0.3; 3], "grey has no hue");
        }
        // Saturation and value are kept: a half-saturated dark orange keeps max and min.
        let mut img = chw(&[[0.5, 0.375, 0.25]]);
        ColorOp::Hue(0.5).apply(&mut img);
        assert_near(&pixel(&img, 0), &[0.25, 0.375, 0.5], 1e-6, "orange + 1/2");
    }

    #[test]
    fn hue_matches_torchvision() {
        let f = fixture();
        for c in f.hue.cases {
            let mut img = f.hue.pixels_chw.clone();
            ColorOp::Hue(c.shift).apply(&mut img);
            // torchvision goes through h / 6 and fmod in f32: a few ulps more than ours.
            assert_near(&img, &c.chw, 1e-5, &format!("hue {}", c.shift));
        }
    }

    // ---- blur ----

    #[test]
    fn gaussian_kernel_is_normalised_and_gaussian() {
        let k = gaussian_kernel(1.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() <= 1e-6);
        for i in 0..11 {
            assert_eq!(k[i], k[22 - i], "symmetric");
        }
        // Neighbours of the centre at sigma 1: ratio exp(1/2); at distance 2: exp(2).
        assert!((k[11] / k[12] - 0.5f32.exp()).abs() <= 1e-5);
        assert!((k[11] / k[13] - 2.0f32.exp()).abs() <= 1e-5);
    }

    #[test]
    fn blur_matches_torchvision_and_keeps_constants() {
        for c in fixture().blur {
            let mut img = c.chw_in.clone();
            gaussian_blur(&mut img, c.size, &gaussian_kernel(c.sigma));
            // 23x23 taps summed in f32 in a different order than conv2d.
            assert_near(&img, &c.chw, 1e-5, &format!("blur {} {}", c.size, c.sigma));
        }
        let mut img = vec![0.25f32; 3 * 30 * 30];
        gaussian_blur(&mut img, 30, &gaussian_kernel(2.0));
        assert_near(&img, &[0.25; 2700], 1e-6, "constant");
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect(-7, 1), 0);
    }

    // ---- sampling ----

    #[test]
    fn crop_falls_back_to_a_centre_crop_with_clamped_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Every try needs a height of at least sqrt(10000 * 0.08 * 3/4) = 24.5 > 10.
        let wide = sample_crop(1000, 10, &mut rng);
        assert_eq!(
            wide,
            Crop {
                x: 493,
                y: 0,
                w: 13,
                h: 10
            }
        ); // round(10 * 4/3) = 13
        let tall = sample_crop(10, 1000, &mut rng);
        assert_eq!(
            tall,
            Crop {
                x: 0,
                y: 493,
                w: 10,
                h: 13
            }
        ); // round(10 / (3/4)) = 13
           // An rng of zeros asks for 8% of a 1x1 image (rounds to 0) ten times: the whole image.
        let mut zeros = rand::rngs::mock::StepRng::new(0, 0);
        assert_eq!(
            sample_crop(1, 1, &mut zeros),
            Crop {
                x: 0,
                y: 0,
                w: 1,
                h: 1
            }
        );
    }

    #[test]
    fn crop_area_and_ratio_follow_torchvision() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 20_000;
        let (side, mut area_sum, mut log_ratio_sum) = (1000u32, 0.0, 0.0);
        for _ in 0..n {
            let c = sample_crop(side, side, &mut rng);
            assert!(c.x + c.w <= side && c.y + c.h <= side);
            let area = f64::from(c.w * c.h) / f64::from(side * side);
            let ratio = f64::from(c.w) / f64::from(c.h);
            // Rounding w and h (>= 245 px here) moves the area by < 2 * 0.5 / 245 relative, and the
            // ratio by < 4/3 * (0.5/245 + 0.5/245) = 0.0055.
            assert!((0.08 * (1.0 - 0.005)..=1.0).contains(&area), "area {area}");
            assert!(
                (0.75 - 0.0055..=4.0 / 3.0 + 0.0055).contains(&ratio),
                "ratio {ratio}"
            );
            area_sum += area;
            log_ratio_sum += ratio.ln();
        }
        // A try fits a square image iff f <= exp(-|u|) (u the log-ratio, |u| ~ U[0, a],
        // a = ln 4/3, f ~ U[0.08, 1]). The accepted f has mean
        //   E = [(1 - e^-2a)/4 - 0.0032 a] / [1 - e^-a - 0.08 a] = 0.4778,
        // and all ten tries fail with probability ~1e-8. The sd of f is ~0.25, so the mean of
        // 20,000 has sd ~0.0018; 0.01 is over 5 sd. The log-ratio is symmetric about 0 (sd ~0.17).
        let a = (4.0f64 / 3.0).ln();
        let expected =
            ((1.0 - (-2.0 * a).exp()) / 4.0 - 0.0032 * a) / (1.0 - (-a).exp() - 0.08 * a);
        let mean = area_sum / f64::from(n);
        assert!(
            (mean - expected).abs() < 0.01,
            "mean area {mean} vs {expected}"
        );
        assert!((log_ratio_sum / f64::from(n)).abs() < 0.006);
    }

    #[test]
    fn random_choices_happen_at_their_rates() {
        let aug = Augment {
            image_size: 32,
            s: 0.5,
            blur: true,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        let (mut flips, mut jitters, mut grays, mut blurs, mut first_hue) = (0, 0, 0, 0, 0);
        let (mut sigma_sum, mut brightness_sum) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let p = aug.sample(32, 32, &mut rng);
            flips += usize::from(p.flip);
            grays += usize::from(p.grayscale);
            if let Some(ops) = p.jitter {
                jitters += 1;
                first_hue += usize::from(matches!(ops[0], ColorOp::Hue(_)));
                let mut kinds = [false; 4];
                for op in ops {
                    let (kind, ok) = match op {
                        ColorOp::Brightness(f) => (0, (0.6..1.4).contains(&f)),
                        ColorOp::Contrast(f) => (1, (0.6..1.4).contains(&f)),
                        ColorOp::Saturation(f) => (2, (0.6..1.4).contains(&f)),
                        ColorOp::Hue(h) => (3, (-0.1..0.1).contains(&h)),
                    };
                    assert!(ok, "{op:?} outside its range for s = 0.5");
                    kinds[kind] = true;
                    if let ColorOp::Brightness(f) = op {
                        brightness_sum += f64::from(f);
                    }
                }
                assert_eq!(kinds, [true; 4], "each operation once");
            }
            if let Some(sigma) = p.blur_sigma {
                blurs += 1;
                assert!((0.1..2.0).contains(&sigma));
                sigma_sum += f64::from(sigma);
            }
        }
        // Binomial proportions of 20,000: sd <= 0.0036; 0.02 is over 5 sd.
        let rate = |k: usize| k as f64 / f64::from(n);
        assert!((rate(flips) - 0.5).abs() < 0.02, "flip {}", rate(flips));
        assert!(
            (rate(jitters) - 0.8).abs() < 0.02,
            "jitter {}",
            rate(jitters)
        );
        assert!((rate(grays) - 0.2).abs() < 0.02, "gray {}", rate(grays));
        assert!((rate(blurs) - 0.5).abs() < 0.02, "blur {}", rate(blurs));
        // Random order: hue first a quarter of the time (sd 0.0034 over ~16,000).
        assert!((first_hue as f64 / jitters as f64 - 0.25).abs() < 0.02);
        // Uniform factors: brightness mean 1 (sd 0.23 / sqrt(16,000) = 0.002), sigma mean 1.05
        // (sd 0.55 / sqrt(10,000) = 0.0055).
        assert!((brightness_sum / jitters as f64 - 1.0).abs() < 0.01);
        assert!((sigma_sum / blurs as f64 - 1.05).abs() < 0.03);

        let no_blur = Augment { blur: false, ..aug };
        assert!((0..2000).all(|_| no_blur.sample(32, 32, &mut rng).blur_sigma.is_none()));
    }

    #[test]
    fn grayscale_views_are_the_ones_with_equal_channels() {
        // With s = 0.5 no jitter factor reaches 0, so a colourful image keeps colour unless
        // grayscale is drawn: equal channels everywhere <=> grayscale.
        let aug = Augment {
            image_size: 16,
            s: 0.5,
            blur: false,
        };
        let img = colourful(32, 32);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut out = vec![0.0; aug.view_len()];
        let n = 4000;
        let mut gray = 0;
        for _ in 0..n {
            aug.view(&img, &mut rng, &mut out);
            let (r, rest) = out.split_at(256);
            let (g, b) = rest.split_at(256);
            gray += usize::from(r == g && g == b);
        }
        // sd of the rate over 4,000 views: 0.0063; 0.03 is over 4.7 sd.
        let rate = gray as f64 / f64::from(n);
        assert!((rate - 0.2).abs() < 0.03, "grayscale rate {rate}");
    }

    #[test]
    fn views_are_deterministic_and_in_the_unit_range() {
        let aug = Augment {
            image_size: 24,
            s: 1.25,
            blur: true,
        };
        let img = colourful(40, 30);
        let (mut a, mut b) = (vec![0.0; aug.view_len()], vec![0.0; aug.view_len()]);
        for seed in 0..200 {
            aug.view(&img, &mut ChaCha8Rng::seed_from_u64(seed), &mut a);
            aug.view(&img, &mut ChaCha8Rng::seed_from_u64(seed), &mut b);
            assert_eq!(a, b);
            assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn an_empty_image_gives_zeros() {
        let aug = Augment {
            image_size: 8,
            s: 1.0,
            blur: true,
        };
        let mut out = vec![1.0; aug.view_len()];
        aug.view(
            &RgbImage::new(0, 0),
            &mut ChaCha8Rng::seed_from_u64(5),
            &mut out,
        );
        assert!(out.iter().all(|&v| v == 0.0));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_renders_are_bit_identical() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let aug = Augment {
            image_size: 40,
            s: 1.0,
            blur: true,
        };
        let img = colourful(37, 29);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut a, mut b) = (vec![0.0; aug.view_len()], vec![0.0; aug.view_len()]);
        for _ in 0..100 {
            let p = aug.sample(37, 29, &mut rng);
            aug.render_baseline(&img, &p, &mut a);
            // SAFETY: AVX2 checked above.
            unsafe { aug.render_avx2(&img, &p, &mut b) };
            assert_eq!(a, b, "{p:?}");
        }
    }

    /// This thread's CPU time in ns (Linux), so timings on a shared machine count only our work.
    fn thread_cpu_ns() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }

    /// Where a view's time goes, stage by stage (AVX2 builds of each stage, as `render` runs
    /// them): `cargo test --release stage_profile -- --ignored --nocapture`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[ignore = "a profile to read by hand, not a check"]
    fn stage_profile() {
        #[target_feature(enable = "avx2")]
        fn resize(img: &RgbImage, crop: Crop, size: usize, flip: bool, out: &mut [f32]) {
            resize_region(img, crop, size, flip, out);
        }
        #[target_feature(enable = "avx2")]
        fn colour(op: ColorOp, out: &mut [f32]) {
            op.apply(out);
        }
        #[target_feature(enable = "avx2")]
        fn gray(out: &mut [f32]) {
            grayscale(out);
        }
        #[target_feature(enable = "avx2")]
        fn blur(out: &mut [f32], size: usize, sigma: f32) {
            gaussian_blur(out, size, &gaussian_kernel(sigma));
        }
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let cases = [
            ("32 -> 224", colourful(32, 32), 224usize, 400),
            ("500x375 -> 224", colourful(500, 375), 224, 200),
            ("32 -> 32", colourful(32, 32), 32, 20_000),
        ];
        for (what, img, size, n) in cases {
            let aug = Augment {
                image_size: size as u32,
                s: 1.0,
                blur: true,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(8);
            let mut out = vec![0.0; aug.view_len()];
            // resize, brightness, contrast, saturation, hue, grayscale, blur: ns in total, count.
            let mut stages = [(0.0f64, 0usize); 7];
            let mut timed = |k: usize, f: &mut dyn FnMut()| {
                let t = thread_cpu_ns().unwrap_or(0.0);
                f();
                stages[k].0 += thread_cpu_ns().unwrap_or(0.0) - t;
                stages[k].1 += 1;
            };
            for _ in 0..n {
                let p = aug.sample(img.width(), img.height(), &mut rng);
                // SAFETY (all calls below): AVX2 checked above.
                timed(0, &mut || unsafe {
                    resize(&img, p.crop, size, p.flip, &mut out);
                });
                for op in p.jitter.iter().flatten() {
                    let k = match op {
                        ColorOp::Brightness(_) => 1,
                        ColorOp::Contrast(_) => 2,
                        ColorOp::Saturation(_) => 3,
                        ColorOp::Hue(_) => 4,
                    };
                    timed(k, &mut || unsafe { colour(*op, &mut out) });
                }
                if p.grayscale {
                    timed(5, &mut || unsafe { gray(&mut out) });
                }
                if let Some(sigma) = p.blur_sigma {
                    timed(6, &mut || unsafe { blur(&mut out, size, sigma) });
                }
            }
            let names = [
                "resize",
                "brightness",
                "contrast",
                "saturation",
                "hue",
                "grayscale",
                "blur",
            ];
            println!("{what} ({n} views), CPU us per view where applied [per view overall]:");
            for (name, (ns, count)) in names.iter().zip(stages) {
                println!(
                    "  {name:<10} {:>8.1} [{:>7.1}]",
                    ns / 1e3 / count.max(1) as f64,
                    ns / 1e3 / f64::from(n)
                );
            }
        }
    }

    /// Views per second on one thread:
    /// `cargo test --release view_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement to read by hand, not a check"]
    fn view_throughput() {
        let img32 = colourful(32, 32);
        let img96 = colourful(96, 96);
        let img500 = colourful(500, 375);
        let cases = [
            ("32 -> 224, no blur", &img32, 224, false, 2000),
            ("32 -> 32, no blur", &img32, 32, false, 20_000),
            ("96 -> 224, blur", &img96, 224, true, 1000),
            ("500x375 -> 224, blur", &img500, 224, true, 500),
        ];
        for (what, img, size, blur, n) in cases {
            let aug = Augment {
                image_size: size,
                s: 1.0,
                blur,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(6);
            let mut out = vec![0.0; aug.view_len()];
            let (t, cpu) = (std::time::Instant::now(), thread_cpu_ns());
            for _ in 0..n {
                aug.view(img, &mut rng, &mut out);
            }
            let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            let cpu = thread_cpu_ns()
                .zip(cpu)
                .map(|(b, a)| format!(", cpu {:.1} us/view", (b - a) / 1e3 / f64::from(n)))
                .unwrap_or_default();
            println!(
                "{what}: {:.0} views/s (wall {wall:.1} us/view{cpu})",
                1e6 / wall
            );
        }
    }
}
