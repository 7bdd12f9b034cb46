//! Semi-supervised permutation-invariant MNIST (paper §4.2): the bottom-layer-cost ladder
//! network (LN) and EBGAN-LN, where the LN is the discriminator and its bottom-layer
//! reconstruction cost of a sample is that sample's energy. One run at a time.

mod checkpoint;
use checkpoint::{resume, save, sorted};

use super::outcome::{Trained, LOG_EVERY};
use super::stop::Stop;
use crate::config::{Model, RunConfig};
use crate::data::mnist::{Mnist, PIXELS};
use crate::png::{image_grid, save_rgb_png};
use crate::results::{LossLog, RunOutcome};
use anyhow::Result;
use ebgan_core::{upload, MemberOptim};
use ebgan_models::ladder::{Ladder, PopulationStats, WIDTHS};
use ebgan_models::mlp::Generator;
use ebgan_models::rng::{stream, MemberRng, Stream};
use ebgan_models::Vars;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::{Duration, Instant};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// `n` labelled training indices, n/10 per class, chosen by a seeded shuffle of the training set.
pub fn balanced_labels(labels: &[u8], n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut stream(seed, Stream::Labels, 0));
    let mut taken = [0usize; 10];
    let mut out = vec![];
    for i in order {
        let c = labels[i] as usize;
        if taken[c] < n / 10 {
            taken[c] += 1;
            out.push(i);
        }
    }
    out.sort_unstable();
    out
}

fn images(pixels: &[u8], device: Device) -> Tensor {
    let n = (pixels.len() / PIXELS) as i64;
    Tensor::from_slice(pixels)
        .view([n, PIXELS as i64])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0
}

/// Population statistics of the clean path over the training images (mean of batch means and of
/// batch variances, batches of 1,000).
fn population_stats(net: &Ladder, x: &Tensor) -> PopulationStats {
    tch::no_grad(|| {
        let n = x.size()[0];
        let layers = WIDTHS.len();
        let mut mean: Vec<Tensor> = (0..layers)
            .map(|_| Tensor::zeros([1], (Kind::Float, x.device())))
            .collect();
        let mut var: Vec<Tensor> = mean.iter().map(|t| t.zeros_like()).collect();
        let batches = (n / 1000).max(1);
        for b in 0..batches {
            let pass = net.encode(&x.narrow(0, b * 1000, 1000.min(n)), None, None);
            for l in 1..layers {
                mean[l] = &mean[l] + &pass.mean[l] / batches as f64;
                var[l] = &var[l] + pass.std[l].square() / batches as f64;
            }
        }
        PopulationStats {
            std: var.iter().map(|v| v.sqrt()).collect(),
            mean,
        }
    })
}

/// Test error (%) on the 10,000 test images: clean path, population statistics, argmax.
fn test_error(net: &Ladder, train_x: &Tensor, test_x: &Tensor, test_y: &Tensor) -> f64 {
    let stats = population_stats(net, train_x);
    tch::no_grad(|| {
        let pred = net
            .encode(test_x, None, Some(&stats))
            .probs
            .argmax(-1, false);
        100.0 * f64::try_from(pred.ne_tensor(test_y).to_kind(Kind::Double).mean(None)).unwrap()
    })
}

/// MNIST on the device for the ladder: pixels in [0, 1], labels, and the labelled subset.
struct LadderData {
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    labelled: Vec<usize>,
    images: usize,
}

impl LadderData {
    fn new(c: &RunConfig, mnist: &Mnist, device: Device) -> Self {
        let n = c.train_images.min(mnist.train_len());
        let labels = |l: &[u8]| Tensor::from_slice(l).to_kind(Kind::Int64).to_device(device);
        LadderData {
            train_x: images(&mnist.train_images[..n * PIXELS], device),
            train_y: labels(&mnist.train_labels[..n]),
            test_x: images(&mnist.test_images, device),
            test_y: labels(&mnist.test_labels),
            labelled: balanced_labels(&mnist.train_labels[..n], c.labels, c.seed),
            images: n,
        }
    }
}

impl LadderData {
    /// A labelled batch (images, labels) and an unlabelled one, each of `b`.
    fn batch(
        &self,
        labelled: &mut Draws,
        unlabelled: &mut Draws,
        b: usize,
        rng: &mut ChaCha8Rng,
    ) -> (Tensor, Tensor, Tensor) {
        let device = self.train_x.device();
        let li = upload(Tensor::from_slice(&labelled.take(b, rng)), device);
        let ui = upload(Tensor::from_slice(&unlabelled.take(b, rng)), device);
        (
            self.train_x.index_select(0, &li),
            self.train_y.index_select(0, &li),
            self.train_x.index_select(0, &ui),
        )
    }
}

