//! Semi-supervised permutation-invariant MNIST (paper §4.2): the bottom-layer-cost ladder
//! network (LN) and EBGAN-LN, where the LN is the discriminator and its bottom-layer
//! reconstruction cost of a sample is that sample's energy. One run at a time.

mod checkpoint;
mod data;
pub mod epochs;
use checkpoint::sorted;
pub use data::balanced_labels;
use data::{errors, DataDraws, Draws, LadderData};
use epochs::EpochRow;

use super::checkpoint::Loaded;
use super::outcome::Trained;
use super::stop::Stop;
pub use super::train_loop::CHECKPOINT;
use super::train_loop::{self, margin_row, Measured, Named, Runs, Schedule, Stepped, Training};
use crate::config::RunConfig;
use crate::data::mnist::{Mnist, PIXELS};
use crate::family::{ladder, LogColumn};
use crate::png::{image_grid, save_rgb_png};
use anyhow::Result;
use ebgan_core::{loss, MarginSchedule, MemberOptim};
use ebgan_models::ladder::{Ladder, PopulationStats, WIDTHS};
use ebgan_models::mlp::Generator;
use ebgan_models::rng::{normal, stream, MemberRng, Stream, Streams};
use ebgan_models::Vars;
use std::path::Path;
use std::time::Duration;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// EBGAN-LN's generator: Table 1's MLP generator (tanh) mapped to the LN's [0, 1] inputs, with
/// its own Adam.
struct LnGenerator {
    settings: ladder::Generator,
    vars: Vars,
    g: Generator,
    opt: MemberOptim,
    z: MemberRng,
    /// Corruption noise for the ladder's passes over G's samples.
    corruption: MemberRng,
    batch: i64,
    z_dim: i64,
}

impl LnGenerator {
    fn new(c: &RunConfig, settings: ladder::Generator, streams: &Streams, device: Device) -> Self {
        // Its own init stream: on the ladder's, G would start as a rescaled copy of its first layer.
        let mut vars = Vars::on_stream(&[c.seed], Stream::GeneratorInit, device);
        let g = Generator::new(
            &mut vars,
            &c.mlp_spec(std::slice::from_ref(c), PIXELS as i64),
        );
        let opt = MemberOptim::new(vars.tensors_under("g."), vec![c.g_optim_hyper()]);
        LnGenerator {
            settings,
            vars,
            g,
            opt,
            z: streams.stream(Stream::Noise),
            corruption: streams.stream(Stream::FakeCorruption),
            batch: c.batch_size,
            z_dim: c.z_dim,
        }
    }

    /// A batch `[B, 784]` in [0, 1] from the noise stream `z`.
    fn generate(&self, z: &mut MemberRng) -> Tensor {
        self.forward(&z.normal(&[self.batch, self.z_dim], 1.0))
    }

    /// The next training batch's noise, from the run's Noise stream.
    fn draw(&mut self) -> Tensor {
        self.z.normal(&[self.batch, self.z_dim], 1.0)
    }

    /// G(noise) mapped to [0, 1], `[B, 784]`.
    fn forward(&self, noise: &Tensor) -> Tensor {
        (self.g.forward(noise).squeeze_dim(0) + 1.0) / 2.0
    }

    /// 64 samples in [-1, 1] from the Sample stream, as an 8x8 sheet in `dir`/samples.png.
    fn write_samples(&self, seed: u64, dir: &Path) -> Result<()> {
        let sheet = tch::no_grad(|| {
            let mut z = MemberRng::new(&[seed], Stream::Sample, self.z.device());
            let mut rows = vec![];
            while rows.iter().map(|t: &Tensor| t.size()[0]).sum::<i64>() < 64 {
                rows.push(self.generate(&mut z));
            }
            (Tensor::cat(&rows, 0).narrow(0, 0, 64) * 2.0 - 1.0).to_device(Device::Cpu)
        });
        save_rgb_png(
            &image_grid(&sheet.view([-1, 1, 28, 28]), 8),
            &dir.join("samples.png"),
        )
    }
}

