//! `ebgan bench-conv`: images/s of the 64x64 EBGAN-PT training step (DCGAN G, convolutional
//! auto-encoder D, pulling-away term, both updates) in Rust and, in the same invocation, in
//! PyTorch eager (bench/conv_pytorch.py); and the data pipeline alone: JPEG decoding into the
//! cache (first epoch) and batch assembly from the cache (every later step).

use crate::config::{Model, Network, RunConfig};
use crate::data::cache::{build_cache, Preprocess};
use crate::data::image_set::ImageSet;
use crate::data::source::Source;
use crate::device;
use crate::precision::MatmulPrecision;
use crate::train::conv::{ConvGan, Latent};
use anyhow::Result;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use tch::Kind;

#[derive(clap::Args)]
pub struct BenchConvArgs {
    #[arg(long, default_value = "auto")]
    device: String,
    /// Float32 precision of CUDA matmuls and convolutions: highest (FP32) or high (TF32).
    #[arg(long, value_enum, default_value_t = MatmulPrecision::Highest)]
    matmul_precision: MatmulPrecision,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Batch sizes (repeatable); default 32 and 64.
    #[arg(long = "batch")]
    batches: Vec<i64>,
    /// Widths: g_base = ae_base (paper: 64).
    #[arg(long, default_value_t = 64)]
    base: i64,
    /// Python with torch 2.11.0 for the PyTorch eager reference; without it only Rust is timed.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Also write the table here (markdown).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Time the training step only, not the data pipeline.
    #[arg(long)]
    no_pipeline: bool,
}

fn config(base: i64, batch: i64) -> RunConfig {
    RunConfig {
        model: Model::Ebgan,
        network: Network::Dcgan,
        image_size: 64,
        g_base: base,
        ae_base: base,
        batch_size: batch,
        lr: 0.0002,
        margin: 20.0,
        pulling_away: 0.1,
        init_std_d: 0.02,
        ..Default::default()
    }
}

fn random_set(n: usize, side: i64, dev: tch::Device) -> ImageSet {
    let mut data = vec![0u8; n * (side * side * 3) as usize];
    ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut data);
    ImageSet::from_bytes(&data, n, side, 3, crate::config::Dataset::Celeba, dev)
}

/// Training images/s of the Rust step: batch gather, latent draw and both updates, as
/// train::conv does them.
fn rust_rate(c: &RunConfig, steps: usize, warmup: usize, dev: tch::Device) -> f64 {
    let set = random_set(2048, 64, dev);
    let mut gan = ConvGan::new(c, 3, dev);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let b = c.batch_size;
    let mut one = || {
        let idx: Vec<i64> = (0..b)
            .map(|_| rng.random_range(0..set.len as i64))
            .collect();
        let x = set.batch(&idx, 64, &mut rng);
        let latent = Latent::draw(&gan.spec, b, &mut rng, dev);
        gan.step(&x, &latent, c.margin)
    };
    for _ in 0..warmup {
        let _ = one();
    }
    // The clock starts once the warm-up's queued CUDA work has run.
    if let tch::Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
    let start = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        last = Some(one());
    }
    let _ = f64::try_from(last.unwrap().sum(Kind::Double)); // waits for queued device work
    (steps as i64 * b) as f64 / start.elapsed().as_secs_f64()
}

/// Batch assembly alone (index gather, optional random crop, scaling, latent draw), images/s.
fn pipeline_rate(side: i64, batch: i64, dev: tch::Device) -> f64 {
    let set = random_set(2048, side, dev);
    let spec = config(64, batch).conv_spec(3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let iters = 200;
    // The clock starts once the set's upload has run.
    if let tch::Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
    let start = Instant::now();
    let mut acc = tch::Tensor::zeros([], (Kind::Float, dev));
    for _ in 0..iters {
        let idx: Vec<i64> = (0..batch)
            .map(|_| rng.random_range(0..set.len as i64))
            .collect();
        let x = set.batch(&idx, 64, &mut rng);
        let l = Latent::draw(&spec, batch, &mut rng, dev);
        acc += x.mean(Kind::Float) + l.z.mean(Kind::Float);
    }
    let _ = f64::try_from(acc);
    (iters * batch) as f64 / start.elapsed().as_secs_f64()
}

/// JPEG decoding + CelebA preprocessing into a cache, images/s, on 512 generated 178x218 JPEGs.
fn decode_rate() -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let files: Vec<PathBuf> = (0..512)
        .map(|i| {
            let img = image::RgbImage::from_fn(178, 218, |x, y| {
                let n: u8 = rng.random_range(0..40);
                image::Rgb([
                    (x as u8).wrapping_add(n),
                    (y as u8).wrapping_mul(3),
                    120 + n,
                ])
            });
            let p = dir.path().join(format!("{i:06}.jpg"));
            img.save(&p).map(|_| p)
        })
        .collect::<Result<_, _>>()?;
    let r = build_cache(
        &Source::Files(files),
        Preprocess::celeba(64),
        &dir.path().join("c.cache"),
    )?;
    Ok(r.images_per_s)
}

