//! The GAN baseline (Goodfellow et al. 2014) as Table 1 runs it: a logistic D and the
//! non-saturating G loss (ebgan-core `gan_loss.rs`). It owns no settings; its grid is Table 1's
//! optimiser settings (optimD, optimG, lr).

use super::{DKind, EnergyMeasure, LogColumn};

pub const D: DKind = DKind::Logistic;
/// Unread: a logistic D has no energy.
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
pub const LOG_COLUMNS: &[LogColumn] = &[];
/// GAN has no margin, but its losses.csv has always carried the (unused) margin field: kept,
/// so that a GAN run's files stay as they were.
pub const HAS_MARGIN: bool = true;
pub const LABEL: &str = "GAN";
/// The name of its convolutional runs' samples: the paper's DCGAN (Figure 5, 6, 7).
pub const CONV_LABEL: &str = "DCGAN";
pub const COLOR: (u8, u8, u8) = (214, 39, 40);
