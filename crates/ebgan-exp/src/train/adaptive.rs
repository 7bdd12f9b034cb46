//! What BEGAN and MAGAN carry from step to step, per member on the device: BEGAN's control
//! variable k_t (moved after every step) and MAGAN's margin (set from the mean real energy once
//! D's pretraining ends, then adapted at each epoch's end). Saved with the run's checkpoint.

use super::step::{EnergyLoss, StepOutput};
use crate::config::{Model, RunConfig};
use ebgan_core::{began, magan};
use tch::{Device, Kind, Tensor};

pub enum Adaptive {
    /// EBGAN (its margin schedule) and GAN: nothing carried across steps.
    Fixed,
    Began(Began),
    Magan(Magan),
}

pub struct Began {
    /// k_t `[K]`, from 0.
    k: Tensor,
    gamma: Tensor,
    lambda_k: Tensor,
    /// M_global `[K]` of the last step.
    m_global: Tensor,
}

pub struct Magan {
    margin: Tensor,
    /// Sums over the open epoch's steps of the batch-mean real and fake energies `[K]`.
    sum_real: Tensor,
    sum_fake: Tensor,
    /// The previous adversarial epoch's mean fake energy (+inf before the first).
    previous_fake: Tensor,
    strict: Tensor,
    pretrain_epochs: u64,
}

/// `[K]` on `device` from one f64 per member.
fn per_member(members: &[RunConfig], device: Device, f: impl Fn(&RunConfig) -> f64) -> Tensor {
    let v: Vec<f32> = members.iter().map(|m| f(m) as f32).collect();
    Tensor::from_slice(&v).to_device(device)
}

impl Adaptive {
    /// The state of a cohort of `members` (one model).
    pub fn new(members: &[RunConfig], device: Device) -> Self {
        let k = members.len() as i64;
        let zeros = || Tensor::zeros([k], (Kind::Float, device));
        match members[0].model {
            Model::Began => Adaptive::Began(Began {
                k: zeros(),
                gamma: per_member(members, device, |m| m.began_gamma),
                lambda_k: per_member(members, device, |m| m.began_lambda_k),
                m_global: zeros(),
            }),
            Model::Magan => {
                let strict: Vec<bool> = members.iter().map(|m| m.magan_strict).collect();
                Adaptive::Magan(Magan {
                    margin: zeros(),
                    sum_real: zeros(),
                    sum_fake: zeros(),
                    previous_fake: Tensor::full([k], f64::INFINITY, (Kind::Float, device)),
                    strict: Tensor::from_slice(&strict).to_device(device),
                    pretrain_epochs: members[0].magan_pretrain_epochs as u64,
                })
            }
            _ => Adaptive::Fixed,
        }
    }

    /// Whether the step after `done` steps (of `per_epoch` an epoch) is one of MAGAN's
    /// pretraining steps (D alone).
    pub fn pretraining(&self, done: u64, per_epoch: u64) -> bool {
        matches!(self, Adaptive::Magan(m) if done < m.pretrain_epochs * per_epoch)
    }

