//! Named tensors in safetensors files: the container of checkpoints and saved models. Files are
//! written atomically (temporary file, fsync, rename) and read back with their string metadata.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

use super::{write_atomic, StoreError};

/// The safetensors dtype of a tensor kind this project stores.
fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// The little-endian bytes of a tensor (copied to the CPU, made contiguous).
pub fn tensor_bytes(t: &Tensor) -> (Kind, Vec<usize>, Vec<u8>) {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut buf = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    if numel > 0 {
        t.copy_data_u8(&mut buf, numel);
    }
    let shape = t.size().iter().map(|&d| d as usize).collect();
    (t.kind(), shape, buf)
}

/// Serialises `tensors` with `metadata` into safetensors bytes.
// The safetensors crate takes std's HashMap, so no other hasher could be passed on.
#[allow(clippy::implicit_hasher)]
pub fn to_safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let raw: Vec<(String, Kind, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (k, s, b) = tensor_bytes(t);
            (n.clone(), k, s, b)
        })
        .collect();
    let mut views = Vec::with_capacity(raw.len());
    for (name, kind, shape, bytes) in &raw {
        let dtype = dtype_of(*kind)
            .ok_or_else(|| format!("tensor `{name}` has unsupported kind {kind:?}"))?;
        let view = TensorView::new(dtype, shape.clone(), bytes)
            .map_err(|e| format!("tensor `{name}`: {e:?}"))?;
        views.push((name.as_str(), view));
    }
    safetensors::tensor::serialize(views, &Some(metadata)).map_err(|e| format!("{e:?}"))
}

/// Writes `tensors` and `metadata` to `path` as a safetensors file, atomically.
#[allow(clippy::implicit_hasher)]
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<(), StoreError> {
    let bytes = to_safetensors_bytes(tensors, metadata).map_err(|what| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    })?;
    write_atomic(path, &bytes)
}

/// The tensors (sorted by name) and string metadata of a safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Reads a safetensors file; a truncated or foreign file is a [`StoreError::Corrupt`].
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_safetensors(&bytes).map_err(|what| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    })
}

/// Parses safetensors bytes (see [`read_safetensors`]).
pub fn parse_safetensors(bytes: &[u8]) -> Result<SafetensorsFile, String> {
    let expected = "expected a safetensors file (8-byte header length, JSON header, tensor data)";
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| {
        format!("{expected}; the header is unreadable ({e:?}): truncated or foreign file")
    })?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("{expected}; {e:?}: truncated or corrupt file"))?;
    let mut names: Vec<String> = meta.tensors().into_keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("tensor `{name}`: {e:?}"))?;
        let kind = kind_of(view.dtype())
            .ok_or_else(|| format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::from_data_size(view.data(), &shape, kind)));
    }
    Ok(SafetensorsFile {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
    })
}

/// The largest JSON header accepted (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// The string metadata (`__metadata__`) of a safetensors file, read from its header alone: the
/// 8-byte little-endian header length and the JSON header, never the tensor data.
pub fn read_safetensors_metadata(path: &Path) -> Result<HashMap<String, String>, StoreError> {
    let read = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what: format!(
            "expected a safetensors file (8-byte header length, JSON header, tensor data); {what}"
        ),
    };
    let mut file = fs::File::open(path).map_err(read)?;
    let size = file.metadata().map_err(read)?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| {
        corrupt(format!(
            "the file is {size} bytes, shorter than a header length"
        ))
    })?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER || len > size.saturating_sub(8) {
        return Err(corrupt(format!(
            "the header length {len} does not fit the file's {size} bytes"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(read)?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(format!("the header is not JSON ({e})")))?;
    let Some(fields) = header.as_object() else {
        return Err(corrupt("the header is not a JSON object".into()));
    };
    let Some(meta) = fields.get("__metadata__") else {
        return Ok(HashMap::new());
    };
    let meta = meta
        .as_object()
        .ok_or_else(|| corrupt("`__metadata__` is not a JSON object".into()))?;
    meta.iter()
        .map(|(k, v)| match v.as_str() {
            Some(v) => Ok((k.clone(), v.to_string())),
            None => Err(corrupt(format!("metadata `{k}` is not a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kinds_shapes_and_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.safetensors");
        let a = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0]).reshape([2, 3]);
        let b = Tensor::from(42i64);
        let c = Tensor::from_slice(&[0.125f64]);
        // A non-contiguous view is written in logical order.
        let d = a.transpose(0, 1);
        let tensors = vec![
            ("a".to_string(), a.shallow_clone()),
            ("b".to_string(), b),
            ("c".to_string(), c),
            ("d".to_string(), d.shallow_clone()),
        ];
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        write_safetensors(&p, &tensors, meta).unwrap();
        let back = read_safetensors(&p).unwrap();
        let names: Vec<&str> = back.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert!(back.get("a").unwrap().equal(&a));
        assert_eq!(back.get("b").unwrap().kind(), Kind::Int64);
        assert_eq!(back.get("b").unwrap().size(), Vec::<i64>::new());
        assert_eq!(back.get("b").unwrap().int64_value(&[]), 42);
        assert_eq!(back.get("c").unwrap().double_value(&[0]), 0.125);
        assert!(back.get("d").unwrap().equal(&d));
        assert_eq!(back.metadata["k"], "v");
    }

    #[test]
    fn truncated_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.safetensors");
        let t = vec![(
            "a".to_string(),
            Tensor::ones([64], (Kind::Float, Device::Cpu)),
        )];
        write_safetensors(&p, &t, HashMap::new()).unwrap();
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        let err = read_safetensors(&p).unwrap_err().to_string();
        assert!(err.contains("expected a safetensors file"), "{err}");
        assert!(err.contains("truncated"), "{err}");
        fs::write(&p, b"hello").unwrap();
        let err = read_safetensors(&p).unwrap_err().to_string();
        assert!(err.contains("expected a safetensors file"), "{err}");
    }

    #[test]
    fn metadata_comes_from_the_header_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.safetensors");
        let t = vec![(
            "a".to_string(),
            Tensor::ones([64], (Kind::Float, Device::Cpu)),
        )];
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        write_safetensors(&p, &t, meta.clone()).unwrap();
        let bytes = fs::read(&p).unwrap();
        // Tensor data cut off: the header still reads.
        fs::write(&p, &bytes[..bytes.len() - 200]).unwrap();
        assert_eq!(read_safetensors_metadata(&p).unwrap(), meta);
        let mut torn = bytes.clone();
        torn[8] = b'#';
        fs::write(&p, &torn).unwrap();
        let err = read_safetensors_metadata(&p).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: expected a safetensors file", p.display())),
            "{err}"
        );
        assert!(err.contains("the header is not JSON"), "{err}");
        fs::write(&p, u64::MAX.to_le_bytes()).unwrap();
        let err = read_safetensors_metadata(&p).unwrap_err().to_string();
        assert!(err.contains("does not fit the file's 8 bytes"), "{err}");
    }
}
