//! The end of a finished convolutional run: its sample sheet and interpolations, and its
//! scores (MNIST-64: I' and IS through the MNIST classifier; image runs: FID and KID when
//! FID-Inception weights were given).

use super::{interpolations, write_samples, ConvGan, ConvRun, Latent};
use crate::png::{image_grid, save_rgb_png};
use crate::scoring::Scorer;
use anyhow::Result;
use ebgan_core::score::Scores;
use ebgan_models::rng::{stream as stream_rng, Stream};
use tch::Tensor;

/// Writes samples.png and interpolations.png into the run's folder; returns its scores.
pub(super) fn finish(
    gan: &ConvGan,
    run: &ConvRun,
    fixed: &Latent,
) -> Result<(Option<Scores>, Option<crate::fid::Distances>)> {
    let c = run.config;
    let (mut scores, mut inception) = (None, None);
    write_samples(gan, fixed, &run.dir.join("samples.png"))?;
    let grid = interpolations(gan, 8, 10, &mut stream_rng(c.seed, Stream::Sample, 1));
    save_rgb_png(&image_grid(&grid, 10), &run.dir.join("interpolations.png"))?;
    if let Some(scorer) = run.scorer {
        scores = Some(score_mnist64(gan, scorer, c.score_samples, c.seed)?);
    }
    if let Some(reference) = run.fid {
        let reference = reference.lock().unwrap_or_else(|e| e.into_inner());
        inception = Some(inception_distances(
            gan,
            &reference,
            c.score_samples,
            c.seed,
        ));
    }
    Ok((scores, inception))
}

/// FID and KID of `n` samples (at most the reference's size) against the dataset's features.
fn inception_distances(
    gan: &ConvGan,
    reference: &crate::fid::Reference,
    n: usize,
    seed: u64,
) -> crate::fid::Distances {
    let n = n.min(crate::fid::REFERENCE_IMAGES);
    let mut rng = stream_rng(seed, Stream::Sample, 6);
    let samples = sample_features(gan, &reference.inception, n, &mut rng);
    crate::fid::distances(&samples, &reference.features, seed)
}

/// FID-Inception features of `n` samples of G drawn from `rng`, 500 at a time.
pub fn sample_features(
    gan: &ConvGan,
    inception: &crate::fid::Inception,
    n: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Tensor {
    let device = gan.g_vs.device();
    let mut parts = vec![];
    let mut left = n as i64;
    while left > 0 {
        let m = left.min(500);
        let x = gan.generate(&Latent::draw(&gan.spec, m, rng, device));
        parts.push(inception.features(&((x + 1.0) / 2.0)));
        left -= m;
    }
    Tensor::cat(&parts, 0)
}

/// I' and IS of MNIST-64 samples: the centre 28x28 (where the digits were padded from) through
/// the MNIST scoring classifier.
fn score_mnist64(
    gan: &ConvGan,
    scorer: &Scorer,
    n: usize,
    seed: u64,
) -> Result<ebgan_core::score::Scores> {
    let device = gan.g_vs.device();
    let mut rng = stream_rng(seed, Stream::Sample, 2);
    let mut parts = vec![];
    let mut left = n as i64;
    while left > 0 {
        let m = left.min(500);
        let x = gan.generate(&Latent::draw(&gan.spec, m, &mut rng, device));
        parts.push(x.narrow(2, 18, 28).narrow(3, 18, 28).reshape([m, 784]));
        left -= m;
    }
    Ok(scorer.scores(&Tensor::cat(&parts, 0)))
}
