//! Adam and SGD over member-stacked parameters (`[K, ...]`), with hyper-parameters per member.
//!
//! tch's optimizers hide their state (no exact resume) and take one learning rate for all
//! members; a grid cohort mixes learning rates and even Adam with SGD.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    Adam,
    Sgd,
}

/// One member's optimizer settings. Adam follows PyTorch's `torch.optim.Adam`; SGD is
/// PyTorch's `torch.optim.SGD` (momentum without dampening or Nesterov).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimHyper {
    pub kind: OptimKind,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub momentum: f64,
}

impl OptimHyper {
    pub fn adam(lr: f64) -> Self {
        OptimHyper {
            kind: OptimKind::Adam,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum: 0.0,
        }
    }
    pub fn sgd(lr: f64) -> Self {
        OptimHyper {
            kind: OptimKind::Sgd,
            ..Self::adam(lr)
        }
    }
}

pub struct MemberOptim {
    params: Vec<Tensor>,
    hyper: Vec<OptimHyper>,
    /// Adam first moments, or SGD momentum buffers for SGD-only cohorts.
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// SGD momentum buffers in a cohort that mixes Adam and SGD.
    momentum_buf: Vec<Tensor>,
    /// Per-member constants `[K]`: 1 - beta1, 1 - beta2, momentum, and the Adam mask.
    one_minus_beta1: Tensor,
    one_minus_beta2: Tensor,
    momentum: Tensor,
    is_adam: Tensor,
    any_adam: bool,
    any_sgd: bool,
    any_momentum: bool,
    step: u64,
}

fn per_member(values: impl Iterator<Item = f64>, like: &Tensor) -> Tensor {
    let v: Vec<f32> = values.map(|x| x as f32).collect();
    crate::upload(Tensor::from_slice(&v), like.device())
}

/// `[K]` -> `[K, 1, ..., 1]` with the rank of `p`.
fn shaped(v: &Tensor, p: &Tensor) -> Tensor {
    let mut shape = vec![1i64; p.dim()];
    shape[0] = -1;
    v.view(shape.as_slice())
}

impl MemberOptim {
    /// `params` all have the member dimension first, of size `hyper.len()`.
    pub fn new(params: Vec<Tensor>, hyper: Vec<OptimHyper>) -> Self {
        let k = hyper.len() as i64;
        assert!(!params.is_empty(), "an optimizer needs parameters");
        for p in &params {
            assert_eq!(
                p.size()[0],
                k,
                "parameter {:?} lacks the member dimension {k}",
                p.size()
            );
        }
        let like = &params[0];
        let any_adam = hyper.iter().any(|h| h.kind == OptimKind::Adam);
        let any_sgd = hyper.iter().any(|h| h.kind == OptimKind::Sgd);
        let any_momentum = hyper
            .iter()
            .any(|h| h.kind == OptimKind::Sgd && h.momentum != 0.0);
        let zeros = |on: bool| -> Vec<Tensor> {
            if on {
                params.iter().map(|p| p.zeros_like()).collect()
            } else {
                vec![]
            }
        };
        let exp_avg = zeros(any_adam || any_momentum);
        let exp_avg_sq = zeros(any_adam);
        let momentum_buf = zeros(any_adam && any_momentum);
        MemberOptim {
            one_minus_beta1: per_member(hyper.iter().map(|h| 1.0 - h.beta1), like),
            one_minus_beta2: per_member(hyper.iter().map(|h| 1.0 - h.beta2), like),
            momentum: per_member(hyper.iter().map(|h| h.momentum), like),
            is_adam: per_member(
                hyper
                    .iter()
                    .map(|h| (h.kind == OptimKind::Adam) as u8 as f64),
                like,
            )
            .to_kind(Kind::Bool),
            params,
            hyper,
            exp_avg,
            exp_avg_sq,
            momentum_buf,
            any_adam,
            any_sgd,
            any_momentum,
            step: 0,
        }
    }

