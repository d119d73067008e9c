//! Fetching a dataset's official archive (SPEC 2.7): a resumable HTTP download into a `.part`
//! file, the MD5 check, extraction into a staging folder that is moved into place only when
//! complete, and a check that the result reads as the dataset.
//!
//! Progress is reported as plain [`DownloadEvent`] values, so a progress bar, JSON lines or a UI
//! can show it.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::catalog::{Archive, ArchiveKind, Format, NamedDataset, Source, IMAGENET10_KAGGLE};
use super::DataError;

/// Environment variable naming a base URL that replaces the official hosts: the archive is
/// fetched from `$CDW_DATASET_MIRROR/<archive file name>` (a local mirror, or a test server).
pub const MIRROR_ENV: &str = "CDW_DATASET_MIRROR";

/// What a download is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadEvent {
    /// Requesting `url`, asking for the bytes after `resume_from` (0: from the start).
    Request { url: String, resume_from: u64 },
    /// Bytes of the archive on disk so far, of `total` when the server says.
    Received { done: u64, total: Option<u64> },
    /// The connection broke off; trying again from `done`.
    Retry {
        attempt: u32,
        done: u64,
        reason: String,
    },
    /// An archive already on disk is used instead of downloading.
    Found { path: PathBuf },
    /// Computing the MD5 of `path`; `done` of `total` bytes.
    Hashing {
        path: PathBuf,
        done: u64,
        total: u64,
    },
    /// Extracting `path`; `done` of `total` archive bytes read.
    Extracting {
        path: PathBuf,
        done: u64,
        total: u64,
    },
    /// An existing folder is replaced by the freshly extracted one.
    Replacing { path: PathBuf },
    /// Reading the extracted dataset to check it.
    Checking { path: PathBuf },
}

/// Why a download failed. Network failures say how to do it by hand.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot reach {url}: {reason}\n{manual}")]
    Unreachable {
        url: String,
        reason: String,
        manual: String,
    },
    #[error("{url} answered HTTP {status}\n{manual}")]
    Http {
        url: String,
        status: u16,
        manual: String,
    },
    #[error("download of {url} broke off after {done} bytes ({reason}); run the command again to resume from {}", part.display())]
    Interrupted {
        url: String,
        done: u64,
        part: PathBuf,
        reason: String,
    },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("MD5 of {} is {actual}, expected {expected}: the file is corrupt or not the official archive; it was deleted, run the command again to download it anew", path.display())]
    Md5 {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot extract {}: {reason}", path.display())]
    Extract { path: PathBuf, reason: String },
    #[error("extracted the archive, but {} does not read as `{name}`: {source}", path.display())]
    Verify {
        name: String,
        path: PathBuf,
        #[source]
        source: DataError,
    },
    #[error("extracted {} holds {images} images, expected {expected}", path.display())]
    Incomplete {
        path: PathBuf,
        images: usize,
        expected: usize,
    },
    #[error("{instructions}")]
    ManualOnly { instructions: String },
}

/// How to download.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL replacing the official hosts (see [`MIRROR_ENV`]).
    pub mirror: Option<String>,
    /// Keep the archive after a successful extraction.
    pub keep_archive: bool,
    /// How often a transfer that broke off is resumed before giving up.
    pub retries: u32,
    /// Pause before a resume (doubled each time).
    pub retry_pause: Duration,
    pub connect_timeout: Duration,
    /// A connection that sends nothing for this long counts as broken.
    pub read_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mirror: std::env::var(MIRROR_ENV).ok().filter(|m| !m.is_empty()),
            keep_archive: false,
            retries: 5,
            retry_pause: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_mins(1),
        }
    }
}

