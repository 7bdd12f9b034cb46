//! The commit point of a run: its folder complete, then its runs.csv row. Failures go to
//! failed.log and are retried by the next `ebgan run`.

use super::progress::Progress;
use crate::config::Run;
use crate::device;
use crate::precision::MatmulPrecision;
use crate::results::RunOutcome;
use crate::results::{ResultColumns, ResultsDir, RunRecord};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::Device;

/// Commits runs of one shard file; rows are appended one at a time.
pub struct Committer<'a> {
    res: &'a ResultsDir,
    csv: &'a Path,
    device: String,
    matmul_precision: String,
    machine: String,
    mkl_path: &'static str,
    /// The scoring classifier's hash prefix, when this invocation scores runs.
    classifier: String,
    lock: Mutex<()>,
    /// When the results browser's index was last redrawn (once a minute while rows come in).
    index_at: Mutex<Option<std::time::Instant>>,
}

/// The text of a caught panic.
pub fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

impl<'a> Committer<'a> {
    pub fn new(
        res: &'a ResultsDir,
        csv: &'a Path,
        device: Device,
        precision: MatmulPrecision,
        classifier: String,
    ) -> Self {
        Committer {
            res,
            csv,
            device: device::describe(device),
            matmul_precision: precision.to_string(),
            machine: device::machine(),
            mkl_path: ebgan_core::mkl_path::path(),
            classifier,
            lock: Mutex::new(()),
            // The first redraw a minute in: a short grid's index comes with its report.
            index_at: Mutex::new(Some(std::time::Instant::now())),
        }
    }

    /// The runs of `group` this process may train: each claimed ([`ResultsDir::claim`]) and
    /// without a row yet (another invocation may have committed it since this one planned).
    /// Returns them with the held claims; says what it leaves to others.
    pub fn claim(
        &self,
        group: &[Run],
        progress: &Progress,
    ) -> Result<(Vec<Run>, Vec<std::fs::File>)> {
        let done: std::collections::HashSet<String> = self
            .res
            .rows()?
            .into_iter()
            .map(|r| r.result.run_id)
            .collect();
        let (mut mine, mut claims) = (vec![], vec![]);
        for r in group {
            match self.res.claim(&r.id)? {
                Some(_) if done.contains(&r.id) => {}
                Some(lock) => {
                    mine.push(r.clone());
                    claims.push(lock);
                }
                None => {
                    progress.elsewhere(1);
                    progress.say(format!(
                        "{}: another `ebgan run` in {} is training it; left to that one",
                        r.id,
                        self.res.root.display()
                    ));
                }
            }
        }
        Ok((mine, claims))
    }

    /// Writes the resolved config of a run about to start; returns its folder.
    pub fn start(&self, r: &Run) -> Result<PathBuf> {
        self.res.start_run(&r.id, &r.config)?;
        Ok(self.res.run_dir(&r.id))
    }

    /// Writes the run's losses and result.json, then its row; says so on the terminal.
    pub fn commit(
        &self,
        r: &Run,
        outcome: &RunOutcome,
        wall_s: f64,
        cohort_size: usize,
        progress: &Progress,
    ) -> Result<()> {
        let last = outcome.log.last();
        let scored = outcome.measured.scores.is_some();
        let row = ResultColumns {
            final_loss_d: last.map(|e| e.loss_d),
            final_loss_g: last.map(|e| e.loss_g),
            epochs_done: outcome.epochs_done,
            diverged_step: outcome.diverged_at,
            wall_s,
            cohort_size,
            device: self.device.clone(),
            // Called on the thread that trained the run, which set its own count.
            threads: tch::get_num_threads().max(1) as usize,
            matmul_precision: self.matmul_precision.clone(),
            machine: self.machine.clone(),
            mkl_path: self.mkl_path.into(),
            classifier: match scored {
                true => self.classifier.clone(),
                false => String::new(),
            },
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ..ResultColumns::new(r.id.clone(), r.config.family(), outcome.status())
        };
        let record = RunRecord {
            result: outcome.measured.columns(row),
            config: r.config.clone(),
        };
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.res.finish_run(&record, &outcome.log, self.csv)?;
        let dir = self.res.run_dir(&r.id);
        // The row is committed: a figure or page that fails to draw must not stop the grid.
        if let Err(e) = self.browse(&record, &outcome.log) {
            progress.say(format!("{}: run figures or page not drawn: {e:#}", r.id));
        }
        let done = progress.committed(outcome.diverged_at.is_some());
        let score = match (record.test_error, record.i_prime, outcome.diverged_at) {
            (_, _, Some(step)) => format!("diverged at step {step}"),
            (Some(e), _, _) => format!("test error {e:.2}%"),
            (_, Some(v), _) => format!("I' {v:.3}"),
            _ => format!("finished; samples in {}", dir.display()),
        };
        progress.say(format!(
            "[{done}/{}] {} {score} ({wall_s:.1} s)",
            progress.runs(),
            r.id
        ));
        Ok(())
    }

    /// The run's own figures and page (report draws them), and the folder's index once a minute.
    fn browse(&self, record: &RunRecord, log: &[crate::results::LossLog]) -> Result<()> {
        crate::report::run_figures(self.res, record, log)?;
        let mut at = self.index_at.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
            crate::report::refresh_index(&self.res.root)?;
            *at = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Logs every run of a failed group to failed.log; they are retried next time.
    pub fn failed(&self, group: &[Run], why: &str, progress: &Progress) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // A cohort fails as one: say so, since the error may name another member's file.
        let why = match group {
            [_] => why.replace('\n', " "),
            _ => format!(
                "its cohort of {} runs (first {}) failed: {}",
                group.len(),
                group[0].id,
                why.replace('\n', " ")
            ),
        };
        for r in group {
            progress.failed(&format!("{} failed: {why}", r.id));
            let line = format!(
                "{} {} failed: {}\n",
                chrono::Utc::now().to_rfc3339(),
                r.id,
                why
            );
            let log = self.res.root.join("failed.log");
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
                .ok();
            progress.say(format!(
                "FAILED {} ({why}); it will be retried by the next `ebgan run`",
                r.id
            ));
        }
        Ok(())
    }
}