/// The learning rate of step `step` (1-based) of `total`: constant, then linear to 0 from
/// `lr_decay_start` (a fraction of training).
pub(crate) fn lr_at(c: &RunConfig, step: u64, total: u64) -> f64 {
    let progress = (step - 1) as f64 / total as f64;
    if progress >= c.lr_decay_start {
        c.lr * (1.0 - progress) / (1.0 - c.lr_decay_start)
    } else {
        c.lr
    }
}

/// A ladder run to train: its config, id and folder, MNIST, and when to stop and checkpoint.
pub struct LadderRun<'a> {
    pub config: &'a RunConfig,
    pub id: &'a str,
    pub mnist: &'a Mnist,
    pub dir: &'a Path,
    pub stop: &'a Stop,
    /// Wall time between checkpoints (one is also written when a stop is requested).
    pub checkpoint_every: Duration,
}

/// The networks and optimizers of a run, and the random streams that run through it.
pub struct LadderNets {
    /// The ladder's own settings (`family::ladder`).
    ln: ladder::Settings,
    vs: nn::VarStore,
    net: Ladder,
    opt: MemberOptim,
    generator: Option<LnGenerator>,
    noise: MemberRng,
    /// The run's streams, sharing one window of draws.
    streams: Streams,
}

impl LadderNets {
    /// One step at learning rate `lr` and margin `margin` on labelled images `xl` with labels
    /// `yl` and unlabelled images `xu`: the LN cost (cross-entropy of the corrupted path on the
    /// labelled half, lambda_0 x the bottom-layer reconstruction cost on the unlabelled half),
    /// for EBGAN-LN plus hinge_weight (unset: lambda_0) x EBGAN's hinge on G's samples'
    /// energies; then (EBGAN-LN) one G step through the updated ladder. Nothing is updated unless `alive` (`[1]` bool) and the
    /// loss is finite. Returns (loss D, loss G, real energy, fake energy) `[4]` and whether the
    /// run is alive after the step, on the device.
    pub fn step(
        &mut self,
        c: &RunConfig,
        (xl, yl, xu): (&Tensor, &Tensor, &Tensor),
        margin: f64,
        lr: f64,
        alive: &Tensor,
    ) -> (Tensor, Tensor) {
        self.streams.next_step();
        self.opt.set_lr(lr);
        let (net, noise) = (&self.net, &mut self.noise);
        let ce = -net
            .encode(xl, Some(noise), None)
            .log_probs
            .gather(1, &yl.unsqueeze(1), false)
            .mean(None);
        let corrupted = net.encode(xu, Some(noise), None);
        let clean = net.encode(xu, None, None);
        let z_hat = net.decode(&corrupted);
        let energy_real = net.layer_cost(0, &z_hat[0], &clean, xu);
        let mut loss_d = &ce + energy_real.mean(None) * self.ln.lambda_0;
        let mut energy_fake = None;
        let mut z_d = None;
        if let Some(g) = self.generator.as_mut() {
            let z = g.draw();
            let fake = tch::no_grad(|| g.forward(&z));
            let e = net.energy(&fake, &mut g.corruption);
            // EBGAN's hinge on each fake energy (a cohort of one), at its own weight.
            let weight = g.settings.hinge_weight.unwrap_or(self.ln.lambda_0);
            let m = Tensor::full([1], margin, (Kind::Float, e.device()));
            loss_d += loss::hinge(&e.unsqueeze(0), &m).squeeze_dim(0) * weight;
            energy_fake = Some(e.detach());
            z_d = Some(z);
        }
        let mut alive = alive.logical_and(&loss_d.isfinite());
        self.opt.backward_step(&loss_d, &alive);
        let mut loss_g = Tensor::zeros([], (Kind::Float, xl.device()));
        if let (Some(g), Some(z_d)) = (self.generator.as_mut(), z_d) {
            let z = if g.settings.g_fresh_noise {
                g.draw()
            } else {
                z_d
            };
            loss_g = net.energy(&g.forward(&z), &mut g.corruption).mean(None);
            alive = alive.logical_and(&loss_g.isfinite());
            // G's own lr, decayed in step with the ladder's where asked.
            let g_lr = c.g_optim_hyper().lr;
            g.opt.set_lr(if g.settings.g_lr_decay {
                g_lr * lr / c.lr
            } else {
                g_lr
            });
            g.opt.backward_step(&loss_g, &alive);
        }
        let fake = match energy_fake {
            Some(e) => e.mean(None),
            None => loss_g.zeros_like(),
        };
        let stats = Tensor::stack(
            &[
                loss_d.detach(),
                loss_g.detach(),
                energy_real.mean(None).detach(),
                fake,
            ],
            0,
        );
        (stats, alive)
    }

