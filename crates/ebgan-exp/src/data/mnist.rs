//! MNIST: the four IDX files, imported from a folder (.gz or raw) or downloaded from the public
//! mirrors, stored decompressed under `<data>/mnist/`, and verified by MD5 on every load.

use crate::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};

/// (file name, MD5 of the decompressed file): the well-known checksums of the original files.
pub const FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    (
        "train-labels-idx1-ubyte",
        "a25bea736e30d166cdddb491f175f624",
    ),
    ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
];

/// Public mirrors, tried in order (each serves `<name>.gz`).
pub const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

pub const PIXELS: usize = 28 * 28;

/// The dataset in memory: images as rows of 784 bytes.
#[derive(Default)]
pub struct Mnist {
    pub train_images: Vec<u8>,
    pub train_labels: Vec<u8>,
    pub test_images: Vec<u8>,
    pub test_labels: Vec<u8>,
}

impl Mnist {
    pub fn train_len(&self) -> usize {
        self.train_labels.len()
    }
    pub fn test_len(&self) -> usize {
        self.test_labels.len()
    }
}

pub fn dir(data: &Path) -> PathBuf {
    data.join("mnist")
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<()> {
    let got = md5_hex(bytes);
    if got != expected {
        bail!(
            "{}: MD5 of the decompressed content is {got}, expected {expected}: the file is corrupt or not \
             the original MNIST file (re-import with `ebgan mnist --from DIR` or download with `ebgan mnist`)",
            path.display()
        );
    }
    Ok(())
}

fn decompress_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a valid gzip file", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// True when all four files are present and verified.
pub fn is_ready(data: &Path) -> bool {
    FILES.iter().all(|(name, md5)| {
        std::fs::read(dir(data).join(name))
            .map(|b| md5_hex(&b) == *md5)
            .unwrap_or(false)
    })
}

/// Copies the four files from `from` (each as `<name>.gz` or `<name>`) into `<data>/mnist`,
/// verifying each before it replaces anything.
pub fn import(from: &Path, data: &Path) -> Result<()> {
    for (name, md5) in FILES {
        let candidates = [from.join(format!("{name}.gz")), from.join(name)];
        let src = candidates.iter().find(|p| p.is_file()).with_context(|| {
            format!("{}: missing MNIST file {name}.gz (or {name}): expected the four standard IDX files there", from.display())
        })?;
        let raw = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
        let bytes = decompress_if_gz(src, raw)?;
        verify(src, &bytes, md5)?;
        write_atomic(&dir(data).join(name), &bytes)?;
    }
    Ok(())
}

/// Downloads the four files with curl from the first mirror that answers.
pub fn download(data: &Path) -> Result<()> {
    for (name, md5) in FILES {
        let target = dir(data).join(name);
        if std::fs::read(&target)
            .map(|b| md5_hex(&b) == md5)
            .unwrap_or(false)
        {
            continue;
        }
        let mut errors = vec![];
        let mut done = false;
        for mirror in MIRRORS {
            let url = format!("{mirror}{name}.gz");
            eprintln!("downloading {url}");
            match std::process::Command::new("curl")
                .args(["-fsSL", "--retry", "2", &url])
                .output()
            {
                Ok(out) if out.status.success() => {
                    let bytes = decompress_if_gz(Path::new(&url), out.stdout)?;
                    match verify(Path::new(&url), &bytes, md5) {
                        Ok(()) => {
                            write_atomic(&target, &bytes)?;
                            done = true;
                            break;
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                Ok(out) => errors.push(format!(
                    "{url}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => errors.push(format!("cannot run curl: {e}")),
            }
        }
        if !done {
            bail!("could not download {name}: {}\noffline? import a local copy with `ebgan mnist --from DIR`", errors.join("; "));
        }
    }
    Ok(())
}

/// Parses an IDX file of unsigned bytes, returning (dims, data).
pub fn parse_idx(path: &Path, bytes: &[u8], expected_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad =
        |what: String| anyhow::anyhow!("{}: not an IDX file of bytes: {what}", path.display());
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("the magic number must be 0x0000 0x08 <dims>".into()));
    }
    let n_dims = bytes[3] as usize;
    if n_dims != expected_dims {
        return Err(bad(format!(
            "{n_dims} dimensions, expected {expected_dims}"
        )));
    }
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let dims: Vec<usize> = (0..n_dims)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let len: usize = dims.iter().product();
    if bytes.len() != header + len {
        return Err(bad(format!(
            "dims {dims:?} need {} data bytes, the file has {}",
            len,
            bytes.len() - header
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Loads and verifies the four files from `<data>/mnist`.
pub fn load(data: &Path) -> Result<Mnist> {
    let read = |i: usize, dims: usize| -> Result<(Vec<usize>, Vec<u8>)> {
        let (name, md5) = FILES[i];
        let path = dir(data).join(name);
        let bytes = std::fs::read(&path).with_context(|| {
            format!("{}: MNIST file missing: run `ebgan mnist` (download) or `ebgan mnist --from DIR` (import)", path.display())
        })?;
        verify(&path, &bytes, md5)?;
        parse_idx(&path, &bytes, dims)
    };
    let (train_dims, train_images) = read(0, 3)?;
    let (_, train_labels) = read(1, 1)?;
    let (test_dims, test_images) = read(2, 3)?;
    let (_, test_labels) = read(3, 1)?;
    debug_assert_eq!(train_dims[1] * train_dims[2], PIXELS);
    debug_assert_eq!(test_dims[1] * test_dims[2], PIXELS);
    Ok(Mnist {
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

/// `ebgan mnist`: download MNIST from the public mirrors, or import a local folder.
#[derive(clap::Args)]
pub struct MnistArgs {
    /// Folder holding the four IDX files (.gz or raw).
    #[arg(long)]
    from: Option<PathBuf>,
}

impl MnistArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        match &self.from {
            Some(from) => import(from, data)?,
            None if is_ready(data) => {}
            None => download(data)?,
        }
        eprintln!("MNIST verified in {}", dir(data).display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_a_hand_made_idx_file() {
        let bytes = idx(&[2, 1, 3], &[1, 2, 3, 4, 5, 6]);
        let (dims, data) = parse_idx(Path::new("x"), &bytes, 3).unwrap();
        assert_eq!(dims, [2, 1, 3]);
        assert_eq!(data, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_idx_files_by_name() {
        let short = idx(&[2, 3], &[1, 2, 3]);
        let err = parse_idx(Path::new("labels.idx"), &short, 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("labels.idx") && err.contains("need 6 data bytes"),
            "{err}"
        );
        let err = parse_idx(Path::new("f"), b"PK\x03\x04", 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn import_rejects_a_file_with_the_wrong_checksum() {
        let from = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        for (name, _) in FILES {
            std::fs::write(from.path().join(name), idx(&[1], &[7])).unwrap();
        }
        let err = import(from.path(), data.path()).unwrap_err().to_string();
        assert!(
            err.contains("train-images-idx3-ubyte") && err.contains("MD5"),
            "{err}"
        );
        assert!(!dir(data.path()).join("train-images-idx3-ubyte").exists());
    }

    #[test]
    fn import_names_a_missing_file() {
        let from = tempfile::tempdir().unwrap();
        let err = import(from.path(), from.path()).unwrap_err().to_string();
        assert!(
            err.contains("missing MNIST file train-images-idx3-ubyte.gz"),
            "{err}"
        );
    }
}
