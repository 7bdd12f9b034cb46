//! Element-wise functions that round differently by where an element sits in its tensor.
//!
//! On the CPU, ATen evaluates exp, log, tanh, sigmoid, softplus and pow with vector code for
//! most of a tensor and with scalar code for its last few elements (fewer than two vector
//! widths), and the two approximations do not round alike. Applied to a whole cohort
//! `[K, ...]`, which of a member's elements fall in that tail would depend on K and on the
//! member's position, so a run would end elsewhere alone than in a cohort. Applying such a
//! function to each member's slab `[1, ...]` on its own gives every member the layout it has
//! alone, by construction. Arithmetic (+, -, *, /, sqrt, comparisons) is correctly rounded in
//! both code paths and needs none of this. On CUDA the whole tensor is one launch (cohorts
//! there are compared within a stated tolerance, docs/performance.md).

use tch::Tensor;

/// `f` of `x` `[K, ...]`, applied member by member on the CPU.
pub fn member_wise(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let k = x.size().first().copied().unwrap_or(1);
    if k <= 1 || x.device().is_cuda() {
        return f(x);
    }
    let parts: Vec<Tensor> = x.split(1, 0).iter().map(&f).collect();
    Tensor::cat(&parts, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn bits(t: &Tensor) -> Vec<u32> {
        Vec::<f32>::try_from(t.flatten(0, -1))
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn each_member_gets_the_bits_it_gets_alone() {
        // 10 x 12 = 120 values per member: with AVX2 or AVX-512 kernels some of a member's
        // values land in the scalar tail of the whole cohort but not alone, or the other way.
        tch::manual_seed(3);
        let x = Tensor::randn([3, 10, 12], (Kind::Float, Device::Cpu)) * 4.0;
        let f = |t: &Tensor| t.softplus() + t.sigmoid() + t.tanh() + t.abs().pow_tensor_scalar(2.5);
        let whole = member_wise(&x, f);
        for k in 0..3 {
            let alone = f(&x.narrow(0, k, 1).contiguous());
            assert_eq!(bits(&whole.narrow(0, k, 1)), bits(&alone), "member {k}");
        }
    }
}
