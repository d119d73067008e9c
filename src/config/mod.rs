//! Experiment configuration: the YAML schema of SPEC 2.9, merging `common` with a dataset's
//! overrides and `--set key=value` pairs, validation with errors that name the field, the bad value
//! and what is allowed, and the experiment name used in file names.

mod fields;
mod pyfmt;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml::Value;

pub use fields::{Field, Group, Kind, FIELDS};
pub use pyfmt::python_float;

/// The configuration shipped with the project (`config/config.yaml`), embedded so the binary works
/// from any directory.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../config/config.yaml");

/// Dataset names the data layer reads besides `folder:PATH` (checked against its catalog by a test
/// there; kept here because config sits below data).
pub const BUILTIN_DATASETS: [&str; 6] = [
    "cifar10",
    "cifar100",
    "stl10",
    "imagenet10",
    "tiny-imagenet",
    "shapes",
];

/// What the reference concatenates for training when `customize_datasets` is on (its combined
/// datasets: CIFAR-10, CIFAR-100, ImageNet-10 and STL-10, each train + test).
pub const REFERENCE_CUSTOM_DATASETS: [&str; 4] = ["cifar10", "cifar100", "imagenet10", "stl10"];

/// A ResNet variant of SPEC 2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Backbone {
    ResNet18,
    ResNet34,
    ResNet50,
}

impl Backbone {
    pub const ALL: [Backbone; 3] = [Backbone::ResNet18, Backbone::ResNet34, Backbone::ResNet50];

    pub fn name(self) -> &'static str {
        match self {
            Backbone::ResNet18 => "ResNet18",
            Backbone::ResNet34 => "ResNet34",
            Backbone::ResNet50 => "ResNet50",
        }
    }

    pub fn parse(s: &str) -> Option<Backbone> {
        Backbone::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
    }

    /// Size of the backbone output `h`.
    pub fn rep_dim(self) -> i64 {
        match self {
            Backbone::ResNet18 | Backbone::ResNet34 => 512,
            Backbone::ResNet50 => 2048,
        }
    }
}

/// Training objective: CD (instance + feature loss) or the SimCLR baseline (instance loss only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Cd,
    Simclr,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cd => "cd",
            Method::Simclr => "simclr",
        }
    }
}

/// When the clustering evaluation runs during training (SPEC 2.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvaluationMode {
    /// The whole evaluation set every epoch.
    All,
    /// Only at the end and at each 100-epoch mark.
    None,
    /// This fraction of the set every epoch (a subset drawn once with the seed).
    Fraction(f64),
}

impl Serialize for EvaluationMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EvaluationMode::All => s.serialize_str("all"),
            EvaluationMode::None => s.serialize_str("none"),
            EvaluationMode::Fraction(f) => s.serialize_f64(*f),
        }
    }
}

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// CUDA device 0 when available, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(0) => write!(f, "cuda"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The resolved configuration of one run: `common`, then the dataset's block, then `--set` pairs.
// One field per key of config.yaml, as the reference names them: its switches are bools.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub dataset: String,
    pub batch_size: i64,
    pub epochs: i64,
    pub learning_rate: f64,
    pub backbone: Backbone,
    pub hidden_dim: i64,
    pub feature_num: i64,
    pub instance_temperature: f64,
    pub feature_temperature: f64,
    pub weight_decay: f64,
    pub use_gradnorm: bool,
    pub max_norm: f64,
    pub use_scheduler: bool,
    pub checkpoint: bool,
    pub reload: bool,
    pub save_model: bool,
    pub project: String,
    pub seed: u64,
    pub s: f64,
    pub blur: bool,
    pub customize_datasets: bool,
    /// The datasets concatenated into the training set when `customize_datasets` is on.
    pub custom_datasets: Vec<String>,
    pub evaluation_mode: EvaluationMode,
    pub use_wandb: bool,
    pub class_num: Option<i64>,
    pub method: Method,
    pub image_size: i64,
    pub device: DeviceSpec,
    pub data_root: PathBuf,
    pub fused_views: bool,
    pub workers: usize,
    pub prefetch: usize,
    /// Besides every 100th epoch, keep the checkpoint of every N-th epoch (0: the marks only).
    pub keep_checkpoint_every: i64,
    pub shapes_images: i64,
    pub shapes_resolution: i64,
}

