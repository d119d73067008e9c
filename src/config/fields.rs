//! The table of config fields: each field's name, what it accepts, and how a YAML value becomes
//! a checked value of [`Config`].

use std::path::PathBuf;

use serde::Serialize;
use serde_yaml::Value;

use super::{
    describe, did_you_mean, Backbone, Config, ConfigError, DeviceSpec, EvaluationMode, Method,
    BUILTIN_DATASETS,
};

/// Which part of the config file a field belongs to (the sections of `config/config.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Optimisation,
    Network,
    Bookkeeping,
    Data,
    /// The fields cdw adds to the reference's (their defaults keep the reference behaviour).
    Cdw,
}

impl Group {
    /// The heading the form and `cdw config fields` show.
    pub fn title(self) -> &'static str {
        match self {
            Group::Optimisation => "optimisation",
            Group::Network => "network",
            Group::Bookkeeping => "run bookkeeping",
            Group::Data => "data",
            Group::Cdw => "additions of cdw",
        }
    }
}

/// What kind of value a field holds, for an editor: choices cycle, booleans toggle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Bool,
    /// One of `choices`; `open` when other values are accepted too (`cuda:N`, a fraction).
    Choice {
        choices: &'static [&'static str],
        open: bool,
    },
    /// A YAML list.
    List,
    Text,
    Path,
}

impl Kind {
    /// The kind's name in `cdw config fields --json`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Choice { .. } => "choice",
            Kind::List => "list",
            Kind::Text => "text",
            Kind::Path => "path",
        }
    }
}

/// One config key and what it accepts.
pub struct Field {
    pub name: &'static str,
    pub group: Group,
    pub kind: Kind,
    /// One line on what the field does.
    pub about: &'static str,
    /// What is allowed, as shown in error messages and `cdw config fields`.
    pub allowed: &'static str,
    set: fn(&mut Config, &str, &Value) -> Result<(), ConfigError>,
}

impl Field {
    /// The field by its key.
    pub fn named(name: &str) -> Option<&'static Field> {
        FIELDS.iter().find(|f| f.name == name)
    }

    /// The field's value in `cfg`, as YAML (what a config file or `--set` holds).
    pub fn get(&self, cfg: &Config) -> Value {
        serde_yaml::to_value(cfg)
            .ok()
            .and_then(|m| m.get(self.name).cloned())
            .unwrap_or(Value::Null)
    }

    /// The field's value in `cfg` as one line of text that `--set` takes back.
    pub fn show(&self, cfg: &Config) -> String {
        show_value(&self.get(cfg))
    }

    /// [`Field::show`] of every field of [`FIELDS`], in order, from one serialisation of `cfg`.
    pub fn show_all(cfg: &Config) -> Vec<String> {
        let map = serde_yaml::to_value(cfg).unwrap_or(Value::Null);
        FIELDS
            .iter()
            .map(|f| show_value(map.get(f.name).unwrap_or(&Value::Null)))
            .collect()
    }

    /// The field's default: its value in the built-in config's `common` block (SPEC 2.9).
    pub fn default_value(&self) -> Value {
        self.get(&Config::default())
    }

    /// The value after `now` in the field's choices (a toggle for booleans), or None when the
    /// field is not a choice. A value outside the choices moves to the first one.
    pub fn next_choice(&self, now: &str, back: bool) -> Option<String> {
        let choices: &[&str] = match self.kind {
            Kind::Bool => &["false", "true"],
            Kind::Choice { choices, .. } => choices,
            _ => return None,
        };
        let n = choices.len();
        let i = choices.iter().position(|c| c.eq_ignore_ascii_case(now));
        let next = match (i, back) {
            (None, _) => 0,
            (Some(i), false) => (i + 1) % n,
            (Some(i), true) => (i + n - 1) % n,
        };
        Some(choices[next].to_string())
    }
}

/// A YAML value on one line, lists in flow style (`[a, b]`), as `--set` reads it back.
fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "~".into(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(show_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => serde_yaml::to_string(other)
            .map(|t| t.trim_end().replace('\n', " "))
            .unwrap_or_default(),
    }
}

