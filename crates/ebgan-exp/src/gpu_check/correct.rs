//! Stage 2: correct on the device. The PyTorch parity cases (every case of parity's lists, on
//! the device, against PyTorch on the same device); a mixed cohort against each member trained
//! alone; a convolutional run straight against stopped + checkpointed + resumed; one ladder step
//! per ladder case; the packed and per-tensor optimizer layouts. Tiny sizes on the CPU, Table 1
//! sizes on CUDA.

use super::{sandbox, Ctx, Outcome};
use crate::config::{Dataset, Model, Network, RunConfig};
use crate::data::image_set::ImageSet;
use crate::data::mnist::PIXELS;
use crate::parity;
use crate::results::RunOutcome;
use crate::scoring::Scorer;
use crate::train::conv::{train_run, ConvRun, CHECKPOINT};
use crate::train::mlp::{train_cohort, Cohort, CohortRun, DeviceImages};
use crate::train::{checkpoint, Stop, Trained};
use anyhow::{bail, Result};
use ebgan_core::{Layout, OptimKind};
use rand::{RngCore, SeedableRng};
use std::path::PathBuf;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

pub fn run(ctx: &mut Ctx) {
    let device = ctx.device;
    let big = ctx.cuda();
    // Whether a family's later log windows are compared (cohort_vs_alone says why not).
    for (model, later_windows) in [
        (Model::Ebgan, true),
        (Model::Gan, true),
        (Model::Began, true),
        (Model::Magan, false),
        (Model::WganGp, false),
    ] {
        ctx.timed(&format!("correct.cohort-vs-alone.{model}"), |_| {
            cohort_vs_alone(model, later_windows, big, device)
        });
    }
    ctx.timed("correct.conv-checkpoint-resume", |c| {
        // Equal bits need the same convolution kernels in both trainings: no benchmark search.
        let _held = crate::precision::DeterministicCudnn::hold()?;
        let (ok, d) = conv_round_trip(big, c.device, &c.out)?;
        Ok((ok, format!("{d}; cuDNN deterministic")))
    });
    ctx.timed("correct.ladder-step", |_| ladder_step(device));
    for model in [Model::Ebgan, Model::Gan] {
        ctx.timed(&format!("correct.optim-layouts.{model}"), |_| {
            layouts_agree(model, big, device)
        });
    }
    // Last: the slowest (a python start per case).
    parity_cases(ctx);
}

/// Every parity case (the lists in parity/, so cases added there are picked up) and the
/// FID-Inception network, one line each.
fn parity_cases(ctx: &mut Ctx) {
    if ctx.skip_parity {
        let why = "skipped: --skip-parity (the test suite runs these cases by itself)";
        return ctx.line("parity", Outcome::Skipped, why);
    }
    let out = ctx.out.join("parity");
    let device = ctx.device;
    // A device machine's python has pytorch-fid and torch-fidelity only when carried: a case
    // that needs a missing one is skipped, not failed (it says nothing about our code).
    let absent = sandbox::absent(&ctx.python);
    for (name, build) in parity::exporters(device, 5) {
        // Each case built under its own guard: a panic fails that case only.
        let e = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
            Ok(e) => e,
            Err(p) => {
                ctx.line(
                    &format!("parity.{name}"),
                    Outcome::Fail,
                    super::panic_text(&p),
                );
                continue;
            }
        };
        let missing: Vec<&str> = sandbox::packages(e.script)
            .iter()
            .copied()
            .filter(|m| absent.contains(m))
            .collect();
        if !missing.is_empty() {
            let why = format!("skipped: {} not importable in this python (carry the wheels: `just gpu-pack`; the test suite runs this case)", missing.join(", "));
            ctx.line(&format!("parity.{}", e.name), Outcome::Skipped, why);
            continue;
        }
        let (out, py) = (out.clone(), ctx.python.clone());
        // The training-step references (parity/common.py's load_case) run on our device.
        let on = crate::device::describe(device);
        std::env::set_var("EBGAN_PARITY_DEVICE", &on);
        ctx.timed(&format!("parity.{}", e.name), |_| {
            let (ok, d) = summarise(parity::check(&e, &out, &py)?)?;
            let theirs = match e.script {
                "scores.py" => "cpu (numpy)",
                _ => on.as_str(),
            };
            Ok((ok, format!("{d}; ours on {on}, the reference on {theirs}")))
        });
    }
    if !ctx.cuda() {
        let why = "skipped: on the CPU the FID-Inception case (about a minute) is left to the test suite's parity test";
        return ctx.line("parity.fid-inception", Outcome::Skipped, why);
    }
    let py = ctx.python.clone();
    if absent.contains(&"pytorch_fid") {
        let why = "skipped: pytorch-fid is not installed in this python (carry it: `just gpu-pack` puts its wheel in .device/wheels)";
        return ctx.line("parity.fid-inception", Outcome::Skipped, why);
    }
    ctx.timed("parity.fid-inception", |_| {
        summarise(parity::inception::check(&out, &py, device)?)
    });
}

