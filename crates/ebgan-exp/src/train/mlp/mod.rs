//! Table 1 training: EBGAN (auto-encoder D, margin loss, optional PT), its successors BEGAN and
//! MAGAN (the same auto-encoder D), and GAN (logistic D) on MNIST, for a cohort of K >= 1 runs
//! sharing one shape. Every loss is averaged per member and
//! summed over members only for the backward pass, so no gradient crosses members.

pub mod checkpoint;
mod critic;
mod data;
mod draws;
pub use draws::Draws;

use critic::{BuildMlpD, MlpCritic};
use data::DataOrder;
pub use data::DeviceImages;

use super::adaptive::Adaptive;
use super::checkpoint::Loaded;
use super::cohort::CohortKey;
use super::driver::{self, Draw, Parts};
use super::outcome::Trained;
use super::step::{EnergyOf, StepOutput};
use super::stop::Stop;
use super::train_loop::{
    self, margin_row, Measured, Named, Runs, Schedule, Stepped, Training, CHECKPOINT,
};
use crate::config::RunConfig;
use crate::data::mnist::PIXELS;
use crate::family::LogColumn;
use crate::png::{image_grid, save_rgb_png};
use crate::scoring::Scorer;
use anyhow::Result;
use ebgan_core::score::Scores;
use ebgan_core::{upload, Layout, MarginSchedule, MemberOptim};
use ebgan_models::mlp::Generator;
use ebgan_models::rng::{MemberRng, Stream, Streams};
use ebgan_models::Vars;
use std::path::PathBuf;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// The networks, optimizers and random streams of a cohort, and its training step.
pub struct Cohort {
    /// Every member-stacked parameter by name (for checkpoints).
    vars: Vars,
    g: Generator,
    critic: MlpCritic,
    opt_g: MemberOptim,
    opt_d: MemberOptim,
    noise: MemberRng,
    /// WGAN-GP's interpolation weights.
    interpolation: MemberRng,
    /// The three streams, sharing one window of draws.
    streams: Streams,
    pt_weight: Option<Tensor>,
    /// BEGAN's k_t, MAGAN's margin.
    adaptive: Adaptive,
    steps_per_epoch: u64,
    key: CohortKey,
    seeds: Vec<u64>,
    /// Which members use dropout (the others draw no masks).
    dropout: Vec<bool>,
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
        let spec = members[0].mlp_spec(members, PIXELS as i64);
        let mut vars = Vars::new(&seeds, device);
        let g = Generator::new(&mut vars, &spec);
        let d = (key.model.d_kind())
            .build(BuildMlpD {
                vars: &mut vars,
                spec: &spec,
            })
            .expect("ladder models train in train::ladder");
        let opt_g = MemberOptim::with_layout(
            vars.tensors_under("g."),
            members.iter().map(|m| m.optim_hyper(m.optim_g)).collect(),
            layout,
        );
        let opt_d = MemberOptim::with_layout(
            vars.tensors_under("d."),
            members.iter().map(|m| m.optim_hyper(m.optim_d)).collect(),
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
        let streams = Streams::new(&seeds, device);
        Cohort {
            vars,
            g,
            critic: MlpCritic {
                d,
                masks: streams.stream(Stream::Dropout),
                // The energy's fields are part of the CohortKey: the first member's stand for all.
                energy: EnergyOf::of_run(&members[0]),
            },
            opt_g,
            opt_d,
            noise: streams.stream(Stream::Noise),
            interpolation: streams.stream(Stream::Interpolate),
            streams,
            pt_weight,
            adaptive: Adaptive::new(members, device),
            steps_per_epoch: members[0].steps_per_epoch(),
            key,
            seeds,
            dropout: members
                .iter()
                .map(|m| m.dropout_d && m.dropout_p > 0.0)
                .collect(),
        }
    }

