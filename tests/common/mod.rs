//! Small datasets written in the real on-disk formats (and broken variants), and a local HTTP
//! server on 127.0.0.1 for the download tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs the `cdw` binary with `args`: its exit code, stdout and stderr. `mirror` sets the download
/// mirror variable; `None` removes it, so a developer's own setting cannot leak in.
pub fn cdw(args: &[&str], mirror: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdw"));
    command.args(args);
    match mirror {
        Some(url) => command.env(cdw::data::download::MIRROR_ENV, url),
        None => command.env_remove(cdw::data::download::MIRROR_ENV),
    };
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The pixel value written for image `i`, channel `k`, row `r`, column `c`: every position of every
/// image is distinct enough that a transposed or shifted read is caught.
pub fn pixel(i: usize, k: usize, r: usize, c: usize) -> u8 {
    ((i * 31 + k * 80 + r * 7 + c * 3) % 256) as u8
}

/// Three planes of a `side` x `side` image `i`, row-major or column-major.
pub fn planes(i: usize, side: usize, column_major: bool) -> Vec<u8> {
    let mut out = vec![0u8; 3 * side * side];
    for k in 0..3 {
        for r in 0..side {
            for c in 0..side {
                let at = if column_major {
                    c * side + r
                } else {
                    r * side + c
                };
                out[k * side * side + at] = pixel(i, k, r, c);
            }
        }
    }
    out
}

/// Label of image `g` in the generated CIFAR-10 files.
pub fn cifar10_label(g: usize) -> u8 {
    (g % 10) as u8
}

/// Writes `cifar-10-batches-bin` under `root` with `counts[f]` records in file f (5 train batches,
/// then the test batch); image g (counted across files) has label `cifar10_label(g)`.
pub fn write_cifar10_binary(root: &Path, counts: [usize; 6]) -> std::path::PathBuf {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let mut g = 0;
    for (name, n) in names.iter().zip(counts) {
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.push(cifar10_label(g));
            bytes.extend(planes(g, 32, false));
            g += 1;
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

/// Coarse and fine label of image g in the generated CIFAR-100 files.
pub fn cifar100_labels(g: usize) -> (u8, u8) {
    ((g % 20) as u8, (99 - g % 100) as u8)
}

/// Writes `cifar-100-binary` with `train` and `test` records.
pub fn write_cifar100_binary(root: &Path, train: usize, test: usize) -> std::path::PathBuf {
    let dir = root.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = 0;
    for (name, n) in [("train.bin", train), ("test.bin", test)] {
        let mut bytes = Vec::new();
        for _ in 0..n {
            let (coarse, fine) = cifar100_labels(g);
            bytes.extend([coarse, fine]);
            bytes.extend(planes(g, 32, false));
            g += 1;
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

/// Label (1-10, as stored) of image g in the generated STL-10 files.
pub fn stl10_stored_label(g: usize) -> u8 {
    (g % 10) as u8 + 1
}

/// Writes `stl10_binary` with `train` and `test` images (column-major planes, as STL-10 is).
pub fn write_stl10(root: &Path, train: usize, test: usize) -> std::path::PathBuf {
    let dir = root.join("stl10_binary");
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = 0;
    for (x, y, n) in [
        ("train_X.bin", "train_y.bin", train),
        ("test_X.bin", "test_y.bin", test),
    ] {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            images.extend(planes(g, 96, true));
            labels.push(stl10_stored_label(g));
            g += 1;
        }
        std::fs::write(dir.join(x), images).unwrap();
        std::fs::write(dir.join(y), labels).unwrap();
    }
    dir
}

/// A `w` x `h` RGB image filled with `rgb`, with pixel (0, 0) set to `corner`.
pub fn solid(w: u32, h: u32, rgb: [u8; 3], corner: [u8; 3]) -> image::RgbImage {
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    img.put_pixel(0, 0, image::Rgb(corner));
    img
}

/// Writes `img` to `path` in the format its extension names (parents created).
pub fn save(path: &Path, img: &image::RgbImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = image::ImageFormat::from_path(path).unwrap();
    img.save_with_format(path, format).unwrap();
}

/// What the test server does with each request.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Send only this many body bytes of the first response, then close the connection.
    pub drop_first_after: Option<usize>,
    /// Answer Range requests with 206 (otherwise always the whole file with 200).
    pub ranges: bool,
}

/// A request the server saw: path and Range header.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

/// An HTTP/1.1 server on 127.0.0.1 serving files from memory. It answers one connection at a time,
/// stops by itself after 60 s or 100 connections, and when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(files: HashMap<String, Vec<u8>>, behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_mins(1);
            let mut behaviour = behaviour;
            let mut served = 0;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline && served < 100 {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        let drop_after = behaviour.drop_first_after.take();
                        let _ = serve(stream, &files, behaviour.ranges, drop_after, &seen2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer {
            addr,
            seen,
            stop,
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    ranges: bool,
    drop_after: Option<usize>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.lines();
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let range = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("range")
            .then(|| v.trim().to_string())
    });
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        range: range.clone(),
    });
    let Some(body) = files.get(path.trim_start_matches('/')) else {
        stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    };
    let start = match (&range, ranges) {
        (Some(r), true) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse::<usize>().ok()),
        _ => None,
    };
    let (status, part) = match start {
        Some(s) if s >= body.len() => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            return Ok(());
        }
        Some(s) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {s}-{}/{}",
                body.len() - 1,
                body.len()
            ),
            &body[s..],
        ),
        None => ("200 OK".to_string(), &body[..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        part.len()
    );
    stream.write_all(head.as_bytes())?;
    match drop_after {
        Some(n) => stream.write_all(&part[..n.min(part.len())])?,
        None => stream.write_all(part)?,
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A `.tar.gz` holding `entries` (path, bytes).
pub fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A `.zip` holding `entries` (path, bytes), deflated.
pub fn zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in entries {
        w.start_file(*path, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The MD5 of `bytes` in hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, b| {
            hex.push_str(&format!("{b:02x}"));
            hex
        })
}

/// A protocol-2 pickle laid out as the official CIFAR python batches are (written by Python 2:
/// str keys as `SHORT_BINSTRING`, `data` a numpy uint8 array of N x 3072 rebuilt by
/// `numpy.core.multiarray._reconstruct`, labels as lists of small ints).
pub fn cifar_python_batch(label_lists: &[(&str, Vec<u8>)], data: &[u8], n: usize) -> Vec<u8> {
    fn short_str(out: &mut Vec<u8>, s: &[u8]) {
        out.push(b'U');
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    let mut p = b"\x80\x02}(".to_vec();
    short_str(&mut p, b"batch_label");
    short_str(&mut p, b"testing batch 1 of 1");
    for (key, labels) in label_lists {
        short_str(&mut p, key.as_bytes());
        p.extend_from_slice(b"](");
        for &l in labels {
            p.extend_from_slice(&[b'K', l]);
        }
        p.push(b'e');
    }
    short_str(&mut p, b"data");
    p.extend_from_slice(
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01J",
    );
    p.extend_from_slice(&(n as u32).to_le_bytes());
    p.extend_from_slice(b"M\x00\x0c\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T");
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.extend_from_slice(b"tbu.");
    p
}

/// Writes `cifar-10-batches-py` holding the same images and labels as
/// [`write_cifar10_binary`] with the same counts.
pub fn write_cifar10_python(root: &Path, counts: [usize; 6]) -> std::path::PathBuf {
    let dir = root.join("cifar-10-batches-py");
    std::fs::create_dir_all(&dir).unwrap();
    let names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ];
    let mut g = 0;
    for (name, n) in names.iter().zip(counts) {
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            labels.push(cifar10_label(g));
            data.extend(planes(g, 32, false));
            g += 1;
        }
        std::fs::write(
            dir.join(name),
            cifar_python_batch(&[("labels", labels)], &data, n),
        )
        .unwrap();
    }
    dir
}

/// Writes `cifar-100-python` with `train` and `test` images labelled as [`cifar100_labels`].
pub fn write_cifar100_python(root: &Path, train: usize, test: usize) -> std::path::PathBuf {
    let dir = root.join("cifar-100-python");
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = 0;
    for (name, n) in [("train", train), ("test", test)] {
        let (mut data, mut coarse, mut fine) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let (c, f) = cifar100_labels(g);
            coarse.push(c);
            fine.push(f);
            data.extend(planes(g, 32, false));
            g += 1;
        }
        let lists = [("fine_labels", fine), ("coarse_labels", coarse)];
        std::fs::write(dir.join(name), cifar_python_batch(&lists, &data, n)).unwrap();
    }
    dir
}