/// Pass when every group passes; the worst error of each group.
fn summarise(checks: Vec<parity::Check>) -> Result<(bool, String)> {
    if checks.is_empty() {
        bail!("no quantity compared");
    }
    let detail: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{} {:.1e}{} (tol {:.0e})",
                c.group,
                c.worst,
                if c.passed() { "" } else { " FAIL" },
                c.tolerance
            )
        })
        .collect();
    Ok((checks.iter().all(parity::Check::passed), detail.join(", ")))
}

/// 256 synthetic images of 4 classes (a random byte pattern each): structure to learn.
fn images(device: Device) -> DeviceImages {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut protos = vec![0u8; 4 * PIXELS];
    rng.fill_bytes(&mut protos);
    let data: Vec<u8> = (0..1024)
        .flat_map(|i| protos[(i % 4) * PIXELS..(i % 4 + 1) * PIXELS].to_vec())
        .collect();
    DeviceImages::new(&data, 1024, device)
}

/// A small run of `model` (Table 1's smallest shape on CUDA), 2 epochs (8 or 16 steps each).
fn config(model: Model, seed: u64, big: bool) -> RunConfig {
    let (g, d, b, n) = match big {
        true => (400, 128, 64, 1024),
        false => (32, 16, 16, 128),
    };
    RunConfig {
        model,
        n_layer_g: if big { 2 } else { 3 },
        size_g: g,
        n_layer_d: if big { 2 } else { 3 },
        size_d: d,
        batch_size: b,
        train_images: n,
        epochs: 2,
        score_samples: 64,
        seed,
        ..Default::default()
    }
}

/// A cohort of one family with mixed optimisers, learning rates, dropout and (EBGAN) PT; the
/// margin, which BEGAN and MAGAN do not use, differs too.
fn mixed(model: Model, big: bool) -> Vec<RunConfig> {
    let c = |seed| config(model, seed, big);
    vec![
        RunConfig {
            dropout_d: true,
            ..c(1)
        },
        RunConfig {
            lr: 0.01,
            optim_d: OptimKind::Sgd,
            sgd_momentum: 0.9,
            ..c(2)
        },
        RunConfig {
            lr: 1e-4,
            optim_g: OptimKind::Sgd,
            margin: 3.0,
            ..c(3)
        },
        RunConfig {
            pulling_away: if model == Model::Ebgan { 0.1 } else { 0.0 },
            ..c(4)
        },
    ]
}