/// Downloads, checks and extracts `ds` into `data_root`; returns the dataset's folder.
///
/// An archive already at `data_root/<file name>` (put there by hand, or kept from an earlier run)
/// is checked and used without downloading, so this also finishes a manual download.
pub fn install(
    ds: &NamedDataset,
    data_root: &Path,
    opts: &Options,
    on: &mut dyn FnMut(DownloadEvent),
) -> Result<PathBuf, DownloadError> {
    let Some(archive) = ds.archive else {
        return Err(DownloadError::ManualOnly {
            instructions: manual_instructions(ds, data_root),
        });
    };
    std::fs::create_dir_all(data_root).map_err(|e| write_error(data_root, e))?;
    let url = archive.url_with_mirror(opts.mirror.as_deref());
    let archive_path = data_root.join(archive.file_name());
    if archive_path.is_file() {
        on(DownloadEvent::Found {
            path: archive_path.clone(),
        });
    } else {
        fetch(&url, &archive_path, opts, on).map_err(|e| with_manual(e, ds, data_root))?;
    }

    let actual = md5_file(&archive_path, on).map_err(|e| write_error(&archive_path, e))?;
    if actual != archive.md5 {
        let _ = std::fs::remove_file(&archive_path);
        return Err(DownloadError::Md5 {
            path: archive_path,
            expected: archive.md5.into(),
            actual,
        });
    }

    extract_into(&archive, &archive_path, ds.name, data_root, on)?;

    let target = ds.target(data_root);
    on(DownloadEvent::Checking {
        path: target.clone(),
    });
    let source = Source::open_layout(ds.name, ds.layouts[0].format, &target).map_err(|e| {
        DownloadError::Verify {
            name: ds.name.into(),
            path: target.clone(),
            source: e,
        }
    })?;
    if source.len() != ds.images {
        return Err(DownloadError::Incomplete {
            path: target,
            images: source.len(),
            expected: ds.images,
        });
    }
    if !opts.keep_archive {
        let _ = std::fs::remove_file(&archive_path);
    }
    Ok(target)
}

