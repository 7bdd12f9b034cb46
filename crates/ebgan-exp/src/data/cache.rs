//! Image datasets on disk (a [`Source`]) -> a compact uint8 cache, decoded and preprocessed
//! once, in parallel, so later epochs never decode JPEGs again.

use super::source::Source;
use crate::fsutil::write_atomic_with;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Centre crop then resize to `size` x `size` RGB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Side of the centre square crop; None = the shorter side.
    pub crop: Option<u32>,
    pub size: u32,
}

impl Preprocess {
    /// Aligned CelebA: centre 108x108 crop (DCGAN's), resized to `size`.
    pub fn celeba(size: u32) -> Preprocess {
        Preprocess {
            crop: Some(108),
            size,
        }
    }

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

/// A preprocessed dataset: `images` x `size` x `size` x 3 bytes, HWC.
#[cfg(test)]
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

const MAGIC: &[u8; 8] = b"EBGANIMG";
const VERSION: u32 = 1;
/// Records decoded per parallel batch: bounds the encoded bytes held at once.
const CHUNK: usize = 4096;

/// WebP (LSUN) through libwebp, for speed; anything else, or WebP that libwebp refuses
/// (animated), through `image` as before.
fn decode(bytes: &[u8], p: Preprocess) -> Option<Vec<u8>> {
    super::webp::is_webp(bytes)
        .then(|| super::webp::decode(bytes))
        .flatten()
        .or_else(|| image::load_from_memory(bytes).ok())
        .map(|img| preprocess(&img, p))
}

/// Decodes and preprocesses every record of `source` in parallel and streams the pixels to a
/// temporary file beside `out`, renamed over it once complete (a killed build leaves no cache).
/// Undecodable records are counted and skipped; a source with no decodable image is an error
/// and writes nothing.
pub fn build_cache(source: &Source, p: Preprocess, out: &Path) -> Result<CacheReport> {
    let start = std::time::Instant::now();
    let (mut images, mut skipped) = (0usize, 0usize);
    write_atomic_with(out, |file| {
        let mut w = std::io::BufWriter::new(&mut *file);
        w.write_all(&[0u8; 24])?; // header, written once the count is known
        let mut take = |decoded: Vec<Option<Vec<u8>>>| -> std::io::Result<()> {
            for d in decoded {
                match d {
                    Some(px) => {
                        w.write_all(&px)?;
                        images += 1;
                    }
                    None => skipped += 1,
                }
            }
            Ok(())
        };
        let failed = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", out.display());
        match source {
            Source::Files(files) => {
                for chunk in files.chunks(CHUNK) {
                    take(
                        chunk
                            .par_iter()
                            .map(|f| std::fs::read(f).ok().and_then(|b| decode(&b, p)))
                            .collect(),
                    )
                    .map_err(failed)?;
                }
            }
            Source::Lmdb(dir) => {
                let mut result = Ok(());
                super::lsun::for_each_chunk(dir, CHUNK, |values| {
                    if result.is_ok() {
                        result = take(values.par_iter().map(|v| decode(v, p)).collect());
                    }
                })?;
                result.map_err(failed)?;
            }
        }
        if images == 0 {
            bail!(
                "{}: none of its {skipped} records could be decoded as an image; no cache written",
                source.describe()
            );
        }
        w.flush().map_err(failed)?;
        drop(w);
        let mut header = MAGIC.to_vec();
        for v in [VERSION, images as u32, p.size, 3] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&header).map_err(failed)
    })?;
    let bytes = std::fs::metadata(out)?.len();
    Ok(CacheReport {
        images,
        skipped,
        bytes,
        images_per_s: (images + skipped) as f64 / start.elapsed().as_secs_f64().max(1e-9),
    })
}

/// Images and side promised by a cache's header, checked against the file's length.
pub fn read_header(path: &Path) -> Result<(usize, u32)> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot read image cache {}", path.display()))?;
    let mut h = [0u8; 24];
    let len = f.metadata()?.len();
    if len < 24 || f.read_exact(&mut h).is_err() || &h[..8] != MAGIC {
        bail!(
            "{}: not an ebgan image cache (no EBGANIMG header); delete it to rebuild",
            path.display()
        );
    }
    let field = |i: usize| u32::from_le_bytes(h[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    let (version, n, size, channels) = (field(0), field(1) as u64, field(2), field(3));
    if version != VERSION || channels != 3 {
        bail!("{}: cache version {version} with {channels} channels, expected version {VERSION} with 3: delete it to rebuild", path.display());
    }
    let want = n * (size as u64 * size as u64 * 3);
    if len - 24 != want {
        bail!("{}: truncated or corrupt: the header promises {n} images of {size}x{size}x3 ({want} bytes), the file holds {}; delete it to rebuild", path.display(), len - 24);
    }
    Ok((n as usize, size))
}

/// The whole cache as bytes (tests), through [`load_cache_tensor`].
#[cfg(test)]
pub fn load_cache(path: &Path) -> Result<ImageCache> {
    let t = load_cache_tensor(path)?;
    Ok(ImageCache {
        images: t.size()[0] as usize,
        size: t.size()[1] as u32,
        data: Vec::<u8>::try_from(t.flatten(0, -1))?,
    })
}

/// The cache as a host uint8 tensor `[N, S, S, 3]`, read in chunks straight into it (the
/// dataset is held once, not once per copy).
pub fn load_cache_tensor(path: &Path) -> Result<tch::Tensor> {
    let (n, size) = read_header(path)?;
    let per = (size * size * 3) as usize;
    let s = size as i64;
    let t = tch::Tensor::empty([n as i64, s, s, 3], (tch::Kind::Uint8, tch::Device::Cpu));
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    f.seek(std::io::SeekFrom::Start(24))?;
    let step = (64 << 20) / per.max(1) + 1;
    let mut buf = vec![0u8; step * per];
    let mut i = 0;
    while i < n {
        let m = step.min(n - i);
        f.read_exact(&mut buf[..m * per])
            .with_context(|| format!("cannot read image cache {}", path.display()))?;
        t.narrow(0, i as i64, m as i64)
            .copy_(&tch::Tensor::from_slice(&buf[..m * per]).view([m as i64, s, s, 3]));
        i += m;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::source::celeba_train_files;

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
        let r = build_cache(&Source::Files(files), Preprocess::celeba(64), &cache).unwrap();
        assert_eq!((r.images, r.skipped), (3, 1));
        assert_eq!(r.bytes, 24 + 3 * 64 * 64 * 3);
        #[cfg(unix)]
        {
            // Readable by others, like every result (the temporary file was private).
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
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
    fn a_source_with_no_decodable_image_is_an_error_and_writes_no_cache() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("a.jpg");
        std::fs::write(&bad, b"not a jpeg").unwrap();
        let out = dir.path().join("x.cache");
        let err = build_cache(
            &Source::Files(vec![bad]),
            Preprocess {
                crop: None,
                size: 16,
            },
            &out,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("none of its 1 records"), "{err}");
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file was left behind"
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
