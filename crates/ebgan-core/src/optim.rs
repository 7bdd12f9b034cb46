//! Adam and SGD over member-stacked parameters (`[K, ...]`), with hyper-parameters per member.
//!
//! tch's optimizers hide their state (no exact resume) and take one learning rate for all
//! members; a grid cohort mixes learning rates and even Adam with SGD.
//!
//! On CUDA, where a small Table 1 step is bound by kernel launches, the parameters of one
//! optimizer are packed into ONE `[K, P]` buffer (each parameter becomes a view of its columns),
//! and so are the moments: an update is one gather of the gradients plus a fixed handful of
//! element-wise ops (nine for Adam-only cohorts) whatever the number of parameter tensors, as
//! with PyTorch's foreach Adam (which tch 0.24 does not expose), for one more pass over memory.
//! On the CPU, where dispatch is cheap and memory bandwidth is not, parameters are updated tensor
//! by tensor. Both layouts run the same element-wise ops, so they give bit-identical weights.
//!
//! Packed parameters keep their own autograd version counters (`set_data`), so autograd no longer
//! notices an update of a parameter that a not-yet-backpropagated graph saved: the trainers must
//! (and do) finish every backward through a network before its optimizer steps. The CPU's
//! per-tensor layout, which all tests run, would raise an error if one did not.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

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

/// How an optimizer lays out its parameters and moments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One `[K, P]` buffer for all parameters (few launches per update).
    Packed,
    /// The parameters as they are, one update per tensor (no gather of the gradients).
    PerTensor,
}

impl Layout {
    /// Packed on CUDA, per tensor on the CPU.
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() {
            Layout::Packed
        } else {
            Layout::PerTensor
        }
    }
}

/// What one group of element-wise updates works on: the whole `[K, P]` buffer when packed, one
/// parameter tensor otherwise.
struct Group {
    param: Tensor,
    /// Adam first moments, or SGD momentum buffers in SGD-only cohorts.
    exp_avg: Option<Tensor>,
    exp_avg_sq: Option<Tensor>,
    /// SGD momentum buffers in a cohort that mixes Adam and SGD.
    momentum_buf: Option<Tensor>,
}

const MOMENTS: [&str; 3] = ["exp_avg", "exp_avg_sq", "momentum_buf"];

impl Group {
    fn moment(&self, which: usize) -> Option<&Tensor> {
        [&self.exp_avg, &self.exp_avg_sq, &self.momentum_buf][which].as_ref()
    }
}

/// Where each parameter lives in the packed buffer.
struct Packing {
    members: i64,
    /// First column and columns (elements per member) of each parameter.
    columns: Vec<(i64, i64)>,
    /// Zeros `[K, pad]` after a parameter whose columns are not a multiple of [`ALIGN`].
    padding: Vec<Option<Tensor>>,
}

/// Every parameter view starts on a 16-byte boundary (4 f32), as vectorised GEMM and cuDNN
/// kernels want; the padding columns get zero gradients (their values never reach a parameter).
const ALIGN: i64 = 4;

pub struct MemberOptim {
    /// The caller's parameter tensors (views of the packed buffer when packed).
    params: Vec<Tensor>,
    packing: Option<Packing>,
    groups: Vec<Group>,
    hyper: Vec<OptimHyper>,
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

impl Packing {
    /// One `[K, P]` tensor of per-parameter tensors (the parameters or their gradients), padded.
    fn gather(&self, tensors: impl Iterator<Item = Tensor>) -> Tensor {
        let mut pieces = vec![];
        for (t, pad) in tensors.zip(&self.padding) {
            pieces.push(t.reshape([self.members, -1]));
            if let Some(z) = pad {
                pieces.push(z.shallow_clone());
            }
        }
        Tensor::cat(&pieces, 1)
    }
}

impl MemberOptim {
    /// `params` hold the members' values member-major: first dimension K (any shape when
    /// K = 1). The layout follows their device ([`Layout::for_device`]).
    pub fn new(params: Vec<Tensor>, hyper: Vec<OptimHyper>) -> Self {
        let layout = Layout::for_device(params[0].device());
        Self::with_layout(params, hyper, layout)
    }