fn python_rates(
    args: &BenchConvArgs,
    dev: tch::Device,
    threads: usize,
    batches: &[i64],
) -> Result<Vec<(i64, f64)>> {
    let Some(py) = &args.python else {
        return Ok(vec![]);
    };
    let mut extra = vec!["--base".to_string(), args.base.to_string()];
    for b in batches {
        extra.extend(["--batch".to_string(), b.to_string()]);
    }
    let lines = crate::bench::pytorch_reference(
        py,
        "conv_pytorch.py",
        dev,
        args.steps,
        args.warmup,
        threads,
        &extra,
    )?;
    Ok(lines
        .iter()
        .map(|v| {
            (
                v["batch"].as_i64().unwrap_or(0),
                v["images_per_s"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect())
}

pub fn run(args: &BenchConvArgs) -> Result<()> {
    let dev = device::parse(&args.device)?;
    args.matmul_precision.apply()?;
    let threads = device::cores();
    tch::set_num_threads(threads as i32);
    let batches = if args.batches.is_empty() {
        vec![32, 64]
    } else {
        args.batches.clone()
    };
    let python = python_rates(args, dev, threads, &batches)?;
    let mut t = String::new();
    writeln!(t, "device: {} ({threads} threads) · EBGAN-PT 64x64, g_base = ae_base = {} · {} timed steps after {} warm-up · both updates per step · matmul precision {}\n", device::describe(dev), args.base, args.steps, args.warmup, args.matmul_precision)?;
    writeln!(
        t,
        "| batch | Rust images/s | PyTorch eager images/s | Rust / PyTorch |"
    )?;
    writeln!(t, "|---:|---:|---:|---:|")?;
    for &b in &batches {
        eprintln!("timing Rust, batch {b}");
        let r = rust_rate(&config(args.base, b), args.steps, args.warmup, dev);
        let p = python.iter().find(|(pb, _)| *pb == b).map(|(_, v)| *v);
        let (ps, ratio) = match p {
            Some(p) => (format!("{p:.1}"), format!("{:.2}", r / p)),
            None => ("-".into(), "-".into()),
        };
        writeln!(t, "| {b} | {r:.1} | {ps} | {ratio} |")?;
    }
    if !args.no_pipeline {
        pipeline_rows(&mut t, dev)?;
    }
    print!("{t}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, t.as_bytes())?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// The data pipeline's table: JPEG decoding into the cache, batches from the cache.
fn pipeline_rows(t: &mut String, dev: tch::Device) -> Result<()> {
    eprintln!("timing the data pipeline");
    writeln!(t, "\nData pipeline alone (images/s):\n")?;
    writeln!(t, "| stage | images/s |")?;
    writeln!(t, "|---|---:|")?;
    writeln!(t, "| decode + crop 108 + resize 64 into the cache (512 generated 178x218 JPEGs, rayon over {} threads; once per dataset) | {:.0} |", rayon::current_num_threads(), decode_rate()?)?;
    writeln!(
        t,
        "| batch from the cache: gather, scale to [-1, 1], latent draw (batch 64) | {:.0} |",
        pipeline_rate(64, 64, dev)
    )?;
    writeln!(
        t,
        "| same with LSUN's random 64x64 crops of 96x96 | {:.0} |",
        pipeline_rate(96, 64, dev)
    )?;
    Ok(())
}
