//! A cohort's part of its checkpoint (train_loop writes the file, in the first member's folder):
//! every member's weights, optimizer moments and BEGAN's or MAGAN's state as tensors, and the
//! positions of its random streams. Resuming from it continues bit for bit; the runner deletes
//! it once the cohort's rows are committed.

use super::Cohort;
use crate::train::checkpoint::Loaded;
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Each member's random-stream positions.
#[derive(Serialize, Deserialize)]
pub struct Streams {
    noise: Vec<u128>,
    masks: Vec<u128>,
    /// WGAN-GP's interpolation weights.
    interpolation: Vec<u128>,
    /// The data order at the start of the current epoch: its permutations are drawn again
    /// from there.
    pub epoch_start: Vec<u128>,
}

impl Streams {
    pub fn of(cohort: &Cohort, epoch_start: &[u128]) -> Self {
        Streams {
            noise: cohort.noise.positions(),
            masks: cohort.critic.masks.positions(),
            interpolation: cohort.interpolation.positions(),
            epoch_start: epoch_start.to_vec(),
        }
    }

    /// Restores `cohort`'s tensors from `ck` and its streams from `self`.
    pub fn restore(&self, ck: &Loaded, cohort: &mut Cohort) -> Result<()> {
        let k = cohort.seeds.len();
        for (name, p) in [
            ("noise", &self.noise),
            ("masks", &self.masks),
            ("interpolation", &self.interpolation),
            ("epoch_start", &self.epoch_start),
        ] {
            ensure!(
                p.len() == k,
                "checkpoint {}: `{name}` has {} members, expected {k}",
                ck.path.display(),
                p.len()
            );
        }
        let device = cohort.critic.masks.device();
        let bad = |e: String| anyhow::anyhow!("checkpoint {}: {e}", ck.path.display());
        let group = |prefix: &str| -> Vec<(String, Tensor)> {
            ck.group(prefix)
                .into_iter()
                .map(|(n, t)| (n, t.to_device(device)))
                .collect()
        };
        cohort.vars.load(&group("vars")).map_err(bad)?;
        for (prefix, o) in [("opt_g", &mut cohort.opt_g), ("opt_d", &mut cohort.opt_d)] {
            o.load_state(&group(prefix))
                .map_err(|e| bad(format!("{prefix}: {e}")))?;
        }
        cohort
            .adaptive
            .load(|n| ck.tensors.get(n).map(|t| t.to_device(device)))
            .map_err(bad)?;
        cohort.noise.seek(&self.noise);
        cohort.critic.masks.seek(&self.masks);
        cohort.interpolation.seek(&self.interpolation);
        Ok(())
    }
}
