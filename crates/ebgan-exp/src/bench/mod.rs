//! `ebgan bench`: steps/s of one EBGAN and one GAN training step (both updates, batch 64) of
//! Table 1 MLPs in Rust, and in the same invocation the same step in PyTorch eager
//! (bench/step_pytorch.py), with the ratio, then each trainer's host transfers per step
//! (`transfers`) and the time of one cohort step's random draws (`draws`). `grid`: `ebgan bench-grid`; `conv`: `ebgan bench-conv`.

pub mod conv;
pub mod draws;
pub mod grid;
pub mod transfers;

use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::device;
use crate::precision::MatmulPrecision;
use crate::train::mlp::{Cohort, DeviceImages};
use anyhow::{bail, Context, Result};
use ebgan_core::Layout;
use rand::{Rng, RngCore, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "auto")]
    device: String,
    /// Float32 precision of CUDA matmuls and convolutions: highest (FP32) or high (TF32).
    #[arg(long, value_enum, default_value_t = MatmulPrecision::Highest)]
    matmul_precision: MatmulPrecision,
    #[arg(long, default_value_t = 30)]
    steps: usize,
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Table 1 shapes as nLayerG,sizeG,nLayerD,sizeD (repeatable); default a small, a medium
    /// and the largest.
    #[arg(long = "shape")]
    shapes: Vec<String>,
    /// Python with torch 2.11.0 for the PyTorch eager reference; without it only Rust is timed.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Also write the table here (markdown).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How the optimizers hold the parameters (auto: packed on CUDA, per tensor on the CPU).
    #[arg(long, value_enum, default_value = "auto")]
    optim_layout: OptimLayout,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OptimLayout {
    Auto,
    Packed,
    PerTensor,
}

impl OptimLayout {
    pub(crate) fn resolve(self, device: tch::Device) -> Layout {
        match self {
            OptimLayout::Auto => Layout::for_device(device),
            OptimLayout::Packed => Layout::Packed,
            OptimLayout::PerTensor => Layout::PerTensor,
        }
    }
}

pub(crate) fn parse_shape(s: &str) -> Result<[i64; 4]> {
    let v: Vec<i64> = s
        .split(',')
        .map(|x| x.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--shape {s:?}: expected nLayerG,sizeG,nLayerD,sizeD"))?;
    match v[..] {
        [a, b, c, d] if a >= 2 && c >= 2 && b > 0 && d > 0 => Ok([a, b, c, d]),
        _ => bail!("--shape {s:?}: expected four positive numbers nLayerG,sizeG,nLayerD,sizeD with both layer counts >= 2"),
    }
}

pub(crate) fn table1_config(shape: [i64; 4], model: Model) -> RunConfig {
    RunConfig {
        model,
        n_layer_g: shape[0] as usize,
        size_g: shape[1],
        n_layer_d: shape[2] as usize,
        size_d: shape[3],
        ..Default::default()
    }
}

/// Seconds per step of one cohort of `members` (one member = the single-run path).
pub(crate) fn seconds_per_step(
    members: &[RunConfig],
    steps: usize,
    warmup: usize,
    images: &DeviceImages,
    layout: Layout,
) -> f64 {
    let device = images.images.device();
    let k = members.len() as i64;
    let mut cohort = Cohort::with_layout(members, device, layout);
    let margins: Vec<f32> = members.iter().map(|m| m.margin as f32).collect();
    let margin = Tensor::from_slice(&margins).to_device(device);
    let alive = Tensor::ones([k], (Kind::Bool, device));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut one = || {
        let idx: Vec<i64> = (0..64 * k)
            .map(|_| rng.random_range(0..images.len as i64))
            .collect();
        let x = images.batch(&ebgan_core::upload(Tensor::from_slice(&idx), device), k, 64);
        cohort.step(&x, &margin, &alive)
    };
    for _ in 0..warmup {
        one();
    }
    // The clock starts once the warm-up's queued CUDA work has run.
    if let tch::Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    let start = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        last = Some(one());
    }
    // Reading a value waits for queued CUDA work.
    let _ = f64::try_from(last.unwrap().loss_g.sum(Kind::Double)).unwrap();
    start.elapsed().as_secs_f64() / steps as f64
}

