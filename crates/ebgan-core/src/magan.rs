//! MAGAN (Wang, Zhang, Ding, Tao 2017, arXiv 1704.03817): EBGAN's losses with a margin that
//! adapts. D is first pretrained on real data and the margin starts at the mean real energy;
//! at each epoch's end, with S_real and S_fake the epoch's sums of real and fake energies over N
//! samples, m <- S_real / N when
//!   S_real / N < m  and  S_real < S_fake  and  S_fake(previous epoch) < S_fake.
//! Every epoch has the same N here, so the rule is applied to epoch means (sums / N): the same
//! decisions. Whether the comparisons are strict is a per-member flag (docs/decisions.md).

use tch::Tensor;

/// The margins `[K]` after an epoch with mean real energy `real`, mean fake energy `fake` and
/// the previous epoch's mean fake energy `previous_fake` (+inf before the first epoch: no
/// previous epoch, no update), all `[K]`; `strict` `[K]` bool picks `<` over `<=`.
pub fn adapt_margin(
    margin: &Tensor,
    real: &Tensor,
    fake: &Tensor,
    previous_fake: &Tensor,
    strict: &Tensor,
) -> Tensor {
    let below = |a: &Tensor, b: &Tensor| a.lt_tensor(b).where_self(strict, &a.le_tensor(b));
    let update = below(real, margin)
        .logical_and(&below(real, fake))
        .logical_and(&below(previous_fake, fake));
    real.where_self(&update, margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t).unwrap()
    }

    #[test]
    fn the_margin_drops_to_the_real_energy_only_when_all_three_conditions_hold() {
        let m = t(&[10., 10., 10., 10., 10.]);
        // 0: all hold (4 < 10, 4 < 7, 6 < 7) -> 4
        // 1: real above the margin (12 > 10) -> kept
        // 2: real above fake (8 > 7) -> kept
        // 3: fake fell since the previous epoch (8 > 7) -> kept
        // 4: first epoch, previous +inf -> kept
        let real = t(&[4., 12., 8., 4., 4.]);
        let fake = t(&[7., 13., 7., 7., 7.]);
        let prev = t(&[6., 6., 6., 8., f32::INFINITY]);
        let strict = Tensor::ones([5], (tch::Kind::Bool, tch::Device::Cpu));
        let out = adapt_margin(&m, &real, &fake, &prev, &strict);
        assert_eq!(values(&out), [4., 10., 10., 10., 10.]);
    }

    #[test]
    fn ties_update_only_when_not_strict() {
        // real 4 < m 10, real 4 < fake 7, previous fake 7 == fake 7: a tie on the third rule.
        let (m, real, fake, prev) = (t(&[10., 10.]), t(&[4., 4.]), t(&[7., 7.]), t(&[7., 7.]));
        let strict = Tensor::from_slice(&[true, false]);
        let out = adapt_margin(&m, &real, &fake, &prev, &strict);
        assert_eq!(values(&out), [10., 4.]);
    }
}