    pub fn members(&self) -> usize {
        self.hyper.len()
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// Gradients of `loss` (a scalar) with respect to this optimizer's parameters only, then one
    /// update. Computing them functionally (no `.grad` buffers) skips zeroing and accumulating,
    /// and the weight gradients of networks this optimizer does not own.
    pub fn backward_step(&mut self, loss: &Tensor, alive: &Tensor) {
        let grads = Tensor::run_backward(&[loss], &self.params, false, false);
        self.step(&grads, alive);
    }

    /// One update from `grads` (in parameter order). Members where `alive` (`[K]` bool) is false
    /// take a zero step. A member whose gradients are NaN is excluded by its caller through
    /// `alive`; its own weights may then become NaN, which no other member can see.
    pub fn step(&mut self, grads: &[Tensor], alive: &Tensor) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        self.step += 1;
        let t = self.step as i32;
        let like = &self.params[0];
        let alive = alive.to_kind(Kind::Float);
        // Adam's bias corrections folded into a step size and eps per member (PyTorch's algebra):
        // lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) = (lr sqrt(bc2)/bc1) * m / (sqrt(v) + eps sqrt(bc2)).
        let bc = |h: &OptimHyper| (1.0 - h.beta1.powi(t), (1.0 - h.beta2.powi(t)).sqrt());
        let adam_step =
            per_member(self.hyper.iter().map(|h| h.lr * bc(h).1 / bc(h).0), like) * &alive;
        let adam_eps = per_member(self.hyper.iter().map(|h| h.eps * bc(h).1), like);
        let sgd_lr = per_member(self.hyper.iter().map(|h| h.lr), like) * &alive;
        let _guard = tch::no_grad_guard();
        for (i, g) in grads.iter().enumerate() {
            let p = &self.params[i];
            let adam = self.any_adam.then(|| {
                let (m, v) = (&mut self.exp_avg[i], &mut self.exp_avg_sq[i]);
                let _ = m.lerp_tensor_(g, &shaped(&self.one_minus_beta1, p));
                let _ = v.lerp_tensor_(&g.square(), &shaped(&self.one_minus_beta2, p));
                let mut update = v.sqrt();
                let _ = update
                    .g_add_(&shaped(&adam_eps, p))
                    .reciprocal_()
                    .g_mul_(m)
                    .g_mul_(&shaped(&adam_step, p));
                update
            });
            let sgd = self.any_sgd.then(|| {
                if self.any_momentum {
                    let buf = if self.any_adam {
                        &mut self.momentum_buf[i]
                    } else {
                        &mut self.exp_avg[i]
                    };
                    let _ = buf.g_mul_(&shaped(&self.momentum, p)).g_add_(g);
                    &*buf * shaped(&sgd_lr, p)
                } else {
                    g * shaped(&sgd_lr, p)
                }
            });
            let update = match (adam, sgd) {
                (Some(a), Some(s)) => a.where_self(&shaped(&self.is_adam, p), &s),
                (Some(a), None) => a,
                (None, Some(s)) => s,
                (None, None) => unreachable!("every member has an optimizer kind"),
            };
            let _ = self.params[i].g_sub_(&update);
        }
    }