impl Default for Config {
    /// The reference defaults of SPEC 2.9 (before any file is read).
    fn default() -> Self {
        Config {
            dataset: String::new(),
            batch_size: 128,
            epochs: 1000,
            learning_rate: 0.0003,
            backbone: Backbone::ResNet34,
            hidden_dim: 128,
            feature_num: 128,
            instance_temperature: 0.5,
            feature_temperature: 1.0,
            weight_decay: 0.0,
            use_gradnorm: false,
            max_norm: 1.0,
            use_scheduler: false,
            checkpoint: true,
            reload: true,
            save_model: true,
            project: "CD".into(),
            seed: 42,
            s: 1.0,
            blur: false,
            customize_datasets: false,
            custom_datasets: REFERENCE_CUSTOM_DATASETS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            evaluation_mode: EvaluationMode::Fraction(0.1),
            use_wandb: false,
            class_num: None,
            method: Method::Cd,
            image_size: 224,
            device: DeviceSpec::Auto,
            data_root: PathBuf::from("./data"),
            fused_views: false,
            workers: 0,
            prefetch: 4,
            keep_checkpoint_every: 100,
            shapes_images: 1024,
            shapes_resolution: 32,
        }
    }
}

/// Why a configuration could not be loaded. Each message is one line naming the field, the bad
/// value and what is allowed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path} is not valid YAML: {reason}")]
    Yaml { path: String, reason: String },
    #[error("config {section}: expected a mapping of keys to values, got {got}")]
    NotAMapping { section: String, got: String },
    #[error("unknown config key `{key}` in {section}{hint}")]
    UnknownKey {
        key: String,
        section: String,
        hint: String,
    },
    #[error("config field `{field}`: expected {expected}, got {got}")]
    WrongType {
        field: String,
        expected: String,
        got: String,
    },
    #[error("config field `{field}`: {got} is out of range; allowed: {allowed}")]
    OutOfRange {
        field: String,
        got: String,
        allowed: String,
    },
    #[error("unknown dataset `{name}`; known: {known} (or folder:PATH for an image folder)")]
    UnknownDataset { name: String, known: String },
    #[error("--set `{arg}`: expected key=value, e.g. --set batch_size=64")]
    BadSetArgument { arg: String },
    #[error("config snapshot {origin}: {reason}")]
    Snapshot { origin: String, reason: String },
}

/// A config file as written: defaults in `common`, per-dataset overrides in `datasets`.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    common: BTreeMap<String, Value>,
    datasets: BTreeMap<String, BTreeMap<String, Value>>,
}

impl ConfigFile {
    /// The configuration shipped with the project.
    pub fn builtin() -> ConfigFile {
        ConfigFile::parse(DEFAULT_CONFIG_YAML, "<built-in config/config.yaml>")
            .expect("the embedded config/config.yaml is valid")
    }

