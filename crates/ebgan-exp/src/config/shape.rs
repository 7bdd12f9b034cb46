//! The network's own settings as a type: the flat record's shape fields that one kind of
//! network reads and the others ignore (Table 1's MLP widths, the convolutional widths and image
//! side, the ImageNet G's noise planes), named as the flat record spells them. A shape field set
//! on a run whose network does not read it is an error naming it (config::validate), as a family
//! field on another family's run is.

use super::kinds::{Model, Network};
use crate::family::{read, write, Flat};
use ebgan_models::dcgan::ConvArch;
use serde::{Deserialize, Serialize};

/// Table 1's fully-connected G and D (paper §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub n_layer_g: usize,
    pub size_g: i64,
    pub n_layer_d: usize,
    pub size_d: i64,
    pub dropout_d: bool,
    pub dropout_p: f64,
}

/// The ladder models' G (EBGAN-LN's; LN trains none, and its files share EBGAN-LN's lines): D is
/// the ladder network, whose layers are the paper's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LadderG {
    pub n_layer_g: usize,
    pub size_g: i64,
}

/// The convolutional networks (paper §4.3, §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    pub image_size: i64,
    pub g_base: i64,
    pub ae_base: i64,
    pub d_base: i64,
    pub random_crop: bool,
    pub sample_every: u64,
}

/// The ImageNet G's noise channels, concatenated before every upsampling (paper §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoisePlanes {
    pub noise_planes: i64,
}

/// A run's networks and the shape fields only they read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Mlp(Mlp),
    Ladder(LadderG),
    Dcgan(Conv),
    Imagenet(Conv, NoisePlanes),
}

impl Shape {
    /// The shape of a `model` run on `network`, read from its flat fields (a whole run config).
    pub fn of(model: Model, network: Network, flat: &Flat) -> Shape {
        // The ladder models train on their own networks whatever `network` says (validation
        // refuses a convolutional one).
        match (network, model.is_ladder()) {
            (_, true) => Shape::Ladder(read(flat)),
            (Network::Mlp, false) => Shape::Mlp(read(flat)),
            (Network::Dcgan, false) => Shape::Dcgan(read(flat)),
            (Network::Imagenet, false) => Shape::Imagenet(read(flat), read(flat)),
        }
    }

    /// Every shape, at a run's fields `flat`: what ownership is checked against.
    pub fn all(flat: &Flat) -> [Shape; 4] {
        [
            Shape::of(Model::Ebgan, Network::Mlp, flat),
            Shape::of(Model::Ladder, Network::Mlp, flat),
            Shape::of(Model::Ebgan, Network::Dcgan, flat),
            Shape::of(Model::Ebgan, Network::Imagenet, flat),
        ]
    }

    /// The flat fields this shape holds, by name.
    pub fn flat(&self) -> Flat {
        match self {
            Shape::Mlp(s) => write(s),
            Shape::Ladder(s) => write(s),
            Shape::Dcgan(s) => write(s),
            Shape::Imagenet(s, n) => write(s).into_iter().chain(write(n)).collect(),
        }
    }

    /// How errors name the runs that read this shape.
    pub fn described(&self) -> &'static str {
        match self {
            Shape::Mlp(_) => "network = \"mlp\"",
            Shape::Ladder(_) => "EBGAN-LN's G (model = \"ebgan-ln\" or \"ladder\")",
            Shape::Dcgan(_) => "network = \"dcgan\"",
            Shape::Imagenet(..) => "network = \"imagenet\"",
        }
    }

    /// The convolutional architecture, where the networks are convolutional.
    pub fn conv_arch(&self) -> Option<ConvArch> {
        match self {
            Shape::Dcgan(_) => Some(ConvArch::Dcgan),
            Shape::Imagenet(..) => Some(ConvArch::Imagenet),
            Shape::Mlp(_) | Shape::Ladder(_) => None,
        }
    }
}
