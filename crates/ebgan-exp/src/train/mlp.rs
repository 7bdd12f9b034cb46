//! Table 1 training: EBGAN (auto-encoder D, margin loss, optional PT) and GAN (logistic D) on
//! MNIST, for a cohort of K >= 1 runs sharing one shape. Every loss is averaged per member and
//! summed over members only for the backward pass, so no gradient crosses members.

use super::CohortKey;
use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::scoring::Scorer;
use ebgan_core::score::Scores;
use ebgan_core::{gan_loss, loss, pulling_away::pulling_away, Layout, MemberOptim, OptimHyper};
use ebgan_models::mlp::{AutoEncoder, Generator, Logistic, MlpMember, MlpSpec};
use ebgan_models::rng::{MemberRng, Stream};
use ebgan_models::Vars;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Means of one member over a window of steps (up to [`LOG_EVERY`], and at epoch ends). For
/// EBGAN `real`/`fake` are mean energies; for GAN the mean D(x) probabilities.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LossLog {
    /// Steps done at the end of the window.
    pub step: u64,
    /// Epochs done at the end of the window (fractional).
    pub epoch: f64,
    pub loss_d: f64,
    pub loss_g: f64,
    pub real: f64,
    pub fake: f64,
    pub margin: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Finished,
    /// A loss became NaN or infinite at this step (1-based); the member was frozen there.
    Diverged {
        step: u64,
    },
}

pub struct MemberResult {
    pub status: Status,
    pub log: Vec<LossLog>,
    pub epochs_done: usize,
    /// 64 fixed-noise samples `[64, 784]` in [-1, 1] (finished members only).
    pub samples: Option<Tensor>,
    pub scores: Option<Scores>,
    /// Test error in % (semi-supervised models only).
    pub test_error: Option<f64>,
}

/// Training images on the device, as bytes; each member's batch is gathered by index.
pub struct DeviceImages {
    pub images: Tensor,
    pub len: usize,
}

impl DeviceImages {
    pub fn new(images: &[u8], len: usize, device: Device) -> Self {
        let images = Tensor::from_slice(&images[..len * PIXELS])
            .view([len as i64, PIXELS as i64])
            .to_device(device);
        DeviceImages { images, len }
    }

    /// `[K, B, 784]` in [-1, 1] for flat indices `[K * B]`.
    pub fn batch(&self, idx: &Tensor, k: i64, b: i64) -> Tensor {
        self.images
            .index_select(0, idx)
            .to_kind(Kind::Float)
            .view([k, b, PIXELS as i64])
            * (2.0 / 255.0)
            - 1.0
    }
}

enum Discriminator {
    Energy(AutoEncoder),
    Logistic(Logistic),
}

/// Loss log window, in steps.
pub const LOG_EVERY: u64 = 100;

/// How often (in steps) the host checks for diverged members; between checks a dead member is
/// already frozen on the device.
const DIVERGENCE_CHECK_EVERY: u64 = 50;

/// The networks, optimizers and random streams of a cohort, and its training step.
pub struct Cohort {
    g: Generator,
    d: Discriminator,
    opt_g: MemberOptim,
    opt_d: MemberOptim,
    noise: MemberRng,
    masks: MemberRng,
    pt_weight: Option<Tensor>,
    key: CohortKey,
    seeds: Vec<u64>,
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
}

impl Cohort {
    pub fn new(members: &[RunConfig], device: Device) -> Self {
        Self::with_layout(members, device, Layout::for_device(device))
    }

