//! A ladder run's checkpoint (`ladder.safetensors` in its folder): the LN's weights and Adam
//! moments, EBGAN-LN's generator and its moments, the dropout / noise / data stream positions,
//! the labelled and unlabelled draw orders, and the loss log with its open window.

use super::{LadderNets, LadderProgress, LadderRun, CHECKPOINT};
use crate::train::checkpoint;
use anyhow::{Context, Result};
use std::collections::HashMap;
use tch::{nn, Tensor};

pub(super) fn sorted(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn position(p: u128) -> String {
    p.to_string()
}

pub(super) fn save(run: &LadderRun, nets: &LadderNets, at: &LadderProgress) -> Result<()> {
    let mut tensors = nets.state();
    let mut meta = HashMap::from([
        ("run_id".to_string(), run.id.to_string()),
        ("step".to_string(), at.step.to_string()),
        ("window".to_string(), at.window.to_string()),
        ("sums".to_string(), serde_json::to_string(&at.sums)?),
        ("log".to_string(), serde_json::to_string(&at.log)?),
        ("noise".to_string(), position(nets.noise.positions()[0])),
        ("order".to_string(), position(at.order.get_word_pos())),
    ]);
    for (name, d) in [("labelled", &at.labelled), ("unlabelled", &at.unlabelled)] {
        let order: Vec<i64> = d.order.iter().map(|&i| i as i64).collect();
        tensors.push((format!("draws/{name}"), Tensor::from_slice(&order)));
        meta.insert(format!("{name}_pos"), d.pos.to_string());
    }
    if let Some(g) = &nets.generator {
        meta.insert("z".to_string(), position(g.z.positions()[0]));
    }
    checkpoint::save(&run.dir.join(CHECKPOINT), &tensors, meta)
}

/// Restores `nets` and `at` from the run's checkpoint, if it has one.
pub(super) fn resume(
    run: &LadderRun,
    nets: &mut LadderNets,
    at: &mut LadderProgress,
) -> Result<bool> {
    let path = run.dir.join(CHECKPOINT);
    if !path.exists() {
        return Ok(false);
    }
    let ck = checkpoint::load(&path)?;
    let bad = |e: String| anyhow::anyhow!("checkpoint {}: {e}", path.display());
    if ck.meta("run_id")? != run.id {
        return Err(bad(format!(
            "belongs to run {}, not {}",
            ck.meta("run_id")?,
            run.id
        )));
    }
    let num = |key: &str| -> Result<u128> {
        ck.meta(key)?
            .parse()
            .map_err(|_| bad(format!("`{key}` is not a number")))
    };
    let device = nets.vs.device();
    let group = |p: &str| -> Vec<(String, Tensor)> {
        ck.group(p)
            .into_iter()
            .map(|(n, t)| (n, t.to_device(device)))
            .collect()
    };
    ck.restore("vars", &nets.vs.variables())?;
    nets.opt.load_state(&group("opt")).map_err(bad)?;
    nets.noise.seek(&[num("noise")?]);
    if let Some(g) = nets.generator.as_mut() {
        g.vars.load(&group("g")).map_err(bad)?;
        g.opt.load_state(&group("opt_g")).map_err(bad)?;
        g.z.seek(&[num("z")?]);
    }
    at.step = num("step")? as u64;
    at.window = num("window")? as u64;
    at.sums = serde_json::from_str(ck.meta("sums")?).context("checkpoint `sums`")?;
    at.log = serde_json::from_str(ck.meta("log")?).context("checkpoint loss log")?;
    at.order.set_word_pos(num("order")?);
    for (name, d) in [
        ("labelled", &mut at.labelled),
        ("unlabelled", &mut at.unlabelled),
    ] {
        let t = ck
            .tensors
            .get(&format!("draws/{name}"))
            .ok_or_else(|| bad(format!("no `draws/{name}`")))?;
        d.order = Vec::<i64>::try_from(t)?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        d.pos = num(&format!("{name}_pos"))? as usize;
    }
    Ok(true)
}
