//! The images a convolutional run trains on: resolved from the experiment's dataset, cached
//! once as uint8, held on the device as `[N, C, S, S]` bytes; batches are gathered by index.

use super::images::{build_cache, load_cache, Preprocess, Source};
use super::{imagenet, lsun, mnist};
use crate::config::{Dataset, Experiment};
use anyhow::{Context, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Preprocessed images in host memory (`[N, S, S, C]` bytes), shared by the runner's threads;
/// each run uploads them to its device.
pub struct HostImages {
    pub data: Vec<u8>,
    pub len: usize,
    pub channels: i64,
    pub side: i64,
}

impl HostImages {
    pub fn upload(&self, device: Device) -> ImageSet {
        ImageSet::from_bytes(&self.data, self.len, self.side, self.channels, device)
    }
}

pub struct ImageSet {
    /// `[N, C, S, S]` uint8 on the training device.
    pub images: Tensor,
    pub len: usize,
    pub channels: i64,
    /// Side of the stored images (> the training side when random crops are taken).
    pub side: i64,
}

impl ImageSet {
    pub fn from_bytes(hwc: &[u8], n: usize, side: i64, channels: i64, device: Device) -> Self {
        let images = Tensor::from_slice(&hwc[..n * (side * side * channels) as usize])
            .view([n as i64, side, side, channels])
            .permute([0, 3, 1, 2])
            .contiguous()
            .to_device(device);
        ImageSet {
            images,
            len: n,
            channels,
            side,
        }
    }

    /// Batch `[B, C, out, out]` in [-1, 1] of images `idx`; when `out` < the stored side, each
    /// image is cropped at its own random position drawn from `rng` (else centred).
    pub fn batch(&self, idx: &[i64], out: i64, rng: &mut impl Rng) -> Tensor {
        let device = self.images.device();
        let sel = Tensor::from_slice(idx).to_device(device);
        let mut x = self.images.index_select(0, &sel);
        if out < self.side {
            let b = idx.len() as i64;
            let span = self.side - out + 1;
            let offsets: Vec<i64> = (0..2 * b).map(|_| rng.random_range(0..span)).collect();
            let off = Tensor::from_slice(&offsets).view([b, 2]).to_device(device);
            let ar = Tensor::arange(out, (Kind::Int64, device));
            let rows = off.select(1, 0).view([b, 1, 1]) + ar.view([1, out, 1]);
            let cols = off.select(1, 1).view([b, 1, 1]) + ar.view([1, 1, out]);
            let bi = Tensor::arange(b, (Kind::Int64, device)).view([b, 1, 1]);
            // [B, H, W, C] gathered at (b, rows, cols) -> [B, out, out, C].
            x = x
                .permute([0, 2, 3, 1])
                .index(&[Some(bi), Some(rows), Some(cols)])
                .permute([0, 3, 1, 2]);
        }
        x.to_kind(Kind::Float) * (2.0 / 255.0) - 1.0
    }
}

/// The folder the experiment's dataset is read from: $EBGAN_<DATASET>, else the file's
/// `data_root`, else `<data>/<dataset>`.
pub fn data_root(exp: &Experiment, data: &Path) -> PathBuf {
    exp.dataset
        .env_var()
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .or_else(|| exp.data_root.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| data.join(exp.dataset.to_string()))
}

/// Source and preprocessing of `exp`'s dataset at `side` pixels.
fn source(exp: &Experiment, data: &Path, side: u32) -> Result<(Source, Preprocess)> {
    let root = data_root(exp, data);
    let from = |what: &str| {
        format!(
            "{what} (set {} or data_root in the experiment file)",
            exp.dataset.env_var().unwrap_or("data_root")
        )
    };
    Ok(match exp.dataset {
        Dataset::Celeba => (
            Source::Files(super::images::celeba_train_files(&root).context(from("CelebA"))?),
            Preprocess {
                crop: Some(108),
                size: side,
            },
        ),
        Dataset::Lsun => (
            lsun::source(&root).context(from("LSUN"))?,
            Preprocess::shorter_side(side),
        ),
        Dataset::Imagenet => {
            let wnids = exp
                .wnids
                .as_ref()
                .map(|f| imagenet::read_wnids(Path::new(f)))
                .transpose()?;
            (
                Source::Files(imagenet::train_files(&root, wnids.as_deref()).context(from("ImageNet"))?),
                Preprocess::shorter_side(side),
            )
        }
        Dataset::Mnist | Dataset::Mnist64 => unreachable!("MNIST is not cached as images"),
    })
}

/// Cache file for this dataset, source and preprocessing: a different subset, root or size
/// gets its own file.
fn cache_path(exp: &Experiment, data: &Path, src: &Source, p: Preprocess) -> Result<PathBuf> {
    let mut h = Sha256::new();
    h.update(format!("{}|{:?}|{}", exp.dataset, p.crop, p.size));
    match src {
        Source::Files(files) => {
            for f in files {
                h.update(f.to_string_lossy().as_bytes());
                h.update([0]);
            }
        }
        Source::Lmdb(dir) => {
            h.update(std::fs::canonicalize(dir)?.to_string_lossy().as_bytes());
            h.update(lsun::entries(dir)?.to_le_bytes());
        }
    }
    let hex: String = h.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect();
    Ok(data
        .join("cache")
        .join(format!("{}-{}-{hex}.cache", exp.dataset, p.size)))
}

/// Builds the cache of `exp`'s dataset at `side` pixels unless it exists; returns its path.
pub fn ensure_cache(exp: &Experiment, data: &Path, side: u32) -> Result<PathBuf> {
    let (src, p) = source(exp, data, side)?;
    let path = cache_path(exp, data, &src, p)?;
    if !path.is_file() {
        eprintln!(
            "caching {} ({}) at {side}x{side} into {} ...",
            exp.dataset,
            src.describe(),
            path.display()
        );
        let r = build_cache(&src, p, &path)?;
        anyhow::ensure!(r.images > 0, "{}: no image could be decoded", src.describe());
        eprintln!(
            "cached {} images ({:.1} MiB, {:.0} images/s decoded); {} unreadable record(s) skipped",
            r.images,
            r.bytes as f64 / (1 << 20) as f64,
            r.images_per_s,
            r.skipped
        );
    }
    Ok(path)
}

/// Stored side for a run: 1.5x the image side when it trains on random crops.
pub fn stored_side(image_size: i64, random_crop: bool) -> i64 {
    if random_crop {
        image_size * 3 / 2
    } else {
        image_size
    }
}

/// The training images of `exp` at `side` pixels.
pub fn load(exp: &Experiment, data: &Path, side: i64) -> Result<HostImages> {
    if exp.dataset == Dataset::Mnist64 {
        let m = mnist::load(data)?;
        return Ok(mnist64(&m.train_images, m.train_len()));
    }
    let path = ensure_cache(exp, data, side as u32)?;
    let c = load_cache(&path)?;
    anyhow::ensure!(c.size as i64 == side, "{}: holds {}px images, expected {side}px", path.display(), c.size);
    Ok(HostImages {
        data: c.data,
        len: c.images,
        channels: 3,
        side,
    })
}

/// MNIST's 28x28 digits in the middle of 64x64 black images (18 pixels each side).
pub fn mnist64(images: &[u8], n: usize) -> HostImages {
    let mut data = vec![0u8; n * 64 * 64];
    for (i, digit) in images[..n * mnist::PIXELS].chunks(mnist::PIXELS).enumerate() {
        for (y, row) in digit.chunks(28).enumerate() {
            let o = i * 4096 + (y + 18) * 64 + 18;
            data[o..o + 28].copy_from_slice(row);
        }
    }
    HostImages {
        data,
        len: n,
        channels: 1,
        side: 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batches_are_scaled_to_minus_one_one_and_crops_are_per_image() {
        // Two 4x4 RGB images whose pixel value encodes its position: v = 16 y + x (+100 for
        // image 1), the same in every channel.
        let mut hwc = vec![];
        for i in 0..2u8 {
            for y in 0..4u8 {
                for x in 0..4u8 {
                    hwc.extend([100 * i + 16 * y + x; 3]);
                }
            }
        }
        let set = ImageSet::from_bytes(&hwc, 2, 4, 3, Device::Cpu);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let full = set.batch(&[1, 0], 4, &mut rng);
        assert_eq!(full.size(), [2, 3, 4, 4]);
        // Pixel (y=2, x=3) of image 1: 100 + 35 = 135 -> 135 / 127.5 - 1.
        let v = full.double_value(&[0, 1, 2, 3]);
        assert!((v - (135.0 / 127.5 - 1.0)).abs() < 1e-6, "{v}");
        assert_eq!(full.double_value(&[1, 0, 0, 0]), -1.0);
        // 2x2 crops: each crop's top-left decides the rest (rows +16, columns +1), per image.
        let mut tops = std::collections::HashSet::new();
        for _ in 0..20 {
            let c = (set.batch(&[0, 1], 2, &mut rng) + 1.0) * 127.5;
            for b in 0..2 {
                let at = |y: i64, x: i64| c.double_value(&[b, 2, y, x]).round() as i64;
                assert_eq!((at(0, 1) - at(0, 0), at(1, 0) - at(0, 0)), (1, 16));
                assert!(at(0, 0) - 100 * b < 40);
                tops.insert((b, at(0, 0)));
            }
        }
        assert!(tops.len() > 4, "crops should move: {tops:?}");
    }

    #[test]
    fn mnist64_centres_the_digit() {
        let mut img = vec![0u8; 2 * 784];
        img[784] = 255; // image 1, pixel (0, 0)
        let set = mnist64(&img, 2).upload(Device::Cpu);
        assert_eq!(set.images.size(), [2, 1, 64, 64]);
        assert_eq!(set.images.int64_value(&[1, 0, 18, 18]), 255);
        assert_eq!(i64::try_from(set.images.sum(Kind::Int64)).unwrap(), 255);
    }
}