    /// `layout`: how the optimizers hold the parameters (tests compare both on the CPU).
    pub fn with_layout(members: &[RunConfig], device: Device, layout: Layout) -> Self {
        let key = CohortKey::of(&members[0]);
        assert!(
            members.iter().all(|m| CohortKey::of(m) == key),
            "a cohort's members must share a CohortKey"
        );
        let seeds: Vec<u64> = members.iter().map(|m| m.seed).collect();
        let spec = MlpSpec {
            n_layer_g: key.n_layer_g,
            size_g: key.size_g,
            n_layer_d: key.n_layer_d,
            size_d: key.size_d,
            z_dim: key.z_dim,
            data_dim: PIXELS as i64,
            batch_norm: key.batch_norm,
            members: members
                .iter()
                .map(|m| MlpMember {
                    dropout_d: if m.dropout_d { m.dropout_p } else { 0.0 },
                    init_std_g: m.init_std_g,
                    init_std_d: m.init_std_d,
                })
                .collect(),
        };
        let mut vars = Vars::new(&seeds, device);
        let g = Generator::new(&mut vars, &spec);
        let d = match key.model {
            Model::Ebgan => Discriminator::Energy(AutoEncoder::new(&mut vars, &spec)),
            Model::Gan => Discriminator::Logistic(Logistic::new(&mut vars, &spec)),
            Model::Ladder | Model::EbganLn => panic!("ladder models train in train::ladder"),
        };
        let hyper = |kind, m: &RunConfig| OptimHyper {
            kind,
            lr: m.lr,
            beta1: m.beta1,
            beta2: m.beta2,
            eps: m.adam_eps,
            momentum: m.sgd_momentum,
        };
        let opt_g = MemberOptim::with_layout(
            vars.tensors_under("g."),
            members.iter().map(|m| hyper(m.optim_g, m)).collect(),
            layout,
        );
        let opt_d = MemberOptim::with_layout(
            vars.tensors_under("d."),
            members.iter().map(|m| hyper(m.optim_d, m)).collect(),
            layout,
        );
        let pt = members
            .iter()
            .map(|m| m.pulling_away as f32)
            .collect::<Vec<_>>();
        let pt_weight = pt
            .iter()
            .any(|&w| w > 0.0)
            .then(|| Tensor::from_slice(&pt).to_device(device));
        Cohort {
            g,
            d,
            opt_g,
            opt_d,
            noise: MemberRng::new(&seeds, Stream::Noise, device),
            masks: MemberRng::new(&seeds, Stream::Dropout, device),
            pt_weight,
            key,
            seeds,
        }
    }

    /// One D update then one G update on real images `x` `[K, B, 784]` with margins `[K]`.
    /// Members not `alive` (`[K]` bool) are not updated.
    pub fn step(&mut self, x: &Tensor, margin: &Tensor, alive: &Tensor) -> StepOutput {
        let b = x.size()[1];
        let energy = self.key.energy;
        let z = self.noise.normal(&[b, self.key.z_dim], 1.0);
        let fake = self.g.forward(&z);
        let fake_d = fake.detach();

        // D step: fakes detached, so L_D does not update G.
        let (loss_d, real, fake_stat) = match &self.d {
            Discriminator::Energy(ae) => {
                let e_real = energy.of(&ae.forward(x, Some(&mut self.masks)).reconstruction, x);
                let e_fake = energy.of(
                    &ae.forward(&fake_d, Some(&mut self.masks)).reconstruction,
                    &fake_d,
                );
                let l = loss::discriminator(&e_real, &e_fake, margin);
                (
                    l,
                    e_real.mean_dim(1, false, None),
                    e_fake.mean_dim(1, false, None),
                )
            }
            Discriminator::Logistic(net) => {
                let (lr, lf) = (
                    net.forward(x, Some(&mut self.masks)),
                    net.forward(&fake_d, Some(&mut self.masks)),
                );
                let l = gan_loss::discriminator(&lr, &lf);
                (
                    l,
                    lr.sigmoid().mean_dim(1, false, None),
                    lf.sigmoid().mean_dim(1, false, None),
                )
            }
        };
        let alive_d = alive.logical_and(&loss_d.isfinite());
        self.opt_d.backward_step(&loss_d.sum(None), &alive_d);

        // G step through the updated D; the gradient flows through D's reconstruction AND its
        // target G(z) (no detach). L_G does not update D: only G's gradients are taken.
        let loss_g = match &self.d {
            Discriminator::Energy(ae) => {
                let out = ae.forward(&fake, Some(&mut self.masks));
                let l = loss::generator(&energy.of(&out.reconstruction, &fake));
                match &self.pt_weight {
                    Some(w) => l + w * pulling_away(&out.code),
                    None => l,
                }
            }
            Discriminator::Logistic(net) => {
                gan_loss::generator(&net.forward(&fake, Some(&mut self.masks)))
            }
        };
        let alive = alive_d.logical_and(&loss_g.isfinite());
        self.opt_g.backward_step(&loss_g.sum(None), &alive);
        StepOutput {
            loss_d: loss_d.detach(),
            loss_g: loss_g.detach(),
            real: real.detach(),
            fake: fake_stat.detach(),
            alive,
        }
    }
}

