//! `cdw bench data`: the training data pipeline's two-view throughput, measured through the real
//! [`Loader`] (worker threads, prefetch, the batch tensors), in images/s; each image gives two
//! views.
//!
//! Sources: `cifar`, 32x32 RGB images of uniform random pixels held in memory (CIFAR's size), and
//! `jpeg`, a folder of JPEGs (written here, 500x375 by default, unless `--jpeg-dir` names an
//! existing image folder). Training decodes a folder once and keeps the 8-bit images in memory,
//! so decoding is timed on its own (the folder reader, per worker count) and the pipeline is
//! then measured on the decoded images.
//!
//! Timing: one epoch of `warm-up + batches` batches. The first `workers` batches (the first
//! wave, which includes starting the threads) are the warm-up; images/s counts the batches after
//! it, from the arrival of the last warm-up batch to the arrival of the last batch.
//! `cpu_images_per_sec` divides every image (warm-up included) by the CPU time of the whole
//! process, which depends less on other load on the machine. `scripts/bench_data_torchvision.py`
//! measures torchvision's pipeline the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{cores, load_average, process_cpu_time};
use crate::commands::Failure;
use crate::data::augment::Augment;
use crate::data::folder::ImageFolder;
use crate::data::loader::Loader;
use crate::data::ImageSet;

/// Size of the JPEGs written (a typical ImageNet photo).
const JPEG_SIZE: (u32, u32) = (500, 375);
const JPEG_QUALITY: u8 = 90;
/// Side of the CIFAR-sized images.
const CIFAR_SIDE: u32 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// 32x32 RGB images of random pixels, in memory.
    Cifar,
    /// A folder of JPEGs, decoded once.
    Jpeg,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Output size of the views; repeatable or comma-separated [default: 224 and 32 for cifar,
    /// 224 for jpeg].
    #[arg(long, value_name = "N", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(8..=4096))]
    pub image_size: Vec<u32>,
    /// Input; repeatable or comma-separated [default: cifar,jpeg].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub source: Vec<Source>,
    /// Loader worker threads; repeatable or comma-separated [default: 1 and the number of cores].
    #[arg(long, value_name = "N", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Vec<u16>,
    /// Batches measured after the warm-up [default: 16; 128 for image sizes <= 64].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batches: Option<u32>,
    /// Images per batch.
    #[arg(long, value_name = "N", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub batch_size: u32,
    /// Image folder for the jpeg source: read if it exists, otherwise the JPEGs are written
    /// there and kept (for scripts/bench_data_torchvision.py) [default: a temporary folder,
    /// removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub jpeg_dir: Option<PathBuf>,
    /// JPEGs to write when the folder is created.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub jpeg_images: u32,
    /// Colour-jitter strength (config field `s`).
    #[arg(long, default_value_t = 1.0)]
    pub s: f64,
    /// Include the Gaussian blur (config field `blur`).
    #[arg(long)]
    pub blur: bool,
    /// Batches prepared ahead (config field `prefetch`).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub prefetch: u32,
    /// Seed of the images, the shuffle and the augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One pipeline measurement.
#[derive(Debug, Clone, Serialize)]
struct Throughput {
    source: Source,
    image_size: u32,
    workers: usize,
    batch_size: usize,
    batches: usize,
    warmup_batches: usize,
    images_per_sec: f64,
    views_per_sec: f64,
    cpu_images_per_sec: Option<f64>,
    seconds: f64,
}

/// Decoding the JPEG folder once, as training does.
#[derive(Debug, Clone, Serialize)]
struct Decode {
    workers: usize,
    images: usize,
    seconds: f64,
    images_per_sec: f64,
}

#[derive(Debug, Clone, Serialize)]
struct JpegFolder {
    dir: PathBuf,
    written: bool,
    files: usize,
    bytes: u64,
    /// Size of the first image.
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    pipeline: &'static str,
    version: &'static str,
    cores: usize,
    load_average_start: Option<[f64; 3]>,
    load_average_end: Option<[f64; 3]>,
    s: f64,
    blur: bool,
    prefetch: usize,
    seed: u64,
    jpeg: Option<JpegFolder>,
    decode: Vec<Decode>,
    results: Vec<Throughput>,
}

pub fn run(args: &DataArgs) -> Result<(), Failure> {
    if !(args.s.is_finite() && args.s >= 0.0) {
        return Err(Failure::usage(format!(
            "--s {}: expected a number >= 0",
            args.s
        )));
    }
    let mut workers: Vec<usize> = if args.workers.is_empty() {
        vec![1, cores()]
    } else {
        args.workers.iter().map(|&w| usize::from(w)).collect()
    };
    workers.sort_unstable();
    workers.dedup();
    let mut sources = if args.source.is_empty() {
        vec![Source::Cifar, Source::Jpeg]
    } else {
        args.source.clone()
    };
    sources.dedup();

    let mut report = Report {
        bench: "data",
        pipeline: "cdw",
        version: env!("CARGO_PKG_VERSION"),
        cores: cores(),
        load_average_start: load_average(),
        load_average_end: None,
        s: args.s,
        blur: args.blur,
        prefetch: args.prefetch as usize,
        seed: args.seed,
        jpeg: None,
        decode: Vec::new(),
        results: Vec::new(),
    };
    let mut table = Table::new(!args.json);
    table.header(&report);

    for source in sources {
        let sizes = match (args.image_size.is_empty(), source) {
            (false, _) => args.image_size.clone(),
            (true, Source::Cifar) => vec![224, 32],
            (true, Source::Jpeg) => vec![224],
        };
        // The decoded images each setting draws from.
        let pool = match source {
            Source::Cifar => None,
            Source::Jpeg => {
                let (folder, decoded, decodes) = jpeg_folder(args, &workers, &mut table)?;
                report.jpeg = Some(folder);
                report.decode = decodes;
                Some(decoded)
            }
        };
        for &size in &sizes {
            let augment = Augment {
                image_size: size,
                s: args.s,
                blur: args.blur,
            };
            let batches = args.batches.map_or(default_batches(size), |b| b as usize);
            for &w in &workers {
                let warmup = w;
                let count = (warmup + batches) * args.batch_size as usize;
                let set = match &pool {
                    None => random_images(count, CIFAR_SIDE, args.seed),
                    Some(decoded) => repeated(decoded, count),
                };
                let t = measure(source, set, augment, args, w, warmup);
                table.row(&t);
                report.results.push(t);
            }
        }
    }
    report.load_average_end = load_average();
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(Failure::runtime)?;
        println!("{text}");
    } else {
        table.footer(&report);
    }
    Ok(())
}

