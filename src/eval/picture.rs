//! Scatter pictures of 2-D maps (t-SNE), one colour per class, drawn pixel by pixel into an RGB
//! image with a legend of class numbers, so no plotting or font library is needed.

use image::{Rgb, RgbImage};

/// Matplotlib's `tab20` colours, in its order; classes beyond 20 cycle.
const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];

/// 3 x 5 pixel digits, one row of 3 bits per line (most significant bit = left column).
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 3, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Colour of class index `class` (its position among the sorted distinct labels).
pub fn class_colour(class: usize) -> Rgb<u8> {
    Rgb(PALETTE[class % PALETTE.len()])
}

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const GREY: Rgb<u8> = Rgb([160, 160, 160]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const PLOT: u32 = 760;
const MARGIN: u32 = 20;
const LEGEND: u32 = 90;
const RADIUS: i64 = 3;

/// Draws `points` coloured by `labels` (any integer labels; colours follow their sorted order)
/// with a legend listing each label next to its colour.
pub fn scatter(points: &[[f32; 2]], labels: &[i64]) -> RgbImage {
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let height = PLOT + 2 * MARGIN;
    let mut img = RgbImage::from_pixel(PLOT + 2 * MARGIN + LEGEND, height, WHITE);
    frame(&mut img, MARGIN - 2, MARGIN - 2, PLOT + 3, PLOT + 3, GREY);

    let finite = points
        .iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite());
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in finite {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    // One scale for both axes keeps distances honest; centre the shorter axis.
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(f32::MIN_POSITIVE);
    let inner = (PLOT - 2 * RADIUS as u32) as f32;
    let offset = [
        (span - (hi[0] - lo[0])) / 2.0,
        (span - (hi[1] - lo[1])) / 2.0,
    ];
    for (p, l) in points.iter().zip(labels) {
        if !(p[0].is_finite() && p[1].is_finite()) {
            continue;
        }
        let class = classes.binary_search(l).unwrap_or(0);
        let px = MARGIN as f32 + RADIUS as f32 + (p[0] - lo[0] + offset[0]) / span * inner;
        // Image rows grow downwards; the map's y grows upwards.
        let py = MARGIN as f32 + RADIUS as f32 + inner - (p[1] - lo[1] + offset[1]) / span * inner;
        disc(
            &mut img,
            px.round() as i64,
            py.round() as i64,
            class_colour(class),
        );
    }

    let x0 = PLOT + 2 * MARGIN;
    for (i, label) in classes.iter().enumerate() {
        let y = MARGIN + 16 * i as u32;
        if y + 12 > height {
            break; // more classes than fit; the CSV beside the picture has them all
        }
        for dy in 0..10 {
            for dx in 0..10 {
                img.put_pixel(x0 + dx, y + dy, class_colour(i));
            }
        }
        text(&mut img, x0 + 16, y, &label.to_string(), BLACK);
    }
    img
}

fn disc(img: &mut RgbImage, cx: i64, cy: i64, colour: Rgb<u8>) {
    for dy in -RADIUS..=RADIUS {
        for dx in -RADIUS..=RADIUS {
            if dx * dx + dy * dy <= RADIUS * RADIUS {
                let (x, y) = (cx + dx, cy + dy);
                if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                    img.put_pixel(x as u32, y as u32, colour);
                }
            }
        }
    }
}

fn frame(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    for i in 0..w {
        img.put_pixel(x + i, y, colour);
        img.put_pixel(x + i, y + h - 1, colour);
    }
    for j in 0..h {
        img.put_pixel(x, y + j, colour);
        img.put_pixel(x + w - 1, y + j, colour);
    }
}

/// Writes digits and '-' at scale 2 (6 x 10 pixels per character).
fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, colour: Rgb<u8>) {
    for (n, ch) in s.chars().enumerate() {
        let glyph = match ch {
            '0'..='9' => DIGITS[ch as usize - '0' as usize],
            '-' => [0, 0, 7, 0, 0],
            _ => continue,
        };
        let cx = x + 8 * n as u32;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3u32 {
                if bits & (4 >> col) != 0 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let (px, py) = (cx + 2 * col + dx, y + 2 * row as u32 + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, colour);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_in_their_corners_with_class_colours() {
        let points = [[0.0f32, 0.0], [10.0, 10.0], [0.0, 10.0], [f32::NAN, 1.0]];
        let labels = [7i64, 3, 7, 3];
        let img = scatter(&points, &labels);
        assert_eq!(
            img.dimensions(),
            (PLOT + 2 * MARGIN + LEGEND, PLOT + 2 * MARGIN)
        );
        let lo = MARGIN + RADIUS as u32;
        let hi = MARGIN + PLOT - RADIUS as u32;
        // Classes sorted: 3 -> colour 0, 7 -> colour 1. (0,0) is bottom left.
        assert_eq!(*img.get_pixel(lo, hi), class_colour(1));
        assert_eq!(*img.get_pixel(hi, lo), class_colour(0));
        assert_eq!(*img.get_pixel(lo, lo), class_colour(1));
        assert_eq!(*img.get_pixel(hi, hi), WHITE);
        // Legend swatches in class order.
        assert_eq!(
            *img.get_pixel(PLOT + 2 * MARGIN + 5, MARGIN + 5),
            class_colour(0)
        );
        assert_eq!(
            *img.get_pixel(PLOT + 2 * MARGIN + 5, MARGIN + 21),
            class_colour(1)
        );
    }

    #[test]
    fn degenerate_maps_still_draw() {
        let img = scatter(&[[1.0, 1.0], [1.0, 1.0]], &[0, 0]);
        assert!(img.pixels().any(|p| *p == class_colour(0)));
        let empty = scatter(&[], &[]);
        assert!(empty.pixels().all(|p| *p == WHITE || *p == GREY));
    }
}
