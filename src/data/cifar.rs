//! CIFAR-10 and CIFAR-100 (20 coarse classes), from the binary archives' files or from
//! torchvision's Python-pickle downloads. The training set is train followed by test (SPEC 2.7).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::parallel::decode_all;
use super::planar::{square_planes_to_rgb, PlaneOrder};
use super::{DataError, DecodeProgress, ImageSet, ProgressFn};

pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The 20 super-classes CIFAR-100's coarse labels index.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Side of a CIFAR image.
pub const SIDE: u32 = 32;
/// Pixel bytes of one image: three 32x32 planes.
pub const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    Cifar10,
    /// CIFAR-100 labelled with its 20 coarse super-classes.
    Cifar100,
}

impl CifarKind {
    pub fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }

    /// Bytes of one record of the binary format: label byte(s), then the pixels.
    pub fn record_len(self) -> usize {
        self.label_bytes() + PIXELS
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            // coarse label, fine label
            CifarKind::Cifar100 => 2,
        }
    }

    /// The binary archive's files, train first.
    pub fn binary_files(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ],
            CifarKind::Cifar100 => &["train.bin", "test.bin"],
        }
    }

    /// torchvision's pickle files, train first.
    pub fn python_files(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => &[
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
            ],
            CifarKind::Cifar100 => &["train", "test"],
        }
    }

    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => &CIFAR10_CLASSES,
            CifarKind::Cifar100 => &CIFAR100_COARSE_CLASSES,
        }
    }

    /// The set named `name` holding these decoded images, with this kind's class names.
    fn image_set(self, name: &str, images: Vec<RgbImage>, labels: Vec<i64>) -> ImageSet {
        ImageSet {
            name: name.to_string(),
            images,
            labels,
            class_names: self.class_names().iter().map(|s| s.to_string()).collect(),
        }
    }

    fn allowed_labels(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "0 to 9",
            CifarKind::Cifar100 => "coarse labels 0 to 19, fine labels 0 to 99",
        }
    }

    fn format_name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "a CIFAR-10 binary batch",
            CifarKind::Cifar100 => "a CIFAR-100 binary file",
        }
    }

    /// The label of a binary record, checked.
    fn label(self, record: &[u8], path: &Path, index: usize) -> Result<i64, DataError> {
        let ok = match self {
            CifarKind::Cifar10 => record[0] < 10,
            CifarKind::Cifar100 => record[0] < 20 && record[1] < 100,
        };
        if !ok {
            let label = match self {
                CifarKind::Cifar100 if record[0] < 20 => record[1],
                _ => record[0],
            };
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record: index,
                label: i64::from(label),
                allowed: self.allowed_labels(),
            });
        }
        Ok(i64::from(record[0]))
    }

    fn image(self, record: &[u8]) -> RgbImage {
        square_planes_to_rgb(&record[self.label_bytes()..], SIDE, PlaneOrder::RowMajor)
    }
}

/// A CIFAR binary folder (`cifar-10-batches-bin` or `cifar-100-binary`), checked but not yet
/// decoded.
#[derive(Debug, Clone)]
pub struct CifarBinary {
    pub kind: CifarKind,
    pub dir: PathBuf,
    /// Each file with its number of records.
    files: Vec<(PathBuf, usize)>,
}

impl CifarBinary {
    /// Checks that every file is there and holds whole records.
    pub fn open(kind: CifarKind, dir: &Path) -> Result<CifarBinary, DataError> {
        let mut files = Vec::new();
        for name in kind.binary_files() {
            let path = dir.join(name);
            let size = std::fs::metadata(&path)
                .map_err(|e| DataError::read(&path, e))?
                .len();
            files.push((path.clone(), records_in(kind, &path, size)?));
        }
        Ok(CifarBinary {
            kind,
            dir: dir.to_path_buf(),
            files,
        })
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and decodes every image on `threads` threads.
    pub fn load(&self, threads: usize, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
        let rec = self.kind.record_len();
        let mut contents = Vec::with_capacity(self.files.len());
        // (first global index, file number) of each file, to find a record from its index.
        let mut starts = Vec::with_capacity(self.files.len());
        let mut total = 0;
        for (i, (path, _)) in self.files.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
            // Checked again: the file may have changed since `open`.
            let n = records_in(self.kind, path, bytes.len() as u64)?;
            starts.push(total);
            total += n;
            contents.push((i, bytes));
        }
        let name = self.kind.name();
        let decoded = decode_all(
            total,
            threads,
            |g| {
                let f = starts.partition_point(|&s| s <= g) - 1;
                let (i, bytes) = &contents[f];
                let local = g - starts[f];
                let record = &bytes[local * rec..(local + 1) * rec];
                let label = self.kind.label(record, &self.files[*i].0, local)?;
                Ok((self.kind.image(record), label))
            },
            |done| {
                progress(DecodeProgress {
                    dataset: name,
                    done,
                    total,
                });
            },
        )?;
        let (images, labels) = decoded.into_iter().unzip();
        Ok(self.kind.image_set(name, images, labels))
    }

    /// Image `index` of the training set (train, then test) and its label, read alone.
    pub fn image(&self, index: usize) -> Result<(RgbImage, i64), DataError> {
        let mut local = index;
        for (path, n) in &self.files {
            if local < *n {
                let rec = self.kind.record_len();
                let mut record = vec![0u8; rec];
                let mut f = File::open(path).map_err(|e| DataError::read(path, e))?;
                f.seek(SeekFrom::Start((local * rec) as u64))
                    .and_then(|_| f.read_exact(&mut record))
                    .map_err(|e| DataError::read(path, e))?;
                let label = self.kind.label(&record, path, local)?;
                return Ok((self.kind.image(&record), label));
            }
            local -= n;
        }
        Err(DataError::IndexOutOfRange {
            name: self.kind.name().into(),
            index,
            len: self.len(),
        })
    }
}

