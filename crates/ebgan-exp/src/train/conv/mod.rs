//! Convolutional EBGAN / EBGAN-PT, BEGAN, MAGAN and DCGAN on image sets (paper §4.3-4.4), one
//! run at a time:
//! fixed-noise sample grids and checkpoints every N steps, and exact resume from the last
//! checkpoint (weights, batch-norm statistics, optimizer moments, step, loss log; the random
//! streams are functions of (seed, step) and the data order of (seed, epoch)).

use super::adaptive::Adaptive;
use super::checkpoint::Loaded;
use super::driver::{self, Draw, Parts};
use super::outcome::Trained;
use super::step::{Critic, Critique, EnergyOf, StepOutput};
use super::stop::Stop;
use super::train_loop::{self, margin_row, Measured, Named, Runs, Schedule, Stepped, Training};
use crate::config::RunConfig;
use crate::data::image_set::ImageSet;
use crate::family::{BuildD, LogColumn};
use crate::png::{image_grid, save_rgb_png};
use crate::scoring::Scorer;
use anyhow::{bail, Result};
use ebgan_core::{Layout, MarginSchedule, MemberOptim};
use ebgan_models::dcgan::{self, AutoEncoder, ConvSpec, Discriminator, Generator};
use ebgan_models::rng::{stream as stream_rng, MemberRng, Stream, Streams};
use std::path::Path;
use std::time::Duration;
use tch::{nn, Device, Kind, Tensor};

mod batches;
mod checkpoint;
mod finish;
mod latent;
pub use super::train_loop::CHECKPOINT;
use batches::{Batches, Source};
pub use checkpoint::Meta;
pub use finish::sample_features;
pub use latent::{interpolations, Latent};

enum ConvD {
    Energy(AutoEncoder),
    Logistic(Discriminator),
    /// WGAN-GP: DCGAN's D without batch norm, its output a score.
    Critic(Discriminator),
}

/// D of one run as the shared step sees it: a cohort of one (K = 1) for ebgan-core's losses.
struct ConvCritic {
    d: ConvD,
    energy: EnergyOf,
}

impl Critic for ConvCritic {
    fn critique(&mut self, xs: &[&Tensor]) -> Critique {
        let one = |t: &Tensor| t.unsqueeze(0); // [B, ...] -> [1, B, ...]
        match &self.d {
            ConvD::Energy(ae) => {
                let (mut energy, mut code) = (vec![], vec![]);
                for x in xs {
                    let out = ae.forward(x, true);
                    let (recon, x) = (one(&out.reconstruction), one(x));
                    energy.push(self.energy.energy(&recon, &x));
                    code.push(one(&out.code));
                }
                Critique::Energy { energy, code }
            }
            ConvD::Logistic(d) => {
                Critique::Logit(xs.iter().map(|x| one(&d.forward(x, true))).collect())
            }
            ConvD::Critic(d) => {
                Critique::Value(xs.iter().map(|x| one(&d.forward(x, true))).collect())
            }
        }
    }
}

/// G and D of one run, their optimizers, and the training step.
pub struct ConvGan {
    pub spec: ConvSpec,
    pub g_vs: nn::VarStore,
    d_vs: nn::VarStore,
    pub g: Generator,
    critic: ConvCritic,
    opt_g: MemberOptim,
    opt_d: MemberOptim,
    /// `[1]` on the device: PT weight (None: no PT), always-true "alive", the last margin.
    pulling_away: Option<Tensor>,
    alive: Tensor,
    margin: (f64, Tensor),
    /// BEGAN's k_t, MAGAN's margin, WGAN-GP's penalty weight.
    adaptive: Adaptive,
    /// WGAN-GP's interpolation weights, a sub-stream per D step.
    interpolation: MemberRng,
    /// The run's streams, sharing one window of draws.
    streams: Streams,
}

/// Per-step statistics `[4]` on the device: D loss, G loss, real and fake energy (EBGAN) or
/// D(x) probability (GAN).
type StepStats = Tensor;

/// D of a run's kind on its variable store.
struct BuildConvD<'a> {
    vs: &'a nn::VarStore,
    spec: &'a ConvSpec,
}

impl BuildD for BuildConvD<'_> {
    type D = ConvD;
    fn auto_encoder(self) -> ConvD {
        ConvD::Energy(AutoEncoder::new(&self.vs.root(), self.spec))
    }
    fn logistic(self) -> ConvD {
        ConvD::Logistic(Discriminator::new(&self.vs.root(), self.spec))
    }
    fn critic(self) -> ConvD {
        ConvD::Critic(Discriminator::critic(&self.vs.root(), self.spec))
    }
}

impl ConvGan {
    pub fn new(c: &RunConfig, channels: i64, device: Device) -> Self {
        Self::with_layout(c, channels, device, Layout::for_device(device))
    }

