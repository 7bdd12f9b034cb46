//! The paper's training step, written once for every network (MLP cohorts of K runs and the
//! convolutional runs, K = 1) and every objective (EBGAN's margin, BEGAN's k_t, GAN's logistic
//! D, WGAN-GP's critic and gradient penalty): one D update on real images and detached fakes
//! (Eq. 1), then one G update through the updated D on the same fakes (Eq. 2; WGAN-GP: on its
//! critic's turns only). Losses are means per member, summed over members only
//! for the backward pass, so no gradient crosses members.

use crate::config::RunConfig;
use crate::family::EnergyMeasure;
use ebgan_core::{
    began, gan_loss, loss, member_wise, pulling_away::pulling_away, wgan_gp, Energy, MemberOptim,
};
use tch::Tensor;

/// How an auto-encoder D's reconstruction error becomes energies `[K, B]`: EBGAN's and MAGAN's
/// `energy`, or BEGAN's per-pixel mean of |v - D(v)|^eta.
#[derive(Clone, Copy, Debug)]
pub enum EnergyOf {
    Norm(Energy),
    Began { eta: f64 },
}

impl EnergyOf {
    pub fn of_run(c: &RunConfig) -> Self {
        match c.model.energy_measure() {
            EnergyMeasure::Norm => EnergyOf::Norm(c.energy),
            EnergyMeasure::Began => EnergyOf::Began { eta: c.began_eta },
        }
    }

    /// Energies of reconstructions `recon` of `x`, both `[K, B, ...]`.
    pub fn energy(self, recon: &Tensor, x: &Tensor) -> Tensor {
        match self {
            EnergyOf::Norm(e) => e.of(recon, x),
            EnergyOf::Began { eta } => began::energy(recon, x, eta),
        }
    }
}

/// What D says of each of a few batches, per member and sample: one kind of answer for all of
/// them, the kind its network gives, so a step never meets two kinds at once.
pub enum Critique {
    /// Auto-encoder D: energies `[K, B]` and the encoder's codes `[K, B, ...]` (for PT).
    Energy {
        energy: Vec<Tensor>,
        code: Vec<Tensor>,
    },
    /// Logistic D: logits `[K, B]`.
    Logit(Vec<Tensor>),
    /// WGAN-GP's critic: unbounded scores `[K, B]`.
    Value(Vec<Tensor>),
}

/// A discriminator as the step sees it: D in training mode on batches `xs`, one answer each, in
/// order (dropout masks, where D has dropout, drawn from D's own stream in call order: real,
/// fake and WGAN-GP's interpolates for D's step, then fake for G's).
pub trait Critic {
    fn critique(&mut self, xs: &[&Tensor]) -> Critique;
}

/// The `N` answers of a critique of `N` batches.
fn each<const N: usize>(answers: Vec<Tensor>) -> [Tensor; N] {
    answers
        .try_into()
        .unwrap_or_else(|a: Vec<Tensor>| panic!("{} answers to {N} batches", a.len()))
}

pub use crate::family::EnergyLoss;

/// Per-member constants of the objective, `[K]` on the device.
pub struct Objective<'a> {
    pub energy: EnergyLoss<'a>,
    /// PT weights; None when no member uses the pulling-away term.
    pub pulling_away: Option<&'a Tensor>,
    /// WGAN-GP's terms (a critic's objective has them).
    pub wasserstein: Option<Wasserstein<'a>>,
}

/// WGAN-GP's part of a step.
pub struct Wasserstein<'a> {
    /// Penalty weights lambda `[K]`.
    pub lambda: &'a Tensor,
    /// Interpolation weights eps `[K, B]`, uniform in [0, 1).
    pub eps: &'a Tensor,
    /// Whether G updates after this critic step (every n_critic-th step).
    pub g_turn: bool,
}

/// Per-member results of one step, all `[K]` on the device.
pub struct StepOutput {
    pub loss_d: Tensor,
    pub loss_g: Tensor,
    /// Mean real / fake energy (EBGAN) or D(x) probability (GAN).
    pub real: Tensor,
    pub fake: Tensor,
    /// `alive` and-ed with "both losses finite".
    pub alive: Tensor,
    /// WGAN-GP's gradient penalty (before its weight).
    pub penalty: Option<Tensor>,
}

impl StepOutput {
    /// `[4, K]`: loss D, loss G, real, fake (the rows of a loss log), then WGAN-GP's penalty.
    pub fn stats(&self) -> Tensor {
        let mut rows = vec![&self.loss_d, &self.loss_g, &self.real, &self.fake];
        rows.extend(&self.penalty);
        Tensor::stack(&rows, 0)
    }
}

