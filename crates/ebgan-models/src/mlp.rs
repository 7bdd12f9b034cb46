//! Table 1 networks (paper §4.1, paper.md §3): fully-connected generator, auto-encoder
//! discriminator (EBGAN) and logistic discriminator (GAN), all member-batched.
//!
//! Layer counts follow Table 1: nLayerG linear layers in G; nLayerD in D, where the
//! auto-encoder's decoder is always ONE layer, so nLayerD = 2 is one encoder + one decoder layer.

use crate::layers::{BatchNorm, Dropout, Linear};
use crate::rng::MemberRng;
use crate::vars::Vars;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// One Table 1 shape, shared by every member of a cohort, and the members' own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub n_layer_g: usize,
    pub size_g: i64,
    pub n_layer_d: usize,
    pub size_d: i64,
    pub z_dim: i64,
    pub data_dim: i64,
    /// Batch norm after each hidden layer, except D's input layer (DCGAN practice).
    pub batch_norm: bool,
    /// Whether D has that batch norm too (WGAN-GP's critic has none).
    #[serde(default = "yes")]
    pub d_batch_norm: bool,
    pub members: Vec<MlpMember>,
}

/// Settings that may differ between members of a cohort.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpMember {
    /// Dropout probability after each hidden layer of D; 0 when dropoutD is off.
    pub dropout_d: f64,
    pub init_std_g: f64,
    pub init_std_d: f64,
}

fn yes() -> bool {
    true
}

impl MlpSpec {
    fn per_member(&self, f: impl Fn(&MlpMember) -> f64) -> Vec<f64> {
        self.members.iter().map(f).collect()
    }
}

/// Hidden layers: linear -> (batch norm) -> ReLU -> (dropout).
struct HiddenStack {
    layers: Vec<(Linear, Option<BatchNorm>)>,
    dropout: Option<Dropout>,
}

impl HiddenStack {
    /// `widths[0]` is the input width; `first_bn` is the index of the first layer with batch norm.
    fn new(
        vars: &mut Vars,
        widths: &[i64],
        batch_norm: bool,
        first_bn: usize,
        dropout: Option<Dropout>,
        std: &[f64],
    ) -> Self {
        let layers = (0..widths.len() - 1)
            .map(|i| {
                let name = format!("l{i}");
                let lin = Linear::new(vars, &name, widths[i], widths[i + 1], std);
                let bn = (batch_norm && i >= first_bn)
                    .then(|| BatchNorm::new(vars, &format!("bn{i}"), widths[i + 1]));
                (lin, bn)
            })
            .collect();
        HiddenStack { layers, dropout }
    }

    /// Returns (last activation before dropout, output).
    fn forward(&self, x: &Tensor, mut masks: Option<&mut MemberRng>) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        let mut last = h.shallow_clone();
        for (lin, bn) in &self.layers {
            h = lin.forward(&h);
            if let Some(bn) = bn {
                h = bn.forward(&h);
            }
            h = h.relu();
            last = h.shallow_clone();
            if let (Some(dropout), Some(rng)) = (&self.dropout, masks.as_deref_mut()) {
                let size = h.size();
                h = dropout.forward(&h, &rng.bytes(&size[1..], dropout.members()));
            }
        }
        (last, h)
    }
}

fn widths(input: i64, size: i64, hidden: usize) -> Vec<i64> {
    std::iter::once(input)
        .chain(std::iter::repeat_n(size, hidden))
        .collect()
}

/// G: z -> sizeG x (nLayerG - 1) -> data, tanh output (data is scaled to [-1, 1]).
pub struct Generator {
    hidden: HiddenStack,
    out: Linear,
}

impl Generator {
    pub fn new(vars: &mut Vars, spec: &MlpSpec) -> Self {
        assert!(
            spec.n_layer_g >= 2,
            "nLayerG must be >= 2, got {}",
            spec.n_layer_g
        );
        vars.sub("g", |v| {
            let w = widths(spec.z_dim, spec.size_g, spec.n_layer_g - 1);
            let std = spec.per_member(|m| m.init_std_g);
            let hidden = HiddenStack::new(v, &w, spec.batch_norm, 0, None, &std);
            let out = Linear::new(v, "out", spec.size_g, spec.data_dim, &std);
            Generator { hidden, out }
        })
    }

    /// `[K, B, z_dim]` -> `[K, B, data_dim]`.
    pub fn forward(&self, z: &Tensor) -> Tensor {
        ebgan_core::member_wise(
            &self.out.forward(&self.hidden.forward(z, None).1),
            Tensor::tanh,
        )
    }
}

/// EBGAN's D: encoder of nLayerD - 1 layers, one-layer linear decoder.
pub struct AutoEncoder {
    encoder: HiddenStack,
    decoder: Linear,
}

pub struct AutoEncoderOutput {
    pub reconstruction: Tensor,
    /// Last encoder layer's activation, the representation the pulling-away term uses.
    pub code: Tensor,
}

/// D's hidden layers (no batch norm on the input layer) and its output layer `out_dim` wide.
fn discriminator_layers(
    vars: &mut Vars,
    spec: &MlpSpec,
    out_name: &str,
    out_dim: i64,
) -> (HiddenStack, Linear) {
    assert!(
        spec.n_layer_d >= 2,
        "nLayerD must be >= 2, got {}",
        spec.n_layer_d
    );
    vars.sub("d", |v| {
        let w = widths(spec.data_dim, spec.size_d, spec.n_layer_d - 1);
        let std = spec.per_member(|m| m.init_std_d);
        let dropout = Dropout::new(&spec.per_member(|m| m.dropout_d), v.device());
        let batch_norm = spec.batch_norm && spec.d_batch_norm;
        let hidden = HiddenStack::new(v, &w, batch_norm, 1, dropout, &std);
        let out = Linear::new(v, out_name, spec.size_d, out_dim, &std);
        (hidden, out)
    })
}

