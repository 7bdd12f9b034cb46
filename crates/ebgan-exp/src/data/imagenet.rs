//! ImageNet-style class folders: `<root>/train/<wnid>/*.JPEG` (ILSVRC's train layout) or
//! `<root>/<wnid>/*`, optionally restricted to the WordNet ids listed in a file.

use super::source::list_images;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One WordNet id per line (`n` and 8 digits; text after it on the line and `#` comments are
/// ignored).
pub fn read_wnids(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the WordNet id list {}", path.display()))?;
    let mut ids = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(id) = line.split_whitespace().next() else {
            continue;
        };
        let ok =
            id.len() == 9 && id.starts_with('n') && id[1..].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            bail!(
                "{}: line {}: expected a WordNet id such as n02085620, got {id:?}",
                path.display(),
                i + 1
            );
        }
        ids.push(id.to_string());
    }
    if ids.is_empty() {
        bail!("{}: no WordNet ids", path.display());
    }
    Ok(ids)
}

/// Training images of the class folders (all, or those of `wnids`), sorted by path.
pub fn train_files(root: &Path, wnids: Option<&[String]>) -> Result<Vec<PathBuf>> {
    let base = if root.join("train").is_dir() {
        root.join("train")
    } else {
        root.to_path_buf()
    };
    let shape = "class folders <root>/train/<wnid>/*.JPEG (ILSVRC train layout) or <root>/<wnid>/*";
    if !base.is_dir() {
        bail!("no ImageNet data at {}: expected {shape}", root.display());
    }
    let classes: Vec<PathBuf> = match wnids {
        Some(ids) => ids
            .iter()
            .map(|id| {
                let d = base.join(id);
                if d.is_dir() {
                    Ok(d)
                } else {
                    bail!(
                        "{}: no folder for WordNet id {id} (expected {})",
                        root.display(),
                        d.display()
                    )
                }
            })
            .collect::<Result<_>>()?,
        None => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&base)
                .with_context(|| format!("cannot read {}", base.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            v.sort();
            v
        }
    };
    let mut files = vec![];
    for c in &classes {
        files.extend(list_images(c)?);
    }
    if files.is_empty() {
        bail!("no images found under {}: expected {shape}", base.display());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cache::{build_cache, load_cache, Preprocess};
    use crate::data::source::Source;

    #[test]
    fn class_tree_with_a_wnid_subset_to_a_cache() {
        let root = tempfile::tempdir().unwrap();
        for (wnid, n, shade) in [
            ("n02085620", 2, 40u8),
            ("n02085782", 1, 120),
            ("n01440764", 3, 250),
        ] {
            let d = root.path().join("train").join(wnid);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                image::RgbImage::from_pixel(300, 200, image::Rgb([shade, shade, shade]))
                    .save(d.join(format!("{wnid}_{i}.JPEG")))
                    .unwrap();
            }
        }
        std::fs::write(
            root.path().join("train/n01440764/README.txt"),
            "not an image",
        )
        .unwrap();
        assert_eq!(train_files(root.path(), None).unwrap().len(), 6);
        let list = root.path().join("dogs.txt");
        std::fs::write(&list, "# dogs\nn02085620 Chihuahua\n\nn02085782\n").unwrap();
        let ids = read_wnids(&list).unwrap();
        assert_eq!(ids, ["n02085620", "n02085782"]);
        let files = train_files(root.path(), Some(&ids)).unwrap();
        assert_eq!(files.len(), 3);
        let out = root.path().join("c.cache");
        let r = build_cache(&Source::Files(files), Preprocess::shorter_side(32), &out).unwrap();
        assert_eq!((r.images, r.skipped), (3, 0));
        let c = load_cache(&out).unwrap();
        assert_eq!(c.size, 32);
        // Sorted by class then file: two images of shade 40, then one of 120.
        let means: Vec<f64> = c
            .data
            .chunks(32 * 32 * 3)
            .map(|im| im.iter().map(|&b| b as f64).sum::<f64>() / im.len() as f64)
            .collect();
        assert!(
            (means[0] - 40.0).abs() < 3.0 && (means[2] - 120.0).abs() < 3.0,
            "{means:?}"
        );
    }

    #[test]
    fn bad_wnid_lists_and_missing_classes_are_named() {
        let root = tempfile::tempdir().unwrap();
        let list = root.path().join("ids.txt");
        std::fs::write(&list, "n02085620\ndog\n").unwrap();
        let err = read_wnids(&list).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("\"dog\""), "{err}");
        std::fs::create_dir_all(root.path().join("train/n02085620")).unwrap();
        let err = train_files(root.path(), Some(&["n09999999".into()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("n09999999"), "{err}");
    }
}
