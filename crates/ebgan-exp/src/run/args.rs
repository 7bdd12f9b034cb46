//! `ebgan run`'s command line: the flags, and what the command reports when it ends (exit
//! statuses for failed and stopped runs).

use super::{progress::Tally, run, workers, RunOptions, RunsFailed, RunsStopped};
use crate::config::{Experiment, ShardArg};
use crate::device;
use crate::precision::MatmulPrecision;
use crate::scoring;
use crate::train::Stop;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// Train the runs of an experiment file that are not done yet, then redraw its report.
#[derive(clap::Args)]
pub struct RunArgs {
    file: PathBuf,
    /// Run shard I of N (0-based): disjoint shards whose union is the grid; `env` / `env/N`:
    /// from a Slurm array task or a Kubernetes Indexed Job (docs/cluster.md).
    #[arg(long, default_value = "0/1")]
    shard: ShardArg,
    /// auto (CUDA when available), cpu, cuda or cuda:K.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Cohorts trained at once; default: one per core on CPU, 1 on CUDA.
    #[arg(long)]
    jobs: Option<usize>,
    /// Most runs of one shape trained together as one batched model: a number (1 = each run
    /// alone) or auto (2 on CPU; on CUDA from the free GPU memory; docs/performance.md).
    #[arg(long, default_value = "auto")]
    cohort: String,
    /// Split the shard over W `ebgan run` processes on this machine (several cohorts in
    /// flight on one GPU, each process with its own CUDA context).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// CPU threads in all (default: every core); Slurm tasks pass their --cpus-per-task.
    #[arg(long)]
    threads: Option<usize>,
    /// Results root: runs/<experiment>/ by default (git-ignored); the committed references in
    /// results/ are rewritten only when named here.
    #[arg(long, default_value = crate::results::USER_ROOT)]
    results: PathBuf,
    /// The references the results are compared with at the end (<reference>/<experiment>, when
    /// it exists): runs bit-equal, and I' quartiles against its noise floor.
    #[arg(long, default_value = crate::results::REFERENCE_ROOT)]
    reference: PathBuf,
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Do not redraw the report at the end.
    #[arg(long)]
    no_report: bool,
    /// Stop after this long (e.g. 90m, 2h, 3600s): cohorts that cannot finish in it are not
    /// started, and what is in flight when it ends is checkpointed (exit status 3).
    #[arg(long, value_parser = humantime::parse_duration)]
    time_budget: Option<std::time::Duration>,
    /// Minutes between checkpoints, for every trainer (one is also written on a stop).
    #[arg(long, default_value_t = 10.0)]
    checkpoint_minutes: f64,
    /// FID-Inception weights (safetensors) for the FID and KID of image runs; default the
    /// experiment's `inception`, then $EBGAN_INCEPTION. Without them image runs get no FID.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Float32 precision of CUDA matmuls and convolutions: highest (full FP32) or high (TF32);
    /// recorded in every row. The CPU computes in FP32 either way.
    #[arg(long, value_enum, default_value_t = MatmulPrecision::Highest)]
    matmul_precision: MatmulPrecision,
    /// Bytes of device memory to plan cohorts with (set by `--workers` for each worker: its
    /// share of what the card had free when they started).
    #[arg(long, hide = true)]
    device_memory: Option<u64>,
}

