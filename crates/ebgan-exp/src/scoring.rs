//! The MNIST scoring classifier: trained once, cached with its test accuracy, and used to turn
//! generated samples into log p(y|x) and then I', the printed I' and IS (ebgan_core::score),
//! and into penultimate features whose Frechet distance to the real test set's is MNIST's FID.
//!
//! Scores are comparable only under one classifier's weights, so the project ships one
//! (`models/mnist-classifier/`, also compiled into the binary) and `ebgan classifier` installs
//! it; every classifier folder records the SHA-256 of its weights, checked on every load, and
//! every runs.csv row the hash prefix it was scored under.

use crate::data::mnist::{Mnist, PIXELS};
use crate::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use ebgan_core::score::{feature_stats, frechet_distance, scores, Scores};
use ebgan_models::classifier::Classifier;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Recorded next to the weights and copied into every experiment's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierInfo {
    pub test_accuracy: f64,
    /// Scores of the 10,000 real test images: the ceiling generated samples are compared with.
    pub test_scores: Scores,
    pub epochs: usize,
    pub train_images: usize,
    pub train_seconds: f64,
    pub device: String,
    /// SHA-256 of classifier.safetensors (empty in folders from before it was recorded).
    #[serde(default)]
    pub sha256: String,
    /// The machine that trained it (`device::machine`).
    #[serde(default)]
    pub trained_on: String,
}

impl ClassifierInfo {
    /// What runs.csv rows and summaries record: the first 16 hex digits of the weights' hash.
    pub fn hash_prefix(&self) -> &str {
        &self.sha256[..self.sha256.len().min(16)]
    }
}

/// The classifier this project's results are scored with (models/mnist-classifier/README.md:
/// the command and machine that trained it).
const SHIPPED_WEIGHTS: &[u8] =
    include_bytes!("../../../models/mnist-classifier/classifier.safetensors");
const SHIPPED_INFO: &str = include_str!("../../../models/mnist-classifier/classifier.json");

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The shipped classifier's record (its hash is checked against the embedded weights by a test).
pub fn shipped_info() -> ClassifierInfo {
    serde_json::from_str(SHIPPED_INFO).expect("the shipped classifier.json parses (a unit test)")
}

/// Writes the shipped classifier into `dir` (weights and record; the test set's FID statistics
/// follow in [`prepare`]).
pub fn install_shipped(dir: &Path) -> Result<ClassifierInfo> {
    let info = shipped_info();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&weights(dir), SHIPPED_WEIGHTS)?;
    write_atomic(&info_path(dir), SHIPPED_INFO.as_bytes())?;
    let _ = std::fs::remove_file(test_features_path(dir));
    verify(dir, &info)?;
    Ok(info)
}

/// Checks that `dir`'s weights are the ones its record names.
fn verify(dir: &Path, info: &ClassifierInfo) -> Result<()> {
    let w = weights(dir);
    if info.sha256.is_empty() {
        bail!(
            "{}: records no SHA-256 of its weights (a classifier from before they were \
             versioned); install the shipped one with `ebgan classifier`, or retrain with \
             `ebgan classifier --train --force`",
            info_path(dir).display()
        );
    }
    let bytes = std::fs::read(&w).with_context(|| {
        format!(
            "{}: classifier weights missing; install them with `ebgan classifier`",
            w.display()
        )
    })?;
    let got = sha256_hex(&bytes);
    if got != info.sha256 {
        bail!(
            "{}: SHA-256 {got} is not the {} that {} records: the weights were changed or \
             damaged; reinstall with `ebgan classifier --force` (the shipped one) or retrain",
            w.display(),
            info.sha256,
            info_path(dir).display()
        );
    }
    Ok(())
}

/// Default location: `<data>/mnist-classifier/`.
pub fn default_dir(data: &Path) -> PathBuf {
    data.join("mnist-classifier")
}

fn weights(dir: &Path) -> PathBuf {
    dir.join("classifier.safetensors")
}

fn info_path(dir: &Path) -> PathBuf {
    dir.join("classifier.json")
}

/// Mean and covariance of the real test images' features: FID's reference.
fn test_features_path(dir: &Path) -> PathBuf {
    dir.join("test-features.safetensors")
}

pub fn read_info(dir: &Path) -> Result<ClassifierInfo> {
    let p = info_path(dir);
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{}: no scoring classifier here; train it with `ebgan classifier` (or `just setup`)",
            p.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a classifier record", p.display()))
}

fn to_input(images: &[u8], n: usize, device: Device) -> Tensor {
    Tensor::from_slice(&images[..n * PIXELS])
        .view([n as i64, PIXELS as i64])
        .to_device(device)
        .to_kind(Kind::Float)
        * (2.0 / 255.0)
        - 1.0
}