    /// Packed, the parameters are re-pointed into the buffer (`set_data`: the same tensors, so
    /// every module holding them sees the updates; the module docs say what step order this
    /// needs).
    pub fn with_layout(mut params: Vec<Tensor>, hyper: Vec<OptimHyper>, layout: Layout) -> Self {
        let k = hyper.len() as i64;
        assert!(!params.is_empty(), "an optimizer needs parameters");
        for p in &params {
            assert!(
                k == 1 || p.size().first() == Some(&k),
                "parameter {:?} lacks the member dimension {k}",
                p.size()
            );
        }
        let any_adam = hyper.iter().any(|h| h.kind == OptimKind::Adam);
        let any_sgd = hyper.iter().any(|h| h.kind == OptimKind::Sgd);
        let any_momentum = hyper
            .iter()
            .any(|h| h.kind == OptimKind::Sgd && h.momentum != 0.0);
        let group = |param: Tensor| Group {
            exp_avg: (any_adam || any_momentum).then(|| param.zeros_like()),
            exp_avg_sq: any_adam.then(|| param.zeros_like()),
            momentum_buf: (any_adam && any_momentum).then(|| param.zeros_like()),
            param,
        };
        let _guard = tch::no_grad_guard();
        let (groups, packing) = match layout {
            Layout::PerTensor => (
                params.iter().map(|p| group(p.shallow_clone())).collect(),
                None,
            ),
            Layout::Packed => {
                let mut packing = Packing {
                    members: k,
                    columns: vec![],
                    padding: vec![],
                };
                let mut first = 0;
                for p in &params {
                    let n = p.numel() as i64 / k;
                    let pad = (ALIGN - n % ALIGN) % ALIGN;
                    packing.columns.push((first, n));
                    packing
                        .padding
                        .push((pad > 0).then(|| Tensor::zeros([k, pad], (p.kind(), p.device()))));
                    first += n + pad;
                }
                let flat = packing.gather(params.iter().map(|p| p.detach()));
                for (p, &(first, n)) in params.iter_mut().zip(&packing.columns) {
                    p.set_data(&flat.narrow(1, first, n).view(p.size().as_slice()));
                }
                (vec![group(flat)], Some(packing))
            }
        };
        let like = &params[0];
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
            packing,
            groups,
            hyper,
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

    /// Sets every member's learning rate (a schedule's value for the next step).
    pub fn set_lr(&mut self, lr: f64) {
        for h in &mut self.hyper {
            h.lr = lr;
        }
    }

    /// Gradients of `loss` (a scalar) with respect to this optimizer's parameters only, then one
    /// update. Computing them functionally (no `.grad` buffers) skips zeroing and accumulating,
    /// and the weight gradients of networks this optimizer does not own.
    pub fn backward_step(&mut self, loss: &Tensor, alive: &Tensor) {
        let grads = Tensor::run_backward(&[loss], &self.params, false, false);
        self.step(grads, alive);
    }

    /// One update from `grads` (in parameter order, each shaped like its parameter). Members
    /// where `alive` (`[K]` bool) is false take a zero step. A member whose gradients are NaN is
    /// excluded by its caller through `alive`; its own weights may then become NaN, which no
    /// other member can see.
    pub fn step(&mut self, grads: Vec<Tensor>, alive: &Tensor) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        self.step += 1;
        let t = self.step as i32;
        let like = &self.params[0];
        let _guard = tch::no_grad_guard();
        // Packed: the per-parameter gradients are freed once gathered (peak memory).
        let grads = match &self.packing {
            Some(packing) => vec![packing.gather(grads.into_iter())],
            None => grads,
        };
        let alive = alive.to_kind(Kind::Float);
        // Adam's bias corrections folded into a step size and eps per member (PyTorch's algebra):
        // lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) = (lr sqrt(bc2)/bc1) * m / (sqrt(v) + eps sqrt(bc2)).
        let bc = |h: &OptimHyper| (1.0 - h.beta1.powi(t), (1.0 - h.beta2.powi(t)).sqrt());
        // Uploaded only for the kinds this cohort uses.
        let adam_step = self.any_adam.then(|| {
            per_member(self.hyper.iter().map(|h| h.lr * bc(h).1 / bc(h).0), like) * &alive
        });
        let adam_eps = self
            .any_adam
            .then(|| per_member(self.hyper.iter().map(|h| h.eps * bc(h).1), like));
        let sgd_lr = self
            .any_sgd
            .then(|| per_member(self.hyper.iter().map(|h| h.lr), like) * &alive);
        for (group, g) in self.groups.iter_mut().zip(&grads) {
            let p = &group.param;
            let adam = self.any_adam.then(|| {
                let m = group.exp_avg.as_mut().unwrap();
                let v = group.exp_avg_sq.as_mut().unwrap();
                let _ = m.lerp_tensor_(g, &shaped(&self.one_minus_beta1, p));
                let _ = v.lerp_tensor_(&g.square(), &shaped(&self.one_minus_beta2, p));
                let mut update = v.sqrt();
                let _ = update
                    .g_add_(&shaped(adam_eps.as_ref().unwrap(), p))
                    .reciprocal_()
                    .g_mul_(m)
                    .g_mul_(&shaped(adam_step.as_ref().unwrap(), p));
                update
            });
            let sgd = self.any_sgd.then(|| {
                if self.any_momentum {
                    let buf = if self.any_adam {
                        group.momentum_buf.as_mut()
                    } else {
                        group.exp_avg.as_mut()
                    }
                    .unwrap();
                    let _ = buf.g_mul_(&shaped(&self.momentum, p)).g_add_(g);
                    &*buf * shaped(sgd_lr.as_ref().unwrap(), p)
                } else {
                    g * shaped(sgd_lr.as_ref().unwrap(), p)
                }
            });
            let update = match (adam, sgd) {
                (Some(a), Some(s)) => a.where_self(&shaped(&self.is_adam, p), &s),
                (Some(a), None) => a,
                (None, Some(s)) => s,
                (None, None) => unreachable!("every member has an optimizer kind"),
            };
            let _ = group.param.g_sub_(&update);
        }
    }

