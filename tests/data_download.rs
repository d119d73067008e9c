//! Downloads against a local HTTP server on 127.0.0.1: resume, MD5, extraction, and the
//! `cdw datasets download` command without network.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cdw::data::catalog::{self, Archive, ArchiveKind, Format, Layout, NamedDataset};
use cdw::data::cifar::CifarKind;
use cdw::data::download::{self, DownloadError, DownloadEvent, Options};
use common::*;

/// Deterministic bytes that do not repeat with a short period.
fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn test_options(mirror: Option<String>) -> Options {
    Options {
        mirror,
        keep_archive: false,
        retries: 2,
        retry_pause: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(5),
    }
}

fn files(entries: &[(&str, Vec<u8>)]) -> HashMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn a_dropped_connection_is_resumed_with_a_range_request() {
    let body = payload(300_000);
    let server = TestServer::start(
        files(&[("a.bin", body.clone())]),
        Behaviour {
            drop_first_after: Some(100_000),
            ranges: true,
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("a.bin");
    let mut events = Vec::new();
    download::fetch(
        &format!("{}/a.bin", server.url()),
        &dest,
        &test_options(None),
        &mut |e| events.push(e),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!download::part_path(&dest).exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    assert!(events.iter().any(|e| matches!(
        e,
        DownloadEvent::Retry {
            attempt: 1,
            done: 100_000,
            ..
        }
    )));
    assert!(events.contains(&DownloadEvent::Received {
        done: 300_000,
        total: Some(300_000)
    }));
}

#[test]
fn a_part_file_from_an_earlier_run_is_continued() {
    let body = payload(50_000);
    let server = TestServer::start(
        files(&[("b.tar.gz", body.clone())]),
        Behaviour {
            ranges: true,
            ..Behaviour::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("b.tar.gz");
    std::fs::write(download::part_path(&dest), &body[..12_345]).unwrap();
    download::fetch(
        &format!("{}/b.tar.gz", server.url()),
        &dest,
        &test_options(None),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=12345-"));
}

#[test]
fn a_server_without_ranges_makes_the_download_start_over() {
    let body = payload(20_000);
    let server = TestServer::start(files(&[("c.zip", body.clone())]), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c.zip");
    std::fs::write(download::part_path(&dest), vec![0xAA; 30_000]).unwrap();
    download::fetch(
        &format!("{}/c.zip", server.url()),
        &dest,
        &test_options(None),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[test]
fn no_network_fails_fast_and_http_errors_are_reported() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = download::fetch(
        &format!("http://127.0.0.1:{port}/x.tar.gz"),
        &tmp.path().join("x.tar.gz"),
        &test_options(None),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("cannot reach http://127.0.0.1:{port}/x.tar.gz")),
        "{err}"
    );

    let server = TestServer::start(HashMap::new(), Behaviour::default());
    let err = download::fetch(
        &format!("{}/missing.zip", server.url()),
        &tmp.path().join("m.zip"),
        &test_options(None),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, DownloadError::Http { status: 404, .. }),
        "{err:?}"
    );
}

/// A CIFAR-10-like dataset whose archive is served by the test server.
fn small_cifar10(md5: String, images: usize) -> NamedDataset {
    NamedDataset {
        name: "cifar10",
        description: "test",
        layouts: &[Layout {
            folder: "cifar-10-batches-bin",
            format: Format::CifarBinary(CifarKind::Cifar10),
        }],
        archive: Some(Archive {
            url: "https://example.invalid/kriz/cifar-10-binary.tar.gz",
            md5: Box::leak(md5.into_boxed_str()),
            kind: ArchiveKind::TarGz,
            size: "a few KB",
            skip: &["cifar-10-batches-bin/readme.html"],
        }),
        images,
        classes: 10,
    }
}

fn cifar10_archive(root: &Path) -> Vec<u8> {
    let dir = write_cifar10_binary(root, [2, 1, 1, 1, 1, 3]);
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                format!("cifar-10-batches-bin/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    entries.push((
        "cifar-10-batches-bin/readme.html".into(),
        b"skipped".to_vec(),
    ));
    let refs: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    tar_gz(&refs)
}

#[test]
fn install_downloads_checks_md5_extracts_and_verifies() {
    let src = tempfile::tempdir().unwrap();
    let archive = cifar10_archive(src.path());
    let server = TestServer::start(
        files(&[("cifar-10-binary.tar.gz", archive.clone())]),
        Behaviour {
            drop_first_after: Some(archive.len() / 2),
            ranges: true,
        },
    );
    let ds = small_cifar10(md5_hex(&archive), 9);
    let root = tempfile::tempdir().unwrap();
    // A broken earlier copy is replaced.
    std::fs::create_dir_all(root.path().join("cifar-10-batches-bin")).unwrap();
    std::fs::write(
        root.path().join("cifar-10-batches-bin/data_batch_1.bin"),
        b"bad",
    )
    .unwrap();
    let mut events = Vec::new();
    let path = download::install(
        &ds,
        root.path(),
        &test_options(Some(server.url())),
        &mut |e| events.push(e),
    )
    .unwrap();
    assert_eq!(path, root.path().join("cifar-10-batches-bin"));
    assert_eq!(server.seen()[0].path, "/cifar-10-binary.tar.gz");
    assert!(server.seen()[1].range.is_some());
    assert!(events
        .iter()
        .any(|e| matches!(e, DownloadEvent::Replacing { .. })));
    let set = catalog::Source::open("cifar10", root.path())
        .unwrap()
        .load(2, &|_| {})
        .unwrap();
    assert_eq!(set.len(), 9);
    assert_eq!(set.labels[8], i64::from(cifar10_label(8)));
    assert!(
        !path.join("readme.html").exists(),
        "skipped entry was extracted"
    );
    // The archive is removed after success; no staging folder is left behind.
    let left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["cifar-10-batches-bin"]);
}

#[test]
fn a_wrong_md5_deletes_the_archive_and_extracts_nothing() {
    let src = tempfile::tempdir().unwrap();
    let archive = cifar10_archive(src.path());
    let server = TestServer::start(
        files(&[("cifar-10-binary.tar.gz", archive)]),
        Behaviour::default(),
    );
    let ds = small_cifar10("0123456789abcdef0123456789abcdef".into(), 9);
    let root = tempfile::tempdir().unwrap();
    let err = download::install(
        &ds,
        root.path(),
        &test_options(Some(server.url())),
        &mut |_| {},
    )
    .unwrap_err();
    match &err {
        DownloadError::Md5 { expected, .. } => {
            assert_eq!(expected, "0123456789abcdef0123456789abcdef");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("cifar-10-binary.tar.gz is"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn a_hand_placed_archive_is_used_without_network_and_kept_on_request() {
    let src = tempfile::tempdir().unwrap();
    let archive = cifar10_archive(src.path());
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("cifar-10-binary.tar.gz"), &archive).unwrap();
    let ds = small_cifar10(md5_hex(&archive), 9);
    let mut opts = test_options(Some("http://127.0.0.1:9".into()));
    opts.keep_archive = true;
    let mut events = Vec::new();
    download::install(&ds, root.path(), &opts, &mut |e| events.push(e)).unwrap();
    assert!(matches!(events[0], DownloadEvent::Found { .. }));
    assert!(root.path().join("cifar-10-binary.tar.gz").exists());
    // The wrong number of images for the dataset is an error after extraction.
    let err = download::install(
        &small_cifar10(md5_hex(&archive), 60_000),
        root.path(),
        &opts,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Incomplete {
                images: 9,
                expected: 60_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn zip_archives_extract_image_folders() {
    let mut png = Vec::new();
    solid(4, 4, [1, 2, 3], [4, 5, 6])
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let zip_bytes = zip(&[
        ("tiny-imagenet-200/wnids.txt", b"n01\nn02\n".to_vec()),
        (
            "tiny-imagenet-200/train/n01/images/n01_0.JPEG.png",
            png.clone(),
        ),
        (
            "tiny-imagenet-200/train/n01/n01_boxes.txt",
            b"boxes".to_vec(),
        ),
        ("tiny-imagenet-200/train/n02/images/n02_0.png", png.clone()),
        ("tiny-imagenet-200/train/n02/images/n02_1.png", png),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("t.zip");
    std::fs::write(&archive, &zip_bytes).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut last = None;
    download::extract(&archive, ArchiveKind::Zip, &[], &out, &mut |e| {
        last = Some(e);
    })
    .unwrap();
    assert!(matches!(last, Some(DownloadEvent::Extracting { done, total, .. }) if done == total));
    let set = catalog::Source::open("tiny-imagenet", &out)
        .unwrap()
        .load(1, &|_| {})
        .unwrap();
    assert_eq!(set.class_names, ["n01", "n02"]);
    assert_eq!(set.labels, [0, 1, 1]);
    assert_eq!(set.images[0].get_pixel(0, 0).0, [4, 5, 6]);

    std::fs::write(&archive, b"not a zip at all").unwrap();
    let err = download::extract(&archive, ArchiveKind::Zip, &[], &out, &mut |_| {}).unwrap_err();
    assert!(matches!(err, DownloadError::Extract { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot extract {}", archive.display())),
        "{err}"
    );
}

#[test]
fn a_truncated_tar_gz_is_an_extraction_error() {
    let bytes = tar_gz(&[("d/a.bin", payload(100_000))]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("t.tar.gz");
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let err =
        download::extract(&archive, ArchiveKind::TarGz, &[], tmp.path(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, DownloadError::Extract { .. }), "{err:?}");
}

// ---------------------------------------------------------------- the binary

#[test]
fn download_without_network_names_the_url_and_the_folder() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let started = Instant::now();
    let (code, _, err) = cdw(
        &["datasets", "download", "cifar10", "--data-root", root],
        Some(&format!("http://127.0.0.1:{port}")),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach http://127.0.0.1:{port}/cifar-10-binary.tar.gz"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{root}/cifar-10-binary.tar.gz")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{root}/cifar-10-batches-bin")),
        "{err}"
    );
    assert!(err.contains("data_batch_1.bin"), "{err}");
    assert!(err.contains("c32a1d4ab5d03f1284b67883e8d87530"), "{err}");
}

#[test]
fn download_with_a_wrong_archive_fails_the_md5_check() {
    let server = TestServer::start(
        files(&[("stl10_binary.tar.gz", payload(5000))]),
        Behaviour::default(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let (code, _, err) = cdw(
        &["datasets", "download", "stl10", "--data-root", root],
        Some(&server.url()),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("expected 91f7769df0f17e558f3565bffb0c7dfb"),
        "{err}"
    );
    assert!(!tmp.path().join("stl10_binary.tar.gz").exists());
}

/// The JSON-line events of a `cdw datasets download --json` run's stdout.
fn json_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn download_json_reports_each_stage_then_the_failure() {
    let archive = payload(5000);
    let server = TestServer::start(
        files(&[("stl10_binary.tar.gz", archive)]),
        Behaviour::default(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let (code, out, err) = cdw(
        &[
            "datasets",
            "download",
            "stl10",
            "--data-root",
            root,
            "--json",
        ],
        Some(&server.url()),
    );
    assert_eq!(code, 1, "the exit code is the one without --json: {err}");
    let events = json_events(&out);
    let (last, progress) = events.split_last().unwrap();
    for e in progress {
        assert_eq!(e["event"], "download_progress", "{e}");
        assert_eq!(e["dataset"], "stl10", "{e}");
    }
    let stage = |name: &str| -> Vec<(u64, u64)> {
        progress
            .iter()
            .filter(|e| e["stage"] == name)
            .map(|e| (e["done"].as_u64().unwrap(), e["total"].as_u64().unwrap()))
            .collect()
    };
    let download = stage("download");
    assert_eq!(download.first(), Some(&(0, 5000)), "{download:?}");
    assert_eq!(download.last(), Some(&(5000, 5000)), "{download:?}");
    assert_eq!(stage("md5").last(), Some(&(5000, 5000)));
    assert!(
        stage("extract").is_empty(),
        "a wrong archive is not extracted"
    );
    assert_eq!(last["event"], "failed", "{last}");
    let error = last["error"].as_str().unwrap();
    assert!(
        error.contains("expected 91f7769df0f17e558f3565bffb0c7dfb"),
        "{error}"
    );
    assert!(err.contains(&format!("error: {error}")), "{err}");

    // A dataset cdw cannot fetch is explained in an event, and exits 0 as without --json.
    let (code, out, _) = cdw(
        &[
            "datasets",
            "download",
            "imagenet10",
            "--data-root",
            root,
            "--json",
        ],
        Some(""),
    );
    assert_eq!(code, 0);
    let events = json_events(&out);
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["event"], "download_manual");
    let text = events[0]["instructions"].as_str().unwrap();
    assert!(
        text.contains("kaggle datasets download -d liusha249/imagenet10"),
        "{text}"
    );
}

#[test]
fn install_events_map_to_download_progress_and_the_dataset_is_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = cifar10_archive(tmp.path());
    let server = TestServer::start(
        files(&[("cifar-10-binary.tar.gz", archive.clone())]),
        Behaviour::default(),
    );
    let ds = small_cifar10(md5_hex(&archive), 9);
    let root = tmp.path().join("data");
    let mut events = Vec::new();
    let path = download::install(&ds, &root, &test_options(Some(server.url())), &mut |e| {
        events.extend(cdw::console::download_event(ds.name, &e));
    })
    .unwrap();
    let stages: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["stage"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut order = stages.clone();
    order.dedup();
    assert_eq!(order, ["download", "md5", "extract", "check"]);
    let total = archive.len() as u64;
    assert!(events.contains(&cdw::events::Event::DownloadProgress {
        dataset: ds.name.into(),
        stage: cdw::events::DownloadStage::Md5,
        done: total,
        total: Some(total),
    }));
    assert!(path.join("data_batch_1.bin").is_file());
}

#[test]
fn imagenet10_download_explains_kaggle() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let (code, out, _) = cdw(
        &["datasets", "download", "imagenet10", "--data-root", root],
        Some(""),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("kaggle datasets download -d liusha249/imagenet10"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{root}/imagenet-10/<class>/<image>.JPEG")),
        "{out}"
    );
    assert!(
        out.contains(&format!("cdw datasets check imagenet10 --data-root {root}")),
        "{out}"
    );

    let (code, _, err) = cdw(&["datasets", "download", "mnist"], Some(""));
    assert_eq!(code, 2);
    assert!(err.contains("no download for `mnist`"), "{err}");
}
