//! Datasets: an in-memory set of decoded images with labels, the readers that fill it, the
//! two-view augmentation, and the batch loader.

pub mod augment;
pub mod loader;
pub mod shapes;

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

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown dataset `{0}`")]
    Unknown(String),
    #[error("dataset `{name}` is not available yet in this build of cdw")]
    NotSupported { name: String },
}

/// Loads the dataset named by `cfg.dataset`.
pub fn load(cfg: &Config) -> Result<ImageSet, DataError> {
    match cfg.dataset.as_str() {
        "shapes" => Ok(shapes::generate(
            cfg.shapes_images as usize,
            cfg.shapes_resolution as u32,
            cfg.seed,
        )
        .0),
        "cifar10" | "cifar100" | "stl10" | "imagenet10" | "tiny-imagenet" => {
            Err(DataError::NotSupported {
                name: cfg.dataset.clone(),
            })
        }
        other if other.starts_with("folder:") => {
            Err(DataError::NotSupported { name: other.into() })
        }
        other => Err(DataError::Unknown(other.into())),
    }
}
