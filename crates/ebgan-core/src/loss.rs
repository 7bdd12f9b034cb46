//! EBGAN objectives, paper §2 / paper.md §1:
//! L_D(x, z) = D(x) + [m - D(G(z))]^+   and   L_G(z) = D(G(z)),
//! both per sample and then averaged over the batch, so the hinge acts on EACH fake energy.

use tch::Tensor;

/// Discriminator loss per member `[K]` from energies `[K, B]` and margins `[K]`.
pub fn discriminator(energy_real: &Tensor, energy_fake: &Tensor, margin: &Tensor) -> Tensor {
    energy_real.mean_dim(1, false, None) + hinge(energy_fake, margin)
}

/// The hinge term per member `[K]`: the batch mean of [m - D(G(z))]^+, taken on each fake
/// energy `[K, B]` at the member's margin `[K]` (EBGAN-LN weighs it beside its own costs).
pub fn hinge(energy_fake: &Tensor, margin: &Tensor) -> Tensor {
    (margin.unsqueeze(1) - energy_fake)
        .relu()
        .mean_dim(1, false, None)
}

/// Generator loss per member `[K]`: the mean energy of the generated samples.
pub fn generator(energy_fake: &Tensor) -> Tensor {
    energy_fake.mean_dim(1, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn hinge_is_per_sample_not_on_the_batch_mean() {
        // Fake energies 2 and 18 with m = 10: per-sample hinges are 8 and 0, mean 4.
        // Hinging the batch mean (10) would give 0: the two readings differ on this batch.
        let real = t(&[1.0, 3.0], &[1, 2]);
        let fake = t(&[2.0, 18.0], &[1, 2]);
        let m = t(&[10.0], &[1]);
        let l = f32::try_from(discriminator(&real, &fake, &m)).unwrap();
        assert_eq!(l, 2.0 + 4.0);
        let hinge_of_mean = (10.0f32 - (2.0 + 18.0) / 2.0).max(0.0);
        assert_ne!(l, 2.0 + hinge_of_mean);
    }

    #[test]
    fn losses_are_per_member() {
        let real = t(&[1.0, 1.0, 5.0, 7.0], &[2, 2]);
        let fake = t(&[0.0, 4.0, 30.0, 10.0], &[2, 2]);
        let m = t(&[5.0, 20.0], &[2]);
        // member 0: 1 + (5 + 1)/2 = 4; member 1: 6 + (0 + 10)/2 = 11
        let d = Vec::<f32>::try_from(discriminator(&real, &fake, &m)).unwrap();
        assert_eq!(d, [4.0, 11.0]);
        let g = Vec::<f32>::try_from(generator(&fake)).unwrap();
        assert_eq!(g, [2.0, 20.0]);
        // The hinge alone: member 0 (5 + 1)/2 = 3, member 1 (0 + 10)/2 = 5.
        let h = Vec::<f32>::try_from(hinge(&fake, &m)).unwrap();
        assert_eq!(h, [3.0, 5.0]);
    }
}
