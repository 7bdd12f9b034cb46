//! `ebgan`: EBGAN experiments from TOML files.

mod bench;
mod bench_conv;
mod cohort_size;
mod config;
mod data;
mod device;
mod fsutil;
mod images;
mod report;
mod results;
mod runner;
mod scoring;
mod slurm;
mod train;
mod workers;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ebgan",
    version,
    about = "Energy-based GAN experiments (Zhao, Mathieu, LeCun, ICLR 2017)"
)]
struct Cli {
    /// Data folder (MNIST, the scoring classifier); default $EBGAN_DATA or ./data.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get MNIST: download from the public mirrors, or import a local folder with --from.
    Mnist {
        /// Folder holding the four IDX files (.gz or raw).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Train the scoring classifier (once; cached with its test accuracy).
    Classifier {
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        /// Use the first N training images.
        #[arg(long, default_value_t = 60000)]
        train_images: usize,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Where to keep it; default <data>/mnist-classifier.
        #[arg(long)]
        classifier: Option<PathBuf>,
        /// Retrain even if one exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the runs an experiment file expands to, without training.
    Plan {
        file: PathBuf,
        /// List every run.
        #[arg(long)]
        list: bool,
    },
    /// Train the runs of an experiment file that are not done yet, then redraw its report.
    Run {
        file: PathBuf,
        /// Run shard I of N (0-based): disjoint shards whose union is the grid.
        #[arg(long, default_value = "0/1")]
        shard: config::Shard,
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
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long)]
        classifier: Option<PathBuf>,
        /// Do not redraw the report at the end.
        #[arg(long)]
        no_report: bool,
    },
    /// Write (and with --submit, submit) a Slurm array job: one task per shard of FILE.
    Slurm {
        file: PathBuf,
        /// Array tasks = shards (or `shards` in the file's [slurm] table).
        #[arg(long)]
        shards: Option<usize>,
        #[arg(long)]
        partition: Option<String>,
        #[arg(long)]
        gpus_per_task: Option<u32>,
        #[arg(long)]
        cpus_per_task: Option<u32>,
        /// Memory per task, e.g. 16G.
        #[arg(long)]
        mem: Option<String>,
        /// Time limit per task, e.g. 12:00:00.
        #[arg(long)]
        time: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// `--device` of each task (default auto).
        #[arg(long)]
        device: Option<String>,
        /// Submit it with sbatch and print the job id.
        #[arg(long)]
        submit: bool,
        /// Submit only the array indices whose shards are unfinished.
        #[arg(long)]
        resubmit: bool,
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long)]
        classifier: Option<PathBuf>,
    },
    /// Per shard: runs done / diverged / failed / remaining, and Slurm's queued or running tasks.
    Status { dir: PathBuf },
    /// Decode and preprocess the image dataset of an experiment file once into its uint8 cache
    /// (training does this itself when the cache is missing); prints its size and images/s.
    CacheImages { file: PathBuf },
    /// A grid of samples from a convolutional run's checkpoint.
    Sample {
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 64)]
        n: i64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Latent interpolations from a convolutional run's checkpoint: each row walks linearly
    /// between two random latents.
    Interpolate {
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 8)]
        rows: i64,
        #[arg(long, default_value_t = 10)]
        steps: i64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Redraw figures and tables of a results folder (results/<experiment>) from its results alone.
    Report { dir: PathBuf },
    /// Time one EBGAN and one GAN training step, here and in PyTorch eager.
    Bench(bench::BenchArgs),
    /// Grid throughput: Table 1 shape groups through cohorts, the single-run path and PyTorch
    /// eager, extrapolated to a grid-epoch (6,656 runs x one MNIST epoch).
    BenchGrid(bench::BenchGridArgs),
    /// Images/s of the 64x64 EBGAN-PT step in Rust and PyTorch eager, and of the data pipeline.
    BenchConv(bench_conv::BenchConvArgs),
}