    /// Weights (`vars/<name>`), optimizer states (`opt_g/..`, `opt_d/..`) and BEGAN's or
    /// MAGAN's state (`adaptive/..`), member-stacked.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = self
            .vars
            .named()
            .iter()
            .map(|(n, t)| (format!("vars/{n}"), t.shallow_clone()))
            .collect();
        for (prefix, o) in [("opt_g", &self.opt_g), ("opt_d", &self.opt_d)] {
            tensors.extend(
                o.state()
                    .into_iter()
                    .map(|(n, t)| (format!("{prefix}/{n}"), t)),
            );
        }
        tensors.extend(self.adaptive.state());
        tensors
    }

    /// BEGAN's k_t or MAGAN's margin, per member.
    pub fn adaptive(&self) -> &Adaptive {
        &self.adaptive
    }

    /// Names of the parameters under `prefix` ("g." or "d."), in their optimizer's order.
    pub fn param_names(&self, prefix: &str) -> Vec<String> {
        self.vars
            .named()
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The training step after `done` steps on real images `x` `[K, B, 784]` with scheduled
    /// margins `[K]`: MAGAN's pretraining step or the shared [`step`], then BEGAN's k_t moves
    /// and, at an epoch's end, MAGAN's margin. Members not `alive` (`[K]` bool) are not updated.
    pub fn train_step(
        &mut self,
        x: &Tensor,
        margin: &Tensor,
        alive: &Tensor,
        done: u64,
    ) -> StepOutput {
        self.streams.next_step();
        let per_epoch = self.steps_per_epoch;
        let (parts, draw) = self.parts(x.size()[1]);
        driver::train_step(parts, x, draw, margin, (done, per_epoch), alive)
    }

    /// One D update then one G update (the shared step) with the current k_t or margins
    /// (`margin` where the model keeps none of its own); nothing carried forward.
    pub fn step(&mut self, x: &Tensor, margin: &Tensor, alive: &Tensor) -> StepOutput {
        let (mut parts, draw) = self.parts(x.size()[1]);
        driver::adversarial(&mut parts, x, draw, margin, alive)
    }

    /// What the step driver drives, and how a batch of `b` per member is drawn: noise, then G's
    /// fakes, then (WGAN-GP) the interpolation weights.
    fn parts(
        &mut self,
        b: i64,
    ) -> (
        Parts<'_>,
        Draw<impl FnOnce() -> Tensor + '_, impl FnOnce(u64) -> Tensor + '_>,
    ) {
        let (noise, g, z_dim) = (&mut self.noise, &self.g, self.key.z_dim);
        let interpolation = &mut self.interpolation;
        let draw = Draw {
            fake: move || g.forward(&noise.normal(&[b, z_dim], 1.0)),
            eps: move |_| interpolation.uniform(&[b]),
        };
        let parts = Parts {
            critic: &mut self.critic,
            opt_d: &mut self.opt_d,
            opt_g: &mut self.opt_g,
            adaptive: &mut self.adaptive,
            pulling_away: self.pt_weight.as_ref(),
        };
        (parts, draw)
    }
}

/// Each member's margin schedule, uploaded once when every margin is constant.
pub(crate) struct Margins {
    schedules: Vec<MarginSchedule>,
    constant: Option<Tensor>,
    device: Device,
}

impl Margins {
    pub(crate) fn new(members: &[RunConfig], device: Device) -> Self {
        let schedules: Vec<_> = members.iter().map(|m| m.margin_schedule()).collect();
        let mut m = Margins {
            schedules,
            constant: None,
            device,
        };
        if m.schedules.iter().all(|s| s.is_constant()) {
            m.constant = Some(m.upload(0));
        }
        m
    }

    fn upload(&self, step: u64) -> Tensor {
        let v: Vec<f32> = self
            .schedules
            .iter()
            .map(|s| s.margin_at(step) as f32)
            .collect();
        upload(Tensor::from_slice(&v), self.device)
    }

    /// `[K]` margins at `step`.
    pub(crate) fn at(&self, step: u64) -> Tensor {
        match &self.constant {
            Some(m) => m.shallow_clone(),
            None => self.upload(step),
        }
    }
}

