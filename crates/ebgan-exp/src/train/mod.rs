//! Training: one entry point, [`train_group`], for every family. A group of the runner's plan
//! (a cohort of Table 1 MLP runs, or one convolutional or ladder run) goes in; each run's files
//! (samples, checkpoints, ...) are written into its folder, and one [`RunOutcome`] per run comes
//! back for the runner to commit.
//!
//! - `train_loop`: the one loop every trainer runs (log windows, divergence, checkpoints, stop)
//! - `step`: the paper's D-then-G step; `driver`: the training step around it (pretraining,
//!   the draws, the family's updates), one for the MLP cohorts and the conv runs;
//!   `adaptive`: what BEGAN (k_t) and MAGAN (its margin) carry from step to step
//! - `mlp` (cohorts), `conv`, `ladder`: the trainers (step, state, finish); `checkpoint`,
//!   `sample` beside them
//! - `cohort`: which runs may train together and how many; `outcome`: what comes back

pub mod adaptive;
pub mod checkpoint;
pub mod cohort;
pub mod conv;
pub mod driver;
pub mod ladder;
pub mod mlp;
pub mod outcome;
pub mod sample;
pub mod step;
pub mod stop;
pub mod train_loop;

pub use crate::results::{LossLog, RunOutcome, Status};
pub use cohort::{CohortKey, CohortSize};
pub use outcome::Trained;
pub use stop::Stop;

use crate::config::shape::Shape;
use crate::config::{Dataset, Run, RunConfig};
use crate::data::image_set::ImageSets;
use crate::data::mnist::Mnist;
use crate::scoring::Scorer;
use anyhow::Result;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tch::Device;

/// Which trainer a run goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trainer {
    /// Table 1 MLPs on MNIST, in cohorts of runs that share a [`CohortKey`].
    MlpCohort,
    /// §4.3-4.4 convolutional networks on image sets, one run at a time.
    Conv,
    /// §4.2 ladder network and EBGAN-LN, one run at a time.
    Ladder,
}

impl Trainer {
    /// libtorch threads a run trains on: a property of the run, never of how many other runs
    /// train beside it, because a kernel split over another number of threads rounds
    /// differently. On the CPU, MLP cohorts and ladder runs use one (parallelism comes from
    /// training several side by side); a convolutional run uses `cores`, and a resumed one the
    /// count its checkpoint recorded. On CUDA, `cores` (host-side work only).
    pub fn threads(self, device: Device, cores: usize) -> usize {
        match (self, device) {
            (Trainer::MlpCohort | Trainer::Ladder, Device::Cpu) => 1,
            (Trainer::MlpCohort | Trainer::Ladder | Trainer::Conv, _) => cores.max(1),
        }
    }

    /// The trainer of a run's networks.
    pub fn of(c: &RunConfig) -> Trainer {
        match c.shape() {
            Shape::Mlp(_) => Trainer::MlpCohort,
            Shape::Ladder(_) => Trainer::Ladder,
            Shape::Dcgan(_) | Shape::Imagenet(..) => Trainer::Conv,
        }
    }
}

/// What training reads besides the run configs.
pub struct Inputs<'a> {
    /// FID and KID of image runs, when FID-Inception weights were given.
    /// (Tensors are not Sync; conv runs train one at a time anyway.)
    pub fid: Option<&'a std::sync::Mutex<crate::fid::Reference>>,
    pub dataset: Dataset,
    /// MNIST (empty for image experiments).
    pub mnist: &'a Mnist,
    /// Image sets of the convolutional runs.
    pub images: &'a ImageSets,
    /// The scoring classifier's folder.
    pub classifier: &'a Path,
    pub device: Device,
    /// When to stop early (time budget, signals); trainers checkpoint and return Stopped.
    pub stop: &'a Stop,
    /// Wall time between checkpoints, for every trainer.
    pub checkpoint_every: std::time::Duration,
    /// CPU cores this invocation may use (`--threads`, or every core).
    pub cores: usize,
    /// The cohorts' MNIST on the device, uploaded once per training thread.
    pub mnist_on_device: MnistOnDevice,
}

/// MNIST's training images on the device for the MLP cohorts: one copy per training thread (a
/// tensor is Send but not Sync, so threads cannot share one) and image count, uploaded by the
/// thread's first cohort and kept as long as the [`Inputs`] (and the MNIST they borrow).
#[derive(Default)]
pub struct MnistOnDevice(
    std::sync::Mutex<HashMap<(std::thread::ThreadId, usize), mlp::DeviceImages>>,
);

impl MnistOnDevice {
    /// The first `n` training images of `mnist` on `device`, for this thread.
    fn get(&self, mnist: &Mnist, n: usize, device: Device) -> mlp::DeviceImages {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mine = held
            .entry((std::thread::current().id(), n))
            .or_insert_with(|| mlp::DeviceImages::new(&mnist.train_images, n, device));
        mine.shallow_clone()
    }
}

