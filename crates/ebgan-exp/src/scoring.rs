//! The MNIST scoring classifier: trained once, cached with its test accuracy, and used to turn
//! generated samples into log p(y|x) and then I', the printed I' and IS (ebgan_core::score),
//! and into penultimate features whose Frechet distance to the real test set's is MNIST's FID.

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
    let info = ClassifierInfo {
        test_accuracy: accuracy,
        test_scores: scores(&log_probs),
        epochs,
        train_images: n,
        train_seconds: start.elapsed().as_secs_f64(),
        device: format!("{device:?}"),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("classifier.tmp.safetensors");
    vs.save(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, weights(dir))?;
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
        read_info(dir)?;
        let mut vs = nn::VarStore::new(device);
        let net = Classifier::new(&vs.root());
        let w = weights(dir);
        if !w.is_file() {
            bail!(
                "{}: classifier weights missing; train them with `ebgan classifier`",
                w.display()
            );
        }
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

/// `ebgan classifier`: train the scoring classifier once; cached with its test accuracy.
#[derive(clap::Args)]
pub struct ClassifierArgs {
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
    /// Retrain even if one exists.
    #[arg(long)]
    force: bool,
}

impl ClassifierArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        let dir = self.classifier.clone().unwrap_or_else(|| default_dir(data));
        if !self.force && read_info(&dir).is_ok() {
            let device = crate::device::parse(&self.device)?;
            let info = prepare(&dir, &crate::data::mnist::load(data)?, device)?;
            eprintln!(
                "classifier in {} already trained: test accuracy {:.2}%",
                dir.display(),
                info.test_accuracy * 100.0
            );
            return Ok(());
        }
        let device = crate::device::parse(&self.device)?;
        let mnist = crate::data::mnist::load(data)?;
        let info = train(&mnist, &dir, self.epochs, self.train_images, device)?;
        eprintln!(
            "classifier: test accuracy {:.2}% ({} epochs, {:.0} s on {}); real test set: I' {:.3}, IS {:.2}",
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
