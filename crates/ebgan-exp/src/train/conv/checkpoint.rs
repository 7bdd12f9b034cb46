//! A convolutional run's checkpoint: G, D (batch-norm statistics included), optimizer moments,
//! BEGAN's or MAGAN's state, the step, the loss log and the open log window. The random streams
//! are functions of (seed, step) and the data order of (seed, epoch), so nothing else is needed
//! to resume bit for bit.

use super::{ConvGan, ConvRun, CHECKPOINT};
use crate::results::LossLog;
use crate::train::checkpoint;
use crate::train::outcome::LogWindow;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

impl ConvGan {
    pub(super) fn restore(&mut self, ck: &checkpoint::Loaded) -> Result<()> {
        ck.restore("g", &self.g_vs.variables())?;
        ck.restore("d", &self.d_vs.variables())?;
        for (prefix, o) in [("opt_g", &mut self.opt_g), ("opt_d", &mut self.opt_d)] {
            let device = self.g_vs.device();
            let state: Vec<(String, Tensor)> = ck
                .group(prefix)
                .into_iter()
                .map(|(n, t)| (n, t.to_device(device)))
                .collect();
            o.load_state(&state)
                .map_err(|e| anyhow::anyhow!("checkpoint {}: {prefix}: {e}", ck.path.display()))?;
        }
        let device = self.g_vs.device();
        self.adaptive
            .load(|n| ck.tensors.get(n).map(|t| t.to_device(device)))
            .map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", ck.path.display()))
    }
}

/// Where a run stands: steps done, its loss log and the open log window.
pub(super) struct Progress {
    pub step: u64,
    pub log: Vec<LossLog>,
    pub window: LogWindow,
}

pub(super) fn save_checkpoint(gan: &ConvGan, run: &ConvRun, at: &Progress) -> Result<()> {
    let mut tensors = gan.tensors();
    tensors.push(("log/acc".into(), at.window.sums().view([-1])));
    let meta = HashMap::from([
        ("run_id".to_string(), run.id.to_string()),
        ("config".to_string(), serde_json::to_string(run.config)?),
        ("channels".to_string(), gan.spec.channels.to_string()),
        ("images".to_string(), run.data.len.to_string()),
        ("step".to_string(), at.step.to_string()),
        ("window".to_string(), at.window.steps().to_string()),
        ("log".to_string(), serde_json::to_string(&at.log)?),
        ("threads".to_string(), tch::get_num_threads().to_string()),
    ]);
    checkpoint::save(&run.dir.join(CHECKPOINT), &tensors, meta)
}

/// Restores `gan` and the run's progress from its checkpoint, refusing one of another run or
/// of a data set of another size (the data order would differ).
pub(super) fn resume(gan: &mut ConvGan, run: &ConvRun, path: &Path) -> Result<Progress> {
    let ck = checkpoint::load(path)?;
    if ck.meta("run_id")? != run.id {
        bail!(
            "checkpoint {} belongs to run {}, not {}; move it away to start this run over",
            path.display(),
            ck.meta("run_id")?,
            run.id
        );
    }
    let images: usize = ck.meta("images")?.parse().context("checkpoint `images`")?;
    if images != run.data.len {
        bail!(
            "checkpoint {} was written while training on {images} images, the data now holds {}: \
             the data order would differ, so it cannot resume exactly; restore the data or move \
             the checkpoint away to start the run over",
            path.display(),
            run.data.len
        );
    }
    gan.restore(&ck)?;
    // Kernels split over another thread count round differently: the run goes on with the
    // count it started with (checkpoints from before this was recorded keep today's).
    if let Some(threads) = ck.meta_opt("threads") {
        let threads: i32 = threads.parse().context("checkpoint `threads`")?;
        tch::set_num_threads(threads.max(1));
    }
    let rows = gan.adaptive.log_rows();
    let sums = match ck.tensors.get("log/acc") {
        Some(t) if t.size() == [rows] => t.to_device(gan.g_vs.device()).view([rows, 1]),
        _ => bail!(
            "checkpoint {}: no loss-log window `log/acc` of {rows} values",
            path.display()
        ),
    };
    Ok(Progress {
        step: ck.meta("step")?.parse().context("checkpoint step")?,
        log: serde_json::from_str(ck.meta("log")?).context("checkpoint loss log")?,
        window: LogWindow::resume(
            sums,
            ck.meta("window")?.parse().context("checkpoint window")?,
        ),
    })
}
