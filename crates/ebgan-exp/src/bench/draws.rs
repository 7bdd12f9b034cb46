//! The random draws of a training step on the tensor path (what a GPU runs), counted and timed
//! (`ebgan bench` prints both tables): through the three trainers, each draw evaluated alone
//! against a window of steps evaluated at once (`ebgan_models::rng::Streams`); and one MLP
//! cohort step at Table 1's largest shape on every path, the host ChaCha streams and upload that
//! training used before its streams moved to the device among them.

use super::transfers::each_trainer;
use anyhow::Result;
use ebgan_models::rng::{
    normal, set_draw_window, step_draws, stream, MemberRng, StepDraws, Stream, Streams,
};
use rand::RngCore;
use std::fmt::Write as _;
use std::time::Instant;
use tch::{Device, Tensor};

/// Table 1's largest shape (5/3200/5/1024: four dropout layers of 1024 in D, three D passes a
/// step), z of 100, batch 64, K = 24 members of which 12 use dropout.
const K: usize = 24;
const B: i64 = 64;
const Z: i64 = 100;
const MASK_LAYERS: i64 = 4 * 3;
const WIDTH: i64 = 1024;

/// The trainers train 7 epochs of 10 steps: windows of 1, 2, 4, ... steps from the third step
/// on, so that steps 33-64 (0-based) are one whole window of 32 (later ones hold 64).
const EPOCHS: usize = 7;
const MEASURED: (u64, u64) = (33, 65);

/// Streams as usual again when dropped (also when a bench fails half-way).
struct Forced;

impl Forced {
    fn window(blocks: i64) -> Forced {
        set_draw_window(Some(blocks));
        Forced
    }
}

impl Drop for Forced {
    fn drop(&mut self) {
        set_draw_window(None);
    }
}

/// Evaluations and tensor ops of the draws of training steps on this thread so far.
#[derive(Clone, Copy, Default)]
struct Count(StepDraws);

impl Count {
    fn now() -> Count {
        Count(step_draws())
    }

