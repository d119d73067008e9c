//! `cdw datasets`: list, download, check and sample the datasets of SPEC 2.7.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{ConfigError, ConfigFile};
use crate::console::{human_bytes, DecodeBar, DownloadBars, DownloadJson};
use crate::data::catalog::{self, NamedDataset, Source, Status, NAMED};
use crate::data::download::{self, Options};
use crate::data::{self, ImageSet};
use crate::events::Event;

use super::Failure;

/// `println!` that ignores a closed stdout (`cdw datasets list | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Args)]
pub struct DatasetsCmd {
    #[command(subcommand)]
    pub action: DatasetsAction,
}

#[derive(Debug, Subcommand)]
pub enum DatasetsAction {
    /// Each known dataset: whether it is present and valid, its folder and its size on disk.
    List(RootArgs),
    /// Fetch a dataset's official archive (resuming an interrupted transfer), check its MD5,
    /// extract it and check the result. Set CDW_DATASET_MIRROR=URL to fetch from a mirror.
    Download {
        /// cifar10, cifar100, stl10, tiny-imagenet (imagenet10: prints how to get it).
        name: String,
        #[command(flatten)]
        root: RootArgs,
        /// Keep the archive after extracting it.
        #[arg(long)]
        keep_archive: bool,
        /// Download even when the dataset is already present and complete.
        #[arg(long)]
        force: bool,
        /// Report progress as JSON lines on stdout (`download_progress` events, then
        /// `downloaded`, `download_manual` or `failed`).
        #[arg(long)]
        json: bool,
    },
    /// Read every image of a dataset and print the images per class.
    Check {
        /// A dataset name or folder:PATH.
        name: String,
        #[command(flatten)]
        root: RootArgs,
    },
    /// Write image I as a PNG, exactly as the loader holds it before augmentation.
    Sample {
        /// A dataset name or folder:PATH.
        name: String,
        /// Index in the training set (train images first, then test).
        #[arg(long)]
        index: usize,
        #[arg(long, value_name = "FILE.png")]
        out: PathBuf,
        #[command(flatten)]
        root: RootArgs,
    },
}

