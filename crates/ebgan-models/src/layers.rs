//! Member-batched layers: every tensor is `[K, B, features]`; member k only ever sees its own
//! weights, batch statistics and dropout mask.

use crate::vars::Vars;
use ebgan_core::member_wise::members;
use tch::{Kind, Tensor};

/// y = x W + b with W `[K, in, out]`: per member on the CPU, one batched matmul on CUDA.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(vars: &mut Vars, name: &str, inputs: i64, outputs: i64, init_std: &[f64]) -> Self {
        vars.sub(name, |v| Linear {
            weight: v.normal("weight", &[inputs, outputs], init_std),
            bias: v.constant("bias", &[1, outputs], 0.0),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let k = self.weight.size()[0];
        if !self.weight.device().is_cuda() {
            // On the CPU, every member makes the 2-D call it makes alone: MKL's batched kernels
            // sum in an order that depends on K and the member's position (width-1 shapes on
            // AMD, most shapes on Intel), its 2-D ones on the operands only
            // (ebgan_core::member_wise::members).
            let ys: Vec<Tensor> = members(x)
                .iter()
                .zip(members(&self.weight))
                .zip(self.bias.unbind(0))
                .map(|((x, w), b)| b.addmm(x, &w))
                .collect();
            return ebgan_core::member_wise::join(ys);
        }
        // On CUDA (cohorts compared within a tolerance there) a single run takes plain addmm,
        // whose backward avoids bmm's transposed copies.
        if k == 1 {
            self.bias
                .squeeze_dim(0)
                .addmm(&x.squeeze_dim(0), &self.weight.squeeze_dim(0))
                .unsqueeze(0)
        } else {
            self.bias.baddbmm(x, &self.weight, 1.0, 1.0)
        }
    }
}

/// Batch normalisation in training mode, statistics per member and feature over the batch.
pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub(crate) features: i64,
}

const BN_EPS: f64 = 1e-5;

impl BatchNorm {
    pub fn new(vars: &mut Vars, name: &str, features: i64) -> Self {
        vars.sub(name, |v| BatchNorm {
            gamma: v.constant("gamma", &[1, features], 1.0),
            beta: v.constant("beta", &[1, features], 0.0),
            features,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let [k, _, h] = x.size()[..] else {
            panic!("BatchNorm expects [K, B, H], got {:?}", x.size())
        };
        assert_eq!(h, self.features);
        if k == 1 || x.device().is_cuda() {
            return normalize(x, &self.gamma, &self.beta);
        }
        // On the CPU, member by member: the fused kernel over K * H channels vectorises a
        // member's channels differently by K and position, and the rounding noise of its
        // backward (the gradient of a bias feeding the norm is exactly 0, computed as noise)
        // reaches the weights through Adam. Alone, a run makes this very call.
        let parts: Vec<Tensor> = (0..k)
            .map(|i| {
                let one = |t: &Tensor| t.narrow(0, i, 1);
                normalize(&one(x), &one(&self.gamma), &one(&self.beta))
            })
            .collect();
        Tensor::cat(&parts, 0)
    }
}

/// libtorch's fused kernel normalises per channel over the batch: (member, feature) becomes the
/// channel axis of `x` `[K, B, H]`.
fn normalize(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let [k, b, h] = x.size()[..] else {
        unreachable!("checked by BatchNorm::forward")
    };
    let flat = x.transpose(0, 1).reshape([b, k * h]);
    let y = flat.batch_norm(
        Some(gamma.reshape([k * h])),
        Some(beta.reshape([k * h])),
        None::<Tensor>,
        None::<Tensor>,
        true,
        0.1,
        BN_EPS,
        true,
    );
    y.view([b, k, h]).transpose(0, 1)
}

/// Inverted dropout with a probability per member (0 = off) and masks drawn from the members'
/// own byte streams: a unit is kept when its byte is >= round(p * 256), so p is applied at a
/// resolution of 1/256 (exact for the paper's 0.5). Only members with p > 0 draw masks.
pub struct Dropout {
    threshold: Tensor,
    scale: Tensor,
    /// The members that draw masks, when not all do (their indices, and on the device).
    some: Option<(Vec<usize>, Tensor)>,
}

impl Dropout {
    /// `None` when no member uses dropout.
    pub fn new(p: &[f64], device: tch::Device) -> Option<Self> {
        if p.iter().all(|&p| p == 0.0) {
            return None;
        }
        let thresholds: Vec<i64> = p
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * 256.0).round().min(255.0) as i64)
            .collect();
        let scale: Vec<f32> = thresholds
            .iter()
            .map(|&t| 256.0 / (256 - t) as f32)
            .collect();
        let members: Vec<usize> = (0..p.len()).filter(|&k| p[k] > 0.0).collect();
        let some = (members.len() < p.len()).then(|| {
            let idx: Vec<i64> = members.iter().map(|&k| k as i64).collect();
            (members, Tensor::from_slice(&idx).to_device(device))
        });
        Some(Dropout {
            threshold: Tensor::from_slice(&thresholds)
                .view([-1, 1, 1])
                .to_device(device),
            scale: Tensor::from_slice(&scale)
                .view([-1, 1, 1])
                .to_device(device),
            some,
        })
    }