    /// `layout`: how the optimizers hold the parameters (tests compare both on the CPU).
    pub fn with_layout(c: &RunConfig, channels: i64, device: Device, layout: Layout) -> Self {
        if device.is_cuda() && !crate::precision::deterministic_cudnn() {
            // Shapes are fixed for a whole run: let cuDNN pick the fastest convolution kernels
            // (unless a check that compares bits holds it to deterministic ones).
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let spec = c.conv_spec(channels);
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let g = Generator::new(&g_vs.root(), &spec);
        let d = (c.model.d_kind())
            .build(BuildConvD {
                vs: &d_vs,
                spec: &spec,
            })
            .expect("ladder models train in train::ladder");
        let mut rng = stream_rng(c.seed, Stream::Init, 0);
        dcgan::init(&g_vs, c.init_std_g, &mut rng);
        dcgan::init(&d_vs, c.init_std_d, &mut rng);
        let optim = |vs: &nn::VarStore, kind| {
            MemberOptim::with_layout(vs.trainable_variables(), vec![c.optim_hyper(kind)], layout)
        };
        let one = |v: f64| Tensor::from_slice(&[v as f32]).to_device(device);
        let streams = Streams::new(&[c.seed], device);
        ConvGan {
            opt_g: optim(&g_vs, c.optim_g),
            opt_d: optim(&d_vs, c.optim_d),
            spec,
            g_vs,
            d_vs,
            g,
            critic: ConvCritic {
                d,
                energy: EnergyOf::of_run(c),
            },
            pulling_away: (c.pulling_away > 0.0).then(|| one(c.pulling_away)),
            alive: Tensor::ones([1], (Kind::Bool, device)),
            margin: (f64::NAN, Tensor::zeros([1], (Kind::Float, device))),
            adaptive: Adaptive::new(std::slice::from_ref(c), device),
            interpolation: streams.stream(Stream::Interpolate),
            streams,
        }
    }

    /// The training step after `done` steps of `per_epoch` an epoch, for a run `alive` (`[1]`
    /// bool; not updated when false): MAGAN's pretraining step (D alone) or [`ConvGan::step`],
    /// then what BEGAN and MAGAN carry forward. Returns the statistics `[R]` (the four of
    /// [`ConvGan::step`], then the family's own) and whether the run is alive after the step.
    pub fn train_step(
        &mut self,
        x: &Tensor,
        latent: &Latent,
        margin: f64,
        done: u64,
        per_epoch: u64,
        alive: &Tensor,
    ) -> (StepStats, Tensor) {
        let margin = self.margin(margin);
        let (parts, draw) = self.parts(x, latent);
        let out = driver::train_step(parts, x, draw, &margin, (done, per_epoch), alive);
        let stats = out.stats().view([-1]);
        let stats = match self.adaptive.extra_stats() {
            Some(extra) => Tensor::cat(&[stats, extra.view([-1])], 0),
            None => stats,
        };
        (stats, out.alive)
    }

    /// BEGAN's k_t, MAGAN's margin.
    pub fn adaptive(&self) -> &Adaptive {
        &self.adaptive
    }

    fn margin(&mut self, m: f64) -> Tensor {
        if self.margin.0 != m {
            let t = ebgan_core::upload(Tensor::from_slice(&[m as f32]), self.g_vs.device());
            self.margin = (m, t);
        }
        self.margin.1.shallow_clone()
    }

    /// One D update on real `x` and G(z) (detached), then one G update through the updated D:
    /// the shared [`step`] for a cohort of one. No host synchronisation: the statistics stay on
    /// the device.
    pub fn step(&mut self, x: &Tensor, latent: &Latent, margin: f64) -> StepStats {
        let alive = self.alive.shallow_clone();
        self.step_output(x, latent, margin, &alive)
            .stats()
            .view([-1])
    }

    fn step_output(
        &mut self,
        x: &Tensor,
        latent: &Latent,
        margin: f64,
        alive: &Tensor,
    ) -> StepOutput {
        let margin = self.margin(margin);
        let (mut parts, draw) = self.parts(x, latent);
        driver::adversarial(&mut parts, x, draw, &margin, alive)
    }

    /// What the step driver drives, and how a step on `x` draws: G's fakes from `latent`, then
    /// (WGAN-GP) the interpolation weights of D's step at its index.
    fn parts<'a>(
        &'a mut self,
        x: &Tensor,
        latent: &'a Latent,
    ) -> (
        Parts<'a>,
        Draw<impl FnOnce() -> Tensor + 'a, impl FnOnce(u64) -> Tensor + 'a>,
    ) {
        let (g, interpolation, b) = (&self.g, &mut self.interpolation, x.size()[0]);
        let draw = Draw {
            fake: move || g.forward(&latent.z, &latent.planes, true),
            eps: move |done| interpolation.at(done).uniform(&[b]).squeeze_dim(0),
        };
        let parts = Parts {
            critic: &mut self.critic,
            opt_d: &mut self.opt_d,
            opt_g: &mut self.opt_g,
            adaptive: &mut self.adaptive,
            pulling_away: self.pulling_away.as_ref(),
        };
        (parts, draw)
    }

