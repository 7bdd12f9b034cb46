//! G's input (z and the ImageNet generator's noise planes) and latent interpolations.

use super::ConvGan;
use ebgan_models::dcgan::ConvSpec;
use ebgan_models::rng::{normal, MemberRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

/// G's input for `n` samples: z `[n, z_dim]` and the noise planes of the ImageNet generator.
pub struct Latent {
    pub z: Tensor,
    pub planes: Vec<Tensor>,
}

impl Latent {
    /// One-off latents (sample sheets, scores) from a host stream.
    pub fn draw(spec: &ConvSpec, n: i64, rng: &mut ChaCha8Rng, device: Device) -> Latent {
        Latent {
            z: normal(rng, &[n, spec.z_dim], device),
            planes: spec
                .noise_sides()
                .iter()
                .map(|&r| normal(rng, &[n, spec.noise_planes, r, r], device))
                .collect(),
        }
    }

    /// A training step's latent, from the run's device stream (one member).
    pub fn from_stream(spec: &ConvSpec, n: i64, rng: &mut MemberRng) -> Latent {
        Latent {
            z: rng.normal(&[n, spec.z_dim], 1.0).squeeze_dim(0),
            planes: spec
                .noise_sides()
                .iter()
                .map(|&r| {
                    rng.normal(&[n, spec.noise_planes, r, r], 1.0)
                        .squeeze_dim(0)
                })
                .collect(),
        }
    }

    pub(super) fn lerp(a: &Latent, b: &Latent, t: f64) -> Latent {
        let mix = |x: &Tensor, y: &Tensor| x * (1.0 - t) + y * t;
        Latent {
            z: mix(&a.z, &b.z),
            planes: a
                .planes
                .iter()
                .zip(&b.planes)
                .map(|(x, y)| mix(x, y))
                .collect(),
        }
    }
}

/// Rows of linear latent interpolations between pairs of random latents.
pub fn interpolations(gan: &ConvGan, rows: i64, cols: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let device = gan.g_vs.device();
    let (a, b) = (
        Latent::draw(&gan.spec, rows, rng, device),
        Latent::draw(&gan.spec, rows, rng, device),
    );
    let steps: Vec<Tensor> = (0..cols)
        .map(|j| gan.generate(&Latent::lerp(&a, &b, j as f64 / (cols - 1).max(1) as f64)))
        .collect();
    // [rows, cols, C, S, S] -> row-major grid of rows x cols.
    Tensor::stack(&steps, 1).flatten(0, 1)
}