/// A cohort to train: its members (all of one [`CohortKey`]) with their run ids and folders.
pub struct CohortRun<'a> {
    pub members: &'a [RunConfig],
    pub ids: &'a [String],
    pub dirs: &'a [PathBuf],
    pub data: &'a DeviceImages,
    pub scorer: &'a Scorer,
    pub stop: &'a Stop,
    /// Wall time between checkpoints (one is also written when a stop is requested).
    pub checkpoint_every: Duration,
}

/// The checkpoint of the cohort whose members' folders are `dirs` (in the first member's).
pub fn checkpoint_path(dirs: &[PathBuf]) -> PathBuf {
    dirs[0].join(CHECKPOINT)
}

/// Trains (or resumes from its checkpoint) a cohort and writes each finished member's
/// samples.png into its folder. `progress(steps done, message)` is called after every step.
pub fn train_cohort(run: &CohortRun, progress: &mut dyn FnMut(u64, &str)) -> Result<Trained> {
    let device = run.data.images.device();
    let cohort = Cohort::new(run.members, device);
    let mut training = CohortTraining {
        order: DataOrder::new(&cohort.seeds, run.data.len),
        margins: Margins::new(run.members, device),
        perms: vec![],
        epoch_start: vec![0; run.members.len()],
        cohort,
        run,
    };
    let path = checkpoint_path(run.dirs);
    let runs = Runs {
        ids: run.ids,
        checkpoint: &path,
        checkpoint_every: run.checkpoint_every,
        final_checkpoint: false,
        stop: run.stop,
    };
    train_loop::train(&mut training, &runs, progress)
}

/// A cohort in the one training loop: its data order and margin schedules beside the networks.
struct CohortTraining<'a> {
    run: &'a CohortRun<'a>,
    cohort: Cohort,
    order: DataOrder,
    /// This epoch's permutations, one per member, and the data-order positions they were drawn
    /// from (a checkpoint draws them again from there).
    perms: Vec<Vec<i64>>,
    epoch_start: Vec<u128>,
    margins: Margins,
}

impl Training for CohortTraining<'_> {
    type Meta = checkpoint::Streams;

    fn schedule(&self) -> Schedule {
        let c = &self.run.members[0];
        Schedule {
            // MAGAN's pretraining, then `steps` when set, else `epochs` epochs.
            total: c.total_steps(),
            per_epoch: c.steps_per_epoch(),
            pretrain: c.pretrain_steps_over(c.train_images),
            images_per_step: (self.run.members.len() as i64 * c.batch_size) as u64,
        }
    }

    fn device(&self) -> Device {
        self.run.data.images.device()
    }

    fn log_columns(&self) -> &'static [LogColumn] {
        self.cohort.key.model.log_columns()
    }

    fn step(&mut self, done: u64, alive: &Tensor) -> Result<Stepped> {
        let (k, b) = (self.run.members.len() as i64, self.cohort.key.batch_size);
        let per_epoch = self.cohort.steps_per_epoch;
        let s = done % per_epoch;
        if s == 0 {
            self.epoch_start = self.order.positions();
            self.perms = self.order.next_epoch();
        }
        let (start, len) = (s as usize * b as usize, self.run.data.len);
        let idx: Vec<i64> = self
            .perms
            .iter()
            .flat_map(|p| (0..b as usize).map(move |j| p[(start + j) % len]))
            .collect();
        let x = self
            .run
            .data
            .batch(&upload(Tensor::from_slice(&idx), self.device()), k, b);
        // MAGAN's pretraining steps (D alone) stay out of the loss log.
        let pretraining = self.cohort.adaptive.pretraining(done, per_epoch);
        let out = self
            .cohort
            .train_step(&x, &self.margins.at(done), alive, done);
        let stats = match self.cohort.adaptive.extra_stats() {
            Some(extra) => Tensor::cat(&[out.stats(), extra], 0),
            None => out.stats(),
        };
        Ok(Stepped {
            stats: (!pretraining).then_some(stats),
            alive: out.alive,
        })
    }

    fn margins(&self, step: u64) -> Tensor {
        match self.cohort.adaptive.margins() {
            // MAGAN's, as it adapted them.
            Some(m) => m.to_kind(Kind::Double),
            None => {
                let has_margin = self.cohort.adaptive.has_margin();
                let scheduled = self.margins.schedules.iter();
                margin_row(
                    scheduled.map(|s| has_margin.then(|| s.margin_at(step))),
                    self.device(),
                )
            }
        }
    }

    fn state(&self) -> Result<(Named, checkpoint::Streams)> {
        Ok((
            self.cohort.state(),
            checkpoint::Streams::of(&self.cohort, &self.epoch_start),
        ))
    }

    fn restore(&mut self, ck: &Loaded, streams: checkpoint::Streams) -> Result<()> {
        streams.restore(ck, &mut self.cohort)?;
        // The current epoch's permutations, drawn again from its start.
        self.order.seek(&streams.epoch_start);
        self.perms = self.order.next_epoch();
        self.epoch_start = streams.epoch_start;
        Ok(())
    }

    fn finish(&mut self, finished: &[bool]) -> Result<Vec<Measured>> {
        let (cohort, run) = (&self.cohort, self.run);
        let (samples, scores) = sample_and_score(
            &cohort.g,
            &cohort.seeds,
            &cohort.key,
            run.scorer,
            self.device(),
        );
        let mut measured = vec![];
        for (i, &finished) in finished.iter().enumerate() {
            if finished {
                let sheet = samples.get(i as i64).view([-1, 1, 28, 28]);
                save_rgb_png(&image_grid(&sheet, 8), &run.dirs[i].join("samples.png"))?;
            }
            measured.push(Measured {
                scores: finished.then_some(scores[i]),
                ..Measured::default()
            });
        }
        Ok(measured)
    }
}

