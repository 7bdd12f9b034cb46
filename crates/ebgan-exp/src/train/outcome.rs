//! The one accumulator every trainer logs its step statistics through, and what a trainer hands
//! back for a group of runs (each run's outcome: `results::RunOutcome`).

use crate::results::RunOutcome;
use tch::{Device, Kind, TchError, Tensor};

/// Loss log window, in steps.
pub const LOG_EVERY: u64 = 100;

/// Sums of the per-step statistics `[R, K]` (loss D, loss G, real, fake per member, then the
/// family's own columns) over one log window, kept on the device: one host read per window.
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

    /// What the host learns at a window's boundary, in ONE read: which members are `alive`
    /// (`[K]` bool), their `margins` (`[K]` f64, NaN: none) and, when the window has steps, its
    /// means (then the window starts afresh).
    pub fn close(&mut self, alive: &Tensor, margins: &Tensor) -> Result<Boundary, TchError> {
        let (rows, k) = (self.sums.size()[0] as usize, self.sums.size()[1] as usize);
        let row = |t: &Tensor| t.to_kind(Kind::Double).view([1, k as i64]);
        let mut block = vec![row(alive), row(margins)];
        let logged = self.steps > 0;
        if logged {
            block.push((&self.sums / self.steps as f64).to_kind(Kind::Double));
        }
        let v = ebgan_core::read::<f64>(&Tensor::cat(&block, 0))?;
        let means = logged.then(|| {
            let _ = self.sums.zero_();
            self.steps = 0;
            (0..k)
                .map(|i| (0..rows).map(|r| v[(2 + r) * k + i]).collect())
                .collect()
        });
        Ok(Boundary {
            alive: v[..k].iter().map(|&a| a != 0.0).collect(),
            margins: v[k..2 * k]
                .iter()
                .map(|&m| (!m.is_nan()).then_some(m))
                .collect(),
            means,
        })
    }
}

/// A log window's boundary as the host reads it (one transfer).
pub struct Boundary {
    pub alive: Vec<bool>,
    pub margins: Vec<Option<f64>>,
    /// The window's means, `[member][statistic]` (None: no step was logged in it).
    pub means: Option<Vec<Vec<f64>>>,
}

/// What a trainer hands back for a group of runs.
#[derive(Debug)]
pub enum Trained {
    /// Every run ended (finished or diverged): one outcome per run, to commit.
    Done(Vec<RunOutcome>),
    /// A stop was requested after `step` steps; the runs are checkpointed there, and the next
    /// `ebgan run` resumes them.
    Stopped { step: u64 },
}
