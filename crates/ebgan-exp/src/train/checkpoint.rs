//! Checkpoints: one safetensors file of named tensors (weights, batch-norm statistics, optimizer
//! moments) with JSON metadata (format, run id, config, step, loss log), written atomically.
//! A truncated or foreign file is an error, never a silent fresh start, and so is one whose
//! contents changed since they were written: the metadata carries a SHA-256 of every tensor and
//! every other metadata entry, checked on load.

use crate::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const FORMAT: &str = "ebgan-checkpoint/2";
/// Checkpoints from before the checksum: read without one.
const FORMAT_UNCHECKED: &str = "ebgan-checkpoint/1";

/// SHA-256 over the tensors (name, dtype, shape, bytes, in name order) and the metadata (key and
/// value, in key order, the digest's own entry left out).
fn digest<'a>(
    tensors: impl Iterator<Item = (&'a str, String, &'a [usize], &'a [u8])>,
    metadata: &HashMap<String, String>,
) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, bytes) in tensors {
        h.update(format!("{name}\0{dtype}\0{shape:?}\0{}\0", bytes.len()));
        h.update(bytes);
    }
    let mut keys: Vec<&String> = metadata.keys().filter(|k| *k != "sha256").collect();
    keys.sort();
    for k in keys {
        h.update(format!("{k}\0{}\0", metadata[k]));
    }
    format!("{:x}", h.finalize())
}

struct Blob {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Blob {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn blob(t: &Tensor) -> Result<Blob> {
    let dtype = match t.kind() {
        Kind::Float => Dtype::F32,
        Kind::Int64 => Dtype::I64,
        k => bail!("checkpoint: unsupported tensor kind {k:?}"),
    };
    let t = t.to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut bytes, numel);
    Ok(Blob {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        bytes,
    })
}

/// Writes `tensors` and `metadata` to `path` atomically.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let blobs: Vec<(String, Blob)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), blob(t)?)))
        .collect::<Result<_>>()?;
    let mut meta = metadata;
    meta.insert("format".into(), FORMAT.into());
    let sha = digest(
        blobs.iter().map(|(n, b)| {
            (
                n.as_str(),
                format!("{:?}", b.dtype),
                b.shape.as_slice(),
                b.bytes.as_slice(),
            )
        }),
        &meta,
    );
    meta.insert("sha256".into(), sha);
    let bytes =
        safetensors::tensor::serialize(blobs.iter().map(|(n, b)| (n.as_str(), b)), &Some(meta))
            .with_context(|| format!("cannot serialise checkpoint {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// A checkpoint read back: tensors by name (on the CPU) and metadata.
pub struct Loaded {
    pub path: std::path::PathBuf,
    pub tensors: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let bad = |why: String| {
        anyhow::anyhow!(
            "checkpoint {} is truncated or corrupt ({why}); delete it to start this run over",
            path.display()
        )
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("{e:?}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let format = metadata.get("format").map(String::as_str);
    if format != Some(FORMAT) && format != Some(FORMAT_UNCHECKED) {
        bail!(
            "{}: not an ebgan checkpoint (format {:?}, expected {FORMAT:?})",
            path.display(),
            metadata.get("format")
        );
    }
    if format == Some(FORMAT) {
        let mut views = vec![];
        for name in st.names() {
            let v = st.tensor(name).map_err(|e| bad(format!("{e:?}")))?;
            views.push((
                name.as_str(),
                format!("{:?}", v.dtype()),
                v.shape().to_vec(),
                v.data(),
            ));
        }
        let got = digest(
            views
                .iter()
                .map(|(n, d, s, b)| (*n, d.clone(), s.as_slice(), *b)),
            &metadata,
        );
        if metadata.get("sha256") != Some(&got) {
            bail!(
                "checkpoint {} fails its SHA-256 check: its contents changed after it was \
                 written (a damaged disk or copy); nothing was resumed from it. Restore it, or \
                 move it away to start this run over",
                path.display()
            );
        }
    }
    let mut tensors = HashMap::new();
    for name in st.names() {
        let v = st.tensor(name).map_err(|e| bad(format!("{e:?}")))?;
        let kind = match v.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::I64 => Kind::Int64,
            d => return Err(bad(format!("tensor {name} has dtype {d:?}"))),
        };
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        tensors.insert(name.clone(), Tensor::from_data_size(v.data(), &shape, kind));
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        tensors,
        metadata,
    })
}

impl Loaded {
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).with_context(|| {
            format!(
                "checkpoint {}: no `{key}` in its metadata",
                self.path.display()
            )
        })
    }

    /// A metadata entry that older checkpoints may lack.
    pub fn meta_opt(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Copies `prefix/<name>` into each of `vars` (name -> tensor); shapes must agree.
    pub fn restore(&self, prefix: &str, vars: &HashMap<String, Tensor>) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, var) in vars {
            let key = format!("{prefix}/{name}");
            let src = self.tensors.get(&key).with_context(|| {
                format!(
                    "checkpoint {} has no tensor {key}: it was written for a different model",
                    self.path.display()
                )
            })?;
            if src.size() != var.size() {
                bail!(
                    "checkpoint {}: tensor {key} has shape {:?}, the model expects {:?}",
                    self.path.display(),
                    src.size(),
                    var.size()
                );
            }
            var.shallow_clone().copy_(src);
        }
        Ok(())
    }

    /// Tensors under `prefix/`, with the prefix stripped.
    pub fn group(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let p = format!("{prefix}/");
        self.tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(&p)
                    .map(|s| (s.to_string(), t.shallow_clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let w = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0]).view([2, 2]);
        let step = Tensor::from_slice(&[7i64]);
        let meta = HashMap::from([("step".to_string(), "7".to_string())]);
        save(
            &path,
            &[("g/w".into(), w.shallow_clone()), ("opt/step".into(), step)],
            meta,
        )
        .unwrap();
        let l = load(&path).unwrap();
        assert_eq!(l.meta("step").unwrap(), "7");
        let target = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
        l.restore(
            "g",
            &HashMap::from([("w".to_string(), target.shallow_clone())]),
        )
        .unwrap();
        assert_eq!(
            Vec::<f32>::try_from(target.view([-1])).unwrap(),
            [1.5, -2.0, 3.25, 0.0]
        );
        assert_eq!(l.group("opt")[0].1.int64_value(&[0]), 7);
        // A model of another shape is refused by name.
        let other = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let err = l
            .restore("g", &HashMap::from([("w".to_string(), other)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("g/w") && err.contains("[2, 2]"), "{err}");

        let bytes = std::fs::read(&path).unwrap();
        // One flipped bit anywhere in the tensor data, or in a metadata value: refused by name.
        for at in [bytes.len() - 5, bytes.len() - 20] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            std::fs::write(&path, &flipped).unwrap();
            let err = load(&path).err().unwrap().to_string();
            assert!(
                err.contains("SHA-256") && err.contains("c.safetensors"),
                "{err}"
            );
        }
        let needle = b"\"step\":\"7\"";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut edited = bytes.clone();
        edited[at + needle.len() - 2] = b'8';
        std::fs::write(&path, &edited).unwrap();
        assert!(load(&path).err().unwrap().to_string().contains("SHA-256"));
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = load(&path).err().unwrap().to_string();
        assert!(
            err.contains("truncated") && err.contains("c.safetensors"),
            "{err}"
        );
    }
}
