//! Parity cases of the Table 1 MLP step (train::mlp::Cohort): EBGAN, EBGAN-PT and GAN; Adam and
//! SGD (with and without momentum) mixed in one cohort; dropout and batch norm on; a single run
//! beside the member-batched ones; BEGAN (k_t per member) and MAGAN (D's
//! pretraining epoch, then its margin rule at two epoch ends). Reference: parity/mlp.py.

use super::exercise::{exercised, Exercise};
use super::Export;
use crate::config::{MarginDecay, Model, RunConfig};
use crate::data::mnist::PIXELS;
use crate::train::mlp::{Cohort, Margins};
use ebgan_core::{Energy, OptimKind};
use ebgan_models::rng::{normal, stream, Stream};
use serde_json::json;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub struct MlpCase {
    pub name: &'static str,
    pub members: Vec<RunConfig>,
    /// Adaptive terms the case must reach (checked on our run before comparing).
    pub exercises: Vec<Exercise>,
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
    let mut cases = vec![
        MlpCase {
            name: "mlp-ebgan-cohort",
            exercises: vec![],
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
            exercises: vec![],
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
            name: "mlp-ebgan-margin-decay",
            exercises: vec![Exercise::MarginDecaying],
            // A 5-step run: member 0 holds 12 until step 1 and reaches 10 at step 4; member 1
            // decays from 13 to 9 over the whole run (both near the fakes' energies).
            members: vec![
                RunConfig {
                    margin: 12.0,
                    margin_decay: MarginDecay::Linear,
                    margin_floor: 10.0,
                    margin_decay_start: 0.2,
                    margin_decay_end: 0.8,
                    steps: 5,
                    ..ebgan(13)
                },
                RunConfig {
                    margin: 13.0,
                    margin_decay: MarginDecay::Linear,
                    margin_floor: 9.0,
                    steps: 5,
                    pulling_away: 0.1,
                    ..ebgan(14)
                },
            ],
        },
        MlpCase {
            name: "mlp-gan-cohort",
            exercises: vec![],
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
    ];
    cases.extend(successor_cases());
    cases.push(wgan_gp_case());
    cases
}

/// WGAN-GP: a critic without batch norm, the penalty through a double backward, G on every
/// second step; Adam at its paper's betas beside SGD with momentum, dropout in one critic.
fn wgan_gp_case() -> MlpCase {
    let wgan = |seed| RunConfig {
        wgan_n_critic: 2,
        // The paper's Adam(1e-4, 0, 0.9) moves 5 steps' weights too little to compare.
        lr: 1e-3,
        beta1: 0.0,
        beta2: 0.9,
        ..base(Model::WganGp, seed)
    };
    MlpCase {
        name: "mlp-wgan-gp-cohort",
        exercises: vec![Exercise::PenaltyAndCriticTurns],
        members: vec![
            RunConfig {
                dropout_d: true,
                ..wgan(15)
            },
            RunConfig {
                wgan_lambda: 3.0,
                optim_d: OptimKind::Sgd,
                sgd_momentum: 0.9,
                lr: 0.01,
                ..wgan(16)
            },
        ],
    }
}

/// BEGAN and MAGAN cohorts, each asserting the adaptive terms it reaches.
fn successor_cases() -> Vec<MlpCase> {
    // MAGAN: 2 steps an epoch, one pretraining epoch, then 3 adversarial ones.
    let magan = |seed| RunConfig {
        train_images: 32,
        epochs: 3,
        ..base(Model::Magan, seed)
    };
    vec![
        MlpCase {
            name: "mlp-began-cohort",
            exercises: vec![Exercise::KInside, Exercise::KClipsAtOne],
            // lambda_k such that member 0's k_t moves inside (0, 1) and member 1's hits 1 within
            // the 5 steps (parity::mlp::exercised asserts both); eta = 2 on another case.
            members: vec![
                RunConfig {
                    began_gamma: 1.0,
                    began_lambda_k: 0.2,
                    dropout_d: true,
                    ..base(Model::Began, 7)
                },
                RunConfig {
                    began_gamma: 0.9,
                    began_lambda_k: 5.0,
                    optim_d: OptimKind::Sgd,
                    sgd_momentum: 0.9,
                    lr: 0.01,
                    ..base(Model::Began, 8)
                },
            ],
        },
        MlpCase {
            name: "mlp-began-eta2-single",
            exercises: vec![Exercise::KInside],
            members: vec![RunConfig {
                began_eta: 2.0,
                began_gamma: 1.0,
                began_lambda_k: 0.5,
                ..base(Model::Began, 9)
            }],
        },
        MlpCase {
            name: "mlp-magan-cohort",
            exercises: vec![Exercise::StrictMarginUpdate],
            // Member 0 (strict): its real energy falls below the pretraining mean while its
            // SGD generator's fakes rise, so MAGAN's rule moves its margin; member 1 non-strict.
            members: vec![
                RunConfig {
                    optim_g: OptimKind::Sgd,
                    lr: 0.01,
                    ..magan(11)
                },
                RunConfig {
                    magan_strict: false,
                    dropout_d: true,
                    optim_g: OptimKind::Sgd,
                    lr: 0.01,
                    ..magan(10)
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
    let steps = super::case_steps(c, steps);
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
    // Each member's margin schedule as the trainer reads it (a decay is compared step by step).
    let margins = Margins::new(members, device);
    let decaying = members.iter().any(|m| !m.margin_schedule().is_constant());
    let alive = Tensor::ones([k], (Kind::Bool, device));
    for t in 0..steps {
        let shape = [k, c.batch_size, PIXELS as i64];
        // BEGAN: real images of larger energy than the first fakes', so that gamma L(x) -
        // L(G(z)) > 0 and k_t moves (at the scale of the others it clips at 0 throughout).
        let scale = if c.model == Model::Began { 3.0 } else { 1.0 };
        let x = (normal(
            &mut stream(members[0].seed, Stream::Data, t as u64 + 1),
            &shape,
            device,
        ) * scale)
            .tanh();
        let pretraining = cohort.adaptive().pretraining(t as u64, c.steps_per_epoch());
        let margin = margins.at(t as u64);
        if decaying {
            ours.insert(format!("out/margin/{t}"), margin.copy());
        }
        let out = cohort.train_step(&x, &margin, &alive, t as u64);
        let draws = cohort.take_draws();
        let (noise, masks) = (draws.noise, draws.masks);
        wgan_gp_answers(&cohort, t, &draws.interpolation, &mut inputs, &mut ours);
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
        if let Some(p) = out.penalty {
            ours.insert(format!("out/penalty/{t}"), p);
        }
        for (name, t_) in cohort.adaptive().state() {
            match name.as_str() {
                "adaptive/k" => ours.insert(format!("out/k/{t}"), t_.copy()),
                "adaptive/margin" => ours.insert(format!("out/margin/{t}"), t_.copy()),
                _ => None,
            };
        }
    }
    let pretrain = c.pretrain_steps_over(c.train_images) as usize;
    let exercised = exercised(&case.exercises, members.len(), steps, pretrain, &ours);
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
    let unchecked = cohort
        .param_names("")
        .into_iter()
        .filter(|n| feeds_batch_norm(n, c))
        .collect();
    Export {
        name: case.name.to_string(),
        script: "mlp.py",
        settings,
        inputs,
        ours,
        unchecked,
        exercised,
        // A layer's fan-in (784 pixels into D) or a weight gradient's batch.
        longest_sum: [PIXELS as i64, c.size_g, c.size_d, c.z_dim, c.batch_size]
            .into_iter()
            .max()
            .unwrap_or(1) as usize,
        steps,
    }
}

/// WGAN-GP's step `t`: its interpolation weights go to the reference, whether G took its turn
/// is compared with the reference's own count of critic steps.
fn wgan_gp_answers(
    cohort: &Cohort,
    t: usize,
    interpolation: &[Tensor],
    inputs: &mut Vec<(String, Tensor)>,
    ours: &mut BTreeMap<String, Tensor>,
) {
    let Some(w) = cohort.adaptive().wgan_gp() else {
        return;
    };
    if let Some(eps) = interpolation.first() {
        inputs.push((format!("eps/{t}"), eps.shallow_clone()));
    }
    let k = interpolation.first().map_or(0, |e| e.size()[0] as usize);
    let turn = f32::from(u8::from(w.g_turn(t as u64)));
    ours.insert(
        format!("out/g_turn/{t}"),
        Tensor::from_slice(&vec![turn; k]),
    );
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
        "d_batch_norm": c.mlp_spec(members, PIXELS as i64).d_batch_norm,
        "n_critic": c.wgan_n_critic,
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
            "wgan_lambda": m.wgan_lambda,
            "margin_decay": m.margin_decay,
            "margin_floor": m.margin_floor,
            "margin_decay_start": m.margin_decay_start,
            "margin_decay_end": m.margin_decay_end,
            "total_steps": m.total_steps(),
        })).collect::<Vec<_>>(),
    })
}
/// Whether parameter `name` of a Table 1 cohort is a bias feeding a batch norm (see
/// [`super::Export::unchecked`]): G normalises after every hidden layer, D after every one but
/// its input layer (a WGAN-GP critic has none).
pub(crate) fn feeds_batch_norm(name: &str, c: &RunConfig) -> bool {
    let d_norms = c.model.d_kind().batch_norm();
    c.batch_norm
        && name.ends_with(".bias")
        && (name.starts_with("g.l")
            || (d_norms && name.starts_with("d.l") && !name.starts_with("d.l0.")))
}
