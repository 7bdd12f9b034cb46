//! The families the grid trains, each in one file that owns what sets it apart: its settings
//! (a type whose fields are named as the flat `RunConfig` spells them, and their checks), its
//! kind of D, its per-step state, its log columns, and its report label and colour.
//!
//! - `ebgan`: EBGAN and EBGAN-PT (margin, its schedule, the pulling-away term)
//! - `gan`: the logistic-D baseline
//! - `wgan_gp`: WGAN-GP's critic, gradient penalty and critic steps per G step
//! - `began`, `magan`: EBGAN's successors and what they carry from step to step
//! - `ladder`: the semi-supervised LN and EBGAN-LN
//!
//! Every match below is over all families with no `_` arm: a new family does not compile
//! until each of them answers for it.

pub mod began;
pub mod ebgan;
pub mod gan;
pub mod ladder;
pub mod magan;
pub mod wgan_gp;

mod settings;
mod state;
pub use settings::{check, read, write, Common, Flat, Invalid, Settings, MAX_STEPS};
use state::per_member;
pub use state::{state, EnergyLoss, State, Stateless};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The experiment file's `model`.
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
    /// WGAN-GP: an unbounded critic, its gradient penalty, n_critic critic steps per G step.
    #[serde(rename = "wgan-gp")]
    WganGp,
}

/// What D is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DKind {
    /// An auto-encoder whose reconstruction error is the energy (EBGAN, BEGAN, MAGAN).
    AutoEncoder,
    /// A logit per sample (GAN).
    Logistic,
    /// An unbounded score per sample, no batch norm (WGAN-GP).
    Critic,
    /// The ladder network (LN, EBGAN-LN), trained by train::ladder.
    Ladder,
}

impl DKind {
    /// Whether D's hidden layers take batch norm where the run asks for it: not a critic's,
    /// whose gradient penalty is per sample (batch norm would tie a sample's gradient to its
    /// batch).
    pub fn batch_norm(self) -> bool {
        match self {
            DKind::Critic => false,
            DKind::AutoEncoder | DKind::Logistic | DKind::Ladder => true,
        }
    }

    /// D's outputs per sample of `pixels` pixels: an auto-encoder's reconstruction, else one
    /// score.
    pub fn outputs(self, pixels: u128) -> u128 {
        match self {
            DKind::AutoEncoder | DKind::Ladder => pixels,
            DKind::Logistic | DKind::Critic => 1,
        }
    }

    /// D's passes in one step whose graphs autograd keeps: real, fake for D's step, fake for
    /// G's; a critic's interpolates and their gradient's graph besides.
    pub fn kept_passes(self) -> u128 {
        match self {
            DKind::AutoEncoder | DKind::Logistic | DKind::Ladder => 3,
            DKind::Critic => 5,
        }
    }

    /// D of this kind, built by `build`; None for the ladder, which train::ladder builds.
    pub fn build<B: BuildD>(self, build: B) -> Option<B::D> {
        match self {
            DKind::AutoEncoder => Some(build.auto_encoder()),
            DKind::Logistic => Some(build.logistic()),
            DKind::Critic => Some(build.critic()),
            DKind::Ladder => None,
        }
    }
}

/// Builds D of each kind the image trainers have (the MLP cohorts', the convolutional runs'), so
/// that a new kind of D is a method each of them must answer.
pub trait BuildD {
    type D;
    fn auto_encoder(self) -> Self::D;
    fn logistic(self) -> Self::D;
    fn critic(self) -> Self::D;
}

/// How a family measures an auto-encoder D's energy from its reconstruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnergyMeasure {
    /// The run's `energy` norm (EBGAN's, MAGAN's; unread where D has no energy).
    Norm,
    /// BEGAN's per-pixel mean of |v - D(v)|^began_eta.
    Began,
}

impl Model {
    /// Every model, in declaration order (a test checks that none is missing).
    pub const ALL: [Model; 7] = [
        Model::Ebgan,
        Model::Gan,
        Model::Ladder,
        Model::EbganLn,
        Model::Began,
        Model::Magan,
        Model::WganGp,
    ];

    pub fn d_kind(self) -> DKind {
        match self {
            Model::Ebgan => ebgan::D,
            Model::Gan => gan::D,
            Model::WganGp => wgan_gp::D,
            Model::Began => began::D,
            Model::Magan => magan::D,
            Model::Ladder | Model::EbganLn => ladder::D,
        }
    }

    /// How its auto-encoder D's energy is measured.
    pub fn energy_measure(self) -> EnergyMeasure {
        match self {
            Model::Ebgan => ebgan::ENERGY,
            Model::Gan => gan::ENERGY,
            Model::WganGp => wgan_gp::ENERGY,
            Model::Began => began::ENERGY,
            Model::Magan => magan::ENERGY,
            Model::Ladder | Model::EbganLn => ladder::ENERGY,
        }
    }

    /// Why this model refuses `key` set away from its default, where it computes what another
    /// family reads from it (BEGAN and MAGAN their margins, ...); None where `key` is free.
    pub fn replaces(self, key: &str) -> Option<String> {
        match self {
            Model::Began => began::replaces(key),
            Model::Magan => magan::replaces(key),
            Model::WganGp => wgan_gp::replaces(key),
            Model::Ebgan | Model::Gan | Model::Ladder | Model::EbganLn => None,
        }
    }

    /// "BEGAN (model = \"began\")": how errors name the model.
    pub fn described(self) -> String {
        format!("{} (model = \"{self}\")", Family::of(self, 0.0).label())
    }

