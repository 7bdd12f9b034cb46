//! BEGAN (Berthelot, Schumm, Metz 2017, arXiv 1703.10717): an auto-encoder D whose energy is the
//! per-pixel mean of |v - D(v)|^eta, balanced by a control variable k_t:
//! L_D = L(x) - k_t L(G(z_D)),  L_G = L(G(z_G)),
//! k_{t+1} = clip_[0,1](k_t + lambda_k (gamma L(x) - L(G(z_G)))), both L by the same D (before
//! its update: train/adaptive.rs),
//! and the convergence measure M_global = L(x) + |gamma L(x) - L(G(z_G))|.

use tch::Tensor;

/// Energies `[K, B]` of reconstructions `recon` of `x` (both `[K, B, ...]`): the per-sample mean
/// over pixels of |x - recon|^eta.
pub fn energy(recon: &Tensor, x: &Tensor, eta: f64) -> Tensor {
    let diff = (recon - x).flatten(2, -1).abs();
    // eta = 1 stays a plain abs: pow(|d|, 1) would back-propagate through 0^0.
    let powered = if eta == 1.0 {
        diff
    } else {
        crate::member_wise(&diff, |d| d.pow_tensor_scalar(eta))
    };
    powered.mean_dim([-1i64].as_slice(), false, None)
}

/// L_D per member `[K]` from energies `[K, B]` and control variables k `[K]`.
pub fn discriminator(energy_real: &Tensor, energy_fake: &Tensor, k: &Tensor) -> Tensor {
    energy_real.mean_dim(1, false, None) - k * energy_fake.mean_dim(1, false, None)
}

/// k_{t+1} `[K]` from k_t, the step's mean real energy L(x) and G's loss L(G(z_G)), all `[K]`;
/// `gamma` and `lambda_k` are per member `[K]` too.
pub fn update_k(
    k: &Tensor,
    real: &Tensor,
    fake_g: &Tensor,
    gamma: &Tensor,
    lambda_k: &Tensor,
) -> Tensor {
    (k + lambda_k * (gamma * real - fake_g)).clamp(0.0, 1.0)
}

/// M_global `[K]`: L(x) + |gamma L(x) - L(G(z_G))|.
pub fn convergence(real: &Tensor, fake_g: &Tensor, gamma: &Tensor) -> Tensor {
    real + (gamma * real - fake_g).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn energy_is_the_mean_of_powered_absolute_errors() {
        // One member, two samples of 2 pixels: errors (3, -1) and (0, 2).
        let x = Tensor::zeros([1, 2, 2], (tch::Kind::Float, tch::Device::Cpu));
        let recon = t(&[3., -1., 0., 2.]).view([1, 2, 2]);
        assert_eq!(values(&energy(&recon, &x, 1.0)), [2.0, 1.0]); // (3+1)/2, (0+2)/2
        assert_eq!(values(&energy(&recon, &x, 2.0)), [5.0, 2.0]); // (9+1)/2, (0+4)/2
    }

    #[test]
    fn discriminator_loss_weights_the_fakes_by_k() {
        // Member 0: L(x) = 2, L(G(z)) = 6, k = 0.5 -> 2 - 3 = -1; member 1: k = 0 -> L(x) = 1.
        let real = t(&[1., 3., 1., 1.]).view([2, 2]);
        let fake = t(&[4., 8., 9., 9.]).view([2, 2]);
        assert_eq!(
            values(&discriminator(&real, &fake, &t(&[0.5, 0.0]))),
            [-1.0, 1.0]
        );
    }

    #[test]
    fn k_moves_by_lambda_times_the_imbalance_and_is_clipped_to_the_unit_interval() {
        let gamma = t(&[0.5, 0.5, 0.5, 1.0]);
        let lambda = t(&[0.001, 0.001, 0.1, 0.1]);
        // 0: 0.2 + 0.001 (0.5*4 - 1) = 0.201
        // 1: 0 + 0.001 (0.5*2 - 3) = -0.002 -> 0
        // 2: 0.95 + 0.1 (0.5*4 - 1) = 1.05 -> 1
        // 3: 0.5 + 0.1 (1*2 - 2.5) = 0.45
        let k = update_k(
            &t(&[0.2, 0.0, 0.95, 0.5]),
            &t(&[4., 2., 4., 2.]),
            &t(&[1., 3., 1., 2.5]),
            &gamma,
            &lambda,
        );
        let want = [0.201f32, 0.0, 1.0, 0.45];
        for (a, b) in values(&k).iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{:?} vs {want:?}", values(&k));
        }
    }

    #[test]
    fn convergence_measure_by_hand() {
        // 4 + |0.5*4 - 1| = 5;  2 + |0.5*2 - 3| = 4
        let m = convergence(&t(&[4., 2.]), &t(&[1., 3.]), &t(&[0.5, 0.5]));
        assert_eq!(values(&m), [5.0, 4.0]);
    }
}