    /// Moments and step counter, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut s = vec![("step".to_string(), Tensor::from_slice(&[self.step as i64]))];
        for (name, v) in [
            ("exp_avg", &self.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq),
            ("momentum_buf", &self.momentum_buf),
        ] {
            s.extend(
                v.iter()
                    .enumerate()
                    .map(|(i, t)| (format!("{name}.{i}"), t.shallow_clone())),
            );
        }
        s
    }

    /// Restores what [`MemberOptim::state`] saved; shapes must match this optimizer's.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let step = find("step").ok_or("optimizer state has no `step`")?;
        self.step = step.int64_value(&[0]) as u64;
        let _guard = tch::no_grad_guard();
        for (name, v) in [
            ("exp_avg", &mut self.exp_avg),
            ("exp_avg_sq", &mut self.exp_avg_sq),
            ("momentum_buf", &mut self.momentum_buf),
        ] {
            for (i, t) in v.iter_mut().enumerate() {
                let key = format!("{name}.{i}");
                let src = find(&key).ok_or_else(|| format!("optimizer state has no `{key}`"))?;
                if src.size() != t.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, expected {:?}",
                        src.size(),
                        t.size()
                    ));
                }
                t.copy_(src);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(v: &[f32], k: i64) -> Tensor {
        Tensor::from_slice(v).view([k, -1]).set_requires_grad(true)
    }

    /// One step with gradient `g`, through the loss sum(p * g).
    fn step_with(opt: &mut MemberOptim, p: &Tensor, g: &[f32], alive: &Tensor) {
        let loss = (p * Tensor::from_slice(g).view(p.size().as_slice())).sum(None);
        opt.backward_step(&loss, alive);
    }

    fn values(p: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(p.detach().flatten(0, -1)).unwrap()
    }

    fn all_alive(k: i64) -> Tensor {
        Tensor::ones([k], (Kind::Bool, tch::Device::Cpu))
    }

    #[test]
    fn adam_two_steps_by_hand() {
        // beta1 = 0.5, beta2 = 0.75, eps = 0, lr = 0.1, p0 = 1.
        // step 1, g = 2: m = 1, v = 1; mhat = 2, vhat = 4 -> p = 1 - 0.1 * 2/2 = 0.9.
        // step 2, g = 1: m = 1, v = 1; bc1 = 0.75, bc2 = 0.4375 -> mhat = 4/3, vhat = 16/7
        //   -> p = 0.9 - 0.1 * (4/3) / sqrt(16/7) = 0.9 - 0.1 * sqrt(7)/3.
        let p = param(&[1.0], 1);
        let h = OptimHyper {
            kind: OptimKind::Adam,
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            eps: 0.0,
            momentum: 0.0,
        };
        let mut opt = MemberOptim::new(vec![p.shallow_clone()], vec![h]);
        step_with(&mut opt, &p, &[2.0], &all_alive(1));
        assert!((values(&p)[0] - 0.9).abs() < 1e-6);
        step_with(&mut opt, &p, &[1.0], &all_alive(1));
        let want = 0.9 - 0.1 * 7f32.sqrt() / 3.0;
        assert!(
            (values(&p)[0] - want).abs() < 1e-6,
            "{:?} vs {want}",
            values(&p)
        );
    }

    #[test]
    fn mixed_cohort_applies_each_members_own_rule() {
        // Member 0: Adam lr 0.1 -> first step moves by lr * sign(g). Member 1: SGD lr 0.5 -> lr * g.
        // Member 2: SGD lr 1, momentum 0.5, two steps with g = 1: buf 1 then 1.5 -> p = 0 - 1 - 1.5.
        let p = param(&[1.0, -2.0, 1.0, 1.0, 0.0, 0.0], 3);
        let hyper = vec![
            OptimHyper::adam(0.1),
            OptimHyper::sgd(0.5),
            OptimHyper {
                momentum: 0.5,
                ..OptimHyper::sgd(1.0)
            },
        ];
        let mut opt = MemberOptim::new(vec![p.shallow_clone()], hyper);
        step_with(
            &mut opt,
            &p,
            &[3.0, -0.5, 4.0, -2.0, 1.0, 1.0],
            &all_alive(3),
        );
        let v = values(&p);
        let want = [0.9, -1.9, -1.0, 2.0, -1.0, -1.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{v:?} vs {want:?}");
        }
        step_with(&mut opt, &p, &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0], &all_alive(3));
        let v = values(&p);
        assert!(
            (v[4] + 2.5).abs() < 1e-6 && (v[5] + 2.5).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn dead_members_do_not_move_and_their_nans_stay_theirs() {
        for hyper in [OptimHyper::sgd(1.0), OptimHyper::adam(0.1)] {
            let p = param(&[1.0, 1.0, 1.0], 3);
            let mut opt = MemberOptim::new(vec![p.shallow_clone()], vec![hyper; 3]);
            step_with(
                &mut opt,
                &p,
                &[2.0, f32::NAN, 1.0],
                &Tensor::from_slice(&[false, false, true]),
            );
            let v = values(&p);
            assert_eq!(v[0], 1.0, "{v:?}");
            assert!(v[2] < 1.0 && v[2].is_finite(), "{v:?}");
        }
    }

    #[test]
    fn state_round_trips() {
        let p = param(&[1.0, 2.0], 1);
        let mut opt = MemberOptim::new(vec![p.shallow_clone()], vec![OptimHyper::adam(0.01)]);
        step_with(&mut opt, &p, &[1.0, -1.0], &all_alive(1));
        let saved: Vec<(String, Tensor)> = opt
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        let q = param(&[1.0, 2.0], 1);
        let mut fresh = MemberOptim::new(vec![q.shallow_clone()], vec![OptimHyper::adam(0.01)]);
        fresh.load_state(&saved).unwrap();
        assert_eq!(fresh.steps_taken(), 1);
        assert_eq!(values(&fresh.exp_avg[0]), values(&opt.exp_avg[0]));
        let bad = vec![("step".to_string(), Tensor::from_slice(&[1i64]))];
        assert!(fresh.load_state(&bad).unwrap_err().contains("exp_avg.0"));
    }
}
