//! The random draws of one MLP cohort step, timed three ways (`ebgan bench` prints them): the
//! host ChaCha streams and upload that training used before its streams moved to the device (every member's
//! masks whenever any member uses dropout), and the Philox streams that replaced them (only
//! dropout members draw masks): the host loop the CPU runs and the tensor ops a GPU runs.

use anyhow::Result;
use ebgan_models::rng::{normal, stream, MemberRng, Stream};
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

/// Median seconds of `reps` calls of `f` (after one unmeasured call).
fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
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

fn philox_step(noise: &mut MemberRng, masks: &mut MemberRng, dropout: &[usize]) {
    let _ = noise.normal(&[B, Z], 1.0);
    for _ in 0..MASK_LAYERS {
        let _ = masks.bytes(&[B, WIDTH], Some(dropout));
    }
}

/// The markdown table: milliseconds per step for each path, median of `reps`.
pub fn table(device: Device, reps: usize) -> Result<String> {
    let seeds: Vec<u64> = (0..K as u64).collect();
    let dropout: Vec<usize> = (0..K).step_by(2).collect();
    let streams = |tensors: bool, window: Option<i64>| {
        let r = |s| MemberRng::new(&seeds, s, device);
        let (mut n, mut m) = (r(Stream::Noise), r(Stream::Dropout));
        if tensors {
            n = n.on_tensor_path();
            m = m.on_tensor_path();
        }
        if let Some(w) = window {
            n = n.with_window_words(w);
            m = m.with_window_words(w);
        }
        (n, m)
    };
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let before = median(reps, || {
        chacha_step(device);
        sync();
    });
    let (mut n, mut m) = streams(false, None);
    let host = median(reps, || {
        philox_step(&mut n, &mut m, &dropout);
        sync();
    });
    // Philox evaluations per step over `reps` + 1 steps (median() makes one unmeasured call).
    let tensor_path = |window: Option<i64>| {
        let (mut n, mut m) = streams(true, window);
        let evaluations = ebgan_core::philox::evaluations();
        let ms = median(reps, || {
            philox_step(&mut n, &mut m, &dropout);
            sync();
        });
        let per_step = (ebgan_core::philox::evaluations() - evaluations) as f64 / (reps + 1) as f64;
        (ms, per_step)
    };
    let (ops, per_step) = tensor_path(None);
    let gpu_window = ebgan_models::rng::window_words(Device::Cuda(0));
    let (ops_gpu_window, per_step_gpu_window) = tensor_path(Some(gpu_window));
    let masks = MASK_LAYERS * B * WIDTH;
    let mut out = String::new();
    writeln!(out, "Random draws of one MLP cohort step at 5/3200/5/1024 (K = {K}, 12 with dropout; B = {B}; {} normals and {masks} mask bytes per member), ms per step, median of {reps}:\n", B * Z)?;
    writeln!(out, "| path | host work per step | ms per step |")?;
    writeln!(out, "|---|---|---:|")?;
    writeln!(
        out,
        "| host ChaCha + upload (before; masks for all {K}) | every draw | {:.2} |",
        before * 1e3
    )?;
    let on = if device == Device::Cpu {
        "none beyond the CPU's own kernel"
    } else {
        "none"
    };
    let host_path = match device {
        Device::Cpu => format!("{:.2}", host * 1e3),
        _ => "- (CPU only)".into(),
    };
    writeln!(
        out,
        "| Philox, host loop (the CPU device's kernel) | {on} | {host_path} |"
    )?;
    writeln!(
        out,
        "| Philox, tensor ops (the GPU's path) | none | {:.2} |",
        ops * 1e3
    )?;
    writeln!(
        out,
        "| Philox, tensor ops, a GPU's window ({gpu_window} words) | none | {:.2} |",
        ops_gpu_window * 1e3
    )?;
    writeln!(
        out,
        "\nPhilox evaluations per step on the tensor path ({} draws a step; {} tensor ops an evaluation, `philox::OPS_PER_EVALUATION`), counted over {} steps: {per_step:.2} with {}'s window, {per_step_gpu_window:.2} with a GPU's (words evaluated ahead and sliced per draw, `rng::Window`).",
        1 + MASK_LAYERS,
        ebgan_core::philox::OPS_PER_EVALUATION,
        reps + 1,
        crate::device::describe(device)
    )?;
    Ok(out)
}
