//! Image folders (`root/<class>/<image>`, as torchvision's `ImageFolder` reads them): ImageNet-10,
//! Tiny-ImageNet and any `folder:PATH`.
//!
//! Classes are the sub-folders of the root in byte order; a class's images are found recursively
//! (Tiny-ImageNet keeps them in `<class>/images/`), folders visited in the order of their full
//! paths and files in name order, so indices and labels match torchvision's. Only files with an
//! image extension count; every image is decoded once, converted to 8-bit RGB.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::parallel::decode_all;
use super::{DataError, DecodeProgress, ImageSet, ProgressFn};

/// File extensions read as images (compared case-insensitively).
pub const EXTENSIONS: [&str; 9] = [
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
];

/// Deepest folder nesting followed below a class folder; guards against symbolic-link loops.
const MAX_DEPTH: usize = 32;

/// An image folder, listed but not yet decoded.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub name: String,
    pub root: PathBuf,
    pub class_names: Vec<String>,
    files: Vec<PathBuf>,
    labels: Vec<i64>,
}

impl ImageFolder {
    /// Lists the classes and their image files. Errors: the root is missing, unreadable or not a
    /// folder; it has no class folders; a class folder holds no image.
    pub fn open(name: &str, root: &Path) -> Result<ImageFolder, DataError> {
        let meta = std::fs::metadata(root).map_err(|e| DataError::read(root, e))?;
        if !meta.is_dir() {
            return Err(DataError::NotAFolder { path: root.into() });
        }
        let mut classes: Vec<(PathBuf, String)> = Vec::new();
        for entry in read_dir_sorted(root)? {
            if std::fs::metadata(&entry).is_ok_and(|m| m.is_dir()) {
                let class = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                classes.push((entry, class));
            }
        }
        if classes.is_empty() {
            return Err(DataError::NoClasses { path: root.into() });
        }
        let mut files = Vec::new();
        let mut labels = Vec::new();
        for (label, (dir, _)) in classes.iter().enumerate() {
            let before = files.len();
            let mut dirs = Vec::new();
            collect_dirs(dir, 0, &mut dirs)?;
            dirs.sort_by(|a, b| {
                a.as_os_str()
                    .as_encoded_bytes()
                    .cmp(b.as_os_str().as_encoded_bytes())
            });
            for d in &dirs {
                for entry in read_dir_sorted(d)? {
                    if has_image_extension(&entry)
                        && !std::fs::metadata(&entry).is_ok_and(|m| m.is_dir())
                    {
                        files.push(entry);
                    }
                }
            }
            if files.len() == before {
                return Err(DataError::EmptyClass { path: dir.clone() });
            }
            labels.resize(files.len(), label as i64);
        }
        Ok(ImageFolder {
            name: name.to_string(),
            root: root.to_path_buf(),
            class_names: classes.into_iter().map(|(_, c)| c).collect(),
            files,
            labels,
        })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The image files in index order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Decodes every image on `threads` threads.
    pub fn load(&self, threads: usize, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
        let total = self.files.len();
        let images = decode_all(
            total,
            threads,
            |i| decode(&self.files[i]),
            |done| {
                progress(DecodeProgress {
                    dataset: &self.name,
                    done,
                    total,
                });
            },
        )?;
        Ok(ImageSet {
            name: self.name.clone(),
            images,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        })
    }

    /// Image `index` and its label, decoded alone.
    pub fn image(&self, index: usize) -> Result<(RgbImage, i64), DataError> {
        match self.files.get(index) {
            Some(path) => Ok((decode(path)?, self.labels[index])),
            None => Err(DataError::IndexOutOfRange {
                name: self.name.clone(),
                index,
                len: self.len(),
            }),
        }
    }
}

/// Decodes an image file (format from its content, else its extension) to 8-bit RGB.
pub fn decode(path: &Path) -> Result<RgbImage, DataError> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| DataError::read(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::read(path, e))?;
    let img = reader.decode().map_err(|e| DataError::BadImage {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Ok(img.into_rgb8())
}

fn has_image_extension(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    EXTENSIONS.iter().any(|ext| name.ends_with(ext))
}

/// The entries of `dir`, sorted by name bytes.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::read(dir, e))? {
        entries.push(entry.map_err(|e| DataError::read(dir, e))?.path());
    }
    entries.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(entries)
}

/// `dir` and every folder below it (following symbolic links, as torchvision does).
fn collect_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    out.push(dir.to_path_buf());
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    for entry in read_dir_sorted(dir)? {
        if std::fs::metadata(&entry).is_ok_and(|m| m.is_dir()) {
            collect_dirs(&entry, depth + 1, out)?;
        }
    }
    Ok(())
}
