//! `ebgan run`: plan -> pending (the shard's runs minus those in runs*.csv) -> cohorts ->
//! train (one group at a time per job) -> commit (a runs.csv row per run).

mod args;
mod commit;
pub mod progress;
pub mod workers;

use crate::config::{Experiment, Run, Shard};
use crate::data::image_set::ImageSets;
use crate::data::mnist;
use crate::device;
use crate::fid;
use crate::precision::MatmulPrecision;
use crate::results::ResultsDir;
use crate::scoring::{self, Scorer};
use crate::train::{self, CohortKey, CohortSize, Inputs, Stop, Trained, Trainer};
use anyhow::{Context, Result};
pub use args::RunArgs;
use progress::{Progress, Tally};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// Exit status of `ebgan run` when it trained but some runs failed with an error (they are in
/// failed.log and the next `ebgan run` retries them). 0: every run of the shard is committed
/// (a diverged run is a result); 1: an error stopped the command.
pub const EXIT_RUNS_FAILED: u8 = 2;

/// Exit status of `ebgan run` when the time budget ran out or SIGTERM / Ctrl-C came: what was
/// in flight is checkpointed, and the same command continues.
pub const EXIT_STOPPED: u8 = 3;

/// This invocation stopped before its shard was done.
#[derive(Debug)]
pub struct RunsStopped(pub String);

impl std::fmt::Display for RunsStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; run the same command again to continue", self.0)
    }
}

impl std::error::Error for RunsStopped {}

/// Some runs of this invocation failed; the others are committed.
#[derive(Debug)]
pub struct RunsFailed(pub String);

impl std::fmt::Display for RunsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; the next `ebgan run` retries them", self.0)
    }
}

impl std::error::Error for RunsFailed {}

pub struct RunOptions {
    pub shard: Shard,
    pub device: Device,
    /// Cohorts trained at once (CPU: in parallel threads).
    pub jobs: Option<usize>,
    /// Most runs per cohort (`Fixed(1)` = every run alone).
    pub cohort: CohortSize,
    /// CPU threads to use in all (default: every core).
    pub threads: Option<usize>,
    pub results: PathBuf,
    pub data: PathBuf,
    pub classifier: PathBuf,
    /// The time budget and signals.
    pub stop: Stop,
    /// Wall time between checkpoints, for every trainer.
    pub checkpoint_every: std::time::Duration,
    /// Float32 precision of CUDA matmuls and convolutions (applied to this process; recorded
    /// in every row).
    pub precision: MatmulPrecision,
    /// FID-Inception weights given on the command line.
    pub inception: Option<PathBuf>,
    /// Device memory this process may plan cohorts with (a `--workers` worker's share; None:
    /// what the card has free).
    pub device_memory: Option<u64>,
}