    /// The ladder's variables (`vars/..`, in name order = its optimizer's order), G's (`g/..`),
    /// and both optimizers' states (`opt/..`, `opt_g/..`): what a checkpoint holds of them.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = sorted(&self.vs)
            .into_iter()
            .map(|(n, t)| (format!("vars/{n}"), t))
            .collect();
        out.extend(
            self.opt
                .state()
                .into_iter()
                .map(|(n, t)| (format!("opt/{n}"), t)),
        );
        if let Some(g) = &self.generator {
            out.extend(
                g.vars
                    .named()
                    .iter()
                    .map(|(n, t)| (format!("g/{n}"), t.shallow_clone())),
            );
            out.extend(
                g.opt
                    .state()
                    .into_iter()
                    .map(|(n, t)| (format!("opt_g/{n}"), t)),
            );
        }
        out
    }

    /// G's parameter names in its optimizer's order (EBGAN-LN; empty for LN).
    pub fn generator_param_names(&self) -> Vec<String> {
        self.generator
            .as_ref()
            .map(|g| g.vars.named().iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    }

    /// Keeps every corruption-noise and G-noise draw from now on (the parity harness).
    pub fn record_draws(&mut self) {
        self.noise.record();
        if let Some(g) = self.generator.as_mut() {
            g.z.record();
            g.corruption.record();
        }
    }

    /// (corruption noise, G's noise) drawn since the last call, in draw order: a step draws all
    /// of the real passes' corruption noise before any of the fake passes'.
    pub fn take_draws(&mut self) -> (Vec<Tensor>, Vec<Tensor>) {
        let mut noise = self.noise.take_recorded();
        let mut z = vec![];
        if let Some(g) = self.generator.as_mut() {
            noise.extend(g.corruption.take_recorded());
            z = g.z.take_recorded();
        }
        (noise, z)
    }

    pub fn new(c: &RunConfig, device: Device) -> Self {
        let (ln, generator) =
            (c.settings().ladder()).expect("train::ladder trains the ladder models");
        let vs = nn::VarStore::new(device);
        let net = Ladder::new(
            &(vs.root() / "ln"),
            ln.combinator,
            ln.ladder_noise,
            &mut stream(c.seed, Stream::Init, 0),
        );
        // ebgan-core's optimizer (Adam by default) over the variables in name order (its state
        // is saved by index).
        let opt = MemberOptim::new(
            sorted(&vs).into_iter().map(|(_, t)| t).collect(),
            vec![c.optim_hyper(c.optim_d)],
        );
        let streams = Streams::new(&[c.seed], device);
        LadderNets {
            ln,
            net,
            opt,
            generator: generator.map(|g| LnGenerator::new(c, g, &streams, device)),
            noise: streams.stream(Stream::Dropout),
            streams,
            vs,
        }
    }
}

