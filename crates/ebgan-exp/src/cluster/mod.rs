//! Running a grid on a cluster: `ebgan slurm` (an array job, one task per shard), `ebgan k8s`
//! (a Kubernetes Indexed Job, one pod per shard) and `ebgan status` (per-shard progress and
//! the queue). Elsewhere (submitit, other schedulers) `ebgan run --shard env` reads the task's
//! index from the environment.

pub mod k8s;
pub mod slurm;

pub use k8s::K8sArgs;

use crate::config::{Experiment, SlurmSettings};
use crate::results::ResultsDir;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Write (and with --submit, submit) a Slurm array job: one task per shard of FILE.
#[derive(clap::Args)]
pub struct SlurmArgs {
    file: PathBuf,
    #[command(flatten)]
    settings: SlurmSettings,
    /// Submit it with sbatch and print the job id.
    #[arg(long)]
    submit: bool,
    /// Submit only the array indices whose shards are unfinished.
    #[arg(long)]
    resubmit: bool,
    #[arg(long, default_value = crate::results::USER_ROOT)]
    results: PathBuf,
    #[arg(long)]
    classifier: Option<PathBuf>,
}

impl SlurmArgs {
    /// `ebgan slurm`, with `data` the global data folder.
    pub fn run(&self, data: &Path) -> Result<()> {
        let exp = Experiment::load(&self.file)?;
        let settings = exp.slurm.overlay(&self.settings);
        let abs = |p: &Path| std::path::absolute(p).map_err(anyhow::Error::from);
        let results = abs(&self.results)?;
        let dir = results.join(&exp.name);
        let previous = slurm::read_job_log(&dir)?;
        let shards = settings
            .shards
            .or(previous.as_ref().map(|l| l.shards))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "how many shards? give --shards N or `shards` in the [slurm] table of {}",
                    self.file.display()
                )
            })?;
        anyhow::ensure!(shards >= 1, "--shards must be >= 1");
        let indices: Vec<usize> = if self.resubmit {
            slurm::progress(&exp, &ResultsDir::new(dir.clone()), shards)?
                .iter()
                .enumerate()
                .filter(|(_, p)| p.remaining() > 0)
                .map(|(i, _)| i)
                .collect()
        } else {
            (0..shards).collect()
        };
        if indices.is_empty() {
            println!("every shard of {} is finished: nothing to submit", exp.name);
            return Ok(());
        }
        let classifier = self
            .classifier
            .clone()
            .unwrap_or_else(|| crate::scoring::default_dir(data));
        let job = slurm::Job {
            experiment: exp.name.clone(),
            file: abs(&self.file)?,
            ebgan: std::env::current_exe()?,
            results,
            data: abs(data)?,
            classifier: abs(&classifier)?,
            shards,
            indices,
            settings,
        };
        let (script, job_id) = slurm::write_and_submit(&job, self.submit || self.resubmit)?;
        println!(
            "wrote {} (array {} of {shards} shards)",
            script.display(),
            slurm::array_spec(&job.indices)
        );
        if let Some(id) = job_id {
            println!("submitted job {id}");
        }
        Ok(())
    }
}

/// `ebgan status`: per shard, runs done / diverged / failed / remaining, and Slurm's tasks.
#[derive(clap::Args)]
pub struct StatusArgs {
    dir: PathBuf,
}

impl StatusArgs {
    pub fn run(&self) -> Result<()> {
        print!("{}", slurm::status(&self.dir)?);
        Ok(())
    }
}
