//! A ladder run's part of its checkpoint (train_loop writes the file): the LN's weights and Adam
//! moments and EBGAN-LN's generator and its moments as tensors, the labelled and unlabelled draw
//! orders, and the positions of the corruption-noise (real and fake passes), G-noise and data
//! streams.

use super::{DataDraws, LadderNets};
use crate::train::checkpoint::Loaded;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

pub(super) fn sorted(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Stream positions and where each draw order stands (the orders are tensors `draws/..`).
#[derive(Serialize, Deserialize)]
pub struct Meta {
    noise: u128,
    /// EBGAN-LN's G noise.
    z: Option<u128>,
    /// EBGAN-LN's corruption noise on G's samples.
    #[serde(default)]
    fake_noise: Option<u128>,
    order: u128,
    labelled_pos: usize,
    unlabelled_pos: usize,
    /// The epochs.csv rows so far.
    #[serde(default)]
    epochs: Vec<super::EpochRow>,
}

pub(super) fn save(
    nets: &LadderNets,
    d: &DataDraws,
    epochs: &[super::EpochRow],
) -> (Vec<(String, Tensor)>, Meta) {
    let mut tensors = nets.state();
    for (name, draws) in [("labelled", &d.labelled), ("unlabelled", &d.unlabelled)] {
        let order: Vec<i64> = draws.order.iter().map(|&i| i as i64).collect();
        tensors.push((format!("draws/{name}"), Tensor::from_slice(&order)));
    }
    let meta = Meta {
        noise: nets.noise.positions()[0],
        z: nets.generator.as_ref().map(|g| g.z.positions()[0]),
        fake_noise: nets.generator.as_ref().map(|g| g.corruption.positions()[0]),
        order: d.order.get_word_pos(),
        labelled_pos: d.labelled.pos,
        unlabelled_pos: d.unlabelled.pos,
        epochs: epochs.to_vec(),
    };
    (tensors, meta)
}

pub(super) fn restore(
    ck: &Loaded,
    meta: Meta,
    nets: &mut LadderNets,
    d: &mut DataDraws,
) -> Result<Vec<super::EpochRow>> {
    let bad = |e: String| anyhow::anyhow!("checkpoint {}: {e}", ck.path.display());
    let device = nets.vs.device();
    let group = |p: &str| -> Vec<(String, Tensor)> {
        ck.group(p)
            .into_iter()
            .map(|(n, t)| (n, t.to_device(device)))
            .collect()
    };
    ck.restore("vars", &nets.vs.variables())?;
    nets.opt.load_state(&group("opt")).map_err(bad)?;
    nets.noise.seek(&[meta.noise]);
    if let Some(g) = nets.generator.as_mut() {
        g.vars.load(&group("g")).map_err(bad)?;
        g.opt.load_state(&group("opt_g")).map_err(bad)?;
        g.z.seek(&[meta
            .z
            .ok_or_else(|| bad("no position of G's noise".into()))?]);
        g.corruption.seek(&[meta
            .fake_noise
            .ok_or_else(|| bad("no position of the corruption noise on G's samples".into()))?]);
    }
    d.order.set_word_pos(meta.order);
    for (name, draws, pos) in [
        ("labelled", &mut d.labelled, meta.labelled_pos),
        ("unlabelled", &mut d.unlabelled, meta.unlabelled_pos),
    ] {
        let t = ck
            .tensors
            .get(&format!("draws/{name}"))
            .ok_or_else(|| bad(format!("no `draws/{name}`")))?;
        draws.order = Vec::<i64>::try_from(t)?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        anyhow::ensure!(
            pos <= draws.order.len(),
            "checkpoint {}: `{name}_pos` {pos} is past its draw order",
            ck.path.display()
        );
        draws.pos = pos;
    }
    Ok(meta.epochs)
}
