//! Writing NumPy `.npy` files (format 1.0): the magic string, a Python-dict header padded to a
//! multiple of 64 bytes, then the little-endian C-order data, so `numpy.load` reads them as is.

use std::path::Path;

use crate::store::{write_atomic, StoreError};

/// An element type with a NumPy dtype.
pub trait NpyElement: Copy {
    /// The dtype string, e.g. `<f4`.
    const DESCR: &'static str;
    fn extend_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for f64 {
    const DESCR: &'static str = "<f8";
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// The bytes of an `.npy` file holding `data` with `shape` (C order).
///
/// # Panics
/// When `data.len()` is not the product of `shape` (a programming error, not user input).
pub fn npy_bytes<T: NpyElement>(shape: &[usize], data: &[T]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy shape {shape:?} does not match {} values",
        data.len()
    );
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + std::mem::size_of_val(data));
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in data {
        v.extend_le(&mut out);
    }
    out
}

/// Writes an `.npy` file (atomically: a crash leaves no half file).
pub fn write_npy<T: NpyElement>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), StoreError> {
    write_atomic(path, &npy_bytes(shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_describes_the_array() {
        let bytes = npy_bytes(&[2, 3], &[1f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with(" \n"));
        assert_eq!(bytes.len(), 10 + len + 24);
        assert_eq!(&bytes[10 + len + 4..10 + len + 8], &2f32.to_le_bytes());
        let one_d = npy_bytes(&[3], &[7i64, 8, 9]);
        assert!(std::str::from_utf8(&one_d[10..74])
            .unwrap()
            .contains("'<i8'"));
        assert!(std::str::from_utf8(&one_d[10..74])
            .unwrap()
            .contains("(3,)"));
    }

    #[test]
    fn numpy_loads_the_files() {
        let python = match crate::testing::venv_python(&["numpy"]) {
            Ok(py) => py,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        write_npy(
            &dir.path().join("a.npy"),
            &[2, 2],
            &[0.5f32, -1.0, 3.25, 1e-3],
        )
        .unwrap();
        write_npy(&dir.path().join("b.npy"), &[4], &[1i64, -2, 3, 1 << 40]).unwrap();
        write_npy(&dir.path().join("c.npy"), &[0, 5], &[] as &[f64]).unwrap();
        let script = "import numpy as np, sys, os\n\
            d = sys.argv[1]\n\
            a = np.load(os.path.join(d, 'a.npy'))\n\
            b = np.load(os.path.join(d, 'b.npy'))\n\
            c = np.load(os.path.join(d, 'c.npy'))\n\
            print(a.dtype, a.shape, a.tolist(), b.dtype, b.tolist(), c.dtype, c.shape)\n";
        let out = crate::testing::run_python(&python, script, &[dir.path().to_str().unwrap()]);
        assert_eq!(
            String::from_utf8(out).unwrap().trim(),
            "float32 (2, 2) [[0.5, -1.0], [3.25, 0.0010000000474974513]] int64 [1, -2, 3, 1099511627776] float64 (0, 5)"
        );
    }
}