    /// The fakes' part of D's loss: BEGAN's k_t, MAGAN's margin, else `scheduled` margins.
    pub fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> EnergyLoss<'a> {
        match self {
            Adaptive::Began(b) => EnergyLoss::Began(&b.k),
            Adaptive::Magan(m) => EnergyLoss::Margin(&m.margin),
            Adaptive::Fixed => EnergyLoss::Margin(scheduled),
        }
    }

    /// After a step: BEGAN moves k_t from the step's L(x) and L(G(z)), both measured by D
    /// before its update, as BEGAN evaluates all three losses with one D (its G step's fakes
    /// are the D step's, so L(G(z_G)) is the D step's mean fake energy); MAGAN sums the step's
    /// mean energies. Members that are not alive keep their state.
    pub fn after_step(&mut self, out: &StepOutput) {
        tch::no_grad(|| match self {
            Adaptive::Began(b) => {
                let k = began::update_k(&b.k, &out.real, &out.fake, &b.gamma, &b.lambda_k);
                b.k = k.where_self(&out.alive, &b.k);
                b.m_global = began::convergence(&out.real, &out.fake, &b.gamma);
            }
            Adaptive::Magan(m) => {
                m.sum_real += out.real.where_scalarother(&out.alive, 0.0);
                m.sum_fake += out.fake.where_scalarother(&out.alive, 0.0);
            }
            Adaptive::Fixed => {}
        })
    }

    /// After step `done` (of `per_epoch` an epoch) when it ends an epoch: MAGAN's margin becomes
    /// the mean real energy of the last pretraining epoch, and after each adversarial epoch
    /// follows MAGAN's rule.
    pub fn after_epoch(&mut self, done: u64, per_epoch: u64) {
        let Adaptive::Magan(m) = self else { return };
        if !done.is_multiple_of(per_epoch) {
            return;
        }
        let pretrain_steps = m.pretrain_epochs * per_epoch;
        tch::no_grad(|| {
            // Every epoch is `per_epoch` steps from its first (runs start and resume on them).
            let n = per_epoch as f64;
            let (real, fake) = (&m.sum_real / n, &m.sum_fake / n);
            if done == pretrain_steps {
                m.margin = real;
            } else if done > pretrain_steps {
                m.margin =
                    magan::adapt_margin(&m.margin, &real, &fake, &m.previous_fake, &m.strict);
                m.previous_fake = fake;
            }
            let _ = m.sum_real.zero_();
            let _ = m.sum_fake.zero_();
        })
    }

    /// Statistics logged beside the losses, `[R, K]`: BEGAN's k_t and M_global.
    pub fn extra_stats(&self) -> Option<Tensor> {
        match self {
            Adaptive::Began(b) => Some(Tensor::stack(&[&b.k, &b.m_global], 0)),
            _ => None,
        }
    }

    /// Rows of a log window: loss D, loss G, real, fake, then [`Adaptive::extra_stats`].
    pub fn log_rows(&self) -> i64 {
        match self {
            Adaptive::Began(_) => 6,
            _ => 4,
        }
    }

    /// Whether the model has a margin at all (BEGAN has none: its log's margin column is NaN).
    pub fn has_margin(&self) -> bool {
        !matches!(self, Adaptive::Began(_))
    }

    /// MAGAN's current margins `[K]` (the log's margin column).
    pub fn margins(&self) -> Option<&Tensor> {
        match self {
            Adaptive::Magan(m) => Some(&m.margin),
            _ => None,
        }
    }

    /// Named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named = |v: &[(&str, &Tensor)]| {
            v.iter()
                .map(|(n, t)| (format!("adaptive/{n}"), t.shallow_clone()))
                .collect()
        };
        match self {
            Adaptive::Began(b) => named(&[("k", &b.k), ("m_global", &b.m_global)]),
            Adaptive::Magan(m) => named(&[
                ("margin", &m.margin),
                ("sum_real", &m.sum_real),
                ("sum_fake", &m.sum_fake),
                ("previous_fake", &m.previous_fake),
            ]),
            Adaptive::Fixed => vec![],
        }
    }

    /// Restores [`Adaptive::state`]; `get(name)` answers a checkpoint's tensor (on the device).
    pub fn load(&mut self, get: impl Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        let want = |name: &str, like: &Tensor| -> Result<Tensor, String> {
            let key = format!("adaptive/{name}");
            match get(&key) {
                Some(t) if t.size() == like.size() => Ok(t.to_kind(like.kind())),
                _ => Err(format!("no `{key}` of shape {:?}", like.size())),
            }
        };
        match self {
            Adaptive::Began(b) => {
                b.k = want("k", &b.k)?;
                b.m_global = want("m_global", &b.m_global)?;
            }
            Adaptive::Magan(m) => {
                m.margin = want("margin", &m.margin)?;
                m.sum_real = want("sum_real", &m.sum_real)?;
                m.sum_fake = want("sum_fake", &m.sum_fake)?;
                m.previous_fake = want("previous_fake", &m.previous_fake)?;
            }
            Adaptive::Fixed => {}
        }
        Ok(())
    }
}
