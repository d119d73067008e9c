//! The datasets cdw knows by name (SPEC 2.7): where each lives under `data_root`, in which
//! layouts, where its official archive is, and how big it should be. [`Source`] opens whichever
//! layout is present, or a `folder:PATH`.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::cifar::{CifarBinary, CifarKind, CifarPython};
use super::folder::ImageFolder;
use super::stl10::Stl10;
use super::{DataError, ImageSet, ProgressFn};

/// How a dataset's files are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    CifarBinary(CifarKind),
    /// torchvision's download: Python pickles.
    CifarPython(CifarKind),
    Stl10,
    Folder,
}

/// One accepted layout: a folder under `data_root` in a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub folder: &'static str,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    TarGz,
    Zip,
}

/// An official archive (SPEC 2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    pub url: &'static str,
    pub md5: &'static str,
    pub kind: ArchiveKind,
    /// Approximate size, for messages.
    pub size: &'static str,
    /// Entries not extracted because cdw never reads them (STL-10's unlabelled split).
    pub skip: &'static [&'static str],
}

impl Archive {
    /// The archive's file name (the URL's last segment).
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }

    /// The URL to fetch: the official one, or `file_name` under `mirror` when given.
    pub fn url_with_mirror(&self, mirror: Option<&str>) -> String {
        match mirror {
            Some(m) if !m.is_empty() => format!("{}/{}", m.trim_end_matches('/'), self.file_name()),
            _ => self.url.to_string(),
        }
    }
}

/// A dataset cdw knows by name.
#[derive(Debug, Clone, Copy)]
pub struct NamedDataset {
    pub name: &'static str,
    pub description: &'static str,
    /// Accepted layouts, in order of preference; the first whose folder exists is read.
    pub layouts: &'static [Layout],
    /// `None` when there is no public download (ImageNet-10).
    pub archive: Option<Archive>,
    /// Images and classes of the complete training set (train + test).
    pub images: usize,
    pub classes: usize,
}

/// Where ImageNet-10 comes from.
pub const IMAGENET10_KAGGLE: &str = "liusha249/imagenet10";

pub static NAMED: [NamedDataset; 5] = [
    NamedDataset {
        name: "cifar10",
        description: "CIFAR-10, train 50,000 + test 10,000, 32x32",
        layouts: &[
            Layout {
                folder: "cifar-10-batches-bin",
                format: Format::CifarBinary(CifarKind::Cifar10),
            },
            Layout {
                folder: "cifar-10-batches-py",
                format: Format::CifarPython(CifarKind::Cifar10),
            },
        ],
        archive: Some(Archive {
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            kind: ArchiveKind::TarGz,
            size: "162 MB",
            skip: &[],
        }),
        images: 60_000,
        classes: 10,
    },
    NamedDataset {
        name: "cifar100",
        description: "CIFAR-100 with its 20 coarse super-classes, 60,000, 32x32",
        layouts: &[
            Layout {
                folder: "cifar-100-binary",
                format: Format::CifarBinary(CifarKind::Cifar100),
            },
            Layout {
                folder: "cifar-100-python",
                format: Format::CifarPython(CifarKind::Cifar100),
            },
        ],
        archive: Some(Archive {
            url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            md5: "03b5dce01913d631647c71ecec9e9cb8",
            kind: ArchiveKind::TarGz,
            size: "161 MB",
            skip: &[],
        }),
        images: 60_000,
        classes: 20,
    },
    NamedDataset {
        name: "stl10",
        description: "STL-10 labelled images, train 5,000 + test 8,000, 96x96",
        layouts: &[Layout {
            folder: "stl10_binary",
            format: Format::Stl10,
        }],
        archive: Some(Archive {
            url: "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
            md5: "91f7769df0f17e558f3565bffb0c7dfb",
            kind: ArchiveKind::TarGz,
            size: "2.6 GB",
            skip: &["stl10_binary/unlabeled_X.bin"],
        }),
        images: 13_000,
        classes: 10,
    },
    NamedDataset {
        name: "imagenet10",
        description: "ImageNet-10, 13,000 JPEGs in 10 class folders (Kaggle)",
        layouts: &[
            Layout {
                folder: "imagenet-10",
                format: Format::Folder,
            },
            Layout {
                folder: "imagenet10",
                format: Format::Folder,
            },
        ],
        archive: None,
        images: 13_000,
        classes: 10,
    },
    NamedDataset {
        name: "tiny-imagenet",
        description: "Tiny-ImageNet training folder, 100,000 JPEGs in 200 classes, 64x64",
        layouts: &[Layout {
            folder: "tiny-imagenet-200/train",
            format: Format::Folder,
        }],
        archive: Some(Archive {
            url: "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
            md5: "90528d7ca1a48142e341f4ef8d21d0de",
            kind: ArchiveKind::Zip,
            size: "237 MB",
            skip: &[],
        }),
        images: 100_000,
        classes: 200,
    },
];

/// The dataset called `name`, if cdw knows it.
pub fn named(name: &str) -> Option<&'static NamedDataset> {
    NAMED.iter().find(|d| d.name == name)
}

/// Every name `data::load` accepts, for messages.
pub fn known_names() -> String {
    let mut names: Vec<&str> = NAMED.iter().map(|d| d.name).collect();
    names.push("shapes");
    names.join(", ")
}

/// The default `data_root` of the shipped config; commands add `--data-root` only for others.
const DEFAULT_DATA_ROOT: &str = "./data";

impl NamedDataset {
    /// The first layout whose folder exists under `data_root`, with that folder.
    pub fn locate(&self, data_root: &Path) -> Option<(Layout, PathBuf)> {
        self.layouts
            .iter()
            .map(|l| (*l, data_root.join(l.folder)))
            .find(|(_, p)| p.exists())
    }

