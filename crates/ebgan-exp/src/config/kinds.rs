//! The closed sets of an experiment: what is trained (model and family: `crate::family`; the
//! network), on what (dataset), how the margin moves.

pub use crate::family::{Family, Model};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Mlp,
    Dcgan,
    Imagenet,
}

impl Network {
    pub fn is_conv(self) -> bool {
        self != Network::Mlp
    }

    /// The name experiment files use.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mlp => "mlp",
            Network::Dcgan => "dcgan",
            Network::Imagenet => "imagenet",
        }
    }
}

/// What an experiment trains on (experiment-level `dataset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Mnist,
    /// MNIST digits padded to 64x64 (18 pixels each side): the convolutional models' stand-in.
    Mnist64,
    /// Aligned CelebA: `img_align_celeba/` (+ `list_eval_partition.txt`).
    Celeba,
    /// LSUN (bedroom): LSUN's LMDB release or a folder of images.
    Lsun,
    /// ImageNet-style class folders (`train/<wnid>/*.JPEG`).
    Imagenet,
}

impl Dataset {
    /// Environment variable that overrides the data location.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Dataset::Mnist | Dataset::Mnist64 => None,
            Dataset::Celeba => Some("EBGAN_CELEBA"),
            Dataset::Lsun => Some("EBGAN_LSUN"),
            Dataset::Imagenet => Some("EBGAN_IMAGENET"),
        }
    }

    pub fn is_mnist(self) -> bool {
        matches!(self, Dataset::Mnist | Dataset::Mnist64)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dataset::Mnist => "mnist",
            Dataset::Mnist64 => "mnist64",
            Dataset::Celeba => "celeba",
            Dataset::Lsun => "lsun",
            Dataset::Imagenet => "imagenet",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginDecay {
    /// m(t) = margin throughout.
    None,
    /// margin until `margin_decay_start`, then linear to `margin_floor` at `margin_decay_end`
    /// (both fractions of the run's steps).
    Linear,
}
