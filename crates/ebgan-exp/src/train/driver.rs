//! One D/G step driver for the MLP cohorts and the convolutional runs: the training step after
//! `done` steps (MAGAN's pretraining step, or G's fakes, WGAN-GP's interpolation weights on its
//! critic's steps and the paper's D-then-G [`step`]), then what the family carries forward. The
//! trainers hand over their parts and how they draw; the sequence is written once, here.

use super::adaptive::Adaptive;
use super::step::{pretrain_step, step, Critic, Objective, StepOutput, Wasserstein};
use ebgan_core::MemberOptim;
use tch::Tensor;

/// What a step drives: a trainer's D (as its critic), both optimizers, its family's state and
/// its PT weights `[K]` (None when no member uses the pulling-away term).
pub struct Parts<'a> {
    pub critic: &'a mut dyn Critic,
    pub opt_d: &'a mut MemberOptim,
    pub opt_g: &'a mut MemberOptim,
    pub adaptive: &'a mut Adaptive,
    pub pulling_away: Option<&'a Tensor>,
}

/// How a trainer draws a step: G's fakes (with their graph), and WGAN-GP's interpolation
/// weights given D's steps taken so far. Drawn in that order, fakes first, so every trainer's
/// streams are read as they always were.
pub struct Draw<F, E> {
    pub fake: F,
    pub eps: E,
}

/// The training step after `done` steps of `per_epoch` an epoch, for members `alive` (`[K]`
/// bool; not updated when false), at scheduled margins `margin` `[K]`: MAGAN's pretraining step
/// (D alone) or [`adversarial`], then BEGAN's, MAGAN's and WGAN-GP's updates.
pub fn train_step<F, E>(
    mut parts: Parts,
    x: &Tensor,
    draw: Draw<F, E>,
    margin: &Tensor,
    (done, per_epoch): (u64, u64),
    alive: &Tensor,
) -> StepOutput
where
    F: FnOnce() -> Tensor,
    E: FnOnce(u64) -> Tensor,
{
    let out = if parts.adaptive.pretraining(done, per_epoch) {
        pretrain_step(parts.critic, parts.opt_d, x, alive)
    } else {
        adversarial(&mut parts, x, draw, margin, alive)
    };
    parts.adaptive.after_step(&out);
    parts.adaptive.after_epoch(done + 1, per_epoch);
    out
}

/// One D update on real `x` and the drawn fakes (detached), then one G update through the
/// updated D (the shared [`step`]), with the family's k_t or margins (`margin` where it keeps
/// none of its own); nothing carried forward.
pub fn adversarial<F, E>(
    parts: &mut Parts,
    x: &Tensor,
    draw: Draw<F, E>,
    margin: &Tensor,
    alive: &Tensor,
) -> StepOutput
where
    F: FnOnce() -> Tensor,
    E: FnOnce(u64) -> Tensor,
{
    let fake = (draw.fake)();
    let eps;
    let wasserstein = match parts.adaptive.wgan_gp() {
        Some(w) => {
            // D's optimizer has taken one step per step so far: the steps done.
            let done = parts.opt_d.steps_taken();
            eps = (draw.eps)(done);
            Some(Wasserstein {
                lambda: &w.lambda,
                eps: &eps,
                g_turn: w.g_turn(done),
            })
        }
        None => None,
    };
    let objective = Objective {
        energy: parts.adaptive.energy_loss(margin),
        pulling_away: parts.pulling_away,
        wasserstein,
    };
    step(
        parts.critic,
        parts.opt_d,
        parts.opt_g,
        x,
        &fake,
        &objective,
        alive,
    )
}