/// Trains the cohort `members` (all with the same [`CohortKey`]). `on_step` is called after
/// every step with the number of steps done.
pub fn train_cohort(
    members: &[RunConfig],
    data: &DeviceImages,
    scorer: &Scorer,
    on_step: &mut dyn FnMut(u64),
) -> Vec<MemberResult> {
    let device = data.images.device();
    let mut cohort = Cohort::new(members, device);
    let key = cohort.key.clone();
    let k = members.len() as i64;
    let b = key.batch_size;
    let mut order: Vec<ChaCha8Rng> = cohort
        .seeds
        .iter()
        .map(|&s| {
            let mut r = ChaCha8Rng::seed_from_u64(s);
            r.set_stream(Stream::Data as u64);
            r
        })
        .collect();

    let schedules: Vec<_> = members.iter().map(|m| m.margin_schedule()).collect();
    let per_member = |v: Vec<f32>| Tensor::from_slice(&v).to_device(device);
    let margins_at =
        |step: u64| per_member(schedules.iter().map(|s| s.margin_at(step) as f32).collect());
    let constant_margin = schedules
        .iter()
        .all(|s| s.is_constant())
        .then(|| margins_at(0));

    let opts = (Kind::Float, device);
    let mut alive = Tensor::ones([k], (Kind::Bool, device));
    let mut dead_at = Tensor::full([k], -1i64, (Kind::Int64, device));
    let mut host_alive = vec![true; k as usize];
    let mut logs: Vec<Vec<LossLog>> = (0..k).map(|_| vec![]).collect();
    let steps_per_epoch = members[0].steps_per_epoch();
    let n = data.len;
    let mut step = 0u64;
    let mut epochs_done = 0;
    let mut sums = Tensor::zeros([4, k], opts);
    let mut window = 0u64;

    'epochs: for _ in 0..key.epochs {
        let perms: Vec<Vec<i64>> = order
            .iter_mut()
            .map(|r| {
                let mut p: Vec<i64> = (0..n as i64).collect();
                p.shuffle(r);
                p
            })
            .collect();
        for s in 0..steps_per_epoch {
            let margin = constant_margin
                .as_ref()
                .map(|m| m.shallow_clone())
                .unwrap_or_else(|| margins_at(step));
            let start = s as usize * b as usize;
            let idx: Vec<i64> = perms
                .iter()
                .flat_map(|p| (0..b as usize).map(move |j| p[(start + j) % n]))
                .collect();
            let x = data.batch(&ebgan_core::upload(Tensor::from_slice(&idx), device), k, b);
            let out = cohort.step(&x, &margin, &alive);
            step += 1;
            window += 1;
            let _ = dead_at.masked_fill_(&alive.logical_and(&out.alive.logical_not()), step as i64);
            alive = out.alive;
            tch::no_grad(|| {
                let stats = Tensor::stack(&[out.loss_d, out.loss_g, out.real, out.fake], 0);
                sums += stats.where_scalarother(&alive.unsqueeze(0), 0.0);
            });
            on_step(step);
            let epoch_end = s + 1 == steps_per_epoch;
            if step.is_multiple_of(DIVERGENCE_CHECK_EVERY) || epoch_end {
                host_alive = Vec::<bool>::try_from(&alive).unwrap();
                if host_alive.iter().all(|a| !a) {
                    break 'epochs;
                }
            }
            if step.is_multiple_of(LOG_EVERY) || epoch_end {
                let means = Vec::<f64>::try_from(
                    (&sums / window as f64).to_kind(Kind::Double).flatten(0, -1),
                )
                .unwrap();
                for (i, log) in logs.iter_mut().enumerate().filter(|(i, _)| host_alive[*i]) {
                    let at = |row: usize| means[row * k as usize + i];
                    log.push(LossLog {
                        step,
                        epoch: step as f64 / steps_per_epoch as f64,
                        loss_d: at(0),
                        loss_g: at(1),
                        real: at(2),
                        fake: at(3),
                        margin: schedules[i].margin_at(step),
                    });
                }
                let _ = sums.zero_();
                window = 0;
            }
        }
        epochs_done += 1;
    }

    host_alive = Vec::<bool>::try_from(&alive).unwrap();
    let dead_at = Vec::<i64>::try_from(&dead_at).unwrap();
    let (samples, scores) = sample_and_score(&cohort.g, &cohort.seeds, &key, scorer, device);
    logs.into_iter()
        .enumerate()
        .map(|(i, log)| {
            if host_alive[i] {
                MemberResult {
                    status: Status::Finished,
                    log,
                    epochs_done,
                    samples: Some(samples.get(i as i64)),
                    scores: Some(scores[i]),
                    test_error: None,
                }
            } else {
                MemberResult {
                    status: Status::Diverged {
                        step: dead_at[i] as u64,
                    },
                    log,
                    epochs_done: 0,
                    samples: None,
                    scores: None,
                    test_error: None,
                }
            }
        })
        .collect()
}

