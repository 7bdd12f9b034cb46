//! Convolutional networks of paper §4.3-4.4 (paper.md §5-§6): the DCGAN generator, EBGAN's
//! convolutional auto-encoder discriminator, DCGAN's logistic discriminator, and the ImageNet
//! generator that takes noise planes at every resolution. Large enough to train one run at a
//! time, so no member dimension.

use crate::rng::normal;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ConvConfig, ConvTransposeConfig, Module, ModuleT};
use tch::Tensor;

/// Which generator family: DCGAN's (64x64, paper §4.3) or the ImageNet one (§4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvArch {
    /// z -> 4x4x(2^(n-1) g) -> ... -> (g) -> image by a final 4c2s transposed convolution.
    Dcgan,
    /// z -> 4x4x(16 g) -> halving widths down to g at every 2x upsampling (noise planes
    /// concatenated before each), then a 3x3 convolution to the image.
    Imagenet,
}

/// Shapes of the convolutional networks; `Default` is paper.md §5's 64x64 DCGAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub arch: ConvArch,
    /// Image side: a power of two >= 16.
    pub image_size: i64,
    pub channels: i64,
    pub z_dim: i64,
    pub g_base: i64,
    /// Auto-encoder: encoder (e)4c2s-(2e)4c2s-... down to 8x8 (widths capped at 8e), decoder mirror.
    pub ae_base: i64,
    /// DCGAN D: (d)4c2s-(2d)4c2s-... down to 4x4 (widths capped at 8d), then (1)4c.
    pub d_base: i64,
    /// ImageNet G: noise channels concatenated at the input of every upsampling stage.
    pub noise_planes: i64,
}

impl Default for ConvSpec {
    fn default() -> Self {
        ConvSpec {
            arch: ConvArch::Dcgan,
            image_size: 64,
            channels: 3,
            z_dim: 100,
            g_base: 64,
            ae_base: 64,
            d_base: 64,
            noise_planes: 0,
        }
    }
}

impl ConvSpec {
    /// Paper §4.3: DCGAN G and EBGAN's auto-encoder at 64x64 (CelebA, LSUN), RGB.
    pub fn dcgan_64() -> Self {
        ConvSpec::default()
    }

    /// Paper §4.4: the ImageNet generator with 4 noise planes at every upsampling, 128x128.
    pub fn imagenet_128() -> Self {
        ConvSpec {
            arch: ConvArch::Imagenet,
            image_size: 128,
            noise_planes: 4,
            ..ConvSpec::default()
        }
    }

    /// Paper §4.4: the same at 256x256 (the dog breeds), one stage more.
    pub fn imagenet_256() -> Self {
        ConvSpec {
            image_size: 256,
            ..ConvSpec::imagenet_128()
        }
    }

    /// 2x steps between `from` and the image side.
    fn doublings(&self, from: i64) -> usize {
        assert!(
            self.image_size >= 16 && (self.image_size as u64).is_power_of_two(),
            "image_size must be a power of two >= 16, got {}",
            self.image_size
        );
        (self.image_size / from).trailing_zeros() as usize
    }

    /// Feature maps of G from the 4x4 projection up to the last hidden layer.
    /// DCGAN 64: [512, 256, 128, 64]; ImageNet 128: [1024, 512, 256, 128, 64, 64].
    pub fn g_widths(&self) -> Vec<i64> {
        let b = self.g_base;
        match self.arch {
            ConvArch::Dcgan => {
                let n = self.doublings(4);
                (0..n).map(|i| b << (n - 1 - i)).collect()
            }
            ConvArch::Imagenet => (0..=self.doublings(4))
                .map(|i| ((16 * b) >> i).max(b))
                .collect(),
        }
    }

    /// Encoder widths down to 8x8: 64 -> [64, 128, 256]; 128 -> [64, 128, 256, 512].
    pub fn encoder_widths(&self) -> Vec<i64> {
        (0..self.doublings(8))
            .map(|i| self.ae_base << i.min(3))
            .collect()
    }

    /// Spatial sides of the noise planes (the input of each upsampling stage): 4, 8, ... side/2.
    pub fn noise_sides(&self) -> Vec<i64> {
        match self.arch {
            ConvArch::Imagenet if self.noise_planes > 0 => {
                (0..self.doublings(4)).map(|i| 4 << i).collect()
            }
            _ => vec![],
        }
    }
}

