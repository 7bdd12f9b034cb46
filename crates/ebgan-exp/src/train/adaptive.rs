//! What a family carries from step to step, per member on the device, dispatched to its family
//! file: BEGAN's k_t (`family/began.rs`), MAGAN's margin (`family/magan.rs`), WGAN-GP's penalty
//! weights and critic turns (`family/wgan_gp.rs`). Saved with the run's checkpoint.

use super::step::{EnergyLoss, StepOutput};
use crate::config::{Model, RunConfig};
use crate::family::{began, magan, wgan_gp};
use tch::{Device, Tensor};

pub enum Adaptive {
    /// EBGAN (its margin schedule) and GAN: nothing carried across steps.
    Fixed(Model),
    Began(began::State),
    Magan(magan::State),
    WganGp(wgan_gp::State),
}

impl Adaptive {
    /// The state of a cohort of `members` (one model).
    pub fn new(members: &[RunConfig], device: Device) -> Self {
        fn of<S>(members: &[RunConfig], slice: fn(&RunConfig) -> S) -> Vec<S> {
            members.iter().map(slice).collect()
        }
        match members[0].model {
            Model::Began => {
                Adaptive::Began(began::State::new(&of(members, RunConfig::began), device))
            }
            Model::Magan => {
                Adaptive::Magan(magan::State::new(&of(members, RunConfig::magan), device))
            }
            Model::WganGp => Adaptive::WganGp(wgan_gp::State::new(
                &of(members, RunConfig::wgan_gp),
                device,
            )),
            Model::Ebgan | Model::Gan | Model::Ladder | Model::EbganLn => {
                Adaptive::Fixed(members[0].model)
            }
        }
    }

    pub fn model(&self) -> Model {
        match self {
            Adaptive::Fixed(model) => *model,
            Adaptive::Began(_) => Model::Began,
            Adaptive::Magan(_) => Model::Magan,
            Adaptive::WganGp(_) => Model::WganGp,
        }
    }

    /// Rows of a log window (`Model::log_rows`).
    pub fn log_rows(&self) -> i64 {
        self.model().log_rows()
    }

    /// Whether the log has a margin column (`Model::has_margin`).
    pub fn has_margin(&self) -> bool {
        self.model().has_margin()
    }

    /// Whether the step after `done` steps (of `per_epoch` an epoch) is one of MAGAN's
    /// pretraining steps (D alone).
    pub fn pretraining(&self, done: u64, per_epoch: u64) -> bool {
        matches!(self, Adaptive::Magan(m) if m.pretraining(done, per_epoch))
    }

    /// The fakes' part of an auto-encoder D's loss: BEGAN's k_t, MAGAN's margin, else
    /// `scheduled` margins.
    pub fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> EnergyLoss<'a> {
        match self {
            Adaptive::Began(b) => EnergyLoss::Began(&b.k),
            Adaptive::Magan(m) => EnergyLoss::Margin(&m.margin),
            Adaptive::Fixed(_) | Adaptive::WganGp(_) => EnergyLoss::Margin(scheduled),
        }
    }

    /// WGAN-GP's state (its penalty weights and critic turns).
    pub fn wgan_gp(&self) -> Option<&wgan_gp::State> {
        match self {
            Adaptive::WganGp(w) => Some(w),
            Adaptive::Fixed(_) | Adaptive::Began(_) | Adaptive::Magan(_) => None,
        }
    }

    /// After a step: BEGAN moves k_t, MAGAN sums the step's mean energies. Members that are not
    /// alive keep their state.
    pub fn after_step(&mut self, out: &StepOutput) {
        tch::no_grad(|| match self {
            Adaptive::Began(b) => b.after_step(&out.real, &out.fake, &out.alive),
            Adaptive::Magan(m) => m.after_step(&out.real, &out.fake, &out.alive),
            Adaptive::Fixed(_) | Adaptive::WganGp(_) => {}
        })
    }

    /// After step `done` (of `per_epoch` an epoch): MAGAN's margin at an epoch's end.
    pub fn after_epoch(&mut self, done: u64, per_epoch: u64) {
        if let Adaptive::Magan(m) = self {
            tch::no_grad(|| m.after_epoch(done, per_epoch))
        }
    }

    /// Statistics logged beside the losses from the state, `[R, K]`: BEGAN's k_t and M_global.
    pub fn extra_stats(&self) -> Option<Tensor> {
        match self {
            Adaptive::Began(b) => Some(b.log_rows()),
            Adaptive::Fixed(_) | Adaptive::Magan(_) | Adaptive::WganGp(_) => None,
        }
    }

    /// MAGAN's current margins `[K]` (the log's margin column).
    pub fn margins(&self) -> Option<&Tensor> {
        match self {
            Adaptive::Magan(m) => Some(&m.margin),
            Adaptive::Fixed(_) | Adaptive::Began(_) | Adaptive::WganGp(_) => None,
        }
    }

    /// Named tensors for a checkpoint (`adaptive/<name>`; WGAN-GP keeps none: its state is
    /// its settings).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named: Vec<(&str, &Tensor)> = match self {
            Adaptive::Began(b) => b.named().into(),
            Adaptive::Magan(m) => m.named().into(),
            Adaptive::Fixed(_) | Adaptive::WganGp(_) => vec![],
        };
        named
            .into_iter()
            .map(|(n, t)| (format!("adaptive/{n}"), t.shallow_clone()))
            .collect()
    }

    /// Restores [`Adaptive::state`]; `get(name)` answers a checkpoint's tensor (on the device).
    pub fn load(&mut self, get: impl Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        let named: Vec<(&str, &mut Tensor)> = match self {
            Adaptive::Began(b) => b.named_mut().into(),
            Adaptive::Magan(m) => m.named_mut().into(),
            Adaptive::Fixed(_) | Adaptive::WganGp(_) => vec![],
        };
        for (name, t) in named {
            let key = format!("adaptive/{name}");
            *t = match get(&key) {
                Some(saved) if saved.size() == t.size() => saved.to_kind(t.kind()),
                _ => return Err(format!("no `{key}` of shape {:?}", t.size())),
            };
        }
        Ok(())
    }
}
