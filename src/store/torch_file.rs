//! Reads files written by `torch.save` (the zip format of PyTorch >= 1.6) without Python: the
//! archive's `data.pkl` through [`crate::pickle`], and each tensor's storage from `data/<key>`.
//!
//! tch's own loaders cannot read these files (`Tensor::loadz_multi` expects a TorchScript archive),
//! hence this reader.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::pickle::{self, Value};

/// Why a `torch.save` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TorchFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: expected a PyTorch checkpoint written by torch.save (a zip archive holding data.pkl); {what}")]
    NotTorch { path: PathBuf, what: String },
    #[error("{path}: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// A tensor storage of the archive: its element kind and raw little-endian bytes.
#[derive(Debug)]
struct Storage {
    kind: Kind,
    bytes: Vec<u8>,
}

/// An opened `torch.save` archive: the unpickled object tree, and the storages its tensors use.
#[derive(Debug)]
pub struct TorchFile {
    pub path: PathBuf,
    pub root: Value,
    storages: HashMap<String, Storage>,
}

/// Element kind of a legacy storage class name (`torch.FloatStorage`, ...).
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

impl TorchFile {
    /// Opens and unpickles `path`, reading every storage its object tree refers to.
    pub fn open(path: &Path) -> Result<TorchFile, TorchFileError> {
        let p = path.to_path_buf();
        let not_torch = |what: String| TorchFileError::NotTorch {
            path: p.clone(),
            what,
        };
        let corrupt = |what: String| TorchFileError::Corrupt {
            path: p.clone(),
            what,
        };
        let file = File::open(path).map_err(|source| TorchFileError::Io {
            path: p.clone(),
            source,
        })?;
        let mut magic = [0u8; 4];
        let n = BufReader::new(&file).read(&mut magic).unwrap_or(0);
        if n < 4 || &magic != b"PK\x03\x04" {
            return Err(not_torch(
                if magic[..n.min(2)] == [0x80, 0x02][..n.min(2)] && n >= 2 {
                    "this is a bare pickle (the legacy format of PyTorch < 1.6); re-save it with a current torch.save".into()
                } else {
                    "the file does not start with a zip header".into()
                },
            ));
        }
        let file = File::open(path).map_err(|source| TorchFileError::Io {
            path: p.clone(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            not_torch(format!(
                "the zip archive is unreadable ({e}): truncated or corrupt"
            ))
        })?;
        let pkl_name = zip
            .file_names()
            .filter_map(Result::ok)
            .find(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
            .map(|n| n.into_owned())
            .ok_or_else(|| not_torch("the zip archive has no data.pkl".into()))?;
        let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
        let read_entry = |zip: &mut zip::ZipArchive<BufReader<File>>, name: &str| {
            let mut entry = zip
                .by_name(name)
                .map_err(|e| corrupt(format!("archive entry {name}: {e}")))?;
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut buf).map_err(|e| {
                corrupt(format!(
                    "archive entry {name} is unreadable ({e}): truncated or corrupt"
                ))
            })?;
            Ok::<_, TorchFileError>(buf)
        };
        if let Ok(order) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
            if order.trim_ascii() != b"little" {
                return Err(corrupt(format!(
                    "tensors are stored {} endian; only little endian is supported",
                    String::from_utf8_lossy(&order)
                )));
            }
        }
        let pkl = read_entry(&mut zip, &pkl_name)?;
        let root = pickle::from_slice(&pkl).map_err(|e| corrupt(format!("{pkl_name}: {e}")))?;
        let mut storages = HashMap::new();
        let mut refs = Vec::new();
        collect_storages(&root, &mut refs);
        for (key, kind, numel) in refs {
            if storages.contains_key(&key) {
                continue;
            }
            let name = format!("{prefix}data/{key}");
            let bytes = read_entry(&mut zip, &name)?;
            let need = numel * kind.elt_size_in_bytes();
            if bytes.len() < need {
                return Err(corrupt(format!(
                    "storage {name} has {} bytes, expected {need} ({numel} elements of {kind:?})",
                    bytes.len()
                )));
            }
            storages.insert(key, Storage { kind, bytes });
        }
        Ok(TorchFile {
            path: p,
            root,
            storages,
        })
    }