    /// Statistics a log window keeps beyond loss D, loss G, real and fake (losses.csv columns).
    pub fn log_columns(self) -> &'static [LogColumn] {
        match self {
            Model::Ebgan => ebgan::LOG_COLUMNS,
            Model::Gan => gan::LOG_COLUMNS,
            Model::WganGp => wgan_gp::LOG_COLUMNS,
            Model::Began => began::LOG_COLUMNS,
            Model::Magan => magan::LOG_COLUMNS,
            Model::Ladder | Model::EbganLn => ladder::LOG_COLUMNS,
        }
    }

    /// Rows of a log window: loss D, loss G, real, fake, then [`Model::log_columns`].
    pub fn log_rows(self) -> i64 {
        4 + self.log_columns().len() as i64
    }

    /// Whether the loss log has a margin column for this model (BEGAN, GAN and WGAN-GP have no
    /// margin: an empty cell).
    pub fn has_margin(self) -> bool {
        match self {
            Model::Ebgan => ebgan::HAS_MARGIN,
            Model::Gan => gan::HAS_MARGIN,
            Model::WganGp => wgan_gp::HAS_MARGIN,
            Model::Began => began::HAS_MARGIN,
            Model::Magan => magan::HAS_MARGIN,
            Model::Ladder => ladder::LN_HAS_MARGIN,
            Model::EbganLn => ladder::EBGAN_LN_HAS_MARGIN,
        }
    }

    /// Semi-supervised models, trained one run at a time by train::ladder.
    pub fn is_ladder(self) -> bool {
        self.d_kind() == DKind::Ladder
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
            Model::WganGp => "wgan-gp",
        })
    }
}

/// A statistic a family logs beside the four every family logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogColumn {
    /// BEGAN's control variable k_t.
    KT,
    /// BEGAN's convergence measure M_global.
    MGlobal,
    /// WGAN-GP's gradient penalty (before its weight lambda).
    GradientPenalty,
}

/// The families the paper compares (a run's `family` column): GAN, EBGAN, EBGAN-PT (EBGAN with
/// the pulling-away term), EBGAN's successors BEGAN and MAGAN, the WGAN-GP baseline, and the
/// semi-supervised LN and EBGAN-LN.
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
    #[serde(rename = "wgan-gp")]
    WganGp,
    #[serde(rename = "ln")]
    Ln,
    #[serde(rename = "ebgan-ln")]
    EbganLn,
}

impl Family {
    /// The Table 1 / §4.3 comparison families in the order the paper shows them, then EBGAN's
    /// successors and the WGAN-GP baseline.
    pub const GENERATIVE: [Family; 6] = [
        Family::Gan,
        Family::Ebgan,
        Family::EbganPt,
        Family::Began,
        Family::Magan,
        Family::WganGp,
    ];
    /// The semi-supervised families of Table 2.
    pub const SEMI_SUPERVISED: [Family; 2] = [Family::Ln, Family::EbganLn];

    /// The family of a run of `model` (EBGAN-PT: EBGAN with a PT weight > 0).
    pub fn of(model: Model, pulling_away: f64) -> Family {
        match model {
            Model::Ebgan => ebgan::family(pulling_away),
            Model::Gan => Family::Gan,
            Model::WganGp => Family::WganGp,
            Model::Began => Family::Began,
            Model::Magan => Family::Magan,
            Model::Ladder => Family::Ln,
            Model::EbganLn => Family::EbganLn,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Gan => "gan",
            Family::Ebgan => "ebgan",
            Family::EbganPt => "ebgan-pt",
            Family::Began => "began",
            Family::Magan => "magan",
            Family::WganGp => "wgan-gp",
            Family::Ln => "ln",
            Family::EbganLn => "ebgan-ln",
        }
    }

    /// The name figures and tables print.
    pub fn label(self) -> &'static str {
        match self {
            Family::Gan => gan::LABEL,
            Family::Ebgan => ebgan::LABEL,
            Family::EbganPt => ebgan::PT_LABEL,
            Family::Began => began::LABEL,
            Family::Magan => magan::LABEL,
            Family::WganGp => wgan_gp::LABEL,
            Family::Ln => ladder::LN_LABEL,
            Family::EbganLn => ladder::EBGAN_LN_LABEL,
        }
    }

    /// The name over a convolutional run's samples: the paper's DCGAN for the GAN baseline.
    pub fn conv_label(self) -> &'static str {
        match self {
            Family::Gan => gan::CONV_LABEL,
            Family::Ebgan
            | Family::EbganPt
            | Family::Began
            | Family::Magan
            | Family::WganGp
            | Family::Ln
            | Family::EbganLn => self.label(),
        }
    }

    /// The family's colour in every figure (RGB; no two families share one).
    pub fn color(self) -> (u8, u8, u8) {
        match self {
            Family::Gan => gan::COLOR,
            Family::Ebgan => ebgan::COLOR,
            Family::EbganPt => ebgan::PT_COLOR,
            Family::Began => began::COLOR,
            Family::Magan => magan::COLOR,
            Family::WganGp => wgan_gp::COLOR,
            Family::Ln => ladder::LN_COLOR,
            Family::EbganLn => ladder::EBGAN_LN_COLOR,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_its_own_colour_and_label() {
        let all = [Family::GENERATIVE.as_slice(), &Family::SEMI_SUPERVISED].concat();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.color(), b.color(), "{a} and {b}");
                assert_ne!(a.label(), b.label(), "{a} and {b}");
            }
        }
    }

    #[test]
    fn all_lists_every_model_once() {
        let index = |m: Model| match m {
            Model::Ebgan => 0,
            Model::Gan => 1,
            Model::Ladder => 2,
            Model::EbganLn => 3,
            Model::Began => 4,
            Model::Magan => 5,
            Model::WganGp => 6,
        };
        for (i, m) in Model::ALL.iter().enumerate() {
            assert_eq!(index(*m), i, "{m}");
        }
    }
}