fn down(vs: nn::Path, i: i64, o: i64) -> nn::Conv2D {
    nn::conv2d(
        vs,
        i,
        o,
        4,
        ConvConfig {
            stride: 2,
            padding: 1,
            bias: false,
            ..Default::default()
        },
    )
}

fn up(vs: nn::Path, i: i64, o: i64, stride: i64, padding: i64) -> nn::ConvTranspose2D {
    nn::conv_transpose2d(
        vs,
        i,
        o,
        4,
        ConvTransposeConfig {
            stride,
            padding,
            bias: false,
            ..Default::default()
        },
    )
}

fn bn(vs: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(vs, c, Default::default())
}

/// DCGAN's LeakyReLU slope (tch's `leaky_relu` is fixed at PyTorch's default 0.01).
fn lrelu(h: &Tensor) -> Tensor {
    h.maximum(&(h * 0.2))
}

/// DCGAN-style generator: transposed convolutions with batch norm and ReLU, tanh output.
pub struct Generator {
    spec: ConvSpec,
    hidden: Vec<(nn::ConvTranspose2D, nn::BatchNorm)>,
    out: OutLayer,
}

enum OutLayer {
    Up(nn::ConvTranspose2D),
    Conv3(nn::Conv2D),
}

impl Generator {
    pub fn new(vs: &nn::Path, s: &ConvSpec) -> Self {
        let w = s.g_widths();
        let planes = |i: usize| {
            if s.noise_sides().is_empty() || i == 0 {
                0
            } else {
                s.noise_planes
            }
        };
        let hidden = (0..w.len())
            .map(|i| {
                let (input, stride, padding) = match i {
                    0 => (s.z_dim, 1, 0),
                    _ => (w[i - 1] + planes(i), 2, 1),
                };
                (
                    up(vs / format!("up{i}"), input, w[i], stride, padding),
                    bn(vs / format!("bn{i}"), w[i]),
                )
            })
            .collect();
        let last = *w.last().unwrap();
        let out = match s.arch {
            ConvArch::Dcgan => OutLayer::Up(up(vs / "out", last, s.channels, 2, 1)),
            ConvArch::Imagenet => OutLayer::Conv3(nn::conv2d(
                vs / "out",
                last,
                s.channels,
                3,
                ConvConfig {
                    padding: 1,
                    bias: false,
                    ..Default::default()
                },
            )),
        };
        Generator {
            spec: s.clone(),
            hidden,
            out,
        }
    }

    /// `[B, z_dim]` (and, for the ImageNet G, one `[B, noise_planes, r, r]` tensor per side of
    /// [`ConvSpec::noise_sides`]) -> `[B, channels, side, side]` in [-1, 1].
    pub fn forward(&self, z: &Tensor, planes: &[Tensor], train: bool) -> Tensor {
        assert_eq!(
            planes.len(),
            self.spec.noise_sides().len(),
            "one noise plane tensor per resolution"
        );
        let mut h = z.view([-1, self.spec.z_dim, 1, 1]);
        for (i, (conv, norm)) in self.hidden.iter().enumerate() {
            // Planes at side 4 << (i-1) enter the i-th upsampling.
            if i > 0 && !planes.is_empty() {
                h = Tensor::cat(&[&h, &planes[i - 1]], 1);
            }
            h = norm.forward_t(&conv.forward(&h), train).relu();
        }
        match &self.out {
            OutLayer::Up(c) => c.forward(&h),
            OutLayer::Conv3(c) => c.forward(&h),
        }
        .tanh()
    }
}

/// EBGAN's D: a convolutional auto-encoder; its energy is the reconstruction error.
pub struct AutoEncoder {
    encoder: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    decoder: Vec<(nn::ConvTranspose2D, Option<nn::BatchNorm>)>,
}

pub struct AutoEncoderOutput {
    pub reconstruction: Tensor,
    /// Encoder output `[B, C, 8, 8]`: the representation of the pulling-away term.
    pub code: Tensor,
}