/// Groups runs that share a [`CohortKey`] into cohorts of at most `max(key)` members, in plan
/// order.
pub fn cohorts(runs: Vec<Run>, max: impl Fn(&CohortKey) -> usize) -> Vec<Vec<Run>> {
    let mut groups: BTreeMap<CohortKey, Vec<Run>> = BTreeMap::new();
    let mut order = vec![];
    for r in runs {
        let key = CohortKey::of(&r.config);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .flat_map(|k| {
            let g = groups.remove(&k).expect("every key has its group");
            let size = if k.trains_alone() { 1 } else { max(&k).max(1) };
            g.chunks(size).map(|c| c.to_vec()).collect::<Vec<_>>()
        })
        .collect()
}

/// The runs of `shard` that have no row in the folder's runs*.csv, in plan order.
fn pending(exp: &Experiment, shard: Shard, res: &ResultsDir) -> Result<Vec<Run>> {
    let planned = exp.shard(shard);
    let done: std::collections::HashSet<String> =
        res.rows()?.into_iter().map(|r| r.run_id.clone()).collect();
    let pending: Vec<Run> = planned
        .iter()
        .filter(|r| !done.contains(&r.id))
        .cloned()
        .collect();
    eprintln!(
        "{}: {} runs in shard {shard} ({} in the plan), {} already done, {} to run",
        exp.name,
        planned.len(),
        exp.runs.len(),
        planned.len() - pending.len(),
        pending.len()
    );
    Ok(pending)
}

/// Cohorts trained at once, and CPU cores in all. Each run's own libtorch thread count is
/// [`Trainer::threads`]: it does not depend on how many cohorts are pending, so a resumed grid
/// trains its last cohort exactly as the uninterrupted one did.
fn parallelism(opts: &RunOptions, groups: &[Vec<Run>]) -> (usize, usize) {
    let cores = opts.threads.unwrap_or_else(device::cores).max(1);
    let conv = groups
        .iter()
        .flatten()
        .any(|r| Trainer::of(&r.config) == Trainer::Conv);
    let jobs = match opts.device {
        // A convolutional run uses every core by itself.
        Device::Cpu if conv => opts.jobs.unwrap_or(1),
        Device::Cpu => opts.jobs.unwrap_or(cores),
        _ => opts.jobs.unwrap_or(1),
    }
    .clamp(1, groups.len().max(1));
    (jobs, cores)
}

/// Trains every pending run of `opts.shard` of the experiment file and commits its row.
/// Returns the tally of this invocation.
pub fn run(experiment_file: &Path, opts: &RunOptions) -> Result<Tally> {
    let exp = Experiment::load(experiment_file)?;
    let res = ResultsDir::new(opts.results.join(&exp.name));
    std::fs::create_dir_all(&res.root)
        .with_context(|| format!("cannot create {}", res.root.display()))?;
    let csv = res.runs_csv(opts.shard);
    let _lock = res.lock(&csv)?;
    res.repair(&csv)?;
    match crate::fsutil::sweep_temporaries(&res.root) {
        0 => {}
        n => eprintln!(
            "{}: removed {n} temporary file(s) left by killed writes",
            res.root.display()
        ),
    }
    let pending = pending(&exp, opts.shard, &res)?;
    let record = || -> Result<()> {
        if let Some(notice) = res.record_experiment(experiment_file, &exp)? {
            eprintln!("{notice}");
        }
        Ok(())
    };
    if pending.is_empty() {
        return record().map(|()| Tally::default());
    }

    let dataset = exp.data.dataset;
    let scored = pending.iter().any(|r| train::is_scored(&r.config, dataset));
    // MNIST-64's samples are scored against MNIST's test set too.
    let mnist = match dataset == crate::config::Dataset::Mnist || scored {
        true => mnist::load(&opts.data)?,
        false => mnist::Mnist::default(),
    };
    let mut classifier = String::new();
    if scored {
        scoring::read_info(&opts.classifier)?; // its own message when there is none
        let info = scoring::prepare(&opts.classifier, &mnist, opts.device)?;
        classifier = info.hash_prefix().to_string();
        crate::fsutil::write_atomic(
            &res.root.join("classifier.json"),
            serde_json::to_string_pretty(&info)?.as_bytes(),
        )?;
        Scorer::load(&opts.classifier, opts.device)?; // fail before training, not after
    }
    let images = ImageSets::load(
        &exp.data,
        &opts.data,
        pending.iter().map(|r| &r.config),
        opts.device,
    )?;
    let fid = match pending.iter().any(|r| r.config.network.is_conv()) {
        true => fid::Reference::for_experiment(
            &exp,
            opts.inception.as_deref(),
            &opts.data,
            opts.device,
        )?
        .map(std::sync::Mutex::new),
        false => None,
    };
    // The folder's experiment.toml changes only once the runs can start.
    record()?;
    let inputs = Inputs {
        fid: fid.as_ref(),
        dataset,
        mnist: &mnist,
        images: &images,
        classifier: &opts.classifier,
        device: opts.device,
        stop: &opts.stop,
        checkpoint_every: opts.checkpoint_every,
        cores: opts.threads.unwrap_or_else(device::cores).max(1),
        mnist_on_device: Default::default(),
    };

    let free = match opts.device {
        // Cohorts trained at once on one GPU share its memory; a worker of `--workers`
        // plans with the share its parent measured before starting them all.
        Device::Cuda(i) if opts.cohort == CohortSize::Auto => opts
            .device_memory
            .or_else(|| device::cuda_free_bytes(i))
            .map(|f| f / opts.jobs.unwrap_or(1).max(1) as u64),
        _ => None,
    };
    let groups = cohorts(pending, |key| opts.cohort.resolve(key, opts.device, free));
    let (jobs, cores) = parallelism(opts, &groups);
    let threads = groups
        .first()
        .map_or(1, |g| Trainer::of(&g[0].config).threads(opts.device, cores));
    eprintln!(
        "device: {} · {} cohort(s) of up to {} run(s) · {jobs} at a time · {threads} libtorch thread(s) each",
        device::describe(opts.device),
        groups.len(),
        groups.iter().map(|g| g.len()).max().unwrap_or(1)
    );
    let steps: u64 = groups
        .iter()
        .flatten()
        .map(|r| inputs.total_steps(&r.config))
        .sum();
    let progress = Progress::new(steps, groups.iter().map(|g| g.len()).sum());
    let commit = commit::Committer::new(&res, &csv, opts.device, opts.precision, classifier);

    let memory = device::memory_bytes(opts.device);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let results: Vec<Result<()>> = pool.install(|| {
        groups
            .par_iter()
            .map(|group| train_and_commit(group, &inputs, &commit, &progress, jobs, memory))
            .collect()
    });
    progress.finish();
    results.into_iter().collect::<Result<()>>()?;
    eprintln!("{}", progress.message());
    Ok(progress.tally)
}

/// Trains one cohort and commits its runs; a failure (error or panic) is logged and counted,
/// and the grid goes on.
fn train_and_commit(
    group: &[Run],
    inputs: &Inputs,
    commit: &commit::Committer,
    progress: &Progress,
    jobs: usize,
    memory: Option<u64>,
) -> Result<()> {
    let (group, _claims) = commit.claim(group, progress)?;
    let group = group.as_slice();
    if group.is_empty() {
        return Ok(());
    }
    let k = group.len();
    // A run that cannot fit fails alone, before it allocates (an allocation failure would abort
    // the process and every cohort in flight with it).
    if let (Some(have), Trainer::MlpCohort) = (memory, Trainer::of(&group[0].config)) {
        let need = crate::train::cohort::bytes_per_member(&CohortKey::of(&group[0].config))
            .saturating_mul(k as u64);
        if need > have {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            let why = format!(
                "needs about {:.1} GiB for {k} run(s) (train::cohort::bytes_per_member), the device has {:.1} GiB: reduce size_g / size_d or --cohort",
                gib(need),
                gib(have)
            );
            return commit.failed(group, &why, progress);
        }
    }
    // Within a time budget, a cohort starts only if this invocation's pace says it can finish.
    let run_steps: u64 = group.iter().map(|r| inputs.total_steps(&r.config)).sum();
    let over_budget = match (
        inputs.stop.seconds_left(),
        progress.seconds_for(run_steps, jobs),
    ) {
        (Some(left), Some(needed)) => needed > left,
        _ => false,
    };
    if inputs.stop.requested() || over_budget {
        progress.left(k);
        return Ok(());
    }
    progress.started(k);
    let mut dirs = vec![];
    for r in group {
        dirs.push(commit.start(r)?);
    }
    let start = Instant::now();
    let trained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (mut last, mut shown) = (0u64, String::new());
        let mut on_step = |s: u64, msg: &str| {
            progress.steps((s - last) * k as u64);
            last = s;
            if !msg.is_empty() && msg != shown {
                progress.show(format!("{} step {s}: {msg}", group[0].id));
                shown = msg.to_string();
            }
        };
        train::train_group(group, &dirs, inputs, &mut on_step)
    }));
    let wall = start.elapsed().as_secs_f64();
    progress.ended(k);
    let outcomes = match trained {
        Ok(Ok(Trained::Done(outcomes))) => outcomes,
        Ok(Ok(Trained::Stopped { step })) => {
            progress.left(k);
            progress.say(format!(
                "{} ({k} run(s)): stopped at step {step}; the next `ebgan run` resumes from its checkpoint",
                group[0].id,
            ));
            return Ok(());
        }
        Ok(Err(e)) => return commit.failed(group, &format!("{e:#}"), progress),
        Err(panic) => return commit.failed(group, &commit::panic_message(panic), progress),
    };
    for (r, outcome) in group.iter().zip(outcomes) {
        commit.commit(r, &outcome, wall, k, progress)?;
    }
    train::discard_checkpoint(group, &dirs)
}
