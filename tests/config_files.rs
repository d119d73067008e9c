//! Config files: every invalid file in tests/fixtures/config/invalid/ fails with the exact message
//! written on its first line (`# error: ...`), and a config written for the reference loads.

use std::path::Path;

use cdw::config::{Backbone, ConfigFile, EvaluationMode};

#[test]
fn each_invalid_config_gives_its_exact_error() {
    let dir = Path::new("tests/fixtures/config/invalid");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let want = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .unwrap_or_else(|| panic!("{} lacks its '# error: ' line", path.display()));
        let got = ConfigFile::load(Some(&path))
            .and_then(|f| f.resolve("cifar10", &[]))
            .expect_err(&format!("{} should be rejected", path.display()))
            .to_string();
        assert_eq!(got, want, "{}", path.display());
        assert!(!got.contains('\n'), "one line: {got}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} invalid configs found");
}

#[test]
fn a_reference_config_loads_unchanged() {
    let file = ConfigFile::load(Some(Path::new(
        "tests/fixtures/config/valid/reference.yaml",
    )))
    .unwrap();
    let cifar = file.resolve("cifar10", &[]).unwrap();
    assert_eq!(cifar.backbone, Backbone::ResNet34);
    assert_eq!(cifar.s, 0.5);
    assert_eq!(cifar.class_num, Some(10));
    assert_eq!(cifar.evaluation_mode, EvaluationMode::Fraction(0.1));
    assert_eq!(cifar.experiment_name(), "bs128_lr0.0003_ResNet34");
    let imagenet = file.resolve("imagenet10", &[]).unwrap();
    assert!(imagenet.blur);
    // The project's additions keep reference behaviour by default.
    assert_eq!(imagenet.image_size, 224);
    assert!(!imagenet.fused_views);
}

#[test]
fn bad_set_arguments_name_the_field() {
    let file = ConfigFile::builtin();
    let cases = [
        ("batch_size=1", "config field `batch_size`: 1 is out of range; allowed: an integer >= 2"),
        ("evaluation_mode=2", "config field `evaluation_mode`: 2 is out of range; allowed: all, none, or a fraction in (0, 1]"),
        ("epochz=3", "unknown config key `epochz` in --set; did you mean `epochs`?"),
        ("batch_size", "--set `batch_size`: expected key=value, e.g. --set batch_size=64"),
        ("backbone=18", "config field `backbone`: expected ResNet18, ResNet34 or ResNet50, got 18"),
    ];
    for (arg, want) in cases {
        let got = file
            .resolve("shapes", &[arg.to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(got, want, "--set {arg}");
    }
    let got = file.resolve("mnist", &[]).unwrap_err().to_string();
    assert_eq!(
        got,
        "unknown dataset `mnist`; known: cifar10, cifar100, imagenet10, shapes, stl10, tiny-imagenet (or folder:PATH for an image folder)"
    );
}
