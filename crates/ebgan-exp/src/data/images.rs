//! Image datasets on disk (aligned CelebA, image folders) -> a compact uint8 cache, decoded and
//! preprocessed once, in parallel, so later epochs never decode JPEGs again.

use crate::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Centre crop then resize to `size` x `size` RGB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Side of the centre square crop; None = the shorter side.
    pub crop: Option<u32>,
    pub size: u32,
}

impl Preprocess {
    /// LSUN, ImageNet: shorter side to `size`, centre square crop.
    pub fn shorter_side(size: u32) -> Preprocess {
        Preprocess { crop: None, size }
    }
}

/// `size * size * 3` bytes, HWC.
pub fn preprocess(img: &image::DynamicImage, p: Preprocess) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let side = p.crop.unwrap_or(w.min(h)).min(w).min(h);
    let cropped = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    cropped
        .resize_exact(p.size, p.size, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
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

/// A preprocessed dataset: `images` x `size` x `size` x 3 bytes, HWC.
pub struct ImageCache {
    pub images: usize,
    pub size: u32,
    pub data: Vec<u8>,
}

pub struct CacheReport {
    pub images: usize,
    /// Records that could not be decoded (skipped, not fatal).
    pub skipped: usize,
    pub bytes: u64,
    /// Decode + preprocess throughput of this build.
    pub images_per_s: f64,
}

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

const MAGIC: &[u8; 8] = b"EBGANIMG";
const VERSION: u32 = 1;
/// Records decoded per parallel batch: bounds the encoded bytes held at once.
const CHUNK: usize = 4096;

fn decode(bytes: &[u8], p: Preprocess) -> Option<Vec<u8>> {
    image::load_from_memory(bytes)
        .ok()
        .map(|img| preprocess(&img, p))
}

/// Decodes and preprocesses every record of `source` in parallel and writes the cache
/// atomically. Undecodable records are counted and skipped.
pub fn build_cache(source: &Source, p: Preprocess, out: &Path) -> Result<CacheReport> {
    let start = std::time::Instant::now();
    let per_image = (p.size * p.size * 3) as usize;
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[0u8; 16]); // header, filled in below
    let (mut images, mut skipped) = (0usize, 0usize);
    let mut take = |decoded: Vec<Option<Vec<u8>>>| {
        for d in decoded {
            match d {
                Some(px) => {
                    debug_assert_eq!(px.len(), per_image);
                    bytes.extend_from_slice(&px);
                    images += 1;
                }
                None => skipped += 1,
            }
        }
    };
    match source {
        Source::Files(files) => {
            for chunk in files.chunks(CHUNK) {
                take(
                    chunk
                        .par_iter()
                        .map(|f| std::fs::read(f).ok().and_then(|b| decode(&b, p)))
                        .collect(),
                );
            }
        }
        Source::Lmdb(dir) => super::lsun::for_each_chunk(dir, CHUNK, |values| {
            take(values.par_iter().map(|v| decode(v, p)).collect())
        })?,
    }
    for (i, v) in [VERSION, images as u32, p.size, 3].into_iter().enumerate() {
        bytes[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    write_atomic(out, &bytes)?;
    Ok(CacheReport {
        images,
        skipped,
        bytes: bytes.len() as u64,
        images_per_s: (images + skipped) as f64 / start.elapsed().as_secs_f64().max(1e-9),
    })
}

pub fn load_cache(path: &Path) -> Result<ImageCache> {
    let mut bytes = std::fs::read(path)
        .with_context(|| format!("cannot read image cache {}", path.display()))?;
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        bail!(
            "{}: not an ebgan image cache (no EBGANIMG header)",
            path.display()
        );
    }
    let field = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    let (version, n, size, channels) = (field(0), field(1) as usize, field(2), field(3));
    if version != VERSION || channels != 3 {
        bail!("{}: cache version {version} with {channels} channels, expected version {VERSION} with 3: delete it to rebuild", path.display());
    }
    let want = n * (size * size * 3) as usize;
    if bytes.len() - 24 != want {
        bail!("{}: truncated or corrupt: the header promises {n} images of {size}x{size}x3 ({want} bytes), the file holds {}; delete it to rebuild", path.display(), bytes.len() - 24);
    }
    bytes.drain(..24);
    Ok(ImageCache {
        images: n,
        size,
        data: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 178x218 JPEG whose centre 108x108 square is `inner` and the rest `outer`.
    fn face(path: &Path, inner: [u8; 3], outer: [u8; 3]) {
        let img = image::RgbImage::from_fn(178, 218, |x, y| {
            let inside = (35..143).contains(&x) && (55..163).contains(&y);
            image::Rgb(if inside { inner } else { outer })
        });
        img.save(path).unwrap();
    }

    #[test]
    fn celeba_folder_to_cache_with_partition_crop_resize_and_a_corrupt_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("img_align_celeba");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 1..=4 {
            face(
                &dir.join(format!("00000{i}.jpg")),
                [200, 30, 30],
                [0, 0, 255],
            );
        }
        std::fs::write(dir.join("000005.jpg"), b"not a jpeg").unwrap();
        std::fs::write(
            root.path().join("list_eval_partition.txt"),
            "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 0\n",
        )
        .unwrap();
        let files = celeba_train_files(root.path()).unwrap();
        assert_eq!(files.len(), 4);
        let cache = root.path().join("celeba-64.cache");
        let r = build_cache(&Source::Files(files), Preprocess { crop: Some(108), size: 64 }, &cache).unwrap();
        assert_eq!((r.images, r.skipped), (3, 1));
        assert_eq!(r.bytes, 24 + 3 * 64 * 64 * 3);
        let c = load_cache(&cache).unwrap();
        assert_eq!((c.images, c.size), (3, 64));
        // The 108x108 crop keeps only the inner colour: every pixel near (200, 30, 30) after JPEG.
        let px = &c.data[..64 * 64 * 3];
        assert!(
            px.chunks(3).all(|p| p[0] > 170 && p[2] < 70),
            "the crop let the blue border in"
        );
    }

    #[test]
    fn missing_celeba_says_where_it_looked_and_what_it_expects() {
        let root = tempfile::tempdir().unwrap();
        let err = celeba_train_files(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("img_align_celeba")
                && err.contains(&root.path().display().to_string())
                && err.contains("178x218"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_cache_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        image::RgbImage::from_pixel(100, 80, image::Rgb([1, 2, 3]))
            .save(&img)
            .unwrap();
        let cache = dir.path().join("x.cache");
        build_cache(
            &Source::Files(vec![img]),
            Preprocess {
                crop: None,
                size: 32,
            },
            &cache,
        )
        .unwrap();
        let bytes = std::fs::read(&cache).unwrap();
        std::fs::write(&cache, &bytes[..bytes.len() - 10]).unwrap();
        let err = load_cache(&cache).err().unwrap().to_string();
        assert!(
            err.contains("truncated") && err.contains("x.cache"),
            "{err}"
        );
    }
}
