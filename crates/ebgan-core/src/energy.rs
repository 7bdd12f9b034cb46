//! Reconstruction energy of the auto-encoder discriminator, paper Eq. 13: D(x) = ||Dec(Enc(x)) - x||.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How the per-sample reconstruction error becomes an energy.
///
/// `l2` (default) is the paper's norm over all pixels; margins of 10..80 only make sense on that
/// scale. `sse` is its square and `mse` the per-pixel mean of the square.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Energy {
    #[default]
    L2,
    Sse,
    Mse,
}

impl Energy {
    /// Energies `[K, B]` of reconstructions `recon` of inputs `x`, both `[K, B, ...]`.
    pub fn of(self, recon: &Tensor, x: &Tensor) -> Tensor {
        let diff = (recon - x).flatten(2, -1);
        match self {
            // norm's backward is defined (zero) at a perfect reconstruction; sqrt(sse) is not.
            Energy::L2 => diff.norm_scalaropt_dim(2.0, [-1i64].as_slice(), false),
            Energy::Sse => diff
                .square()
                .sum_dim_intlist([-1i64].as_slice(), false, None),
            Energy::Mse => diff.square().mean_dim([-1i64].as_slice(), false, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn energies_of_a_hand_made_batch() {
        // Member 0: errors (3, 4) and (0, 0); member 1: errors (1, 1) and (2, 0).
        let x = Tensor::zeros([2, 2, 2], (tch::Kind::Float, tch::Device::Cpu));
        let recon = Tensor::from_slice(&[3f32, 4., 0., 0., 1., 1., 2., 0.]).view([2, 2, 2]);
        assert_eq!(
            values(&Energy::L2.of(&recon, &x)),
            [5.0, 0.0, 2f32.sqrt(), 2.0]
        );
        assert_eq!(values(&Energy::Sse.of(&recon, &x)), [25.0, 0.0, 2.0, 4.0]);
        assert_eq!(values(&Energy::Mse.of(&recon, &x)), [12.5, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn l2_energy_flattens_image_dims_and_has_finite_gradient_at_zero() {
        let x = Tensor::ones([1, 1, 2, 2], (tch::Kind::Float, tch::Device::Cpu));
        let recon = x.copy().set_requires_grad(true);
        let e = Energy::L2.of(&recon, &x);
        assert_eq!(e.size(), [1, 1]);
        e.sum(None).backward();
        let g = values(&recon.grad());
        assert!(g.iter().all(|v| v.is_finite()));
    }
}
