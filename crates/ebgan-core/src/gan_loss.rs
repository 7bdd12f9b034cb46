//! GAN baseline: logistic discriminator, non-saturating generator loss (Goodfellow et al. 2014).

use crate::member_wise;
use tch::Tensor;

/// -log sigmoid(real) - log(1 - sigmoid(fake)), per member `[K]` from logits `[K, B]`.
pub fn discriminator(logit_real: &Tensor, logit_fake: &Tensor) -> Tensor {
    // -log sigmoid(a) = softplus(-a); -log(1 - sigmoid(a)) = softplus(a).
    member_wise(&(-logit_real), Tensor::softplus).mean_dim(1, false, None)
        + member_wise(logit_fake, Tensor::softplus).mean_dim(1, false, None)
}

/// Non-saturating generator loss -log sigmoid(fake), per member `[K]`.
pub fn generator(logit_fake: &Tensor) -> Tensor {
    member_wise(&(-logit_fake), Tensor::softplus).mean_dim(1, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_losses_match_hand_values() {
        // logit 0 -> p = 1/2, each term is ln 2. logit ln 3 -> p = 3/4.
        let real = Tensor::from_slice(&[0f32, 3f32.ln()]).view([1, 2]);
        let fake = Tensor::from_slice(&[0f32, 3f32.ln()]).view([1, 2]);
        let d = f64::try_from(discriminator(&real, &fake)).unwrap();
        // real: (ln 2 + ln(4/3)) / 2; fake: (ln 2 + ln 4) / 2
        let want = (2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0 + (2f64.ln() + 4f64.ln()) / 2.0;
        assert!((d - want).abs() < 1e-6, "{d} vs {want}");
        let g = f64::try_from(generator(&fake)).unwrap();
        assert!((g - (2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0).abs() < 1e-6);
    }
}