macro_rules! int_field {
    ($group:ident, $name:ident, $min:expr, $max:expr, $allowed:expr, $about:expr) => {
        Field {
            name: stringify!($name),
            group: Group::$group,
            kind: Kind::Int,
            about: $about,
            allowed: $allowed,
            set: |c, f, v| {
                c.$name = int_in(f, v, $min, $max, $allowed)?;
                Ok(())
            },
        }
    };
}

macro_rules! float_field {
    ($group:ident, $name:ident, $check:expr, $allowed:expr, $about:expr) => {
        Field {
            name: stringify!($name),
            group: Group::$group,
            kind: Kind::Float,
            about: $about,
            allowed: $allowed,
            set: |c, f, v| {
                c.$name = float_checked(f, v, $check, $allowed)?;
                Ok(())
            },
        }
    };
}

macro_rules! bool_field {
    ($group:ident, $name:ident, $about:expr) => {
        Field {
            name: stringify!($name),
            group: Group::$group,
            kind: Kind::Bool,
            about: $about,
            allowed: "true or false",
            set: |c, f, v| {
                c.$name = boolean(f, v)?;
                Ok(())
            },
        }
    };
}

const CUSTOM_DATASETS_ALLOWED: &str =
    "a non-empty list of cifar10, cifar100, stl10, imagenet10, tiny-imagenet, shapes or folder:PATH";
const BACKBONES: &str = "ResNet18, ResNet34 or ResNet50";
const EVALUATION_MODES: &str = "all, none, or a fraction in (0, 1]";
const DEVICES: &str = "auto, cpu, cuda or cuda:N";

