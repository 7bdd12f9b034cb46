//! Parity cases of the convolutional step (train::conv::ConvGan): EBGAN-PT (auto-encoder D,
//! pulling-away term) and DCGAN (logistic D), Adam, batch norm in training mode with its running
//! statistics, at a small width and side. Reference: parity/conv.py.

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
}

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
        },
        ConvCase {
            name: "conv-dcgan",
            config: RunConfig {
                model: Model::Gan,
                seed: 8,
                optim_g: OptimKind::Sgd,
                sgd_momentum: 0.9,
                ..base
            },
        },
    ]
}

pub fn export(case: &ConvCase, steps: usize, device: Device) -> Export {
    let c = &case.config;
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
        let x = normal(
            &mut stream(c.seed, Stream::Data, t as u64 + 1),
            &[c.batch_size, channels, side, side],
            device,
        )
        .tanh();
        let latent = Latent::draw(
            &gan.spec,
            c.batch_size,
            &mut stream(c.seed, Stream::Noise, t as u64),
            device,
        );
        let stats = gan.step(&x, &latent, c.margin);
        inputs.push((format!("x/{t}"), x));
        inputs.push((format!("z/{t}"), latent.z.shallow_clone()));
        ours.insert(format!("out/loss_d/{t}"), stats.get(0).view([1]));
        ours.insert(format!("out/loss_g/{t}"), stats.get(1).view([1]));
    }
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
        "optim_g": c.optim_hyper(c.optim_g),
        "optim_d": c.optim_hyper(c.optim_d),
        "g_params": g_names,
        "d_params": d_names,
        "encoder_layers": gan.spec.encoder_widths().len(),
        "g_layers": gan.spec.g_widths().len(),
        // DCGAN's D halves the side down to 4x4 as G doubles it up from there.
        "d_layers": gan.spec.g_widths().len(),
    });
    Export {
        name: case.name.to_string(),
        script: "conv.py",
        settings,
        inputs,
        ours,
        unchecked: vec![],
        exercised: vec![],
    }
}
