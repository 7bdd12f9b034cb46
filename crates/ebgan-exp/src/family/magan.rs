//! MAGAN (Wang et al. 2017, arXiv 1704.03817) on EBGAN's losses: D first pretrained on real data
//! alone, the margin then set to the mean real energy of the last pretraining epoch, and at each
//! epoch's end lowered to the epoch's mean real energy under MAGAN's rule (ebgan-core
//! `magan.rs`). Here are its settings and the margin it carries, per member.

use super::{check, DKind, EnergyMeasure, Invalid, LogColumn};
use ebgan_core::magan;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub const D: DKind = DKind::AutoEncoder;
pub const ENERGY: EnergyMeasure = EnergyMeasure::Norm;
pub const LOG_COLUMNS: &[LogColumn] = &[];
pub const HAS_MARGIN: bool = true;
pub const LABEL: &str = "MAGAN";
pub const COLOR: (u8, u8, u8) = (255, 127, 14);

/// MAGAN's settings (`magan_*` in an experiment file).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Epochs of D alone on real data, before the adversarial ones.
    #[serde(rename = "magan_pretrain_epochs")]
    pub pretrain_epochs: usize,
    /// The margin rule compares strictly (`<`); false: `<=`.
    #[serde(rename = "magan_strict")]
    pub strict: bool,
}

/// MAGAN's checks, of its settings and of the run's `steps`, which its epochs exclude.
pub fn validate(s: &Settings, run: &super::Common) -> Result<(), Invalid> {
    check(
        s.pretrain_epochs >= 1,
        "magan_pretrain_epochs",
        "magan_pretrain_epochs must be >= 1 (MAGAN's margin starts at the pretrained D's mean real energy)",
    )?;
    let per_epoch = run.steps_per_epoch;
    check(
        per_epoch
            .checked_mul(s.pretrain_epochs as u64)
            .is_some_and(|n| n <= super::MAX_STEPS),
        "magan_pretrain_epochs",
        format!(
            "magan_pretrain_epochs = {} of {per_epoch} steps each is over 10^12 steps",
            s.pretrain_epochs
        ),
    )?;
    check(
        run.steps == 0,
        "steps",
        "MAGAN adapts its margin at epoch ends: give epochs, not steps",
    )
}

/// What MAGAN computes instead of a field another family reads (None: the field is free).
pub fn replaces(key: &str) -> Option<String> {
    match key {
        "margin" | "margin_decay" => Some(format!(
            "model \"magan\" sets its own margin (MAGAN starts at the mean real energy): leave {key} unset"
        )),
        "pulling_away" => {
            Some("the pulling-away term is EBGAN-PT's (model = \"ebgan\"), not model \"magan\"'s".into())
        }
        _ => None,
    }
}

/// The margin per member `[K]` and the sums it is adapted from, on the device.
pub struct State {
    pub margin: Tensor,
    /// Sums over the open epoch's steps of the batch-mean real and fake energies `[K]`.
    sum_real: Tensor,
    sum_fake: Tensor,
    /// The previous adversarial epoch's mean fake energy (+inf before the first).
    previous_fake: Tensor,
    strict: Tensor,
    pretrain_epochs: u64,
}

impl State {
    /// The state of a cohort (`pretrain_epochs` is part of its key: the first member's).
    pub fn new(members: &[Settings], device: Device) -> Self {
        let zeros = || super::per_member(members.iter().map(|_| 0.0), device);
        let strict: Vec<bool> = members.iter().map(|m| m.strict).collect();
        State {
            margin: zeros(),
            sum_real: zeros(),
            sum_fake: zeros(),
            previous_fake: super::per_member(members.iter().map(|_| f64::INFINITY), device),
            strict: Tensor::from_slice(&strict).to_device(device),
            pretrain_epochs: members[0].pretrain_epochs as u64,
        }
    }
}

impl super::State for State {
    /// Whether the step after `done` steps (of `per_epoch` an epoch) pretrains D alone.
    fn pretraining(&self, done: u64, per_epoch: u64) -> bool {
        done < self.pretrain_epochs * per_epoch
    }

    /// Sums a step's mean energies `[K]` (members not `alive` add 0).
    fn after_step(&mut self, real: &Tensor, fake: &Tensor, alive: &Tensor) {
        self.sum_real += real.where_scalarother(alive, 0.0);
        self.sum_fake += fake.where_scalarother(alive, 0.0);
    }

    /// After step `done` when it ends an epoch: the margin becomes the mean real energy of the
    /// last pretraining epoch, and after each adversarial epoch follows MAGAN's rule.
    fn after_epoch(&mut self, done: u64, per_epoch: u64) {
        if !done.is_multiple_of(per_epoch) {
            return;
        }
        let pretrain_steps = self.pretrain_epochs * per_epoch;
        // Every epoch is `per_epoch` steps from its first (runs start and resume on them).
        let n = per_epoch as f64;
        let (real, fake) = (&self.sum_real / n, &self.sum_fake / n);
        if done == pretrain_steps {
            self.margin = real;
        } else if done > pretrain_steps {
            self.margin = magan::adapt_margin(
                &self.margin,
                &real,
                &fake,
                &self.previous_fake,
                &self.strict,
            );
            self.previous_fake = fake;
        }
        let _ = self.sum_real.zero_();
        let _ = self.sum_fake.zero_();
    }

    fn energy_loss<'a>(&'a self, _: &'a Tensor) -> super::EnergyLoss<'a> {
        super::EnergyLoss::Margin(&self.margin)
    }

    fn wgan_gp(&self) -> Option<&super::wgan_gp::State> {
        None
    }

    fn extra_stats(&self) -> Option<Tensor> {
        None
    }

    fn margins(&self) -> Option<&Tensor> {
        Some(&self.margin)
    }

    fn named(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("margin", &self.margin),
            ("sum_real", &self.sum_real),
            ("sum_fake", &self.sum_fake),
            ("previous_fake", &self.previous_fake),
        ]
    }

    fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        vec![
            ("margin", &mut self.margin),
            ("sum_real", &mut self.sum_real),
            ("sum_fake", &mut self.sum_fake),
            ("previous_fake", &mut self.previous_fake),
        ]
    }
}