/// Every key a config file (a `common` block, a dataset block, or `--set`) may hold, in the order
/// and groups of `config/config.yaml`.
pub static FIELDS: &[Field] = &[
    // --- optimisation ---
    int_field!(
        Optimisation,
        batch_size,
        2,
        1 << 20,
        "an integer >= 2",
        "images per step (each seen as two augmented views)"
    ),
    int_field!(
        Optimisation,
        epochs,
        1,
        1 << 30,
        "an integer >= 1",
        "passes over the training set"
    ),
    float_field!(
        Optimisation,
        learning_rate,
        |x| x > 0.0,
        "a number > 0",
        "Adam's step size"
    ),
    float_field!(
        Optimisation,
        weight_decay,
        |x| x >= 0.0,
        "a number >= 0",
        "L2 term added to the gradient (Adam, not AdamW)"
    ),
    bool_field!(
        Optimisation,
        use_gradnorm,
        "clip the global gradient norm to max_norm"
    ),
    float_field!(
        Optimisation,
        max_norm,
        |x| x > 0.0,
        "a number > 0",
        "the gradient-norm limit when use_gradnorm is on"
    ),
    bool_field!(
        Optimisation,
        use_scheduler,
        "cosine annealing of the learning rate to 0 over the epochs"
    ),
    // --- network ---
    Field {
        name: "backbone",
        group: Group::Network,
        kind: Kind::Choice {
            choices: &["ResNet18", "ResNet34", "ResNet50"],
            open: false,
        },
        about: "the ResNet whose output h is evaluated",
        allowed: BACKBONES,
        set: |c, f, v| {
            let s = string(f, v, BACKBONES)?;
            c.backbone = Backbone::parse(&s).ok_or_else(|| out_of_range(f, v, BACKBONES))?;
            Ok(())
        },
    },
    int_field!(
        Network,
        hidden_dim,
        1,
        1 << 20,
        "an integer >= 1",
        "size of the instance projector's output z"
    ),
    int_field!(
        Network,
        feature_num,
        2,
        1 << 20,
        "an integer >= 2",
        "number of sigmoid feature heads K"
    ),
    float_field!(
        Network,
        instance_temperature,
        |x| x > 0.0,
        "a number > 0",
        "temperature of the instance-level contrastive loss"
    ),
    float_field!(
        Network,
        feature_temperature,
        |x| x > 0.0,
        "a number > 0",
        "temperature of the feature-level contrastive loss"
    ),
    // --- run bookkeeping ---
    bool_field!(
        Bookkeeping,
        checkpoint,
        "write a resumable checkpoint every epoch"
    ),
    bool_field!(
        Bookkeeping,
        reload,
        "resume a run with the same experiment name"
    ),
    bool_field!(
        Bookkeeping,
        save_model,
        "save the model every 100 epochs and at the end"
    ),
    Field {
        name: "project",
        group: Group::Bookkeeping,
        kind: Kind::Text,
        about: "project name kept in the records",
        allowed: "a text",
        set: |c, f, v| {
            c.project = string(f, v, "a text")?;
            Ok(())
        },
    },
    Field {
        name: "seed",
        group: Group::Bookkeeping,
        kind: Kind::Int,
        about: "seed of the weights, the augmentation and the shuffling",
        allowed: "an integer >= 0",
        set: |c, f, v| {
            c.seed = int_in(f, v, 0, i64::MAX, "an integer >= 0")? as u64;
            Ok(())
        },
    },
    bool_field!(
        Bookkeeping,
        use_wandb,
        "accepted for compatibility; cdw keeps its own records"
    ),
    // --- data ---
    float_field!(
        Data,
        s,
        |x| (0.0..=1.25).contains(&x),
        "a number in [0, 1.25]",
        "colour-jitter strength"
    ),
    bool_field!(Data, blur, "Gaussian blur in the augmentation"),
    bool_field!(
        Data,
        customize_datasets,
        "train on custom_datasets concatenated (evaluation stays on the dataset)"
    ),
    Field {
        name: "custom_datasets",
        group: Group::Data,
        kind: Kind::List,
        about: "the datasets concatenated when customize_datasets is on",
        allowed: CUSTOM_DATASETS_ALLOWED,
        set: |c, f, v| {
            let Value::Sequence(items) = v else {
                return Err(wrong_type(f, v, CUSTOM_DATASETS_ALLOWED));
            };
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                let name = string(f, item, CUSTOM_DATASETS_ALLOWED)?;
                let known = BUILTIN_DATASETS.contains(&name.as_str())
                    || name.strip_prefix("folder:").is_some_and(|p| !p.is_empty());
                if !known {
                    return Err(out_of_range(f, item, CUSTOM_DATASETS_ALLOWED));
                }
                names.push(name);
            }
            if names.is_empty() {
                return Err(out_of_range(f, v, CUSTOM_DATASETS_ALLOWED));
            }
            c.custom_datasets = names;
            Ok(())
        },
    },
    Field {
        name: "evaluation_mode",
        group: Group::Data,
        kind: Kind::Choice {
            choices: &["none", "0.1", "all"],
            open: true,
        },
        about: "share of the test set clustered after each epoch",
        allowed: EVALUATION_MODES,
        set: |c, f, v| {
            c.evaluation_mode = match v {
                Value::String(s) if s.eq_ignore_ascii_case("all") => EvaluationMode::All,
                Value::String(s) if s.eq_ignore_ascii_case("none") => EvaluationMode::None,
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if x > 0.0 && x <= 1.0 {
                        EvaluationMode::Fraction(x)
                    } else {
                        return Err(out_of_range(f, v, EVALUATION_MODES));
                    }
                }
                Value::String(_) => return Err(out_of_range(f, v, EVALUATION_MODES)),
                _ => return Err(wrong_type(f, v, EVALUATION_MODES)),
            };
            Ok(())
        },
    },
    Field {
        name: "class_num",
        group: Group::Data,
        kind: Kind::Int,
        about: "number of classes: the k of the evaluation's k-means",
        allowed: "an integer >= 1",
        set: |c, f, v| {
            c.class_num = Some(int_in(f, v, 1, 1 << 30, "an integer >= 1")?);
            Ok(())
        },
    },
    // --- additions of cdw ---
    Field {
        name: "method",
        group: Group::Cdw,
        kind: Kind::Choice {
            choices: &["cd", "simclr"],
            open: false,
        },
        about: "cd, or the simclr baseline (instance loss only; evaluates z)",
        allowed: "cd or simclr",
        set: |c, f, v| {
            c.method = match string(f, v, "cd or simclr")?.to_ascii_lowercase().as_str() {
                "cd" => Method::Cd,
                "simclr" => Method::Simclr,
                _ => return Err(out_of_range(f, v, "cd or simclr")),
            };
            Ok(())
        },
    },
    int_field!(
        Cdw,
        image_size,
        8,
        4096,
        "an integer in [8, 4096]",
        "side of the square crops the network sees"
    ),
    Field {
        name: "device",
        group: Group::Cdw,
        kind: Kind::Choice {
            choices: &["auto", "cpu", "cuda"],
            open: true,
        },
        about: "where to train: auto takes the first GPU when there is one",
        allowed: DEVICES,
        set: |c, f, v| {
            let s = string(f, v, DEVICES)?.to_ascii_lowercase();
            c.device = match s.as_str() {
                "auto" => DeviceSpec::Auto,
                "cpu" => DeviceSpec::Cpu,
                "cuda" => DeviceSpec::Cuda(0),
                _ => match s
                    .strip_prefix("cuda:")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(n) => DeviceSpec::Cuda(n),
                    None => return Err(out_of_range(f, v, DEVICES)),
                },
            };
            Ok(())
        },
    },
    Field {
        name: "data_root",
        group: Group::Cdw,
        kind: Kind::Path,
        about: "folder holding the downloaded datasets",
        allowed: "a path",
        set: |c, f, v| {
            c.data_root = PathBuf::from(string(f, v, "a path")?);
            Ok(())
        },
    },
    bool_field!(
        Cdw,
        fused_views,
        "one 2B forward pass instead of two B passes (changes BN statistics)"
    ),
    Field {
        name: "workers",
        group: Group::Cdw,
        kind: Kind::Int,
        about: "data-loading threads",
        allowed: "an integer in [0, 256] (0 = one per core)",
        set: |c, f, v| {
            c.workers = int_in(f, v, 0, 256, "an integer in [0, 256] (0 = one per core)")? as usize;
            Ok(())
        },
    },
    Field {
        name: "prefetch",
        group: Group::Cdw,
        kind: Kind::Int,
        about: "batches prepared ahead of the training step",
        allowed: "an integer in [1, 64]",
        set: |c, f, v| {
            c.prefetch = int_in(f, v, 1, 64, "an integer in [1, 64]")? as usize;
            Ok(())
        },
    },
    int_field!(
        Cdw,
        keep_checkpoint_every,
        0,
        1 << 30,
        "an integer >= 0 (0 = every 100th epoch only)",
        "also keep the checkpoint of every N-th epoch, to resume from later"
    ),
    int_field!(
        Cdw,
        shapes_images,
        8,
        10_000_000,
        "an integer >= 8",
        "images the built-in shapes dataset generates from the seed"
    ),
    int_field!(
        Cdw,
        shapes_resolution,
        16,
        1024,
        "an integer in [16, 1024]",
        "native side of a shapes image in pixels"
    ),
];

