//! `ebgan fid A B`: FID and KID between two image sets (image folders, image runs' checkpoints,
//! image experiments' datasets), through fid.rs's FID-Inception network and distances; beside
//! fid.rs, it samples a run's generator through train's checkpoint loader.

use crate::config::Experiment;
use crate::fid::{self, Inception};
use crate::train::conv::sample_features;
use crate::train::sample::from_checkpoint;
use anyhow::{bail, Result};
use ebgan_models::rng::{stream as stream_rng, Stream};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// What `ebgan fid` compares: a run folder with a checkpoint (its G's samples), an experiment
/// file (its dataset), or a folder of images.
fn features_of(
    what: &Path,
    data: &Path,
    inception: &Inception,
    n: usize,
    device: Device,
) -> Result<Tensor> {
    let ck = what.join("checkpoint.safetensors");
    if ck.is_file() {
        let (gan, config) = from_checkpoint(&ck, device)?;
        eprintln!("FID: {n} samples of {}", ck.display());
        let mut rng = stream_rng(config.seed, Stream::Sample, 5);
        return Ok(sample_features(&gan, inception, n, &mut rng));
    }
    if what.extension().is_some_and(|e| e == "toml") {
        let exp = Experiment::load(what)?;
        return fid::dataset_features(&exp, data, inception, n);
    }
    if what.is_dir() {
        // check_input has refused run folders without a checkpoint.
        let images = fid::folder_images(what, n)?;
        eprintln!("FID: {} images of {}", images.len(), what.display());
        let parts: Vec<Tensor> = images.iter().map(|x| inception.features(x)).collect();
        return Ok(Tensor::cat(&parts, 0));
    }
    bail!(
        "{}: expected a folder of images, a run folder with checkpoint.safetensors or an experiment file",
        what.display()
    )
}

/// `ebgan fid A B`: FID and KID between two image sets.
#[derive(clap::Args)]
pub struct FidArgs {
    /// A folder of PNG / JPEG images, a run folder (its checkpoint's samples) or an experiment
    /// file (its dataset).
    a: PathBuf,
    b: PathBuf,
    /// FID-Inception weights (safetensors); default $EBGAN_INCEPTION.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Images (or samples) per side at most.
    #[arg(long, default_value_t = 10000)]
    n: usize,
    #[arg(long, default_value = "auto")]
    device: String,
}

/// What `ebgan fid` accepts, checked before any weights load: an image experiment, a run
/// folder with a checkpoint, or a folder of at least 2 images.
fn check_input(what: &Path, n: usize) -> Result<()> {
    if n < 2 {
        bail!("--n {n}: FID and KID need at least 2 images per side");
    }
    if what.join("checkpoint.safetensors").is_file() {
        return Ok(());
    }
    if what.extension().is_some_and(|e| e == "toml") {
        let exp = Experiment::load(what)?;
        if matches!(
            exp.data.dataset,
            crate::config::Dataset::Mnist | crate::config::Dataset::Mnist64
        ) {
            bail!(
                "{}: dataset \"{}\" is scored by the MNIST classifier (I', IS, MNIST FID in \
                 runs.csv), not by FID-Inception: `ebgan fid` takes celeba, lsun or imagenet \
                 experiments, image folders and image run folders",
                what.display(),
                exp.data.dataset
            );
        }
        return Ok(());
    }
    if what.is_dir() && what.join("config.toml").is_file() {
        bail!(
            "{}: a run folder without checkpoint.safetensors (MLP runs keep none): `ebgan fid` \
             compares image runs, image folders and image experiments",
            what.display()
        );
    }
    if what.is_dir() {
        let images = fid::image_files(what)?.len();
        if images < 2 {
            bail!(
                "{}: {images} PNG / JPEG image(s); FID and KID need at least 2 per side",
                what.display()
            );
        }
        return Ok(());
    }
    bail!(
        "{}: expected a folder of images, a run folder with checkpoint.safetensors or an experiment file",
        what.display()
    )
}

impl FidArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        check_input(&self.a, self.n)?;
        check_input(&self.b, self.n)?;
        let device = crate::device::parse(&self.device)?;
        let inception = Inception::load(&fid::weights_path(self.inception.as_deref())?, device)?;
        let a = features_of(&self.a, data, &inception, self.n, device)?;
        let b = features_of(&self.b, data, &inception, self.n, device)?;
        for (what, f) in [(&self.a, &a), (&self.b, &b)] {
            let (count, dim) = (f.size()[0], f.size()[1]);
            if count < 2 {
                bail!(
                    "{}: {count} image(s); FID and KID need at least 2 per side (a covariance \
                     and a pair)",
                    what.display()
                );
            }
            if count < dim {
                eprintln!(
                    "warning: {}: {count} images for {dim} features: the covariance is singular \
                     and FID is biased high (use thousands of images)",
                    what.display()
                );
            }
        }
        let d = fid::distances(&a, &b, 0);
        if !(d.fid.is_finite() && d.kid.is_finite()) {
            bail!(
                "FID {} / KID {} is not finite for these images",
                d.fid,
                d.kid
            );
        }
        println!(
            "FID {:.3}  KID {:.5} +- {:.5}  ({} vs {} images)",
            d.fid,
            d.kid,
            d.kid_std,
            a.size()[0],
            b.size()[0]
        );
        Ok(())
    }
}