/// Trains `members` as one cohort in temporary run folders.
pub fn train_members(
    members: &[RunConfig],
    data: &DeviceImages,
    scorer: &Scorer,
) -> Result<Vec<RunOutcome>> {
    let root = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = (0..members.len())
        .map(|i| root.path().join(format!("run-{i}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let ids: Vec<String> = members.iter().map(RunConfig::run_id).collect();
    let stop = Stop::never();
    let run = CohortRun {
        members,
        ids: &ids,
        dirs: &dirs,
        data,
        scorer,
        stop: &stop,
        checkpoint_every: Duration::MAX,
    };
    match train_cohort(&run, &mut |_, _| {})? {
        Trained::Done(outcomes) => Ok(outcomes),
        other => bail!("nothing asked it to stop, yet: {other:?}"),
    }
}

/// Largest relative difference of the (D, G) losses of two loss logs over the first `n`
/// windows; infinite when they have other windows.
fn log_diff(a: &RunOutcome, b: &RunOutcome, n: usize) -> f64 {
    if a.log.len() != b.log.len() || a.log.is_empty() {
        return f64::INFINITY;
    }
    let rel = |x: f64, y: f64| (x - y).abs() / x.abs().max(1.0);
    a.log
        .iter()
        .zip(&b.log)
        .take(n)
        .map(|(x, y)| rel(x.loss_d, y.loss_d).max(rel(x.loss_g, y.loss_g)))
        .fold(0.0, f64::max)
}

/// Each member of a mixed cohort against itself trained alone: the first log window within
/// 1e-4, and (members without PT, whose gradient amplifies float reordering chaotically; see
/// train::mlp's tests) every window within 1e-3.
fn cohort_vs_alone(
    model: Model,
    later_windows: bool,
    big: bool,
    device: Device,
) -> Result<(bool, String)> {
    let members = mixed(model, big);
    let data = images(device);
    let scorer = Scorer::untrained(device);
    let cohort = train_members(&members, &data, &scorer)?;
    // The same members in the reverse order: each member must end where it did, whoever its
    // neighbours are (nothing crosses members; a leak moves losses by far more than 1e-4).
    let reversed: Vec<RunConfig> = members.iter().rev().cloned().collect();
    let other = train_members(&reversed, &data, &scorer)?;
    let (mut first, mut whole, mut moved) = (0.0f64, 0.0f64, 0.0f64);
    for (i, (m, inside)) in members.iter().zip(&cohort).enumerate() {
        let alone = &train_members(std::slice::from_ref(m), &data, &scorer)?[0];
        first = first.max(log_diff(alone, inside, 1));
        // Alone (addmm) and in a cohort (bmm) sum in other orders, and under load libtorch's
        // CPU kernels may split a product over fewer threads. PT (dividing by tiny code norms)
        // and MAGAN (a pretraining epoch more, then a margin at the real energy, where the
        // hinge's gradient switches) amplify that past 1e-3 within two epochs: their later
        // windows are not compared. WGAN-GP's double backward has not met a GPU yet: its first
        // window only, until a session measures how far its later ones move.
        let windows = match m.pulling_away == 0.0 && later_windows {
            true => usize::MAX,
            false => 1,
        };
        moved = moved.max(log_diff(inside, &other[members.len() - 1 - i], windows));
        if windows == usize::MAX {
            whole = whole.max(log_diff(alone, inside, windows));
        }
    }
    let ok = first <= 1e-4 && whole <= 1e-3 && moved <= 1e-4;
    Ok((
        ok,
        format!(
            "K = {}, {} steps: worst first-window difference {first:.1e} (tol 1e-4), worst over all windows {whole:.1e} (tol 1e-3, members without PT, not MAGAN), in the cohort reversed {moved:.1e} (tol 1e-4, the same windows)",
            members.len(),
            members[0].total_steps()
        ),
    ))
}

/// EBGAN-PT 16x16 at tiny widths on the CPU, 64x64 at half the paper's widths on CUDA.
fn conv_config(big: bool) -> RunConfig {
    let (side, base, batch, steps) = match big {
        true => (64, 32, 32, 40),
        false => (16, 4, 4, 8),
    };
    RunConfig {
        model: Model::Ebgan,
        network: Network::Dcgan,
        image_size: side,
        g_base: base,
        ae_base: base,
        d_base: base,
        batch_size: batch,
        lr: 0.0002,
        init_std_d: 0.02,
        margin: 20.0,
        pulling_away: 0.1,
        steps,
        sample_every: 1_000_000,
        ..Default::default()
    }
}

/// N steps straight against N/2, a stop (checkpoint), and a resumed N/2: every tensor of the
/// final checkpoints (weights, batch-norm statistics, optimizer moments) and every loss equal.
fn conv_round_trip(big: bool, device: Device, out: &std::path::Path) -> Result<(bool, String)> {
    let c = conv_config(big);
    let side = c.image_size;
    let n = 256;
    let mut bytes = vec![0u8; n * (side * side * 3) as usize];
    rand_chacha::ChaCha8Rng::seed_from_u64(3).fill_bytes(&mut bytes);
    let data = ImageSet::from_bytes(&bytes, n, side, 3, Dataset::Celeba, device);
    let root = tempfile::tempdir_in(out)?;
    // The first step each training reports (a resumed one: the checkpoint's step).
    let first = std::cell::Cell::new(None);
    let train = |dir: PathBuf, stop_at: Option<u64>| -> Result<Option<RunOutcome>> {
        first.set(None);
        std::fs::create_dir_all(&dir)?;
        let stop = Stop::never();
        let run = ConvRun {
            config: &c,
            id: "conv",
            data: &data,
            dir: &dir,
            scorer: None,
            fid: None,
            stop: &stop,
            checkpoint_every: Duration::MAX,
        };
        let trained = train_run(&run, device, &mut |s, _| {
            if first.get().is_none() {
                first.set(Some(s));
            }
            if Some(s) == stop_at {
                stop.request()
            }
        })?;
        Ok(match trained {
            Trained::Done(mut outcomes) => Some(outcomes.remove(0)),
            Trained::Stopped { .. } => None,
        })
    };
    let (a, b) = (root.path().join("straight"), root.path().join("resumed"));
    let straight = train(a.clone(), None)?.expect("not stopped");
    if train(b.clone(), Some(c.steps / 2))?.is_some() {
        bail!("the run did not stop at step {}", c.steps / 2);
    }
    let resumed = train(b.clone(), None)?.expect("not stopped");
    let resumed_at = first.get();
    let (ta, tb) = (
        checkpoint::load(&a.join(CHECKPOINT))?.tensors,
        checkpoint::load(&b.join(CHECKPOINT))?.tensors,
    );
    let differing: Vec<&String> = ta
        .iter()
        .filter(|(k, t)| tb.get(*k).is_none_or(|u| !t.equal(u)))
        .map(|(k, _)| k)
        .collect();
    let same_log = straight.log == resumed.log;
    Ok((
        differing.is_empty() && ta.len() == tb.len() && same_log && resumed_at == Some(c.steps / 2),
        format!(
            "{} steps, {side}x{side}, stop at {}, resumed at {}: {} tensors, {} differ{}; losses {}",
            c.steps,
            c.steps / 2,
            resumed_at.map_or("-".into(), |s| s.to_string()),
            ta.len(),
            differing.len(),
            differing
                .first()
                .map(|k| format!(" (first: {k})"))
                .unwrap_or_default(),
            if same_log { "identical" } else { "DIFFER" }
        ),
    ))
}

/// One training step of every ladder parity case (LN and EBGAN-LN): its losses finite.
fn ladder_step(device: Device) -> Result<(bool, String)> {
    let cases = parity::ladder::cases();
    let mut bad = vec![];
    for case in &cases {
        let e = parity::ladder::export(case, 1, device);
        let losses: Vec<&Tensor> = e
            .ours
            .iter()
            .filter(|(k, _)| k.starts_with("out/"))
            .map(|(_, t)| t)
            .collect();
        let finite = !losses.is_empty()
            && losses
                .iter()
                .all(|t| bool::try_from(t.isfinite().all()).unwrap_or(false));
        if !finite {
            bad.push(case.name);
        }
    }
    Ok((
        bad.is_empty() && !cases.is_empty(),
        format!(
            "{} ladder case(s), one step each; non-finite losses: {}",
            cases.len(),
            if bad.is_empty() {
                "none".into()
            } else {
                bad.join(", ")
            }
        ),
    ))
}

/// The same mixed cohort with each optimizer layout, 5 steps on the same batches: the losses of
/// every step, and every weight and moment but those of biases feeding a batch norm, within 1e-6
/// of the largest magnitude (bit-identical on the CPU). Those biases' exact gradient is 0; what is
/// computed is rounding noise that Adam scales up to steps of about lr, so their worst difference
/// is reported, not judged (parity::Export::unchecked).
fn layouts_agree(model: Model, big: bool, device: Device) -> Result<(bool, String)> {
    let members = mixed(model, big);
    let data = images(device);
    let (k, b) = (members.len() as i64, members[0].batch_size);
    let state = |layout| {
        let mut cohort = Cohort::with_layout(&members, device, layout);
        let margin = Tensor::full([k], 10.0, (Kind::Float, device));
        let mut alive = Tensor::ones([k], (Kind::Bool, device));
        let mut losses = vec![];
        for s in 0..5 {
            let idx: Vec<i64> = (0..k * b).map(|i| (i * 7 + s * 3) % 1024).collect();
            let x = data.batch(&Tensor::from_slice(&idx).to_device(device), k, b);
            let out = cohort.step(&x, &margin, &alive);
            losses.push((
                format!("losses/{s}"),
                Tensor::stack(&[out.loss_d, out.loss_g], 0),
            ));
            alive = out.alive;
        }
        let mut state = cohort.state();
        state.extend(losses);
        state
    };
    let (per_tensor, packed) = (state(Layout::PerTensor), state(Layout::Packed));
    let packed: std::collections::HashMap<String, Tensor> = packed.into_iter().collect();
    // State names: `vars/<param>`, and `opt_g/<moment>.<i>` for G's i-th parameter (D's alike).
    let named = Cohort::with_layout(&members, Device::Cpu, Layout::PerTensor);
    let (g, d) = (named.param_names("g."), named.param_names("d."));
    let param = |name: &str| -> Option<String> {
        let (group, rest) = name.split_once('/')?;
        let index = || rest.rsplit_once('.')?.1.parse::<usize>().ok();
        match group {
            "vars" => Some(rest.to_string()),
            "opt_g" => g.get(index()?).cloned(),
            "opt_d" => d.get(index()?).cloned(),
            _ => None,
        }
    };
    let (mut worst, mut at, mut missing) = (0.0f64, String::new(), 0);
    let mut noise = 0.0f64;
    for (name, t) in &per_tensor {
        let Some(u) = packed.get(name) else {
            missing += 1;
            continue;
        };
        let (t, u) = (t.to_kind(Kind::Double), u.to_kind(Kind::Double));
        let scale = f64::try_from(t.abs().max())?.max(1e-30);
        let err = f64::try_from((&t - &u).abs().max())? / scale;
        let err = if err.is_finite() { err } else { f64::INFINITY };
        let bn_fed =
            param(name).is_some_and(|p| crate::parity::mlp::feeds_batch_norm(&p, &members[0]));
        if bn_fed {
            noise = noise.max(err);
        } else if err > worst || at.is_empty() {
            (worst, at) = (err, name.clone());
        }
    }
    Ok((
        worst <= 1e-6 && missing == 0 && !per_tensor.is_empty(),
        format!(
            "K = {k}, 5 steps: {} tensors with the losses, {missing} missing in the packed state, worst relative difference {worst:.1e} at {at} (tol 1e-6); batch-norm-fed biases (not judged) {noise:.1e}",
            per_tensor.len()
        ),
    ))
}