/// Sets `key` of `cfg` from `value`, checking its type and range.
/// `section` names where the key was written (`common`, `datasets.cifar10`, `--set`).
pub(super) fn apply(
    cfg: &mut Config,
    key: &str,
    value: &Value,
    section: &str,
) -> Result<(), ConfigError> {
    match FIELDS.iter().find(|f| f.name == key) {
        Some(field) => (field.set)(cfg, key, value),
        None => Err(ConfigError::UnknownKey {
            key: key.to_string(),
            section: section.into(),
            hint: did_you_mean(key, FIELDS.iter().map(|f| f.name)),
        }),
    }
}

fn wrong_type(field: &str, v: &Value, expected: &str) -> ConfigError {
    ConfigError::WrongType {
        field: field.into(),
        expected: expected.into(),
        got: describe(v),
    }
}

fn out_of_range(field: &str, v: &Value, allowed: &str) -> ConfigError {
    ConfigError::OutOfRange {
        field: field.into(),
        got: describe(v),
        allowed: allowed.into(),
    }
}

fn int_in(field: &str, v: &Value, min: i64, max: i64, allowed: &str) -> Result<i64, ConfigError> {
    let Value::Number(n) = v else {
        return Err(wrong_type(field, v, allowed));
    };
    let Some(x) = n.as_i64() else {
        return Err(wrong_type(field, v, allowed));
    };
    if x < min || x > max {
        return Err(out_of_range(field, v, allowed));
    }
    Ok(x)
}

