//! What training hands back for each run: how it ended, its loss log and its scores; and the one
//! accumulator every trainer logs its step statistics through.

use ebgan_core::score::Scores;
use serde::{Deserialize, Serialize};
use std::fmt;
use tch::{Device, Kind, Tensor};

/// Loss log window, in steps.
pub const LOG_EVERY: u64 = 100;

/// How a run ended (the `status` column of runs.csv).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Finished,
    /// A loss became NaN or infinite; the run was frozen there.
    Diverged,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Finished => "finished",
            Status::Diverged => "diverged",
        })
    }
}

/// Means of one run over a window of steps (up to [`LOG_EVERY`], and at epoch ends): a row of
/// its losses.csv. For EBGAN `real`/`fake` are mean energies; for GAN the mean D(x) probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossLog {
    /// Steps done at the end of the window.
    pub step: u64,
    /// Epochs done at the end of the window (fractional).
    pub epoch: f64,
    pub loss_d: f64,
    pub loss_g: f64,
    pub real: f64,
    pub fake: f64,
    /// The margin in force (None: BEGAN, which has none; an empty cell in losses.csv).
    pub margin: Option<f64>,
    /// BEGAN: the control variable k_t and the convergence measure M_global.
    #[serde(default)]
    pub k_t: Option<f64>,
    #[serde(default)]
    pub m_global: Option<f64>,
}

/// One run's result, as its trainer hands it to the runner.
#[derive(Debug)]
pub struct RunOutcome {
    /// The step (1-based) at which a loss became NaN or infinite; None if it finished.
    pub diverged_at: Option<u64>,
    pub log: Vec<LossLog>,
    pub epochs_done: usize,
    /// I', IS of generated samples (runs scored by the MNIST classifier).
    pub scores: Option<Scores>,
    /// FID and KID against the dataset with the FID-Inception network (image runs).
    pub inception: Option<crate::fid::Distances>,
    /// Test error in % (semi-supervised models only).
    pub test_error: Option<f64>,
}

impl RunOutcome {
    pub fn status(&self) -> Status {
        match self.diverged_at {
            None => Status::Finished,
            Some(_) => Status::Diverged,
        }
    }
}

/// Sums of the per-step statistics `[R, K]` (loss D, loss G, real, fake per member, then BEGAN's
/// k_t and M_global) over one log window, kept on the device: one host read per window.
pub struct LogWindow {
    sums: Tensor,
    steps: u64,
}

impl LogWindow {
    pub fn new(rows: i64, members: i64, device: Device) -> Self {
        LogWindow {
            sums: Tensor::zeros([rows, members], (Kind::Float, device)),
            steps: 0,
        }
    }

    /// A window saved by [`LogWindow::sums`] after `steps` steps (a checkpoint's).
    pub fn resume(sums: Tensor, steps: u64) -> Self {
        LogWindow { sums, steps }
    }

    pub fn add(&mut self, stats: &Tensor) {
        tch::no_grad(|| self.sums += stats);
        self.steps += 1;
    }

    /// Steps summed since the window opened.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn sums(&self) -> &Tensor {
        &self.sums
    }

    /// The window's means, `[member][statistic]`, and a fresh window.
    pub fn close(&mut self) -> Vec<Vec<f64>> {
        let (rows, k) = (self.sums.size()[0] as usize, self.sums.size()[1] as usize);
        let means = Vec::<f64>::try_from(
            (&self.sums / self.steps as f64)
                .to_kind(Kind::Double)
                .flatten(0, -1),
        )
        .expect("an [R, K] float tensor reads back");
        let _ = self.sums.zero_();
        self.steps = 0;
        (0..k)
            .map(|i| (0..rows).map(|row| means[row * k + i]).collect())
            .collect()
    }
}

impl LossLog {
    /// A log row from a window's means of one member (4 values, or 6 with BEGAN's).
    pub fn from_means(step: u64, epoch: f64, means: &[f64], margin: Option<f64>) -> Self {
        LossLog {
            step,
            epoch,
            loss_d: means[0],
            loss_g: means[1],
            real: means[2],
            fake: means[3],
            margin,
            k_t: means.get(4).copied(),
            m_global: means.get(5).copied(),
        }
    }
}

/// What a trainer hands back for a group of runs.
#[derive(Debug)]
pub enum Trained {
    /// Every run ended (finished or diverged): one outcome per run, to commit.
    Done(Vec<RunOutcome>),
    /// A stop was requested after `step` steps; with `checkpointed` the next `ebgan run`
    /// resumes there, else (the ladder trainer) the runs start over.
    Stopped { step: u64, checkpointed: bool },
}
