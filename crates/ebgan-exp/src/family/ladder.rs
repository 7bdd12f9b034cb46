//! The semi-supervised families of Table 2 (paper §4.2): the ladder network (LN) and EBGAN-LN,
//! the ladder as EBGAN's D with its bottom-layer cost as the energy. Trained one run at a time
//! by train::ladder, which logs test error beside the losses.

use super::{check, Common, DKind, EnergyMeasure, Invalid, LogColumn};
use ebgan_models::ladder::Combinator;
use serde::{Deserialize, Serialize};

pub const D: DKind = DKind::Ladder;
/// Unread: the ladder's energy is its own bottom-layer cost.
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
pub const LOG_COLUMNS: &[LogColumn] = &[];
pub const LN_HAS_MARGIN: bool = false;
pub const EBGAN_LN_HAS_MARGIN: bool = true;
pub const LN_LABEL: &str = "LN";
pub const EBGAN_LN_LABEL: &str = "EBGAN-LN";
pub const LN_COLOR: (u8, u8, u8) = (127, 127, 127);
pub const EBGAN_LN_COLOR: (u8, u8, u8) = (227, 119, 194);

/// The ladder's own settings (labelled count, reconstruction weight, combinator, corruption
/// noise) and its trainer's (learning-rate decay, validation split): LN's and EBGAN-LN's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Labelled training images, balanced over the classes and drawn by seed.
    pub labels: usize,
    /// Weight of the bottom-layer reconstruction cost (per-pixel mean).
    pub lambda_0: f64,
    /// The denoising combinator: "gauss" or "sig".
    pub combinator: Combinator,
    /// Std of the Gaussian noise of the corrupted path.
    pub ladder_noise: f64,
    /// Fraction of training after which the learning rate decays linearly to 0 (1 = never).
    pub lr_decay_start: f64,
    /// The last N of the training images held out as a validation set.
    pub validation: usize,
}

/// EBGAN-LN's generator and its hinge, beside the ladder's [`Settings`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// G's learning rate follows the ladder's decay (false: G keeps its lr throughout).
    pub g_lr_decay: bool,
    /// The G step draws new noise (false: it regenerates the D step's fakes).
    pub g_fresh_noise: bool,
    /// G's Adam learning rate and beta1 (unset: the run's `lr` and `beta1`).
    pub g_lr: Option<f64>,
    pub g_beta1: Option<f64>,
    /// The weight of the hinge [m - E(G(z))]^+ in D's loss (unset: `lambda_0`).
    pub hinge_weight: Option<f64>,
}

pub fn validate(s: &Settings, run: &Common) -> Result<(), Invalid> {
    check(
        s.labels >= 10 && s.labels.is_multiple_of(10) && s.labels <= 60000,
        "labels",
        "labels must be a multiple of 10 in [10, 60000] (equal count per class)",
    )?;
    check(
        s.validation + s.labels.max(run.batch_size as usize) <= run.train_images,
        "validation",
        "validation leaves too few training images: validation + max(labels, batch_size) \
         must be <= train_images",
    )?;
    for (key, v) in [("lambda_0", s.lambda_0), ("ladder_noise", s.ladder_noise)] {
        check(v >= 0.0, key, format!("{key} must be >= 0"))?;
    }
    check(
        (0.0..=1.0).contains(&s.lr_decay_start),
        "lr_decay_start",
        "lr_decay_start must be in [0, 1] (a fraction of training; 1 = no decay)",
    )
}

pub fn validate_generator(g: &Generator) -> Result<(), Invalid> {
    check(g.g_lr.is_none_or(|lr| lr > 0.0), "g_lr", "g_lr must be > 0")?;
    check(
        g.g_beta1.is_none_or(|b| (0.0..1.0).contains(&b)),
        "g_beta1",
        "g_beta1 must be in [0, 1)",
    )?;
    check(
        g.hinge_weight.is_none_or(|w| w >= 0.0),
        "hinge_weight",
        "hinge_weight must be >= 0",
    )
}
