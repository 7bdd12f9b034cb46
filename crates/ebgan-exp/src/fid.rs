//! FID and KID of image sets with the FID-Inception network (ebgan_models::inception): the
//! weights are given by path (`--inception`, an experiment's `inception` key or
//! `$EBGAN_INCEPTION`), never downloaded; a dataset's features are computed once and cached
//! beside its image cache. `ebgan fid A B` (train::sample::FidArgs) compares two image folders,
//! run checkpoints or experiment datasets.

use crate::config::Experiment;
use crate::data::image_set;
use anyhow::{bail, Context, Result};
use ebgan_core::score::{feature_stats, frechet_distance, mmd2_polynomial};
use ebgan_models::inception::FidInception;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// Where the weights are looked up when no path is given.
pub const ENV: &str = "EBGAN_INCEPTION";

/// KID as torch-fidelity computes it: the mean (and std) of the unbiased MMD^2 over 100 random
/// pairs of subsets of 1,000 (fewer when a set is smaller).
pub const KID_SUBSETS: usize = 100;
pub const KID_SUBSET_SIZE: usize = 1000;

/// The weights file: `given`, else `$EBGAN_INCEPTION`; an error saying how to get them.
pub fn weights_path(given: Option<&Path>) -> Result<PathBuf> {
    let p = match given {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(ENV) {
            Some(p) => PathBuf::from(p),
            None => bail!(
                "no FID-Inception weights: pass --inception PATH, set `inception` in the experiment file or ${ENV} to pytorch-fid's pt_inception-2015-12-05-6726825d.pth converted to safetensors (python parity/convert_inception.py SRC.pth DST.safetensors); they are never downloaded"
            ),
        },
    };
    if !p.is_file() {
        bail!("{}: no such FID-Inception weights file", p.display());
    }
    Ok(p)
}

pub struct Inception {
    _vs: nn::VarStore,
    net: FidInception,
    device: Device,
    /// Short hash of the weights file: cached dataset features are per weights.
    pub weights_id: String,
}

/// Images per forward pass at 299x299.
const CHUNK: i64 = 50;

impl Inception {
    pub fn load(path: &Path, device: Device) -> Result<Inception> {
        let mut vs = nn::VarStore::new(device);
        let net = FidInception::new(&vs.root());
        vs.load(path).with_context(|| {
            format!(
                "{}: not the FID-Inception weights (safetensors with torchvision Inception3 names)",
                path.display()
            )
        })?;
        let bytes = std::fs::read(path)?;
        let weights_id = Sha256::digest(&bytes)
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Inception {
            _vs: vs,
            net,
            device,
            weights_id,
        })
    }

    /// A network already built and loaded (the parity check's random weights).
    pub fn with_network(vs: nn::VarStore, net: FidInception, device: Device) -> Inception {
        Inception {
            _vs: vs,
            net,
            device,
            weights_id: "given".into(),
        }
    }

    /// libtorch's default init, no weights loaded: for tests of the code around FID only.
    #[cfg(test)]
    pub fn untrained(device: Device) -> Inception {
        let vs = nn::VarStore::new(device);
        let net = FidInception::new(&vs.root());
        Inception {
            _vs: vs,
            net,
            device,
            weights_id: "untrained".into(),
        }
    }

    /// Pool3 features `[N, 2048]` (on the CPU) of images `[N, C, H, W]` in [0, 1], C = 1 or 3.
    pub fn features(&self, images: &Tensor) -> Tensor {
        let n = images.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(CHUNK as usize)
            .map(|s| {
                let x = images.narrow(0, s, CHUNK.min(n - s)).to_device(self.device);
                let x = x.to_kind(Kind::Float);
                let x = if x.size()[1] == 1 {
                    x.repeat([1, 3, 1, 1])
                } else {
                    x
                };
                self.net.features(&x).to_device(Device::Cpu)
            })
            .collect();
        Tensor::cat(&parts, 0)
    }

    /// Features of uint8 images `[N, S, S, C]` (an image cache's layout).
    pub fn features_of_bytes(&self, images: &Tensor) -> Tensor {
        let n = images.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(CHUNK as usize)
            .map(|s| {
                let x = images.narrow(0, s, CHUNK.min(n - s)).permute([0, 3, 1, 2]);
                self.features(&(x.to_kind(Kind::Float) / 255.0))
            })
            .collect();
        Tensor::cat(&parts, 0)
    }
}

/// FID and KID of two feature sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distances {
    pub fid: f64,
    pub kid: f64,
    pub kid_std: f64,
}

pub fn distances(a: &Tensor, b: &Tensor, seed: u64) -> Distances {
    let (ma, ca) = feature_stats(a);
    let (mb, cb) = feature_stats(b);
    let (na, nb) = (a.size()[0] as usize, b.size()[0] as usize);
    let m = KID_SUBSET_SIZE.min(na).min(nb);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = |t: &Tensor, n: usize, rng: &mut ChaCha8Rng| {
        let idx: Vec<i64> = sample(rng, n, m).into_iter().map(|i| i as i64).collect();
        t.index_select(0, &Tensor::from_slice(&idx))
    };
    let kids: Vec<f64> = (0..KID_SUBSETS)
        .map(|_| mmd2_polynomial(&pick(a, na, &mut rng), &pick(b, nb, &mut rng)))
        .collect();
    let mean = kids.iter().sum::<f64>() / kids.len() as f64;
    let var = kids.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / kids.len() as f64;
    Distances {
        fid: frechet_distance(&ma, &ca, &mb, &cb),
        kid: mean,
        kid_std: var.sqrt(),
    }
}

