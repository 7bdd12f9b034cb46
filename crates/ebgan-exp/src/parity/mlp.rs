//! Parity cases of the Table 1 MLP step (train::mlp::Cohort): EBGAN, EBGAN-PT and GAN; Adam and
//! SGD (with and without momentum) mixed in one cohort; dropout and batch norm on; a single run
//! (the addmm path) beside the member-batched ones. Reference: parity/mlp.py.

use super::Export;
use crate::config::{Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::train::mlp::Cohort;
use ebgan_core::{Energy, OptimKind};
use ebgan_models::rng::{normal, stream, Stream};
use serde_json::json;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub struct MlpCase {
    pub name: &'static str,
    pub members: Vec<RunConfig>,
}

fn base(model: Model, seed: u64) -> RunConfig {
    RunConfig {
        model,
        n_layer_g: 3,
        size_g: 32,
        n_layer_d: 3,
        size_d: 24,
        z_dim: 8,
        batch_size: 16,
        // Larger than Table 1's N(0, 0.002) for D, so that 5 steps move every weight visibly.
        init_std_g: 0.3,
        init_std_d: 0.05,
        seed,
        ..Default::default()
    }
}

pub fn cases() -> Vec<MlpCase> {
    let ebgan = |seed| base(Model::Ebgan, seed);
    let gan = |seed| base(Model::Gan, seed);
    vec![
        MlpCase {
            name: "mlp-ebgan-cohort",
            members: vec![
                // Margins near the fakes' energies: the hinge is active on some samples only.
                RunConfig {
                    margin: 11.0,
                    ..ebgan(1)
                },
                RunConfig {
                    margin: 12.0,
                    lr: 2e-3,
                    beta1: 0.9,
                    pulling_away: 0.1,
                    dropout_d: true,
                    ..ebgan(2)
                },
                RunConfig {
                    margin: 10.5,
                    lr: 0.01,
                    optim_d: OptimKind::Sgd,
                    optim_g: OptimKind::Sgd,
                    sgd_momentum: 0.9,
                    pulling_away: 0.3,
                    dropout_d: true,
                    ..ebgan(3)
                },
            ],
        },
        MlpCase {
            name: "mlp-ebgan-pt-single",
            members: vec![RunConfig {
                margin: 11.0,
                pulling_away: 0.1,
                batch_norm: false,
                energy: Energy::Mse,
                optim_g: OptimKind::Sgd,
                lr: 0.05,
                ..ebgan(4)
            }],
        },
        MlpCase {
            name: "mlp-gan-cohort",
            members: vec![
                RunConfig {
                    dropout_d: true,
                    ..gan(5)
                },
                RunConfig {
                    optim_d: OptimKind::Sgd,
                    sgd_momentum: 0.5,
                    lr: 0.02,
                    ..gan(6)
                },
            ],
        },
    ]
}

/// Runs `steps` steps of the case's cohort on `device` with its draws recorded.
pub fn export(case: &MlpCase, steps: usize, device: Device) -> Export {
    let members = &case.members;
    let c = &members[0];
    let k = members.len() as i64;
    let mut cohort = Cohort::new(members, device);
    cohort.record_draws();
    let mut inputs: Vec<(String, Tensor)> = cohort
        .state()
        .into_iter()
        .filter_map(|(n, t)| {
            n.strip_prefix("vars/")
                .map(|n| (format!("init/{n}"), t.copy()))
        })
        .collect();
    let mut ours = BTreeMap::new();
    let margin = Tensor::from_slice(&members.iter().map(|m| m.margin as f32).collect::<Vec<_>>())
        .to_device(device);
    let alive = Tensor::ones([k], (Kind::Bool, device));
    for t in 0..steps {
        let shape = [k, c.batch_size, PIXELS as i64];
        let x = normal(
            &mut stream(members[0].seed, Stream::Data, t as u64 + 1),
            &shape,
            device,
        )
        .tanh();
        let out = cohort.step(&x, &margin, &alive);
        let (noise, masks) = cohort.take_draws();
        assert_eq!(noise.len(), 1, "one noise draw per step");
        inputs.push((format!("x/{t}"), x));
        inputs.push((format!("z/{t}"), noise[0].shallow_clone()));
        for (i, m) in masks.into_iter().enumerate() {
            inputs.push((format!("mask/{t}/{i}"), m));
        }
        ours.insert(format!("out/loss_d/{t}"), out.loss_d);
        ours.insert(format!("out/loss_g/{t}"), out.loss_g);
    }
    let state: BTreeMap<String, Tensor> = cohort.state().into_iter().collect();
    for (n, t) in &state {
        if let Some(n) = n.strip_prefix("vars/") {
            ours.insert(format!("final/{n}"), t.detach().copy());
        }
    }
    for (net, opt, kind_of) in [
        (
            "g.",
            "opt_g",
            (|m: &RunConfig| m.optim_g) as fn(&RunConfig) -> OptimKind,
        ),
        ("d.", "opt_d", |m: &RunConfig| m.optim_d),
    ] {
        for (i, name) in cohort.param_names(net).iter().enumerate() {
            let moment = |which: &str| state.get(&format!("{opt}/{which}.{i}"));
            for (j, m) in members.iter().enumerate() {
                for (which, t) in super::moments(kind_of(m), m.sgd_momentum, moment) {
                    ours.insert(format!("moment/{name}/{which}/{j}"), t.get(j as i64).copy());
                }
            }
        }
    }
    let settings = json!({
        "model": c.model,
        "energy": c.energy,
        "n_layer_g": c.n_layer_g,
        "size_g": c.size_g,
        "n_layer_d": c.n_layer_d,
        "size_d": c.size_d,
        "z_dim": c.z_dim,
        "batch_norm": c.batch_norm,
        "steps": steps,
        "g_params": cohort.param_names("g."),
        "d_params": cohort.param_names("d."),
        "members": members.iter().map(|m| json!({
            "optim_g": m.optim_hyper(m.optim_g),
            "optim_d": m.optim_hyper(m.optim_d),
            "margin": m.margin,
            "pulling_away": m.pulling_away,
            "dropout_p": if m.dropout_d { m.dropout_p } else { 0.0 },
        })).collect::<Vec<_>>(),
    });
    // G normalises after every hidden layer, D after every one but its input layer.
    let unchecked = cohort
        .param_names("")
        .into_iter()
        .filter(|n| {
            c.batch_norm
                && n.ends_with(".bias")
                && (n.starts_with("g.l") || (n.starts_with("d.l") && !n.starts_with("d.l0.")))
        })
        .collect();
    Export {
        name: case.name.to_string(),
        script: "mlp.py",
        settings,
        inputs,
        ours,
        unchecked,
    }
}
