//! `ebgan slurm` / `ebgan status`: a grid as a Slurm array job, one array task per shard.
//!
//! Task I runs `ebgan run FILE --shard I/N`: shards are disjoint, each appends to its own
//! runs-shard-I-of-N.csv (no two tasks write one file), takes a lock on it (a requeued or
//! resubmitted task never trains alongside a stale copy of itself), and skips finished runs, so a
//! task is safe to requeue and a re-run continues where it stopped.

use crate::config::{Experiment, Shard, SlurmSettings};
use crate::fsutil::write_atomic;
use crate::results::ResultsDir;
use crate::results::Status;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the batch script needs, with absolute paths (tasks start in another directory).
pub struct Job {
    pub experiment: String,
    pub file: PathBuf,
    pub ebgan: PathBuf,
    pub results: PathBuf,
    pub data: PathBuf,
    pub classifier: PathBuf,
    pub shards: usize,
    /// Array indices to run (all shards, or the unfinished ones on --resubmit).
    pub indices: Vec<usize>,
    pub settings: SlurmSettings,
}

/// "0-3" for a contiguous range, else "1,3".
pub fn array_spec(indices: &[usize]) -> String {
    let contiguous = indices.windows(2).all(|w| w[1] == w[0] + 1);
    match (indices.first(), indices.last()) {
        (Some(a), Some(b)) if contiguous && a != b => format!("{a}-{b}"),
        _ => indices
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Seconds of a Slurm time limit: "minutes", "minutes:seconds", "hours:minutes:seconds",
/// "days-hours", "days-hours:minutes" or "days-hours:minutes:seconds" (sbatch's formats).
pub fn time_limit_seconds(time: &str) -> Option<u64> {
    let (days, rest) = match time.split_once('-') {
        Some((d, r)) => (d.trim().parse::<u64>().ok()?, Some(r)),
        None => (0, None),
    };
    let parts: Vec<u64> = rest
        .unwrap_or(time)
        .split(':')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let secs = match (rest.is_some(), parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (_, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        _ => return None,
    };
    Some(days * 86400 + secs)
}

/// `--time-budget` of a task under a Slurm time limit: the limit less a margin to checkpoint and
/// exit (a tenth of it, at most 5 minutes).
fn task_budget(time: &str) -> Option<String> {
    let limit = time_limit_seconds(time)?;
    let margin = (limit / 10).min(300);
    Some(format!("{}s", limit.saturating_sub(margin).max(1)))
}

/// The sbatch script of an array job.
pub fn script(job: &Job) -> String {
    let s = &job.settings;
    let logs = job.results.join(&job.experiment).join("slurm");
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=ebgan-{}", job.experiment),
        format!("#SBATCH --array={}", array_spec(&job.indices)),
        format!("#SBATCH --output={}/%A_%a.out", logs.display()),
        // Requeued after preemption or node failure; a re-run continues where it stopped.
        "#SBATCH --requeue".to_string(),
        "#SBATCH --open-mode=append".to_string(),
        "#SBATCH --ntasks=1".to_string(),
    ];
    let opt = |name: &str, v: Option<String>| v.map(|v| format!("#SBATCH --{name}={v}"));
    lines.extend(
        [
            opt("partition", s.partition.clone()),
            opt("account", s.account.clone()),
            opt("cpus-per-task", s.cpus_per_task.map(|c| c.to_string())),
            opt("gpus-per-task", s.gpus_per_task.map(|g| g.to_string())),
            opt("mem", s.mem.clone()),
            opt("time", s.time.clone()),
        ]
        .into_iter()
        .flatten(),
    );
    if s.time.is_some() {
        // Should the budget not stop it first, a SIGTERM shortly before the limit checkpoints too.
        lines.push("#SBATCH --signal=B:TERM@120".to_string());
    }
    lines.push("set -euo pipefail".into());
    lines.push(format!("export EBGAN_DATA={}", quote(&job.data)));
    lines.push(
        "# Each task uses the GPU Slurm gives it (CUDA_VISIBLE_DEVICES) and, on CPU, its --cpus-per-task."
            .into(),
    );
    let budget = s
        .time
        .as_deref()
        .and_then(task_budget)
        .map(|b| format!(" --time-budget {b}"))
        .unwrap_or_default();
    lines.push(format!(
        "exec {} run {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --device {} --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" --results {} --classifier {} --no-report{budget}",
        quote(&job.ebgan),
        quote(&job.file),
        job.shards,
        s.device.clone().unwrap_or_else(|| "auto".into()),
        quote(&job.results),
        quote(&job.classifier),
    ));
    lines.join("\n") + "\n"
}

/// What `ebgan slurm` has submitted for an experiment (results/<exp>/slurm/jobs.json).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobLog {
    pub shards: usize,
    pub jobs: Vec<SubmittedJob>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmittedJob {
    pub job_id: String,
    pub indices: Vec<usize>,
    pub script: PathBuf,
}

fn job_log_path(dir: &Path) -> PathBuf {
    dir.join("slurm").join("jobs.json")
}

pub fn read_job_log(dir: &Path) -> Result<Option<JobLog>> {
    let p = job_log_path(dir);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| {
            format!("{}: not a job log of `ebgan slurm`", p.display())
        })?)),
        Err(_) => Ok(None),
    }
}