/// Seconds per training step of run `c` on `device`, probed: `steps` steps of its networks on
/// random batches after two untimed ones, the clock read after a value comes back (so a GPU's
/// queue has run). What a budget needs to know before it starts a run it cannot checkpoint
/// anywhere that lasts (gpu-check's 150-epoch runs).
pub fn seconds_per_step(c: &RunConfig, device: Device, steps: u32) -> f64 {
    let mut nets = LadderNets::new(c, device);
    let b = c.batch_size;
    let mut rng = stream(c.seed, Stream::Data, 0);
    let image = |rng: &mut _| (normal(rng, &[b, PIXELS as i64], device) * 0.5).sigmoid();
    let (xl, xu) = (image(&mut rng), image(&mut rng));
    let yl = Tensor::arange(b, (Kind::Int64, device)).remainder(10);
    let alive = Tensor::ones([1], (Kind::Bool, device));
    let step = |nets: &mut LadderNets| {
        let (stats, _) = nets.step(c, (&xl, &yl, &xu), 0.0, c.lr, &alive);
        f64::try_from(stats.sum(Kind::Float)).unwrap_or(f64::NAN)
    };
    for _ in 0..2 {
        step(&mut nets);
    }
    let start = std::time::Instant::now();
    for _ in 0..steps.max(1) {
        step(&mut nets);
    }
    start.elapsed().as_secs_f64() / steps.max(1) as f64
}

/// Trains (or resumes) one LN or EBGAN-LN run, measures its test error and (EBGAN-LN) writes its
/// samples.png into its folder.
pub fn train_run(
    run: &LadderRun,
    device: Device,
    progress: &mut dyn FnMut(u64, &str),
) -> Result<Trained> {
    let c = run.config;
    let data = LadderData::new(c, run.mnist, device);
    let mut training = LadderTraining {
        nets: LadderNets::new(c, device),
        draws: DataDraws {
            labelled: Draws::new(data.labelled.clone()),
            unlabelled: Draws::new((0..data.images).collect()),
            order: stream(c.seed, Stream::Data, 0),
        },
        margins: c.margin_schedule(),
        total: c.total_steps(),
        epochs: vec![],
        data,
        run,
    };
    let (path, ids) = (run.dir.join(CHECKPOINT), [run.id.to_string()]);
    let runs = Runs {
        ids: &ids,
        checkpoint: &path,
        checkpoint_every: run.checkpoint_every,
        final_checkpoint: false,
        stop: run.stop,
    };
    train_loop::train(&mut training, &runs, progress)
}

/// A ladder run in the one training loop.
struct LadderTraining<'a> {
    run: &'a LadderRun<'a>,
    nets: LadderNets,
    data: LadderData,
    draws: DataDraws,
    margins: MarginSchedule,
    /// The run's steps, counted once (each step's learning rate reads it).
    total: u64,
    /// A row per epoch done (epochs.csv).
    epochs: Vec<EpochRow>,
}