    /// Moment `which` (index into MOMENTS) of parameter `i`, shaped like the parameter.
    fn moment_of(&self, which: usize, i: usize) -> Option<Tensor> {
        match &self.packing {
            None => self.groups[i].moment(which).map(|m| m.shallow_clone()),
            Some(packing) => {
                let (first, n) = packing.columns[i];
                self.groups[0]
                    .moment(which)
                    .map(|m| m.narrow(1, first, n).view(self.params[i].size().as_slice()))
            }
        }
    }

    /// Moments and step counter, for checkpoints: one tensor per moment and parameter, shaped
    /// like the parameter (the same in both layouts).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut s = vec![("step".to_string(), Tensor::from_slice(&[self.step as i64]))];
        for (which, name) in MOMENTS.iter().enumerate() {
            s.extend(
                (0..self.params.len())
                    .filter_map(|i| self.moment_of(which, i).map(|m| (format!("{name}.{i}"), m))),
            );
        }
        s
    }

    /// Restores what [`MemberOptim::state`] saved; shapes must match this optimizer's
    /// parameters, or be them with a leading 1 (a single run's moments as saved before the
    /// optimizer took parameters without a member dimension).
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let step = find("step").ok_or("optimizer state has no `step`")?;
        let _guard = tch::no_grad_guard();
        for (which, name) in MOMENTS.iter().enumerate() {
            for i in 0..self.params.len() {
                let Some(mut dst) = self.moment_of(which, i) else {
                    continue;
                };
                let key = format!("{name}.{i}");
                let src = find(&key).ok_or_else(|| format!("optimizer state has no `{key}`"))?;
                let (src_shape, dst_shape) = (src.size(), dst.size());
                if src_shape != dst_shape && src_shape[..] != [&[1], &dst_shape[..]].concat()[..] {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, expected {:?}",
                        src.size(),
                        dst.size()
                    ));
                }
                dst.copy_(&src.reshape(dst.size().as_slice()));
            }
        }
        self.step = step.int64_value(&[0]) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUTS: [Layout; 2] = [Layout::PerTensor, Layout::Packed];

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
        Tensor::ones([k], (Kind::Bool, Device::Cpu))
    }

    #[test]
    fn adam_two_steps_by_hand() {
        // beta1 = 0.5, beta2 = 0.75, eps = 0, lr = 0.1, p0 = 1.
        // step 1, g = 2: m = 1, v = 1; mhat = 2, vhat = 4 -> p = 1 - 0.1 * 2/2 = 0.9.
        // step 2, g = 1: m = 1, v = 1; bc1 = 0.75, bc2 = 0.4375 -> mhat = 4/3, vhat = 16/7
        //   -> p = 0.9 - 0.1 * (4/3) / sqrt(16/7) = 0.9 - 0.1 * sqrt(7)/3.
        let h = OptimHyper {
            kind: OptimKind::Adam,
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            eps: 0.0,
            momentum: 0.0,
        };
        for layout in LAYOUTS {
            let p = param(&[1.0], 1);
            let mut opt = MemberOptim::with_layout(vec![p.shallow_clone()], vec![h], layout);
            step_with(&mut opt, &p, &[2.0], &all_alive(1));
            assert!((values(&p)[0] - 0.9).abs() < 1e-6, "{layout:?}");
            step_with(&mut opt, &p, &[1.0], &all_alive(1));
            let want = 0.9 - 0.1 * 7f32.sqrt() / 3.0;
            assert!(
                (values(&p)[0] - want).abs() < 1e-6,
                "{layout:?}: {:?} vs {want}",
                values(&p)
            );
        }
    }

    #[test]
    fn mixed_cohort_applies_each_members_own_rule() {
        // Member 0: Adam lr 0.1 -> first step moves by lr * sign(g). Member 1: SGD lr 0.5 -> lr * g.
        // Member 2: SGD lr 1, momentum 0.5, two steps with g = 1: buf 1 then 1.5 -> p = 0 - 1 - 1.5.
        let hyper = vec![
            OptimHyper::adam(0.1),
            OptimHyper::sgd(0.5),
            OptimHyper {
                momentum: 0.5,
                ..OptimHyper::sgd(1.0)
            },
        ];
        for layout in LAYOUTS {
            let p = param(&[1.0, -2.0, 1.0, 1.0, 0.0, 0.0], 3);
            let mut opt = MemberOptim::with_layout(vec![p.shallow_clone()], hyper.clone(), layout);
            step_with(
                &mut opt,
                &p,
                &[3.0, -0.5, 4.0, -2.0, 1.0, 1.0],
                &all_alive(3),
            );
            let v = values(&p);
            let want = [0.9, -1.9, -1.0, 2.0, -1.0, -1.0];
            for (a, b) in v.iter().zip(want) {
                assert!((a - b).abs() < 1e-5, "{layout:?}: {v:?} vs {want:?}");
            }
            step_with(&mut opt, &p, &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0], &all_alive(3));
            let v = values(&p);
            assert!(
                (v[4] + 2.5).abs() < 1e-6 && (v[5] + 2.5).abs() < 1e-6,
                "{layout:?}: {v:?}"
            );
        }
    }

    #[test]
    fn dead_members_do_not_move_and_their_nans_stay_theirs() {
        for layout in LAYOUTS {
            for hyper in [OptimHyper::sgd(1.0), OptimHyper::adam(0.1)] {
                let p = param(&[1.0, 1.0, 1.0], 3);
                let mut opt =
                    MemberOptim::with_layout(vec![p.shallow_clone()], vec![hyper; 3], layout);
                step_with(
                    &mut opt,
                    &p,
                    &[2.0, f32::NAN, 1.0],
                    &Tensor::from_slice(&[false, false, true]),
                );
                let v = values(&p);
                assert_eq!(v[0], 1.0, "{layout:?}: {v:?}");
                assert!(v[2] < 1.0 && v[2].is_finite(), "{layout:?}: {v:?}");
            }
        }
    }

    #[test]
    fn state_round_trips_across_layouts() {
        // Saved from one layout, loaded into the other: the next steps agree bit for bit.
        for [from, to] in [LAYOUTS, [Layout::Packed, Layout::PerTensor]] {
            let p = param(&[1.0, 2.0], 1);
            let mut opt = MemberOptim::with_layout(
                vec![p.shallow_clone()],
                vec![OptimHyper::adam(0.01)],
                from,
            );
            step_with(&mut opt, &p, &[1.0, -1.0], &all_alive(1));
            let saved: Vec<(String, Tensor)> = opt
                .state()
                .into_iter()
                .map(|(n, t)| (n, t.copy()))
                .collect();
            let q = p.detach().copy().set_requires_grad(true);
            let mut fresh =
                MemberOptim::with_layout(vec![q.shallow_clone()], vec![OptimHyper::adam(0.01)], to);
            fresh.load_state(&saved).unwrap();
            assert_eq!(fresh.steps_taken(), 1);
            step_with(&mut opt, &p, &[0.5, 3.0], &all_alive(1));
            step_with(&mut fresh, &q, &[0.5, 3.0], &all_alive(1));
            assert_eq!(values(&p), values(&q), "{from:?} -> {to:?}");
            let bad = vec![("step".to_string(), Tensor::from_slice(&[1i64]))];
            assert!(fresh.load_state(&bad).unwrap_err().contains("exp_avg.0"));
        }
    }

    /// Two parameters of different shapes, K = 2; SGD lr 1 (member 0) and 0.5 (member 1).
    fn two_params() -> (Tensor, Tensor) {
        (
            param(&[1.0, 2.0, 3.0, 4.0], 2),
            Tensor::zeros([2, 1, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true),
        )
    }

    #[test]
    fn each_parameter_updates_its_own_columns_of_the_packed_buffer() {
        // p -= lr * g, where the gradient of sum(p * c) is c.
        let (a, b) = two_params();
        let mut opt = MemberOptim::with_layout(
            vec![a.shallow_clone(), b.shallow_clone()],
            vec![OptimHyper::sgd(1.0), OptimHyper::sgd(0.5)],
            Layout::Packed,
        );
        let ca = Tensor::from_slice(&[1f32, 1., 2., 2.]).view([2, 2]);
        let cb = Tensor::from_slice(&[1f32, 2., 3., 4., 6., 8.]).view([2, 1, 3]);
        let loss = (&a * ca).sum(None) + (&b * cb).sum(None);
        opt.backward_step(&loss, &all_alive(2));
        assert_eq!(values(&a), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(values(&b), [-1.0, -2.0, -3.0, -2.0, -3.0, -4.0]);
        // Still leaves that require grad, so the next step differentiates them again.
        assert!(a.requires_grad() && b.requires_grad() && a.is_leaf());
        // Each view starts on a 16-byte boundary: `a` has 2 columns per member (padded to 4),
        // `b` 3 (padded to 4), so the rows are 8 floats apart.
        for t in [&a, &b] {
            assert_eq!(t.data_ptr() as usize % 16, 0);
            assert_eq!(t.stride()[0], 8);
        }
        let names: Vec<String> = opt.state().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["step"]);
    }

    #[test]
    fn layouts_give_bit_identical_weights_and_moments() {
        // A mixed Adam / SGD-momentum cohort over parameters of 37 and 100 columns per member
        // (vectorised loops and their scalar tails fall on different elements in the two
        // layouts), five steps of varied gradients; then the packed state restored into a
        // fresh packed optimizer continues exactly as the per-tensor one.
        let hyper = vec![
            OptimHyper::adam(0.01),
            OptimHyper {
                momentum: 0.9,
                ..OptimHyper::sgd(0.1)
            },
        ];
        let fresh = || {
            let a = Tensor::arange(2 * 37, (Kind::Float, Device::Cpu)).view([2, 37]) / 50.0;
            let b = Tensor::arange(2 * 100, (Kind::Float, Device::Cpu)).view([2, 4, 25]) / -80.0;
            (a.set_requires_grad(true), b.set_requires_grad(true))
        };
        let step = |opt: &mut MemberOptim, a: &Tensor, b: &Tensor, s: i64| {
            let loss = (a * a * (s as f64 + 1.0)).sum(None) + (b - 0.3 * s as f64).exp().sum(None);
            opt.backward_step(&loss, &all_alive(2));
        };
        let run = |layout| {
            let (a, b) = fresh();
            let mut opt = MemberOptim::with_layout(
                vec![a.shallow_clone(), b.shallow_clone()],
                hyper.clone(),
                layout,
            );
            for s in 0..5 {
                step(&mut opt, &a, &b, s);
            }
            (a, b, opt)
        };
        let ((a1, b1, o1), (a2, b2, o2)) = (run(Layout::PerTensor), run(Layout::Packed));
        assert!(a1.equal(&a2) && b1.equal(&b2));
        let (s1, s2) = (o1.state(), o2.state());
        assert_eq!(s1.len(), 1 + 3 * 2);
        for ((n1, t1), (n2, t2)) in s1.iter().zip(&s2) {
            assert!(n1 == n2 && t1.equal(t2), "{n1}");
        }
        assert!(!a1.equal(&fresh().0), "the weights moved");

        let saved: Vec<(String, Tensor)> = s2.into_iter().map(|(n, t)| (n, t.copy())).collect();
        let (a3, b3) = (a2.detach().copy(), b2.detach().copy());
        let (a3, b3) = (a3.set_requires_grad(true), b3.set_requires_grad(true));
        let mut o3 = MemberOptim::with_layout(
            vec![a3.shallow_clone(), b3.shallow_clone()],
            hyper.clone(),
            Layout::Packed,
        );
        o3.load_state(&saved).unwrap();
        let mut o1 = o1;
        step(&mut o1, &a1, &b1, 5);
        step(&mut o3, &a3, &b3, 5);
        assert!(a1.equal(&a3) && b1.equal(&b3));
    }

    #[test]
    fn a_single_member_needs_no_member_dimension_and_loads_older_states() {
        // K = 1 with a [2, 2] parameter (a conv net's weight): Adam's first step moves every
        // entry by lr * sign(g).
        for layout in LAYOUTS {
            let w = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let mut opt = MemberOptim::with_layout(
                vec![w.shallow_clone()],
                vec![OptimHyper::adam(0.1)],
                layout,
            );
            let loss = (&w * Tensor::from_slice(&[1f32, -1., 2., -2.]).view([2, 2])).sum(None);
            opt.backward_step(&loss, &all_alive(1));
            let v = values(&w);
            for (a, b) in v.iter().zip([0.9, 1.1, 0.9, 1.1]) {
                assert!((a - b).abs() < 1e-6, "{layout:?}: {v:?}");
            }
            assert_eq!(opt.state()[1].1.size(), [2, 2]);
            // A state saved with a leading member dimension of 1 loads; another shape does not.
            let mut saved: Vec<(String, Tensor)> = opt
                .state()
                .into_iter()
                .map(|(n, t)| (n, t.copy().unsqueeze(0)))
                .collect();
            saved[0].1 = Tensor::from_slice(&[1i64]);
            opt.load_state(&saved).unwrap();
            assert!(opt.state()[1].1.equal(&saved[1].1.squeeze_dim(0)));
            saved[1].1 = Tensor::zeros([4], (Kind::Float, Device::Cpu));
            let err = opt.load_state(&saved).unwrap_err();
            assert!(
                err.contains("exp_avg.0") && err.contains("[4]"),
                "{layout:?}: {err}"
            );
        }
    }

    #[test]
    fn an_older_single_run_state_loads_when_the_parameter_itself_starts_with_1() {
        // A conv net's last layer: weight [1, C, 4, 4]; its moments were saved as
        // [1, 1, C, 4, 4] while the optimizer wanted a member dimension.
        for layout in LAYOUTS {
            let w = Tensor::zeros([1, 2, 4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let mut opt = MemberOptim::with_layout(
                vec![w.shallow_clone()],
                vec![OptimHyper::adam(0.1)],
                layout,
            );
            let m = Tensor::arange(32, (Kind::Float, Device::Cpu)).view([1, 1, 2, 4, 4]);
            let saved = vec![
                ("step".to_string(), Tensor::from_slice(&[3i64])),
                ("exp_avg.0".to_string(), m.shallow_clone()),
                ("exp_avg_sq.0".to_string(), m.shallow_clone()),
            ];
            opt.load_state(&saved).unwrap();
            assert_eq!(opt.steps_taken(), 3);
            assert!(opt.state()[1].1.equal(&m.view([1, 2, 4, 4])), "{layout:?}");
        }
    }
}
