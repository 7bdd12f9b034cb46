//! `ebgan bench`: steps/s of one EBGAN and one GAN training step (both updates, batch 64) of
//! Table 1 MLPs in Rust, and in the same invocation the same step in PyTorch eager
//! (bench/step_pytorch.py), with the ratio.

use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::device;
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
    fn resolve(self, device: tch::Device) -> Layout {
        match self {
            OptimLayout::Auto => Layout::for_device(device),
            OptimLayout::Packed => Layout::Packed,
            OptimLayout::PerTensor => Layout::PerTensor,
        }
    }
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
fn seconds_per_step(
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
fn python_rates(
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
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench")
        .join(script);
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

fn python_rate(python: &[serde_json::Value], shape: [i64; 4], model: Model) -> Option<f64> {
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

fn random_images(dev: tch::Device) -> DeviceImages {
    let mut bytes = vec![0u8; 60000 * PIXELS];
    rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut bytes);
    DeviceImages::new(&bytes, 60000, dev)
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
    let images = random_images(dev);
    let python = match &args.python {
        Some(py) => python_rates(py, &shapes, dev, args.steps, args.warmup, threads)?,
        None => vec![],
    };

    let mut table = String::new();
    writeln!(table, "device: {} ({} threads) · batch 64 · {} timed steps after {} warm-up · both updates per step · optimizer layout {:?}\n", device::describe(dev), threads, args.steps, args.warmup, args.optim_layout.resolve(dev))?;
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
    print!("{table}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, table.as_bytes())?;
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchGridArgs {
    #[arg(long, default_value = "auto")]
    device: String,
    /// Largest cohort (auto: as `ebgan run`).
    #[arg(long, default_value = "auto")]
    cohort: String,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Sample shape groups as nLayerG,sizeG,nLayerD,sizeD (repeatable); default small, medium, largest.
    #[arg(long = "shape")]
    shapes: Vec<String>,
    #[arg(long)]
    python: Option<PathBuf>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// How the optimizers hold the parameters (auto: packed on CUDA, per tensor on the CPU).
    #[arg(long, value_enum, default_value = "auto")]
    optim_layout: OptimLayout,
}

/// Multiply-adds of one training step per sample, the interpolation axis between sample shapes:
/// G forward + backward (3 x G) and D for two forward/backward passes in D's step and one in G's
/// (about 8 x D).
fn step_macs(c: &RunConfig) -> f64 {
    let (g, d) = (c.size_g as f64, c.size_d as f64);
    let g_macs = c.z_dim as f64 * g + (c.n_layer_g as f64 - 2.0) * g * g + g * PIXELS as f64;
    let d_out = if c.model == Model::Gan {
        1.0
    } else {
        PIXELS as f64
    };
    let d_macs = PIXELS as f64 * d + (c.n_layer_d as f64 - 2.0) * d * d + d * d_out;
    3.0 * g_macs + 8.0 * d_macs
}

/// Seconds per run-step at `macs`, interpolated log-log between measured (macs, seconds) points
/// and held constant past the ends.
fn interpolate(points: &[(f64, f64)], macs: f64) -> f64 {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    if macs <= p[0].0 {
        return p[0].1 * macs / p[0].0;
    }
    if macs >= p[p.len() - 1].0 {
        let last = p[p.len() - 1];
        return last.1 * macs / last.0;
    }
    let i = p.iter().position(|q| q.0 >= macs).unwrap();
    let (a, b) = (p[i - 1], p[i]);
    let f = (macs.ln() - a.0.ln()) / (b.0.ln() - a.0.ln());
    (a.1.ln() + f * (b.1.ln() - a.1.ln())).exp()
}

/// `ebgan bench-grid`: run-steps/s of Table 1 shape groups through cohorts, the single-run path
/// and sequential PyTorch eager, extrapolated to a grid-epoch (all 6,656 runs x 938 steps).
/// One measured shape group: shape, family, MACs per step and sample, then seconds per run-step
/// through a cohort, alone, and in PyTorch eager (when timed).
type Sample = ([i64; 4], Model, f64, f64, f64, Option<f64>);

pub fn run_grid(args: &BenchGridArgs) -> Result<()> {
    let dev = device::parse(&args.device)?;
    let threads = device::cores();
    tch::set_num_threads(threads as i32);
    let cohort: crate::cohort_size::CohortSize = args.cohort.parse().map_err(anyhow::Error::msg)?;
    let free = match dev {
        tch::Device::Cuda(i) => crate::device::cuda_free_bytes(i),
        _ => None,
    };
    let shapes: Vec<[i64; 4]> = if args.shapes.is_empty() {
        vec![[2, 400, 2, 128], [3, 1600, 3, 512], [5, 3200, 5, 1024]]
    } else {
        args.shapes
            .iter()
            .map(|s| parse_shape(s))
            .collect::<Result<_>>()?
    };
    let grid_file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/grid-mnist.toml");
    let grid = crate::config::Experiment::load(&grid_file)?;
    let shape_of = |c: &RunConfig| [c.n_layer_g as i64, c.size_g, c.n_layer_d as i64, c.size_d];
    let images = random_images(dev);
    let python = match &args.python {
        Some(py) => python_rates(py, &shapes, dev, args.steps, args.warmup, threads)?,
        None => vec![],
    };

    // Per sample shape and family: seconds per run-step on each path.
    let mut samples = vec![]; // (shape, model, macs, cohort s/run-step, single s/run-step, pytorch s/run-step)
    for shape in &shapes {
        for model in [Model::Gan, Model::Ebgan] {
            let members: Vec<RunConfig> = grid
                .runs
                .iter()
                .map(|r| r.config.clone())
                .filter(|c| shape_of(c) == *shape && c.model == model)
                .collect();
            if members.is_empty() {
                bail!("shape {shape:?} is not a Table 1 shape group");
            }
            let kk = cohort
                .resolve(&crate::train::CohortKey::of(&members[0]), dev, free)
                .min(members.len());
            eprintln!(
                "timing {model} {shape:?}: a cohort of {kk} of its {} runs, and one run alone",
                members.len()
            );
            let layout = args.optim_layout.resolve(dev);
            let cohort = seconds_per_step(&members[..kk], args.steps, args.warmup, &images, layout)
                / kk as f64;
            let single = seconds_per_step(&members[..1], args.steps, args.warmup, &images, layout);
            let py = python_rate(&python, *shape, model).map(|r| 1.0 / r);
            samples.push((*shape, model, step_macs(&members[0]), cohort, single, py));
        }
    }

    let mut t = String::new();
    writeln!(t, "device: {} ({threads} threads) · --cohort {} · {} timed steps after {} warm-up · batch 64 · optimizer layout {:?}\n", device::describe(dev), args.cohort, args.steps, args.warmup, args.optim_layout.resolve(dev))?;
    writeln!(t, "| shape group | family | MACs/step/sample | cohort run-steps/s | single-run run-steps/s | PyTorch eager run-steps/s | cohort / single |")?;
    writeln!(t, "|---|---|---:|---:|---:|---:|---:|")?;
    for (shape, model, macs, c, s1, py) in &samples {
        writeln!(
            t,
            "| {} | {model} | {:.2e} | {:.1} | {:.1} | {} | {:.2} |",
            shape
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("/"),
            macs,
            1.0 / c,
            1.0 / s1,
            py.map(|p| format!("{:.1}", 1.0 / p))
                .unwrap_or_else(|| "-".into()),
            s1 / c
        )?;
    }

    // Extrapolation: every run of the grid costs 938 steps x seconds per run-step, interpolated in
    // MACs per step between the sample shapes of its family.
    let steps_per_epoch = grid.runs[0].config.steps_per_epoch() as f64;
    let mut totals = [0.0f64; 3];
    let mut have_py = true;
    for r in &grid.runs {
        let c = &r.config;
        let pts = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<Vec<(f64, f64)>> {
            samples
                .iter()
                .filter(|s| s.1 == c.model)
                .map(|s| f(s).map(|v| (s.2, v)))
                .collect()
        };
        let macs = step_macs(c);
        totals[0] += steps_per_epoch * interpolate(&pts(&|s| Some(s.3)).unwrap(), macs);
        totals[1] += steps_per_epoch * interpolate(&pts(&|s| Some(s.4)).unwrap(), macs);
        match pts(&|s| s.5) {
            Some(p) => totals[2] += steps_per_epoch * interpolate(&p, macs),
            None => have_py = false,
        }
    }
    let hours = |s: f64| format!("{:.1} h ({:.0} s)", s / 3600.0, s);
    writeln!(t, "\nGrid-epoch = sum over the {} runs of Table 1 of {steps_per_epoch} steps x seconds per run-step, the latter", grid.runs.len())?;
    writeln!(t, "interpolated log-log in MACs per step between the sample shapes of the run's family (proportional past the ends):\n")?;
    writeln!(t, "| path | grid-epoch |")?;
    writeln!(t, "|---|---:|")?;
    writeln!(
        t,
        "| cohorts (--cohort {}) | {} |",
        args.cohort,
        hours(totals[0])
    )?;
    writeln!(t, "| single-run path | {} |", hours(totals[1]))?;
    if have_py {
        writeln!(t, "| sequential PyTorch eager | {} |", hours(totals[2]))?;
    }
    writeln!(
        t,
        "\nSpeed-up of cohorts over the single-run path: {:.2}x",
        totals[1] / totals[0]
    )?;
    print!("{t}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, t.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_between_and_past_measured_points() {
        let pts = [(1e6, 1e-3), (1e8, 1e-1)];
        // log-log halfway: sqrt(1e-3 * 1e-1) = 1e-2
        assert!((interpolate(&pts, 1e7) - 1e-2).abs() < 1e-12);
        assert!((interpolate(&pts, 2e8) - 2e-1).abs() < 1e-12);
        assert!((interpolate(&pts, 5e5) - 5e-4).abs() < 1e-15);
    }

    #[test]
    fn macs_of_a_small_table1_pair() {
        // G 100-400-784: 40,000 + 313,600; D AE 784-128-784: 100,352 x 2.
        let c = table1_config([2, 400, 2, 128], Model::Ebgan);
        assert_eq!(step_macs(&c), 3.0 * 353_600.0 + 8.0 * 200_704.0);
    }
}