/// Runs bench/step_pytorch.py and returns its JSON lines.
pub(crate) fn python_rates(
    py: &Path,
    shapes: &[[i64; 4]],
    dev: tch::Device,
    steps: usize,
    warmup: usize,
    threads: usize,
) -> Result<Vec<serde_json::Value>> {
    let mut extra = vec![];
    for s in shapes {
        let shape: Vec<String> = s.iter().map(|v| v.to_string()).collect();
        extra.extend(["--shape".to_string(), shape.join(",")]);
    }
    pytorch_reference(py, "step_pytorch.py", dev, steps, warmup, threads, &extra)
}

/// Runs the PyTorch reference script bench/`script` with the flags every one of them takes
/// (device, steps, warm-up, threads) and `extra`, and parses its JSON lines.
pub(crate) fn pytorch_reference(
    py: &Path,
    script: &str,
    dev: tch::Device,
    steps: usize,
    warmup: usize,
    threads: usize,
    extra: &[String],
) -> Result<Vec<serde_json::Value>> {
    let script = crate::fsutil::source_file(&format!("bench/{script}"));
    eprintln!("timing PyTorch eager ({})", script.display());
    let out = std::process::Command::new(py)
        .arg(&script)
        .args(["--device", &device::describe(dev)])
        .args([
            "--steps",
            &steps.to_string(),
            "--warmup",
            &warmup.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
        // The precision this process runs under (`--matmul-precision`), there too.
        .args(
            crate::precision::MatmulPrecision::current()?
                .0
                .then_some("--tf32"),
        )
        .args(extra)
        .output()
        .with_context(|| format!("cannot run {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

pub(crate) fn python_rate(
    python: &[serde_json::Value],
    shape: [i64; 4],
    model: Model,
) -> Option<f64> {
    python
        .iter()
        .find(|v| {
            v["model"] == model.to_string()
                && v["shape"].as_array().map(|a| {
                    a.iter()
                        .map(|x| x.as_i64().unwrap_or(0))
                        .collect::<Vec<_>>()
                }) == Some(shape.to_vec())
        })
        .and_then(|v| v["steps_per_s"].as_f64())
}

pub(crate) fn random_images(dev: tch::Device) -> DeviceImages {
    let mut bytes = vec![0u8; 60000 * PIXELS];
    rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut bytes);
    DeviceImages::new(&bytes, 60000, dev)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let dev = device::parse(&args.device)?;
    args.matmul_precision.apply()?;
    let threads = device::cores();
    tch::set_num_threads(threads as i32);
    let shapes: Vec<[i64; 4]> = if args.shapes.is_empty() {
        vec![[2, 400, 2, 128], [3, 1600, 3, 512], [5, 3200, 5, 1024]]
    } else {
        args.shapes
            .iter()
            .map(|s| parse_shape(s))
            .collect::<Result<_>>()?
    };
    let images = random_images(dev);
    let python = match &args.python {
        Some(py) => python_rates(py, &shapes, dev, args.steps, args.warmup, threads)?,
        None => vec![],
    };

    let mut table = String::new();
    writeln!(table, "device: {} ({} threads) · batch 64 · {} timed steps after {} warm-up · both updates per step · optimizer layout {:?} · matmul precision {}\n", device::describe(dev), threads, args.steps, args.warmup, args.optim_layout.resolve(dev), args.matmul_precision)?;
    writeln!(table, "| nLayerG, sizeG, nLayerD, sizeD | model | Rust steps/s | PyTorch eager steps/s | Rust / PyTorch |")?;
    writeln!(table, "|---|---|---:|---:|---:|")?;
    for shape in &shapes {
        for model in [Model::Ebgan, Model::Gan] {
            eprintln!("timing Rust {model} {shape:?}");
            let r = 1.0
                / seconds_per_step(
                    &[table1_config(*shape, model)],
                    args.steps,
                    args.warmup,
                    &images,
                    args.optim_layout.resolve(dev),
                );
            let p = python_rate(&python, *shape, model);
            let (ps, ratio) = match p {
                Some(p) => (format!("{p:.1}"), format!("{:.2}", r / p)),
                None => ("-".into(), "-".into()),
            };
            writeln!(
                table,
                "| {} | {model} | {r:.1} | {ps} | {ratio} |",
                shape
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    eprintln!("counting host transfers per step of each trainer");
    writeln!(table, "\n{}", transfers::table(dev)?)?;
    eprintln!("counting and timing the random draws of a step");
    writeln!(table, "\n{}", draws::table(dev)?)?;
    print!("{table}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, table.as_bytes())?;
    }
    Ok(())
}