/// Trains the classifier on the first `train_images` training images and evaluates it on the
/// 10,000 test images.
pub fn train(
    mnist: &Mnist,
    dir: &Path,
    epochs: usize,
    train_images: usize,
    device: Device,
) -> Result<ClassifierInfo> {
    let start = std::time::Instant::now();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = Classifier::new(&vs.root());
    let mut opt = nn::Adam::default().build(&vs, 1e-3)?;
    let n = train_images.min(mnist.train_len());
    let x = to_input(&mnist.train_images, n, device);
    let y = Tensor::from_slice(&mnist.train_labels[..n])
        .to_kind(Kind::Int64)
        .to_device(device);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let batch = 128usize;
    for epoch in 0..epochs {
        // The last epoch at a tenth of the rate: worth about half a point of test accuracy.
        opt.set_lr(if epoch + 1 == epochs && epochs > 1 {
            1e-4
        } else {
            1e-3
        });
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(&mut rng);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_slice(chunk).to_device(device);
            let loss = net
                .logits(&x.index_select(0, &idx), true)
                .cross_entropy_for_logits(&y.index_select(0, &idx));
            opt.backward_step(&loss);
        }
        eprintln!("classifier: epoch {}/{epochs} done", epoch + 1);
    }
    let test_x = to_input(&mnist.test_images, mnist.test_len(), device);
    let test_y = Tensor::from_slice(&mnist.test_labels)
        .to_kind(Kind::Int64)
        .to_device(device);
    let (log_probs, _) = net.evaluate(&test_x, 1000);
    let accuracy = f64::try_from(
        log_probs
            .argmax(-1, false)
            .eq_tensor(&test_y)
            .to_kind(Kind::Double)
            .mean(None),
    )?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("classifier.tmp.safetensors");
    vs.save(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let sha256 = sha256_hex(&std::fs::read(&tmp)?);
    std::fs::rename(&tmp, weights(dir))?;
    let info = ClassifierInfo {
        test_accuracy: accuracy,
        test_scores: scores(&log_probs),
        epochs,
        train_images: n,
        train_seconds: start.elapsed().as_secs_f64(),
        device: format!("{device:?}"),
        sha256,
        trained_on: crate::device::machine(),
    };
    write_atomic(
        &info_path(dir),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;
    let _ = std::fs::remove_file(test_features_path(dir));
    prepare(dir, mnist, device)
}

/// Makes sure the classifier folder holds the real test set's feature statistics (FID's
/// reference, computed once) and test scores from log-probabilities (a folder from before
/// either is brought up to date with its weights, without retraining). Returns its record.
pub fn prepare(dir: &Path, mnist: &Mnist, device: Device) -> Result<ClassifierInfo> {
    let mut info = read_info(dir)?;
    let path = test_features_path(dir);
    if path.is_file() {
        return Ok(info);
    }
    let scorer = Scorer::load(dir, device)?;
    let test_x = to_input(&mnist.test_images, mnist.test_len(), device);
    let (log_probs, features) = scorer.net.evaluate(&test_x, 1000);
    info.test_scores = scores(&log_probs);
    let (mu, cov) = feature_stats(&features);
    let tmp = dir.join("test-features.tmp.safetensors");
    Tensor::write_safetensors(&[("mu", &mu), ("cov", &cov)], &tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    write_atomic(
        &info_path(dir),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;
    std::fs::rename(&tmp, &path)?;
    Ok(info)
}

pub struct Scorer {
    _vs: nn::VarStore,
    net: Classifier,
    /// Mean and covariance of the test images' features, when [`prepare`] has computed them.
    reference: Option<(Tensor, Tensor)>,
}

impl Scorer {
    pub fn load(dir: &Path, device: Device) -> Result<Scorer> {
        verify(dir, &read_info(dir)?)?;
        let mut vs = nn::VarStore::new(device);
        let net = Classifier::new(&vs.root());
        let w = weights(dir);
        vs.load(&w).with_context(|| {
            format!(
                "{}: not the weights of the scoring classifier (retrain with `ebgan classifier`)",
                w.display()
            )
        })?;
        let stats = test_features_path(dir);
        let reference = match stats.is_file() {
            true => {
                let t: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&stats)
                    .with_context(|| format!("{}: not FID statistics", stats.display()))?
                    .into_iter()
                    .collect();
                match (t.get("mu"), t.get("cov")) {
                    (Some(mu), Some(cov)) => Some((mu.to_device(device), cov.to_device(device))),
                    _ => bail!(
                        "{}: no `mu` and `cov`; delete it to recompute",
                        stats.display()
                    ),
                }
            }
            false => None,
        };
        Ok(Scorer {
            _vs: vs,
            net,
            reference,
        })
    }

    /// The shipped classifier (its weights verified) and its weights, with the FID statistics
    /// of `reference` images `[N, 784]` when given (a fresh install has no test-set ones).
    pub fn shipped(
        reference: Option<&Tensor>,
        device: Device,
    ) -> Result<(Scorer, Vec<(String, Tensor)>)> {
        let dir = tempfile::tempdir()?;
        install_shipped(dir.path())?;
        let mut scorer = Scorer::load(dir.path(), device)?;
        if let Some(images) = reference {
            scorer.reference = Some(feature_stats(&scorer.net.evaluate(images, 1000).1));
        }
        Ok((scorer, Tensor::read_safetensors(weights(dir.path()))?))
    }

    /// A randomly initialised classifier: for tests and checks of the code around scoring
    /// (gpu-check's training checks), never for results.
    pub fn untrained(device: Device) -> Scorer {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let net = Classifier::new(&vs.root());
        Scorer {
            _vs: vs,
            net,
            reference: None,
        }
    }

    /// Scores of images `[N, 784]` in [-1, 1]; FID when the test set's statistics are known.
    pub fn scores(&self, images: &Tensor) -> Scores {
        let (log_probs, features) = self.net.evaluate(images, 1000);
        let mut s = scores(&log_probs);
        if let Some((mu, cov)) = &self.reference {
            let (m, c) = feature_stats(&features);
            s.fid = Some(frechet_distance(&m, &c, mu, cov));
        }
        s
    }
}

/// `ebgan classifier`: install the shipped scoring classifier (the default), or train one's own.
#[derive(clap::Args)]
pub struct ClassifierArgs {
    /// Train a classifier instead of installing the shipped one (its scores are then comparable
    /// only with other runs scored by it: rows record its hash).
    #[arg(long)]
    train: bool,
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Use the first N training images.
    #[arg(long, default_value_t = 60000)]
    train_images: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Where to keep it; default <data>/mnist-classifier.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Replace the folder's classifier even if it verifies.
    #[arg(long)]
    force: bool,
}

impl ClassifierArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        let dir = self.classifier.clone().unwrap_or_else(|| default_dir(data));
        let device = crate::device::parse(&self.device)?;
        let current = read_info(&dir).ok().filter(|i| verify(&dir, i).is_ok());
        if let (Some(_), false) = (&current, self.force) {
            let info = prepare(&dir, &crate::data::mnist::load(data)?, device)?;
            eprintln!(
                "classifier in {} ({}): test accuracy {:.2}%{}",
                dir.display(),
                info.hash_prefix(),
                info.test_accuracy * 100.0,
                match (self.train, info.sha256 == shipped_info().sha256) {
                    (true, _) => "; kept (add --force to retrain)",
                    (false, true) => ", the shipped one",
                    (false, false) => ", not the shipped one (--force installs that)",
                }
            );
            return Ok(());
        }
        let mnist = crate::data::mnist::load(data)?;
        if !self.train {
            if read_info(&dir).is_ok() && current.is_none() {
                eprintln!(
                    "{}: replacing a classifier whose weights do not verify against its record",
                    dir.display()
                );
            }
            install_shipped(&dir)?;
            let info = prepare(&dir, &mnist, device)?;
            eprintln!(
                "classifier: installed the shipped one ({}) in {}: test accuracy {:.2}%; real test set: I' {:.3}, IS {:.2}",
                info.hash_prefix(),
                dir.display(),
                info.test_accuracy * 100.0,
                info.test_scores.i_prime,
                info.test_scores.inception_score
            );
            return Ok(());
        }
        let info = train(&mnist, &dir, self.epochs, self.train_images, device)?;
        eprintln!(
            "classifier {}: test accuracy {:.2}% ({} epochs, {:.0} s on {}); real test set: I' {:.3}, IS {:.2}",
            info.hash_prefix(),
            info.test_accuracy * 100.0,
            self.epochs,
            info.train_seconds,
            crate::device::describe(device),
            info.test_scores.i_prime,
            info.test_scores.inception_score
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_weights_are_the_ones_their_record_and_readme_name() {
        let info = shipped_info();
        assert_eq!(sha256_hex(SHIPPED_WEIGHTS), info.sha256);
        let readme = include_str!("../../../models/mnist-classifier/README.md");
        assert!(readme.contains(&info.sha256), "README names another hash");
        assert_eq!(info.hash_prefix().len(), 16);
    }

    #[test]
    fn a_changed_byte_or_a_record_without_hash_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        install_shipped(dir.path()).unwrap();
        Scorer::load(dir.path(), Device::Cpu).unwrap();
        let w = weights(dir.path());
        let mut bytes = std::fs::read(&w).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&w, &bytes).unwrap();
        let err = format!("{:#}", Scorer::load(dir.path(), Device::Cpu).err().unwrap());
        assert!(
            err.contains("classifier.safetensors") && err.contains("SHA-256"),
            "{err}"
        );

        install_shipped(dir.path()).unwrap();
        let mut info = shipped_info();
        info.sha256.clear();
        std::fs::write(info_path(dir.path()), serde_json::to_string(&info).unwrap()).unwrap();
        let err = format!("{:#}", Scorer::load(dir.path(), Device::Cpu).err().unwrap());
        assert!(
            err.contains("classifier.json") && err.contains("no SHA-256"),
            "{err}"
        );
    }
}
