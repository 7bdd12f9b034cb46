//! What a run's training leaves to be committed: how it ended ([`Status`]), its loss log
//! ([`LossLog`], the rows of losses.csv) and its scores ([`RunOutcome`]). Trainers build them,
//! results writes them, report reads them back.

use crate::family::LogColumn;
use ebgan_core::score::Scores;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a run ended (the `status` column of runs.csv).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Finished,
    /// A loss became NaN or infinite; the run was frozen there.
    Diverged,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Finished => "finished",
            Status::Diverged => "diverged",
        })
    }
}

/// Means of one run over a window of steps (up to [`LOG_EVERY`], and at epoch ends): a row of
/// its losses.csv. For EBGAN `real`/`fake` are mean energies; for GAN the mean D(x) probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossLog {
    /// Steps done at the end of the window.
    pub step: u64,
    /// Epochs done at the end of the window (fractional).
    pub epoch: f64,
    pub loss_d: f64,
    pub loss_g: f64,
    pub real: f64,
    pub fake: f64,
    /// The margin in force (None: BEGAN, which has none; an empty cell in losses.csv).
    pub margin: Option<f64>,
    /// BEGAN: the control variable k_t and the convergence measure M_global.
    #[serde(default)]
    pub k_t: Option<f64>,
    #[serde(default)]
    pub m_global: Option<f64>,
    /// WGAN-GP: the gradient penalty (before its weight lambda).
    #[serde(default)]
    pub gradient_penalty: Option<f64>,
}

impl LossLog {
    /// A log row from a window's means of one member: the four every family logs, then its
    /// `columns` (`Model::log_columns`).
    pub fn from_means(
        step: u64,
        epoch: f64,
        means: &[f64],
        margin: Option<f64>,
        columns: &[LogColumn],
    ) -> Self {
        let mut log = LossLog {
            step,
            epoch,
            loss_d: means[0],
            loss_g: means[1],
            real: means[2],
            fake: means[3],
            margin,
            k_t: None,
            m_global: None,
            gradient_penalty: None,
        };
        for (column, &v) in columns.iter().zip(&means[4..]) {
            *match column {
                LogColumn::KT => &mut log.k_t,
                LogColumn::MGlobal => &mut log.m_global,
                LogColumn::GradientPenalty => &mut log.gradient_penalty,
            } = Some(v);
        }
        log
    }
}

/// What a finished run measured, as its trainer's finish hands it over: every score column of
/// its row ([`Measured::columns`] fills them, in one place).
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    /// I', IS and FID of generated samples (runs scored by the MNIST classifier).
    pub scores: Option<Scores>,
    /// FID and KID against the dataset with the FID-Inception network (image runs).
    pub inception: Option<crate::fid::Distances>,
    /// Test error in % (semi-supervised runs).
    pub test_error: Option<f64>,
    /// Error in % on the held-out validation images (semi-supervised runs with `validation`).
    pub validation_error: Option<f64>,
}

impl Measured {
    /// `row` with its score columns set from these measures.
    pub fn columns(&self, row: super::ResultColumns) -> super::ResultColumns {
        let s = self.scores;
        super::ResultColumns {
            i_prime: s.map(|s| s.i_prime),
            i_prime_printed: s.map(|s| s.i_prime_printed),
            inception_score: s.map(|s| s.inception_score),
            fid: s.and_then(|s| s.fid),
            inception_fid: self.inception.map(|d| d.fid),
            inception_kid: self.inception.map(|d| d.kid),
            test_error: self.test_error,
            validation_error: self.validation_error,
            ..row
        }
    }
}

/// One run's result, as the training loop hands it to the runner.
#[derive(Debug)]
pub struct RunOutcome {
    /// The step (1-based) at which a loss became NaN or infinite; None if it finished.
    pub diverged_at: Option<u64>,
    pub log: Vec<LossLog>,
    pub epochs_done: usize,
    /// Its scores (none for a diverged run).
    pub measured: Measured,
}

impl RunOutcome {
    pub fn status(&self) -> Status {
        match self.diverged_at {
            None => Status::Finished,
            Some(_) => Status::Diverged,
        }
    }
}
