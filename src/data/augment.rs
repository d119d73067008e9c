//! Image transforms: the two-view training augmentation of SPEC 2.8 and the evaluation transform
//! of SPEC 2.6. Output is CHW `f32` in [0, 1], no mean/std normalisation.
//!
//! FIRST VERSION: random resized crop and horizontal flip only; colour jitter, grayscale and blur
//! come with the data-pipeline work.

use image::RgbImage;
use rand::Rng;

use crate::config::Config;

/// The training augmentation's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub image_size: u32,
    /// Colour-jitter strength.
    pub s: f64,
    pub blur: bool,
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

    /// Writes one augmented view of `img` into `out` (CHW, [0, 1]).
    pub fn view<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R, out: &mut [f32]) {
        let (w, h) = img.dimensions();
        let area = (w * h) as f64;
        let (mut cx, mut cy, mut cw, mut ch) = (0, 0, w, h);
        for _ in 0..10 {
            let target = area * rng.gen_range(0.08..=1.0);
            let ratio = rng
                .gen_range((3.0f64 / 4.0).ln()..=(4.0f64 / 3.0).ln())
                .exp();
            let tw = (target * ratio).sqrt().round() as u32;
            let th = (target / ratio).sqrt().round() as u32;
            if tw > 0 && th > 0 && tw <= w && th <= h {
                cx = rng.gen_range(0..=w - tw);
                cy = rng.gen_range(0..=h - th);
                cw = tw;
                ch = th;
                break;
            }
        }
        let flip = rng.gen_bool(0.5);
        resize_into(img, (cx, cy, cw, ch), self.image_size, flip, out);
    }
}

/// The evaluation transform: the whole image resized to `size` x `size`.
pub fn eval_view(img: &RgbImage, size: u32, out: &mut [f32]) {
    let (w, h) = img.dimensions();
    resize_into(img, (0, 0, w, h), size, false, out);
}

fn resize_into(img: &RgbImage, crop: (u32, u32, u32, u32), size: u32, flip: bool, out: &mut [f32]) {
    let (cx, cy, cw, ch) = crop;
    let s = size as usize;
    assert_eq!(out.len(), 3 * s * s);
    for oy in 0..s {
        let sy = ((oy as f64 + 0.5) * ch as f64 / s as f64 - 0.5).clamp(0.0, (ch - 1) as f64);
        let y0 = sy.floor() as u32;
        let y1 = (y0 + 1).min(ch - 1);
        let fy = (sy - y0 as f64) as f32;
        for ox in 0..s {
            let tx = if flip { s - 1 - ox } else { ox };
            let sx = ((tx as f64 + 0.5) * cw as f64 / s as f64 - 0.5).clamp(0.0, (cw - 1) as f64);
            let x0 = sx.floor() as u32;
            let x1 = (x0 + 1).min(cw - 1);
            let fx = (sx - x0 as f64) as f32;
            let p = |x, y| img.get_pixel(cx + x, cy + y).0;
            let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
            for k in 0..3 {
                let top = a[k] as f32 * (1.0 - fx) + b[k] as f32 * fx;
                let bottom = c[k] as f32 * (1.0 - fx) + d[k] as f32 * fx;
                out[k * s * s + oy * s + ox] = (top * (1.0 - fy) + bottom * fy) / 255.0;
            }
        }
    }
}