/// Extracts `archive_path` into a staging folder under `data_root`, then moves each top-level
/// entry into `data_root`, replacing what was there.
fn extract_into(
    archive: &Archive,
    archive_path: &Path,
    name: &str,
    data_root: &Path,
    on: &mut dyn FnMut(DownloadEvent),
) -> Result<(), DownloadError> {
    let staging = data_root.join(format!(".cdw-extract-{name}"));
    if staging.exists() {
        // Left over from an extraction that was interrupted.
        std::fs::remove_dir_all(&staging).map_err(|e| write_error(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| write_error(&staging, e))?;
    let result = extract(archive_path, archive.kind, archive.skip, &staging, on);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let entries = std::fs::read_dir(&staging).map_err(|e| write_error(&staging, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| write_error(&staging, e))?;
        let dest = data_root.join(entry.file_name());
        if dest.exists() {
            on(DownloadEvent::Replacing { path: dest.clone() });
            let removed = if dest.is_dir() {
                std::fs::remove_dir_all(&dest)
            } else {
                std::fs::remove_file(&dest)
            };
            removed.map_err(|e| write_error(&dest, e))?;
        }
        std::fs::rename(entry.path(), &dest).map_err(|e| write_error(&dest, e))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// Downloads `url` to `dest` through `dest.part`, resuming what an earlier attempt left there and
/// resuming by itself up to `opts.retries` times when the connection breaks off.
pub fn fetch(
    url: &str,
    dest: &Path,
    opts: &Options,
    on: &mut dyn FnMut(DownloadEvent),
) -> Result<(), DownloadError> {
    let part = part_path(dest);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(opts.connect_timeout))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .user_agent(concat!("cdw/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut attempt = 0;
    let mut received_any = false;
    loop {
        let have = std::fs::metadata(&part).map_or(0, |m| m.len());
        match fetch_once(&agent, url, &part, have, on) {
            Ok(()) => break,
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Broken { reason, progressed }) => {
                received_any |= progressed;
                let done = std::fs::metadata(&part).map_or(0, |m| m.len());
                // A host that cannot be reached at all is reported at once (no network).
                if !received_any {
                    return Err(DownloadError::Unreachable {
                        url: url.into(),
                        reason,
                        manual: String::new(),
                    });
                }
                if attempt >= opts.retries {
                    return Err(DownloadError::Interrupted {
                        url: url.into(),
                        done,
                        part,
                        reason,
                    });
                }
                attempt += 1;
                on(DownloadEvent::Retry {
                    attempt,
                    done,
                    reason,
                });
                std::thread::sleep(opts.retry_pause * 2u32.saturating_pow(attempt - 1));
            }
        }
    }
    std::fs::rename(&part, dest).map_err(|e| write_error(dest, e))
}

/// `name.tar.gz` -> `name.tar.gz.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

enum Attempt {
    /// Worth another try: the connection failed or broke off.
    Broken {
        reason: String,
        progressed: bool,
    },
    Fatal(DownloadError),
}

fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    have: u64,
    on: &mut dyn FnMut(DownloadEvent),
) -> Result<(), Attempt> {
    on(DownloadEvent::Request {
        url: url.into(),
        resume_from: have,
    });
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().map_err(|e| Attempt::Broken {
        reason: e.to_string(),
        progressed: false,
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let (start, total) = match status {
        200 => (0, content_length),
        206 => {
            let range = header("content-range").unwrap_or_default();
            match parse_content_range(&range) {
                Some((start, total)) if start == have => {
                    (start, total.or(content_length.map(|n| start + n)))
                }
                // A range other than the one asked for: start over.
                _ => {
                    let _ = std::fs::remove_file(part);
                    return Err(Attempt::Broken {
                        reason: format!("the server sent range `{range}`, not bytes {have}-"),
                        progressed: true,
                    });
                }
            }
        }
        // Nothing left after `have`: the part file is complete (the MD5 will tell).
        416 if have > 0 => return Ok(()),
        _ => {
            return Err(Attempt::Fatal(DownloadError::Http {
                url: url.into(),
                status,
                manual: String::new(),
            }))
        }
    };
    // 200 after a range request: the server does not resume, so the part is rewritten.
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(start == 0)
        .open(part)
        .map_err(|e| Attempt::Fatal(write_error(part, e)))?;
    file.seek(std::io::SeekFrom::Start(start))
        .map_err(|e| Attempt::Fatal(write_error(part, e)))?;
    let mut done = start;
    on(DownloadEvent::Received { done, total });
    let mut body = response.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut progressed = false;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.flush();
                return Err(Attempt::Broken {
                    reason: e.to_string(),
                    progressed: progressed || start > 0,
                });
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| Attempt::Fatal(write_error(part, e)))?;
        done += n as u64;
        progressed = true;
        on(DownloadEvent::Received { done, total });
    }
    file.sync_all()
        .map_err(|e| Attempt::Fatal(write_error(part, e)))?;
    if let Some(total) = total {
        if done < total {
            return Err(Attempt::Broken {
                reason: format!("the connection closed after {done} of {total} bytes"),
                progressed: progressed || start > 0,
            });
        }
    }
    Ok(())
}

/// `bytes 100-199/1000` -> (100, Some(1000)); `bytes 100-199/*` -> (100, None).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// The MD5 of a file as 32 lowercase hex digits.
pub fn md5_file(path: &Path, on: &mut dyn FnMut(DownloadEvent)) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let total = f.metadata()?.len();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        on(DownloadEvent::Hashing {
            path: path.into(),
            done,
            total,
        });
    }
    Ok(hasher.finalize().iter().fold(String::new(), |mut hex, b| {
        hex.push_str(&format!("{b:02x}"));
        hex
    }))
}

/// Extracts a `.tar.gz` or `.zip` into `into`, leaving out the entries named in `skip`. Entries
/// whose path would leave `into` are refused.
pub fn extract(
    archive: &Path,
    kind: ArchiveKind,
    skip: &[&str],
    into: &Path,
    on: &mut dyn FnMut(DownloadEvent),
) -> Result<(), DownloadError> {
    let bad = |reason: String| DownloadError::Extract {
        path: archive.into(),
        reason,
    };
    let file = File::open(archive).map_err(|e| bad(e.to_string()))?;
    let total = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let skipped = |p: &Path| {
        let s = p.to_string_lossy();
        let s = s.trim_start_matches("./");
        skip.contains(&s)
    };
    match kind {
        ArchiveKind::TarGz => {
            let counting = Counting {
                inner: BufReader::new(file),
                done: 0,
                reported: 0,
                total,
                path: archive,
                on,
            };
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(counting));
            let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| bad(e.to_string()))?;
                let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
                if skipped(&path) {
                    continue;
                }
                let inside = entry
                    .unpack_in(into)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                if !inside {
                    return Err(bad(format!(
                        "entry {} would be written outside the target folder",
                        path.display()
                    )));
                }
            }
        }
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
            let mut done = 0;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
                let Some(rel) = entry.enclosed_name() else {
                    return Err(bad(format!(
                        "entry {} would be written outside the target folder",
                        entry
                            .name()
                            .map_or_else(|_| format!("number {i}"), |n| n.into_owned())
                    )));
                };
                done += entry.compressed_size();
                if skipped(&rel) {
                    continue;
                }
                let out = into.join(&rel);
                if entry.is_dir() {
                    std::fs::create_dir_all(&out).map_err(|e| write_error(&out, e))?;
                } else {
                    if let Some(parent) = out.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
                    }
                    let mut f = File::create(&out).map_err(|e| write_error(&out, e))?;
                    std::io::copy(&mut entry, &mut f)
                        .map_err(|e| bad(format!("{}: {e}", rel.display())))?;
                }
                on(DownloadEvent::Extracting {
                    path: archive.into(),
                    done: done.min(total),
                    total,
                });
            }
        }
    }
    on(DownloadEvent::Extracting {
        path: archive.into(),
        done: total,
        total,
    });
    Ok(())
}