    /// Reads `path`, or the built-in configuration when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<ConfigFile, ConfigError> {
        match path {
            None => Ok(ConfigFile::builtin()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                ConfigFile::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Parses and checks a config file's text. Every key is validated here, so a typo in a dataset
    /// block that is not used in this run is still reported.
    pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        let doc = match doc {
            Value::Null => return Ok(ConfigFile::default()),
            Value::Mapping(m) => m,
            other => {
                return Err(ConfigError::NotAMapping {
                    section: "file".into(),
                    got: describe(&other),
                })
            }
        };
        let mut file = ConfigFile::default();
        for (k, v) in doc {
            let key = key_string(&k);
            match key.as_str() {
                "common" => file.common = field_map(v, "common")?,
                "datasets" => {
                    let section = "datasets";
                    let Value::Mapping(m) = v else {
                        if v.is_null() {
                            continue;
                        }
                        return Err(ConfigError::NotAMapping {
                            section: section.into(),
                            got: describe(&v),
                        });
                    };
                    for (name, block) in m {
                        let name = key_string(&name);
                        let block = field_map(block, &format!("datasets.{name}"))?;
                        file.datasets.insert(name, block);
                    }
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        hint: did_you_mean(&key, ["common", "datasets"].into_iter()),
                        key,
                        section: "the top level (allowed: common, datasets)".into(),
                    })
                }
            }
        }
        // Check every value now: a bad value anywhere in the file is an error for every run.
        let mut probe = Config::default();
        for (k, v) in &file.common {
            fields::apply(&mut probe, k, v, "common")?;
        }
        for (name, block) in &file.datasets {
            let mut probe = Config::default();
            for (k, v) in block {
                fields::apply(&mut probe, k, v, &format!("datasets.{name}"))?;
            }
        }
        Ok(file)
    }

    /// Dataset names with a block in this file.
    pub fn dataset_names(&self) -> Vec<String> {
        self.datasets.keys().cloned().collect()
    }

    /// The configuration of `dataset`: common, then its block, then the `--set` overrides.
    ///
    /// `folder:PATH` needs no block of its own; any other name must have one.
    pub fn resolve(&self, dataset: &str, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        for (k, v) in &self.common {
            fields::apply(&mut cfg, k, v, "common")?;
        }
        match self.datasets.get(dataset) {
            Some(block) => {
                for (k, v) in block {
                    fields::apply(&mut cfg, k, v, &format!("datasets.{dataset}"))?;
                }
            }
            None if dataset.starts_with("folder:") => {}
            None => {
                return Err(ConfigError::UnknownDataset {
                    name: dataset.to_string(),
                    known: self.dataset_names().join(", "),
                })
            }
        }
        cfg.apply_overrides(overrides)?;
        cfg.dataset = dataset.to_string();
        Ok(cfg)
    }
}

/// Splits `key=value` and reads the value as a YAML scalar (`64`, `0.001`, `true`, `ResNet18`).
pub fn parse_set(arg: &str) -> Result<(String, Value), ConfigError> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(ConfigError::BadSetArgument { arg: arg.into() });
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(ConfigError::BadSetArgument { arg: arg.into() });
    }
    let value = serde_yaml::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

impl Config {
    /// `bs{batch_size}_lr{learning_rate}_{backbone}` plus `_scheduler`, `_gradnorm`,
    /// `_wd{weight_decay}`, `_custom` as the reference names runs, and `_simclr` for the baseline
    /// so its records never mix with a CD run's.
    pub fn experiment_name(&self) -> String {
        let mut name = format!(
            "bs{}_lr{}_{}",
            self.batch_size,
            python_float(self.learning_rate),
            self.backbone.name()
        );
        if self.use_scheduler {
            name.push_str("_scheduler");
        }
        if self.use_gradnorm {
            name.push_str("_gradnorm");
        }
        if self.weight_decay != 0.0 {
            name.push_str(&format!("_wd{}", python_float(self.weight_decay)));
        }
        if self.customize_datasets {
            name.push_str("_custom");
        }
        if self.method == Method::Simclr {
            name.push_str("_simclr");
        }
        name
    }

    /// The resolved configuration as YAML (the snapshot kept with each run); it reads back with
    /// [`Config::from_snapshot`].
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml::to_string(self).map_err(|e| ConfigError::Snapshot {
            origin: format!("of {}", self.dataset),
            reason: format!("cannot be written as YAML: {e}"),
        })
    }

    /// Reads back what [`Config::to_yaml`] wrote (`origin` names it in errors): every field is
    /// checked as a config file's would be; unset optional fields (`null`) stay unset.
    pub fn from_snapshot(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let snapshot = |reason: String| ConfigError::Snapshot {
            origin: origin.to_string(),
            reason,
        };
        let map: BTreeMap<String, Value> = serde_yaml::from_str(text)
            .map_err(|e| snapshot(format!("expected a YAML mapping of fields: {e}")))?;
        let mut cfg = Config::default();
        for (key, value) in &map {
            match key.as_str() {
                "dataset" => {
                    cfg.dataset = value
                        .as_str()
                        .ok_or_else(|| snapshot(format!("`dataset` is {}", describe(value))))?
                        .to_string();
                }
                _ if value.is_null() => {}
                _ => fields::apply(&mut cfg, key, value, origin)?,
            }
        }
        if cfg.dataset.is_empty() {
            return Err(snapshot("it names no dataset".into()));
        }
        Ok(cfg)
    }

    /// Applies `--set key=value` pairs, in order.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<(), ConfigError> {
        for arg in overrides {
            let (k, v) = parse_set(arg)?;
            fields::apply(self, &k, &v, "--set")?;
        }
        Ok(())
    }
}