    /// Samples `[n, C, S, S]` from G in evaluation mode (batch-norm running statistics).
    pub fn generate(&self, latent: &Latent) -> Tensor {
        let _g = tch::no_grad_guard();
        self.g.forward(&latent.z, &latent.planes, false)
    }

    /// Names of G's and D's trainable variables in their optimizers' order (the index of a
    /// moment in [`MemberOptim::state`]).
    pub fn param_names(&self) -> (Vec<String>, Vec<String>) {
        let names = |vs: &nn::VarStore| -> Vec<String> {
            let all = vs.variables();
            vs.trainable_variables()
                .iter()
                .map(|t| {
                    all.iter()
                        .find(|(_, v)| v.data_ptr() == t.data_ptr())
                        .map(|(n, _)| n.clone())
                        .expect("a trainable variable is a variable")
                })
                .collect()
        };
        (names(&self.g_vs), names(&self.d_vs))
    }

    /// Every variable (`g/..`, `d/..`, batch-norm statistics included), optimizer state
    /// (`opt_g/..`, `opt_d/..`) and BEGAN's or MAGAN's state (`adaptive/..`): what a
    /// checkpoint holds.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (prefix, vs) in [("g", &self.g_vs), ("d", &self.d_vs)] {
            out.extend(
                vs.variables()
                    .into_iter()
                    .map(|(n, t)| (format!("{prefix}/{n}"), t)),
            );
        }
        for (prefix, o) in [("opt_g", &self.opt_g), ("opt_d", &self.opt_d)] {
            out.extend(
                o.state()
                    .into_iter()
                    .map(|(n, t)| (format!("{prefix}/{n}"), t)),
            );
        }
        out.extend(self.adaptive.state());
        out
    }
}

pub struct ConvRun<'a> {
    pub config: &'a RunConfig,
    pub id: &'a str,
    pub data: &'a ImageSet,
    pub dir: &'a Path,
    /// MNIST-64 only: scores the centre 28x28 of generated samples.
    pub scorer: Option<&'a Scorer>,
    /// FID and KID against the dataset, when FID-Inception weights were given.
    pub fid: Option<&'a std::sync::Mutex<crate::fid::Reference>>,
    /// Stop (with a checkpoint) when this is requested: a time budget's end, SIGTERM.
    pub stop: &'a Stop,
    /// Wall time between checkpoints.
    pub checkpoint_every: Duration,
}

pub(super) fn write_samples(gan: &ConvGan, latent: &Latent, path: &Path) -> Result<()> {
    save_rgb_png(&image_grid(&gan.generate(latent), 8), path)
}

/// Trains (or resumes) one run: its sample sheets every `sample_every` steps, its checkpoint on
/// the loop's cadence and at the end (kept for `ebgan sample`).
pub fn train_run(
    run: &ConvRun,
    device: Device,
    progress: &mut dyn FnMut(u64, &str),
) -> Result<Trained> {
    let c = run.config;
    let len = run.data.usable(c);
    if len < c.batch_size as usize {
        bail!(
            "run {}: {len} training images, fewer than one batch of {}",
            run.id,
            c.batch_size
        );
    }
    let gan = ConvGan::new(c, run.data.channels, device);
    let fixed = Latent::draw(
        &gan.spec,
        64,
        &mut stream_rng(c.seed, Stream::Sample, 0),
        device,
    );
    std::fs::create_dir_all(run.dir.join("samples"))?;
    let total = c.total_steps_over(len);
    let per_epoch = c.steps_per_epoch_over(len);
    let (path, ids) = (run.dir.join(CHECKPOINT), [run.id.to_string()]);
    let runs = Runs {
        ids: &ids,
        checkpoint: &path,
        checkpoint_every: run.checkpoint_every,
        final_checkpoint: true,
        stop: run.stop,
    };
    // A thread of this scope gathers batches ahead when the set is held on the host.
    std::thread::scope(|scope| {
        let batches = Batches::new(c, run.data, len, per_epoch);
        let mut training = ConvTraining {
            batches: Source::new(scope, batches),
            schedule: Schedule {
                total,
                per_epoch,
                pretrain: c.pretrain_steps_over(len),
                images_per_step: c.batch_size as u64,
            },
            margins: c.margin_schedule_over(total),
            noise: gan.streams.stream(Stream::Noise),
            run,
            gan,
            fixed,
        };
        train_loop::train(&mut training, &runs, progress)
    })
}

/// A convolutional run in the one training loop.
struct ConvTraining<'a> {
    run: &'a ConvRun<'a>,
    gan: ConvGan,
    batches: Source,
    schedule: Schedule,
    margins: MarginSchedule,
    /// The latents of every sample sheet.
    fixed: Latent,
    /// G's input, a sub-stream per step.
    noise: MemberRng,
}