/// Batches of indices drawn without replacement from a pool, reshuffled each time it runs out.
struct Draws {
    pool: Vec<usize>,
    order: Vec<usize>,
    pos: usize,
}

impl Draws {
    fn new(pool: Vec<usize>) -> Self {
        Draws {
            pool,
            order: vec![],
            pos: 0,
        }
    }

    fn take(&mut self, b: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
        (0..b)
            .map(|_| {
                if self.pos == self.order.len() {
                    self.order = self.pool.clone();
                    self.order.shuffle(rng);
                    self.pos = 0;
                }
                self.pos += 1;
                self.order[self.pos - 1] as i64
            })
            .collect()
    }
}

/// EBGAN-LN's generator: Table 1's MLP generator (tanh) mapped to the LN's [0, 1] inputs, with
/// its own Adam.
struct LnGenerator {
    vars: Vars,
    g: Generator,
    opt: MemberOptim,
    z: MemberRng,
    batch: i64,
    z_dim: i64,
}

impl LnGenerator {
    fn new(c: &RunConfig, device: Device) -> Self {
        // Its own init stream: on the ladder's, G would start as a rescaled copy of its first layer.
        let mut vars = Vars::on_stream(&[c.seed], Stream::GeneratorInit, device);
        let g = Generator::new(
            &mut vars,
            &c.mlp_spec(std::slice::from_ref(c), PIXELS as i64),
        );
        let opt = MemberOptim::new(vars.tensors_under("g."), vec![c.optim_hyper(c.optim_g)]);
        LnGenerator {
            vars,
            g,
            opt,
            z: MemberRng::new(&[c.seed], Stream::Noise, device),
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

/// The checkpoint of an unfinished ladder run, in its folder; removed once its row is committed.
pub const CHECKPOINT: &str = "ladder.safetensors";

/// The networks and optimizers of a run, and the random streams that run through it.
pub struct LadderNets {
    vs: nn::VarStore,
    net: Ladder,
    opt: MemberOptim,
    generator: Option<LnGenerator>,
    noise: MemberRng,
}

/// Where a run stands: steps done, its loss log and the open window, and its data draws.
struct LadderProgress {
    step: u64,
    log: Vec<LossLog>,
    sums: [f64; 4],
    window: u64,
    labelled: Draws,
    unlabelled: Draws,
    order: ChaCha8Rng,
}

impl LadderNets {
    /// One step at learning rate `lr` and margin `margin` on labelled images `xl` with labels
    /// `yl` and unlabelled images `xu`: the LN cost (cross-entropy of the corrupted path on the
    /// labelled half, lambda_0 x the bottom-layer reconstruction cost on the unlabelled half),
    /// for EBGAN-LN plus lambda_0 x the hinge on G's samples' energies; then (EBGAN-LN) one G
    /// step through the updated ladder. Returns (loss D, loss G, real energy, fake energy).
    pub fn step(
        &mut self,
        c: &RunConfig,
        (xl, yl, xu): (&Tensor, &Tensor, &Tensor),
        margin: f64,
        lr: f64,
    ) -> [f64; 4] {
        let alive = Tensor::ones([1], (Kind::Bool, xl.device()));
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
        let mut loss_d = &ce + energy_real.mean(None) * c.lambda_0;
        let mut energy_fake = None;
        let mut z_d = None;
        if let Some(g) = self.generator.as_mut() {
            let z = g.draw();
            let fake = tch::no_grad(|| g.forward(&z));
            let e = net.energy(&fake, noise);
            loss_d += (margin - &e).relu().mean(None) * c.lambda_0;
            energy_fake = Some(e.detach());
            z_d = Some(z);
        }
        self.opt.backward_step(&loss_d, &alive);
        let mut loss_g = Tensor::zeros([], (Kind::Float, xl.device()));
        if let (Some(g), Some(z_d)) = (self.generator.as_mut(), z_d) {
            let z = if c.g_fresh_noise { g.draw() } else { z_d };
            loss_g = net.energy(&g.forward(&z), noise).mean(None);
            g.opt.set_lr(if c.g_lr_decay { lr } else { c.lr });
            g.opt.backward_step(&loss_g, &alive);
        }
        [
            loss_d.double_value(&[]),
            loss_g.double_value(&[]),
            energy_real.mean(None).double_value(&[]),
            energy_fake
                .map(|e| e.mean(None).double_value(&[]))
                .unwrap_or(0.0),
        ]
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
        }
    }

    /// (corruption noise, G's noise) drawn since the last call, in draw order.
    pub fn take_draws(&mut self) -> (Vec<Tensor>, Vec<Tensor>) {
        let z = self
            .generator
            .as_mut()
            .map(|g| g.z.take_recorded())
            .unwrap_or_default();
        (self.noise.take_recorded(), z)
    }

    pub fn new(c: &RunConfig, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let net = Ladder::new(
            &(vs.root() / "ln"),
            c.combinator,
            c.ladder_noise,
            &mut stream(c.seed, Stream::Init, 0),
        );
        // ebgan-core's optimizer (Adam by default) over the variables in name order (its state
        // is saved by index).
        let opt = MemberOptim::new(
            sorted(&vs).into_iter().map(|(_, t)| t).collect(),
            vec![c.optim_hyper(c.optim_d)],
        );
        LadderNets {
            net,
            opt,
            generator: (c.model == Model::EbganLn).then(|| LnGenerator::new(c, device)),
            noise: MemberRng::new(&[c.seed], Stream::Dropout, device),
            vs,
        }
    }
}

/// Trains (or resumes) one LN or EBGAN-LN run, measures its test error and (EBGAN-LN) writes its
/// samples.png into its folder.
pub fn train_run(run: &LadderRun, device: Device, on_step: &mut dyn FnMut(u64)) -> Result<Trained> {
    let c = run.config;
    assert!(c.model.is_ladder());
    let mut nets = LadderNets::new(c, device);
    let data = LadderData::new(c, run.mnist, device);
    let schedule = c.margin_schedule();
    let b = c.batch_size as usize;
    let total = c.total_steps();
    let mut at = LadderProgress {
        step: 0,
        log: vec![],
        sums: [0.0; 4],
        window: 0,
        labelled: Draws::new(data.labelled.clone()),
        unlabelled: Draws::new((0..data.images).collect()),
        order: stream(c.seed, Stream::Data, 0),
    };
    if resume(run, &mut nets, &mut at)? {
        on_step(at.step);
    }
    let mut diverged_at = None;
    let mut saved = Instant::now();

    while at.step < total {
        let step = at.step + 1;
        let lr = lr_at(c, step, total);
        let (xl, yl, xu) = data.batch(&mut at.labelled, &mut at.unlabelled, b, &mut at.order);
        let margin = schedule.margin_at(step - 1);
        let vals = nets.step(c, (&xl, &yl, &xu), margin, lr);
        if vals.iter().any(|v| !v.is_finite()) {
            diverged_at = Some(step);
            break;
        }
        for (s, v) in at.sums.iter_mut().zip(vals) {
            *s += v;
        }
        at.window += 1;
        at.step = step;
        on_step(step);
        if step.is_multiple_of(LOG_EVERY) || step == total {
            let means = at.sums.map(|s| s / at.window as f64);
            let epoch = step as f64 / c.steps_per_epoch() as f64;
            at.log
                .push(LossLog::from_means(step, epoch, &means, Some(margin), &[]));
            at.sums = [0.0; 4];
            at.window = 0;
        }
        let stop = step < total && run.stop.requested();
        if stop || (step < total && saved.elapsed() >= run.checkpoint_every) {
            save(run, &nets, &at)?;
            saved = Instant::now();
        }
        if stop {
            return Ok(Trained::Stopped {
                step,
                checkpointed: true,
            });
        }
    }
    let finished = diverged_at.is_none();
    if let (Some(g), true) = (&nets.generator, finished) {
        g.write_samples(c.seed, run.dir)?;
    }
    let net = &nets.net;
    Ok(Trained::Done(vec![RunOutcome {
        epochs_done: if finished { c.epochs } else { 0 },
        test_error: finished.then(|| test_error(net, &data.train_x, &data.test_x, &data.test_y)),
        diverged_at,
        log: at.log,
        scores: None,
        inception: None,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut on_step = |s: u64| {
            if Some(s) == stop_at {
                stop.request();
            }
        };
        match train_run(&run, Device::Cpu, &mut on_step).unwrap() {
            Trained::Done(mut r) => Some(r.remove(0)),
            Trained::Stopped { step, checkpointed } => {
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
                a.test_error.map(f64::to_bits),
                b.test_error.map(f64::to_bits)
            );
            let sheet = |d: &tempfile::TempDir| std::fs::read(d.path().join("samples.png")).ok();
            assert_eq!(sheet(&whole), sheet(&halves));
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
            assert_eq!(r.log.len(), 2, "windows of 100 steps over 200 steps");
            assert!(
                r.log[1].loss_d < r.log[0].loss_d,
                "{model}: {:?}",
                r.log.iter().map(|l| l.loss_d).collect::<Vec<_>>()
            );
            let err = r.test_error.unwrap();
            assert!(err < 20.0, "{model}: test error {err}% (chance is 90%)");
            let samples = dir.path().join("samples.png").is_file();
            assert_eq!(samples, model == Model::EbganLn);
        }
    }
}