/// Reports how much of the archive file the decompressor has read.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    reported: u64,
    total: u64,
    path: &'a Path,
    on: &'a mut dyn FnMut(DownloadEvent),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 {
            self.reported = self.done;
            (self.on)(DownloadEvent::Extracting {
                path: self.path.into(),
                done: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> DownloadError {
    DownloadError::Write {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// Network errors gain the instructions for doing it by hand.
fn with_manual(e: DownloadError, ds: &NamedDataset, data_root: &Path) -> DownloadError {
    match e {
        DownloadError::Unreachable { url, reason, .. } => DownloadError::Unreachable {
            manual: manual_download(ds, data_root, &url),
            url,
            reason,
        },
        DownloadError::Http { url, status, .. } => DownloadError::Http {
            manual: manual_download(ds, data_root, &url),
            url,
            status,
        },
        other => other,
    }
}

/// `path` made absolute for instructions (unchanged when the working directory is unknown).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What the dataset's folder must hold, in words.
pub fn expected_contents(ds: &NamedDataset) -> String {
    match ds.layouts[0].format {
        Format::CifarBinary(kind) | Format::CifarPython(kind) => kind.binary_files().join(", "),
        Format::Stl10 => super::stl10::SPLITS
            .iter()
            .flat_map(|(x, y)| [*x, *y])
            .collect::<Vec<_>>()
            .join(", "),
        Format::Folder => format!(
            "{} class folders, each holding its images (<class>/<image>)",
            ds.classes
        ),
    }
}

/// How to fetch an archive by hand when cdw cannot.
fn manual_download(ds: &NamedDataset, data_root: &Path, url: &str) -> String {
    let root = absolute(data_root);
    let Some(archive) = ds.archive else {
        return manual_instructions(ds, data_root);
    };
    format!(
        "To do it by hand: download {url} ({size}, MD5 {md5}) on a machine with network and copy it to\n  \
         {archive_path}\nthen run `{cmd}` again (it checks and extracts it), or extract it yourself so that\n  \
         {target}\nholds {contents}.",
        size = archive.size,
        md5 = archive.md5,
        archive_path = root.join(archive.file_name()).display(),
        cmd = ds.download_command(data_root),
        target = absolute(&ds.target(data_root)).display(),
        contents = expected_contents(ds),
    )
}

/// The instructions for a dataset without a public download (ImageNet-10 from Kaggle).
pub fn manual_instructions(ds: &NamedDataset, data_root: &Path) -> String {
    let target = absolute(&ds.target(data_root));
    format!(
        "{name} has no public download: it is on Kaggle ({kaggle}), which needs an account.\n\
         1. Download it, either with the Kaggle command-line tool (pip install kaggle; API token in ~/.kaggle/kaggle.json):\n     \
              kaggle datasets download -d {kaggle}\n   \
            or from https://www.kaggle.com/datasets/{kaggle} (button \"Download\").\n\
         2. Unzip it and move the {classes} class folders into\n     \
              {target}\n   \
            so that it looks like {target}/<class>/<image>.JPEG ({images} images in all).\n\
         3. Check it: cdw datasets check {name}{root_arg}",
        name = ds.name,
        kaggle = IMAGENET10_KAGGLE,
        classes = ds.classes,
        images = ds.images,
        target = target.display(),
        root_arg = if data_root == Path::new("./data") {
            String::new()
        } else {
            format!(" --data-root {}", data_root.display())
        },
    )
}
