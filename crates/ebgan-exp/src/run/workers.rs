//! `ebgan run --workers W`: W `ebgan run` processes of one shard's sub-shards on this machine.
//! Each process has its own CUDA context, so W cohorts are in flight on one GPU at once (tch
//! exposes no CUDA streams); on the CPU each gets cores / W threads. The sub-shards write their
//! own runs-shard-*.csv, which every reader merges, so resuming works as for any shard.

use crate::config::{Experiment, Shard};
use crate::results::ResultsDir;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sub-shard `w` of `workers` of `shard`: the runs of `shard` whose position among them is
/// w mod workers, i.e. every (N W)-th run of the plan from I + N w.
pub fn sub_shard(shard: Shard, w: usize, workers: usize) -> Shard {
    Shard {
        index: shard.index + shard.count * w,
        count: shard.count * workers,
    }
}

/// Runs `file`'s `shard` as `workers` processes; `pass` are the `ebgan run` flags they share
/// (device, cohort, results, ...), `data` the global data folder.
pub fn run(
    file: &Path,
    shard: Shard,
    workers: usize,
    data: &Path,
    results: &Path,
    pass: &[String],
    stop: &crate::train::Stop,
) -> Result<()> {
    let exp = Experiment::load(file)?;
    let res = ResultsDir::new(results.join(&exp.name));
    let planned: std::collections::HashSet<String> =
        exp.shard(shard).into_iter().map(|r| r.id).collect();
    let done = || -> usize {
        res.rows()
            .map(|rows| rows.iter().filter(|r| planned.contains(&r.run_id)).count())
            .unwrap_or(0)
    };
    let at_start = done();
    let pb = ProgressBar::new((planned.len() - at_start.min(planned.len())) as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} runs [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    pb.set_message(format!("{workers} workers"));
    let exe = std::env::current_exe().context("cannot find the ebgan executable")?;
    let mut children = vec![];
    for w in 0..workers {
        let sub = sub_shard(shard, w, workers);
        let mut child = Command::new(&exe)
            .arg("--data")
            .arg(data)
            .arg("run")
            .arg(file)
            .args(["--shard", &sub.to_string(), "--no-report"])
            .args(pass)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start worker {w}"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let pb = pb.clone();
        let echo = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let line = format!("[worker {w}, shard {sub}] {line}");
                if pb.is_hidden() {
                    eprintln!("{line}");
                } else {
                    pb.println(line);
                }
            }
        });
        children.push((w, child, echo));
    }
    // Progress from the sub-shards' runs*.csv, read every 2 s (a large grid's rows are many);
    // the children's exits are noticed within 0.1 s.
    let progress = || pb.set_position(done().saturating_sub(at_start) as u64);
    let failed = wait_all(&mut children, stop, &progress)?;
    for (_, _, echo) in children {
        let _ = echo.join();
    }
    progress();
    pb.finish_and_clear();
    eprintln!(
        "{}: {} of {} runs of shard {shard} done",
        exp.name,
        done(),
        planned.len()
    );
    verdict(&failed, shard, workers)
}

/// Waits for every worker, forwarding a stop to them and calling `progress` every 2 s; returns
/// those that exited unsuccessfully.
fn wait_all(
    children: &mut [(usize, std::process::Child, std::thread::JoinHandle<()>)],
    stop: &crate::train::Stop,
    progress: &dyn Fn(),
) -> Result<Vec<Failed>> {
    let mut failed: Vec<Failed> = vec![];
    let mut left = children.len();
    let mut last_read = std::time::Instant::now();
    let mut forwarded = false;
    while left > 0 {
        std::thread::sleep(Duration::from_millis(100));
        // A SIGTERM or Ctrl-C for this process is one for every worker: they checkpoint.
        if stop.requested() && !forwarded {
            for (_, child, _) in children.iter() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            forwarded = true;
        }
        if last_read.elapsed() >= Duration::from_secs(2) {
            progress();
            last_read = std::time::Instant::now();
        }
        left = 0;
        for (w, child, _) in children.iter_mut() {
            match child.try_wait()? {
                None => left += 1,
                Some(status) if !status.success() && !failed.iter().any(|(f, _, _)| f == w) => {
                    failed.push((*w, status.code(), status.to_string()))
                }
                Some(_) => {}
            }
        }
    }
    Ok(failed)
}

/// A worker that exited unsuccessfully: (index, exit code, status as text).
type Failed = (usize, Option<i32>, String);

/// The parent's result from its failed workers: runs stopped (exit 3) or failed (exit 2)
/// pass on as such; any other failure is an error naming the workers.
fn verdict(failed: &[Failed], shard: Shard, workers: usize) -> Result<()> {
    // Workers whose runs failed (exit 2) committed the rest of their sub-shard.
    let runs_failed = |(_, code, _): &Failed| *code == Some(super::EXIT_RUNS_FAILED as i32);
    let stopped = |(_, code, _): &Failed| *code == Some(super::EXIT_STOPPED as i32);
    if failed.iter().any(stopped) && failed.iter().all(|f| stopped(f) || runs_failed(f)) {
        let n = failed.iter().filter(|f| stopped(f)).count();
        return Err(super::RunsStopped(format!(
            "stopped: {n} worker(s) left runs for the next call"
        ))
        .into());
    }
    if !failed.is_empty() && failed.iter().all(runs_failed) {
        let n = failed.len();
        return Err(
            super::RunsFailed(format!("runs failed in {n} worker(s) (see failed.log)")).into(),
        );
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|(w, _, s)| format!("worker {w} (shard {}): {s}", sub_shard(shard, *w, workers)))
            .collect();
        bail!(
            "{}; run the same command again to finish its runs",
            list.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_shards_partition_their_shard() {
        // Shard 1/3 of 20 runs is {1, 4, 7, 10, 13, 16, 19}; two workers split it by position.
        let s = Shard { index: 1, count: 3 };
        let runs =
            |sh: Shard| -> Vec<usize> { (0..20).filter(|i| i % sh.count == sh.index).collect() };
        assert_eq!(runs(sub_shard(s, 0, 2)), [1, 7, 13, 19]);
        assert_eq!(runs(sub_shard(s, 1, 2)), [4, 10, 16]);
        let mut all = [runs(sub_shard(s, 0, 2)), runs(sub_shard(s, 1, 2))].concat();
        all.sort();
        assert_eq!(all, runs(s));
    }
}
