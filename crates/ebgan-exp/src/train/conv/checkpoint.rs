//! A convolutional run's part of its checkpoint (train_loop writes the file): G, D (batch-norm
//! statistics included), optimizer moments and BEGAN's or MAGAN's state as tensors, and what
//! `ebgan sample` needs to rebuild G. The random streams are functions of (seed, step) and the
//! data order of (seed, epoch), so nothing else is needed to resume bit for bit.

use super::{ConvGan, ConvRun};
use crate::config::RunConfig;
use crate::train::checkpoint::Loaded;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The run's config and data shape.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub config: RunConfig,
    pub channels: i64,
    /// Training images: the data order depends on it.
    pub images: usize,
}

impl Meta {
    pub(super) fn of(run: &ConvRun) -> Self {
        Meta {
            config: run.config.clone(),
            channels: run.data.channels,
            images: run.data.len,
        }
    }

    /// Refuses a checkpoint written over a data set of another size (the data order would
    /// differ).
    pub(super) fn check(&self, ck: &Loaded, run: &ConvRun) -> Result<()> {
        if self.images != run.data.len {
            bail!(
                "checkpoint {} was written while training on {} images, the data now holds {}: \
                 the data order would differ, so it cannot resume exactly; restore the data or \
                 move the checkpoint away to start the run over",
                ck.path.display(),
                self.images,
                run.data.len
            );
        }
        Ok(())
    }
}

impl ConvGan {
    pub(super) fn restore(&mut self, ck: &Loaded) -> Result<()> {
        ck.restore("g", &self.g_vs.variables())?;
        ck.restore("d", &self.d_vs.variables())?;
        let device = self.g_vs.device();
        for (prefix, o) in [("opt_g", &mut self.opt_g), ("opt_d", &mut self.opt_d)] {
            let state: Vec<(String, Tensor)> = ck
                .group(prefix)
                .into_iter()
                .map(|(n, t)| (n, t.to_device(device)))
                .collect();
            o.load_state(&state)
                .map_err(|e| anyhow::anyhow!("checkpoint {}: {prefix}: {e}", ck.path.display()))?;
        }
        self.adaptive
            .load(|n| ck.tensors.get(n).map(|t| t.to_device(device)))
            .map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", ck.path.display()))
    }
}
