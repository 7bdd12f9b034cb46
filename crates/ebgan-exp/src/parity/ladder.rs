//! Parity cases of the semi-supervised step (train::ladder::LadderNets::step): the ladder
//! network (LN, Gaussian combinator) and EBGAN-LN (LN as D plus the MLP generator) at the
//! trainer's learning-rate schedule (the decay is on from the second step), with the corruption
//! noise and G's noise handed over; and LN with the "sig" combinator under Adam. Reference:
//! parity/ladder.py.
//!
//! At the ladder's initialisation (the authors' combinator init: a2 = a7 = 1, the rest 0) every
//! decoder layer outputs z_hat = 0, so the mean-path parameters a1..a5 of the combinators of
//! layers 1..5 have an exactly zero gradient (through sigma(0) and u = 0, then a batch
//! normalisation that removes shifts); what is computed is rounding noise, amplified by that
//! normalisation of an all-zero signal (gain 1/sqrt(1e-10)). Those 25 parameters are not
//! compared. With Adam the noise becomes lr-sized steps of any sign that then feed the other
//! layers (measured: V1 1.4% apart after 5 steps, the losses within 5e-6), so the Gaussian
//! cases train with SGD with momentum. The "sig" combinator outputs z_tilde + sigma(z_tilde)
//! there, so only its b0 above the bottom layer has a zero gradient (a per-unit shift that the
//! batch normalisation of u removes): that case trains with Adam, at eps 1e-4, because at 1e-8
//! elements of V1 whose gradients are rounding-sized take lr-sized steps of either sign (V1
//! 1.3% apart after 5 steps, moments 2.3e-4; at 1e-6: 1.8e-3 and 4e-5 with both sides on one
//! MKL kernel path, but 29% and 28% with `ebgan parity` on MKL's Intel path, where our binaries
//! are pinned, against PyTorch on its AMD path, on AMD EPYC; at 1e-4 across those two paths:
//! weights 3.2e-4, moments 2.3e-5).

use super::Export;
use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::train::ladder::{lr_at, LadderNets};
use ebgan_core::OptimKind;
use ebgan_models::ladder::Combinator;
use ebgan_models::rng::{normal, stream, Stream};
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub struct LadderCase {
    pub name: &'static str,
    pub config: RunConfig,
}

/// From the second of 5 steps, the lr decays linearly towards 0 (train::ladder::lr_at).
const DECAY_START: f64 = 0.2;

pub fn cases() -> Vec<LadderCase> {
    let base = RunConfig {
        batch_size: 20,
        optim_d: OptimKind::Sgd,
        optim_g: OptimKind::Sgd,
        sgd_momentum: 0.9,
        lr: 0.002,
        lr_decay_start: DECAY_START,
        beta1: 0.9,
        lambda_0: 1000.0,
        n_layer_g: 3,
        size_g: 64,
        z_dim: 16,
        // Inside G's first samples' energies (0.2485 to 0.2565 in ladder-ebgan-ln): the hinge is
        // active on 60% of them at its first step.
        margin: 0.253,
        ..Default::default()
    };
    vec![
        LadderCase {
            name: "ladder-ln",
            config: RunConfig {
                model: Model::Ladder,
                seed: 11,
                ..base.clone()
            },
        },
        LadderCase {
            name: "ladder-ebgan-ln",
            config: RunConfig {
                model: Model::EbganLn,
                seed: 12,
                g_lr_decay: true,
                // G's own Adam settings (EBGAN-LN's search varies them).
                optim_g: OptimKind::Adam,
                g_lr: Some(0.004),
                g_beta1: Some(0.5),
                // Its own hinge weight, so that a lambda_0 in its place shows.
                hinge_weight: Some(400.0),
                adam_eps: 1e-6,
                ..base.clone()
            },
        },
        LadderCase {
            name: "ladder-sig-adam",
            config: RunConfig {
                model: Model::Ladder,
                seed: 13,
                combinator: Combinator::Sig,
                optim_d: OptimKind::Adam,
                optim_g: OptimKind::Adam,
                // See the module's documentation.
                adam_eps: 1e-4,
                ..base
            },
        },
    ]
}

