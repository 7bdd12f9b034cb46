//! What a family carries from step to step for a cohort of its runs: the [`State`] trait (one
//! impl per family file) and [`state`], which makes a cohort's.

use super::{began, magan, wgan_gp, Settings};
use tch::{Device, Tensor};

/// The state of a cohort whose members have `settings` (one model), on `device`.
pub fn state(settings: &[Settings], device: Device) -> Box<dyn State> {
    let (mut began, mut magan, mut wgan_gp) = (vec![], vec![], vec![]);
    for s in settings {
        assert_eq!(s.model(), settings[0].model(), "a cohort trains one model");
        match s {
            Settings::Began(b) => began.push(*b),
            Settings::Magan(m) => magan.push(*m),
            Settings::WganGp(w) => wgan_gp.push(*w),
            Settings::Ebgan(_) | Settings::Gan | Settings::Ladder(_) | Settings::EbganLn(..) => {}
        }
    }
    match settings[0] {
        Settings::Began(_) => Box::new(began::State::new(&began, device)),
        Settings::Magan(_) => Box::new(magan::State::new(&magan, device)),
        Settings::WganGp(_) => Box::new(wgan_gp::State::new(&wgan_gp, device)),
        Settings::Ebgan(_) | Settings::Gan | Settings::Ladder(_) | Settings::EbganLn(..) => {
            Box::new(Stateless)
        }
    }
}

/// How an auto-encoder D's loss treats the fakes' energies, per member `[K]` on the device.
pub enum EnergyLoss<'a> {
    /// EBGAN and MAGAN: the hinge [m - D(G(z))]^+ at margins m.
    Margin(&'a Tensor),
    /// BEGAN: - k_t L(G(z)) with control variables k_t.
    Began(&'a Tensor),
}

/// What a family carries from step to step for a cohort of its runs, per member `[K]` on the
/// device, saved with the run's checkpoint: BEGAN's k_t, MAGAN's margin and pretraining,
/// WGAN-GP's penalty weights and critic turns, nothing for the rest ([`Stateless`]). One impl
/// per family file, every method answered, so a new family's impl is told all it must say.
pub trait State {
    /// Whether the step after `done` steps (of `per_epoch` an epoch) trains D alone.
    fn pretraining(&self, done: u64, per_epoch: u64) -> bool;
    /// The fakes' part of an auto-encoder D's loss, given the schedule's margins `scheduled`.
    fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> EnergyLoss<'a>;
    /// WGAN-GP's penalty weights and critic turns (a critic's objective has them).
    fn wgan_gp(&self) -> Option<&wgan_gp::State>;
    /// After a step whose D measured mean energies `real` and `fake` `[K]`; members not
    /// `alive` keep their state.
    fn after_step(&mut self, real: &Tensor, fake: &Tensor, alive: &Tensor);
    /// After step `done` (of `per_epoch` an epoch).
    fn after_epoch(&mut self, done: u64, per_epoch: u64);
    /// Statistics logged beside the losses, `[R, K]` ([`Model::log_columns`]).
    fn extra_stats(&self) -> Option<Tensor>;
    /// The margins the family sets itself `[K]` (the log's margin column), if it does.
    fn margins(&self) -> Option<&Tensor>;
    /// What a checkpoint keeps, by name.
    fn named(&self) -> Vec<(&'static str, &Tensor)>;
    fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)>;
}

/// EBGAN (its margin schedule), GAN and the ladders: nothing carried across steps.
pub struct Stateless;

impl State for Stateless {
    fn pretraining(&self, _: u64, _: u64) -> bool {
        false
    }
    fn energy_loss<'a>(&'a self, scheduled: &'a Tensor) -> EnergyLoss<'a> {
        EnergyLoss::Margin(scheduled)
    }
    fn wgan_gp(&self) -> Option<&wgan_gp::State> {
        None
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

/// `[K]` on `device`, one value per member.
pub(super) fn per_member(values: impl Iterator<Item = f64>, device: Device) -> Tensor {
    let v: Vec<f32> = values.map(|x| x as f32).collect();
    Tensor::from_slice(&v).to_device(device)
}
