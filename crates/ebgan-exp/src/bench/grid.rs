//! `ebgan bench-grid`: run-steps/s of Table 1 shape groups through cohorts, the single-run path
//! and sequential PyTorch eager, extrapolated to a grid-epoch (all 6,656 runs x one MNIST epoch).

use super::{parse_shape, python_rate, python_rates, random_images, seconds_per_step, OptimLayout};
use crate::config::{Experiment, Family, Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::device;
use crate::train::{CohortKey, CohortSize};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::path::PathBuf;
use tch::Device;

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

/// Seconds per run-step of each sample shape group and family, through a cohort, alone and in
/// PyTorch eager.
fn measure(
    args: &BenchGridArgs,
    grid: &Experiment,
    dev: Device,
    threads: usize,
) -> Result<Vec<Sample>> {
    let cohort: CohortSize = args.cohort.parse().map_err(anyhow::Error::msg)?;
    let free = match dev {
        tch::Device::Cuda(i) => device::cuda_free_bytes(i),
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
                .resolve(&CohortKey::of(&members[0]), dev, free)
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
    Ok(samples)
}

/// `ebgan bench-grid`: the measured table, then the grid-epoch extrapolation.
pub fn run_grid(args: &BenchGridArgs) -> Result<()> {
    let dev = device::parse(&args.device)?;
    let threads = device::cores();
    tch::set_num_threads(threads as i32);
    let grid_file = crate::fsutil::source_file("experiments/grid-mnist.toml");
    let grid = Experiment::load(&grid_file)?;
    let samples = measure(args, &grid, dev, threads)?;

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

    extrapolate(&mut t, args, &grid, &samples)?;
    print!("{t}");
    if let Some(out) = &args.out {
        crate::fsutil::write_atomic(out, t.as_bytes())?;
    }
    Ok(())
}

/// Every run of the grid costs 938 steps x seconds per run-step, interpolated in MACs per step
/// between the sample shapes of its family.
fn extrapolate(
    t: &mut String,
    args: &BenchGridArgs,
    grid: &Experiment,
    samples: &[Sample],
) -> Result<()> {
    let steps_per_epoch = grid.runs[0].config.steps_per_epoch() as f64;
    let mut totals = [0.0f64; 3];
    let mut have_py = true;
    // Table 1 itself: the file's EBGAN-PT runs are an addition to it.
    let table1: Vec<&RunConfig> = grid
        .runs
        .iter()
        .map(|r| &r.config)
        .filter(|c| c.family() != Family::EbganPt)
        .collect();
    for c in &table1 {
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
    writeln!(t, "\nGrid-epoch = sum over the {} runs of Table 1 of {steps_per_epoch} steps x seconds per run-step, the latter", table1.len())?;
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
        let c = crate::bench::table1_config([2, 400, 2, 128], Model::Ebgan);
        assert_eq!(step_macs(&c), 3.0 * 353_600.0 + 8.0 * 200_704.0);
    }
}
