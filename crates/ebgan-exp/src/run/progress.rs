//! The progress bar of `ebgan run`: run-steps done with an ETA, and the runs done, running,
//! diverged and failed.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts of the runs of this invocation.
#[derive(Debug, Default)]
pub struct Tally {
    /// Rows committed (finished or diverged).
    pub done: AtomicUsize,
    pub running: AtomicUsize,
    pub diverged: AtomicUsize,
    /// Runs that failed with an error (retried by the next `ebgan run`).
    pub failed: AtomicUsize,
    /// Runs stopped by the time budget or a signal (most with a checkpoint), or not started
    /// because the budget could not fit them.
    pub stopped: AtomicUsize,
    /// Runs another `ebgan run` in the same folder held (and trains).
    pub elsewhere: AtomicUsize,
    /// The first failure of this invocation: its run and why (failed.log's line).
    pub first_failure: std::sync::OnceLock<String>,
}

impl Tally {
    pub fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::Relaxed)
    }

    fn add(n: &AtomicUsize, k: usize) {
        n.fetch_add(k, Ordering::Relaxed);
    }
}

pub struct Progress {
    bar: ProgressBar,
    pub tally: Tally,
    runs: usize,
    started: std::time::Instant,
}

impl Progress {
    /// A bar over `steps` run-steps of `runs` runs.
    pub fn new(steps: u64, runs: usize) -> Self {
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {percent:>3}% run-steps [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let p = Progress {
            bar,
            tally: Tally::default(),
            runs,
            started: std::time::Instant::now(),
        };
        p.refresh();
        p
    }

    /// "runs 3/8 done · 2 running · 0 diverged · 0 failed"
    pub fn message(&self) -> String {
        let t = &self.tally;
        format!(
            "runs {}/{} done · {} running · {} diverged · {} failed{}",
            Tally::get(&t.done),
            self.runs,
            Tally::get(&t.running),
            Tally::get(&t.diverged),
            Tally::get(&t.failed),
            match Tally::get(&t.stopped) {
                0 => String::new(),
                n => format!(" · {n} left for the next run"),
            } + &match Tally::get(&t.elsewhere) {
                0 => String::new(),
                n => format!(" · {n} trained by another invocation"),
            }
        )
    }

    fn refresh(&self) {
        self.bar.set_message(self.message());
    }

    /// A line above the bar (or on stderr when the bar is hidden, e.g. in a Slurm log).
    pub fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// A run's latest log line: beside the bar, or as a line in a log file.
    pub fn show(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.set_message(format!("{line} · {}", self.message()));
        }
    }

    pub fn steps(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn started(&self, runs: usize) {
        Tally::add(&self.tally.running, runs);
        self.refresh();
    }

    pub fn ended(&self, runs: usize) {
        self.tally.running.fetch_sub(runs, Ordering::Relaxed);
        self.refresh();
    }

    /// Runs left to another invocation that holds them.
    pub fn elsewhere(&self, runs: usize) {
        Tally::add(&self.tally.elsewhere, runs);
        self.refresh();
    }

    /// Runs left for the next `ebgan run` (stopped, or not started within the budget).
    pub fn left(&self, runs: usize) {
        Tally::add(&self.tally.stopped, runs);
        self.refresh();
    }

    /// Seconds `run_steps` more would take at this invocation's pace with `jobs` cohorts at a
    /// time (None before any step).
    pub fn seconds_for(&self, run_steps: u64, jobs: usize) -> Option<f64> {
        let done = self.bar.position();
        let secs = self.started.elapsed().as_secs_f64();
        (done > 0).then(|| run_steps as f64 * jobs as f64 * secs / done as f64)
    }

    /// A run's row was committed; returns the count of runs done so far.
    pub fn committed(&self, diverged: bool) -> usize {
        Tally::add(&self.tally.done, 1);
        if diverged {
            Tally::add(&self.tally.diverged, 1);
        }
        self.refresh();
        Tally::get(&self.tally.done)
    }

    /// Counts a failed run; `what` (its run id and why) is kept if it is this invocation's first.
    pub fn failed(&self, what: &str) {
        let _ = self.tally.first_failure.set(what.to_string());
        Tally::add(&self.tally.failed, 1);
        self.refresh();
    }

    pub fn runs(&self) -> usize {
        self.runs
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