    /// The tensor `v` stands for, when it is one (`_rebuild_tensor_v2`, possibly wrapped in
    /// `_rebuild_parameter`); `Ok(None)` for any other value.
    pub fn tensor(&self, v: &Value) -> Result<Option<Tensor>, TorchFileError> {
        let Value::Reduce { callable, args } = v else {
            return Ok(None);
        };
        let Some(args) = args.as_seq() else {
            return Ok(None);
        };
        match callable.as_global() {
            Some(("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")) => {
                match args.first() {
                    Some(inner) => self.tensor(inner),
                    None => Ok(None),
                }
            }
            Some(("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor")) => {
                self.rebuild(args).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, meta])`.
    fn rebuild(&self, args: &[Value]) -> Result<Tensor, TorchFileError> {
        let bad = |what: &str| TorchFileError::Corrupt {
            path: self.path.clone(),
            what: format!("tensor record: {what}"),
        };
        let (key, _, _) = args
            .first()
            .and_then(storage_ref)
            .ok_or_else(|| bad("first argument is not a storage"))?;
        let offset = args
            .get(1)
            .and_then(Value::as_int)
            .ok_or_else(|| bad("no storage offset"))?;
        let ints = |v: Option<&Value>| -> Option<Vec<i64>> {
            v?.as_seq()?.iter().map(Value::as_int).collect()
        };
        let size = ints(args.get(2)).ok_or_else(|| bad("no size"))?;
        let stride = ints(args.get(3)).ok_or_else(|| bad("no stride"))?;
        if size.len() != stride.len() || size.iter().chain(&stride).any(|&x| x < 0) || offset < 0 {
            return Err(bad("size, stride or offset out of range"));
        }
        let storage = self
            .storages
            .get(&key)
            .ok_or_else(|| bad(&format!("storage {key} is missing")))?;
        let elems = (storage.bytes.len() / storage.kind.elt_size_in_bytes()) as i64;
        // The last element the view touches must lie inside the storage.
        let last = offset
            + size
                .iter()
                .zip(&stride)
                .map(|(&n, &s)| if n == 0 { 0 } else { (n - 1) * s })
                .sum::<i64>();
        if size.iter().all(|&n| n > 0) && last >= elems {
            return Err(bad(&format!(
                "view (offset {offset}, size {size:?}, stride {stride:?}) runs past its storage of {elems} elements"
            )));
        }
        let flat = Tensor::from_data_size(
            &storage.bytes[..elems as usize * storage.kind.elt_size_in_bytes()],
            &[elems],
            storage.kind,
        );
        if size.contains(&0) {
            return Ok(Tensor::zeros(&size, (storage.kind, tch::Device::Cpu)));
        }
        Ok(flat.as_strided(&size, &stride, offset).contiguous())
    }

    /// Every tensor of a dict (`state_dict`), in file order, as `(name, tensor)`; `Ok(None)` when
    /// `v` is not a dict whose values are all tensors.
    pub fn state_dict(&self, v: &Value) -> Result<Option<Vec<(String, Tensor)>>, TorchFileError> {
        let Some(items) = v.dict_items() else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for (k, t) in items {
            let (Some(name), Some(t)) = (k.as_str(), self.tensor(t)?) else {
                return Ok(None);
            };
            out.push((name.to_string(), t));
        }
        Ok(Some(out))
    }
}

/// `('storage', storage_type, key, location, numel)` -> (key, kind, numel).
fn storage_ref(v: &Value) -> Option<(String, Kind, usize)> {
    let Value::PersistentId(pid) = v else {
        return None;
    };
    let t = pid.as_seq()?;
    if t.first()?.as_str()? != "storage" {
        return None;
    }
    let (_, cls) = t.get(1)?.as_global()?;
    let kind = storage_kind(cls)?;
    let key = t.get(2)?.as_text()?.to_string();
    let numel = usize::try_from(t.get(4)?.as_int()?).ok()?;
    Some((key, kind, numel))
}

fn collect_storages(v: &Value, out: &mut Vec<(String, Kind, usize)>) {
    if let Some(r) = storage_ref(v) {
        out.push(r);
        return;
    }
    match v {
        Value::Tuple(x) | Value::List(x) | Value::Set(x) => {
            for i in x {
                collect_storages(i, out);
            }
        }
        Value::Dict(items) => items.iter().for_each(|(k, x)| {
            collect_storages(k, out);
            collect_storages(x, out);
        }),
        Value::Reduce { callable, args } => {
            collect_storages(callable, out);
            collect_storages(args, out);
        }
        Value::Build { obj, state } => {
            collect_storages(obj, out);
            collect_storages(state, out);
        }
        Value::PersistentId(p) => collect_storages(p, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/torch")
            .join(name)
    }

    /// `tiny_state_dict.pth`: see scripts/make_torch_fixtures.py.
    #[test]
    fn reads_a_state_dict_with_views_and_kinds() {
        let f = TorchFile::open(&fixture("tiny_state_dict.pth")).unwrap();
        let sd = f.state_dict(&f.root).unwrap().unwrap();
        let names: Vec<&str> = sd.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "lin.weight",
                "lin.bias",
                "bn.weight",
                "bn.bias",
                "bn.running_mean",
                "bn.running_var",
                "bn.num_batches_tracked",
                "transposed",
                "offset_view",
                "double"
            ]
        );
        let get = |n: &str| &sd.iter().find(|(k, _)| k == n).unwrap().1;
        // lin.weight = arange(6).reshape(2, 3) / 4
        let w: Vec<f32> = Vec::try_from(get("lin.weight").flatten(0, -1)).unwrap();
        assert_eq!(w, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
        assert_eq!(get("lin.weight").size(), [2, 3]);
        assert_eq!(get("bn.num_batches_tracked").kind(), Kind::Int64);
        assert_eq!(get("bn.num_batches_tracked").int64_value(&[]), 7);
        // transposed = lin.weight.t() (a view sharing its storage, non-contiguous)
        assert_eq!(get("transposed").size(), [3, 2]);
        assert_eq!(get("transposed").double_value(&[2, 1]), 1.25);
        assert_eq!(get("transposed").double_value(&[1, 0]), 0.25);
        // offset_view = arange(10.)[3:7]
        let o: Vec<f32> = Vec::try_from(get("offset_view")).unwrap();
        assert_eq!(o, [3.0, 4.0, 5.0, 6.0]);
        assert_eq!(get("double").kind(), Kind::Double);
        assert_eq!(get("double").double_value(&[0]), 0.1);
    }

    #[test]
    fn truncated_and_foreign_files_are_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fixture("tiny_state_dict.pth")).unwrap();
        let cut = tmp.path().join("cut.pth");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = TorchFile::open(&cut).unwrap_err().to_string();
        assert!(
            err.contains("expected a PyTorch checkpoint written by torch.save"),
            "{err}"
        );
        assert!(err.contains("truncated or corrupt"), "{err}");
        let text = tmp.path().join("notes.pth");
        std::fs::write(&text, "hello").unwrap();
        let err = TorchFile::open(&text).unwrap_err().to_string();
        assert!(err.contains("does not start with a zip header"), "{err}");
    }
}