/// Features of at most `max` images of an experiment's dataset, computed once per weights and
/// cached beside the dataset's image cache (`<cache>.inception-<weights>-<n>.safetensors`).
pub fn dataset_features(
    exp: &Experiment,
    data: &Path,
    inception: &Inception,
    max: usize,
) -> Result<Tensor> {
    let c = &exp
        .runs
        .first()
        .with_context(|| format!("experiment {}: no runs", exp.name))?
        .config;
    let side = c.image_size;
    let set = image_set::load(&exp.data, data, side, Device::Cpu)?;
    let n = set.len.min(max);
    let cache = data.join("cache").join(format!(
        "{}-{side}.inception-{}-{n}.safetensors",
        exp.data.dataset, inception.weights_id
    ));
    if let Ok(t) = Tensor::read_safetensors(&cache) {
        if let Some((_, f)) = t.into_iter().find(|(k, _)| k == "features") {
            return Ok(f);
        }
    }
    eprintln!(
        "FID: Inception features of {n} {} images (once; cached in {})",
        exp.data.dataset,
        cache.display()
    );
    let f = inception.features_of_bytes(&set.images.narrow(0, 0, n as i64));
    std::fs::create_dir_all(data.join("cache"))?;
    let tmp = cache.with_extension("tmp");
    Tensor::write_safetensors(&[("features", &f)], &tmp)?;
    std::fs::rename(&tmp, &cache)?;
    Ok(f)
}

/// What an image experiment's runs are measured against: the network and its dataset's
/// features.
pub struct Reference {
    pub inception: Inception,
    pub features: Tensor,
}

/// Images of the dataset (and samples per run) FID and KID use at most.
pub const REFERENCE_IMAGES: usize = 10_000;

impl Reference {
    /// The weights from `given`, the experiment's `inception` key or `$EBGAN_INCEPTION`, and the
    /// dataset's cached features; None (with a notice) when no weights are named anywhere.
    pub fn for_experiment(
        exp: &Experiment,
        given: Option<&Path>,
        data: &Path,
        device: Device,
    ) -> Result<Option<Reference>> {
        let named = given
            .map(Path::to_path_buf)
            .or_else(|| exp.inception.clone());
        if named.is_none() && std::env::var_os(ENV).is_none() {
            eprintln!(
                "FID: no FID-Inception weights named (--inception, `inception` in the experiment file or ${ENV}): image runs are recorded without FID and KID"
            );
            return Ok(None);
        }
        let inception = Inception::load(&weights_path(named.as_deref())?, device)?;
        let features = dataset_features(exp, data, &inception, REFERENCE_IMAGES)?;
        Ok(Some(Reference {
            inception,
            features,
        }))
    }
}

/// The PNG and JPEG files of a folder, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Every image file of a folder (PNG, JPEG), sorted by name, at most `max`, as `[1, 3, H, W]`
/// tensors in [0, 1] (sizes may differ; the network resizes each to 299).
pub fn folder_images(dir: &Path, max: usize) -> Result<Vec<Tensor>> {
    let mut files = image_files(dir)?;
    files.truncate(max);
    if files.is_empty() {
        bail!("{}: no PNG or JPEG images here", dir.display());
    }
    files
        .iter()
        .map(|p| {
            let img = image::open(p)
                .with_context(|| format!("{}: not a readable image", p.display()))?
                .to_rgb8();
            let (w, h) = img.dimensions();
            Ok(Tensor::from_slice(img.as_raw())
                .view([1, h as i64, w as i64, 3])
                .permute([0, 3, 1, 2])
                .to_kind(Kind::Float)
                / 255.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_weights_say_how_to_get_them() {
        let err = weights_path(Some(Path::new("/nonexistent/inception.safetensors")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such FID-Inception weights file"), "{err}");
    }

    #[test]
    fn identical_sets_are_at_distance_zero_and_shifted_ones_are_not() {
        let mut rng = ebgan_models::rng::stream(3, ebgan_models::rng::Stream::Sample, 0);
        let a = ebgan_models::rng::normal(&mut rng, &[300, 8], Device::Cpu);
        let same = distances(&a, &a, 0);
        assert!(same.fid.abs() < 1e-8, "{same:?}");
        // A mean shift of 1 in every one of 8 dimensions: FID = |dmu|^2 = 8 exactly.
        let shifted = distances(&a, &(&a + 1.0), 0);
        assert!((shifted.fid - 8.0).abs() < 1e-8, "{shifted:?}");
        assert!(
            shifted.kid > 10.0 * same.kid.abs().max(1e-6),
            "{shifted:?} vs {same:?}"
        );
    }
}