impl AutoEncoder {
    pub fn new(vars: &mut Vars, spec: &MlpSpec) -> Self {
        let (encoder, decoder) = discriminator_layers(vars, spec, "decoder", spec.data_dim);
        AutoEncoder { encoder, decoder }
    }

    /// Dropout is applied only when `masks` is given (training).
    pub fn forward(&self, x: &Tensor, masks: Option<&mut MemberRng>) -> AutoEncoderOutput {
        let (code, h) = self.encoder.forward(x, masks);
        AutoEncoderOutput {
            reconstruction: self.decoder.forward(&h),
            code,
        }
    }
}

/// GAN's D: nLayerD - 1 hidden layers and a logit; without batch norm, WGAN-GP's critic (its
/// output an unbounded score).
pub struct Logistic {
    hidden: HiddenStack,
    out: Linear,
}

impl Logistic {
    pub fn new(vars: &mut Vars, spec: &MlpSpec) -> Self {
        let (hidden, out) = discriminator_layers(vars, spec, "out", 1);
        Logistic { hidden, out }
    }

    /// Logits `[K, B]`.
    pub fn forward(&self, x: &Tensor, masks: Option<&mut MemberRng>) -> Tensor {
        self.out
            .forward(&self.hidden.forward(x, masks).1)
            .squeeze_dim(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn spec(n_layer_g: usize, n_layer_d: usize, members: usize) -> MlpSpec {
        MlpSpec {
            n_layer_g,
            size_g: 8,
            n_layer_d,
            size_d: 6,
            z_dim: 3,
            data_dim: 5,
            batch_norm: true,
            d_batch_norm: true,
            members: vec![
                MlpMember {
                    dropout_d: 0.5,
                    init_std_g: 0.02,
                    init_std_d: 0.002
                };
                members
            ],
        }
    }

    fn shapes(vars: &Vars) -> Vec<(String, Vec<i64>)> {
        vars.named()
            .iter()
            .map(|(n, t)| (n.clone(), t.size()))
            .collect()
    }

    #[test]
    fn table1_layer_counts() {
        let s = spec(3, 2, 2);
        let mut vars = Vars::new(&[0, 1], Device::Cpu);
        let g = Generator::new(&mut vars, &s);
        let d = AutoEncoder::new(&mut vars, &s);
        let names: Vec<(String, Vec<i64>)> = shapes(&vars);
        let want: Vec<(&str, Vec<i64>)> = vec![
            ("g.l0.weight", vec![2, 3, 8]),
            ("g.l0.bias", vec![2, 1, 8]),
            ("g.bn0.gamma", vec![2, 1, 8]),
            ("g.bn0.beta", vec![2, 1, 8]),
            ("g.l1.weight", vec![2, 8, 8]),
            ("g.l1.bias", vec![2, 1, 8]),
            ("g.bn1.gamma", vec![2, 1, 8]),
            ("g.bn1.beta", vec![2, 1, 8]),
            ("g.out.weight", vec![2, 8, 5]),
            ("g.out.bias", vec![2, 1, 5]),
            // nLayerD = 2: one encoder layer (no batch norm on D's input layer) + the decoder.
            ("d.l0.weight", vec![2, 5, 6]),
            ("d.l0.bias", vec![2, 1, 6]),
            ("d.decoder.weight", vec![2, 6, 5]),
            ("d.decoder.bias", vec![2, 1, 5]),
        ];
        assert_eq!(
            names,
            want.into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect::<Vec<_>>()
        );
        let z = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu));
        let x = g.forward(&z);
        assert_eq!(x.size(), [2, 4, 5]);
        assert!(f64::try_from(x.abs().max()).unwrap() <= 1.0);
        let out = d.forward(&x, None);
        assert_eq!(out.reconstruction.size(), [2, 4, 5]);
        assert_eq!(out.code.size(), [2, 4, 6]);
    }

    #[test]
    fn logistic_discriminator_layers() {
        let s = spec(2, 4, 1);
        let mut vars = Vars::new(&[0], Device::Cpu);
        let d = Logistic::new(&mut vars, &s);
        // 3 hidden layers (batch norm on the 2nd and 3rd) + logit.
        let n: Vec<String> = vars.named().iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(n.iter().filter(|n| n.ends_with("weight")).count(), 4);
        assert!(n.contains(&"d.bn1.gamma".to_string()) && !n.contains(&"d.bn0.gamma".to_string()));
        let mut masks = MemberRng::new(&[0], crate::rng::Stream::Dropout, Device::Cpu);
        let logits = d.forward(
            &Tensor::randn([1, 7, 5], (Kind::Float, Device::Cpu)),
            Some(&mut masks),
        );
        assert_eq!(logits.size(), [1, 7]);
    }

    #[test]
    fn initialisation_follows_the_spec_std() {
        let mut s = spec(2, 2, 2);
        s.size_g = 400;
        s.z_dim = 100;
        s.members[1].init_std_g = 0.5;
        let mut vars = Vars::new(&[3, 4], Device::Cpu);
        let _g = Generator::new(&mut vars, &s);
        let w = &vars.named()[0].1;
        let std0 = f64::try_from(w.get(0).std(true)).unwrap();
        let std1 = f64::try_from(w.get(1).std(true)).unwrap();
        assert!((std0 - 0.02).abs() < 0.001, "{std0}");
        assert!((std1 - 0.5).abs() < 0.02, "{std1}");
    }
}
