//! Element-wise functions that round differently by where an element sits in its tensor, and
//! each member's operands for the BLAS calls made per member ([`members`]).
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

/// Each member's slab of `x` `[K, ...]` as a tensor `[...]` laid out as it is when the member
/// runs alone: contiguous, starting on a 64-byte boundary (a fresh allocation's alignment). A
/// slab that already is stays a view; another is copied. A BLAS call on these sees the same
/// sizes, strides and alignment in any cohort and at any position, and its result depends on
/// nothing else. Gradients flow back to `x`.
pub fn members(x: &Tensor) -> Vec<Tensor> {
    x.unbind(0)
        .into_iter()
        .map(|m| {
            if !m.is_contiguous() {
                m.contiguous() // a fresh allocation
            } else if !(m.data_ptr() as usize).is_multiple_of(ALIGNMENT) {
                m.copy()
            } else {
                m
            }
        })
        .collect()
}

/// Members' results `[...]` as one cohort tensor `[K, ...]` (a view for a single run, no copy).
pub fn join(mut parts: Vec<Tensor>) -> Tensor {
    if parts.len() == 1 {
        return parts.pop().expect("one part").unsqueeze(0);
    }
    Tensor::stack(&parts, 0)
}

/// libtorch's CPU allocator aligns every allocation to 64 bytes.
const ALIGNMENT: usize = 64;

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

    #[test]
    fn members_are_contiguous_aligned_and_carry_gradients() {
        // Batch 10 of width 1: member k starts 40 k bytes in, off a 64-byte boundary for k odd.
        let x = Tensor::arange(30, (Kind::Float, Device::Cpu))
            .view([3, 10, 1])
            .set_requires_grad(true);
        let m = members(&x);
        for (k, t) in m.iter().enumerate() {
            assert!(
                t.is_contiguous() && (t.data_ptr() as usize).is_multiple_of(64),
                "member {k}"
            );
            assert_eq!(bits(t), bits(&x.narrow(0, k as i64, 1)));
        }
        // d/dx of sum_k (k + 1) sum(member k) is k + 1 on member k's slab.
        let loss = m.iter().enumerate().fold(
            Tensor::zeros([], (Kind::Float, Device::Cpu)),
            |acc, (k, t)| acc + t.sum(Kind::Float) * (k as f64 + 1.0),
        );
        let grad = Tensor::run_backward(&[loss], &[&x], false, false)
            .pop()
            .unwrap();
        let want: Vec<f32> = (0..30).map(|i| (i / 10 + 1) as f32).collect();
        assert_eq!(Vec::<f32>::try_from(grad.flatten(0, -1)).unwrap(), want);
        // A transposed cohort's slabs are copied into rows of their own.
        let t = Tensor::arange(24, (Kind::Float, Device::Cpu))
            .view([4, 2, 3])
            .transpose(0, 1);
        for (k, m) in members(&t).iter().enumerate() {
            assert!(m.is_contiguous());
            assert_eq!(bits(m), bits(&t.narrow(0, k as i64, 1).contiguous()));
        }
    }
}