/// Where the datasets are.
#[derive(Debug, Args, Clone)]
pub struct RootArgs {
    /// Folder holding the datasets (default: `data_root` of the config, ./data).
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Config file to take `data_root` and `workers` from (default: the built-in one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl RootArgs {
    /// The configuration `name` would train with, with `--data-root` applied. Names without a
    /// block of their own in the config file get the `common` settings.
    fn config(&self, name: &str) -> Result<crate::config::Config, ConfigError> {
        let file = ConfigFile::load(self.config.as_deref())?;
        let mut cfg = match file.resolve(name, &[]) {
            Err(ConfigError::UnknownDataset { .. }) => file.resolve("folder:", &[])?,
            other => other?,
        };
        if let Some(root) = &self.data_root {
            cfg.data_root.clone_from(root);
        }
        Ok(cfg)
    }
}

pub fn run(cmd: DatasetsCmd) -> Result<ExitCode, Failure> {
    match cmd.action {
        DatasetsAction::List(root) => list(&root),
        DatasetsAction::Download {
            name,
            root,
            keep_archive,
            force,
            json,
        } => {
            let opts = Options {
                keep_archive,
                ..Options::default()
            };
            if json {
                download_json(&name, &root, &opts, force)
            } else {
                download(&name, &root, &opts, force)
            }
        }
        DatasetsAction::Check { name, root } => check(&name, &root),
        DatasetsAction::Sample {
            name,
            index,
            out,
            root,
        } => sample(&name, index, &out, &root),
    }
}

fn list(root: &RootArgs) -> Result<ExitCode, Failure> {
    out!(
        "{:<14} {:<11} {:>8} {:>10}  PATH",
        "DATASET",
        "STATUS",
        "IMAGES",
        "SIZE"
    );
    let mut notes = Vec::new();
    for ds in &NAMED {
        let data_root = root.config(ds.name)?.data_root;
        match catalog::status(ds, &data_root) {
            Status::Missing { looked } => {
                out!(
                    "{:<14} {:<11} {:>8} {:>10}  {}",
                    ds.name,
                    "missing",
                    "-",
                    "-",
                    looked[0].display()
                );
                notes.push(format!(
                    "{}: get it with `{}`",
                    ds.name,
                    ds.download_command(&data_root)
                ));
            }
            Status::Invalid { path, error } => {
                out!(
                    "{:<14} {:<11} {:>8} {:>10}  {}",
                    ds.name,
                    "invalid",
                    "-",
                    human_bytes(catalog::disk_usage(&path)),
                    path.display()
                );
                notes.push(format!("{}: {error}", ds.name));
            }
            Status::Present {
                path,
                images,
                complete,
                bytes,
            } => {
                let status = if complete { "ok" } else { "incomplete" };
                out!(
                    "{:<14} {:<11} {:>8} {:>10}  {}",
                    ds.name,
                    status,
                    images,
                    human_bytes(bytes),
                    path.display()
                );
                if !complete {
                    notes.push(format!(
                        "{}: {images} images, the official dataset has {}",
                        ds.name, ds.images
                    ));
                }
            }
        }
    }
    for n in notes {
        out!("  {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The dataset `name` names, with its data root; a name without a download is a usage error.
fn downloadable(name: &str, root: &RootArgs) -> Result<(&'static NamedDataset, PathBuf), Failure> {
    let Some(ds) = catalog::named(name) else {
        return Err(Failure::usage(format!(
            "no download for `{name}`; datasets with one: {}",
            NAMED.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        )));
    };
    Ok((ds, root.config(name)?.data_root))
}

/// Where `ds` already is, present and complete (unless `force` asks to download it again).
fn already_there(ds: &NamedDataset, data_root: &Path, force: bool) -> Option<PathBuf> {
    match catalog::status(ds, data_root) {
        Status::Present {
            path,
            complete: true,
            ..
        } if !force => Some(path),
        _ => None,
    }
}

fn download(name: &str, root: &RootArgs, opts: &Options, force: bool) -> Result<ExitCode, Failure> {
    let (ds, data_root) = downloadable(name, root)?;
    if ds.archive.is_none() {
        out!("{}", download::manual_instructions(ds, &data_root));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = already_there(ds, &data_root, force) {
        out!(
            "{name} is already present and complete in {} (use --force to download it again)",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut bars = DownloadBars::default();
    let result = download::install(ds, &data_root, opts, &mut |e| bars.show(e));
    bars.finish();
    let path = result.map_err(Failure::runtime)?;
    out!("{name} is ready in {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// [`download`] reporting JSON lines on stdout: progress, then the outcome (a failure too, with
/// the exit code it has without `--json`).
fn download_json(
    name: &str,
    root: &RootArgs,
    opts: &Options,
    force: bool,
) -> Result<ExitCode, Failure> {
    let mut view = DownloadJson::new(name);
    match download_outcome(name, root, opts, force, &mut view) {
        Ok(event) => {
            view.report(&event);
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            view.report(&Event::Failed {
                error: failure.message.clone(),
            });
            Err(failure)
        }
    }
}

/// Gets the dataset `name` showing progress in `view`: where it is now, or how to get it by hand.
fn download_outcome(
    name: &str,
    root: &RootArgs,
    opts: &Options,
    force: bool,
    view: &mut DownloadJson,
) -> Result<Event, Failure> {
    let (ds, data_root) = downloadable(name, root)?;
    if ds.archive.is_none() {
        return Ok(Event::DownloadManual {
            dataset: name.to_string(),
            instructions: download::manual_instructions(ds, &data_root),
        });
    }
    let path = match already_there(ds, &data_root, force) {
        Some(path) => path,
        None => download::install(ds, &data_root, opts, &mut |e| view.show(e))
            .map_err(Failure::runtime)?,
    };
    Ok(Event::Downloaded {
        dataset: name.to_string(),
        path: path.display().to_string(),
    })
}

fn check(name: &str, root: &RootArgs) -> Result<ExitCode, Failure> {
    let cfg = root.config(name)?;
    let set = if name == "shapes" {
        data::load_named(name, &cfg, &|_| {}).map_err(Failure::runtime)?
    } else {
        let source = Source::open(name, &cfg.data_root).map_err(data_failure)?;
        out!(
            "reading {} images from {}",
            source.len(),
            source.path().display()
        );
        let bar = DecodeBar::default();
        let set = source.load(data::threads(cfg.workers), &|p| bar.show(p));
        bar.finish();
        set.map_err(Failure::runtime)?
    };
    print_summary(&set);
    if let Some(ds) = catalog::named(name) {
        if set.len() == ds.images && set.class_names.len() == ds.classes {
            out!(
                "complete: the official {} images in {} classes",
                ds.images,
                ds.classes
            );
        } else {
            out!(
                "incomplete: the official {name} has {} images in {} classes",
                ds.images,
                ds.classes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(set: &ImageSet) {
    let dims = set.images.iter().map(|i| i.dimensions());
    let (min, max) = dims.fold(((u32::MAX, u32::MAX), (0, 0)), |(lo, hi), (w, h)| {
        ((lo.0.min(w), lo.1.min(h)), (hi.0.max(w), hi.1.max(h)))
    });
    let size = if set.is_empty() {
        "no images".to_string()
    } else if min == max {
        format!("{}x{}", min.0, min.1)
    } else {
        format!("{}x{} to {}x{}", min.0, min.1, max.0, max.1)
    };
    out!(
        "{}: {} images in {} classes, {size}, {} of pixels in memory",
        set.name,
        set.len(),
        set.class_names.len(),
        human_bytes(set.pixel_bytes() as u64)
    );
    let width = set.class_names.iter().map(|c| c.len()).max().unwrap_or(0);
    for (label, (class, count)) in set.class_names.iter().zip(set.class_counts()).enumerate() {
        out!("  {label:>4}  {class:<width$}  {count}");
    }
}

fn sample(name: &str, index: usize, out: &Path, root: &RootArgs) -> Result<ExitCode, Failure> {
    let cfg = root.config(name)?;
    let (image, label, class_names) = if name == "shapes" {
        let set = data::load_named(name, &cfg, &|_| {}).map_err(Failure::runtime)?;
        let len = set.len();
        let image = set.images.get(index).cloned().ok_or_else(|| {
            Failure::usage(data::DataError::IndexOutOfRange {
                name: name.into(),
                index,
                len,
            })
        })?;
        (image, set.labels[index], set.class_names)
    } else {
        let source = Source::open(name, &cfg.data_root).map_err(data_failure)?;
        let (image, label) = source.image(index).map_err(data_failure)?;
        (image, label, source.class_names())
    };
    image
        .save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", out.display())))?;
    let class = class_names.get(label as usize).map_or("?", String::as_str);
    out!(
        "{name} image {index}: label {label} ({class}), {}x{}, written to {}",
        image.width(),
        image.height(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A wrong name or index is the user's mistake (exit code 2); bad files are not (1).
fn data_failure(e: data::DataError) -> Failure {
    match e {
        data::DataError::Unknown(_) | data::DataError::IndexOutOfRange { .. } => Failure::usage(e),
        e => Failure::runtime(e),
    }
}
