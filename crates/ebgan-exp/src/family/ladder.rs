//! The semi-supervised families of Table 2 (paper §4.2): the ladder network (LN) and EBGAN-LN,
//! the ladder as EBGAN's D with its bottom-layer cost as the energy. Trained one run at a time
//! by train::ladder, which logs test error beside the losses.

use super::{DKind, EnergyMeasure, LogColumn};

pub const D: DKind = DKind::Ladder;
/// Unread: the ladder's energy is its own bottom-layer cost.
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
/// The ladder's own settings (labelled count, reconstruction weight, combinator, corruption
/// noise) and its trainer's (learning-rate decay, validation split): LN's and EBGAN-LN's.
pub const LN_FIELDS: &[&str] = &[
    "labels",
    "lambda_0",
    "combinator",
    "ladder_noise",
    "lr_decay_start",
    "validation",
];
/// G's settings: EBGAN-LN's beside [`LN_FIELDS`].
pub const GENERATOR_FIELDS: &[&str] = &[
    "g_lr_decay",
    "g_fresh_noise",
    "g_lr",
    "g_beta1",
    "hinge_weight",
];
pub const LOG_COLUMNS: &[LogColumn] = &[];
pub const LN_HAS_MARGIN: bool = false;
pub const EBGAN_LN_HAS_MARGIN: bool = true;
pub const LN_LABEL: &str = "LN";
pub const EBGAN_LN_LABEL: &str = "EBGAN-LN";
pub const LN_COLOR: (u8, u8, u8) = (127, 127, 127);
pub const EBGAN_LN_COLOR: (u8, u8, u8) = (227, 119, 194);
