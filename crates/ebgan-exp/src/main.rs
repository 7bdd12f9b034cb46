//! `ebgan`: EBGAN experiments from TOML files. Parses the command line and dispatches to the
//! library (`ebgan_exp`), where each command's arguments live beside the code that runs it.

use clap::{Parser, Subcommand};
use ebgan_exp::{
    bench, cluster, config, data, fid_command, gpu_check, parity, report, run, scoring, train,
};
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
    /// The most runs an experiment file may expand to.
    #[arg(long, global = true, default_value_t = config::DEFAULT_MAX_RUNS)]
    max_runs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get MNIST: download from the public mirrors, or import a local folder with --from.
    Mnist(data::mnist::MnistArgs),
    /// Train the scoring classifier (once; cached with its test accuracy).
    Classifier(scoring::ClassifierArgs),
    /// Print the runs an experiment file expands to, without training.
    Plan(config::PlanArgs),
    /// Train the runs of an experiment file that are not done yet, then redraw its report.
    Run(run::RunArgs),
    /// Write (and with --submit, submit) a Slurm array job: one task per shard of FILE.
    Slurm(cluster::SlurmArgs),
    /// Per shard: runs done / diverged / failed / remaining, and Slurm's queued or running tasks.
    Status(cluster::StatusArgs),
    /// Write a Kubernetes Indexed Job: one pod per shard of FILE (`--shard env/N`).
    K8s(cluster::K8sArgs),
    /// Decode and preprocess the image dataset of an experiment file once into its uint8 cache
    /// (training does this itself when the cache is missing); prints its size and images/s.
    CacheImages(data::image_set::CacheImagesArgs),
    /// A grid of samples from a convolutional run's checkpoint.
    Sample(train::sample::SampleArgs),
    /// Latent interpolations from a convolutional run's checkpoint: each row walks linearly
    /// between two random latents.
    Interpolate(train::sample::InterpolateArgs),
    /// Redraw figures and tables of a results folder (runs/<experiment>) from its results alone.
    Report(report::ReportArgs),
    /// Results folder A against reference B (e.g. runs/grid-mnist-quick results/grid-mnist-quick):
    /// runs bit-equal in final losses and scores, and I' quartiles against B's noise floor.
    Compare(report::verdict::CompareArgs),
    /// Time one EBGAN and one GAN training step, here and in PyTorch eager.
    Bench(bench::BenchArgs),
    /// Grid throughput: Table 1 shape groups through cohorts, the single-run path and PyTorch
    /// eager, extrapolated to a grid-epoch (6,656 runs x one MNIST epoch).
    BenchGrid(bench::grid::BenchGridArgs),
    /// Images/s of the 64x64 EBGAN-PT step in Rust and PyTorch eager, and of the data pipeline.
    BenchConv(bench::conv::BenchConvArgs),
    /// FID and KID between two image sets (folders of images, run checkpoints' samples, an
    /// experiment's dataset) with the FID-Inception network; weights by --inception or
    /// $EBGAN_INCEPTION.
    Fid(fid_command::FidArgs),
    /// Our training steps against independent PyTorch references from the same weights, data,
    /// noise and dropout masks: losses, final weights and optimizer moments.
    Parity(parity::ParityArgs),
    /// What a GPU session should find out, in one time-budgeted command: set-up, parity and
    /// training checks on the device, benchmarks, then the paper's results with what is left;
    /// OUT/gpu-check.md (also runs on the CPU at tiny sizes).
    GpuCheck(gpu_check::GpuCheckArgs),
}

/// A closed stdout or stderr (`ebgan run ... | head`) ends the process, as it ends other Unix
/// tools, instead of a panic in whichever training thread prints next (which recorded its cohort
/// as failed). What was committed stays whole (rows are written atomically), and a run committed
/// without the rest of its cohort gets the same row when the next `ebgan run` trains the others.
fn die_on_closed_pipes() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default action for one signal before any thread starts.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    die_on_closed_pipes();
    let cli = Cli::parse();
    config::set_max_runs(cli.max_runs);
    let data = data::data_dir(cli.data);
    let done = match cli.command {
        Command::Mnist(a) => a.run(&data),
        Command::Classifier(a) => a.run(&data),
        Command::Plan(a) => a.run(),
        Command::Run(a) => a.run(&data),
        Command::Slurm(a) => a.run(&data),
        Command::Status(a) => a.run(),
        Command::K8s(a) => a.run(),
        Command::CacheImages(a) => a.run(&data),
        Command::Sample(a) => a.run(),
        Command::Interpolate(a) => a.run(),
        Command::Report(a) => a.run(),
        Command::Compare(a) => a.run(),
        Command::Bench(a) => bench::run(&a),
        Command::BenchGrid(a) => bench::grid::run_grid(&a),
        Command::BenchConv(a) => bench::conv::run(&a),
        Command::Parity(a) => a.run(),
        Command::Fid(a) => a.run(&data),
        Command::GpuCheck(a) => a.run(&data),
    };
    // Errors are for people: the message and its causes on one line, never a backtrace.
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<run::RunsStopped>() {
                std::process::ExitCode::from(run::EXIT_STOPPED)
            } else if e.is::<run::RunsFailed>() {
                std::process::ExitCode::from(run::EXIT_RUNS_FAILED)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
