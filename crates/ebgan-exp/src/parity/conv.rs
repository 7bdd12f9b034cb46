//! Parity cases of the convolutional step (train::conv::ConvGan::train_step): EBGAN-PT
//! (auto-encoder D, pulling-away term), DCGAN (logistic D), BEGAN (k_t compared after every
//! step) and MAGAN (D's pretraining epoch, then its margin rule at epoch ends) at 32x32; EBGAN,
//! DCGAN and the ImageNet G (noise planes) at the paper's 64x64 depths; batch norm in training
//! mode with its running statistics, all at small widths. Reference: parity/conv.py.

use super::exercise::{exercised, Exercise};
use super::Export;
use crate::config::{Model, Network, RunConfig};
use crate::train::conv::{ConvGan, Latent};
use ebgan_core::OptimKind;
use ebgan_models::rng::{normal, stream, Stream};
use serde_json::json;
use std::collections::BTreeMap;
use tch::{Device, Tensor};

pub struct ConvCase {
    pub name: &'static str,
    pub config: RunConfig,
    /// Adaptive terms the case must reach.
    pub exercises: Vec<Exercise>,
}

/// BEGAN: gamma and lambda_k such that k_t moves inside (0, 1) within the 5 steps.
const GAMMA: f64 = 1.0;
const LAMBDA_K: f64 = 0.05;
const MAGAN_SEED: u64 = 10;
/// Between the 64x64 cases' first mean fake energies (43 and 48).
const MARGIN_64: f64 = 46.0;

pub fn cases() -> Vec<ConvCase> {
    let base = RunConfig {
        network: Network::Dcgan,
        // 32: two encoder layers (the second with batch norm), three up-convolutions in G.
        image_size: 32,
        g_base: 4,
        ae_base: 4,
        d_base: 4,
        z_dim: 8,
        batch_size: 8,
        lr: 2e-3,
        init_std_g: 0.1,
        init_std_d: 0.1,
        ..Default::default()
    };
    vec![
        ConvCase {
            name: "conv-ebgan-pt",
            config: RunConfig {
                model: Model::Ebgan,
                pulling_away: 0.1,
                // Inside the fakes' first energies (16 to 26): the hinge is active on some only.
                margin: 21.0,
                seed: 7,
                ..base.clone()
            },
            exercises: vec![],
        },
        ConvCase {
            name: "conv-dcgan",
            config: RunConfig {
                model: Model::Gan,
                seed: 8,
                optim_g: OptimKind::Sgd,
                sgd_momentum: 0.9,
                ..base.clone()
            },
            exercises: vec![],
        },
        // The paper's 64x64 depths at small widths: DCGAN's G with EBGAN's auto-encoder (§4.3)
        // and with DCGAN's D; the ImageNet G with its noise planes (§4.4).
        ConvCase {
            name: "conv-ebgan-64",
            config: RunConfig {
                model: Model::Ebgan,
                margin: MARGIN_64,
                seed: 15,
                image_size: 64,
                // G on SGD: at 64x64 Adam turns G's near-zero gradient elements (rounding
                // noise of either sign) into lr-sized steps, 1-30% of the update apart under
                // ATen's scalar kernels; SGD keeps such noise at rounding size.
                optim_g: OptimKind::Sgd,
                sgd_momentum: 0.9,
                ..base.clone()
            },
            exercises: vec![],
        },
        ConvCase {
            name: "conv-dcgan-64",
            config: RunConfig {
                model: Model::Gan,
                seed: 16,
                image_size: 64,
                ..base.clone()
            },
            exercises: vec![],
        },
        ConvCase {
            name: "conv-imagenet-64",
            config: RunConfig {
                model: Model::Ebgan,
                network: Network::Imagenet,
                margin: MARGIN_64,
                seed: 17,
                image_size: 64,
                // G on SGD: at 64x64 Adam turns G's near-zero gradient elements (rounding
                // noise of either sign) into lr-sized steps, 1-30% of the update apart under
                // ATen's scalar kernels; SGD keeps such noise at rounding size.
                optim_g: OptimKind::Sgd,
                sgd_momentum: 0.9,
                noise_planes: 2,
                ..base.clone()
            },
            exercises: vec![],
        },
        ConvCase {
            name: "conv-began",
            config: RunConfig {
                model: Model::Began,
                began_gamma: GAMMA,
                began_lambda_k: LAMBDA_K,
                seed: 9,
                ..base.clone()
            },
            exercises: vec![Exercise::KInside],
        },
        ConvCase {
            name: "conv-magan",
            // 2 steps an epoch: one pretraining epoch, then 6 adversarial ones.
            config: RunConfig {
                model: Model::Magan,
                train_images: 16,
                epochs: 6,
                seed: MAGAN_SEED,
                optim_g: OptimKind::Sgd,
                ..base
            },
            exercises: vec![Exercise::StrictMarginUpdate],
        },
    ]
}