    /// The folder a download or a hand-placed copy goes to (the first layout's).
    pub fn target(&self, data_root: &Path) -> PathBuf {
        data_root.join(self.layouts[0].folder)
    }

    /// The command that fetches this dataset into `data_root`.
    pub fn download_command(&self, data_root: &Path) -> String {
        if data_root == Path::new(DEFAULT_DATA_ROOT) {
            format!("cdw datasets download {}", self.name)
        } else {
            format!(
                "cdw datasets download {} --data-root {}",
                self.name,
                data_root.display()
            )
        }
    }

    fn missing(&self, data_root: &Path) -> DataError {
        let looked = self
            .layouts
            .iter()
            .map(|l| data_root.join(l.folder).display().to_string())
            .collect::<Vec<_>>()
            .join(" and ");
        let hint = match self.archive {
            Some(_) => format!("download it with `{}`", self.download_command(data_root)),
            None => format!(
                "`{}` explains how to get it from Kaggle and where to put it",
                self.download_command(data_root)
            ),
        };
        DataError::Missing {
            name: self.name.into(),
            looked,
            hint,
        }
    }
}

/// A dataset on disk, opened and checked but not yet decoded.
#[derive(Debug, Clone)]
pub enum Source {
    CifarBinary(CifarBinary),
    CifarPython(CifarPython),
    Stl10(Stl10),
    Folder(ImageFolder),
}

impl Source {
    /// Opens a named dataset under `data_root`, or `folder:PATH`.
    pub fn open(name: &str, data_root: &Path) -> Result<Source, DataError> {
        if let Some(path) = name.strip_prefix("folder:") {
            return Ok(Source::Folder(ImageFolder::open(name, Path::new(path))?));
        }
        let ds = named(name).ok_or_else(|| DataError::Unknown(name.into()))?;
        let (layout, path) = ds.locate(data_root).ok_or_else(|| ds.missing(data_root))?;
        Source::open_layout(ds.name, layout.format, &path)
    }

    /// Opens `path` as `format`.
    pub fn open_layout(name: &str, format: Format, path: &Path) -> Result<Source, DataError> {
        Ok(match format {
            Format::CifarBinary(kind) => Source::CifarBinary(CifarBinary::open(kind, path)?),
            Format::CifarPython(kind) => Source::CifarPython(CifarPython::open(kind, path)?),
            Format::Stl10 => Source::Stl10(Stl10::open(path)?),
            Format::Folder => Source::Folder(ImageFolder::open(name, path)?),
        })
    }

    /// Where the files are.
    pub fn path(&self) -> &Path {
        match self {
            Source::CifarBinary(s) => &s.dir,
            Source::CifarPython(s) => &s.dir,
            Source::Stl10(s) => &s.dir,
            Source::Folder(s) => &s.root,
        }
    }

    /// Number of images (train + test).
    pub fn len(&self) -> usize {
        match self {
            Source::CifarBinary(s) => s.len(),
            Source::CifarPython(s) => s.len(),
            Source::Stl10(s) => s.len(),
            Source::Folder(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes every image on `threads` threads.
    pub fn load(&self, threads: usize, progress: ProgressFn<'_>) -> Result<ImageSet, DataError> {
        match self {
            Source::CifarBinary(s) => s.load(threads, progress),
            Source::CifarPython(s) => s.load(threads, progress),
            Source::Stl10(s) => s.load(threads, progress),
            Source::Folder(s) => s.load(threads, progress),
        }
    }

    /// Image `index` and its label, exactly as [`Source::load`] would hold it.
    pub fn image(&self, index: usize) -> Result<(RgbImage, i64), DataError> {
        match self {
            Source::CifarBinary(s) => s.image(index),
            Source::CifarPython(s) => s.image(index),
            Source::Stl10(s) => s.image(index),
            Source::Folder(s) => s.image(index),
        }
    }

    pub fn class_names(&self) -> Vec<String> {
        let fixed: &[&str] = match self {
            Source::CifarBinary(s) => s.kind.class_names(),
            Source::CifarPython(s) => s.kind.class_names(),
            Source::Stl10(_) => &super::stl10::CLASSES,
            Source::Folder(s) => return s.class_names.clone(),
        };
        fixed.iter().map(|s| s.to_string()).collect()
    }
}

/// What `cdw datasets list` reports for one named dataset.
#[derive(Debug)]
pub enum Status {
    /// None of the layouts' folders exists.
    Missing { looked: Vec<PathBuf> },
    /// A folder exists but cannot be read as the dataset.
    Invalid { path: PathBuf, error: DataError },
    /// Readable; `complete` when it has the official number of images.
    Present {
        path: PathBuf,
        images: usize,
        complete: bool,
        bytes: u64,
    },
}

/// Checks a named dataset's files without decoding images.
pub fn status(ds: &NamedDataset, data_root: &Path) -> Status {
    let Some((layout, path)) = ds.locate(data_root) else {
        return Status::Missing {
            looked: ds
                .layouts
                .iter()
                .map(|l| data_root.join(l.folder))
                .collect(),
        };
    };
    match Source::open_layout(ds.name, layout.format, &path) {
        Err(error) => Status::Invalid { path, error },
        Ok(source) => Status::Present {
            images: source.len(),
            complete: source.len() == ds.images,
            bytes: disk_usage(&path),
            path,
        },
    }
}

/// Bytes of the files under `path` (symbolic links not followed).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| disk_usage(&e.path()))
        .sum()
}