/// 64 fixed-noise samples per member (`[K, 64, 784]`, on the CPU) and the scores of
/// `score_samples` more. G runs with batch statistics in batches of `batch_size`, as in training.
fn sample_and_score(
    g: &Generator,
    seeds: &[u64],
    key: &CohortKey,
    scorer: &Scorer,
    device: Device,
) -> (Tensor, Vec<Scores>) {
    tch::no_grad(|| {
        let mut rng = MemberRng::new(seeds, Stream::Sample, device);
        let generate = |rng: &mut MemberRng, count: usize| -> Tensor {
            let parts: Vec<Tensor> = (0..count)
                .step_by(key.batch_size as usize)
                .map(|start| {
                    let n = (key.batch_size as usize).min(count - start).max(2) as i64;
                    g.forward(&rng.normal(&[n, key.z_dim], 1.0))
                })
                .collect();
            Tensor::cat(&parts, 1).narrow(1, 0, count as i64)
        };
        let sheet = generate(&mut rng, 64).to_device(Device::Cpu);
        let scored = generate(&mut rng, key.score_samples);
        let scores = (0..seeds.len() as i64)
            .map(|i| scorer.scores(&scored.get(i)))
            .collect();
        (sheet, scores)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Model;
    use ebgan_core::OptimKind;
    use rand::RngCore;

    /// 256 synthetic "images": a random byte pattern per class of 4, so there is structure to learn.
    fn images() -> DeviceImages {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut protos = vec![0u8; 4 * PIXELS];
        rng.fill_bytes(&mut protos);
        let data: Vec<u8> = (0..256)
            .flat_map(|i| protos[(i % 4) * PIXELS..(i % 4 + 1) * PIXELS].to_vec())
            .collect();
        DeviceImages::new(&data, 256, Device::Cpu)
    }

    fn config(model: Model, seed: u64) -> RunConfig {
        RunConfig {
            model,
            n_layer_g: 3,
            size_g: 32,
            n_layer_d: 3,
            size_d: 16,
            batch_size: 16,
            train_images: 256,
            epochs: 3, // 16 steps per epoch -> 48 steps
            score_samples: 32,
            seed,
            ..Default::default()
        }
    }

    fn losses(r: &MemberResult) -> Vec<(f64, f64)> {
        r.log.iter().map(|e| (e.loss_d, e.loss_g)).collect()
    }

    fn close(a: &[(f64, f64)], b: &[(f64, f64)], tol: f64) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.0 - y.0).abs() <= tol * x.0.abs().max(1.0)
                    && (x.1 - y.1).abs() <= tol * x.1.abs().max(1.0)
            })
    }

    thread_local! {
        // One scorer per test thread: its random init comes from libtorch's global generator,
        // which parallel tests share, so compare scores only under the same scorer.
        static SCORER: Scorer = Scorer::untrained(Device::Cpu);
    }

    fn train(members: &[RunConfig]) -> Vec<MemberResult> {
        SCORER.with(|scorer| train_cohort(members, &images(), scorer, &mut |_| {}))
    }

    #[test]
    fn a_run_trains_the_same_alone_and_inside_a_mixed_cohort() {
        for model in [Model::Ebgan, Model::Gan] {
            let target = RunConfig {
                dropout_d: true,
                pulling_away: if model == Model::Ebgan { 0.1 } else { 0.0 },
                ..config(model, 5)
            };
            let alone = train(std::slice::from_ref(&target));
            let mixed = [
                RunConfig {
                    lr: 0.01,
                    optim_d: OptimKind::Sgd,
                    ..config(model, 1)
                },
                target.clone(),
                RunConfig {
                    margin: 3.0,
                    optim_g: OptimKind::Sgd,
                    dropout_d: false,
                    ..config(model, 2)
                },
                target.clone(),
            ];
            let cohort = train(&mixed);
            assert_eq!(alone[0].status, Status::Finished);
            assert_eq!(alone[0].epochs_done, 3);
            assert_eq!(
                alone[0].log.iter().map(|l| l.step).collect::<Vec<_>>(),
                [16, 32, 48]
            );
            let (a, c1, c3) = (losses(&alone[0]), losses(&cohort[1]), losses(&cohort[3]));
            assert!(
                close(&a, &c1, 1e-3),
                "{model}: alone {a:?} vs in cohort {c1:?}"
            );
            // Same config and seed agree; other members differ.
            assert!(close(&c1, &c3, 1e-6), "{c1:?} vs {c3:?}");
            assert!(!close(&c1, &losses(&cohort[0]), 1e-3));
            let (sa, sc) = (alone[0].scores.unwrap(), cohort[1].scores.unwrap());
            assert!((sa.i_prime - sc.i_prime).abs() < 1e-3, "{sa:?} vs {sc:?}");
        }
    }

    #[test]
    fn different_seeds_give_different_runs() {
        let r = train(&[config(Model::Ebgan, 1), config(Model::Ebgan, 2)]);
        assert!(!close(&losses(&r[0]), &losses(&r[1]), 1e-3));
    }

    #[test]
    fn a_diverging_member_is_frozen_and_the_others_are_untouched() {
        let sane = config(Model::Gan, 3);
        let wild = RunConfig {
            lr: 1e12,
            optim_d: OptimKind::Sgd,
            optim_g: OptimKind::Sgd,
            ..config(Model::Gan, 4)
        };
        let alone = train(std::slice::from_ref(&sane));
        let both = train(&[wild, sane]);
        match both[0].status {
            Status::Diverged { step } => assert!((1..=48).contains(&step), "{step}"),
            Status::Finished => panic!("lr 1e12 should diverge"),
        }
        assert!(both[0].scores.is_none() && both[0].samples.is_none());
        assert_eq!(both[1].status, Status::Finished);
        assert!(close(&losses(&alone[0]), &losses(&both[1]), 1e-3));
    }

    #[test]
    fn ebgan_training_lowers_the_real_energy() {
        let r = train(&[RunConfig {
            epochs: 6,
            ..config(Model::Ebgan, 0)
        }]);
        let e = &r[0].log;
        assert!(
            e.last().unwrap().real < e[0].real,
            "real energy did not fall: {:?}",
            e.iter().map(|l| l.real).collect::<Vec<_>>()
        );
        let s = r[0].samples.as_ref().unwrap();
        assert_eq!(s.size(), [64, PIXELS as i64]);
    }

    #[test]
    fn packed_optimizers_train_like_per_tensor_ones() {
        // The CUDA layout (each optimizer's parameters in one [K, P] buffer: strided weight
        // views, batch-norm scales copied out of it) against the CPU one, on the same batches:
        // a mixed cohort (dropout, PT, Adam and SGD with momentum) and a run alone.
        let data = images();
        for model in [Model::Ebgan, Model::Gan] {
            let mixed = [
                RunConfig {
                    dropout_d: true,
                    pulling_away: if model == Model::Ebgan { 0.1 } else { 0.0 },
                    ..config(model, 1)
                },
                RunConfig {
                    lr: 0.01,
                    optim_d: OptimKind::Sgd,
                    sgd_momentum: 0.9,
                    ..config(model, 2)
                },
            ];
            for members in [&mixed[..], &mixed[..1]] {
                let k = members.len() as i64;
                let run = |layout| {
                    let mut cohort = Cohort::with_layout(members, Device::Cpu, layout);
                    let margin = Tensor::full([k], 10.0, (Kind::Float, Device::Cpu));
                    let mut alive = Tensor::ones([k], (Kind::Bool, Device::Cpu));
                    let mut losses = vec![];
                    for s in 0..20 {
                        let idx: Vec<i64> = (0..k * 16).map(|i| (i * 7 + s * 3) % 256).collect();
                        let x = data.batch(&Tensor::from_slice(&idx), k, 16);
                        let out = cohort.step(&x, &margin, &alive);
                        alive = out.alive;
                        losses.extend(
                            Vec::<f32>::try_from(Tensor::cat(&[out.loss_d, out.loss_g], 0))
                                .unwrap(),
                        );
                    }
                    losses
                };
                let (per_tensor, packed) = (run(Layout::PerTensor), run(Layout::Packed));
                assert_eq!(per_tensor.len(), 40 * k as usize);
                assert_eq!(per_tensor, packed, "{model}, K = {k}");
            }
        }
    }
}