impl AutoEncoder {
    pub fn new(vs: &nn::Path, s: &ConvSpec) -> Self {
        let enc: Vec<i64> = std::iter::once(s.channels)
            .chain(s.encoder_widths())
            .collect();
        let dec: Vec<i64> = enc.iter().rev().copied().collect();
        let n = enc.len() - 1;
        let encoder = (0..n)
            .map(|i| {
                (
                    down(vs / format!("enc{i}"), enc[i], enc[i + 1]),
                    (i > 0).then(|| bn(vs / format!("enc_bn{i}"), enc[i + 1])),
                )
            })
            .collect();
        let decoder = (0..n)
            .map(|i| {
                (
                    up(vs / format!("dec{i}"), dec[i], dec[i + 1], 2, 1),
                    (i + 1 < n).then(|| bn(vs / format!("dec_bn{i}"), dec[i + 1])),
                )
            })
            .collect();
        AutoEncoder { encoder, decoder }
    }

    /// Encoder: LeakyReLU(0.2) with batch norm after all but the first layer; decoder: ReLU with
    /// batch norm, and a linear output layer.
    pub fn forward(&self, x: &Tensor, train: bool) -> AutoEncoderOutput {
        let mut h = x.shallow_clone();
        for (conv, norm) in &self.encoder {
            h = conv.forward(&h);
            if let Some(bn) = norm {
                h = bn.forward_t(&h, train);
            }
            h = lrelu(&h);
        }
        let code = h.shallow_clone();
        for (conv, norm) in &self.decoder {
            h = conv.forward(&h);
            if let Some(bn) = norm {
                h = bn.forward_t(&h, train).relu();
            }
        }
        AutoEncoderOutput {
            reconstruction: h,
            code,
        }
    }
}

/// DCGAN's logistic discriminator.
pub struct Discriminator {
    layers: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    out: nn::Conv2D,
}

impl Discriminator {
    /// DCGAN's D: batch norm after every convolution but the first.
    pub fn new(vs: &nn::Path, s: &ConvSpec) -> Self {
        Self::with_batch_norm(vs, s, true)
    }

    /// WGAN-GP's critic: the same convolutions without batch norm (its gradient penalty is
    /// per sample, which batch norm would couple across the batch).
    pub fn critic(vs: &nn::Path, s: &ConvSpec) -> Self {
        Self::with_batch_norm(vs, s, false)
    }

    fn with_batch_norm(vs: &nn::Path, s: &ConvSpec, batch_norm: bool) -> Self {
        let w: Vec<i64> = std::iter::once(s.channels)
            .chain((0..s.doublings(4)).map(|i| s.d_base << i.min(3)))
            .collect();
        let layers = (0..w.len() - 1)
            .map(|i| {
                (
                    down(vs / format!("conv{i}"), w[i], w[i + 1]),
                    (batch_norm && i > 0).then(|| bn(vs / format!("bn{i}"), w[i + 1])),
                )
            })
            .collect();
        let out = nn::conv2d(
            vs / "out",
            *w.last().unwrap(),
            1,
            4,
            ConvConfig {
                bias: false,
                ..Default::default()
            },
        );
        Discriminator { layers, out }
    }

    /// Logits `[B]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        for (conv, norm) in &self.layers {
            h = conv.forward(&h);
            if let Some(bn) = norm {
                h = bn.forward_t(&h, train);
            }
            h = lrelu(&h);
        }
        self.out.forward(&h).view([-1])
    }
}