/// Measured batches when `--batches` is not given: small views are quick, so take more.
fn default_batches(image_size: u32) -> usize {
    if image_size <= 64 {
        128
    } else {
        16
    }
}

/// Runs one epoch of `warmup + batches` batches through the loader.
fn measure(
    source: Source,
    set: ImageSet,
    augment: Augment,
    args: &DataArgs,
    workers: usize,
    warmup: usize,
) -> Throughput {
    let batch_size = args.batch_size as usize;
    let steps = set.len() / batch_size;
    let loader = Loader::new(
        Arc::new(set),
        augment,
        batch_size,
        workers,
        args.prefetch as usize,
        args.seed,
    );
    let cpu_start = process_cpu_time();
    let start = Instant::now();
    let mut arrivals = Vec::with_capacity(steps);
    for batch in loader.epoch(1, 0) {
        arrivals.push(start.elapsed());
        drop(batch);
    }
    let wall = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_start)
        .map(|(end, begin)| end.saturating_sub(begin));
    let last = arrivals.last().copied().unwrap_or(wall);
    let (measured, seconds) = if warmup > 0 && arrivals.len() > warmup {
        (
            arrivals.len() - warmup,
            last.saturating_sub(arrivals[warmup - 1]),
        )
    } else {
        (arrivals.len(), last)
    };
    let images_per_sec = rate(measured * batch_size, seconds);
    Throughput {
        source,
        image_size: augment.image_size,
        workers,
        batch_size,
        batches: measured,
        warmup_batches: arrivals.len() - measured,
        images_per_sec,
        views_per_sec: 2.0 * images_per_sec,
        // Ticks of 10 ms: below a tenth of a second the figure would mostly be rounding.
        cpu_images_per_sec: cpu
            .filter(|c| *c >= Duration::from_millis(100))
            .map(|c| rate(arrivals.len() * batch_size, c)),
        seconds: round3(wall.as_secs_f64()),
    }
}

