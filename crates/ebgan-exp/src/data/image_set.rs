//! The images a convolutional run trains on: resolved from the experiment's dataset, cached
//! once as uint8, held on the device as `[N, C, S, S]` bytes; batches are gathered by index.

use super::cache::{build_cache, load_cache_tensor, Preprocess};
use super::source::{celeba_train_files, Source};
use super::{imagenet, lsun, mnist};
use crate::config::{Dataset, DatasetSpec};
use anyhow::{Context, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// A run's training images as uint8 `[N, S, S, C]`: on the training device when they fit in half
/// of its free memory, else on the host, where each batch is gathered before its upload.
pub struct ImageSet {
    pub images: Tensor,
    pub len: usize,
    pub channels: i64,
    /// Side of the stored images (> the training side when random crops are taken).
    pub side: i64,
    /// The training device (batches come out here).
    pub device: Device,
    pub dataset: Dataset,
    /// Batches are gathered on the host and uploaded (the set did not fit on the device; tests
    /// set it on the CPU to take that path).
    pub on_host: bool,
}

impl ImageSet {
    /// From a host tensor `[N, S, S, C]`, moved to `device` in chunks when it fits there.
    pub fn new(host: Tensor, dataset: Dataset, device: Device) -> Self {
        let size = host.size();
        let (len, side, channels) = (size[0] as usize, size[1], size[3]);
        let bytes = host.numel() as u64;
        let fits = match device {
            Device::Cuda(i) => {
                crate::device::cuda_free_bytes(i).is_none_or(|free| bytes < free / 2)
            }
            _ => true,
        };
        let images = if device.is_cuda() && fits {
            let dev = Tensor::empty(size.as_slice(), (Kind::Uint8, device));
            let step = ((256 << 20) / (bytes / len.max(1) as u64).max(1)).max(1) as i64;
            let mut i = 0;
            while i < len as i64 {
                let m = step.min(len as i64 - i);
                dev.narrow(0, i, m).copy_(&host.narrow(0, i, m));
                i += m;
            }
            dev
        } else {
            if device.is_cuda() {
                eprintln!(
                    "image set of {:.1} GiB kept in host memory: it does not fit in half of the GPU's free memory",
                    bytes as f64 / (1u64 << 30) as f64
                );
            }
            host
        };
        ImageSet {
            on_host: device.is_cuda() && !fits,
            images,
            len,
            channels,
            side,
            device,
            dataset,
        }
    }

    /// The same set, sharing its storage (for the thread that gathers batches ahead).
    pub fn shallow_clone(&self) -> ImageSet {
        ImageSet {
            images: self.images.shallow_clone(),
            ..*self
        }
    }

    /// Whether batches are gathered in host memory before their upload.
    pub fn gathers_on_host(&self) -> bool {
        self.on_host
    }

    /// Images a run draws from: MNIST-64 honours the run's `train_images` (the first N, as for
    /// MNIST); image data sets use every image.
    pub fn usable(&self, c: &crate::config::RunConfig) -> usize {
        if self.dataset.is_mnist() {
            c.train_images.min(self.len)
        } else {
            self.len
        }
    }

    /// From `[N, S, S, C]` bytes.
    pub fn from_bytes(
        hwc: &[u8],
        n: usize,
        side: i64,
        channels: i64,
        dataset: Dataset,
        device: Device,
    ) -> Self {
        let host = Tensor::from_slice(&hwc[..n * (side * side * channels) as usize])
            .view([n as i64, side, side, channels]);
        Self::new(host, dataset, device)
    }

    /// Batch `[B, C, out, out]` in [-1, 1] on the training device of images `idx`; when `out` <
    /// the stored side, each image is cropped at its own random position drawn from `rng`.
    pub fn batch(&self, idx: &[i64], out: i64, rng: &mut impl Rng) -> Tensor {
        self.to_training(self.gather(idx, out, rng))
    }

    /// Images `idx` (cropped as in [`ImageSet::batch`]) as uint8 `[B, out, out, C]` where the
    /// set is held.
    pub fn gather(&self, idx: &[i64], out: i64, rng: &mut impl Rng) -> Tensor {
        let at = self.images.device();
        let sel = ebgan_core::upload(Tensor::from_slice(idx), at);
        let mut x = self.images.index_select(0, &sel);
        if out < self.side {
            let b = idx.len() as i64;
            let span = self.side - out + 1;
            let offsets: Vec<i64> = (0..2 * b).map(|_| rng.random_range(0..span)).collect();
            let off = ebgan_core::upload(Tensor::from_slice(&offsets).view([b, 2]), at);
            let ar = Tensor::arange(out, (Kind::Int64, at));
            let rows = off.select(1, 0).view([b, 1, 1]) + ar.view([1, out, 1]);
            let cols = off.select(1, 1).view([b, 1, 1]) + ar.view([1, 1, out]);
            let bi = Tensor::arange(b, (Kind::Int64, at)).view([b, 1, 1]);
            // [B, S, S, C] gathered at (b, rows, cols) -> [B, out, out, C].
            x = x.index(&[Some(bi), Some(rows), Some(cols)]);
        }
        x
    }

    /// A gathered batch on the training device, `[B, C, out, out]` in [-1, 1].
    pub fn to_training(&self, x: Tensor) -> Tensor {
        let x = ebgan_core::upload(x, self.device);
        x.permute([0, 3, 1, 2]).to_kind(Kind::Float) * (2.0 / 255.0) - 1.0
    }
}

/// The folder the experiment's dataset is read from: $EBGAN_<DATASET>, else the file's
/// `data_root`, else `<data>/<dataset>`.
pub fn data_root(spec: &DatasetSpec, data: &Path) -> PathBuf {
    spec.dataset
        .env_var()
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .or_else(|| spec.data_root.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| data.join(spec.dataset.to_string()))
}

/// Source and preprocessing of the dataset at `side` pixels.
fn source(spec: &DatasetSpec, data: &Path, side: u32) -> Result<(Source, Preprocess)> {
    // Canonical, so a relative and an absolute path to the same data share one cache.
    let root = data_root(spec, data);
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let from = |what: &str| {
        format!(
            "{what} (set {} or data_root in the experiment file)",
            spec.dataset.env_var().unwrap_or("data_root")
        )
    };
    Ok(match spec.dataset {
        Dataset::Celeba => (
            Source::Files(celeba_train_files(&root).context(from("CelebA"))?),
            Preprocess::celeba(side),
        ),
        Dataset::Lsun => (
            lsun::source(&root).context(from("LSUN"))?,
            Preprocess::shorter_side(side),
        ),
        Dataset::Imagenet => {
            let wnids = spec
                .wnids
                .as_ref()
                .map(|f| {
                    let p = Path::new(f);
                    let beside = spec.dir.join(p);
                    imagenet::read_wnids(if p.exists() || !beside.exists() {
                        p
                    } else {
                        &beside
                    })
                })
                .transpose()?;
            (
                Source::Files(
                    imagenet::train_files(&root, wnids.as_deref()).context(from("ImageNet"))?,
                ),
                Preprocess::shorter_side(side),
            )
        }
        Dataset::Mnist | Dataset::Mnist64 => anyhow::bail!(
            "dataset \"{}\" is MNIST, which is read from its IDX files, not a set of image files: \
             image caches and `ebgan fid` take celeba, lsun or imagenet experiments",
            spec.dataset
        ),
    })
}

/// Cache file for this dataset, source and preprocessing: a different subset, root or size
/// gets its own file.
fn cache_path(spec: &DatasetSpec, data: &Path, src: &Source, p: Preprocess) -> Result<PathBuf> {
    let mut h = Sha256::new();
    h.update(format!("{}|{:?}|{}", spec.dataset, p.crop, p.size));
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
    let hex: String = h
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(data
        .join("cache")
        .join(format!("{}-{}-{hex}.cache", spec.dataset, p.size)))
}

/// Builds the cache of the dataset at `side` pixels unless it exists; returns its path.
pub fn ensure_cache(spec: &DatasetSpec, data: &Path, side: u32) -> Result<PathBuf> {
    let (src, p) = source(spec, data, side)?;
    let path = cache_path(spec, data, &src, p)?;
    if !path.is_file() {
        eprintln!(
            "caching {} ({}) at {side}x{side} into {} ...",
            spec.dataset,
            src.describe(),
            path.display()
        );
        let r = build_cache(&src, p, &path)?;
        anyhow::ensure!(
            r.images > 0,
            "{}: no image could be decoded",
            src.describe()
        );
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

/// The training images of the dataset at `side` pixels, for training on `device`.
pub fn load(spec: &DatasetSpec, data: &Path, side: i64, device: Device) -> Result<ImageSet> {
    let host = if spec.dataset == Dataset::Mnist64 {
        let m = mnist::load(data)?;
        mnist64(&m.train_images, m.train_len())
    } else {
        let path = ensure_cache(spec, data, side as u32)?;
        let t = load_cache_tensor(&path)?;
        anyhow::ensure!(
            t.size()[1] == side,
            "{}: holds {}px images, expected {side}px",
            path.display(),
            t.size()[1]
        );
        t
    };
    Ok(ImageSet::new(host, spec.dataset, device))
}

/// MNIST's 28x28 digits in the middle of 64x64 black images (18 pixels each side), `[N, 64, 64, 1]`.
pub fn mnist64(images: &[u8], n: usize) -> Tensor {
    let mut data = vec![0u8; n * 64 * 64];
    for (i, digit) in images[..n * mnist::PIXELS]
        .chunks(mnist::PIXELS)
        .enumerate()
    {
        for (y, row) in digit.chunks(28).enumerate() {
            let o = i * 4096 + (y + 18) * 64 + 18;
            data[o..o + 28].copy_from_slice(row);
        }
    }
    Tensor::from_slice(&data).view([n as i64, 64, 64, 1])
}

/// The image sets of an experiment's convolutional runs, one per stored side. Each sits behind
/// a mutex: tensors may move between threads but not be shared (conv runs go one at a time).
#[derive(Default)]
pub struct ImageSets(std::collections::BTreeMap<i64, std::sync::Mutex<ImageSet>>);

impl ImageSets {
    /// Loads (building caches where missing) the sets the convolutional ones of `configs` need.
    pub fn load<'a>(
        spec: &DatasetSpec,
        data: &Path,
        configs: impl IntoIterator<Item = &'a crate::config::RunConfig>,
        device: Device,
    ) -> Result<Self> {
        let mut sets = ImageSets::default();
        for c in configs.into_iter().filter(|c| c.network.is_conv()) {
            let side = stored_side(c.image_size, c.random_crop);
            if let std::collections::btree_map::Entry::Vacant(e) = sets.0.entry(side) {
                let set = load(spec, data, side, device)?;
                eprintln!(
                    "{}: {} images of {side}x{side}x{}",
                    spec.dataset, set.len, set.channels
                );
                e.insert(std::sync::Mutex::new(set));
            }
        }
        Ok(sets)
    }

    /// The set of a convolutional run (loaded by [`ImageSets::load`]).
    pub fn get(&self, c: &crate::config::RunConfig) -> std::sync::MutexGuard<'_, ImageSet> {
        self.0[&stored_side(c.image_size, c.random_crop)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// `ebgan cache-images`: decode and preprocess an experiment's image dataset once into its
/// uint8 cache; prints its size.
#[derive(clap::Args)]
pub struct CacheImagesArgs {
    file: PathBuf,
}

impl CacheImagesArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        let exp = crate::config::Experiment::load(&self.file)?;
        anyhow::ensure!(
            !exp.data.dataset.is_mnist(),
            "{}: dataset {} is not an image dataset (celeba, lsun, imagenet)",
            self.file.display(),
            exp.data.dataset
        );
        let mut sides: Vec<i64> = exp
            .runs
            .iter()
            .map(|r| stored_side(r.config.image_size, r.config.random_crop))
            .collect();
        sides.sort();
        sides.dedup();
        for side in sides {
            let path = ensure_cache(&exp.data, data, side as u32)?;
            let (n, _) = super::cache::read_header(&path)?;
            eprintln!(
                "{}: {n} images of {side}x{side}x3, {:.1} MiB",
                path.display(),
                std::fs::metadata(&path)?.len() as f64 / (1 << 20) as f64
            );
        }
        Ok(())
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
        let set = ImageSet::from_bytes(&hwc, 2, 4, 3, Dataset::Celeba, Device::Cpu);
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
        let set = ImageSet::new(mnist64(&img, 2), Dataset::Mnist64, Device::Cpu);
        assert_eq!(set.images.size(), [2, 64, 64, 1]);
        assert_eq!(set.images.int64_value(&[1, 18, 18, 0]), 255);
        assert_eq!(i64::try_from(set.images.sum(Kind::Int64)).unwrap(), 255);
        // MNIST-64 honours a run's train_images, as MNIST does; image data sets use every image.
        let c = crate::config::RunConfig {
            train_images: 1,
            ..Default::default()
        };
        assert_eq!(set.usable(&c), 1);
        let faces = ImageSet::new(mnist64(&img, 2), Dataset::Celeba, Device::Cpu);
        assert_eq!(faces.usable(&c), 2);
    }
}
