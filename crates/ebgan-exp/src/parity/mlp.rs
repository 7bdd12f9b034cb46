//! Parity cases of the Table 1 MLP step (train::mlp::Cohort): EBGAN, EBGAN-PT and GAN; Adam and
//! SGD (with and without momentum) mixed in one cohort; dropout and batch norm on; a single run
//! (the addmm path) beside the member-batched ones; BEGAN (k_t per member) and MAGAN (D's
//! pretraining epoch, then its margin rule at two epoch ends). Reference: parity/mlp.py.

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
    // MAGAN: 2 steps an epoch, one pretraining epoch, then 3 adversarial ones.
    let magan = |seed| RunConfig {
        train_images: 32,
        epochs: 3,
        ..base(Model::Magan, seed)
    };
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
        MlpCase {
            name: "mlp-began-cohort",
            // lambda_k large enough that k_t leaves 0 within the 5 steps; eta = 2 on one case.
            members: vec![
                RunConfig {
                    began_lambda_k: 0.05,
                    dropout_d: true,
                    ..base(Model::Began, 7)
                },
                RunConfig {
                    began_gamma: 0.9,
                    began_lambda_k: 0.2,
                    optim_d: OptimKind::Sgd,
                    sgd_momentum: 0.9,
                    lr: 0.01,
                    ..base(Model::Began, 8)
                },
            ],
        },
        MlpCase {
            name: "mlp-began-eta2-single",
            members: vec![RunConfig {
                began_eta: 2.0,
                began_lambda_k: 0.5,
                ..base(Model::Began, 9)
            }],
        },
        MlpCase {
            name: "mlp-magan-cohort",
            members: vec![
                RunConfig {
                    dropout_d: true,
                    ..magan(10)
                },
                RunConfig {
                    magan_strict: false,
                    optim_g: OptimKind::Sgd,
                    lr: 0.01,
                    ..magan(11)
                },
            ],
        },
    ]
}

/// Runs `steps` steps of the case's cohort on `device` with its draws recorded (MAGAN cases:
/// their whole run, pretraining included, so that epochs end inside it).
pub fn export(case: &MlpCase, steps: usize, device: Device) -> Export {
    let members = &case.members;
    let c = &members[0];
    let steps = match c.model {
        Model::Magan => c.total_steps() as usize,
        _ => steps,
    };
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
        let pretraining = cohort.adaptive().pretraining(t as u64, c.steps_per_epoch());
        let out = cohort.train_step(&x, &margin, &alive, t as u64);
        let (noise, masks) = cohort.take_draws();
        assert_eq!(
            noise.len(),
            usize::from(!pretraining),
            "one noise draw per adversarial step, none while D pretrains"
        );
        inputs.push((format!("x/{t}"), x));
        if let Some(z) = noise.first() {
            inputs.push((format!("z/{t}"), z.shallow_clone()));
        }
        for (i, m) in masks.into_iter().enumerate() {
            inputs.push((format!("mask/{t}/{i}"), m));
        }
        ours.insert(format!("out/loss_d/{t}"), out.loss_d);
        ours.insert(format!("out/loss_g/{t}"), out.loss_g);
        for (name, t_) in cohort.adaptive().state() {
            match name.as_str() {
                "adaptive/k" => ours.insert(format!("out/k/{t}"), t_.copy()),
                "adaptive/margin" => ours.insert(format!("out/margin/{t}"), t_.copy()),
                _ => None,
            };
        }
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
    let settings = settings(members, steps, &cohort);
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

/// What the reference needs of the case besides its tensors.
fn settings(members: &[RunConfig], steps: usize, cohort: &Cohort) -> serde_json::Value {
    let c = &members[0];
    json!({
        "model": c.model,
        "energy": c.energy,
        "n_layer_g": c.n_layer_g,
        "size_g": c.size_g,
        "n_layer_d": c.n_layer_d,
        "size_d": c.size_d,
        "z_dim": c.z_dim,
        "batch_norm": c.batch_norm,
        "steps": steps,
        "began_eta": c.began_eta,
        "steps_per_epoch": c.steps_per_epoch(),
        "pretrain_steps": c.pretrain_steps_over(c.train_images),
        "g_params": cohort.param_names("g."),
        "d_params": cohort.param_names("d."),
        "members": members.iter().map(|m| json!({
            "optim_g": m.optim_hyper(m.optim_g),
            "optim_d": m.optim_hyper(m.optim_d),
            "margin": m.margin,
            "pulling_away": m.pulling_away,
            "dropout_p": if m.dropout_d { m.dropout_p } else { 0.0 },
            "began_gamma": m.began_gamma,
            "began_lambda_k": m.began_lambda_k,
            "magan_strict": m.magan_strict,
        })).collect::<Vec<_>>(),
    })
}
