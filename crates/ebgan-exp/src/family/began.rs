//! BEGAN (Berthelot et al. 2017, arXiv 1703.10717) on EBGAN's auto-encoder D: the energy is the
//! per-pixel mean of |v - D(v)|^eta, L_D = L(x) - k_t L(G(z)), L_G = L(G(z)), and the control
//! variable k_t moves after every step towards the equilibrium gamma L(x) = L(G(z)). The math
//! is ebgan-core `began.rs`; here are its settings and the k_t it carries, per member.

use super::{check, DKind, EnergyMeasure, Invalid, LogColumn};
use ebgan_core::began;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub const D: DKind = DKind::AutoEncoder;
pub const ENERGY: EnergyMeasure = EnergyMeasure::Began;
pub const LOG_COLUMNS: &[LogColumn] = &[LogColumn::KT, LogColumn::MGlobal];
pub const HAS_MARGIN: bool = false;
pub const LABEL: &str = "BEGAN";
pub const COLOR: (u8, u8, u8) = (148, 103, 189);

/// BEGAN's settings (`began_*` in an experiment file).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The energy's exponent (BEGAN uses 1; 2 is the per-pixel MSE).
    #[serde(rename = "began_eta")]
    pub eta: f64,
    /// The equilibrium's target ratio L(G(z)) / L(x).
    #[serde(rename = "began_gamma")]
    pub gamma: f64,
    /// k_t's step size.
    #[serde(rename = "began_lambda_k")]
    pub lambda_k: f64,
}

pub fn validate(s: &Settings) -> Result<(), Invalid> {
    check(s.eta > 0.0, "began_eta", "began_eta must be > 0")?;
    check(
        (0.0..=1.0).contains(&s.gamma),
        "began_gamma",
        "began_gamma must be in [0, 1]",
    )?;
    check(
        s.lambda_k >= 0.0,
        "began_lambda_k",
        "began_lambda_k must be >= 0",
    )
}

/// What BEGAN computes instead of a field another family reads (None: the field is free).
pub fn replaces(key: &str) -> Option<String> {
    match key {
        "margin" | "margin_decay" => Some(format!(
            "model \"began\" sets its own margin (BEGAN has none: k_t balances D): leave {key} unset"
        )),
        "pulling_away" => {
            Some("the pulling-away term is EBGAN-PT's (model = \"ebgan\"), not model \"began\"'s".into())
        }
        "energy" => Some(
            "BEGAN's energy is the per-pixel mean of |v - D(v)|^began_eta: set began_eta, not energy"
                .into(),
        ),
        _ => None,
    }
}

/// k_t and M_global per member `[K]`, on the device.
pub struct State {
    /// k_t, from 0.
    pub k: Tensor,
    gamma: Tensor,
    lambda_k: Tensor,
    /// M_global of the last step.
    pub m_global: Tensor,
}

impl State {
    pub fn new(members: &[Settings], device: Device) -> Self {
        let per = |f: fn(&Settings) -> f64| super::per_member(members.iter().map(f), device);
        State {
            k: per(|_| 0.0),
            gamma: per(|s| s.gamma),
            lambda_k: per(|s| s.lambda_k),
            m_global: per(|_| 0.0),
        }
    }

    /// The log's extra rows `[2, K]`: k_t and M_global ([`LOG_COLUMNS`]).
    pub fn log_rows(&self) -> Tensor {
        Tensor::stack(&[&self.k, &self.m_global], 0)
    }
}

impl super::State for State {
    fn pretraining(&self, _: u64, _: u64) -> bool {
        false
    }

    fn energy_loss<'a>(&'a self, _: &'a Tensor) -> super::EnergyLoss<'a> {
        super::EnergyLoss::Began(&self.k)
    }

    fn wgan_gp(&self) -> Option<&super::wgan_gp::State> {
        None
    }

    /// BEGAN evaluates all three losses with one D; its G step's fakes are the D step's, so
    /// L(G(z_G)) is the D step's mean fake energy. Members not `alive` keep their k_t.
    fn after_step(&mut self, real: &Tensor, fake: &Tensor, alive: &Tensor) {
        let k = began::update_k(&self.k, real, fake, &self.gamma, &self.lambda_k);
        self.k = k.where_self(alive, &self.k);
        self.m_global = began::convergence(real, fake, &self.gamma);
    }

    fn after_epoch(&mut self, _: u64, _: u64) {}

    fn extra_stats(&self) -> Option<Tensor> {
        Some(self.log_rows())
    }

    fn margins(&self) -> Option<&Tensor> {
        None
    }

    fn named(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("k", &self.k), ("m_global", &self.m_global)]
    }

    fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        vec![("k", &mut self.k), ("m_global", &mut self.m_global)]
    }
}
