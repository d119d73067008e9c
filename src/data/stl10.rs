//! STL-10's labelled images (train 5,000 + test 8,000) from `stl10_binary`: 96x96 images stored
//! as three column-major planes, labels 1-10 in separate files. The 100k unlabelled split is not
//! used (SPEC 2.7).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::parallel::decode_all;
use super::planar::{square_planes_to_rgb, PlaneOrder};
use super::{DataError, DecodeProgress, ImageSet, ProgressFn};

pub const CLASSES: [&str; 10] = [
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
];
pub const SIDE: u32 = 96;
/// Bytes of one image: three 96x96 planes.
pub const IMAGE_BYTES: usize = 3 * 96 * 96;
/// (images, labels) file pairs, train first.
pub const SPLITS: [(&str, &str); 2] =
    [("train_X.bin", "train_y.bin"), ("test_X.bin", "test_y.bin")];

/// An `stl10_binary` folder, checked but not yet decoded.
#[derive(Debug, Clone)]
pub struct Stl10 {
    pub dir: PathBuf,
    /// Image file, its labels (0-based, checked), per split.
    splits: Vec<(PathBuf, Vec<i64>)>,
}

impl Stl10 {
    /// Checks file sizes and reads the labels.
    pub fn open(dir: &Path) -> Result<Stl10, DataError> {
        let mut splits = Vec::new();
        for (x, y) in SPLITS {
            let (x, y) = (dir.join(x), dir.join(y));
            let size = std::fs::metadata(&x)
                .map_err(|e| DataError::read(&x, e))?
                .len();
            let images = images_in(&x, size)?;
            let raw = std::fs::read(&y).map_err(|e| DataError::read(&y, e))?;
            if raw.len() != images {
                return Err(DataError::CountMismatch {
                    images_path: x,
                    images,
                    labels_path: y,
                    labels: raw.len(),
                });
            }
            let mut labels = Vec::with_capacity(raw.len());
            for (i, &l) in raw.iter().enumerate() {
                if !(1..=10).contains(&l) {
                    return Err(DataError::BadLabel {
                        path: y,
                        record: i,
                        label: i64::from(l),
                        allowed: "1 to 10",
                    });
                }
                labels.push(i64::from(l) - 1);
            }
            splits.push((x, labels));
        }
        Ok(Stl10 {
            dir: dir.to_path_buf(),
            splits,
        })
    }

    pub fn len(&self) -> usize {
        self.splits.iter().map(|(_, l)| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and decodes every image on `threads` threads.
    pub fn load(&self, threads: usize, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
        let total = self.len();
        let mut images = Vec::with_capacity(total);
        let mut labels = Vec::with_capacity(total);
        for (path, split_labels) in &self.splits {
            let bytes = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
            let n = images_in(path, bytes.len() as u64)?;
            if n != split_labels.len() {
                return Err(DataError::Read {
                    path: path.clone(),
                    reason: "the file changed while it was read".into(),
                });
            }
            let before = images.len();
            let decoded = decode_all(
                n,
                threads,
                |i| {
                    Ok::<_, DataError>(square_planes_to_rgb(
                        &bytes[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES],
                        SIDE,
                        PlaneOrder::ColumnMajor,
                    ))
                },
                |done| {
                    progress(DecodeProgress {
                        dataset: "stl10",
                        done: before + done,
                        total,
                    });
                },
            )?;
            images.extend(decoded);
            labels.extend_from_slice(split_labels);
        }
        Ok(ImageSet {
            name: "stl10".into(),
            images,
            labels,
            class_names: CLASSES.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Image `index` of the training set (train, then test) and its label, read alone.
    pub fn image(&self, index: usize) -> Result<(RgbImage, i64), DataError> {
        let mut local = index;
        for (path, labels) in &self.splits {
            if local < labels.len() {
                let mut planes = vec![0u8; IMAGE_BYTES];
                let mut f = File::open(path).map_err(|e| DataError::read(path, e))?;
                f.seek(SeekFrom::Start((local * IMAGE_BYTES) as u64))
                    .and_then(|_| f.read_exact(&mut planes))
                    .map_err(|e| DataError::read(path, e))?;
                let img = square_planes_to_rgb(&planes, SIDE, PlaneOrder::ColumnMajor);
                return Ok((img, labels[local]));
            }
            local -= labels.len();
        }
        Err(DataError::IndexOutOfRange {
            name: "stl10".into(),
            index,
            len: self.len(),
        })
    }
}

fn images_in(path: &Path, size: u64) -> Result<usize, DataError> {
    if size == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    if !size.is_multiple_of(IMAGE_BYTES as u64) {
        return Err(DataError::WrongSize {
            path: path.into(),
            size,
            record: IMAGE_BYTES as u64,
            what: "an STL-10 image file",
        });
    }
    Ok((size / IMAGE_BYTES as u64) as usize)
}