/// Per-shard progress of an experiment's results folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardProgress {
    pub planned: usize,
    pub done: usize,
    pub diverged: usize,
    pub failed: usize,
}

impl ShardProgress {
    pub fn remaining(&self) -> usize {
        self.planned - self.done
    }
}

/// Progress of each of `shards` shards, from the plan and every runs*.csv (a run finished by any
/// shard file, or by an unsharded run, counts as done for the shard that plans it).
pub fn progress(exp: &Experiment, res: &ResultsDir, shards: usize) -> Result<Vec<ShardProgress>> {
    let rows = res.rows()?;
    let done: HashSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let diverged: HashSet<&str> = rows
        .iter()
        .filter(|r| r.status == Status::Diverged)
        .map(|r| r.run_id.as_str())
        .collect();
    let failed: HashSet<String> = std::fs::read_to_string(res.root.join("failed.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    Ok((0..shards)
        .map(|i| {
            let runs = exp.shard(Shard {
                index: i,
                count: shards,
            });
            ShardProgress {
                planned: runs.len(),
                done: runs.iter().filter(|r| done.contains(r.id.as_str())).count(),
                diverged: runs
                    .iter()
                    .filter(|r| diverged.contains(r.id.as_str()))
                    .count(),
                failed: runs
                    .iter()
                    .filter(|r| !done.contains(r.id.as_str()) && failed.contains(&r.id))
                    .count(),
            }
        })
        .collect())
}

fn run_slurm_command(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| {
        format!(
            "cannot run {:?}: is Slurm installed and on PATH?",
            cmd.get_program()
        )
    })?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Writes the script (and, with `submit`, submits it with sbatch). Returns (script, job id).
pub fn write_and_submit(job: &Job, submit: bool) -> Result<(PathBuf, Option<String>)> {
    let dir = job.results.join(&job.experiment);
    let slurm_dir = dir.join("slurm");
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    write_atomic(&dir.join("experiment.toml"), &std::fs::read(&job.file)?)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let path = slurm_dir.join(format!("array-{stamp}.sbatch"));
    write_atomic(&path, script(job).as_bytes())?;
    if !submit {
        return Ok((path, None));
    }
    let out = run_slurm_command(Command::new("sbatch").arg("--parsable").arg(&path))?;
    let job_id = out.split(';').next().unwrap_or(&out).trim().to_string();
    let mut log = read_job_log(&dir)?.unwrap_or_default();
    log.shards = job.shards;
    log.jobs.push(SubmittedJob {
        job_id: job_id.clone(),
        indices: job.indices.clone(),
        script: path.clone(),
    });
    write_atomic(
        &job_log_path(&dir),
        serde_json::to_string_pretty(&log)?.as_bytes(),
    )?;
    Ok((path, Some(job_id)))
}

/// Array tasks of `job_ids` that Slurm still has queued or running: (job_task, state).
pub fn queued_tasks(job_ids: &[String]) -> Result<Vec<(String, String)>> {
    if job_ids.is_empty() {
        return Ok(vec![]);
    }
    let out = run_slurm_command(Command::new("squeue").args([
        "--array",
        "--noheader",
        "--format=%i %T",
        "--jobs",
        &job_ids.join(","),
    ]))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.trim().to_string()))
        })
        .collect())
}