fn field_map(v: Value, section: &str) -> Result<BTreeMap<String, Value>, ConfigError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Mapping(m) => Ok(m.into_iter().map(|(k, v)| (key_string(&k), v)).collect()),
        other => Err(ConfigError::NotAMapping {
            section: section.into(),
            got: describe(&other),
        }),
    }
}

fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => describe(other),
    }
}

/// A value as the user wrote it, for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// `"; did you mean `x`?"` when a known name is close to `key`, else `""`.
pub(crate) fn did_you_mean<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 3.max(key.len() / 3) => format!("; did you mean `{k}`?"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_resolves_reference_defaults() {
        let cfg = ConfigFile::builtin().resolve("cifar10", &[]).unwrap();
        assert_eq!(cfg.batch_size, 128);
        assert_eq!(cfg.epochs, 1000);
        assert_eq!(cfg.learning_rate, 0.0003);
        assert_eq!(cfg.backbone, Backbone::ResNet34);
        assert_eq!(cfg.s, 0.5);
        assert_eq!(cfg.class_num, Some(10));
        assert_eq!(cfg.evaluation_mode, EvaluationMode::Fraction(0.1));
        assert_eq!(cfg.experiment_name(), "bs128_lr0.0003_ResNet34");
    }

    #[test]
    fn experiment_name_has_reference_suffixes() {
        let over: Vec<String> = [
            "use_scheduler=true",
            "use_gradnorm=true",
            "weight_decay=1e-5",
            "customize_datasets=true",
            "learning_rate=0.001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = ConfigFile::builtin().resolve("stl10", &over).unwrap();
        assert_eq!(
            cfg.experiment_name(),
            "bs128_lr0.001_ResNet34_scheduler_gradnorm_wd1e-05_custom"
        );
    }

    #[test]
    fn set_overrides_apply_last() {
        let cfg = ConfigFile::builtin()
            .resolve(
                "shapes",
                &["batch_size=16".into(), "evaluation_mode=all".into()],
            )
            .unwrap();
        assert_eq!(cfg.batch_size, 16);
        assert_eq!(cfg.evaluation_mode, EvaluationMode::All);
        assert_eq!(cfg.backbone, Backbone::ResNet18);
    }

    #[test]
    fn did_you_mean_suggests_close_names() {
        assert_eq!(
            did_you_mean("bach_size", FIELDS.iter().map(|f| f.name)),
            "; did you mean `batch_size`?"
        );
        assert_eq!(
            did_you_mean("zzzzzzzzzzzzz", FIELDS.iter().map(|f| f.name)),
            ""
        );
    }

    #[test]
    fn a_snapshot_reads_back_as_the_config_it_was() {
        let over: Vec<String> = [
            "evaluation_mode=all",
            "device=cuda:1",
            "custom_datasets=[cifar10, folder:imgs]",
            "customize_datasets=true",
            "learning_rate=1e-5",
            "method=simclr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for cfg in [
            ConfigFile::builtin().resolve("cifar100", &over).unwrap(),
            ConfigFile::builtin().resolve("folder:imgs", &[]).unwrap(),
            ConfigFile::builtin()
                .resolve("shapes", &["evaluation_mode=0.25".into()])
                .unwrap(),
        ] {
            let yaml = cfg.to_yaml().unwrap();
            assert_eq!(Config::from_snapshot(&yaml, "test").unwrap(), cfg, "{yaml}");
        }
        let err = Config::from_snapshot("batch_size: 8\n", "run/config.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config snapshot run/config.yaml: it names no dataset"
        );
        let err = Config::from_snapshot("dataset: shapes\nbatch_sise: 8\n", "run/config.yaml")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown config key `batch_sise` in run/config.yaml; did you mean `batch_size`?"
        );
    }
}
