//! A cohort's D as the shared step sees it: the member-batched networks of its kind, built
//! through `family::BuildD`, answering each batch with energies, logits or critic values.

use crate::family::BuildD;
use crate::train::step::{Critic, Critique, EnergyOf};
use ebgan_models::mlp::{AutoEncoder, Logistic, MlpSpec};
use ebgan_models::rng::MemberRng;
use ebgan_models::Vars;
use tch::Tensor;

pub(super) enum Discriminator {
    Energy(AutoEncoder),
    Logistic(Logistic),
    /// WGAN-GP: the logistic network without batch norm, its output a score.
    Critic(Logistic),
}

/// D of a cohort as the shared step sees it: member-batched nets, dropout masks from each
/// member's own stream.
pub(super) struct MlpCritic {
    pub(super) d: Discriminator,
    pub(super) masks: MemberRng,
    pub(super) energy: EnergyOf,
}

impl Critic for MlpCritic {
    fn critique(&mut self, xs: &[&Tensor]) -> Critique {
        let masks = &mut self.masks;
        match &self.d {
            Discriminator::Energy(ae) => {
                let (mut energy, mut code) = (vec![], vec![]);
                for x in xs {
                    let out = ae.forward(x, Some(&mut *masks));
                    energy.push(self.energy.energy(&out.reconstruction, x));
                    code.push(out.code);
                }
                Critique::Energy { energy, code }
            }
            Discriminator::Logistic(net) => Critique::Logit(
                xs.iter()
                    .map(|x| net.forward(x, Some(&mut *masks)))
                    .collect(),
            ),
            Discriminator::Critic(net) => Critique::Value(
                xs.iter()
                    .map(|x| net.forward(x, Some(&mut *masks)))
                    .collect(),
            ),
        }
    }
}

/// D of a cohort's kind on its shared variables.
pub(super) struct BuildMlpD<'a> {
    pub(super) vars: &'a mut Vars,
    pub(super) spec: &'a MlpSpec,
}

impl BuildD for BuildMlpD<'_> {
    type D = Discriminator;
    fn auto_encoder(self) -> Discriminator {
        Discriminator::Energy(AutoEncoder::new(self.vars, self.spec))
    }
    fn logistic(self) -> Discriminator {
        Discriminator::Logistic(Logistic::new(self.vars, self.spec))
    }
    /// `spec` has no batch norm in D for a critic (RunConfig::mlp_spec).
    fn critic(self) -> Discriminator {
        Discriminator::Critic(Logistic::new(self.vars, self.spec))
    }
}