/// Runs `steps` steps of the case (MAGAN: its whole run, so that epochs end inside it).
pub fn export(case: &ConvCase, steps: usize, device: Device) -> Export {
    let c = &case.config;
    let steps = super::case_steps(c, steps);
    let per_epoch = c.steps_per_epoch();
    let channels = 3;
    let mut gan = ConvGan::new(c, channels, device);
    let is_var = |n: &str| n.starts_with("g/") || n.starts_with("d/");
    let mut inputs: Vec<(String, Tensor)> = gan
        .tensors()
        .into_iter()
        .filter(|(n, _)| is_var(n))
        .map(|(n, t)| (format!("init/{n}"), t.detach().copy()))
        .collect();
    let mut ours = BTreeMap::new();
    for t in 0..steps {
        let side = c.image_size;
        // MAGAN: real images of lower energy than the fakes', so that its rule can move the margin.
        let scale = if c.model == Model::Magan { 0.2 } else { 1.0 };
        let x = (normal(
            &mut stream(c.seed, Stream::Data, t as u64 + 1),
            &[c.batch_size, channels, side, side],
            device,
        ) * scale)
            .tanh();
        let latent = Latent::draw(
            &gan.spec,
            c.batch_size,
            &mut stream(c.seed, Stream::Noise, t as u64),
            device,
        );
        let alive = Tensor::ones([1], (tch::Kind::Bool, device));
        let (stats, _) = gan.train_step(&x, &latent, c.margin, t as u64, per_epoch, &alive);
        inputs.push((format!("x/{t}"), x));
        inputs.push((format!("z/{t}"), latent.z.shallow_clone()));
        for (i, p) in latent.planes.iter().enumerate() {
            inputs.push((format!("planes/{t}/{i}"), p.shallow_clone()));
        }
        ours.insert(format!("out/loss_d/{t}"), stats.get(0).view([1]));
        ours.insert(format!("out/loss_g/{t}"), stats.get(1).view([1]));
        for (name, v) in gan.adaptive().state() {
            match name.as_str() {
                "adaptive/k" => ours.insert(format!("out/k/{t}"), v.copy()),
                "adaptive/margin" => ours.insert(format!("out/margin/{t}"), v.copy()),
                _ => None,
            };
        }
    }
    let pretrain = c.pretrain_steps_over(c.train_images) as usize;
    let exercised = exercised(&case.exercises, 1, steps, pretrain, &ours);
    let state: BTreeMap<String, Tensor> = gan.tensors().into_iter().collect();
    for (n, t) in &state {
        if is_var(n) {
            ours.insert(format!("final/{n}"), t.detach().copy());
        }
    }
    let (g_names, d_names) = gan.param_names();
    for (net, opt, names, kind) in [
        ("g", "opt_g", &g_names, c.optim_g),
        ("d", "opt_d", &d_names, c.optim_d),
    ] {
        for (i, name) in names.iter().enumerate() {
            let moment = |which: &str| state.get(&format!("{opt}/{which}.{i}"));
            for (which, t) in super::moments(kind, c.sgd_momentum, moment) {
                ours.insert(format!("moment/{net}/{name}/{which}/0"), t.copy());
            }
        }
    }
    let settings = json!({
        "model": c.model,
        "energy": c.energy,
        "steps": steps,
        "margin": c.margin,
        "pulling_away": c.pulling_away,
        "began_eta": c.began_eta,
        "began_gamma": c.began_gamma,
        "began_lambda_k": c.began_lambda_k,
        "magan_strict": c.magan_strict,
        "steps_per_epoch": per_epoch,
        "pretrain_steps": pretrain,
        "optim_g": c.optim_hyper(c.optim_g),
        "optim_d": c.optim_hyper(c.optim_d),
        "g_params": g_names,
        "d_params": d_names,
        "arch": gan.spec.arch,
        "noise_inputs": gan.spec.noise_sides().len(),
        "encoder_layers": gan.spec.encoder_widths().len(),
        "g_layers": gan.spec.g_widths().len(),
        // DCGAN's D halves the side down to 4x4: one conv{i} per halving.
        "d_layers": d_names.iter().filter(|n| n.starts_with("conv")).count(),
    });
    Export {
        name: case.name.to_string(),
        script: "conv.py",
        settings,
        inputs,
        ours,
        unchecked: vec![],
        exercised,
        // A weight gradient of G's last up-convolution adds over every output pixel of the batch.
        longest_sum: (c.batch_size * c.image_size * c.image_size) as usize,
        steps,
    }
}