    /// The members that draw masks (None: all).
    pub fn members(&self) -> Option<&[usize]> {
        self.some.as_ref().map(|(m, _)| m.as_slice())
    }

    /// `x` `[K, B, H]` with mask bytes `[M, B, H]` of the M [`Dropout::members`].
    pub fn forward(&self, x: &Tensor, mask_bytes: &Tensor) -> Tensor {
        let bytes = match &self.some {
            // The others' bytes stay 0, which their threshold 0 keeps.
            Some((_, idx)) => x
                .zeros_like()
                .to_kind(Kind::Uint8)
                .index_copy(0, idx, mask_bytes),
            None => mask_bytes.shallow_clone(),
        };
        x * bytes.ge_tensor(&self.threshold) * &self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn linear_is_per_member() {
        let mut vars = Vars::new(&[1, 2], Device::Cpu);
        let mut lin = Linear::new(&mut vars, "l", 2, 1, &[1.0, 1.0]);
        tch::no_grad(|| {
            lin.weight
                .copy_(&Tensor::from_slice(&[1f32, 2., 10., 20.]).view([2, 2, 1]));
            lin.bias
                .copy_(&Tensor::from_slice(&[0.5f32, -1.]).view([2, 1, 1]));
        });
        let x = Tensor::from_slice(&[1f32, 1., 1., 1.]).view([2, 1, 2]);
        let y = Vec::<f32>::try_from(lin.forward(&x).flatten(0, -1)).unwrap();
        assert_eq!(y, [3.5, 29.0]);
        assert_eq!(vars.named()[0].0, "l.weight");
    }

    #[test]
    fn batch_norm_statistics_are_per_member() {
        // Member 0 batch (0, 2) -> (-1, 1); member 1 batch (100, 300) -> (-1, 1) as well.
        // Shared statistics over both members would map member 0 to about (-1, -1).
        let mut vars = Vars::new(&[1, 2], Device::Cpu);
        let bn = BatchNorm::new(&mut vars, "bn", 1);
        let x = Tensor::from_slice(&[0f32, 2., 100., 300.]).view([2, 2, 1]);
        let y = Vec::<f32>::try_from(bn.forward(&x).flatten(0, -1)).unwrap();
        for (a, b) in y.iter().zip([-1.0, 1.0, -1.0, 1.0]) {
            assert!((a - b).abs() < 1e-3, "{y:?}");
        }
    }

    #[test]
    fn dropout_uses_each_members_mask_and_probability() {
        // Members 0 and 2: p = 0.5 (keep bytes >= 128, scale 2); member 1: off, and no bytes.
        let x = Tensor::ones([3, 1, 4], (Kind::Float, Device::Cpu));
        let bytes = Tensor::from_slice(&[0u8, 127, 128, 255, 255, 255, 0, 0]).view([2, 1, 4]);
        let d = Dropout::new(&[0.5, 0.0, 0.5], Device::Cpu).unwrap();
        assert_eq!(d.members(), Some(&[0, 2][..]));
        let y = Vec::<f32>::try_from(d.forward(&x, &bytes).flatten(0, -1)).unwrap();
        assert_eq!(
            y,
            [0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0]
        );
        let all = Dropout::new(&[0.5, 0.25], Device::Cpu).unwrap();
        assert_eq!(all.members(), None);
        assert!(Dropout::new(&[0.0, 0.0], Device::Cpu).is_none());
    }
}