pub fn export(case: &LadderCase, steps: usize, device: Device) -> Export {
    let c = &RunConfig {
        steps: steps as u64,
        ..case.config.clone()
    };
    let total = c.total_steps();
    let mut nets = LadderNets::new(c, device);
    nets.record_draws();
    let is_var = |n: &str| n.starts_with("vars/") || n.starts_with("g/");
    let mut inputs: Vec<(String, Tensor)> = nets
        .state()
        .into_iter()
        .filter(|(n, _)| is_var(n))
        .map(|(n, t)| (format!("init/{n}"), t.detach().copy()))
        .collect();
    let mut ours = BTreeMap::new();
    let b = c.batch_size;
    for t in 0..steps {
        let mut rng = stream(c.seed, Stream::Data, t as u64 + 1);
        let image = |rng: &mut _| (normal(rng, &[b, PIXELS as i64], device) * 0.5).sigmoid();
        let (xl, xu) = (image(&mut rng), image(&mut rng));
        let labels: Vec<i64> = (0..b).map(|_| rng.random_range(0..10)).collect();
        let yl = Tensor::from_slice(&labels).to_device(device);
        let lr = lr_at(c, t as u64 + 1, total);
        let alive = Tensor::ones([1], (tch::Kind::Bool, device));
        let (out, _) = nets.step(c, (&xl, &yl, &xu), c.margin, lr, &alive);
        let out = out.to_device(tch::Device::Cpu);
        let (noise, z) = nets.take_draws();
        for (name, t_) in [("xl", &xl), ("yl", &yl), ("xu", &xu)] {
            inputs.push((format!("{name}/{t}"), t_.shallow_clone()));
        }
        for (i, n) in noise.into_iter().enumerate() {
            inputs.push((format!("noise/{t}/{i}"), n));
        }
        for (i, n) in z.into_iter().enumerate() {
            inputs.push((format!("z/{t}/{i}"), n));
        }
        ours.insert(format!("out/loss_d/{t}"), out.narrow(0, 0, 1));
        if c.model == Model::EbganLn {
            ours.insert(format!("out/loss_g/{t}"), out.narrow(0, 1, 1));
        }
    }
    let state: BTreeMap<String, Tensor> = nets.state().into_iter().collect();
    // The optimizers' parameter orders: the ladder's sorted by name, G's in creation order.
    let ln_names: Vec<String> = state
        .keys()
        .filter_map(|k| k.strip_prefix("vars/").map(str::to_string))
        .collect();
    let g_names = nets.generator_param_names();
    for (n, t) in &state {
        if is_var(n) {
            ours.insert(format!("final/{n}"), t.detach().to_kind(Kind::Float).copy());
        }
    }
    for (net, opt, list, kind) in [
        ("vars", "opt", &ln_names, c.optim_d),
        ("g", "opt_g", &g_names, c.optim_g),
    ] {
        for (i, name) in list.iter().enumerate() {
            // Adam: m and v; SGD with momentum: its buffer (exp_avg when no member uses Adam).
            let moments: &[(&str, &str)] = match kind {
                OptimKind::Adam => &[("m", "exp_avg"), ("v", "exp_avg_sq")],
                OptimKind::Sgd => &[("buf", "exp_avg")],
            };
            for (which, key) in moments {
                if let Some(m) = state.get(&format!("{opt}/{key}.{i}")) {
                    ours.insert(format!("moment/{net}/{name}/{which}/0"), m.copy());
                }
            }
        }
    }
    let settings = json!({
        "model": c.model,
        "steps": steps,
        "lr_decay_start": c.lr_decay_start,
        "total_steps": total,
        "g_lr_decay": c.g_lr_decay,
        "g_fresh_noise": c.g_fresh_noise,
        "base_lr": c.lr,
        "optim": c.optim_hyper(c.optim_d),
        "optim_g": c.g_optim_hyper(),
        "lambda_0": c.lambda_0,
        "hinge_weight": c.hinge_weight(),
        "margin": c.margin,
        "noise_std": c.ladder_noise,
        "combinator": c.combinator,
        "n_layer_g": c.n_layer_g,
        "ln_params": ln_names,
        "g_params": g_names,
    });
    Export {
        name: case.name.to_string(),
        script: "ladder.py",
        settings,
        inputs,
        ours,
        // G normalises after its hidden layers (parity::Export::unchecked); the combinators'
        // mean paths above the bottom layer (see the module's documentation).
        unchecked: (0..c.n_layer_g - 1)
            .map(|i| format!("g/g.l{i}.bias"))
            .chain(still_combinators(c.combinator))
            .collect(),
        exercised: vec![],
        // The widest layer's fan-in (1000, decoder side) or G's, or a weight gradient's batch.
        longest_sum: ebgan_models::ladder::WIDTHS
            .into_iter()
            .chain([b, c.size_g])
            .max()
            .unwrap_or(1) as usize,
        steps,
    }
}

/// Combinator parameters whose exact gradient is zero at the initialisation (see the module's
/// documentation): Gauss's a1..a5 of layers 1..5, sig's b0 (a1) of layers 1..6.
fn still_combinators(kind: Combinator) -> Vec<String> {
    match kind {
        Combinator::Gauss => (1..=5)
            .flat_map(|l| (1..=5).map(move |i| format!("vars/ln.g{l}.a{i}")))
            .collect(),
        Combinator::Sig => (1..=6).map(|l| format!("vars/ln.g{l}.a1")).collect(),
    }
}
