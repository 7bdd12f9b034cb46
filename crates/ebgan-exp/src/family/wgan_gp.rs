//! WGAN-GP (Gulrajani et al. 2017, arXiv 1704.00028), the baseline every modern GAN framework
//! has, under EBGAN's protocol: a critic D with an unbounded output and no batch norm (the
//! penalty is per sample; batch norm would couple a sample's gradient to its batch, the paper
//! §4), critic loss D(G(z)) - D(x) + lambda (||grad D(x_hat)||_2 - 1)^2 on random interpolates
//! x_hat, G loss -D(G(z)), and `wgan_n_critic` critic steps per G step. The math is ebgan-core
//! `wgan_gp.rs`.
//!
//! A step of the grid is one batch and one critic update, so an epoch is still every image
//! once; G updates after every `wgan_n_critic`-th step, through the updated critic, on that
//! step's fakes. The paper's optimiser, Adam(1e-4, beta1 0, beta2 0.9), is set in the
//! experiment file (`lr`, `beta1`, `beta2`): the defaults of `RunConfig` are Table 1's.

use super::{check, DKind, EnergyMeasure, Invalid, LogColumn};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub const D: DKind = DKind::Critic;
/// Unread: a critic has no energy.
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
pub const LOG_COLUMNS: &[LogColumn] = &[LogColumn::GradientPenalty];
pub const HAS_MARGIN: bool = false;
pub const LABEL: &str = "WGAN-GP";
pub const COLOR: (u8, u8, u8) = (140, 86, 75);

/// WGAN-GP's settings (`wgan_*` in an experiment file).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The penalty's weight lambda (the paper: 10).
    #[serde(rename = "wgan_lambda")]
    pub lambda: f64,
    /// Critic steps per G step (the paper: 5).
    #[serde(rename = "wgan_n_critic")]
    pub n_critic: u64,
}

pub fn validate(s: &Settings) -> Result<(), Invalid> {
    check(s.lambda >= 0.0, "wgan_lambda", "wgan_lambda must be >= 0")?;
    check(
        (1..=1000).contains(&s.n_critic),
        "wgan_n_critic",
        "wgan_n_critic must be in [1, 1000]",
    )
}

/// What WGAN-GP has instead of a field another family reads (None: the field is free).
pub fn replaces(key: &str) -> Option<String> {
    match key {
        "margin" | "margin_decay" | "energy" | "pulling_away" => Some(format!(
            "model \"wgan-gp\" has a critic, not an energy with a margin: leave {key} unset"
        )),
        _ => None,
    }
}

/// The penalty weights per member `[K]`, and the cohort's critic steps per G step.
pub struct State {
    pub lambda: Tensor,
    pub n_critic: u64,
}

impl State {
    /// `n_critic` is part of the cohort key: the first member's stands for all.
    pub fn new(members: &[Settings], device: Device) -> Self {
        State {
            lambda: super::per_member(members.iter().map(|s| s.lambda), device),
            n_critic: members[0].n_critic,
        }
    }

    /// Whether G updates after the step that follows `done` steps: after every n_critic-th
    /// critic update.
    pub fn g_turn(&self, done: u64) -> bool {
        (done + 1).is_multiple_of(self.n_critic)
    }
}

/// Its state is its settings: nothing moves from step to step, and a checkpoint keeps nothing.
impl super::State for State {
    fn pretraining(&self, _: u64, _: u64) -> bool {
        false
    }

    fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> super::EnergyLoss<'a> {
        super::EnergyLoss::Margin(scheduled)
    }

    fn wgan_gp(&self) -> Option<&State> {
        Some(self)
    }

    fn after_step(&mut self, _: &Tensor, _: &Tensor, _: &Tensor) {}

    fn after_epoch(&mut self, _: u64, _: u64) {}

    fn extra_stats(&self) -> Option<Tensor> {
        None
    }

    fn margins(&self) -> Option<&Tensor> {
        None
    }

    fn named(&self) -> Vec<(&'static str, &Tensor)> {
        vec![]
    }

    fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        vec![]
    }
}