impl Training for ConvTraining<'_> {
    type Meta = checkpoint::Meta;

    fn schedule(&self) -> Schedule {
        self.schedule
    }

    fn device(&self) -> Device {
        self.gan.g_vs.device()
    }

    fn log_columns(&self) -> &'static [LogColumn] {
        self.run.config.model.log_columns()
    }

    fn step(&mut self, done: u64, alive: &Tensor) -> Result<Stepped> {
        let c = self.run.config;
        self.gan.streams.next_step();
        let x = self.batches.at(done);
        let latent = Latent::from_stream(&self.gan.spec, c.batch_size, self.noise.at(done));
        let margin = self.margins.margin_at(done);
        let per_epoch = self.schedule.per_epoch;
        // MAGAN's pretraining steps (D alone) stay out of the loss log.
        let pretraining = self.gan.adaptive.pretraining(done, per_epoch);
        let (stats, alive) = self
            .gan
            .train_step(&x, &latent, margin, done, per_epoch, alive);
        let step = done + 1;
        if step.is_multiple_of(c.sample_every) || step == self.schedule.total {
            let path = self.run.dir.join(format!("samples/step-{step:07}.png"));
            write_samples(&self.gan, &self.fixed, &path)?;
        }
        Ok(Stepped {
            stats: (!pretraining).then(|| stats.view([-1, 1])),
            alive,
        })
    }

    fn margins(&self, step: u64) -> Tensor {
        match self.gan.adaptive.margins() {
            Some(m) => m.to_kind(Kind::Double).view([1]),
            None => {
                // The margin the window's last step trained with.
                let m = self.margins.margin_at(step - 1);
                margin_row([self.gan.adaptive.has_margin().then_some(m)], self.device())
            }
        }
    }

    fn state(&self) -> Result<(Named, checkpoint::Meta)> {
        Ok((self.gan.tensors(), checkpoint::Meta::of(self.run)))
    }

    fn restore(&mut self, ck: &Loaded, meta: checkpoint::Meta) -> Result<()> {
        meta.check(ck, self.run)?;
        self.gan.restore(ck)
    }

    fn finish(&mut self, finished: &[bool]) -> Result<Vec<Measured>> {
        Ok(vec![match finished[0] {
            true => {
                let (scores, inception) = finish::finish(&self.gan, self.run, &self.fixed)?;
                Measured {
                    scores,
                    inception,
                    ..Measured::default()
                }
            }
            false => Measured::default(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dataset, Model, Network};
    use crate::results::{LossLog, RunOutcome};
    use crate::train::checkpoint;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    /// 40 random RGB images of 24x24: training on 16x16 random crops of them.
    fn images() -> ImageSet {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let bytes: Vec<u8> = (0..40 * 24 * 24 * 3).map(|_| rng.random()).collect();
        ImageSet::from_bytes(&bytes, 40, 24, 3, Dataset::Celeba, Device::Cpu)
    }

    fn tiny(model: Model, network: Network) -> RunConfig {
        RunConfig {
            model,
            network,
            image_size: 16,
            random_crop: true,
            g_base: 4,
            ae_base: 4,
            d_base: 4,
            noise_planes: 2,
            batch_size: 4,
            lr: 0.0002,
            margin: 20.0,
            pulling_away: if model == Model::Ebgan { 0.1 } else { 0.0 },
            steps: 12,
            sample_every: 6,
            ..Default::default()
        }
    }

    fn train(
        c: &RunConfig,
        data: &ImageSet,
        dir: &Path,
        stop_at: Option<u64>,
    ) -> Result<Option<RunOutcome>> {
        train_with(c, data, dir, stop_at, None)
    }

    fn train_with(
        c: &RunConfig,
        data: &ImageSet,
        dir: &Path,
        stop_at: Option<u64>,
        fid: Option<&std::sync::Mutex<crate::fid::Reference>>,
    ) -> Result<Option<RunOutcome>> {
        // A stop requested after `stop_at` steps, as a time budget's end or SIGTERM would.
        let stop = Stop::never();
        let run = ConvRun {
            config: c,
            id: "run-1",
            data,
            dir,
            scorer: None,
            fid,
            stop: &stop,
            checkpoint_every: Duration::MAX,
        };
        let trained = train_run(&run, Device::Cpu, &mut |s, _| {
            if Some(s) == stop_at {
                stop.request();
            }
        })?;
        Ok(match trained {
            Trained::Done(mut outcomes) => Some(outcomes.remove(0)),
            Trained::Stopped { .. } => None,
        })
    }

    fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
        let ck = checkpoint::load(&dir.join(CHECKPOINT)).unwrap();
        let mut v: Vec<(String, Vec<f32>)> = ck
            .tensors
            .iter()
            .filter(|(_, t)| t.kind() == Kind::Float)
            .map(|(n, t)| (n.clone(), Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn began_and_magan_resume_bit_for_bit_with_their_own_state() {
        // 40 images, batch 4: 10 steps an epoch. MAGAN: 10 pretraining steps, then 2 epochs;
        // stopped 3 steps into its first adversarial epoch (mid-epoch sums in the checkpoint).
        let data = images();
        for (model, stop_at) in [(Model::Began, 6), (Model::Magan, 13)] {
            let c = RunConfig {
                steps: 0,
                epochs: 2,
                pulling_away: 0.0,
                began_lambda_k: if model == Model::Began { 0.05 } else { 0.001 },
                ..tiny(model, Network::Dcgan)
            };
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let whole = train(&c, &data, a.path(), None).unwrap().unwrap();
            assert!(train(&c, &data, b.path(), Some(stop_at)).unwrap().is_none());
            let resumed = train(&c, &data, b.path(), None).unwrap().unwrap();
            assert_eq!(whole.log, resumed.log, "{model}");
            let (wa, wb) = (weights(a.path()), weights(b.path()));
            assert!(wa.iter().any(|(n, _)| n.starts_with("adaptive/")));
            assert_eq!(
                wa, wb,
                "{model}: weights or adaptive state differ after resuming"
            );
            assert_eq!(whole.epochs_done, 2);
            let last = whole.log.last().unwrap();
            if model == Model::Began {
                assert_eq!(last.step, 20);
                assert!(whole
                    .log
                    .iter()
                    .all(|l| l.k_t.is_some_and(|k| (0.0..=1.0).contains(&k))));
            } else {
                // Pretraining is out of the log: windows close at the adversarial epochs' ends.
                assert_eq!(
                    whole.log.iter().map(|l| l.step).collect::<Vec<_>>(),
                    [20, 30]
                );
                assert!(last.margin > Some(0.0) && last.k_t.is_none());
            }
        }
    }

    #[test]
    fn batches_gathered_ahead_on_the_host_train_bit_for_bit_as_on_the_device() {
        // The thread that gathers ahead (a set too large for the device) is taken on the CPU
        // by marking the set host-held; stopped and resumed mid-epoch, it starts at the
        // checkpoint's step.
        let c = RunConfig {
            random_crop: true,
            ..tiny(Model::Ebgan, Network::Dcgan)
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let direct = train(&c, &images(), a.path(), None).unwrap().unwrap();
        let mut ahead = images();
        ahead.on_host = true;
        assert!(train(&c, &ahead, b.path(), Some(7)).unwrap().is_none());
        let resumed = train(&c, &ahead, b.path(), None).unwrap().unwrap();
        assert_eq!(direct.log, resumed.log);
        assert_eq!(weights(a.path()), weights(b.path()));
    }

    #[test]
    fn a_diverging_run_is_recorded_at_the_step_it_died() {
        let c = RunConfig {
            lr: 1e30,
            optim_d: ebgan_core::OptimKind::Sgd,
            optim_g: ebgan_core::OptimKind::Sgd,
            ..tiny(Model::Ebgan, Network::Dcgan)
        };
        let dir = tempfile::tempdir().unwrap();
        let r = train(&c, &images(), dir.path(), None).unwrap().unwrap();
        let died = r.diverged_at.expect("lr 1e30 diverges");
        assert!((1..=12).contains(&died), "{died}");
        assert_eq!(r.epochs_done, 0);
        assert!(r.measured.scores.is_none() && r.measured.inception.is_none());
        assert!(r.log.iter().all(|l| l.step < died), "{:?}", r.log);
    }

    #[test]
    fn an_ordinary_step_reads_nothing_back() {
        // 10 steps an epoch (MAGAN: after one of pretraining): one read at each epoch's end.
        let data = images();
        for model in [Model::Magan, Model::Ebgan] {
            let c = RunConfig {
                steps: 0,
                epochs: 2,
                sample_every: 1000,
                ..tiny(model, Network::Dcgan)
            };
            let dir = tempfile::tempdir().unwrap();
            let stop = Stop::never();
            let run = ConvRun {
                config: &c,
                id: "run-1",
                data: &data,
                dir: dir.path(),
                scorer: None,
                fid: None,
                stop: &stop,
                checkpoint_every: Duration::MAX,
            };
            let mut reads = crate::train::train_loop::ReadsPerStep::new();
            train_run(&run, Device::Cpu, &mut |s, _| reads.after(s)).unwrap();
            let ends: Vec<(u64, u64)> = match model {
                Model::Magan => vec![(10, 1), (20, 1), (30, 1)],
                _ => vec![(10, 1), (20, 1)],
            };
            assert_eq!(reads.reads, ends, "{model}");
        }
    }

    #[test]
    fn wgan_gp_trains_its_critic_without_batch_norm_and_resumes_bit_for_bit() {
        // 12 steps, n_critic 5: G's turns after steps 5 and 10; stopped after 7, between them.
        let data = images();
        let c = RunConfig {
            beta1: 0.0,
            beta2: 0.9,
            ..tiny(Model::WganGp, Network::Dcgan)
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = train(&c, &data, a.path(), None).unwrap().unwrap();
        assert!(train(&c, &data, b.path(), Some(7)).unwrap().is_none());
        let resumed = train(&c, &data, b.path(), None).unwrap().unwrap();
        assert_eq!(whole.log, resumed.log);
        let (wa, wb) = (weights(a.path()), weights(b.path()));
        assert_eq!(wa, wb, "weights differ after resuming");
        assert!(wa.iter().any(|(n, _)| n.starts_with("d/conv1")));
        assert!(
            !wa.iter().any(|(n, _)| n.starts_with("d/bn")),
            "a critic with batch norm"
        );
        for l in &whole.log {
            assert!(
                l.gradient_penalty.is_some_and(|p| p.is_finite() && p > 0.0),
                "{l:?}"
            );
            assert_eq!(l.margin, None);
        }
    }

    #[test]
    fn resume_after_n_steps_equals_an_uninterrupted_run_of_2n() {
        let data = images();
        let c = tiny(Model::Ebgan, Network::Dcgan);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = train(&c, &data, a.path(), None).unwrap().unwrap();
        assert!(train(&c, &data, b.path(), Some(6)).unwrap().is_none());
        let halves = train(&c, &data, b.path(), None).unwrap().unwrap();
        let (wa, wb) = (weights(a.path()), weights(b.path()));
        // G, D, batch-norm statistics, Adam moments and the open log window, all bit for bit.
        assert!(wa.iter().any(|(n, _)| n.ends_with("running_var")));
        assert!(wa.iter().any(|(n, _)| n.starts_with("opt_g/exp_avg_sq")));
        assert_eq!(wa.len(), wb.len());
        for ((na, va), (nb, vb)) in wa.iter().zip(&wb) {
            assert_eq!(na, nb);
            assert_eq!(va, vb, "{na} differs after resuming");
        }
        let losses = |m: &RunOutcome| {
            m.log
                .iter()
                .map(|l| (l.step, l.loss_d, l.loss_g))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&whole), losses(&halves));
        assert_eq!(whole.log.last().unwrap().step, 12);
        // A different seed trains differently: the comparison above can fail.
        let c2 = RunConfig { seed: 1, ..c };
        let d = tempfile::tempdir().unwrap();
        train(&c2, &data, d.path(), None).unwrap();
        assert_ne!(weights(d.path()), wa);
    }

    #[test]
    fn a_checkpointed_loss_log_reads_back_bit_for_bit() {
        // The log travels in the checkpoint's JSON metadata; a resumed run writes it to
        // losses.csv, which must equal an uninterrupted run's to the last digit.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut value = || rng.random::<f64>() * 40.0;
        let log: Vec<LossLog> = (0..3000)
            .map(|i| LossLog {
                step: i,
                epoch: value() / 10.0,
                loss_d: value(),
                loss_g: value(),
                real: value(),
                fake: value(),
                margin: Some(value()),
                k_t: Some(value()),
                m_global: None,
                gradient_penalty: Some(value()),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT);
        let meta = HashMap::from([("log".to_string(), serde_json::to_string(&log).unwrap())]);
        checkpoint::save(
            &path,
            &[("t".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)))],
            meta,
        )
        .unwrap();
        let back: Vec<LossLog> =
            serde_json::from_str(checkpoint::load(&path).unwrap().meta("log").unwrap()).unwrap();
        let differ = log.iter().zip(&back).filter(|(a, b)| a != b).count();
        assert_eq!((back.len(), differ), (log.len(), 0));
    }

    #[test]
    fn every_model_trains_and_writes_samples_interpolations_and_checkpoints() {
        let data = images();
        for c in [
            tiny(Model::Ebgan, Network::Dcgan),
            tiny(Model::Gan, Network::Dcgan),
            tiny(Model::Ebgan, Network::Imagenet),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let m = train(&c, &data, dir.path(), None).unwrap().unwrap();
            assert_eq!(m.diverged_at, None, "{:?} {:?}", c.model, c.network);
            assert!(m
                .log
                .iter()
                .all(|l| l.loss_d.is_finite() && l.loss_g.is_finite()));
            for f in [
                "samples.png",
                "interpolations.png",
                CHECKPOINT,
                "samples/step-0000006.png",
                "samples/step-0000012.png",
            ] {
                assert!(
                    dir.path().join(f).is_file(),
                    "{f} missing for {:?} {:?}",
                    c.model,
                    c.network
                );
            }
            let grid = image::open(dir.path().join("samples.png")).unwrap();
            assert_eq!((grid.width(), grid.height()), (8 * 18 + 2, 8 * 18 + 2));
            let out = dir.path().join("s.png");
            crate::train::sample::sample(&dir.path().join(CHECKPOINT), 9, 0, &out, Device::Cpu)
                .unwrap();
            let s = image::open(&out).unwrap();
            assert_eq!((s.width(), s.height()), (3 * 18 + 2, 3 * 18 + 2));
        }
    }

    #[test]
    fn fid_and_kid_are_measured_against_the_reference_when_one_is_given() {
        // An untrained FID-Inception (random init): checks the plumbing, not the numbers.
        let data = images();
        let c = RunConfig {
            score_samples: 6,
            ..tiny(Model::Ebgan, Network::Dcgan)
        };
        let inception = crate::fid::Inception::untrained(Device::Cpu);
        let bytes = data.images.narrow(0, 0, 6);
        let features = inception.features_of_bytes(&bytes);
        let reference = std::sync::Mutex::new(crate::fid::Reference {
            inception,
            features,
        });
        let dir = tempfile::tempdir().unwrap();
        let r = train_with(&c, &data, dir.path(), None, Some(&reference))
            .unwrap()
            .unwrap();
        let d = r.measured.inception.expect("FID and KID of a finished run");
        assert!(
            d.fid.is_finite() && d.fid > 0.0 && d.kid.is_finite(),
            "{d:?}"
        );
        let plain = train(&c, &data, tempfile::tempdir().unwrap().path(), None).unwrap();
        assert!(plain.unwrap().measured.inception.is_none());
    }

    #[test]
    fn a_truncated_or_foreign_checkpoint_is_an_error_not_a_fresh_start() {
        let data = images();
        let c = tiny(Model::Ebgan, Network::Dcgan);
        let dir = tempfile::tempdir().unwrap();
        assert!(train(&c, &data, dir.path(), Some(6)).unwrap().is_none());
        let path = dir.path().join(CHECKPOINT);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = format!("{:#}", train(&c, &data, dir.path(), None).err().unwrap());
        assert!(
            err.contains("truncated") && err.contains(CHECKPOINT),
            "{err}"
        );
        // The same run on a data set of another size cannot resume exactly: refused.
        std::fs::write(&path, &bytes).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let more: Vec<u8> = (0..41 * 24 * 24 * 3).map(|_| rng.random()).collect();
        let bigger = ImageSet::from_bytes(&more, 41, 24, 3, Dataset::Celeba, Device::Cpu);
        let err = format!("{:#}", train(&c, &bigger, dir.path(), None).err().unwrap());
        assert!(err.contains("40 images") && err.contains("41"), "{err}");
        // A checkpoint of another model (wider G) in this run's folder is refused by name.
        std::fs::write(&path, &bytes).unwrap();
        let wider = RunConfig { g_base: 8, ..c };
        let err = format!(
            "{:#}",
            train(&wider, &data, dir.path(), None).err().unwrap()
        );
        assert!(err.contains("shape") && err.contains("g/"), "{err}");
    }

    #[test]
    fn dcgan_losses_are_the_logistic_ones() {
        // D: mean softplus(-D(x)) + mean softplus(D(G(z))); G (through the updated D):
        // mean softplus(-D(G(z))). Recomputed by hand from the same networks.
        let c = tiny(Model::Gan, Network::Dcgan);
        let data = images();
        let x = data.batch(&[0, 1, 2, 3], 16, &mut ChaCha8Rng::seed_from_u64(0));
        let latent = Latent::draw(
            &ConvGan::new(&c, 3, Device::Cpu).spec,
            4,
            &mut ChaCha8Rng::seed_from_u64(1),
            Device::Cpu,
        );
        let softplus = |v: f64| (1.0 + v.exp()).ln();
        let logits = |gan: &ConvGan, t: &Tensor| -> Vec<f64> {
            let _g = tch::no_grad_guard();
            let ConvD::Logistic(d) = &gan.critic.d else {
                unreachable!()
            };
            Vec::<f64>::try_from(d.forward(t, true).to_kind(Kind::Double)).unwrap()
        };
        let gan = ConvGan::new(&c, 3, Device::Cpu);
        let fake = {
            let _g = tch::no_grad_guard();
            gan.g.forward(&latent.z, &latent.planes, true)
        };
        let (lr, lf) = (logits(&gan, &x), logits(&gan, &fake));
        let want_d = lr.iter().map(|&v| softplus(-v)).sum::<f64>() / 4.0
            + lf.iter().map(|&v| softplus(v)).sum::<f64>() / 4.0;
        let mut fresh = ConvGan::new(&c, 3, Device::Cpu);
        let stats = Vec::<f64>::try_from(fresh.step(&x, &latent, 0.0)).unwrap();
        assert!((stats[0] - want_d).abs() < 1e-4, "{} vs {want_d}", stats[0]);
        // G's loss is taken after D's update: recompute with the updated D of `fresh`.
        let lf_after = logits(&fresh, &fake);
        let want_g = lf_after.iter().map(|&v| softplus(-v)).sum::<f64>() / 4.0;
        assert!((stats[1] - want_g).abs() < 1e-3, "{} vs {want_g}", stats[1]);
        // real / fake statistics are the mean D(x) and D(G(z)) probabilities.
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        assert!((stats[2] - lr.iter().map(|&v| sig(v)).sum::<f64>() / 4.0).abs() < 1e-4);
    }

    #[test]
    fn the_margin_hinges_each_fake_energy() {
        // D's loss on one step equals E(x) mean + mean of [m - E(G(z))]^+ recomputed by hand
        // from the same networks before the update.
        let c = tiny(Model::Ebgan, Network::Dcgan);
        let data = images();
        let gan = ConvGan::new(&c, 3, Device::Cpu);
        let x = data.batch(&[0, 1, 2, 3], 16, &mut ChaCha8Rng::seed_from_u64(0));
        let latent = Latent::draw(&gan.spec, 4, &mut ChaCha8Rng::seed_from_u64(1), Device::Cpu);
        let (e_real, e_fake) = {
            let _g = tch::no_grad_guard();
            let fake = gan.g.forward(&latent.z, &latent.planes, true);
            let ConvD::Energy(ae) = &gan.critic.d else {
                unreachable!()
            };
            let e = |t: &Tensor| -> Vec<f64> {
                let r = ae.forward(t, true).reconstruction;
                Vec::<f64>::try_from(
                    (r - t)
                        .square()
                        .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double)
                        .sqrt(),
                )
                .unwrap()
            };
            (e(&x), e(&fake))
        };
        // A fresh copy (same seed) takes the step: the statistics run in train mode in both.
        let mut fresh = ConvGan::new(&c, 3, Device::Cpu);
        let stats = Vec::<f64>::try_from(fresh.step(&x, &latent, 20.0)).unwrap();
        let want = e_real.iter().sum::<f64>() / 4.0
            + e_fake.iter().map(|e| (20.0 - e).max(0.0)).sum::<f64>() / 4.0;
        assert!(
            (stats[0] - want).abs() < 1e-3 * want.abs().max(1.0),
            "{} vs {want}",
            stats[0]
        );
    }

    #[test]
    fn packed_optimizers_train_like_per_tensor_ones() {
        // The CUDA layout (parameters re-pointed into one buffer per optimizer) against the
        // CPU one: the same step statistics, weights and moments after three steps, bit for bit;
        // then a packed run restored from a checkpoint of the packed one takes the same fourth
        // step as the per-tensor run.
        let data = images();
        let dir = tempfile::tempdir().unwrap();
        for model in [Model::Ebgan, Model::Gan] {
            let c = tiny(model, Network::Dcgan);
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let inputs: Vec<(Tensor, Latent)> = (0..4)
                .map(|s| {
                    let x = data.batch(&[s, s + 1, s + 2, s + 3], 16, &mut rng);
                    let spec = c.conv_spec(3);
                    (x, Latent::draw(&spec, 4, &mut rng, Device::Cpu))
                })
                .collect();
            let train = |gan: &mut ConvGan, steps: std::ops::Range<usize>| -> Vec<f32> {
                steps
                    .flat_map(|s| {
                        let (x, latent) = &inputs[s];
                        Vec::<f32>::try_from(gan.step(x, latent, 20.0)).unwrap()
                    })
                    .collect()
            };
            let sorted = |gan: &ConvGan| {
                let mut t = gan.tensors();
                t.sort_by(|a, b| a.0.cmp(&b.0));
                t
            };
            let same = |a: &[(String, Tensor)], b: &[(String, Tensor)]| {
                assert_eq!(a.len(), b.len());
                for ((n, x), (m, y)) in a.iter().zip(b) {
                    assert!(n == m && x.equal(y), "{model}: {n} differs");
                }
            };
            let mut per_tensor = ConvGan::with_layout(&c, 3, Device::Cpu, Layout::PerTensor);
            let mut packed = ConvGan::with_layout(&c, 3, Device::Cpu, Layout::Packed);
            assert_eq!(
                train(&mut per_tensor, 0..3),
                train(&mut packed, 0..3),
                "{model}"
            );
            same(&sorted(&per_tensor), &sorted(&packed));

            let path = dir.path().join(format!("{model}.ckpt"));
            checkpoint::save(&path, &packed.tensors(), HashMap::new()).unwrap();
            let mut resumed = ConvGan::with_layout(&c, 3, Device::Cpu, Layout::Packed);
            resumed.restore(&checkpoint::load(&path).unwrap()).unwrap();
            assert_eq!(
                train(&mut per_tensor, 3..4),
                train(&mut resumed, 3..4),
                "{model}"
            );
            same(&sorted(&per_tensor), &sorted(&resumed));
        }
    }
}