fn float_checked(
    field: &str,
    v: &Value,
    ok: fn(f64) -> bool,
    allowed: &str,
) -> Result<f64, ConfigError> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .ok_or_else(|| wrong_type(field, v, allowed))?;
    if !x.is_finite() || !ok(x) {
        return Err(out_of_range(field, v, allowed));
    }
    Ok(x)
}

fn boolean(field: &str, v: &Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong_type(field, v, "true or false")),
    }
}

fn string(field: &str, v: &Value, allowed: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(wrong_type(field, v, allowed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigFile, DEFAULT_CONFIG_YAML};

    #[test]
    fn fields_follow_the_order_and_groups_of_the_builtin_config_file() {
        let doc: Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap();
        let common: Vec<String> = doc["common"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let in_common: Vec<&str> = FIELDS
            .iter()
            .map(|f| f.name)
            .filter(|n| common.iter().any(|c| c == n))
            .collect();
        assert_eq!(in_common, common, "FIELDS in the file's order");
        // Each group is one contiguous block, in the file's order.
        let mut groups: Vec<Group> = FIELDS.iter().map(|f| f.group).collect();
        groups.dedup();
        assert_eq!(
            groups,
            [
                Group::Optimisation,
                Group::Network,
                Group::Bookkeeping,
                Group::Data,
                Group::Cdw
            ]
        );
    }

    #[test]
    fn every_value_shown_goes_back_through_set_unchanged() {
        for dataset in ["shapes", "cifar10"] {
            let cfg = ConfigFile::builtin().resolve(dataset, &[]).unwrap();
            let all = Field::show_all(&cfg);
            for (f, shown) in FIELDS.iter().zip(all) {
                assert_eq!(f.show(&cfg), shown, "{}", f.name);
                let mut again = cfg.clone();
                again
                    .apply_overrides(&[format!("{}={shown}", f.name)])
                    .unwrap_or_else(|e| panic!("{}={shown}: {e}", f.name));
                assert_eq!(again, cfg, "{}={shown}", f.name);
            }
        }
    }

    #[test]
    fn defaults_are_the_reference_defaults() {
        let get = |n: &str| Field::named(n).unwrap().default_value();
        assert_eq!(get("batch_size"), Value::from(128));
        assert_eq!(get("backbone"), Value::from("ResNet34"));
        assert_eq!(get("evaluation_mode"), Value::from(0.1));
        assert_eq!(get("class_num"), Value::Null);
        assert_eq!(
            Field::named("custom_datasets")
                .unwrap()
                .show(&Config::default()),
            "[cifar10, cifar100, imagenet10, stl10]"
        );
    }

    #[test]
    fn choices_cycle_both_ways_and_booleans_toggle() {
        let backbone = Field::named("backbone").unwrap();
        assert_eq!(
            backbone.next_choice("ResNet34", false).as_deref(),
            Some("ResNet50")
        );
        assert_eq!(
            backbone.next_choice("ResNet50", false).as_deref(),
            Some("ResNet18")
        );
        assert_eq!(
            backbone.next_choice("ResNet18", true).as_deref(),
            Some("ResNet50")
        );
        let device = Field::named("device").unwrap();
        assert_eq!(
            device.next_choice("cuda:3", false).as_deref(),
            Some("auto"),
            "outside: first"
        );
        let blur = Field::named("blur").unwrap();
        assert_eq!(blur.next_choice("false", false).as_deref(), Some("true"));
        assert_eq!(blur.next_choice("true", false).as_deref(), Some("false"));
        assert_eq!(
            Field::named("epochs").unwrap().next_choice("3", false),
            None
        );
        // Every choice is accepted by the field's own validation.
        for f in FIELDS {
            if let Kind::Choice { choices, .. } = f.kind {
                for c in choices {
                    let mut cfg = Config::default();
                    cfg.apply_overrides(&[format!("{}={c}", f.name)])
                        .unwrap_or_else(|e| panic!("{}={c}: {e}", f.name));
                }
            }
        }
    }
}