impl RunArgs {
    /// `ebgan run`, with `data` the global data folder.
    pub fn run(&self, data: &Path) -> Result<()> {
        anyhow::ensure!(self.workers >= 1, "--workers 0: expected at least 1");
        let device = device::parse(&self.device)?;
        self.matmul_precision.apply()?;
        let shard = self.shard.resolve(|v| std::env::var(v).ok());
        let shard = shard.map_err(anyhow::Error::msg)?;
        let opts = RunOptions {
            shard,
            device,
            jobs: self.jobs,
            cohort: self.cohort.parse().map_err(anyhow::Error::msg)?,
            threads: self.threads,
            results: self.results.clone(),
            data: data.to_path_buf(),
            classifier: self
                .classifier
                .clone()
                .unwrap_or_else(|| scoring::default_dir(data)),
            stop: Stop::at(self.time_budget.map(|b| Instant::now() + b)).on_signals()?,
            checkpoint_every: std::time::Duration::from_secs_f64(
                (self.checkpoint_minutes * 60.0).max(0.0),
            ),
            inception: self.inception.clone(),
            precision: self.matmul_precision,
            device_memory: self.device_memory,
        };
        let mut failed: Option<anyhow::Error> = None;
        if self.workers > 1 {
            let pass = self.worker_args(device, &opts.classifier);
            let done = workers::run(
                &self.file,
                shard,
                self.workers,
                data,
                &self.results,
                &pass,
                &opts.stop,
            );
            match done {
                Err(e) if e.is::<RunsFailed>() || e.is::<RunsStopped>() => failed = Some(e),
                other => other?,
            }
        } else {
            let tally = run(&self.file, &opts)?;
            let (n_failed, n_left, n_elsewhere) = (
                Tally::get(&tally.failed),
                Tally::get(&tally.stopped),
                Tally::get(&tally.elsewhere),
            );
            // What the next `ebgan run` still has to do: the stopped runs and the failed ones.
            let also = match n_failed {
                0 => String::new(),
                n => format!(" ({n} of them failed: see failed.log)"),
            };
            if n_left > 0 {
                let why = match opts.stop.seconds_left() {
                    Some(s) if s <= 0.0 => "the time budget ran out",
                    _ if opts.stop.requested() => "a stop was requested (SIGTERM or Ctrl-C)",
                    _ => "the time budget cannot fit the rest",
                };
                let msg = format!("stopped: {why}; {} run(s) remain{also}", n_left + n_failed);
                failed = Some(RunsStopped(msg).into());
            } else if n_elsewhere > 0 {
                let msg = format!(
                    "{n_elsewhere} run(s) were held by another `ebgan run` in this folder; run again once it ends{}",
                    match n_failed {
                        0 => String::new(),
                        n => format!(" ({n} failed here: see failed.log)"),
                    }
                );
                failed = Some(RunsStopped(msg).into());
            } else if n_failed > 0 {
                let first = tally
                    .first_failure
                    .get()
                    .map(|f| format!("; the first: {f}"))
                    .unwrap_or_default();
                failed = Some(
                    RunsFailed(format!("{n_failed} run(s) failed (see failed.log){first}")).into(),
                );
            }
        }
        if !self.no_report {
            let exp = Experiment::load(&self.file)?;
            let dir = self.results.join(&exp.name);
            match crate::report::write(&dir) {
                Ok(()) => eprintln!("report: {}", dir.join("summary.md").display()),
                // No report (e.g. no run committed) must not hide why the runs failed.
                Err(e) if failed.is_some() => eprintln!("no report: {e:#}"),
                Err(e) => return Err(e),
            }
            self.verdict(&exp.name);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Prints how the results compare with the committed reference of experiment `name` and
    /// writes it beside them (verdict.md); informational: a difference is not a failure here.
    fn verdict(&self, name: &str) {
        let (dir, reference) = (self.results.join(name), self.reference.join(name));
        let same = match (
            std::fs::canonicalize(&dir),
            std::fs::canonicalize(&reference),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same || !reference.join("runs.csv").is_file() || !dir.is_dir() {
            return;
        }
        match crate::report::verdict::compare(&dir, &reference) {
            Ok(v) => {
                eprintln!("\n{}", v.text);
                if let Err(e) =
                    crate::fsutil::write_atomic(&dir.join("verdict.md"), v.text.as_bytes())
                {
                    eprintln!("verdict.md not written: {e:#}");
                }
            }
            Err(e) => eprintln!("no comparison with {}: {e:#}", reference.display()),
        }
    }

    /// The flags every worker of `--workers W` gets from this invocation.
    fn worker_args(&self, device: Device, classifier: &Path) -> Vec<String> {
        let mut pass = vec![
            "--device".to_string(),
            self.device.clone(),
            "--cohort".into(),
            self.cohort.clone(),
            "--results".into(),
            self.results.display().to_string(),
            "--classifier".into(),
            classifier.display().to_string(),
            "--matmul-precision".into(),
            self.matmul_precision.to_string(),
        ];
        // Each worker plans with its share of the card: all of them start at once and
        // would each see it all free.
        if let Device::Cuda(i) = device {
            if let Some(free) = self.device_memory.or_else(|| device::cuda_free_bytes(i)) {
                let share = free / self.workers as u64;
                pass.extend(["--device-memory".into(), share.to_string()]);
            }
        }
        if device == Device::Cpu {
            let threads = self.threads.unwrap_or_else(device::cores);
            pass.extend([
                "--threads".into(),
                (threads / self.workers).max(1).to_string(),
            ]);
        }
        if let Some(j) = self.jobs {
            pass.extend(["--jobs".into(), j.to_string()]);
        }
        if let Some(b) = self.time_budget {
            pass.extend(["--time-budget".into(), format!("{}ms", b.as_millis())]);
        }
        pass.extend([
            "--checkpoint-minutes".into(),
            self.checkpoint_minutes.to_string(),
        ]);
        if let Some(p) = &self.inception {
            pass.extend(["--inception".into(), p.display().to_string()]);
        }
        pass
    }
}
