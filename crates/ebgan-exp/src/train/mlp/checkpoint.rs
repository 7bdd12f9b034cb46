//! A cohort's checkpoint: every member's weights, optimizer moments and random-stream positions,
//! which members are alive, their loss logs and the open log window, in one file in the first
//! member's folder. Resuming from it continues bit for bit; the runner deletes it once the
//! cohort's rows are committed.

use super::{Cohort, DataOrder};
use crate::results::LossLog;
use crate::train::checkpoint::{self, Loaded};
use crate::train::outcome::LogWindow;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const FILE: &str = "cohort.safetensors";

/// The checkpoint of the cohort whose members' folders are `dirs`.
pub fn path(dirs: &[PathBuf]) -> PathBuf {
    dirs[0].join(FILE)
}

/// Where a cohort stands, besides its networks and optimizers.
pub(super) struct CohortProgress {
    pub step: u64,
    /// `[K]` bool: members still training.
    pub alive: Tensor,
    /// `[K]` i64: the step each dead member diverged at (-1: alive).
    pub dead_at: Tensor,
    /// `alive` as of the last host check (the log windows follow it).
    pub host_alive: Vec<bool>,
    pub logs: Vec<Vec<LossLog>>,
    pub window: LogWindow,
    /// Data-order stream positions at the start of the current epoch: its permutations are
    /// drawn again from there on resume.
    pub epoch_start: Vec<u128>,
}

impl CohortProgress {
    /// A cohort at step 0 whose log windows have `rows` statistics.
    pub fn fresh(rows: i64, k: i64, device: Device) -> Self {
        CohortProgress {
            step: 0,
            alive: Tensor::ones([k], (Kind::Bool, device)),
            dead_at: Tensor::full([k], -1i64, (Kind::Int64, device)),
            host_alive: vec![true; k as usize],
            logs: (0..k).map(|_| vec![]).collect(),
            window: LogWindow::new(rows, k, device),
            epoch_start: vec![0; k as usize],
        }
    }
}

fn positions(p: &[u128]) -> Result<String> {
    Ok(serde_json::to_string(
        &p.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
    )?)
}

fn read_positions(ck: &Loaded, key: &str, k: usize) -> Result<Vec<u128>> {
    let v: Vec<String> = serde_json::from_str(ck.meta(key)?)
        .with_context(|| format!("checkpoint {}: `{key}`", ck.path.display()))?;
    let p = v
        .iter()
        .map(|s| s.parse::<u128>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("checkpoint {}: `{key}`", ck.path.display()))?;
    anyhow::ensure!(
        p.len() == k,
        "checkpoint {}: `{key}` has {} members, expected {k}",
        ck.path.display(),
        p.len()
    );
    Ok(p)
}

pub(super) fn save(
    path: &Path,
    cohort: &Cohort,
    ids: &[String],
    at: &CohortProgress,
) -> Result<()> {
    let mut tensors = cohort.state();
    let host_alive: Vec<i64> = at.host_alive.iter().map(|&a| a as i64).collect();
    tensors.extend([
        ("run/alive".to_string(), at.alive.to_kind(Kind::Int64)),
        ("run/dead_at".to_string(), at.dead_at.shallow_clone()),
        (
            "run/host_alive".to_string(),
            Tensor::from_slice(&host_alive),
        ),
        ("run/window".to_string(), at.window.sums().shallow_clone()),
    ]);
    let meta = HashMap::from([
        ("members".to_string(), serde_json::to_string(ids)?),
        ("step".to_string(), at.step.to_string()),
        ("window".to_string(), at.window.steps().to_string()),
        ("logs".to_string(), serde_json::to_string(&at.logs)?),
        ("noise".to_string(), positions(&cohort.noise.positions())?),
        (
            "masks".to_string(),
            positions(&cohort.critic.masks.positions())?,
        ),
        ("epoch_start".to_string(), positions(&at.epoch_start)?),
        (
            "interpolation".to_string(),
            positions(&cohort.interpolation.positions())?,
        ),
    ]);
    checkpoint::save(path, &tensors, meta)
}

/// Restores `cohort` from the checkpoint at `path` if there is one of exactly these members;
/// returns where it stood. A checkpoint of another cohort (the grid was regrouped) is ignored.
pub(super) fn resume(
    path: &Path,
    cohort: &mut Cohort,
    order: &mut DataOrder,
    ids: &[String],
) -> Result<Option<CohortProgress>> {
    if !path.exists() {
        return Ok(None);
    }
    let ck = checkpoint::load(path)?;
    let members: Vec<String> = serde_json::from_str(ck.meta("members")?)
        .with_context(|| format!("checkpoint {}: `members`", path.display()))?;
    if members != ids {
        eprintln!(
            "{}: a checkpoint of another cohort ({} members); this cohort starts over",
            path.display(),
            members.len()
        );
        return Ok(None);
    }
    let device = cohort.critic.masks.device();
    let k = ids.len();
    let on_device = |t: Tensor| t.to_device(device);
    let vars: Vec<(String, Tensor)> = ck
        .group("vars")
        .into_iter()
        .map(|(n, t)| (n, on_device(t)))
        .collect();
    let bad = |e: String| anyhow::anyhow!("checkpoint {}: {e}", path.display());
    cohort.vars.load(&vars).map_err(bad)?;
    for (prefix, o) in [("opt_g", &mut cohort.opt_g), ("opt_d", &mut cohort.opt_d)] {
        let state: Vec<(String, Tensor)> = ck
            .group(prefix)
            .into_iter()
            .map(|(n, t)| (n, on_device(t)))
            .collect();
        o.load_state(&state)
            .map_err(|e| bad(format!("{prefix}: {e}")))?;
    }
    cohort
        .adaptive
        .load(|n| ck.tensors.get(n).map(|t| on_device(t.shallow_clone())))
        .map_err(bad)?;
    cohort.noise.seek(&read_positions(&ck, "noise", k)?);
    cohort.critic.masks.seek(&read_positions(&ck, "masks", k)?);
    // WGAN-GP's stream; checkpoints written before it existed never drew from it.
    if ck.meta_opt("interpolation").is_some() {
        cohort
            .interpolation
            .seek(&read_positions(&ck, "interpolation", k)?);
    }
    let epoch_start = read_positions(&ck, "epoch_start", k)?;
    order.seek(&epoch_start);
    let tensor = |name: &str, shape: &[i64]| -> Result<Tensor> {
        match ck.tensors.get(name) {
            Some(t) if t.size() == shape => Ok(on_device(t.shallow_clone())),
            _ => bail!(
                "checkpoint {}: no `{name}` of shape {shape:?}",
                path.display()
            ),
        }
    };
    let k64 = k as i64;
    let host_alive = Vec::<i64>::try_from(&tensor("run/host_alive", &[k64])?)?;
    Ok(Some(CohortProgress {
        step: ck.meta("step")?.parse().context("checkpoint `step`")?,
        alive: tensor("run/alive", &[k64])?.to_kind(Kind::Bool),
        dead_at: tensor("run/dead_at", &[k64])?,
        host_alive: host_alive.iter().map(|&a| a != 0).collect(),
        logs: serde_json::from_str(ck.meta("logs")?).context("checkpoint loss logs")?,
        window: LogWindow::resume(
            tensor("run/window", &[cohort.adaptive.log_rows(), k64])?,
            ck.meta("window")?.parse().context("checkpoint `window`")?,
        ),
        epoch_start,
    }))
}