/// DCGAN's initialisation of a network's variables from `rng` (a run's Init stream), in name
/// order: conv weights N(0, std^2), batch-norm scales N(1, std^2), biases and shifts 0 (running
/// statistics keep their defaults).
pub fn init(vs: &nn::VarStore, std: f64, rng: &mut ChaCha8Rng) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let _g = tch::no_grad_guard();
    for name in names {
        let t = &vars[name];
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        }
        let value = if name.ends_with(".bias") {
            t.zeros_like()
        } else if t.dim() == 1 {
            normal(rng, &t.size(), vs.device()) * std + 1.0
        } else {
            normal(rng, &t.size(), vs.device()) * std
        };
        t.shallow_clone().copy_(&value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    #[test]
    fn shapes_at_64x64() {
        let vs = nn::VarStore::new(Device::Cpu);
        let s = ConvSpec {
            g_base: 8,
            ae_base: 8,
            d_base: 8,
            ..Default::default()
        };
        let g = Generator::new(&(vs.root() / "g"), &s);
        let ae = AutoEncoder::new(&(vs.root() / "ae"), &s);
        let d = Discriminator::new(&(vs.root() / "d"), &s);
        let z = Tensor::randn([2, 100], (Kind::Float, Device::Cpu));
        let x = g.forward(&z, &[], true);
        assert_eq!(x.size(), [2, 3, 64, 64]);
        assert!(f64::try_from(x.abs().max()).unwrap() <= 1.0);
        let out = ae.forward(&x, true);
        assert_eq!(out.reconstruction.size(), [2, 3, 64, 64]);
        assert_eq!(out.code.size(), [2, 32, 8, 8]);
        assert_eq!(d.forward(&x, true).size(), [2]);
    }

    #[test]
    fn paper_widths_by_default() {
        // G of paper.md §5: 100 -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3, no
        // biases, batch norm (scale and shift) on the four hidden layers.
        let s = ConvSpec::default();
        assert_eq!(s.g_widths(), [512, 256, 128, 64]);
        assert_eq!(s.encoder_widths(), [64, 128, 256]);
        let vs = nn::VarStore::new(Device::Cpu);
        let _g = Generator::new(&vs.root(), &s);
        let convs = 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16;
        let norms = 2 * (512 + 256 + 128 + 64);
        assert_eq!(count(&vs), convs + norms);
        // Auto-encoder (64)4c2s-(128)4c2s-(256)4c2s / (128)4c2s-(64)4c2s-(3)4c2s, batch norm on
        // encoder layers 2-3 and decoder layers 1-2.
        let vs = nn::VarStore::new(Device::Cpu);
        let _d = AutoEncoder::new(&vs.root(), &s);
        let enc = 3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16;
        let dec = 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16;
        assert_eq!(count(&vs), enc + dec + 2 * (128 + 256) + 2 * (128 + 64));
    }

    #[test]
    fn imagenet_128_matches_paper_md_6() {
        // G (1024)4c-(512)4c2s-(256)4c2s-(128)4c2s-(64)4c2s-(64)4c2s-(3)3c; encoder
        // (64)4c2s-(128)4c2s-(256)4c2s-(512)4c2s; 4 noise planes before each upsampling.
        let s = ConvSpec::imagenet_128();
        assert_eq!(s.g_widths(), [1024, 512, 256, 128, 64, 64]);
        assert_eq!(s.encoder_widths(), [64, 128, 256, 512]);
        assert_eq!(s.noise_sides(), [4, 8, 16, 32, 64]);
        let vs = nn::VarStore::new(Device::Cpu);
        let _g = Generator::new(&vs.root(), &s);
        let convs = 100 * 1024 * 16
            + (1024 + 4) * 512 * 16
            + (512 + 4) * 256 * 16
            + (256 + 4) * 128 * 16
            + (128 + 4) * 64 * 16
            + (64 + 4) * 64 * 16
            + 64 * 3 * 9;
        let norms = 2 * (1024 + 512 + 256 + 128 + 64 + 64);
        assert_eq!(count(&vs), convs + norms);
        let s256 = ConvSpec::imagenet_256();
        assert_eq!(s256.g_widths(), [1024, 512, 256, 128, 64, 64, 64]);
        assert_eq!(s256.encoder_widths(), [64, 128, 256, 512, 512]);
    }

    #[test]
    fn imagenet_generator_uses_its_noise_planes() {
        let s = ConvSpec {
            arch: ConvArch::Imagenet,
            image_size: 16,
            g_base: 4,
            noise_planes: 2,
            ..Default::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&vs.root(), &s);
        let z = Tensor::randn([3, 100], (Kind::Float, Device::Cpu));
        let planes = |v: f64| -> Vec<Tensor> {
            s.noise_sides()
                .iter()
                .map(|&r| Tensor::full([3, 2, r, r], v, (Kind::Float, Device::Cpu)))
                .collect()
        };
        let a = g.forward(&z, &planes(0.0), false);
        let b = g.forward(&z, &planes(1.0), false);
        assert_eq!(a.size(), [3, 3, 16, 16]);
        assert!(f64::try_from((a - b).abs().max()).unwrap() > 1e-4);
    }

    #[test]
    fn leaky_relu_slope_is_dcgans() {
        let h = Tensor::from_slice(&[-1.0f32, 2.0]);
        assert_eq!(Vec::<f32>::try_from(lrelu(&h)).unwrap(), [-0.2, 2.0]);
    }
}
