//! Where encoded images come from: files (aligned CelebA, image folders, class trees) or an LMDB
//! database, and how image files are found.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where encoded images come from.
pub enum Source {
    Files(Vec<PathBuf>),
    /// An LMDB environment (folder with data.mdb) whose values are encoded images.
    Lmdb(PathBuf),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Files(f) => format!("{} image files", f.len()),
            Source::Lmdb(p) => format!("LMDB {}", p.display()),
        }
    }
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "JPEG", "JPG"];

pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e))
}

/// The image files directly inside `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_image(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Aligned CelebA's training images: `<root>/img_align_celeba/*.jpg`, restricted to partition 0
/// of `<root>/list_eval_partition.txt` when that file is present.
pub fn celeba_train_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("img_align_celeba");
    if !dir.is_dir() {
        bail!(
            "no aligned CelebA at {}: expected {}/ holding the 202,599 JPEGs 000001.jpg ... (178x218), \
             and optionally {} (\"000001.jpg 0\" per line; 0 = train)",
            root.display(),
            dir.display(),
            root.join("list_eval_partition.txt").display()
        );
    }
    let partition = root.join("list_eval_partition.txt");
    if !partition.is_file() {
        return list_images(&dir);
    }
    let text = std::fs::read_to_string(&partition)
        .with_context(|| format!("cannot read {}", partition.display()))?;
    let mut files = vec![];
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(split), None) = (parts.next(), parts.next(), parts.next()) else {
            bail!(
                "{}: line {}: expected \"<file> <partition>\", got {line:?}",
                partition.display(),
                i + 1
            );
        };
        if split == "0" {
            files.push(dir.join(name));
        }
    }
    Ok(files)
}

/// Every image file under `dir`, sorted by path.
pub fn list_images_recursive(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_image(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
