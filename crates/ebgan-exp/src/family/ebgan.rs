//! EBGAN (paper Eq. 1-2) and EBGAN-PT (Eq. 14): an auto-encoder D whose reconstruction error is
//! the energy, the hinge [m - D(G(z))]^+ at a margin m (constant, or decaying: `margin.rs`), and
//! for EBGAN-PT the pulling-away term in G's loss. The losses live in ebgan-core (`loss.rs`,
//! `pulling_away.rs`, `margin.rs`); nothing is carried from step to step but the schedule.

use super::{check, DKind, EnergyMeasure, Family, Invalid, LogColumn};
use serde::{Deserialize, Serialize};

pub const D: DKind = DKind::AutoEncoder;
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
pub const LOG_COLUMNS: &[LogColumn] = &[];
pub const HAS_MARGIN: bool = true;
pub const LABEL: &str = "EBGAN";
pub const PT_LABEL: &str = "EBGAN-PT";
pub const COLOR: (u8, u8, u8) = (31, 119, 180);
pub const PT_COLOR: (u8, u8, u8) = (44, 160, 44);

/// EBGAN's own setting: the PT weight (GAN-style models have no encoder code to pull apart).
/// The margin and the energy are read by MAGAN and EBGAN-LN too: they are the run's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Weight of the pulling-away term in G's loss (EBGAN-PT: 0.1; 0 = plain EBGAN).
    pub pulling_away: f64,
}

pub fn validate(s: &Settings) -> Result<(), Invalid> {
    check(
        s.pulling_away >= 0.0,
        "pulling_away",
        "pulling_away must be >= 0 (0 = plain EBGAN)",
    )
}

/// EBGAN-PT when the PT weight is positive.
pub fn family(pulling_away: f64) -> Family {
    match pulling_away > 0.0 {
        true => Family::EbganPt,
        false => Family::Ebgan,
    }
}
