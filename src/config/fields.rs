//! The table of config fields: each field's name, what it accepts, and how a YAML value becomes
//! a checked value of [`Config`].

use std::path::PathBuf;

use serde_yaml::Value;

use super::{
    describe, did_you_mean, Backbone, Config, ConfigError, DeviceSpec, EvaluationMode, Method,
    BUILTIN_DATASETS,
};

/// One config key and what it accepts.
pub struct Field {
    pub name: &'static str,
    /// What is allowed, as shown in error messages and `cdw config --fields`.
    pub allowed: &'static str,
    set: fn(&mut Config, &str, &Value) -> Result<(), ConfigError>,
}

macro_rules! int_field {
    ($name:ident, $min:expr, $max:expr, $allowed:expr) => {
        Field {
            name: stringify!($name),
            allowed: $allowed,
            set: |c, f, v| {
                c.$name = int_in(f, v, $min, $max, $allowed)?;
                Ok(())
            },
        }
    };
}

macro_rules! float_field {
    ($name:ident, $check:expr, $allowed:expr) => {
        Field {
            name: stringify!($name),
            allowed: $allowed,
            set: |c, f, v| {
                c.$name = float_checked(f, v, $check, $allowed)?;
                Ok(())
            },
        }
    };
}

macro_rules! bool_field {
    ($name:ident) => {
        Field {
            name: stringify!($name),
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

/// Every key a config file (a `common` block, a dataset block, or `--set`) may hold.
pub static FIELDS: &[Field] = &[
    int_field!(batch_size, 2, 1 << 20, "an integer >= 2"),
    int_field!(epochs, 1, 1 << 30, "an integer >= 1"),
    float_field!(learning_rate, |x| x > 0.0, "a number > 0"),
    Field {
        name: "backbone",
        allowed: "ResNet18, ResNet34 or ResNet50",
        set: |c, f, v| {
            let s = string(f, v, "ResNet18, ResNet34 or ResNet50")?;
            c.backbone = Backbone::parse(&s)
                .ok_or_else(|| out_of_range(f, v, "ResNet18, ResNet34 or ResNet50"))?;
            Ok(())
        },
    },
    int_field!(hidden_dim, 1, 1 << 20, "an integer >= 1"),
    int_field!(feature_num, 2, 1 << 20, "an integer >= 2"),
    float_field!(instance_temperature, |x| x > 0.0, "a number > 0"),
    float_field!(feature_temperature, |x| x > 0.0, "a number > 0"),
    float_field!(weight_decay, |x| x >= 0.0, "a number >= 0"),
    bool_field!(use_gradnorm),
    float_field!(max_norm, |x| x > 0.0, "a number > 0"),
    bool_field!(use_scheduler),
    bool_field!(checkpoint),
    bool_field!(reload),
    bool_field!(save_model),
    Field {
        name: "project",
        allowed: "a text",
        set: |c, f, v| {
            c.project = string(f, v, "a text")?;
            Ok(())
        },
    },
    Field {
        name: "seed",
        allowed: "an integer >= 0",
        set: |c, f, v| {
            c.seed = int_in(f, v, 0, i64::MAX, "an integer >= 0")? as u64;
            Ok(())
        },
    },
    float_field!(s, |x| (0.0..=1.25).contains(&x), "a number in [0, 1.25]"),
    bool_field!(blur),
    bool_field!(customize_datasets),
    Field {
        name: "custom_datasets",
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
        allowed: "all, none, or a fraction in (0, 1]",
        set: |c, f, v| {
            const ALLOWED: &str = "all, none, or a fraction in (0, 1]";
            c.evaluation_mode = match v {
                Value::String(s) if s.eq_ignore_ascii_case("all") => EvaluationMode::All,
                Value::String(s) if s.eq_ignore_ascii_case("none") => EvaluationMode::None,
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if x > 0.0 && x <= 1.0 {
                        EvaluationMode::Fraction(x)
                    } else {
                        return Err(out_of_range(f, v, ALLOWED));
                    }
                }
                Value::String(_) => return Err(out_of_range(f, v, ALLOWED)),
                _ => return Err(wrong_type(f, v, ALLOWED)),
            };
            Ok(())
        },
    },
    bool_field!(use_wandb),
    Field {
        name: "class_num",
        allowed: "an integer >= 1",
        set: |c, f, v| {
            c.class_num = Some(int_in(f, v, 1, 1 << 30, "an integer >= 1")?);
            Ok(())
        },
    },
    Field {
        name: "method",
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
    int_field!(image_size, 8, 4096, "an integer in [8, 4096]"),
    Field {
        name: "device",
        allowed: "auto, cpu, cuda or cuda:N",
        set: |c, f, v| {
            let s = string(f, v, "auto, cpu, cuda or cuda:N")?.to_ascii_lowercase();
            c.device = match s.as_str() {
                "auto" => DeviceSpec::Auto,
                "cpu" => DeviceSpec::Cpu,
                "cuda" => DeviceSpec::Cuda(0),
                _ => match s
                    .strip_prefix("cuda:")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(n) => DeviceSpec::Cuda(n),
                    None => return Err(out_of_range(f, v, "auto, cpu, cuda or cuda:N")),
                },
            };
            Ok(())
        },
    },
    Field {
        name: "data_root",
        allowed: "a path",
        set: |c, f, v| {
            c.data_root = PathBuf::from(string(f, v, "a path")?);
            Ok(())
        },
    },
    bool_field!(fused_views),
    Field {
        name: "workers",
        allowed: "an integer in [0, 256] (0 = one per core)",
        set: |c, f, v| {
            c.workers = int_in(f, v, 0, 256, "an integer in [0, 256] (0 = one per core)")? as usize;
            Ok(())
        },
    },
    Field {
        name: "prefetch",
        allowed: "an integer in [1, 64]",
        set: |c, f, v| {
            c.prefetch = int_in(f, v, 1, 64, "an integer in [1, 64]")? as usize;
            Ok(())
        },
    },
    int_field!(shapes_images, 8, 10_000_000, "an integer >= 8"),
    int_field!(shapes_resolution, 16, 1024, "an integer in [16, 1024]"),
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
