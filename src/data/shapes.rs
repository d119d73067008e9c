//! `shapes`: the built-in synthetic dataset, generated from the seed with no files.
//!
//! Each image is one coloured shape on a textured background. The class label is the shape
//! (circle, square, triangle, cross). Colour, size, position, rotation, background texture and
//! background colour vary independently and are recorded as attributes, so the data has finer
//! structure than its labels: the kind of structure CD's feature heads are meant to discover.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::ImageSet;

pub const CLASS_NAMES: [&str; 4] = ["circle", "square", "triangle", "cross"];
pub const TEXTURE_NAMES: [&str; 3] = ["stripes", "checker", "noise"];

/// The factors of variation of one image, recorded beside its label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShapeAttributes {
    pub shape: usize,
    /// Hue of the shape in [0, 1).
    pub hue: f64,
    /// Radius as a fraction of the image side.
    pub size: f64,
    /// Centre as fractions of the image side.
    pub x: f64,
    pub y: f64,
    pub rotation: f64,
    pub texture: usize,
    /// Hue of the background in [0, 1).
    pub background_hue: f64,
    /// Seed of the `noise` texture's pixels (unused by the other textures), so that
    /// [`render`] redraws the image from its attributes alone.
    pub noise_seed: u64,
}

/// Generates `count` images of `resolution` x `resolution` pixels from `seed`. The same arguments
/// always give the same images.
pub fn generate(count: usize, resolution: u32, seed: u64) -> (ImageSet, Vec<ShapeAttributes>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5348_4150_4553); // "SHAPES"
    let mut images = Vec::with_capacity(count);
    let mut labels = Vec::with_capacity(count);
    let mut attributes = Vec::with_capacity(count);
    for i in 0..count {
        // Balanced classes, in a seeded order.
        let shape = i % CLASS_NAMES.len();
        let attr = ShapeAttributes {
            shape,
            hue: rng.gen(),
            size: rng.gen_range(0.18..0.38),
            x: rng.gen_range(0.3..0.7),
            y: rng.gen_range(0.3..0.7),
            rotation: rng.gen_range(0.0..std::f64::consts::TAU),
            texture: rng.gen_range(0..TEXTURE_NAMES.len()),
            background_hue: rng.gen(),
            noise_seed: rng.gen(),
        };
        images.push(render(&attr, resolution));
        labels.push(shape as i64);
        attributes.push(attr);
    }
    // Shuffle so that consecutive images are not in class order.
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let set = ImageSet {
        name: "shapes".into(),
        images: order.iter().map(|&i| images[i].clone()).collect(),
        labels: order.iter().map(|&i| labels[i]).collect(),
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    };
    let attributes = order.iter().map(|&i| attributes[i]).collect();
    (set, attributes)
}

/// Draws the image that `a` describes at `res` x `res` pixels: the generator's own drawing, so an
/// image regenerated from its recorded attributes equals the generated one.
pub fn render(a: &ShapeAttributes, res: u32) -> RgbImage {
    let mut noise = ChaCha8Rng::seed_from_u64(a.noise_seed);
    let bg_a = hsv_to_rgb(a.background_hue, 0.35, 0.75);
    let bg_b = hsv_to_rgb(a.background_hue, 0.35, 0.45);
    let fg = hsv_to_rgb(a.hue, 0.9, 0.95);
    let n = f64::from(res);
    let period = 6.0 / 32.0 * n;
    let (sin, cos) = a.rotation.sin_cos();
    RgbImage::from_fn(res, res, |px, py| {
        let (fx, fy) = (f64::from(px) + 0.5, f64::from(py) + 0.5);
        let background = match a.texture {
            0 => {
                if ((fx + fy) / period).floor() as i64 % 2 == 0 {
                    bg_a
                } else {
                    bg_b
                }
            }
            1 => {
                if ((fx / period).floor() as i64 + (fy / period).floor() as i64) % 2 == 0 {
                    bg_a
                } else {
                    bg_b
                }
            }
            _ => {
                let t: f64 = noise.gen();
                lerp(bg_a, bg_b, t)
            }
        };
        // Shape coordinates: centred, rotated, in units of the radius.
        let dx = (fx / n - a.x) / a.size;
        let dy = (fy / n - a.y) / a.size;
        let u = dx * cos + dy * sin;
        let v = -dx * sin + dy * cos;
        let inside = match a.shape {
            0 => u * u + v * v <= 1.0,
            1 => u.abs() <= 0.8 && v.abs() <= 0.8,
            2 => {
                // Equilateral triangle with circumradius 1, pointing up in its own frame.
                (-0.5..=1.0).contains(&v) && u.abs() <= (1.0 - v) / 3f64.sqrt()
            }
            _ => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        };
        let c = if inside { fg } else { background };
        Rgb([to_u8(c[0]), to_u8(c[1]), to_u8(c[2])])
    })
}

fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn to_u8(x: f64) -> u8 {
    (x * 255.0).round().clamp(0.0, 255.0) as u8
}

/// HSV in [0, 1] to RGB in [0, 1].
fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let i = h6.floor() as i64 % 6;
    let f = h6 - h6.floor();
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_images() {
        let (a, attrs_a) = generate(16, 32, 7);
        let (b, attrs_b) = generate(16, 32, 7);
        assert_eq!(a.labels, b.labels);
        assert_eq!(attrs_a, attrs_b);
        assert!(a.images.iter().zip(&b.images).all(|(x, y)| x == y));
        let (c, _) = generate(16, 32, 8);
        assert!(a.images.iter().zip(&c.images).any(|(x, y)| x != y));
    }

    #[test]
    fn classes_are_balanced_and_sized() {
        let (set, attrs) = generate(40, 24, 1);
        assert_eq!(set.images.len(), 40);
        assert!(set.images.iter().all(|im| im.dimensions() == (24, 24)));
        for class in 0..4 {
            assert_eq!(set.labels.iter().filter(|&&l| l == class).count(), 10);
        }
        assert!(attrs
            .iter()
            .zip(&set.labels)
            .all(|(a, &l)| a.shape as i64 == l));
        assert_eq!(set.class_names, CLASS_NAMES);
    }

    #[test]
    fn the_shape_is_drawn_at_its_centre() {
        let (set, attrs) = generate(8, 64, 3);
        for (im, a) in set.images.iter().zip(&attrs) {
            let fg = hsv_to_rgb(a.hue, 0.9, 0.95);
            let px = im.get_pixel((a.x * 64.0) as u32, (a.y * 64.0) as u32);
            let want = [to_u8(fg[0]), to_u8(fg[1]), to_u8(fg[2])];
            assert_eq!(px.0, want, "centre pixel of a {}", CLASS_NAMES[a.shape]);
        }
    }

    #[test]
    fn an_image_regenerated_from_its_attributes_has_the_same_pixels() {
        let (set, attrs) = generate(24, 32, 5);
        assert!(
            attrs.iter().any(|a| a.texture == 2),
            "no noise texture drawn"
        );
        for (im, a) in set.images.iter().zip(&attrs) {
            assert_eq!(im, &render(a, 32), "{a:?}");
        }
        // Another attribute value draws other pixels.
        let moved = ShapeAttributes {
            x: attrs[0].x + 0.1,
            ..attrs[0]
        };
        assert_ne!(set.images[0], render(&moved, 32));
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(
            hsv_to_rgb(1.0 / 3.0, 1.0, 1.0).map(|x| (x * 1e9).round() / 1e9),
            [0.0, 1.0, 0.0]
        );
        assert_eq!(hsv_to_rgb(0.5, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }
}
