//! What a family carries from step to step, per member on the device: the family's
//! `family::State` impl (BEGAN's k_t in `family/began.rs`, MAGAN's margin in `family/magan.rs`,
//! WGAN-GP's penalty weights and critic turns in `family/wgan_gp.rs`, `family::Stateless` for the
//! rest), made for a cohort here and saved with the run's checkpoint.

use super::step::{EnergyLoss, StepOutput};
use crate::config::{Model, RunConfig};
use crate::family::{self, wgan_gp, State};
use tch::{Device, Tensor};

/// A cohort's family state ([`State`], one impl per family file) and its model.
pub struct Adaptive {
    model: Model,
    state: Box<dyn State>,
}

impl Adaptive {
    /// The state of a cohort of `members` (one model).
    pub fn new(members: &[RunConfig], device: Device) -> Self {
        Adaptive {
            model: members[0].model,
            state: family::state(
                &members.iter().map(RunConfig::settings).collect::<Vec<_>>(),
                device,
            ),
        }
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// Rows of a log window (`Model::log_rows`).
    pub fn log_rows(&self) -> i64 {
        self.model.log_rows()
    }

    /// Whether the log has a margin column (`Model::has_margin`).
    pub fn has_margin(&self) -> bool {
        self.model.has_margin()
    }

    /// Whether the step after `done` steps (of `per_epoch` an epoch) is one of MAGAN's
    /// pretraining steps (D alone).
    pub fn pretraining(&self, done: u64, per_epoch: u64) -> bool {
        self.state.pretraining(done, per_epoch)
    }

    /// The fakes' part of an auto-encoder D's loss: BEGAN's k_t, MAGAN's margin, else
    /// `scheduled` margins.
    pub fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> EnergyLoss<'a> {
        self.state.energy_loss(scheduled)
    }

    /// WGAN-GP's state (its penalty weights and critic turns).
    pub fn wgan_gp(&self) -> Option<&wgan_gp::State> {
        self.state.wgan_gp()
    }

    /// After a step: BEGAN moves k_t, MAGAN sums the step's mean energies. Members that are not
    /// alive keep their state.
    pub fn after_step(&mut self, out: &StepOutput) {
        tch::no_grad(|| self.state.after_step(&out.real, &out.fake, &out.alive))
    }

    /// After step `done` (of `per_epoch` an epoch): MAGAN's margin at an epoch's end.
    pub fn after_epoch(&mut self, done: u64, per_epoch: u64) {
        tch::no_grad(|| self.state.after_epoch(done, per_epoch))
    }

    /// Statistics logged beside the losses from the state, `[R, K]`: BEGAN's k_t and M_global.
    pub fn extra_stats(&self) -> Option<Tensor> {
        self.state.extra_stats()
    }

    /// MAGAN's current margins `[K]` (the log's margin column).
    pub fn margins(&self) -> Option<&Tensor> {
        self.state.margins()
    }

    /// Named tensors for a checkpoint (`adaptive/<name>`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.state
            .named()
            .into_iter()
            .map(|(n, t)| (format!("adaptive/{n}"), t.shallow_clone()))
            .collect()
    }

    /// Restores [`Adaptive::state`]; `get(name)` answers a checkpoint's tensor (on the device).
    pub fn load(&mut self, get: impl Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        for (name, t) in self.state.named_mut() {
            let key = format!("adaptive/{name}");
            *t = match get(&key) {
                Some(saved) if saved.size() == t.size() => saved.to_kind(t.kind()),
                _ => return Err(format!("no `{key}` of shape {:?}", t.size())),
            };
        }
        Ok(())
    }
}
