//! `ebgan run`: plan -> pending (plan minus finished) -> shard -> cohorts -> train -> results.

use crate::cohort_size::CohortSize;
use crate::config::{Dataset, Experiment, Run, Shard};
use crate::data::image_set::{self, ImageSet};
use crate::data::mnist;
use crate::device;
use crate::results::{ResultsDir, RunRecord};
use crate::scoring::{self, Scorer};
use crate::train::conv;
use crate::train::ladder::train_run as train_ladder;
use crate::train::mlp::{train_cohort, DeviceImages, Status};
use crate::train::CohortKey;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tch::Device;

pub struct RunOptions {
    pub shard: Shard,
    pub device: Device,
    /// Cohorts trained at once (CPU: in parallel threads).
    pub jobs: Option<usize>,
    /// Most runs per cohort (`Fixed(1)` = every run alone).
    pub cohort: CohortSize,
    /// CPU threads to use in all (default: every core).
    pub threads: Option<usize>,
    pub results: PathBuf,
    pub data: PathBuf,
    pub classifier: PathBuf,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub already_done: usize,
    pub finished: usize,
    pub diverged: usize,
    pub failed: usize,
}

/// Groups runs that share a [`CohortKey`] into cohorts of at most `max(key)` members, in plan
/// order.
pub fn cohorts(runs: Vec<Run>, max: impl Fn(&CohortKey) -> usize) -> Vec<Vec<Run>> {
    let mut groups: BTreeMap<CohortKey, Vec<Run>> = BTreeMap::new();
    let mut order = vec![];
    for r in runs {
        let key = CohortKey::of(&r.config);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .flat_map(|k| {
            let g = groups.remove(&k).unwrap();
            let size = if k.trains_alone() { 1 } else { max(&k).max(1) };
            g.chunks(size).map(|c| c.to_vec()).collect::<Vec<_>>()
        })
        .collect()
}

pub fn run(experiment_file: &Path, opts: &RunOptions) -> Result<Outcome> {
    let exp = Experiment::load(experiment_file)?;
    let res = ResultsDir::new(opts.results.join(&exp.name));
    std::fs::create_dir_all(&res.root)
        .with_context(|| format!("cannot create {}", res.root.display()))?;
    let csv = res.runs_csv(opts.shard);
    // One process per shard file: a second `ebgan run` of the same shard would train runs twice.
    let lock_path = csv.with_extension("csv.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "{}: another `ebgan run` is working on this shard (lock {})",
            csv.display(),
            lock_path.display()
        )
    })?;
    res.repair(&csv)?;

    let planned = exp.shard(opts.shard);
    let done: std::collections::HashSet<String> =
        res.rows()?.into_iter().map(|r| r.run_id).collect();
    let pending: Vec<Run> = planned
        .iter()
        .filter(|r| !done.contains(&r.id))
        .cloned()
        .collect();
    let mut outcome = Outcome {
        already_done: planned.len() - pending.len(),
        ..Default::default()
    };
    eprintln!(
        "{}: {} runs in shard {} ({} in the plan), {} already done, {} to run",
        exp.name,
        planned.len(),
        opts.shard,
        exp.runs.len(),
        outcome.already_done,
        pending.len()
    );
    crate::fsutil::write_atomic(
        &res.root.join("experiment.toml"),
        &std::fs::read(experiment_file)?,
    )?;
    if pending.is_empty() {
        return Ok(outcome);
    }

    // Generated MNIST samples (and MNIST-64's centre crops) are scored by the classifier;
    // semi-supervised runs measure test error; other image sets have no score.
    let scored = |c: &crate::config::RunConfig| {
        !c.model.is_ladder() && (!c.network.is_conv() || exp.dataset == Dataset::Mnist64)
    };
    if pending.iter().any(|r| scored(&r.config)) {
        let info = scoring::read_info(&opts.classifier)?;
        crate::fsutil::write_atomic(
            &res.root.join("classifier.json"),
            serde_json::to_string_pretty(&info)?.as_bytes(),
        )?;
        Scorer::load(&opts.classifier, opts.device)?; // fail before training, not after
    }
    let conv = pending.iter().any(|r| r.config.network.is_conv());
    let data = if exp.dataset == Dataset::Mnist {
        mnist::load(&opts.data)?
    } else {
        mnist::Mnist::default()
    };
    // Image sets of the convolutional runs, by stored side.
    // (Behind a mutex: tensors may move between threads but not be shared; conv runs go one at a time.)
    let mut image_sets: BTreeMap<i64, Mutex<ImageSet>> = BTreeMap::new();
    for r in pending.iter().filter(|r| r.config.network.is_conv()) {
        let side = image_set::stored_side(r.config.image_size, r.config.random_crop);
        if let std::collections::btree_map::Entry::Vacant(e) = image_sets.entry(side) {
            let set = image_set::load(&exp, &opts.data, side, opts.device)?;
            eprintln!(
                "{}: {} images of {side}x{side}x{}",
                exp.dataset, set.len, set.channels
            );
            e.insert(Mutex::new(set));
        }
    }
    let conv_total = |c: &crate::config::RunConfig| {
        let set = image_sets[&image_set::stored_side(c.image_size, c.random_crop)]
            .lock()
            .unwrap();
        c.total_steps_over(set.usable(c))
    };

    let free = match opts.device {
        // Cohorts trained at once on one GPU share its memory.
        Device::Cuda(i) if opts.cohort == CohortSize::Auto => {
            device::cuda_free_bytes(i).map(|f| f / opts.jobs.unwrap_or(1).max(1) as u64)
        }
        _ => None,
    };
    let groups = cohorts(pending, |key| opts.cohort.resolve(key, opts.device, free));
    let cores = opts.threads.unwrap_or_else(device::cores).max(1);
    let jobs = match opts.device {
        // A convolutional run uses every core by itself.
        Device::Cpu if conv => opts.jobs.unwrap_or(1).clamp(1, groups.len()),
        Device::Cpu => opts.jobs.unwrap_or(cores).clamp(1, groups.len()),
        _ => opts.jobs.unwrap_or(1).clamp(1, groups.len()),
    };
    let threads = if opts.device == Device::Cpu {
        (cores / jobs).max(1)
    } else {
        cores
    };
    eprintln!(
        "device: {} · {} cohort(s) of up to {} run(s) · {jobs} at a time · {threads} libtorch thread(s) each",
        device::describe(opts.device),
        groups.len(),
        groups.iter().map(|g| g.len()).max().unwrap_or(1)
    );

    let total_steps: u64 = groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|r| {
            if r.config.network.is_conv() {
                conv_total(&r.config)
            } else {
                r.config.total_steps()
            }
        })
        .sum();
    let pb = ProgressBar::new(total_steps);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {percent:>3}% run-steps [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    let counts = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]; // done, running, diverged, failed
    let n_pending: usize = groups.iter().map(|g| g.len()).sum();
    let message = |c: &[AtomicUsize; 4]| {
        format!(
            "runs {}/{} done · {} running · {} diverged · {} failed",
            c[0].load(Ordering::Relaxed),
            n_pending,
            c[1].load(Ordering::Relaxed),
            c[2].load(Ordering::Relaxed),
            c[3].load(Ordering::Relaxed)
        )
    };
    pb.set_message(message(&counts));
    let say = |line: String| {
        if pb.is_hidden() {
            eprintln!("{line}");
        } else {
            pb.println(line);
        }
    };
    let commit = Mutex::new(());
    let mnist_len = data.train_len();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .start_handler(move |_| tch::set_num_threads(threads as i32))
        .build()?;
    let results: Vec<Result<()>> = pool.install(|| {
        groups
            .par_iter()
            .map(|group| -> Result<()> {
                let k = group.len();
                counts[1].fetch_add(k, Ordering::Relaxed);
                pb.set_message(message(&counts));
                for r in group {
                    res.start_run(&r.id, &r.config)?;
                }
                let start = Instant::now();
                let configs: Vec<_> = group.iter().map(|r| r.config.clone()).collect();
                let trained =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<_> {
                        let mut last = 0u64;
                        let mut progress = |s: u64| {
                            pb.inc((s - last) * k as u64);
                            last = s;
                        };
                        if configs[0].network.is_conv() {
                            let c = &configs[0];
                            let set = image_sets
                                [&image_set::stored_side(c.image_size, c.random_crop)]
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            let scorer = if scored(c) {
                                Some(Scorer::load(&opts.classifier, opts.device)?)
                            } else {
                                None
                            };
                            let run = conv::ConvRun {
                                config: c,
                                id: &group[0].id,
                                data: &set,
                                dir: &res.run_dir(&group[0].id),
                                scorer: scorer.as_ref(),
                                stop_at: None,
                            };
                            let mut shown = String::new();
                            let mut status = |s: u64, msg: &str| {
                                progress(s);
                                if !msg.is_empty() && msg != shown {
                                    // A new log window: on the bar, or as a line in a log file.
                                    let line = format!("{} step {s}: {msg}", group[0].id);
                                    if pb.is_hidden() {
                                        eprintln!("{line}");
                                    } else {
                                        pb.set_message(format!("{line} · {}", message(&counts)));
                                    }
                                    shown = msg.to_string();
                                }
                            };
                            let m = conv::train_run(&run, opts.device, &mut status)?
                                .expect("runs without stop_at finish");
                            return Ok(vec![m]);
                        }
                        if configs[0].model.is_ladder() {
                            return Ok(vec![train_ladder(
                                &configs[0],
                                &data,
                                opts.device,
                                &mut progress,
                            )]);
                        }
                        let scorer = Scorer::load(&opts.classifier, opts.device)?;
                        let n = configs[0].train_images.min(mnist_len);
                        let images = DeviceImages::new(&data.train_images, n, opts.device);
                        Ok(train_cohort(&configs, &images, &scorer, &mut progress))
                    }));
                let wall = start.elapsed().as_secs_f64();
                counts[1].fetch_sub(k, Ordering::Relaxed);
                let members = match trained {
                    Ok(Ok(m)) => m,
                    failure => {
                        let why = match failure {
                            Ok(Err(e)) => format!("{e:#}"),
                            Err(panic) => panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panic".into()),
                            Ok(Ok(_)) => unreachable!(),
                        };
                        let _guard = commit.lock().unwrap();
                        for r in group {
                            counts[3].fetch_add(1, Ordering::Relaxed);
                            let line = format!(
                                "{} {} failed: {}\n",
                                chrono::Utc::now().to_rfc3339(),
                                r.id,
                                why.replace('\n', " ")
                            );
                            let log = res.root.join("failed.log");
                            std::fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&log)
                                .and_then(|mut f| {
                                    std::io::Write::write_all(&mut f, line.as_bytes())
                                })
                                .ok();
                            say(format!(
                                "FAILED {} ({why}); it will be retried by the next `ebgan run`",
                                r.id
                            ));
                        }
                        pb.set_message(message(&counts));
                        return Ok(());
                    }
                };
                for (r, m) in group.iter().zip(members) {
                    let last = m.log.last();
                    let (status, diverged_step) = match m.status {
                        Status::Finished => ("finished", None),
                        Status::Diverged { step } => ("diverged", Some(step)),
                    };
                    let record = RunRecord {
                        run_id: r.id.clone(),
                        family: r.config.family().into(),
                        status: status.into(),
                        i_prime: m.scores.map(|s| s.i_prime),
                        i_prime_printed: m.scores.map(|s| s.i_prime_printed),
                        inception_score: m.scores.map(|s| s.inception_score),
                        test_error: m.test_error,
                        final_loss_d: last.map(|e| e.loss_d),
                        final_loss_g: last.map(|e| e.loss_g),
                        epochs_done: m.epochs_done,
                        diverged_step,
                        wall_s: wall,
                        cohort_size: k,
                        device: device::describe(opts.device),
                        finished_at: chrono::Utc::now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        config: r.config.clone(),
                    };
                    if let Some(samples) = &m.samples {
                        crate::images::save_rgb_png(
                            &crate::images::image_grid(&samples.view([-1, 1, 28, 28]), 8),
                            &res.run_dir(&r.id).join("samples.png"),
                        )?;
                    }
                    let _guard = commit.lock().unwrap();
                    res.finish_run(&record, &m.log, &csv)?;
                    if r.config.network.is_conv() {
                        let dir = res.run_dir(&r.id);
                        // The row is committed: a figure that fails to draw must not stop the grid.
                        if let Err(e) = crate::report::figures::loss_curves(
                            &dir.join("losses.csv"),
                            &r.id,
                            &dir.join("curves.png"),
                        ) {
                            say(format!("{}: loss curves not drawn: {e:#}", r.id));
                        }
                    }
                    counts[0].fetch_add(1, Ordering::Relaxed);
                    if diverged_step.is_some() {
                        counts[2].fetch_add(1, Ordering::Relaxed);
                    }
                    let score = match (record.test_error, record.i_prime, diverged_step) {
                        (_, _, Some(step)) => format!("diverged at step {step}"),
                        (Some(e), _, _) => format!("test error {e:.2}%"),
                        (_, Some(v), _) => format!("I' {v:.3}"),
                        _ => format!("finished; samples in {}", res.run_dir(&r.id).display()),
                    };
                    say(format!(
                        "[{}/{}] {} {score} ({wall:.1} s)",
                        counts[0].load(Ordering::Relaxed),
                        n_pending,
                        r.id
                    ));
                }
                pb.set_message(message(&counts));
                Ok(())
            })
            .collect()
    });
    pb.finish_and_clear();
    for r in results {
        r?;
    }
    outcome.finished = counts[0].load(Ordering::Relaxed) - counts[2].load(Ordering::Relaxed);
    outcome.diverged = counts[2].load(Ordering::Relaxed);
    outcome.failed = counts[3].load(Ordering::Relaxed);
    eprintln!("{}", message(&counts));
    Ok(outcome)
}
