//! Images stored as three colour planes (R, G, B), the layout of the CIFAR and STL-10 files.

use image::RgbImage;

/// Pixel order within one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneOrder {
    /// Row after row (CIFAR): pixel (r, c) at `r * width + c`.
    RowMajor,
    /// Column after column (STL-10, written by MATLAB): pixel (r, c) at `c * height + r`.
    ColumnMajor,
}

/// Interleaves three `side` x `side` planes into an RGB image. `planes` holds exactly
/// `3 * side * side` bytes.
pub fn square_planes_to_rgb(planes: &[u8], side: u32, order: PlaneOrder) -> RgbImage {
    let n = (side * side) as usize;
    debug_assert_eq!(planes.len(), 3 * n);
    let (r, rest) = planes.split_at(n);
    let (g, b) = rest.split_at(n);
    let s = side as usize;
    let mut raw = Vec::with_capacity(3 * n);
    for row in 0..s {
        for col in 0..s {
            let i = match order {
                PlaneOrder::RowMajor => row * s + col,
                PlaneOrder::ColumnMajor => col * s + row,
            };
            raw.extend_from_slice(&[r[i], g[i], b[i]]);
        }
    }
    RgbImage::from_raw(side, side, raw).expect("buffer has 3 * side * side bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_and_column_major_place_pixels() {
        // 2x2: plane values encode their index so every position is checkable.
        let planes: Vec<u8> = (0..12).collect();
        let img = square_planes_to_rgb(&planes, 2, PlaneOrder::RowMajor);
        // (x=1, y=0) is row 0 col 1: index 1 in each plane.
        assert_eq!(img.get_pixel(1, 0).0, [1, 5, 9]);
        assert_eq!(img.get_pixel(0, 1).0, [2, 6, 10]);
        let img = square_planes_to_rgb(&planes, 2, PlaneOrder::ColumnMajor);
        // Row 0 col 1 is index c*2 + r = 2.
        assert_eq!(img.get_pixel(1, 0).0, [2, 6, 10]);
        assert_eq!(img.get_pixel(0, 1).0, [1, 5, 9]);
    }
}