    /// Per step, from `self` to `later` over `steps` steps.
    fn per_step(self, later: Count, steps: u64) -> (f64, f64) {
        let (a, b, n) = (self.0, later.0, steps as f64);
        (
            (b.evaluations - a.evaluations) as f64 / n,
            (b.ops - a.ops) as f64 / n,
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Both tables: the trainers' counts and the cohort step's times (3 side-by-side runs).
pub fn table(device: Device) -> Result<String> {
    Ok(format!(
        "{}\n{}",
        trainers(device)?,
        cohort_step(device, 3)?
    ))
}

/// Per trainer: evaluations and tensor ops a step, amortized over a whole window, with each
/// draw evaluated alone and with a GPU's window (the counts are the code path's, the same on
/// every device).
fn trainers(device: Device) -> Result<String> {
    let window = ebgan_models::rng::window_blocks(Device::Cuda(0));
    let mut rows: Vec<(String, [(f64, f64); 2])> = vec![];
    for (mode, blocks) in [0, window].into_iter().enumerate() {
        let _forced = Forced::window(blocks);
        let (mut from, mut per_step) = (Count::default(), (0.0, 0.0));
        let mut trainer = 0;
        each_trainer(device, EPOCHS, &mut |name, done| match name {
            Some(name) => {
                if rows.len() == trainer {
                    rows.push((name.into(), Default::default()));
                }
                rows[trainer].1[mode] = per_step;
                trainer += 1;
            }
            None if done == MEASURED.0 => from = Count::now(),
            None if done == MEASURED.1 => {
                per_step = from.per_step(Count::now(), MEASURED.1 - MEASURED.0)
            }
            None => {}
        })?;
    }
    let mut out = String::new();
    writeln!(out, "Random draws of a training step on the tensor path (what a GPU runs), counted through each trainer over steps {}-{} (one whole window of 32 steps; later windows hold 64): each draw evaluated alone against a GPU's window ({window} blocks), in Philox evaluations and tensor ops that launch work (`rng::step_draws`: a training step's draws; sample sheets are not among them):\n", MEASURED.0, MEASURED.1 - 1)?;
    writeln!(out, "| trainer | draws a step | evaluations a step, alone / window | tensor ops a step, alone / window |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (name, [alone, ahead]) in rows {
        writeln!(
            out,
            "| {name} | {:.0} | {:.0} / {:.3} | {:.0} / {:.1} |",
            alone.0, alone.0, ahead.0, alone.1, ahead.1,
        )?;
    }
    Ok(out)
}

/// The earlier path: host ChaCha normals and mask bytes for all K members, then one upload each.
fn chacha_step(device: Device) {
    let mut noise = stream(1, Stream::Noise, 0);
    let _ = normal(&mut noise, &[K as i64, B, Z], device);
    let mut masks = stream(1, Stream::Dropout, 0);
    for _ in 0..MASK_LAYERS {
        let mut v = vec![0u8; K * (B * WIDTH) as usize];
        masks.fill_bytes(&mut v);
        let _ = ebgan_core::upload(Tensor::from_slice(&v), device);
    }
}

/// An MLP cohort step's streams: the shared window, noise and dropout masks.
struct Cohort {
    streams: Streams,
    noise: MemberRng,
    masks: MemberRng,
}

impl Cohort {
    fn new(device: Device) -> Cohort {
        let seeds: Vec<u64> = (0..K as u64).collect();
        let streams = Streams::new(&seeds, device);
        Cohort {
            noise: streams.stream(Stream::Noise),
            masks: streams.stream(Stream::Dropout),
            streams,
        }
    }

    fn step(&mut self, dropout: &[usize]) {
        self.streams.next_step();
        let _ = self.noise.normal(&[B, Z], 1.0);
        for _ in 0..MASK_LAYERS {
            let _ = self.masks.bytes(&[B, WIDTH], Some(dropout));
        }
    }
}

/// The markdown table of one MLP cohort step at Table 1's largest shape on each path: ms per
/// step (the mean over whole windows once they have grown to their most: 13 steps on a GPU, one
/// on the CPU), median of `reps` side-by-side runs, with evaluations and tensor ops a step.
fn cohort_step(device: Device, reps: usize) -> Result<String> {
    let dropout: Vec<usize> = (0..K).step_by(2).collect();
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let window = ebgan_models::rng::window_blocks(device);
    let per_step_blocks =
        (K as i64 * B * Z / 4) + dropout.len() as i64 * MASK_LAYERS * B * WIDTH / 16;
    // A window's steps once grown: the most its blocks allow (windows double from one step).
    let steps = (window / per_step_blocks).clamp(1, 64) as usize;
    // At least 4 steps a run, whole windows.
    let measured = steps * 4usize.div_ceil(steps);
    let paths: [(&str, Option<i64>); 4] = [
        (
            "host ChaCha + upload (before the Philox streams; masks for all 24)",
            None,
        ),
        ("Philox, host loop (the CPU device's kernel)", None),
        ("Philox, tensor ops, each draw evaluated alone", Some(0)),
        ("Philox, tensor ops, this device's window", Some(window)),
    ];
    let mut cohorts: Vec<Option<Cohort>> = paths
        .iter()
        .enumerate()
        .map(|(i, &(_, window))| {
            let _forced = window.map(Forced::window);
            (i > 0 && (device == Device::Cpu || window.is_some())).then(|| Cohort::new(device))
        })
        .collect();
    // Grow the windows: two steps alone, then windows of 1, 2, 4, ... steps up to `steps`;
    // from `warm` on each window holds `steps` steps.
    let (mut warm, mut size) = (2, 1);
    while size < steps {
        warm += size;
        size = (2 * size).min(steps);
    }
    for cohort in cohorts.iter_mut().flatten() {
        for _ in 0..warm {
            cohort.step(&dropout);
        }
    }
    let mut times = vec![vec![]; paths.len()];
    let mut counts = vec![(0.0, 0.0); paths.len()];
    for _ in 0..reps.max(1) {
        for (i, cohort) in cohorts.iter_mut().enumerate() {
            // The clock starts once the work queued before it (warm-up, the last cohort) has run.
            sync();
            let before = Count::now();
            let start = Instant::now();
            for _ in 0..measured {
                match (i, cohort.as_mut()) {
                    (0, _) => chacha_step(device),
                    (_, Some(c)) => c.step(&dropout),
                    (_, None) => continue,
                }
            }
            sync();
            times[i].push(start.elapsed().as_secs_f64() / measured as f64);
            counts[i] = before.per_step(Count::now(), measured as u64);
        }
    }
    let mut out = String::new();
    writeln!(out, "Random draws of one MLP cohort step at 5/3200/5/1024 (K = {K}, 12 with dropout; B = {B}; {} normals and {} mask bytes per member; this device's window, {window} blocks, holds {steps}) on {}, ms per step over {measured} steps, median of {reps} side-by-side runs:\n", B * Z, MASK_LAYERS * B * WIDTH, crate::device::describe(device))?;
    writeln!(
        out,
        "| path | evaluations a step | tensor ops a step | ms per step |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (i, (name, _)) in paths.iter().enumerate() {
        if i > 0 && cohorts[i].is_none() {
            writeln!(out, "| {name} | - | - | - (CPU only) |")?;
            continue;
        }
        let (evaluations, ops) = counts[i];
        let (evaluations, ops) = match i {
            0 | 1 => ("-".to_string(), "-".to_string()),
            _ => (format!("{evaluations:.2}"), format!("{ops:.1}")),
        };
        writeln!(
            out,
            "| {name} | {evaluations} | {ops} | {:.2} |",
            median(times[i].clone()) * 1e3
        )?;
    }
    Ok(out)
}
