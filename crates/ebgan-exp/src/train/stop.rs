//! Stopping on request: the end of a time budget, SIGTERM (what Slurm sends at its time limit
//! and on preemption) or Ctrl-C. Trainers poll [`Stop`] after every step; when a stop is
//! requested they checkpoint what they train and return [`Trained::Stopped`](super::Trained).

use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Stop {
    /// Never stops unless [`Stop::request`]ed.
    pub fn never() -> Self {
        Stop::default()
    }

    /// Stops at `deadline` (None: no time budget).
    pub fn at(deadline: Option<Instant>) -> Self {
        Stop {
            flag: Arc::default(),
            deadline,
        }
    }

    /// Also stops on SIGTERM and SIGINT; a second SIGINT ends the process at once.
    pub fn on_signals(self) -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, self.flag.clone())?;
        signal_hook::flag::register(SIGINT, self.flag.clone())?;
        signal_hook::flag::register(SIGTERM, self.flag.clone())?;
        Ok(self)
    }

    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// A signal came, or the deadline has passed.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Seconds left before the deadline (None: no budget).
    pub fn seconds_left(&self) -> Option<f64> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64())
    }
}
