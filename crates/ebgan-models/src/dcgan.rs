//! 64x64 convolutional networks of paper §4.3 (paper.md §5): the DCGAN generator, EBGAN's
//! convolutional auto-encoder discriminator, and the DCGAN discriminator it is compared with.
//! Large enough to train one run at a time, so no member dimension.

use serde::{Deserialize, Serialize};
use tch::nn::{self, ConvConfig, ConvTransposeConfig, Module, ModuleT};
use tch::Tensor;

/// Widths of the 64x64 networks; the defaults are paper.md §5's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DcganSpec {
    pub z_dim: i64,
    pub channels: i64,
    /// G: z -> 4x4x(8 g_base) -> 8x8x(4 g_base) -> 16x16x(2 g_base) -> 32x32x(g_base) -> 64x64.
    pub g_base: i64,
    /// Auto-encoder: encoder (e)4c2s-(2e)4c2s-(4e)4c2s, decoder (2e)4c2s-(e)4c2s-(channels)4c2s.
    pub ae_base: i64,
    /// DCGAN D: (d)4c2s-(2d)4c2s-(4d)4c2s-(8d)4c2s-(1)4c.
    pub d_base: i64,
}

impl Default for DcganSpec {
    fn default() -> Self {
        DcganSpec {
            z_dim: 100,
            channels: 3,
            g_base: 64,
            ae_base: 64,
            d_base: 64,
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

/// DCGAN generator: transposed convolutions with batch norm and ReLU, tanh output.
pub struct Generator {
    layers: Vec<(nn::ConvTranspose2D, Option<nn::BatchNorm>)>,
    z_dim: i64,
}

impl Generator {
    pub fn new(vs: &nn::Path, s: &DcganSpec) -> Self {
        let b = s.g_base;
        let widths = [s.z_dim, 8 * b, 4 * b, 2 * b, b, s.channels];
        let layers = (0..5)
            .map(|i| {
                let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
                let conv = up(
                    vs / format!("up{i}"),
                    widths[i],
                    widths[i + 1],
                    stride,
                    padding,
                );
                (
                    conv,
                    (i < 4).then(|| bn(vs / format!("bn{i}"), widths[i + 1])),
                )
            })
            .collect();
        Generator {
            layers,
            z_dim: s.z_dim,
        }
    }

    /// `[B, z_dim]` -> `[B, channels, 64, 64]` in [-1, 1].
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        let mut h = z.view([-1, self.z_dim, 1, 1]);
        for (conv, norm) in &self.layers {
            h = conv.forward(&h);
            h = match norm {
                Some(bn) => bn.forward_t(&h, train).relu(),
                None => h.tanh(),
            };
        }
        h
    }
}

/// EBGAN's D: a convolutional auto-encoder; its energy is the reconstruction error.
pub struct AutoEncoder {
    encoder: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    decoder: Vec<(nn::ConvTranspose2D, Option<nn::BatchNorm>)>,
}

pub struct AutoEncoderOutput {
    pub reconstruction: Tensor,
    /// Encoder output `[B, 4 ae_base, 8, 8]`: the representation of the pulling-away term.
    pub code: Tensor,
}

impl AutoEncoder {
    pub fn new(vs: &nn::Path, s: &DcganSpec) -> Self {
        let e = s.ae_base;
        let enc = [s.channels, e, 2 * e, 4 * e];
        let dec = [4 * e, 2 * e, e, s.channels];
        let encoder = (0..3)
            .map(|i| {
                (
                    down(vs / format!("enc{i}"), enc[i], enc[i + 1]),
                    (i > 0).then(|| bn(vs / format!("enc_bn{i}"), enc[i + 1])),
                )
            })
            .collect();
        let decoder = (0..3)
            .map(|i| {
                (
                    up(vs / format!("dec{i}"), dec[i], dec[i + 1], 2, 1),
                    (i < 2).then(|| bn(vs / format!("dec_bn{i}"), dec[i + 1])),
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
            h = h.leaky_relu();
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
    pub fn new(vs: &nn::Path, s: &DcganSpec) -> Self {
        let d = s.d_base;
        let w = [s.channels, d, 2 * d, 4 * d, 8 * d];
        let layers = (0..4)
            .map(|i| {
                (
                    down(vs / format!("conv{i}"), w[i], w[i + 1]),
                    (i > 0).then(|| bn(vs / format!("bn{i}"), w[i + 1])),
                )
            })
            .collect();
        let out = nn::conv2d(
            vs / "out",
            8 * d,
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
            h = h.leaky_relu();
        }
        self.out.forward(&h).view([-1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_at_64x64() {
        let vs = nn::VarStore::new(Device::Cpu);
        let s = DcganSpec {
            g_base: 8,
            ae_base: 8,
            d_base: 8,
            ..Default::default()
        };
        let g = Generator::new(&(vs.root() / "g"), &s);
        let ae = AutoEncoder::new(&(vs.root() / "ae"), &s);
        let d = Discriminator::new(&(vs.root() / "d"), &s);
        let z = Tensor::randn([2, 100], (Kind::Float, Device::Cpu));
        let x = g.forward(&z, true);
        assert_eq!(x.size(), [2, 3, 64, 64]);
        assert!(f64::try_from(x.abs().max()).unwrap() <= 1.0);
        let out = ae.forward(&x, true);
        assert_eq!(out.reconstruction.size(), [2, 3, 64, 64]);
        assert_eq!(out.code.size(), [2, 32, 8, 8]);
        assert_eq!(d.forward(&x, true).size(), [2]);
    }

    #[test]
    fn paper_widths_by_default() {
        // G of paper.md §5: 100 -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3, no biases,
        // batch norm (scale and shift) on the four hidden layers.
        let vs = nn::VarStore::new(Device::Cpu);
        let _g = Generator::new(&vs.root(), &DcganSpec::default());
        let convs = 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16;
        let norms = 2 * (512 + 256 + 128 + 64);
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(n, convs + norms);
    }
}