/// One D step, then one G step, on real `x` and `fake` = G(z) (with its graph). Members not
/// `alive` (`[K]` bool), or whose loss is not finite, are not updated.
pub fn step(
    critic: &mut dyn Critic,
    opt_d: &mut MemberOptim,
    opt_g: &mut MemberOptim,
    x: &Tensor,
    fake: &Tensor,
    objective: &Objective,
    alive: &Tensor,
) -> StepOutput {
    // D step: fakes detached, so L_D does not update G. WGAN-GP's interpolates are critiqued
    // with them (a pure function of x, the fakes and eps, made first).
    let fake_d = fake.detach();
    let x_hat = (objective.wasserstein.as_ref()).map(|w| wgan_gp::interpolates(x, &fake_d, w.eps));
    let mut batches = vec![x, &fake_d];
    batches.extend(&x_hat);
    let mut penalty = None;
    let (loss_d, real, fake_stat) = match critic.critique(&batches) {
        Critique::Energy { energy, .. } => {
            let [e_real, e_fake] = each(energy);
            let loss = match objective.energy {
                // The hinge is taken on each fake sample's energy, then averaged (Eq. 1).
                EnergyLoss::Margin(m) => loss::discriminator(&e_real, &e_fake, m),
                EnergyLoss::Began(k) => began::discriminator(&e_real, &e_fake, k),
            };
            let mean = |e: Tensor| e.mean_dim(1, false, None);
            (loss, mean(e_real), mean(e_fake))
        }
        Critique::Logit(logits) => {
            let [l_real, l_fake] = each(logits);
            (
                gan_loss::discriminator(&l_real, &l_fake),
                member_wise(&l_real, Tensor::sigmoid).mean_dim(1, false, None),
                member_wise(&l_fake, Tensor::sigmoid).mean_dim(1, false, None),
            )
        }
        Critique::Value(values) => {
            let (Some(w), Some(x_hat)) = (objective.wasserstein.as_ref(), x_hat.as_ref()) else {
                panic!("a critic's objective has WGAN-GP's terms")
            };
            let [v_real, v_fake, v_hat] = each(values);
            let gp = wgan_gp::gradient_penalty(&v_hat, x_hat);
            let loss = wgan_gp::critic(&v_real, &v_fake, &gp, w.lambda);
            penalty = Some(gp.detach());
            (
                loss,
                v_real.mean_dim(1, false, None),
                v_fake.mean_dim(1, false, None),
            )
        }
    };
    let alive_d = alive.logical_and(&loss_d.isfinite());
    opt_d.backward_step(&loss_d.sum(None), &alive_d);

    // WGAN-GP between G's turns: no G step; its loss -D(G(z)) as the critic saw the fakes.
    if let Some(Wasserstein { g_turn: false, .. }) = objective.wasserstein {
        return StepOutput {
            loss_d: loss_d.detach(),
            loss_g: wgan_gp::generator(&fake_stat.detach().unsqueeze(1)),
            real: real.detach(),
            fake: fake_stat.detach(),
            alive: alive_d,
            penalty,
        };
    }

    // G step through the updated D; the gradient flows through D's reconstruction AND its
    // target G(z) (no detach). L_G does not update D: only G's gradients are taken.
    let loss_g = match critic.critique(&[fake]) {
        Critique::Energy { energy, code } => {
            let ([energy], [code]) = (each(energy), each(code));
            let l = loss::generator(&energy);
            match objective.pulling_away {
                Some(w) => l + w * pulling_away(&code),
                None => l,
            }
        }
        Critique::Logit(logits) => gan_loss::generator(&each::<1>(logits)[0]),
        Critique::Value(values) => wgan_gp::generator(&each::<1>(values)[0]),
    };
    let alive = alive_d.logical_and(&loss_g.isfinite());
    opt_g.backward_step(&loss_g.sum(None), &alive);
    StepOutput {
        loss_d: loss_d.detach(),
        loss_g: loss_g.detach(),
        real: real.detach(),
        fake: fake_stat.detach(),
        alive,
        penalty,
    }
}

/// MAGAN's pretraining step: D alone as an auto-encoder of real `x` (L_D = mean D(x)); G is
/// not run. G's loss and the fake energy read 0.
pub fn pretrain_step(
    critic: &mut dyn Critic,
    opt_d: &mut MemberOptim,
    x: &Tensor,
    alive: &Tensor,
) -> StepOutput {
    let [energy] = match critic.critique(&[x]) {
        Critique::Energy { energy, .. } => each(energy),
        Critique::Logit(_) | Critique::Value(_) => {
            panic!("only auto-encoder discriminators are pretrained")
        }
    };
    let loss_d = energy.mean_dim(1, false, None);
    let alive = alive.logical_and(&loss_d.isfinite());
    opt_d.backward_step(&loss_d.sum(None), &alive);
    let loss_d = loss_d.detach();
    StepOutput {
        loss_g: loss_d.zeros_like(),
        fake: loss_d.zeros_like(),
        real: loss_d.shallow_clone(),
        loss_d,
        alive,
        penalty: None,
    }
}