/// `ebgan status DIR`: per shard done / diverged / failed / remaining, and Slurm's queue.
pub fn status(dir: &Path) -> Result<String> {
    let exp_file = dir.join("experiment.toml");
    let exp = Experiment::load(&exp_file).with_context(|| {
        format!(
            "{}: not a results folder of `ebgan run` or `ebgan slurm`",
            dir.display()
        )
    })?;
    let res = ResultsDir::new(dir.to_path_buf());
    let log = read_job_log(dir)?;
    let shards = log
        .as_ref()
        .map(|l| l.shards)
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            // Without a job log, infer N from the shard files present.
            res.csv_files()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| {
                    p.file_name()?
                        .to_str()?
                        .strip_suffix(".csv")?
                        .rsplit_once("-of-")?
                        .1
                        .parse()
                        .ok()
                })
                .max()
                .unwrap_or(1)
        });
    let mut out = format!(
        "{}: {} runs planned in {shards} shard(s)\n",
        exp.name,
        exp.runs.len()
    );
    out += "shard   done  diverged  failed  remaining\n";
    let mut total = ShardProgress::default();
    for (i, p) in progress(&exp, &res, shards)?.iter().enumerate() {
        out += &format!(
            "{:>5} {:>6} {:>9} {:>7} {:>10}\n",
            format!("{i}/{shards}"),
            p.done,
            p.diverged,
            p.failed,
            p.remaining()
        );
        total.planned += p.planned;
        total.done += p.done;
        total.diverged += p.diverged;
        total.failed += p.failed;
    }
    out += &format!(
        "{:>5} {:>6} {:>9} {:>7} {:>10}\n",
        "all",
        total.done,
        total.diverged,
        total.failed,
        total.remaining()
    );
    out += &checkpointed(&exp, &res)?;
    if let Some(log) = log {
        let ids: Vec<String> = log.jobs.iter().map(|j| j.job_id.clone()).collect();
        match queued_tasks(&ids) {
            Ok(tasks) if tasks.is_empty() => {
                out += "slurm: no array task of this experiment is queued or running\n"
            }
            Ok(tasks) => {
                let mut by_state: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (task, state) in tasks {
                    by_state.entry(state).or_default().push(task);
                }
                for (state, tasks) in by_state {
                    out += &format!(
                        "slurm: {} {}: {}\n",
                        tasks.len(),
                        state.to_lowercase(),
                        tasks.join(" ")
                    );
                }
            }
            Err(e) => out += &format!("slurm: not reachable ({e:#})\n"),
        }
    }
    Ok(out)
}