fn records_in(kind: CifarKind, path: &Path, size: u64) -> Result<usize, DataError> {
    let rec = kind.record_len() as u64;
    if size == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    if !size.is_multiple_of(rec) {
        return Err(DataError::WrongSize {
            path: path.into(),
            size,
            record: rec,
            what: kind.format_name(),
        });
    }
    Ok((size / rec) as usize)
}

/// torchvision's CIFAR download (`cifar-10-batches-py`, `cifar-100-python`): Python pickles of
/// dicts with `data` (a uint8 numpy array of N x 3072, planes as in the binary format) and
/// `labels` (CIFAR-10) or `coarse_labels` (CIFAR-100).
#[derive(Debug, Clone)]
pub struct CifarPython {
    pub kind: CifarKind,
    pub dir: PathBuf,
    /// Each file with its number of images.
    files: Vec<(PathBuf, usize)>,
}

/// One pickle file's content: pixel rows and checked labels.
struct PythonBatch {
    data: Vec<u8>,
    labels: Vec<i64>,
}

impl CifarPython {
    /// Reads every pickle once to check it.
    pub fn open(kind: CifarKind, dir: &Path) -> Result<CifarPython, DataError> {
        let mut files = Vec::new();
        for name in kind.python_files() {
            let path = dir.join(name);
            let batch = read_python_batch(kind, &path)?;
            files.push((path, batch.labels.len()));
        }
        Ok(CifarPython {
            kind,
            dir: dir.to_path_buf(),
            files,
        })
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and decodes every image on `threads` threads.
    pub fn load(&self, threads: usize, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
        let total = self.len();
        let name = self.kind.name();
        let mut images = Vec::with_capacity(total);
        let mut labels = Vec::with_capacity(total);
        for (path, _) in &self.files {
            let batch = read_python_batch(self.kind, path)?;
            let before = images.len();
            let decoded = decode_all(
                batch.labels.len(),
                threads,
                |i| {
                    Ok::<_, DataError>(square_planes_to_rgb(
                        &batch.data[i * PIXELS..(i + 1) * PIXELS],
                        SIDE,
                        PlaneOrder::RowMajor,
                    ))
                },
                |done| {
                    progress(DecodeProgress {
                        dataset: name,
                        done: before + done,
                        total,
                    });
                },
            )?;
            images.extend(decoded);
            labels.extend(batch.labels);
        }
        Ok(self.kind.image_set(name, images, labels))
    }

    /// Image `index` of the training set (train, then test) and its label; reads one file.
    pub fn image(&self, index: usize) -> Result<(RgbImage, i64), DataError> {
        let mut local = index;
        for (path, n) in &self.files {
            if local < *n {
                let batch = read_python_batch(self.kind, path)?;
                let row = batch
                    .data
                    .get(local * PIXELS..(local + 1) * PIXELS)
                    .ok_or_else(|| DataError::Read {
                        path: path.clone(),
                        reason: "the file changed while it was read".into(),
                    })?;
                let img = square_planes_to_rgb(row, SIDE, PlaneOrder::RowMajor);
                return Ok((img, batch.labels[local]));
            }
            local -= n;
        }
        Err(DataError::IndexOutOfRange {
            name: self.kind.name().into(),
            index,
            len: self.len(),
        })
    }
}

fn read_python_batch(kind: CifarKind, path: &Path) -> Result<PythonBatch, DataError> {
    let bad = |reason: String| DataError::BadFormat {
        path: path.into(),
        format: "CIFAR python batch",
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
    let value = crate::pickle::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if value.dict_items().is_none() {
        return Err(bad(format!("expected a dict, found {}", value.describe())));
    }
    let data = value
        .get("data")
        .ok_or_else(|| bad("no `data` entry".into()))?;
    let array = crate::pickle::numpy_array(data)
        .ok_or_else(|| bad(format!("`data` is {}, not a numpy array", data.describe())))?;
    if !array.dtype.ends_with("u1")
        || array.fortran_order
        || array.shape.len() != 2
        || array.shape[1] != PIXELS
    {
        return Err(bad(format!(
            "`data` is a {} array of shape {:?}{}, expected uint8 of shape [N, {PIXELS}]",
            array.dtype,
            array.shape,
            if array.fortran_order {
                " (Fortran order)"
            } else {
                ""
            }
        )));
    }
    let n = array.shape[0];
    let key = match kind {
        CifarKind::Cifar10 => "labels",
        CifarKind::Cifar100 => "coarse_labels",
    };
    let raw = value
        .get(key)
        .ok_or_else(|| bad(format!("no `{key}` entry")))?;
    let labels = python_ints(raw).ok_or_else(|| {
        bad(format!(
            "`{key}` is {}, not a list of integers",
            raw.describe()
        ))
    })?;
    if labels.len() != n {
        return Err(bad(format!(
            "`data` holds {n} images but `{key}` holds {} labels",
            labels.len()
        )));
    }
    let classes = kind.class_names().len() as i64;
    if let Some((record, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| !(0..classes).contains(*l))
    {
        return Err(DataError::BadLabel {
            path: path.into(),
            record,
            label,
            allowed: match kind {
                CifarKind::Cifar10 => "0 to 9",
                CifarKind::Cifar100 => "coarse labels 0 to 19",
            },
        });
    }
    if n == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    Ok(PythonBatch {
        data: array.data,
        labels,
    })
}

/// A list or tuple of ints (how the CIFAR pickles store labels).
fn python_ints(v: &crate::pickle::Value) -> Option<Vec<i64>> {
    v.as_seq()?.iter().map(|x| x.as_int()).collect()
}
