//! The batch-invariance self-check: on the CPU, every op a cohort member goes through gives the
//! member the bits it gets alone, whatever the cohort's size K and the member's position, for
//! every layer shape of Table 1's networks, forward and backward. `just test-isa` runs it under
//! Intel's and the other vendors' MKL paths (scripts/mkl-vendor.c), so it holds on either
//! machine. Whole trainings are checked the same way in ebgan-exp's `train::` tests.

use crate::layers::{BatchNorm, Linear};
use ebgan_core::{member_wise, pulling_away::pulling_away, wgan_gp, Energy};
use tch::{Device, Kind, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    Vec::<f32>::try_from(t.flatten(0, -1))
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

/// Cohort `[K, ...]` from `member` `[1, ...]` at `position` among K - 1 random others.
fn cohort(member: &Tensor, k: i64, position: i64) -> Tensor {
    let parts: Vec<Tensor> = (0..k)
        .map(|i| {
            if i == position {
                member.shallow_clone()
            } else {
                randn(&member.size()) * 0.5
            }
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// What `f` gives member 0 of `inputs` (each `[K, ...]`): its output and its rows of the
/// gradients of sum(output * upstream) with respect to every input.
fn member_result(
    f: &dyn Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    upstream: &Tensor,
    position: i64,
) -> Vec<Vec<u32>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().set_requires_grad(true))
        .collect();
    let out = f(&leaves);
    let grads = Tensor::run_backward(&[(&out * upstream).sum(Kind::Float)], &leaves, false, false);
    std::iter::once(&out)
        .chain(&grads)
        .map(|t| {
            assert!(
                t.numel() > 0,
                "an empty result {:?} of {:?}",
                t.size(),
                out.size()
            );
            bits(&t.narrow(0, position, 1))
        })
        .collect()
}

/// Asserts that the member `member` (inputs `[1, ...]`) gets, in cohorts of 2 and 3 at every
/// position, the output and gradients it gets alone.
fn assert_invariant(what: &str, member: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) {
    let leaves: Vec<Tensor> = member
        .iter()
        .map(|t| t.detach().set_requires_grad(true))
        .collect();
    let upstream = randn(&f(&leaves).size());
    let alone = member_result(f, member, &upstream, 0);
    for k in 2..=3 {
        for position in 0..k {
            let inputs: Vec<Tensor> = member.iter().map(|m| cohort(m, k, position)).collect();
            let up = cohort(&upstream, k, position);
            let got = member_result(f, &inputs, &up, position);
            for (i, (a, b)) in alone.iter().zip(&got).enumerate() {
                let part = if i == 0 {
                    "output".to_string()
                } else {
                    format!("gradient of input {}", i - 1)
                };
                let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert!(
                    differ == 0,
                    "{what}: member at position {position} of a cohort of {k}: {differ} of {} values of its {part} differ from alone",
                    a.len()
                );
            }
        }
    }
}

/// Every (inputs, outputs) of Table 1's linear layers: G z -> size_g -> ... -> 784, D
/// 784 -> size_d -> ... -> 784 (EBGAN's auto-encoder) or 1 (GAN's logit).
fn table1_linear_shapes() -> Vec<(i64, i64)> {
    let mut shapes = vec![];
    for g in [400, 800, 1600, 3200] {
        shapes.extend([(100, g), (g, g), (g, 784)]);
    }
    for d in [128, 256, 512, 1024] {
        shapes.extend([(784, d), (d, d), (d, 784), (d, 1)]);
    }
    shapes
}

fn linear(inputs: &[Tensor]) -> Tensor {
    let lin = Linear {
        weight: inputs[1].shallow_clone(),
        bias: inputs[2].shallow_clone(),
    };
    lin.forward(&inputs[0])
}

#[test]
fn linear_layers_of_table1_are_batch_invariant() {
    tch::manual_seed(11);
    let mut cases: Vec<(i64, i64, i64)> = table1_linear_shapes()
        .into_iter()
        .map(|(i, o)| (64, i, o))
        .collect();
    // A batch of 10: a member's rows then start 40 bytes apart per width unit, off any vector
    // alignment (the slices a cohort's backward hands each member).
    cases.extend([(10, 100, 400), (10, 128, 1), (10, 1024, 784)]);
    for (b, i, o) in cases {
        let member = [
            randn(&[1, b, i]),
            randn(&[1, i, o]) * 0.05,
            randn(&[1, 1, o]),
        ];
        assert_invariant(&format!("Linear {i} -> {o}, batch {b}"), &member, &linear);
    }
}

#[test]
fn batch_norm_pulling_away_energies_and_penalty_are_batch_invariant() {
    tch::manual_seed(12);
    for h in [128, 400, 1024] {
        let member = [
            randn(&[1, 64, h]) * 3.0 + 1.0,
            randn(&[1, 1, h]),
            randn(&[1, 1, h]),
        ];
        let bn = |t: &[Tensor]| {
            let bn = BatchNorm {
                gamma: t[1].shallow_clone(),
                beta: t[2].shallow_clone(),
                features: h,
            };
            bn.forward(&t[0])
        };
        assert_invariant(&format!("BatchNorm over {h}"), &member, &bn);
        let pt = |t: &[Tensor]| pulling_away(&t[0].relu());
        assert_invariant(
            &format!("pulling-away over codes of {h}"),
            &member[..1],
            &pt,
        );
    }
    let x = [randn(&[1, 64, 784]), randn(&[1, 64, 784])];
    let energy = |t: &[Tensor]| {
        let recon = member_wise(&t[0], Tensor::tanh);
        let e = Energy::L2.of(&recon, &t[1]);
        ebgan_core::loss::discriminator(
            &e,
            &e.flip([1]),
            &Tensor::full([t[0].size()[0]], 30.0, (Kind::Float, Device::Cpu)),
        )
    };
    assert_invariant("tanh, L2 energy and the margin loss over 784", &x, &energy);
    // WGAN-GP's penalty: the double backward through a critic's layers.
    let critic = [
        randn(&[1, 64, 784]),
        randn(&[1, 784, 128]) * 0.05,
        randn(&[1, 1, 128]),
        randn(&[1, 128, 1]) * 0.1,
        randn(&[1, 1, 1]),
    ];
    let penalty = |t: &[Tensor]| {
        let hidden = Linear {
            weight: t[1].shallow_clone(),
            bias: t[2].shallow_clone(),
        };
        let out = Linear {
            weight: t[3].shallow_clone(),
            bias: t[4].shallow_clone(),
        };
        let values = out.forward(&hidden.forward(&t[0]).relu()).squeeze_dim(-1);
        // The critic's loss, with the term that reaches the output bias (the penalty does not).
        values.mean_dim(1, false, None) + wgan_gp::gradient_penalty(&values, &t[0]) * 10.0
    };
    assert_invariant(
        "WGAN-GP's penalty through 784 -> 128 -> 1",
        &critic,
        &penalty,
    );
}
