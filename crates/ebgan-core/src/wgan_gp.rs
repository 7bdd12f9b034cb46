//! WGAN-GP (Gulrajani et al. 2017, arXiv 1704.00028, Algorithm 1): a critic D with unbounded
//! output, its loss D(G(z)) - D(x) + lambda (||grad_x_hat D(x_hat)||_2 - 1)^2 on random
//! interpolates x_hat = eps x + (1 - eps) G(z), and G's loss -D(G(z)). All per member `[K]`.

use tch::Tensor;

/// x_hat = eps x + (1 - eps) fake, with `eps` uniform in [0, 1), one per sample: `[K, B]` for
/// `x`, `fake` `[K, B, ...]` (a cohort), or `[B]` for `[B, ...]` (a convolutional run). The
/// result is a fresh leaf that requires grad, so that the penalty can differentiate D with
/// respect to it.
pub fn interpolates(x: &Tensor, fake: &Tensor, eps: &Tensor) -> Tensor {
    let mut shape = eps.size();
    shape.extend(std::iter::repeat_n(1, x.dim() - eps.dim()));
    let eps = eps.view(shape.as_slice());
    let x_hat = (&eps * x + (eps.neg() + 1.0) * fake).detach();
    x_hat.set_requires_grad(true)
}

/// (||grad D(x_hat)||_2 - 1)^2 averaged over each member's samples `[K]`, from the critic's
/// values `[K, B]` at `x_hat` (`[K, B, ...]`, or `[B, ...]` with K = 1). The gradient keeps
/// its graph (double backward), so that D's loss differentiates through it. Members never mix:
/// sample b of member k depends on its own x_hat alone.
pub fn gradient_penalty(values: &Tensor, x_hat: &Tensor) -> Tensor {
    let grad = Tensor::run_backward(&[values.sum(None)], &[x_hat], true, true)
        .pop()
        .expect("one gradient per input");
    // [K, B, ...] -> [K, B]: the L2 norm of each sample's gradient. ATen's norm, not
    // sqrt(sum(g^2)): its backward is 0 where a gradient is all zeros (a sample on which every
    // unit is dropped or dead), where sqrt's would be inf * 0 = NaN in every weight.
    let mut per_sample = values.size();
    per_sample.push(-1);
    let norm = grad
        .reshape(per_sample.as_slice())
        .norm_scalaropt_dim(2, [-1].as_slice(), false);
    (norm - 1.0).square().mean_dim(1, false, None)
}

/// The critic's loss `[K]`: mean D(fake) - mean D(real) + lambda * penalty, `lambda` `[K]`.
pub fn critic(real: &Tensor, fake: &Tensor, penalty: &Tensor, lambda: &Tensor) -> Tensor {
    fake.mean_dim(1, false, None) - real.mean_dim(1, false, None) + lambda * penalty
}

/// G's loss `[K]`: -mean D(G(z)).
pub fn generator(fake: &Tensor) -> Tensor {
    -fake.mean_dim(1, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
    }

    #[test]
    fn interpolates_lie_on_each_samples_segment() {
        let x = Tensor::from_slice(&[1f32, 1., 3., 3.]).view([1, 2, 2]);
        let fake = Tensor::from_slice(&[-1f32, -1., 0., 0.]).view([1, 2, 2]);
        let eps = Tensor::from_slice(&[0.25f32, 1.0]).view([1, 2]);
        let x_hat = interpolates(&x, &fake, &eps);
        // 0.25 * 1 + 0.75 * -1 = -0.5; 1 * 3 + 0 * 0 = 3.
        assert_eq!(values(&x_hat), [-0.5, -0.5, 3.0, 3.0]);
        assert!(x_hat.requires_grad());
    }

    #[test]
    fn penalty_of_a_linear_critic_is_its_slope_against_one() {
        // D(v) = w . v has gradient w everywhere: penalty (|w| - 1)^2, whatever x_hat is.
        // Member 0: w = (3, 4), |w| = 5 -> 16. Member 1: w = (0.6, 0.8), |w| = 1 -> 0.
        let w = Tensor::from_slice(&[3f32, 4., 0.6, 0.8]).view([2, 1, 2]);
        let x_hat = Tensor::randn([2, 3, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let d = (&x_hat * &w).sum_dim_intlist(-1, false, None);
        let p = values(&gradient_penalty(&d, &x_hat));
        assert!((p[0] - 16.0).abs() < 1e-4 && p[1].abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn penalty_differentiates_through_the_critics_gradient() {
        // D(v) = a v^2 / 2 on one scalar sample at v = 2: grad = 2a, penalty (2a - 1)^2, whose
        // derivative in a is 4 (2a - 1) = 12 at a = 2. A penalty computed without a graph
        // would give no gradient at all.
        let a = Tensor::from_slice(&[2f32]).set_requires_grad(true);
        let x_hat = Tensor::from_slice(&[2f32])
            .view([1, 1, 1])
            .set_requires_grad(true);
        let d = (&a * x_hat.square() / 2.0).view([1, 1]);
        let p = gradient_penalty(&d, &x_hat);
        assert!((values(&p)[0] - 9.0).abs() < 1e-5);
        let grad = Tensor::run_backward(&[p.sum(None)], &[&a], false, false);
        assert!((values(&grad[0])[0] - 12.0).abs() < 1e-4);
    }

    #[test]
    fn a_sample_with_zero_gradient_gives_a_finite_penalty_gradient() {
        // D(v) = a * relu(v) at v = -1: grad 0, penalty (0 - 1)^2 = 1, d/da = 0 (not NaN).
        let a = Tensor::from_slice(&[2f32]).set_requires_grad(true);
        let x_hat = Tensor::from_slice(&[-1f32])
            .view([1, 1, 1])
            .set_requires_grad(true);
        let d = (&a * x_hat.relu()).view([1, 1]);
        let p = gradient_penalty(&d, &x_hat);
        assert_eq!(values(&p), [1.0]);
        let grad = Tensor::run_backward(&[p.sum(None)], &[&a], false, false);
        assert_eq!(values(&grad[0]), [0.0]);
    }

    #[test]
    fn losses_match_hand_values() {
        let real = Tensor::from_slice(&[1f32, 3.]).view([1, 2]);
        let fake = Tensor::from_slice(&[-2f32, 0.]).view([1, 2]);
        let penalty = Tensor::from_slice(&[0.5f32]);
        let lambda = Tensor::from_slice(&[10f32]);
        // -1 - 2 + 10 * 0.5 = 2; G: -(-1) = 1.
        assert_eq!(values(&critic(&real, &fake, &penalty, &lambda)), [2.0]);
        assert_eq!(values(&generator(&fake)), [1.0]);
    }
}
