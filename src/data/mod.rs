//! Datasets: an in-memory set of decoded images with labels, the readers that fill it, the
//! two-view augmentation, and the batch loader.

pub mod augment;
pub mod catalog;
pub mod cifar;
pub mod download;
pub mod folder;
pub mod loader;
mod parallel;
mod planar;
pub mod shapes;
pub mod stl10;

use std::path::PathBuf;

use image::RgbImage;

use crate::config::Config;

/// Decoded images (kept as compact 8-bit RGB) with their class labels. For clustering the
/// training set is also the evaluation set (SPEC 2.7).
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub name: String,
    pub images: Vec<RgbImage>,
    pub labels: Vec<i64>,
    pub class_names: Vec<String>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Number of distinct labels present (the K of k-means).
    pub fn distinct_labels(&self) -> usize {
        let mut l = self.labels.clone();
        l.sort_unstable();
        l.dedup();
        l.len()
    }
}

/// Why a dataset could not be loaded. Every message names the file or folder and what is wrong
/// with it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown dataset `{0}`; known: {known} (or folder:PATH for an image folder)", known = catalog::known_names())]
    Unknown(String),
    #[error("dataset `{name}` not found: looked for {looked}; {hint}")]
    Missing {
        name: String,
        looked: String,
        hint: String,
    },
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is not a folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{} is {size} bytes, not a whole number of {record}-byte records ({what}): the file is truncated or is not {what}", path.display())]
    WrongSize {
        path: PathBuf,
        size: u64,
        record: u64,
        what: &'static str,
    },
    #[error("{} holds no images", path.display())]
    EmptyFile { path: PathBuf },
    #[error("{} record {record}: label {label} is out of range ({allowed})", path.display())]
    BadLabel {
        path: PathBuf,
        record: usize,
        label: i64,
        allowed: &'static str,
    },
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    #[error("{} is not a valid {format} file: {reason}", path.display())]
    BadFormat {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{} is not a readable image: {reason}", path.display())]
    BadImage { path: PathBuf, reason: String },
    #[error("class folder {} holds no images (extensions {})", path.display(), folder::EXTENSIONS.join(" "))]
    EmptyClass { path: PathBuf },
    #[error("{} has no class sub-folders: an image folder must look like {}/<class>/<image>", path.display(), path.display())]
    NoClasses { path: PathBuf },
    #[error("image index {index} is out of range: `{name}` has {len} images (0 to {})", len.saturating_sub(1))]
    IndexOutOfRange {
        name: String,
        index: usize,
        len: usize,
    },
}

impl DataError {
    pub(crate) fn read(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> DataError {
        DataError::Read {
            path: path.into(),
            reason: e.to_string(),
        }
    }
}

/// How far decoding has got: called from the decoding threads now and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeProgress<'a> {
    /// The dataset (or part of a concatenation) being decoded.
    pub dataset: &'a str,
    pub done: usize,
    pub total: usize,
}

/// A progress callback; it may be called from several threads.
pub type ProgressFn<'a> = &'a (dyn Fn(DecodeProgress<'_>) + Sync);

/// Loads the training set of `cfg`: the dataset named by `cfg.dataset`, or with
/// `customize_datasets` the concatenation of `cfg.custom_datasets` (SPEC 2.7, 2.9).
pub fn load(cfg: &Config) -> Result<ImageSet, DataError> {
    load_with_progress(cfg, &|_| {})
}

/// [`load`], reporting decoding progress.
pub fn load_with_progress(cfg: &Config, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
    if !cfg.customize_datasets {
        return load_named(&cfg.dataset, cfg, progress);
    }
    let mut parts = Vec::with_capacity(cfg.custom_datasets.len());
    for name in &cfg.custom_datasets {
        parts.push(load_named(name, cfg, progress)?);
    }
    Ok(ImageSet::concat("custom", parts))
}

/// The evaluation set of `cfg`: always the dataset named by `cfg.dataset` alone (with
/// `customize_datasets` off it is the training set itself).
pub fn load_evaluation(cfg: &Config) -> Result<ImageSet, DataError> {
    load_named(&cfg.dataset, cfg, &|_| {})
}

/// Loads one dataset by name (`shapes`, a name of [`catalog::NAMED`], or `folder:PATH`) with the
/// data root and worker count of `cfg`.
pub fn load_named(
    name: &str,
    cfg: &Config,
    progress: ProgressFn<'_>,
) -> Result<ImageSet, DataError> {
    if name == "shapes" {
        return Ok(shapes::generate(
            cfg.shapes_images as usize,
            cfg.shapes_resolution as u32,
            cfg.seed,
        )
        .0);
    }
    catalog::Source::open(name, &cfg.data_root)?.load(threads(cfg.workers), progress)
}

/// Decoding threads for a worker setting (0 = one per core).
pub(crate) fn threads(workers: usize) -> usize {
    if workers > 0 {
        workers
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl ImageSet {
    /// Several sets as one: labels are offset so that each part keeps its own classes, and class
    /// names are prefixed with the part's name (`cifar10/cat`).
    pub fn concat(name: &str, parts: Vec<ImageSet>) -> ImageSet {
        let mut out = ImageSet {
            name: name.to_string(),
            images: Vec::new(),
            labels: Vec::new(),
            class_names: Vec::new(),
        };
        for part in parts {
            let offset = out.class_names.len() as i64;
            out.class_names.extend(
                part.class_names
                    .iter()
                    .map(|c| format!("{}/{c}", part.name)),
            );
            out.labels.extend(part.labels.iter().map(|l| l + offset));
            out.images.extend(part.images);
        }
        out
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Bytes of decoded pixels held.
    pub fn pixel_bytes(&self) -> usize {
        self.images.iter().map(|i| i.as_raw().len()).sum()
    }
}