/// "checkpointed: ..." for the unfinished runs that a checkpoint will resume.
fn checkpointed(exp: &Experiment, res: &ResultsDir) -> Result<String> {
    let done: HashSet<String> = res.rows()?.into_iter().map(|r| r.result.run_id).collect();
    let mut runs = 0;
    let (mut lines, mut damaged) = (vec![], vec![]);
    for r in exp.runs.iter().filter(|r| !done.contains(&r.id)) {
        let dir = res.run_dir(&r.id);
        for path in crate::train::checkpoints_in(&dir) {
            // Read whole and checked (size, SHA-256): a damaged file is named, never listed as
            // a resume point.
            let at = crate::train::checkpoint::load(&path)
                .and_then(|ck| crate::train::train_loop::Position::of(&ck));
            let (members, step) = match at {
                Ok(at) => (at.runs.len(), at.step),
                Err(e) => {
                    damaged.push(format!("  {}: {e:#}", r.id));
                    continue;
                }
            };
            runs += members;
            let total = exp
                .runs
                .iter()
                .find(|p| p.id == r.id)
                .map(|p| p.config.total_steps());
            lines.push(format!(
                "  {} ({members} run(s)): step {step} of {}",
                r.id,
                total.map_or("?".into(), |t| t.to_string())
            ));
        }
    }
    let mut out = match runs {
        0 => String::new(),
        n => format!(
            "checkpointed: {n} unfinished run(s) resume from\n{}\n",
            lines.join("\n")
        ),
    };
    if !damaged.is_empty() {
        out += &format!(
            "damaged checkpoints ({}; `ebgan run` refuses them until moved away):\n{}\n",
            damaged.len(),
            damaged.join("\n")
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(indices: Vec<usize>, settings: SlurmSettings) -> Job {
        Job {
            experiment: "grid".into(),
            file: "/w/exp's.toml".into(),
            ebgan: "/opt/ebgan".into(),
            results: "/w/results".into(),
            data: "/w/data".into(),
            classifier: "/w/data/c".into(),
            shards: 4,
            indices,
            settings,
        }
    }

    #[test]
    fn array_specs() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[1, 3]), "1,3");
        assert_eq!(array_spec(&[2]), "2");
    }

    #[test]
    fn script_runs_one_shard_per_array_task_with_the_settings() {
        let s = SlurmSettings {
            partition: Some("gpu".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(8),
            time: Some("4:00:00".into()),
            ..Default::default()
        };
        let text = script(&job(vec![0, 1, 2, 3], s));
        assert!(text.starts_with("#!/bin/bash\n"));
        for line in [
            "#SBATCH --array=0-3",
            "#SBATCH --partition=gpu",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --time=4:00:00",
            "#SBATCH --requeue",
            "#SBATCH --output=/w/results/grid/slurm/%A_%a.out",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("--account") && !text.contains("--mem"));
        assert!(
            text.contains(r#"--shard "${SLURM_ARRAY_TASK_ID}/4""#),
            "{text}"
        );
        assert!(text.contains(r#"'/w/exp'\''s.toml'"#), "quoting: {text}");
        assert!(text.contains(r#"--threads "${SLURM_CPUS_PER_TASK:-1}""#));
        // 4 h: the task's budget ends 5 minutes early, and a SIGTERM comes 2 minutes early.
        assert!(text.contains("--no-report --time-budget 14100s"), "{text}");
        assert!(text.lines().any(|l| l == "#SBATCH --signal=B:TERM@120"));
        let untimed = script(&job(vec![0], SlurmSettings::default()));
        assert!(!untimed.contains("--time-budget") && !untimed.contains("--signal"));
    }

    #[test]
    fn flags_override_the_experiment_table() {
        let file = SlurmSettings {
            partition: Some("cpu".into()),
            mem: Some("8G".into()),
            ..Default::default()
        };
        let flags = SlurmSettings {
            partition: Some("gpu".into()),
            ..Default::default()
        };
        let s = file.overlay(&flags);
        assert_eq!(
            (s.partition.as_deref(), s.mem.as_deref()),
            (Some("gpu"), Some("8G"))
        );
    }

    #[test]
    fn status_lists_the_unfinished_runs_a_checkpoint_resumes() {
        use crate::train::checkpoint;
        let exp = Experiment::parse(
            "name = \"t\"\n[[grid]]\nmodel = \"gan\"\nepochs = 2\nlr = [0.1, 0.2, 0.3]\n",
            "t.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let ids: Vec<String> = exp.runs.iter().map(|r| r.id.clone()).collect();
        let t = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let save = |id: &str, members: &[String], step: u64| {
            // The header train_loop writes, its trainer's part left empty.
            let header = serde_json::json!({
                "runs": members, "step": step, "window": 0, "logs": [], "host_alive": [],
                "threads": 1, "random": ebgan_models::rng::GENERATOR, "trainer": null,
            });
            let meta =
                std::collections::HashMap::from([("header".to_string(), header.to_string())]);
            let path = res.run_dir(id).join(crate::train::train_loop::CHECKPOINT);
            checkpoint::save(&path, &[("t".into(), t.shallow_clone())], meta).unwrap();
        };
        assert_eq!(checkpointed(&exp, &res).unwrap(), "");
        // A cohort of runs 0 and 1 stopped at step 700 of 2 x 938.
        save(&ids[0], &ids[..2], 700);
        let out = checkpointed(&exp, &res).unwrap();
        assert!(
            out.starts_with("checkpointed: 2 unfinished run(s)")
                && out.contains(&format!("{} (2 run(s)): step 700 of 1876", ids[0])),
            "{out}"
        );
        // Half truncated, or zeroed: named as damaged, not listed as a resume point.
        save(&ids[2], &ids[2..], 136);
        let path = res
            .run_dir(&ids[2])
            .join(crate::train::train_loop::CHECKPOINT);
        let bytes = std::fs::read(&path).unwrap();
        for broken in [bytes[..bytes.len() / 2].to_vec(), vec![0u8; bytes.len()]] {
            std::fs::write(&path, &broken).unwrap();
            let out = checkpointed(&exp, &res).unwrap();
            assert!(
                out.starts_with("checkpointed: 2 unfinished")
                    && !out.contains("step 136")
                    && out.contains("damaged checkpoints (1")
                    && out.contains(&ids[2]),
                "{out}"
            );
        }
    }

    #[test]
    fn progress_counts_per_shard() {
        use crate::config::Family;
        use crate::results::{ResultColumns, RunRecord};
        let exp = Experiment::parse(
            "name = \"t\"\n[[grid]]\nmodel = \"gan\"\nlr = [0.1, 0.2, 0.3, 0.4, 0.5]\n",
            "t.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        // Shard 0/2 plans runs 0, 2, 4; shard 1/2 runs 1, 3. Runs 0 (diverged) and 3 are done.
        let row = |i: usize, status: Status| RunRecord {
            result: ResultColumns {
                epochs_done: 1,
                wall_s: 1.0,
                device: "cpu".into(),
                ..ResultColumns::new(exp.runs[i].id.clone(), Family::Gan, status)
            },
            config: exp.runs[i].config.clone(),
        };
        res.finish_run(
            &row(0, Status::Diverged),
            &[],
            &res.runs_csv(Shard { index: 0, count: 2 }),
        )
        .unwrap();
        res.finish_run(
            &row(3, Status::Finished),
            &[],
            &res.runs_csv(Shard { index: 1, count: 2 }),
        )
        .unwrap();
        std::fs::write(
            res.root.join("failed.log"),
            format!("2026-01-01T00:00:00Z {} failed: oom\n", exp.runs[2].id),
        )
        .unwrap();
        let p = progress(&exp, &res, 2).unwrap();
        assert_eq!(
            p[0],
            ShardProgress {
                planned: 3,
                done: 1,
                diverged: 1,
                failed: 1
            }
        );
        assert_eq!(
            p[1],
            ShardProgress {
                planned: 2,
                done: 1,
                diverged: 0,
                failed: 0
            }
        );
        assert_eq!((p[0].remaining(), p[1].remaining()), (2, 1));
    }

    #[test]
    fn slurm_time_limits_by_hand() {
        for (t, secs) in [
            ("90", 5400),
            ("90:30", 5430),
            ("12:00:00", 43200),
            ("1-00", 86400),
            ("1-02:30", 95400),
            ("2-00:00:10", 172810),
        ] {
            assert_eq!(time_limit_seconds(t), Some(secs), "{t}");
        }
        assert_eq!(time_limit_seconds("soon"), None);
        // 12 h: the task stops 5 minutes early; 10 minutes: one minute early.
        assert_eq!(task_budget("12:00:00").as_deref(), Some("42900s"));
        assert_eq!(task_budget("10").as_deref(), Some("540s"));
    }
}
