//! `ebgan bench`: steps/s of one EBGAN and one GAN training step (both updates, batch 64) of
//! Table 1 MLPs in Rust, and in the same invocation the same step in PyTorch eager
//! (bench/step_pytorch.py), with the ratio.

use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::device;
use crate::train::mlp::{Cohort, DeviceImages};
use anyhow::{bail, Context, Result};
use rand::{Rng, RngCore, SeedableRng};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "auto")]
    device: String,
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
}

fn parse_shape(s: &str) -> Result<[i64; 4]> {
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

/// Steps/s of the Rust step for one shape and model, dropout off, Adam lr 1e-3, batch 64.
fn rust_rate(
    shape: [i64; 4],
    model: Model,
    steps: usize,
    warmup: usize,
    images: &DeviceImages,
) -> f64 {
    let config = RunConfig {
        model,
        n_layer_g: shape[0] as usize,
        size_g: shape[1],
        n_layer_d: shape[2] as usize,
        size_d: shape[3],
        ..Default::default()
    };
    let device = images.images.device();
    let mut cohort = Cohort::new(std::slice::from_ref(&config), device);
    let margin = Tensor::from_slice(&[config.margin as f32]).to_device(device);
    let alive = Tensor::ones([1], (Kind::Bool, device));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut one = || {
        let idx: Vec<i64> = (0..64)
            .map(|_| rng.random_range(0..images.len as i64))
            .collect();
        let x = images.batch(&Tensor::from_slice(&idx).to_device(device), 1, 64);
        cohort.step(&x, &margin, &alive)
    };
    for _ in 0..warmup {
        one();
    }
    let sync = |t: &Tensor| f64::try_from(t.sum(Kind::Double)).unwrap();
    let start = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        last = Some(one());
    }
    sync(&last.unwrap().loss_g); // waits for queued CUDA work
    steps as f64 / start.elapsed().as_secs_f64()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let dev = device::parse(&args.device)?;
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
    let mut bytes = vec![0u8; 60000 * PIXELS];
    rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut bytes);
    let images = DeviceImages::new(&bytes, 60000, dev);

    let mut python: Vec<serde_json::Value> = vec![];
    if let Some(py) = &args.python {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/step_pytorch.py");
        let mut cmd = std::process::Command::new(py);
        cmd.arg(&script).args([
            "--device",
            &device::describe(dev),
            "--steps",
            &args.steps.to_string(),
            "--warmup",
            &args.warmup.to_string(),
        ]);
        cmd.args(["--threads", &threads.to_string()]);
        for s in &shapes {
            cmd.args([
                "--shape",
                &s.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
        }
        eprintln!("timing PyTorch eager ({})", script.display());
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {}", py.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        python = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
    }

    let mut table = String::new();
    writeln!(table, "device: {} ({} threads) · batch 64 · {} timed steps after {} warm-up · both updates per step\n", device::describe(dev), threads, args.steps, args.warmup)?;
    writeln!(table, "| nLayerG, sizeG, nLayerD, sizeD | model | Rust steps/s | PyTorch eager steps/s | Rust / PyTorch |")?;
    writeln!(table, "|---|---|---:|---:|---:|")?;
    for shape in &shapes {
        for model in [Model::Ebgan, Model::Gan] {
            eprintln!("timing Rust {model} {shape:?}");
            let r = rust_rate(*shape, model, args.steps, args.warmup, &images);
            let p = python
                .iter()
                .find(|v| {
                    v["model"] == model.to_string()
                        && v["shape"].as_array().map(|a| {
                            a.iter()
                                .map(|x| x.as_i64().unwrap_or(0))
                                .collect::<Vec<_>>()
                        }) == Some(shape.to_vec())
                })
                .and_then(|v| v["steps_per_s"].as_f64());
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
    print!("{table}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, table.as_bytes())?;
    }
    Ok(())
}