fn rate(images: usize, time: Duration) -> f64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        (images as f64 / secs * 10.0).round() / 10.0
    } else {
        f64::NAN
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `count` images of `side` x `side` uniform random pixels.
fn random_images(count: usize, side: u32, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images = (0..count)
        .map(|_| {
            let mut raw = vec![0u8; (side * side * 3) as usize];
            rng.fill(&mut raw[..]);
            RgbImage::from_raw(side, side, raw).expect("buffer of the image's size")
        })
        .collect();
    ImageSet {
        name: "random".into(),
        images,
        labels: vec![0; count],
        class_names: vec!["random".into()],
    }
}

/// `count` images cycling through `decoded` (copies: a real dataset's images are distinct).
fn repeated(decoded: &ImageSet, count: usize) -> ImageSet {
    let n = decoded.len();
    ImageSet {
        name: decoded.name.clone(),
        images: (0..count).map(|i| decoded.images[i % n].clone()).collect(),
        labels: (0..count).map(|i| decoded.labels[i % n]).collect(),
        class_names: decoded.class_names.clone(),
    }
}

/// Removes a temporary folder when dropped.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Finds or writes the JPEG folder and decodes it once per worker count (timed).
fn jpeg_folder(
    args: &DataArgs,
    workers: &[usize],
    table: &mut Table,
) -> Result<(JpegFolder, ImageSet, Vec<Decode>), Failure> {
    let (dir, _temporary) = if let Some(dir) = &args.jpeg_dir {
        (dir.clone(), TempDir(None))
    } else {
        let dir = std::env::temp_dir().join(format!("cdw-bench-jpeg-{}", std::process::id()));
        (dir.clone(), TempDir(Some(dir)))
    };
    let written = !dir.exists();
    if written {
        write_jpegs(&dir, args.jpeg_images as usize, args.seed)?;
    }
    let folder = ImageFolder::open("jpeg", &dir).map_err(Failure::usage)?;
    let bytes = folder
        .files()
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let mut decodes = Vec::new();
    let mut last = None;
    for &w in workers {
        let start = Instant::now();
        let set = folder.load(w, &|_| {}).map_err(Failure::usage)?;
        let time = start.elapsed();
        let d = Decode {
            workers: w,
            images: set.len(),
            seconds: round3(time.as_secs_f64()),
            images_per_sec: rate(set.len(), time),
        };
        table.decode(&d);
        decodes.push(d);
        last = Some(set);
    }
    let set = last.expect("at least one worker count");
    let (width, height) = set.images.first().map_or((0, 0), |i| i.dimensions());
    let info = JpegFolder {
        dir: std::path::absolute(&dir).unwrap_or(dir),
        written,
        files: folder.len(),
        bytes,
        width,
        height,
    };
    table.jpeg(&info);
    Ok((info, set, decodes))
}

/// Writes `count` synthetic photos of [`JPEG_SIZE`] as `dir/synthetic/NNNNN.jpg`, on every core.
fn write_jpegs(dir: &Path, count: usize, seed: u64) -> Result<(), Failure> {
    let class = dir.join("synthetic");
    std::fs::create_dir_all(&class)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", class.display())))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let write = |i: usize| -> Result<(), String> {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let img = synthetic_photo(JPEG_SIZE.0, JPEG_SIZE.1, &mut rng);
        let path = class.join(format!("{i:05}.jpg"));
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
        img.write_with_encoder(encoder)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores().min(count).max(1))
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return None;
                    }
                    if let Err(e) = write(i) {
                        return Some(e);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or(Some("a writer thread panicked".into())))
            .collect()
    });
    match errors.into_iter().next() {
        Some(e) => Err(Failure::runtime(e)),
        None => Ok(()),
    }
}