impl Inputs<'_> {
    /// Steps run `c` trains for (image runs count their epochs over their data set).
    pub fn total_steps(&self, c: &RunConfig) -> u64 {
        match Trainer::of(c) {
            Trainer::Conv => c.total_steps_over(self.images.get(c).usable(c)),
            _ => c.total_steps(),
        }
    }
}

/// Runs whose generated samples the MNIST classifier scores: Table 1 MLP runs and MNIST-64's
/// centre crops. Semi-supervised runs measure test error; other image sets have no score.
pub fn is_scored(c: &RunConfig, dataset: Dataset) -> bool {
    match c.shape() {
        Shape::Mlp(_) => true,
        Shape::Ladder(_) => false,
        Shape::Dcgan(_) | Shape::Imagenet(..) => dataset == Dataset::Mnist64,
    }
}

/// Trains `runs` (a cohort from the plan: one run unless they are MLP runs of one
/// [`CohortKey`]), writing run `i`'s files into `dirs[i]`. `progress(steps done, message)` is
/// called after every step; the message is a conv run's latest log line.
pub fn train_group(
    runs: &[Run],
    dirs: &[PathBuf],
    inputs: &Inputs,
    progress: &mut dyn FnMut(u64, &str),
) -> Result<Trained> {
    let c = &runs[0].config;
    // Set on this thread (libtorch's thread count is per calling thread), where the runner
    // also reads it back for the row.
    tch::set_num_threads(Trainer::of(c).threads(inputs.device, inputs.cores) as i32);
    let scorer = match is_scored(c, inputs.dataset) {
        true => Some(cached(
            &SCORER,
            (inputs.classifier.to_path_buf(), inputs.device),
            || Scorer::load(inputs.classifier, inputs.device),
        )?),
        false => None,
    };
    match Trainer::of(c) {
        Trainer::Conv => {
            let set = inputs.images.get(c);
            let run = conv::ConvRun {
                config: c,
                id: &runs[0].id,
                data: &set,
                dir: &dirs[0],
                scorer: scorer.as_deref(),
                fid: inputs.fid,
                stop: inputs.stop,
                checkpoint_every: inputs.checkpoint_every,
            };
            conv::train_run(&run, inputs.device, progress)
        }
        Trainer::Ladder => {
            let run = ladder::LadderRun {
                config: c,
                id: &runs[0].id,
                mnist: inputs.mnist,
                dir: &dirs[0],
                stop: inputs.stop,
                checkpoint_every: inputs.checkpoint_every,
            };
            ladder::train_run(&run, inputs.device, progress)
        }
        Trainer::MlpCohort => {
            let configs: Vec<RunConfig> = runs.iter().map(|r| r.config.clone()).collect();
            let n = c.train_images.min(inputs.mnist.train_len());
            let images = inputs.mnist_on_device.get(inputs.mnist, n, inputs.device);
            let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
            let cohort = mlp::CohortRun {
                members: &configs,
                ids: &ids,
                dirs,
                data: &images,
                scorer: &scorer.expect("MLP runs are scored"),
                stop: inputs.stop,
                checkpoint_every: inputs.checkpoint_every,
            };
            mlp::train_cohort(&cohort, progress)
        }
    }
}

type Cache<K, T> = RefCell<Option<(K, Rc<T>)>>;

thread_local! {
    // The scorer, loaded once per training thread (a tensor is Send but not Sync: threads
    // cannot share one) and kept while the next group asks for the same weights on the same
    // device (the file's hash is checked at load).
    static SCORER: Cache<(PathBuf, Device), Scorer> = const { RefCell::new(None) };
}

/// This thread's `T` for `key`, loaded by `load` unless the last one asked for was the same.
fn cached<K: PartialEq, T>(
    cache: &'static std::thread::LocalKey<Cache<K, T>>,
    key: K,
    load: impl FnOnce() -> Result<T>,
) -> Result<Rc<T>> {
    cache.with(|cell| {
        if let Some((k, t)) = &*cell.borrow() {
            if *k == key {
                return Ok(t.clone());
            }
        }
        // Drop the old one before loading the next (device memory).
        *cell.borrow_mut() = None;
        let t = Rc::new(load()?);
        *cell.borrow_mut() = Some((key, t.clone()));
        Ok(t)
    })
}

/// The checkpoint a trainer left in run folder `dir` (`ebgan status` lists it): a cohort's is
/// in its first member's folder.
pub fn checkpoints_in(dir: &Path) -> Vec<PathBuf> {
    let path = dir.join(train_loop::CHECKPOINT);
    path.exists().then_some(path).into_iter().collect()
}

/// Removes what only resuming needed, once the runs' rows are committed: an MLP cohort's or a
/// ladder run's checkpoint (convolutional runs keep theirs, for `ebgan sample`).
pub fn discard_checkpoint(runs: &[Run], dirs: &[PathBuf]) -> Result<()> {
    let keep = match Trainer::of(&runs[0].config) {
        Trainer::MlpCohort | Trainer::Ladder => false,
        Trainer::Conv => true,
    };
    let path = dirs[0].join(train_loop::CHECKPOINT);
    if !keep && path.exists() {
        std::fs::remove_file(&path)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(())
}
