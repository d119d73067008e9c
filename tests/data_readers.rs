//! The dataset readers on small files in the real formats, their broken variants, and the
//! `cdw datasets` commands run as the real binary.

mod common;

use std::path::Path;

use cdw::config::ConfigFile;
use cdw::data::catalog::{self, Source, Status};
use cdw::data::cifar::{CifarBinary, CifarKind};
use cdw::data::folder::ImageFolder;
use cdw::data::stl10::Stl10;
use cdw::data::{self, DataError, ImageSet};
use common::*;

fn no_progress() -> impl Fn(data::DecodeProgress<'_>) + Sync {
    |_| {}
}

fn load(source: &Source) -> Result<ImageSet, DataError> {
    source.load(3, &no_progress())
}

// ---------------------------------------------------------------- CIFAR

#[test]
fn cifar10_binary_reads_train_then_test_with_row_major_planes() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10_binary(tmp.path(), [3, 2, 2, 2, 2, 4]);
    let source = Source::open("cifar10", tmp.path()).unwrap();
    assert_eq!(source.len(), 15);
    let set = load(&source).unwrap();
    assert_eq!(set.name, "cifar10");
    assert_eq!(set.len(), 15);
    assert_eq!(set.class_names[3], "cat");
    let want: Vec<i64> = (0..15).map(|g| i64::from(cifar10_label(g))).collect();
    assert_eq!(set.labels, want);
    for (g, img) in set.images.iter().enumerate() {
        assert_eq!(img.dimensions(), (32, 32));
        // (x = column, y = row); spot-check corners and an asymmetric interior pixel.
        for (r, c) in [(0, 0), (0, 31), (31, 0), (5, 17)] {
            let p = img.get_pixel(c as u32, r as u32).0;
            assert_eq!(
                p,
                [pixel(g, 0, r, c), pixel(g, 1, r, c), pixel(g, 2, r, c)],
                "image {g} at row {r} col {c}"
            );
        }
    }
    // The test batch comes last: image 14 is the 4th record of test_batch.bin.
    let (img, label) = source.image(14).unwrap();
    assert_eq!(label, i64::from(cifar10_label(14)));
    assert_eq!(img, set.images[14]);
    for g in 0..15 {
        assert_eq!(source.image(g).unwrap().0, set.images[g], "image {g}");
    }
    assert!(matches!(
        source.image(15),
        Err(DataError::IndexOutOfRange {
            index: 15,
            len: 15,
            ..
        })
    ));
}

#[test]
fn cifar100_uses_the_coarse_label() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100_binary(tmp.path(), 30, 12);
    let set = load(&Source::open("cifar100", tmp.path()).unwrap()).unwrap();
    assert_eq!(set.len(), 42);
    assert_eq!(set.class_names.len(), 20);
    assert_eq!(set.class_names[19], "vehicles_2");
    for g in 0..42 {
        assert_eq!(set.labels[g], i64::from(cifar100_labels(g).0));
    }
    assert_eq!(
        set.images[41].get_pixel(2, 1).0,
        [pixel(41, 0, 1, 2), pixel(41, 1, 1, 2), pixel(41, 2, 1, 2)]
    );
}

#[test]
fn truncated_cifar_file_is_named_with_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar10_binary(tmp.path(), [2, 2, 2, 2, 2, 2]);
    let file = dir.join("data_batch_3.bin");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::WrongSize {
                size: 6046,
                record: 3073,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("6046 bytes") && msg.contains("3073-byte"),
        "{msg}"
    );
}

#[test]
fn missing_and_empty_cifar_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar10_binary(tmp.path(), [1, 1, 1, 1, 1, 1]);
    std::fs::write(dir.join("test_batch.bin"), b"").unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyFile { ref path } if path.ends_with("test_batch.bin")),
        "{err:?}"
    );
    std::fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        matches!(err, DataError::Read { ref path, .. } if path.ends_with("data_batch_4.bin")),
        "{err:?}"
    );
}