/// A picture with what makes photos cost what they cost to decode: smooth shading, edges, and
/// some fine noise. A bilinear blend of four corner colours, a dozen discs and rectangles, and
/// +-16 of noise per channel.
fn synthetic_photo(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    struct Shape {
        disc: bool,
        cx: f32,
        cy: f32,
        r: f32,
        colour: [f32; 3],
    }
    let corners: [[f32; 3]; 4] =
        std::array::from_fn(|_| std::array::from_fn(|_| rng.gen_range(0.0..255.0)));
    let shapes: Vec<Shape> = (0..12)
        .map(|_| Shape {
            disc: rng.gen(),
            cx: rng.gen_range(0.0..width as f32),
            cy: rng.gen_range(0.0..height as f32),
            r: rng.gen_range(10.0..(width.min(height) as f32 / 3.0).max(11.0)),
            colour: std::array::from_fn(|_| rng.gen_range(0.0..255.0)),
        })
        .collect();
    let (wf, hf) = ((width.max(2) - 1) as f32, (height.max(2) - 1) as f32);
    let mut img = RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let (u, v) = (fx / wf, fy / hf);
        let mut c: [f32; 3] = std::array::from_fn(|k| {
            let top = corners[0][k] * (1.0 - u) + corners[1][k] * u;
            let bottom = corners[2][k] * (1.0 - u) + corners[3][k] * u;
            top * (1.0 - v) + bottom * v
        });
        for s in &shapes {
            let (dx, dy) = (fx - s.cx, fy - s.cy);
            let inside = if s.disc {
                dx * dx + dy * dy <= s.r * s.r
            } else {
                dx.abs() <= s.r && dy.abs() <= s.r * 0.6
            };
            if inside {
                c = s.colour;
            }
        }
        let noise: [f32; 3] = std::array::from_fn(|_| rng.gen_range(-16.0..16.0));
        *px = image::Rgb(std::array::from_fn(|k| {
            (c[k] + noise[k]).clamp(0.0, 255.0) as u8
        }));
    }
    img
}

/// The human-readable output, printed as measurements come in.
struct Table {
    on: bool,
}

impl Table {
    fn new(on: bool) -> Table {
        Table { on }
    }

    fn header(&mut self, r: &Report) {
        if !self.on {
            return;
        }
        println!(
            "cdw {} data pipeline: two views per image through the loader (prefetch {}), s {}, blur {}",
            r.version,
            r.prefetch,
            r.s,
            if r.blur { "on" } else { "off" }
        );
        println!(
            "{} cores; load average at start {}",
            r.cores,
            fmt_load(r.load_average_start)
        );
        println!(
            "{:<7} {:>5} {:>8} {:>6} {:>8} {:>10} {:>10} {:>13}",
            "source", "size", "workers", "batch", "batches", "images/s", "views/s", "images/cpu-s"
        );
        let _ = std::io::stdout().flush();
    }

    fn row(&mut self, t: &Throughput) {
        if !self.on {
            return;
        }
        let source = match t.source {
            Source::Cifar => "cifar",
            Source::Jpeg => "jpeg",
        };
        println!(
            "{:<7} {:>5} {:>8} {:>6} {:>8} {:>10.1} {:>10.1} {:>13}",
            source,
            t.image_size,
            t.workers,
            t.batch_size,
            t.batches,
            t.images_per_sec,
            t.views_per_sec,
            t.cpu_images_per_sec
                .map_or("-".into(), |c| format!("{c:.1}"))
        );
        let _ = std::io::stdout().flush();
    }

    fn decode(&mut self, d: &Decode) {
        if self.on {
            println!(
                "decode  jpeg folder, {} workers: {} images in {:.2} s, {:.1} images/s",
                d.workers, d.images, d.seconds, d.images_per_sec
            );
        }
    }

    fn jpeg(&mut self, j: &JpegFolder) {
        if self.on {
            println!(
                "jpeg folder {} ({}): {} files, {:.1} MB, first {}x{}",
                j.dir.display(),
                if j.written { "written now" } else { "existing" },
                j.files,
                j.bytes as f64 / 1e6,
                j.width,
                j.height
            );
        }
    }

    fn footer(&mut self, r: &Report) {
        if self.on {
            println!("load average at end {}", fmt_load(r.load_average_end));
        }
    }
}

fn fmt_load(l: Option<[f64; 3]>) -> String {
    l.map_or("unknown".into(), |[a, b, c]| {
        format!("{a:.2} {b:.2} {c:.2}")
    })
}