fn main() -> std::process::ExitCode {
    // Errors are for people: the message and its causes on one line, never a backtrace.
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data = data::data_dir(cli.data);
    match cli.command {
        Command::Mnist { from } => {
            match from {
                Some(from) => data::mnist::import(&from, &data)?,
                None if data::mnist::is_ready(&data) => {}
                None => data::mnist::download(&data)?,
            }
            eprintln!("MNIST verified in {}", data::mnist::dir(&data).display());
        }
        Command::Classifier {
            epochs,
            train_images,
            device,
            classifier,
            force,
        } => {
            let dir = classifier.unwrap_or_else(|| scoring::default_dir(&data));
            if !force {
                if let Ok(info) = scoring::read_info(&dir) {
                    eprintln!(
                        "classifier in {} already trained: test accuracy {:.2}%",
                        dir.display(),
                        info.test_accuracy * 100.0
                    );
                    return Ok(());
                }
            }
            let device = device::parse(&device)?;
            let mnist = data::mnist::load(&data)?;
            let info = scoring::train(&mnist, &dir, epochs, train_images, device)?;
            eprintln!(
                "classifier: test accuracy {:.2}% ({} epochs, {:.0} s on {}); real test set: I' {:.3}, IS {:.2}",
                info.test_accuracy * 100.0,
                epochs,
                info.train_seconds,
                device::describe(device),
                info.test_scores.i_prime,
                info.test_scores.inception_score
            );
        }
        Command::Plan { file, list } => {
            let exp = config::Experiment::load(&file)?;
            let mut per_family = std::collections::BTreeMap::<&str, usize>::new();
            for r in &exp.runs {
                *per_family.entry(r.config.family()).or_default() += 1;
                if list {
                    println!("{}", r.id);
                }
            }
            for (family, n) in &per_family {
                println!("{family}: {n} runs");
            }
            println!("total: {} runs", exp.runs.len());
            if !exp.description.is_empty() {
                println!("({})", exp.description);
            }
        }
        Command::Run {
            file,
            shard,
            device,
            jobs,
            cohort,
            threads,
            results,
            classifier,
            no_report,
            workers,
        } => {
            anyhow::ensure!(workers >= 1, "--workers 0: expected at least 1");
            let device_flag = device.clone();
            let device = device::parse(&device)?;
            let cohort_flag = cohort.clone();
            let cohort: cohort_size::CohortSize = cohort.parse().map_err(anyhow::Error::msg)?;
            let opts = runner::RunOptions {
                shard,
                device,
                jobs,
                cohort,
                threads,
                results: results.clone(),
                data: data.clone(),
                classifier: classifier.unwrap_or_else(|| scoring::default_dir(&data)),
            };
            if workers > 1 {
                let mut pass = vec![
                    "--device".to_string(),
                    device_flag,
                    "--cohort".into(),
                    cohort_flag,
                    "--results".into(),
                    results.display().to_string(),
                    "--classifier".into(),
                    opts.classifier.display().to_string(),
                ];
                let threads = threads.unwrap_or_else(device::cores);
                if device == tch::Device::Cpu {
                    pass.extend(["--threads".into(), (threads / workers).max(1).to_string()]);
                }
                if let Some(j) = jobs {
                    pass.extend(["--jobs".into(), j.to_string()]);
                }
                workers::run(&file, shard, workers, &data, &results, &pass)?;
            } else {
                runner::run(&file, &opts)?;
            }
            if !no_report {
                let exp = config::Experiment::load(&file)?;
                let dir = results.join(&exp.name);
                report::write(&dir)?;
                eprintln!("report: {}", dir.join("summary.md").display());
            }
        }
        Command::Slurm {
            file,
            shards,
            partition,
            gpus_per_task,
            cpus_per_task,
            mem,
            time,
            account,
            device,
            submit,
            resubmit,
            results,
            classifier,
        } => {
            let exp = config::Experiment::load(&file)?;
            let flags = slurm::SlurmSettings {
                shards,
                partition,
                gpus_per_task,
                cpus_per_task,
                mem,
                time,
                account,
                device,
            };
            let settings = exp.slurm.overlay(&flags);
            let abs = |p: &std::path::Path| std::path::absolute(p).map_err(anyhow::Error::from);
            let results = abs(&results)?;
            let dir = results.join(&exp.name);
            let previous = slurm::read_job_log(&dir)?;
            let shards = settings
                .shards
                .or(previous.as_ref().map(|l| l.shards))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "how many shards? give --shards N or `shards` in the [slurm] table of {}",
                        file.display()
                    )
                })?;
            if shards == 0 {
                anyhow::bail!("--shards must be >= 1");
            }
            let indices: Vec<usize> = if resubmit {
                let progress =
                    slurm::progress(&exp, &results::ResultsDir::new(dir.clone()), shards)?;
                progress
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
            let job = slurm::Job {
                experiment: exp.name.clone(),
                file: abs(&file)?,
                ebgan: std::env::current_exe()?,
                results,
                data: abs(&data)?,
                classifier: abs(&classifier.unwrap_or_else(|| scoring::default_dir(&data)))?,
                shards,
                indices,
                settings,
            };
            let (script, job_id) = slurm::write_and_submit(&job, submit || resubmit)?;
            println!(
                "wrote {} (array {} of {shards} shards)",
                script.display(),
                slurm::array_spec(&job.indices)
            );
            if let Some(id) = job_id {
                println!("submitted job {id}");
            }
        }
        Command::CacheImages { file } => {
            let exp = config::Experiment::load(&file)?;
            anyhow::ensure!(
                !exp.dataset.is_mnist(),
                "{}: dataset {} is not an image dataset (celeba, lsun, imagenet)",
                file.display(),
                exp.dataset
            );
            let mut sides: Vec<i64> = exp
                .runs
                .iter()
                .map(|r| data::image_set::stored_side(r.config.image_size, r.config.random_crop))
                .collect();
            sides.sort();
            sides.dedup();
            for side in sides {
                let path = data::image_set::ensure_cache(&exp, &data, side as u32)?;
                let (n, _) = data::images::read_header(&path)?;
                eprintln!(
                    "{}: {n} images of {side}x{side}x3, {:.1} MiB",
                    path.display(),
                    std::fs::metadata(&path)?.len() as f64 / (1 << 20) as f64
                );
            }
        }
        Command::Sample {
            checkpoint,
            n,
            seed,
            out,
            device,
        } => {
            train::conv::sample(&checkpoint, n, seed, &out, device::parse(&device)?)?;
            eprintln!("wrote {}", out.display());
        }
        Command::Interpolate {
            checkpoint,
            rows,
            steps,
            seed,
            out,
            device,
        } => {
            train::conv::interpolate(
                &checkpoint,
                rows,
                steps,
                seed,
                &out,
                device::parse(&device)?,
            )?;
            eprintln!("wrote {}", out.display());
        }
        Command::Status { dir } => print!("{}", slurm::status(&dir)?),
        Command::Report { dir } => {
            report::write(&dir)?;
            eprintln!("report: {}", dir.join("summary.md").display());
        }
        Command::Bench(args) => bench::run(&args)?,
        Command::BenchGrid(args) => bench::run_grid(&args)?,
        Command::BenchConv(args) => bench_conv::run(&args)?,
    }
    Ok(())
}