impl Training for LadderTraining<'_> {
    type Meta = checkpoint::Meta;

    fn schedule(&self) -> Schedule {
        let c = self.run.config;
        Schedule {
            total: self.total,
            per_epoch: c.steps_per_epoch(),
            pretrain: 0,
            images_per_step: 2 * c.batch_size as u64,
        }
    }

    fn device(&self) -> Device {
        self.data.train_x.device()
    }

    fn log_columns(&self) -> &'static [LogColumn] {
        &[]
    }

    fn step(&mut self, done: u64, alive: &Tensor) -> Result<Stepped> {
        let c = self.run.config;
        let lr = lr_at(c, done + 1, self.total);
        let d = &mut self.draws;
        let b = c.batch_size as usize;
        let batch = self
            .data
            .batch(&mut d.labelled, &mut d.unlabelled, b, &mut d.order);
        let margin = self.margins.margin_at(done);
        let (stats, alive) = self
            .nets
            .step(c, (&batch.0, &batch.1, &batch.2), margin, lr, alive);
        let step = done + 1;
        if step.is_multiple_of(c.steps_per_epoch()) {
            let epoch = (step / c.steps_per_epoch()) as usize;
            let hinge = (self.nets.generator.is_some()).then_some(margin);
            let row = epochs::measure(&self.nets, &self.data, c.seed, (epoch, step, hinge))?;
            self.epochs.push(row);
            epochs::write(self.run.dir, &self.epochs)?;
        }
        Ok(Stepped {
            stats: Some(stats.view([-1, 1])),
            alive,
        })
    }

    fn margins(&self, step: u64) -> Tensor {
        // The margin the window's last step trained with (LN logs it too; it has no hinge).
        margin_row([Some(self.margins.margin_at(step - 1))], self.device())
    }

    fn state(&self) -> Result<(Named, checkpoint::Meta)> {
        Ok(checkpoint::save(&self.nets, &self.draws, &self.epochs))
    }

    fn restore(&mut self, ck: &Loaded, meta: checkpoint::Meta) -> Result<()> {
        self.epochs = checkpoint::restore(ck, meta, &mut self.nets, &mut self.draws)?;
        Ok(())
    }

    fn finish(&mut self, finished: &[bool]) -> Result<Vec<Measured>> {
        if !finished[0] {
            return Ok(vec![Measured::default()]);
        }
        let c = self.run.config;
        if let Some(g) = &self.nets.generator {
            g.write_samples(c.seed, self.run.dir)?;
        }
        // The last epoch's row measured the finished run already.
        let e = match self.epochs.last() {
            Some(r) if r.step == self.schedule().total => [Some(r.test_error), r.validation_error]
                .into_iter()
                .flatten()
                .collect(),
            _ => ebgan_core::read::<f64>(&errors(&self.nets.net, &self.data))?,
        };
        Ok(vec![Measured {
            test_error: Some(e[0]),
            validation_error: e.get(1).copied(),
            ..Measured::default()
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Model;
    use crate::results::RunOutcome;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn label_sampling_is_balanced_deterministic_and_from_the_training_set() {
        let labels: Vec<u8> = (0..1000).map(|i| ((i * 7 + i / 13) % 10) as u8).collect();
        let a = balanced_labels(&labels, 100, 3);
        assert_eq!(a, balanced_labels(&labels, 100, 3));
        assert_ne!(a, balanced_labels(&labels, 100, 4));
        assert_eq!(a.len(), 100);
        let mut per_class = [0; 10];
        for &i in &a {
            assert!(i < labels.len());
            per_class[labels[i] as usize] += 1;
        }
        assert_eq!(per_class, [10; 10]);
        let mut u = a.clone();
        u.dedup();
        assert_eq!(u.len(), 100);
    }

    /// Separable synthetic digits: class c lights up its own band of 78 pixels, plus noise.
    fn synthetic(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
        use rand::{Rng, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images = labels
            .iter()
            .flat_map(|&c| {
                let lo = c as usize * 78;
                (0..PIXELS)
                    .map(|p| {
                        if (lo..lo + 78).contains(&p) {
                            200 + rng.random_range(0..55)
                        } else {
                            rng.random_range(0..60)
                        }
                    })
                    .collect::<Vec<u8>>()
            })
            .collect();
        (images, labels)
    }

    /// 200 synthetic training and 200 test images.
    fn synthetic_mnist() -> Mnist {
        let (train_images, train_labels) = synthetic(200, 1);
        let (test_images, test_labels) = synthetic(200, 2);
        Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        }
    }

    /// A small LN / EBGAN-LN run on [`synthetic_mnist`]: 10 steps per epoch of 20 + 20 images.
    fn tiny(model: Model) -> RunConfig {
        RunConfig {
            model,
            labels: 20,
            batch_size: 20,
            train_images: 200,
            lr: 0.002,
            n_layer_g: 2,
            size_g: 64,
            margin: 0.05,
            ..Default::default()
        }
    }

    /// Trains `c` in `dir`, asking for a stop after `stop_at` steps (then None).
    fn train(c: &RunConfig, mnist: &Mnist, dir: &Path, stop_at: Option<u64>) -> RunOutcome {
        try_train(c, mnist, dir, stop_at).expect("nothing asked it to stop")
    }

    fn try_train(
        c: &RunConfig,
        mnist: &Mnist,
        dir: &Path,
        stop_at: Option<u64>,
    ) -> Option<RunOutcome> {
        let stop = Stop::never();
        let run = LadderRun {
            config: c,
            id: "ln-run",
            mnist,
            dir,
            stop: &stop,
            checkpoint_every: Duration::MAX,
        };
        let mut on_step = |s: u64, _: &str| {
            if Some(s) == stop_at {
                stop.request();
            }
        };
        match train_run(&run, Device::Cpu, &mut on_step).unwrap() {
            Trained::Done(mut r) => Some(r.remove(0)),
            Trained::Stopped { step } => {
                let checkpointed = dir.join(CHECKPOINT).is_file();
                assert_eq!((Some(step), checkpointed), (stop_at, true));
                None
            }
        }
    }

    #[test]
    fn the_generator_does_not_start_from_the_ladders_init_draws() {
        // The ladder's first layer takes the first draws of stream (seed, Init, 0); a generator
        // drawing from the same stream would start as their rescaled copy.
        let c = tiny(Model::EbganLn);
        let nets = LadderNets::new(&c, Device::Cpu);
        let g = nets.generator.as_ref().unwrap();
        let w = g.vars.named()[0].1.flatten(0, -1).narrow(0, 0, 32) / c.init_std_g;
        let ladder_draws =
            ebgan_models::rng::normal(&mut stream(c.seed, Stream::Init, 0), &[32], Device::Cpu);
        let gap = f64::try_from((&w - &ladder_draws).abs().max()).unwrap();
        assert!(
            gap > 0.1,
            "G's first weights are the ladder's init draws (gap {gap})"
        );
    }

    #[test]
    fn the_generators_noise_and_lr_settings_change_training() {
        let mnist = synthetic_mnist();
        let base = RunConfig {
            epochs: 3,
            lr_decay_start: 0.5,
            ..tiny(Model::EbganLn)
        };
        let losses = |c: &RunConfig| {
            let dir = tempfile::tempdir().unwrap();
            let r = train(c, &mnist, dir.path(), None);
            r.log.iter().map(|l| l.loss_g).collect::<Vec<_>>()
        };
        let default = losses(&base);
        let reused = losses(&RunConfig {
            g_fresh_noise: false,
            ..base.clone()
        });
        let decayed = losses(&RunConfig {
            g_lr_decay: true,
            ..base.clone()
        });
        assert_ne!(default, reused);
        assert_ne!(default, decayed);
    }

    #[test]
    fn a_diverging_run_is_recorded_at_the_step_it_died() {
        // Plain SGD at lr 1e30: the weights overflow within a step or a few. The step a loss first
        // stops being finite is recorded; nothing is measured of the run.
        let mnist = synthetic_mnist();
        for model in [Model::Ladder, Model::EbganLn] {
            let c = RunConfig {
                lr: 1e30,
                optim_d: ebgan_core::OptimKind::Sgd,
                optim_g: ebgan_core::OptimKind::Sgd,
                epochs: 3,
                ..tiny(model)
            };
            let r = train(&c, &mnist, tempfile::tempdir().unwrap().path(), None);
            let died = r.diverged_at.expect("lr 1e30 diverges");
            assert!((1..=30).contains(&died), "{model}: {died}");
            assert_eq!((r.epochs_done, r.measured.test_error), (0, None), "{model}");
            assert!(r.log.iter().all(|l| l.step < died), "{model}: {:?}", r.log);
        }
    }

    #[test]
    fn an_ordinary_step_reads_nothing_back() {
        // 10 steps an epoch: one read at each epoch's end, none in between (the step's losses
        // and NaN check stay on the device).
        let mnist = synthetic_mnist();
        for model in [Model::Ladder, Model::EbganLn] {
            let c = RunConfig {
                epochs: 3,
                ..tiny(model)
            };
            let dir = tempfile::tempdir().unwrap();
            let stop = Stop::never();
            let run = LadderRun {
                config: &c,
                id: "ln-run",
                mnist: &mnist,
                dir: dir.path(),
                stop: &stop,
                checkpoint_every: Duration::MAX,
            };
            let mut reads = crate::train::train_loop::ReadsPerStep::new();
            train_run(&run, Device::Cpu, &mut |s, _| reads.after(s)).unwrap();
            // Every window here ends an epoch: its read, and the epoch's row's (epochs.csv).
            assert_eq!(reads.reads, [(10, 2), (20, 2), (30, 2)], "{model}");
        }
    }

    #[test]
    fn at_margin_zero_ebgan_ln_trains_lns_ladder_bit_for_bit() {
        // Energies are >= 0, so at m = 0 the hinge and its gradient are 0 for every sample; the
        // fake passes draw their corruption noise from their own stream, so the real passes see
        // LN's draws. Then D's loss, the ladder and every measurement are LN's, to the bit. With
        // a margin above the energies the hinge acts and the ladder differs.
        let mnist = synthetic_mnist();
        let run = |model, margin| {
            let c = RunConfig {
                epochs: 3,
                margin,
                ..tiny(model)
            };
            let dir = tempfile::tempdir().unwrap();
            let r = train(&c, &mnist, dir.path(), None);
            let bits = |v: f64| v.to_bits();
            let log: Vec<u64> = r.log.iter().map(|l| l.loss_d.to_bits()).collect();
            let rows: Vec<[u64; 4]> = epochs::read(dir.path())
                .unwrap()
                .iter()
                .map(|e| [e.test_error, e.real_q10, e.real_median, e.real_mean].map(bits))
                .collect();
            (log, rows, r.measured.test_error.map(bits))
        };
        let ln = run(Model::Ladder, 0.05);
        assert_eq!(run(Model::EbganLn, 0.0), ln);
        let acting = run(Model::EbganLn, 10.0);
        assert_ne!(acting.0, ln.0, "a margin of 10 leaves D's loss alone");
    }

    #[test]
    fn a_stopped_run_resumes_bit_for_bit() {
        let mnist = synthetic_mnist();
        for model in [Model::Ladder, Model::EbganLn] {
            let c = RunConfig {
                epochs: 6, // 60 steps: the lr decays over the last third
                lr_decay_start: 0.6667,
                ..tiny(model)
            };
            let (whole, halves) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let a = train(&c, &mnist, whole.path(), None);
            // Stopped mid-window, mid-epoch, with the labelled draws part-way through a cycle.
            assert!(try_train(&c, &mnist, halves.path(), Some(29)).is_none());
            assert!(halves.path().join(CHECKPOINT).is_file());
            let b = train(&c, &mnist, halves.path(), None);
            assert_eq!(a.log, b.log, "{model}");
            assert_eq!(
                a.measured.test_error.map(f64::to_bits),
                b.measured.test_error.map(f64::to_bits)
            );
            let sheet = |d: &tempfile::TempDir| std::fs::read(d.path().join("samples.png")).ok();
            assert_eq!(sheet(&whole), sheet(&halves));
            // The per-epoch rows: those before the stop came back from the checkpoint.
            let rows =
                |d: &tempfile::TempDir| std::fs::read(d.path().join(epochs::EPOCHS)).unwrap();
            assert_eq!(rows(&whole), rows(&halves), "{model}");
        }
    }

    #[test]
    fn a_short_training_lowers_the_loss_and_learns_the_classes() {
        let mnist = synthetic_mnist();
        for model in [Model::Ladder, Model::EbganLn] {
            let c = RunConfig {
                epochs: 20,
                beta1: 0.9,
                ..tiny(model)
            };
            let dir = tempfile::tempdir().unwrap();
            let r = train(&c, &mnist, dir.path(), None);
            assert_eq!(r.diverged_at, None);
            // 10 steps an epoch: a window closes at each epoch's end.
            let steps: Vec<u64> = r.log.iter().map(|l| l.step).collect();
            assert_eq!(steps, (1..=20).map(|e| 10 * e).collect::<Vec<_>>());
            assert!(
                r.log[19].loss_d < r.log[0].loss_d,
                "{model}: {:?}",
                r.log.iter().map(|l| l.loss_d).collect::<Vec<_>>()
            );
            let err = r.measured.test_error.unwrap();
            assert!(err < 20.0, "{model}: test error {err}% (chance is 90%)");
            let rows = epochs::read(dir.path()).unwrap();
            let numbers: Vec<(usize, u64)> = rows.iter().map(|r| (r.epoch, r.step)).collect();
            assert_eq!(
                numbers,
                (1..=20).map(|e| (e, 10 * e as u64)).collect::<Vec<_>>()
            );
            assert_eq!(
                rows[19].test_error, err,
                "the last epoch's row is the run's result"
            );
            assert!(
                rows[0].real_median > rows[19].real_median,
                "{model}: {rows:?}"
            );
            for r in &rows {
                assert!(r.real_q10 <= r.real_median && r.real_median <= r.real_q90);
                match model {
                    Model::EbganLn => {
                        assert_eq!(r.margin, Some(c.margin_schedule().margin_at(r.step - 1)));
                        let active = r.hinge_active.unwrap();
                        assert!((0.0..=1.0).contains(&active));
                        assert!(r.fake_q10.unwrap() <= r.fake_q90.unwrap());
                    }
                    _ => assert!(
                        r.hinge_active.is_none() && r.fake_median.is_none() && r.margin.is_none()
                    ),
                }
            }
            let samples = dir.path().join("samples.png").is_file();
            assert_eq!(samples, model == Model::EbganLn);
        }
    }

    #[test]
    fn the_validation_images_are_the_last_of_the_training_images_and_are_not_trained_on() {
        // The test set made of the last 50 training images: their validation error is their
        // test error, bit for bit.
        let mut mnist = synthetic_mnist();
        mnist.test_images = mnist.train_images[150 * PIXELS..].to_vec();
        mnist.test_labels = mnist.train_labels[150..].to_vec();
        let c = RunConfig {
            validation: 50,
            epochs: 2,
            ..tiny(Model::EbganLn)
        };
        let data = LadderData::new(&c, &mnist, Device::Cpu);
        assert_eq!((data.images, data.train_x.size()[0]), (150, 150));
        assert!(data.labelled.iter().all(|&i| i < 150) && data.labelled.len() == 20);
        let dir = tempfile::tempdir().unwrap();
        let r = train(&c, &mnist, dir.path(), None);
        let (test, validation) = (r.measured.test_error, r.measured.validation_error);
        assert_eq!(test.map(f64::to_bits), validation.map(f64::to_bits));
        let rows = epochs::read(dir.path()).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.validation_error == Some(r.test_error)));
        // An epoch is a pass over the 150 trained on: 8 steps of 20 (the last topped up).
        assert_eq!(rows.iter().map(|r| r.step).collect::<Vec<_>>(), [8, 16]);
        // Without a validation set, none is measured.
        let r = train(
            &tiny(Model::Ladder),
            &mnist,
            tempfile::tempdir().unwrap().path(),
            None,
        );
        assert_eq!(r.measured.validation_error, None);
    }
}
