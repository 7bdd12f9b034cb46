//! The one accumulator every trainer logs its step statistics through, and what a trainer hands
//! back for a group of runs (each run's outcome: `results::RunOutcome`).

use crate::results::RunOutcome;
use tch::{Device, Kind, Tensor};

/// Loss log window, in steps.
pub const LOG_EVERY: u64 = 100;

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

/// What a trainer hands back for a group of runs.
#[derive(Debug)]
pub enum Trained {
    /// Every run ended (finished or diverged): one outcome per run, to commit.
    Done(Vec<RunOutcome>),
    /// A stop was requested after `step` steps; with `checkpointed` the next `ebgan run`
    /// resumes there, else (the ladder trainer) the runs start over.
    Stopped { step: u64, checkpointed: bool },
}
