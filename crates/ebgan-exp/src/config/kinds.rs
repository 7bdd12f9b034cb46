//! The closed sets of an experiment: what is trained (model, network), on what (dataset), how
//! the margin moves, and the families the paper compares.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Auto-encoder discriminator with the margin loss (EBGAN; EBGAN-PT when pulling_away > 0).
    Ebgan,
    /// Logistic discriminator with the non-saturating generator loss.
    Gan,
    /// Bottom-layer-cost ladder network, semi-supervised (paper §4.2).
    Ladder,
    /// The ladder network as EBGAN's discriminator, its bottom-layer cost the energy.
    #[serde(rename = "ebgan-ln")]
    EbganLn,
    /// BEGAN: auto-encoder D with the energy mean |v - D(v)|^eta, balanced by k_t.
    Began,
    /// MAGAN: EBGAN's losses, D pretrained on real data, the margin adapted at epoch ends.
    Magan,
}

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

impl Model {
    /// Semi-supervised models, trained one run at a time by train::ladder.
    pub fn is_ladder(self) -> bool {
        matches!(self, Model::Ladder | Model::EbganLn)
    }

    /// Models whose D is an auto-encoder scoring energies (all but GAN and the plain ladder).
    pub fn is_energy(self) -> bool {
        matches!(
            self,
            Model::Ebgan | Model::EbganLn | Model::Began | Model::Magan
        )
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Model::Ebgan => "ebgan",
            Model::Gan => "gan",
            Model::Ladder => "ladder",
            Model::EbganLn => "ebgan-ln",
            Model::Began => "began",
            Model::Magan => "magan",
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

/// The families the paper compares (a run's `family` column): GAN, EBGAN, EBGAN-PT (EBGAN with
/// the pulling-away term), EBGAN's successors BEGAN and MAGAN, and the semi-supervised LN and
/// EBGAN-LN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "gan")]
    Gan,
    #[serde(rename = "ebgan")]
    Ebgan,
    #[serde(rename = "ebgan-pt")]
    EbganPt,
    #[serde(rename = "began")]
    Began,
    #[serde(rename = "magan")]
    Magan,
    #[serde(rename = "ln")]
    Ln,
    #[serde(rename = "ebgan-ln")]
    EbganLn,
}

impl Family {
    /// The Table 1 / §4.3 comparison families in the order the paper shows them, then EBGAN's
    /// successors.
    pub const GENERATIVE: [Family; 5] = [
        Family::Gan,
        Family::Ebgan,
        Family::EbganPt,
        Family::Began,
        Family::Magan,
    ];
    /// The semi-supervised families of Table 2.
    pub const SEMI_SUPERVISED: [Family; 2] = [Family::Ln, Family::EbganLn];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Gan => "gan",
            Family::Ebgan => "ebgan",
            Family::EbganPt => "ebgan-pt",
            Family::Began => "began",
            Family::Magan => "magan",
            Family::Ln => "ln",
            Family::EbganLn => "ebgan-ln",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