/// 64 fixed-noise samples per member (`[K, 64, 784]`, on the CPU) and the scores of
/// `score_samples` more. G runs with batch statistics in whole batches of `batch_size`, as in
/// training.
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
            // Whole batches only: a short last batch would be normalised by its own few
            // samples' statistics.
            let parts: Vec<Tensor> = (0..count.div_ceil(key.batch_size as usize))
                .map(|_| g.forward(&rng.normal(&[key.batch_size, key.z_dim], 1.0)))
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
    use crate::results::Status;
    use crate::results::{LossLog, RunOutcome};
    use ebgan_core::OptimKind;
    use rand::RngCore;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

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

    fn losses(r: &RunOutcome) -> Vec<(f64, f64)> {
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

    /// Trains `members` with their run folders in a temporary directory (kept alive inside).
    fn train(members: &[RunConfig]) -> Vec<RunOutcome> {
        train_in(members, &tempfile::tempdir().unwrap())
    }

    fn train_in(members: &[RunConfig], root: &tempfile::TempDir) -> Vec<RunOutcome> {
        match train_until(members, root, None, Duration::MAX) {
            Trained::Done(outcomes) => outcomes,
            other => panic!("nothing asked it to stop: {other:?}"),
        }
    }

    /// Trains `members` in run folders under `root`, asking for a stop after `stop_at` steps.
    fn train_until(
        members: &[RunConfig],
        root: &tempfile::TempDir,
        stop_at: Option<u64>,
        checkpoint_every: Duration,
    ) -> Trained {
        let dirs: Vec<PathBuf> = (0..members.len())
            .map(|i| {
                let d = root.path().join(format!("run-{i}"));
                std::fs::create_dir_all(&d).unwrap();
                d
            })
            .collect();
        let ids: Vec<String> = members.iter().map(RunConfig::run_id).collect();
        let stop = Stop::never();
        SCORER.with(|scorer| {
            let run = CohortRun {
                members,
                ids: &ids,
                dirs: &dirs,
                data: &images(),
                scorer,
                stop: &stop,
                checkpoint_every,
            };
            let mut on_step = |s: u64, _: &str| {
                if Some(s) == stop_at {
                    stop.request();
                }
            };
            train_cohort(&run, &mut on_step).unwrap()
        })
    }

    /// Loss logs and scores as bits: "the same" below means bit for bit.
    fn bits(r: &RunOutcome) -> (Vec<LossLog>, Option<u64>) {
        (
            r.log.clone(),
            r.measured.scores.map(|s| s.i_prime.to_bits()),
        )
    }

    #[test]
    fn a_run_trains_bit_for_bit_the_same_alone_and_anywhere_in_a_mixed_cohort() {
        // By construction (train/mod.rs, Trainer::threads; ebgan_core::member_wise): one
        // libtorch thread per cohort, each member's matmuls as the 2-D calls it makes alone, and
        // transcendental functions applied per member, so no member's bits depend on K or on
        // its position. Batch 16 and widths 16 / 32 put members' values in the vector kernels'
        // scalar tails differently alone and in the cohort.
        for (model, pt) in [
            (Model::Ebgan, 0.0),
            (Model::Ebgan, 0.1),
            (Model::Gan, 0.0),
            (Model::WganGp, 0.0),
        ] {
            let target = RunConfig {
                dropout_d: true,
                pulling_away: pt,
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
            assert_eq!(alone[0].status(), Status::Finished);
            assert_eq!(alone[0].epochs_done, 3);
            assert_eq!(
                alone[0].log.iter().map(|l| l.step).collect::<Vec<_>>(),
                [16, 32, 48]
            );
            let family = target.family();
            for at in [1, 3] {
                assert_eq!(
                    bits(&alone[0]),
                    bits(&cohort[at]),
                    "{family} at position {at}"
                );
            }
            // The cohort reversed: every member ends where it did.
            let mut reversed = mixed.to_vec();
            reversed.reverse();
            let back = train(&reversed);
            for (i, r) in back.iter().rev().enumerate() {
                assert_eq!(bits(r), bits(&cohort[i]), "{family}: member {i} reversed");
            }
            // Other members differ.
            assert_ne!(cohort[1].log, cohort[0].log);
        }
    }

    #[test]
    fn began_and_magan_train_alone_as_in_a_cohort_and_resume_bit_for_bit() {
        for model in [Model::Began, Model::Magan] {
            let members = [
                RunConfig {
                    dropout_d: true,
                    ..config(model, 1)
                },
                RunConfig {
                    optim_d: OptimKind::Sgd,
                    sgd_momentum: 0.9,
                    lr: 0.01,
                    began_gamma: if model == Model::Began { 0.7 } else { 0.5 },
                    magan_strict: model != Model::Magan,
                    ..config(model, 2)
                },
            ];
            let whole = train(&members);
            let alone = train(&members[..1]);
            // BEGAN's k_t and MAGAN's margin feed each step back into the next, which amplifies
            // any last-bit difference: only bit-for-bit equality is a claim that travels.
            assert_eq!(
                bits(&alone[0]),
                bits(&whole[0]),
                "{model}: alone vs in a cohort"
            );
            let second = train(&members[1..]);
            assert_eq!(bits(&second[0]), bits(&whole[1]), "{model}: member 1 alone");
            // MAGAN pretrains D for one epoch (16 steps) first, outside the log.
            let pretrain = if model == Model::Magan { 16 } else { 0 };
            for r in &whole {
                assert_eq!(r.status(), Status::Finished);
                assert_eq!(r.epochs_done, 3);
                let steps: Vec<u64> = r.log.iter().map(|l| l.step).collect();
                assert_eq!(steps, [16 + pretrain, 32 + pretrain, 48 + pretrain]);
            }
            if model == Model::Began {
                for l in whole.iter().flat_map(|r| &r.log) {
                    let (k, m) = (l.k_t.unwrap(), l.m_global.unwrap());
                    assert_eq!(l.margin, None, "BEGAN has no margin");
                    assert!((0.0..=1.0).contains(&k), "k_t {k}");
                    // M_global = L(x) + |gamma L(x) - L(G(z))| >= L(x), window means included.
                    assert!(m >= l.real - 1e-6, "{l:?}");
                }
                assert!(whole[0].log.iter().any(|l| l.k_t.unwrap() > 0.0));
            } else {
                // Each logged epoch's window means are that epoch's mean energies: the margin
                // column must follow MAGAN's rule from them (re-derived here in f64).
                for (r, strict) in whole.iter().zip([true, false]) {
                    let below = |a: f64, b: f64| if strict { a < b } else { a <= b };
                    let log = &r.log;
                    assert!(log[0].margin > Some(0.0) && log[0].k_t.is_none());
                    for e in 1..log.len() {
                        let (m, l, prev) = (log[e - 1].margin.unwrap(), &log[e], log[e - 1].fake);
                        let update =
                            below(l.real, m) && below(l.real, l.fake) && below(prev, l.fake);
                        let want = if update { l.real } else { m };
                        assert!(
                            (l.margin.unwrap() - want).abs() <= 1e-4 * want.abs(),
                            "{log:?}"
                        );
                    }
                }
            }
            // Stopped inside an adversarial epoch, resumed: the same logs and scores.
            let dir = tempfile::tempdir().unwrap();
            let stop_at = pretrain + 7;
            match train_until(&members, &dir, Some(stop_at), Duration::MAX) {
                Trained::Stopped { step, .. } => assert_eq!(step, stop_at),
                other => panic!("{other:?}"),
            }
            let resumed = train_in(&members, &dir);
            for (a, b) in whole.iter().zip(&resumed) {
                assert_eq!(a.log, b.log, "{model} after a stop at {stop_at}");
                assert_eq!(
                    a.measured.scores.map(|s| s.i_prime.to_bits()),
                    b.measured.scores.map(|s| s.i_prime.to_bits())
                );
            }
        }
    }

    #[test]
    fn wgan_gp_updates_g_on_critic_turns_logs_its_penalty_and_resumes_bit_for_bit() {
        // 16 steps an epoch, n_critic 5: G updates after steps 5, 10, 15, ... A stop after
        // step 7 falls between G's turns.
        let members = [
            RunConfig {
                dropout_d: true,
                ..config(Model::WganGp, 1)
            },
            RunConfig {
                wgan_lambda: 1.0,
                beta1: 0.0,
                beta2: 0.9,
                lr: 1e-4,
                ..config(Model::WganGp, 2)
            },
        ];
        let whole = train(&members);
        for r in &whole {
            assert_eq!(r.status(), Status::Finished);
            for l in &r.log {
                let p = l.gradient_penalty.expect("WGAN-GP logs its penalty");
                assert!(p.is_finite() && p > 0.0, "{l:?}");
                assert_eq!((l.margin, l.k_t), (None, None), "{l:?}");
            }
        }
        // Another lambda: another critic loss, the same first critic scores (nothing has moved).
        assert_ne!(whole[0].log, whole[1].log);
        let dir = tempfile::tempdir().unwrap();
        match train_until(&members, &dir, Some(7), Duration::MAX) {
            Trained::Stopped { step, .. } => assert_eq!(step, 7),
            other => panic!("{other:?}"),
        }
        let resumed = train_in(&members, &dir);
        for (a, b) in whole.iter().zip(&resumed) {
            assert_eq!(bits(a), bits(b), "after a stop at step 7");
        }
        // G does not move between its turns: one critic step less than a turn leaves G's
        // samples as they were, and the turn moves them.
        let turns = |n_critic: u64, steps: u64| {
            let c = RunConfig {
                wgan_n_critic: n_critic,
                steps,
                ..config(Model::WganGp, 3)
            };
            train(&[c])[0].measured.scores.unwrap().i_prime.to_bits()
        };
        assert_eq!(turns(5, 4), turns(5, 1), "G moved before its turn");
        assert_ne!(turns(5, 5), turns(5, 4), "G did not move on its turn");
    }

    #[test]
    fn an_ordinary_step_reads_nothing_back() {
        // 16 steps an epoch; MAGAN pretrains one epoch first and reads its adapted margins back
        // at each window, BEGAN its k_t: the host reads once at each epoch's end (a log
        // window's boundary), never between.
        for model in [Model::Magan, Model::Began, Model::Ebgan, Model::WganGp] {
            let members = [
                RunConfig {
                    dropout_d: true,
                    margin_decay: crate::config::MarginDecay::Linear,
                    ..config(model, 1)
                },
                config(model, 2),
            ];
            let root = tempfile::tempdir().unwrap();
            let dirs: Vec<PathBuf> = (0..2).map(|i| root.path().join(format!("r{i}"))).collect();
            dirs.iter()
                .for_each(|d| std::fs::create_dir_all(d).unwrap());
            let ids: Vec<String> = members.iter().map(RunConfig::run_id).collect();
            let mut reads = crate::train::train_loop::ReadsPerStep::new();
            SCORER.with(|scorer| {
                let stop = Stop::never();
                let run = CohortRun {
                    members: &members,
                    ids: &ids,
                    dirs: &dirs,
                    data: &images(),
                    scorer,
                    stop: &stop,
                    checkpoint_every: Duration::MAX,
                };
                train_cohort(&run, &mut |s, _| reads.after(s)).unwrap();
            });
            let ends: Vec<(u64, u64)> = match model {
                Model::Magan => vec![(16, 1), (32, 1), (48, 1), (64, 1)],
                _ => vec![(16, 1), (32, 1), (48, 1)],
            };
            assert_eq!(reads.reads, ends, "{model}");
        }
    }

    #[test]
    fn a_step_count_ends_training_there_whatever_the_epochs() {
        // 16 steps per epoch: `steps` ends training 4 steps into the second epoch, the last log
        // window closes there, and `epochs` (25 here) is not what counts.
        for (steps, windows, epochs) in [(20, vec![16, 20], 1), (5, vec![5], 0)] {
            let c = RunConfig {
                steps,
                epochs: 25,
                ..config(Model::Ebgan, 0)
            };
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("run");
            std::fs::create_dir_all(&dir).unwrap();
            let mut last = 0;
            let r = SCORER.with(|scorer| {
                let stop = Stop::never();
                let run = CohortRun {
                    members: &[c],
                    ids: &["run".to_string()],
                    dirs: &[dir],
                    data: &images(),
                    scorer,
                    stop: &stop,
                    checkpoint_every: Duration::MAX,
                };
                match train_cohort(&run, &mut |s, _| last = s).unwrap() {
                    Trained::Done(outcomes) => outcomes,
                    other => panic!("{other:?}"),
                }
            });
            assert_eq!(last, steps);
            assert_eq!(r[0].log.iter().map(|l| l.step).collect::<Vec<_>>(), windows);
            assert_eq!(r[0].epochs_done, epochs);
        }
    }

    #[test]
    fn a_stopped_cohort_resumes_bit_for_bit() {
        // Mixed members (Adam and SGD with momentum, dropout, PT) and one that diverges: stopped
        // mid-epoch, at an epoch's end, and with a checkpoint after every step, each resumed
        // cohort ends with the logs, scores and sample sheets of the uninterrupted one.
        let members = [
            RunConfig {
                dropout_d: true,
                pulling_away: 0.1,
                ..config(Model::Ebgan, 1)
            },
            RunConfig {
                optim_d: OptimKind::Sgd,
                sgd_momentum: 0.9,
                lr: 0.01,
                ..config(Model::Ebgan, 2)
            },
            RunConfig {
                lr: 1e12,
                optim_d: OptimKind::Sgd,
                optim_g: OptimKind::Sgd,
                ..config(Model::Ebgan, 3)
            },
        ];
        let whole_dir = tempfile::tempdir().unwrap();
        let whole = train_in(&members, &whole_dir);
        assert!(whole[2].diverged_at.is_some() && whole[0].diverged_at.is_none());
        let sheet = |root: &tempfile::TempDir, i: usize| {
            std::fs::read(root.path().join(format!("run-{i}/samples.png"))).unwrap()
        };
        for (stop_at, every) in [
            (20, Duration::MAX),
            (32, Duration::MAX),
            (7, Duration::ZERO),
        ] {
            let dir = tempfile::tempdir().unwrap();
            match train_until(&members, &dir, Some(stop_at), every) {
                Trained::Stopped { step } => {
                    assert_eq!(
                        (step, checkpoint_path(&[dir.path().join("run-0")]).is_file()),
                        (stop_at, true)
                    )
                }
                other => panic!("{other:?}"),
            }
            assert!(checkpoint_path(&[dir.path().join("run-0")]).is_file());
            let resumed = train_in(&members, &dir);
            for (i, (a, b)) in whole.iter().zip(&resumed).enumerate() {
                assert_eq!(a.log, b.log, "member {i} after a stop at {stop_at}");
                assert_eq!(
                    (a.diverged_at, a.epochs_done),
                    (b.diverged_at, b.epochs_done)
                );
                assert_eq!(
                    a.measured.scores.map(|s| s.i_prime.to_bits()),
                    b.measured.scores.map(|s| s.i_prime.to_bits())
                );
            }
            assert_eq!(sheet(&whole_dir, 0), sheet(&dir, 0));
            assert_eq!(sheet(&whole_dir, 1), sheet(&dir, 1));
        }
        // A checkpoint of other members is not resumed from: that cohort starts over.
        let dir = tempfile::tempdir().unwrap();
        train_until(&members, &dir, Some(20), Duration::MAX);
        let others = [members[1].clone(), members[0].clone(), members[2].clone()];
        let fresh = train_in(&others, &dir);
        assert_eq!(fresh[1].log, whole[0].log);
    }

    #[test]
    fn different_seeds_give_different_runs() {
        let r = train(&[config(Model::Ebgan, 1), config(Model::Ebgan, 2)]);
        assert!(!close(&losses(&r[0]), &losses(&r[1]), 1e-3));
    }

    #[test]
    fn a_diverging_member_is_frozen_and_the_others_are_untouched() {
        // EBGAN: an energy (a squared reconstruction error) under SGD at lr 1e12 overflows
        // whatever the draws; a GAN's bounded gradients can leave every ReLU dead instead.
        let sane = config(Model::Ebgan, 3);
        let wild = RunConfig {
            lr: 1e12,
            optim_d: OptimKind::Sgd,
            optim_g: OptimKind::Sgd,
            ..config(Model::Ebgan, 4)
        };
        let alone = train(std::slice::from_ref(&sane));
        let both = train(&[wild, sane]);
        match both[0].diverged_at {
            Some(step) => assert!((1..=48).contains(&step), "{step}"),
            None => panic!("lr 1e12 should diverge"),
        }
        assert_eq!(both[0].status(), Status::Diverged);
        assert!(both[0].measured.scores.is_none());
        assert_eq!(both[1].status(), Status::Finished);
        assert_eq!(bits(&alone[0]), bits(&both[1]));
    }

    #[test]
    fn ebgan_training_lowers_the_real_energy() {
        let root = tempfile::tempdir().unwrap();
        let r = train_in(
            &[RunConfig {
                epochs: 6,
                ..config(Model::Ebgan, 0)
            }],
            &root,
        );
        let e = &r[0].log;
        assert!(
            e.last().unwrap().real < e[0].real,
            "real energy did not fall: {:?}",
            e.iter().map(|l| l.real).collect::<Vec<_>>()
        );
        // 64 samples of 28x28 in an 8x8 sheet (1-pixel borders).
        let sheet = image::open(root.path().join("run-0/samples.png")).unwrap();
        assert_eq!((sheet.width(), sheet.height()), (8 * 30 + 2, 8 * 30 + 2));
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