#[test]
fn out_of_range_labels_are_reported_with_their_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar10_binary(tmp.path(), [3, 1, 1, 1, 1, 1]);
    let file = dir.join("data_batch_1.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[2 * 3073] = 10;
    std::fs::write(&file, bytes).unwrap();
    let source = Source::open("cifar10", tmp.path()).unwrap();
    let err = load(&source).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                record: 2,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("data_batch_1.bin record 2: label 10"),
        "{err}"
    );

    // CIFAR-100: a fine label of 100 is as wrong as a coarse label of 20.
    let dir = write_cifar100_binary(tmp.path(), 2, 1);
    let file = dir.join("test.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1] = 100;
    std::fs::write(&file, bytes).unwrap();
    let bin = CifarBinary::open(CifarKind::Cifar100, &dir).unwrap();
    let err = bin.load(1, &no_progress()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                record: 0,
                label: 100,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- STL-10

#[test]
fn stl10_planes_are_column_major() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_stl10(tmp.path(), 3, 2);
    // One more check with a single bright pixel at row 5, column 70 of a fresh first image.
    let mut x = std::fs::read(dir.join("train_X.bin")).unwrap();
    x[..27648].fill(0);
    x[70 * 96 + 5] = 255; // red plane, byte c*96 + r
    x[2 * 9216 + 70 * 96 + 5] = 128; // blue plane
    std::fs::write(dir.join("train_X.bin"), x).unwrap();

    let source = Source::open("stl10", tmp.path()).unwrap();
    let set = load(&source).unwrap();
    assert_eq!(set.len(), 5);
    assert_eq!(set.images[0].dimensions(), (96, 96));
    assert_eq!(set.images[0].get_pixel(70, 5).0, [255, 0, 128]);
    assert_eq!(set.images[0].get_pixel(5, 70).0, [0, 0, 0]);
    // Labels 1-10 are stored; the set holds 0-9, train first.
    let want: Vec<i64> = (0..5)
        .map(|g| i64::from(stl10_stored_label(g)) - 1)
        .collect();
    assert_eq!(set.labels, want);
    for g in 1..5 {
        for (r, c) in [(0, 95), (95, 0), (10, 60)] {
            assert_eq!(
                set.images[g].get_pixel(c as u32, r as u32).0,
                [pixel(g, 0, r, c), pixel(g, 1, r, c), pixel(g, 2, r, c)]
            );
        }
        assert_eq!(
            source.image(g).unwrap(),
            (set.images[g].clone(), set.labels[g])
        );
    }
    assert_eq!(set.class_names[7], "monkey");
}

#[test]
fn stl10_broken_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_stl10(tmp.path(), 2, 2);
    // One label too many.
    std::fs::write(dir.join("test_y.bin"), [1u8, 2, 3]).unwrap();
    let err = Stl10::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 2,
                labels: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("test_X.bin holds 2 images but"),
        "{err}"
    );
    // Label 0 is outside 1-10.
    std::fs::write(dir.join("test_y.bin"), [1u8, 0]).unwrap();
    let err = Stl10::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                record: 1,
                label: 0,
                allowed: "1 to 10",
                ..
            }
        ),
        "{err:?}"
    );
    // A truncated image file.
    std::fs::write(dir.join("test_y.bin"), [1u8, 2]).unwrap();
    let x = std::fs::read(dir.join("train_X.bin")).unwrap();
    std::fs::write(dir.join("train_X.bin"), &x[..27648 + 5]).unwrap();
    let err = Stl10::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::WrongSize {
                size: 27653,
                record: 27648,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- image folders

/// root/B/x.png, root/a/{2.jpg, 10.PNG, images/z.bmp, notes.txt}, root/b/images/{c.JPEG, d.png}.
fn write_folder(root: &Path) {
    save(&root.join("B/x.png"), &solid(5, 4, [10, 20, 30], [1, 2, 3]));
    save(
        &root.join("a/2.jpg"),
        &solid(16, 8, [200, 100, 50], [200, 100, 50]),
    );
    save(&root.join("a/10.PNG"), &solid(3, 3, [0, 255, 0], [9, 9, 9]));
    save(
        &root.join("a/images/z.bmp"),
        &solid(2, 2, [7, 7, 7], [7, 7, 7]),
    );
    std::fs::write(root.join("a/notes.txt"), "not an image").unwrap();
    save(
        &root.join("b/images/c.JPEG"),
        &solid(8, 8, [90, 90, 90], [90, 90, 90]),
    );
    // A grayscale PNG is read as RGB.
    let gray = image::GrayImage::from_pixel(4, 4, image::Luma([77]));
    gray.save(root.join("b/images/d.png")).unwrap();
    std::fs::write(
        root.join("top-level-file.png"),
        b"ignored: not in a class folder",
    )
    .unwrap();
}

#[test]
fn image_folder_order_labels_and_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(tmp.path());
    let folder = ImageFolder::open("folder:x", tmp.path()).unwrap();
    // Byte order: "B" < "a" < "b"; files before sub-folders, names in byte order ("10.PNG" < "2.jpg").
    assert_eq!(folder.class_names, ["B", "a", "b"]);
    let names: Vec<String> = folder
        .files()
        .iter()
        .map(|p| {
            p.strip_prefix(tmp.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "B/x.png",
            "a/10.PNG",
            "a/2.jpg",
            "a/images/z.bmp",
            "b/images/c.JPEG",
            "b/images/d.png"
        ]
    );
    assert_eq!(folder.labels(), [0, 1, 1, 1, 2, 2]);
    let set = folder.load(2, &no_progress()).unwrap();
    assert_eq!(set.images[0].dimensions(), (5, 4));
    assert_eq!(set.images[0].get_pixel(0, 0).0, [1, 2, 3]);
    assert_eq!(set.images[0].get_pixel(4, 3).0, [10, 20, 30]);
    assert_eq!(set.images[1].get_pixel(1, 1).0, [0, 255, 0]);
    assert_eq!(set.images[5].get_pixel(2, 2).0, [77, 77, 77]);
    // JPEG is lossy: near the written colour.
    let p = set.images[2].get_pixel(8, 4).0;
    assert!(
        p.iter()
            .zip([200u8, 100, 50])
            .all(|(a, b)| a.abs_diff(b) <= 6),
        "{p:?}"
    );
    assert_eq!(set.class_counts(), [1, 3, 2]);
    assert_eq!(folder.image(3).unwrap(), (set.images[3].clone(), 1));
}

#[test]
fn image_folder_broken_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");

    // Missing root.
    let err = ImageFolder::open("f", &root).unwrap_err();
    assert!(
        matches!(err, DataError::Read { ref path, .. } if path == &root),
        "{err:?}"
    );
    // A file, not a folder.
    std::fs::write(&root, b"x").unwrap();
    assert!(matches!(
        ImageFolder::open("f", &root).unwrap_err(),
        DataError::NotAFolder { .. }
    ));
    std::fs::remove_file(&root).unwrap();
    // No class folders.
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("loose.png"), b"x").unwrap();
    let err = ImageFolder::open("f", &root).unwrap_err();
    assert!(matches!(err, DataError::NoClasses { .. }), "{err:?}");
    assert!(err.to_string().contains("<class>/<image>"), "{err}");
    // An empty class (only a non-image file in it).
    save(&root.join("cats/a.png"), &solid(2, 2, [1, 1, 1], [1, 1, 1]));
    std::fs::create_dir_all(root.join("dogs/sub")).unwrap();
    std::fs::write(root.join("dogs/readme.txt"), b"x").unwrap();
    let err = ImageFolder::open("f", &root).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyClass { ref path } if path.ends_with("dogs")),
        "{err:?}"
    );
    // A non-image with an image extension, and a truncated PNG: the first in order is named.
    save(&root.join("dogs/b.png"), &solid(2, 2, [1, 1, 1], [1, 1, 1]));
    std::fs::write(root.join("dogs/sub/fake.jpg"), b"this is text, not a JPEG").unwrap();
    let png = std::fs::read(root.join("dogs/b.png")).unwrap();
    std::fs::write(root.join("cats/c.png"), &png[..png.len() / 2]).unwrap();
    let folder = ImageFolder::open("f", &root).unwrap();
    for threads in [1, 4] {
        let err = folder.load(threads, &no_progress()).unwrap_err();
        assert!(
            matches!(err, DataError::BadImage { ref path, .. } if path.ends_with("cats/c.png")),
            "{err:?}"
        );
    }
    std::fs::remove_file(root.join("cats/c.png")).unwrap();
    let folder = ImageFolder::open("f", &root).unwrap();
    let err = folder.load(2, &no_progress()).unwrap_err();
    assert!(
        matches!(err, DataError::BadImage { ref path, .. } if path.ends_with("sub/fake.jpg")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("fake.jpg is not a readable image"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn unreadable_class_folder_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    save(
        &tmp.path().join("a/x.png"),
        &solid(2, 2, [1, 1, 1], [1, 1, 1]),
    );
    let locked = tmp.path().join("b");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let result = ImageFolder::open("f", tmp.path());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root ignores permissions: then the empty folder is what is wrong.
    match result.unwrap_err() {
        DataError::Read { path, .. } | DataError::EmptyClass { path } => assert_eq!(path, locked),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- config, catalog, load

#[test]
fn load_reads_named_datasets_from_data_root_and_concatenates_custom_ones() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10_binary(tmp.path(), [1, 1, 1, 1, 1, 2]);
    write_folder(&tmp.path().join("extra"));
    let root = tmp.path().display().to_string();
    let extra = format!("folder:{}", tmp.path().join("extra").display());
    let cfg = ConfigFile::builtin()
        .resolve(
            "cifar10",
            &[
                format!("data_root={root}"),
                "customize_datasets=true".into(),
                format!("custom_datasets=[cifar10, '{extra}']"),
            ],
        )
        .unwrap();
    let set = data::load(&cfg).unwrap();
    assert_eq!(set.len(), 7 + 6);
    assert_eq!(set.class_names.len(), 13);
    assert_eq!(set.class_names[0], "cifar10/airplane");
    assert_eq!(set.class_names[10], format!("{extra}/B"));
    // Folder labels are offset past CIFAR-10's ten classes.
    assert_eq!(&set.labels[7..], [10, 11, 11, 11, 12, 12]);
    assert_eq!(cfg.experiment_name(), "bs128_lr0.0003_ResNet34_custom");
    // Evaluation stays on the chosen dataset.
    assert_eq!(data::load_evaluation(&cfg).unwrap().len(), 7);
}

#[test]
fn custom_datasets_field_is_checked() {
    let bad = ConfigFile::builtin()
        .resolve("cifar10", &["custom_datasets=[cifar10, imagenet]".into()])
        .unwrap_err();
    assert!(
        bad.to_string().contains("custom_datasets") && bad.to_string().contains("\"imagenet\""),
        "{bad}"
    );
    let bad = ConfigFile::builtin()
        .resolve("cifar10", &["custom_datasets=cifar10".into()])
        .unwrap_err();
    assert!(
        bad.to_string().contains("expected a non-empty list"),
        "{bad}"
    );
    let cfg = ConfigFile::builtin().resolve("cifar10", &[]).unwrap();
    assert_eq!(
        cfg.custom_datasets,
        ["cifar10", "cifar100", "imagenet10", "stl10"]
    );
}

#[test]
fn catalog_names_are_known_to_the_config() {
    for ds in &catalog::NAMED {
        assert!(
            cdw::config::BUILTIN_DATASETS.contains(&ds.name),
            "{}",
            ds.name
        );
        ConfigFile::builtin().resolve(ds.name, &[]).unwrap();
    }
}

#[test]
fn missing_dataset_offers_the_download_command() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Source::open("stl10", tmp.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("stl10_binary"), "{msg}");
    assert!(
        msg.contains(&format!(
            "cdw datasets download stl10 --data-root {}",
            tmp.path().display()
        )),
        "{msg}"
    );
    let err = Source::open("cifar10", Path::new("./data-that-is-not-here")).unwrap_err();
    assert!(
        err.to_string()
            .contains("cifar-10-batches-bin and ./data-that-is-not-here/cifar-10-batches-py"),
        "{err}"
    );
    let err = Source::open("imagenet10", tmp.path()).unwrap_err();
    assert!(err.to_string().contains("Kaggle"), "{err}");
}

#[test]
fn status_tells_missing_invalid_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let cifar10 = catalog::named("cifar10").unwrap();
    assert!(matches!(
        catalog::status(cifar10, tmp.path()),
        Status::Missing { .. }
    ));
    let dir = write_cifar10_binary(tmp.path(), [1, 1, 1, 1, 1, 1]);
    match catalog::status(cifar10, tmp.path()) {
        Status::Present {
            images,
            complete,
            bytes,
            path,
        } => {
            assert_eq!((images, complete, bytes), (6, false, 6 * 3073));
            assert_eq!(path, dir);
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(dir.join("data_batch_1.bin"), [0u8; 10]).unwrap();
    assert!(matches!(
        catalog::status(cifar10, tmp.path()),
        Status::Invalid {
            error: DataError::WrongSize { .. },
            ..
        }
    ));
}

// ---------------------------------------------------------------- the binary

#[test]
fn datasets_list_check_and_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    write_cifar10_binary(tmp.path(), [2, 2, 2, 2, 2, 10]);
    write_stl10(tmp.path(), 2, 3);
    std::fs::create_dir_all(tmp.path().join("tiny-imagenet-200/train")).unwrap();

    let (code, out, err) = cdw(&["datasets", "list", "--data-root", root], None);
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    let cifar = line("cifar10 ");
    assert!(
        cifar.contains("incomplete") && cifar.contains(" 20 ") && cifar.contains("60.0 KiB"),
        "{cifar}"
    );
    assert!(line("cifar100").contains("missing"), "{out}");
    assert!(line("tiny-imagenet").contains("invalid"), "{out}");
    assert!(
        out.contains(&format!(
            "cifar100: get it with `cdw datasets download cifar100 --data-root {root}`"
        )),
        "{out}"
    );
    assert!(out.contains("has no class sub-folders"), "{out}");

    let (code, out, err) = cdw(&["datasets", "check", "cifar10", "--data-root", root], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cifar10: 20 images in 10 classes, 32x32"),
        "{out}"
    );
    assert!(out.contains("     3  cat         2\n"), "{out}");
    assert!(
        out.contains("incomplete: the official cifar10 has 60000 images in 10 classes"),
        "{out}"
    );

    // STL-10 image 3 (the second test image), written as the loader holds it.
    let png = tmp.path().join("s.png");
    let (code, out, err) = cdw(
        &[
            "datasets",
            "sample",
            "stl10",
            "--index",
            "3",
            "--out",
            png.to_str().unwrap(),
            "--data-root",
            root,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stl10 image 3: label 3 (cat), 96x96"), "{out}");
    let img = image::open(&png).unwrap().into_rgb8();
    for (r, c) in [(0, 0), (3, 90), (90, 3)] {
        assert_eq!(
            img.get_pixel(c, r).0,
            [
                pixel(3, 0, r as usize, c as usize),
                pixel(3, 1, r as usize, c as usize),
                pixel(3, 2, r as usize, c as usize)
            ]
        );
    }

    let (code, _, err) = cdw(
        &[
            "datasets",
            "sample",
            "stl10",
            "--index",
            "5",
            "--out",
            png.to_str().unwrap(),
            "--data-root",
            root,
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("image index 5 is out of range: `stl10` has 5 images (0 to 4)"),
        "{err}"
    );
}

#[test]
fn broken_data_fails_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("imgs");
    save(&folder.join("a/1.png"), &solid(2, 2, [1, 1, 1], [1, 1, 1]));
    std::fs::write(folder.join("a/2.png"), b"garbage").unwrap();
    let arg = format!("folder:{}", folder.display());
    let (code, _, err) = cdw(&["datasets", "check", &arg], None);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("a/2.png is not a readable image"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn train_on_a_missing_dataset_offers_the_download_command() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("nothing-here");
    let set = format!("data_root={}", root.display());
    let (code, _, err) = cdw(
        &[
            "train",
            "--dataset",
            "cifar10",
            "--set",
            &set,
            "--set",
            "device=cpu",
            "--records",
            tmp.path().join("rec").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "download it with `cdw datasets download cifar10 --data-root {}`",
            root.display()
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------- CIFAR python (torchvision's download)

#[test]
fn cifar_python_pickles_read_like_the_binary_files() {
    let py = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    write_cifar10_python(py.path(), [2, 1, 1, 3, 1, 4]);
    write_cifar10_binary(bin.path(), [2, 1, 1, 3, 1, 4]);
    let source = Source::open("cifar10", py.path()).unwrap();
    assert!(matches!(source, Source::CifarPython(_)));
    assert_eq!(source.len(), 12);
    let a = load(&source).unwrap();
    let b = load(&Source::open("cifar10", bin.path()).unwrap()).unwrap();
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.images, b.images);
    assert_eq!(a.class_names, b.class_names);
    assert_eq!(
        source.image(11).unwrap(),
        (a.images[11].clone(), a.labels[11])
    );

    write_cifar100_python(py.path(), 25, 5);
    let set = load(&Source::open("cifar100", py.path()).unwrap()).unwrap();
    assert_eq!(set.len(), 30);
    assert!((0..30).all(|g| set.labels[g] == i64::from(cifar100_labels(g).0)));
    assert_eq!(
        set.images[29].get_pixel(31, 0).0,
        [
            pixel(29, 0, 0, 31),
            pixel(29, 1, 0, 31),
            pixel(29, 2, 0, 31)
        ]
    );

    // The binary folder wins when both are there.
    write_cifar10_binary(py.path(), [1, 1, 1, 1, 1, 1]);
    assert!(matches!(
        Source::open("cifar10", py.path()).unwrap(),
        Source::CifarBinary(_)
    ));
}

#[test]
fn broken_cifar_pickles_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar10_python(tmp.path(), [2, 1, 1, 1, 1, 1]);
    let file = dir.join("data_batch_2");
    let good = std::fs::read(&file).unwrap();

    std::fs::write(&file, &good[..good.len() - 40]).unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        matches!(err, DataError::BadFormat { ref path, .. } if path == &file),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("data_batch_2 is not a valid CIFAR python batch"),
        "{err}"
    );

    // Labels under another key (a CIFAR-100 file in a CIFAR-10 folder).
    std::fs::write(
        &file,
        cifar_python_batch(&[("coarse_labels", vec![1])], &planes(0, 32, false), 1),
    )
    .unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(err.to_string().ends_with("no `labels` entry"), "{err}");

    // One label short.
    std::fs::write(
        &file,
        cifar_python_batch(&[("labels", vec![])], &planes(0, 32, false), 1),
    )
    .unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("`data` holds 1 images but `labels` holds 0 labels"),
        "{err}"
    );

    // A label out of range.
    std::fs::write(
        &file,
        cifar_python_batch(&[("labels", vec![12])], &planes(0, 32, false), 1),
    )
    .unwrap();
    let err = Source::open("cifar10", tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                record: 0,
                label: 12,
                ..
            }
        ),
        "{err:?}"
    );

    // Not a pickle at all.
    std::fs::write(&file, b"hello").unwrap();
    assert!(matches!(
        Source::open("cifar10", tmp.path()).unwrap_err(),
        DataError::BadFormat { .. }
    ));
}
