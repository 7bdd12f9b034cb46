//! Stage 4: results at the paper's protocol with whatever the budget leaves, resumable across
//! sessions, in order of value per minute: first the Figure 9 margin sweep
//! (experiments/margin-sweep.toml as `gpu-margin-sweep`), then a growing stratified sample of the
//! Table 1 grid (experiments/grid-mnist.toml, EBGAN-PT left out) as `gpu-grid-sample`, then
//! Table 2 at 100 labels for 150 epochs with the searched EBGAN-LN
//! (experiments/semi-mnist-gpu.toml as `gpu-semi-mnist`). A 150-epoch run's checkpoint dies with
//! the machine, so Table 2 runs only when a probe of its step time says its pending runs fit in
//! half of what is left; the sample's deadline leaves them that time, and otherwise they are
//! skipped with the estimate named. The sample's order is fixed by a seed: round-robin over the
//! 256 shape groups (nLayerG x sizeG x nLayerD x sizeD), each group's runs in a seeded shuffle; a
//! session plans the order's first runs up to [`SAMPLE_STEP`] past what is done, and `ebgan
//! run`'s time budget trains what fits (the rest stays pending for the next session). All train
//! through `run::run`, so rows, resume and reports are the grid's own.

use super::{Ctx, Outcome, NO_CUDA};
use crate::config::{Experiment, Family, Run, Shard};
use crate::results::ResultsDir;
use crate::run::{progress::Tally, RunOptions};
use crate::train::{CohortSize, Stop};
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

pub const SWEEP: &str = "gpu-margin-sweep";
pub const TABLE2: &str = "gpu-semi-mnist";
const TABLE2_SOURCE: &str = "experiments/semi-mnist-gpu.toml";
pub const SAMPLE: &str = "gpu-grid-sample";
/// The seed of the sample's order (never change it: sessions continue each other's order).
pub const SAMPLE_SEED: u64 = 2017;
/// Runs a session plans past the done ones: one round of the shape groups.
pub const SAMPLE_STEP: usize = 256;
/// Seconds kept back from the training for the reports and gpu-check.md.
const RESERVE_S: f64 = 20.0;

type ShapeGroup = (usize, i64, usize, i64);

fn group_of(r: &Run) -> ShapeGroup {
    let c = &r.config;
    (c.n_layer_g, c.size_g, c.n_layer_d, c.size_d)
}

/// The Table 1 runs of `runs` (EBGAN-PT left out) in the sample's order: round-robin over the
/// shape groups (in plan order of their first run), each group's runs shuffled by `seed`.
pub fn sample_order(runs: &[Run], seed: u64) -> Vec<Run> {
    let mut groups: Vec<(ShapeGroup, Vec<Run>)> = vec![];
    for r in runs.iter().filter(|r| r.config.family() != Family::EbganPt) {
        let g = group_of(r);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(r.clone()),
            None => groups.push((g, vec![r.clone()])),
        }
    }
    for (i, (_, v)) in groups.iter_mut().enumerate() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        v.shuffle(&mut rng);
    }
    let longest = groups.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    (0..longest)
        .flat_map(|j| groups.iter().filter_map(move |(_, v)| v.get(j).cloned()))
        .collect()
}

/// How many of `order`'s first runs this session plans: `step` more than are done, and at
/// least up to the last done one.
pub fn sample_len(order: &[Run], done: &HashSet<String>, step: usize) -> usize {
    let last = order
        .iter()
        .rposition(|r| done.contains(&r.id))
        .map_or(0, |i| i + 1);
    let n_done = order.iter().filter(|r| done.contains(&r.id)).count();
    last.max(n_done + step).min(order.len())
}

/// An experiment file named `name` with one [[grid]] table per run: the run's fields that
/// differ from the defaults, so each run keeps its id.
pub fn experiment_text(name: &str, description: &str, runs: &[Run]) -> Result<String> {
    let grid: Vec<toml::Value> = runs
        .iter()
        .map(|r| {
            let fields: serde_json::Value = serde_json::from_str(&r.config.canonical())?;
            Ok(toml::Value::try_from(fields)?)
        })
        .collect::<Result<_>>()?;
    let mut doc = toml::Table::new();
    doc.insert("name".into(), name.into());
    doc.insert("description".into(), description.into());
    doc.insert("grid".into(), toml::Value::Array(grid));
    Ok(toml::to_string(&doc)?)
}

/// What one budgeted `run::run` of an experiment left: rows done of the plan, this session's
/// tally.
pub struct Session {
    pub planned: usize,
    pub done: usize,
    pub tally: Tally,
}

/// Where a budgeted session trains: results root, data folder (MNIST), scoring classifier,
/// device, and when it stops.
pub struct Budgeted<'a> {
    pub results: &'a Path,
    pub data: &'a Path,
    pub classifier: &'a Path,
    pub device: tch::Device,
    pub deadline: Instant,
}

/// Trains the pending runs of `file` until the deadline (the report is the caller's).
pub fn train_budgeted(file: &Path, at: &Budgeted) -> Result<Session> {
    let exp = Experiment::load(file)?;
    let opts = RunOptions {
        shard: Shard { index: 0, count: 1 },
        device: at.device,
        jobs: None,
        cohort: CohortSize::Auto,
        threads: None,
        results: at.results.to_path_buf(),
        data: at.data.to_path_buf(),
        classifier: at.classifier.to_path_buf(),
        stop: Stop::at(Some(at.deadline)),
        checkpoint_every: Duration::from_secs(600),
        inception: None,
        precision: crate::precision::MatmulPrecision::Highest,
        device_memory: None,
    };
    let tally = crate::run::run(file, &opts)?;
    let dir = ResultsDir::new(at.results.join(&exp.name));
    let planned: HashSet<&str> = exp.runs.iter().map(|r| r.id.as_str()).collect();
    let done = dir
        .rows()?
        .iter()
        .filter(|r| planned.contains(r.run_id.as_str()))
        .count();
    Ok(Session {
        planned: exp.runs.len(),
        done,
        tally,
    })
}

/// Plans the next prefix of the sample's order into `OUT/experiments/gpu-grid-sample.toml`, trains
/// it until `deadline` and writes the sample's notes.md. Returns the session and the groups
/// represented among the done runs.
pub fn grow_sample(
    grid_file: &Path,
    experiments: &Path,
    at: &Budgeted,
    step: usize,
) -> Result<(Session, usize)> {
    let grid = Experiment::load(grid_file)?;
    let order = sample_order(&grid.runs, SAMPLE_SEED);
    let dir = ResultsDir::new(at.results.join(SAMPLE));
    let done: HashSet<String> = match dir.root.is_dir() {
        true => dir.rows()?.iter().map(|r| r.run_id.clone()).collect(),
        false => HashSet::new(),
    };
    let n = sample_len(&order, &done, step);
    let text = experiment_text(
        SAMPLE,
        &format!(
            "A stratified sample of Table 1 ({} runs of 25 epochs), grown by gpu-check sessions",
            order.len()
        ),
        &order[..n],
    )?;
    std::fs::create_dir_all(experiments)?;
    let file = experiments.join(format!("{SAMPLE}.toml"));
    crate::fsutil::write_atomic(&file, text.as_bytes())?;
    let session = train_budgeted(&file, at)?;
    let rows = dir.rows()?;
    let done: HashSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let groups: HashSet<ShapeGroup> = order
        .iter()
        .filter(|r| done.contains(r.id.as_str()))
        .map(group_of)
        .collect();
    let notes = format!(
        "Figure 2 of a sample: {} of the {} Table 1 runs of experiments/grid-mnist.toml (EBGAN-PT left out), {} of its 256 shape groups represented. The order is seeded (seed {SAMPLE_SEED}): round-robin over the shape groups, each group's runs shuffled; every `ebgan gpu-check` session on a GPU continues it (`crates/ebgan-exp/src/gpu_check/reproduce.rs`). 25 epochs per run, the paper's protocol.\n",
        session.done,
        order.len(),
        groups.len()
    );
    crate::fsutil::write_atomic(&dir.root.join("notes.md"), notes.as_bytes())?;
    crate::report::write(&dir.root)?;
    Ok((session, groups.len()))
}

/// Copies the committed reference rows of ./results/<name> into `results`/<name> when it has none yet.
fn seed_rows(results: &Path, name: &str) -> Result<()> {
    let (from, to) = (
        Path::new(crate::results::REFERENCE_ROOT).join(name),
        results.join(name),
    );
    if from == to || !from.is_dir() || to.join("runs.csv").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&to)?;
    for e in std::fs::read_dir(&from)? {
        let p = e?.path();
        let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if file.starts_with("runs") && file.ends_with(".csv") {
            std::fs::copy(&p, to.join(file))?;
        }
    }
    Ok(())
}

/// MNIST in `data`, imported from .device/ (the copy carried to a device machine,
/// docs/performance.md) when `data` lacks it, and the shipped scoring classifier (compiled into
/// the binary) when `data` has none.
fn ensure_data(data: &Path) -> Result<Option<String>> {
    let carried = Path::new(".device");
    if !data.join("mnist/train-images-idx3-ubyte").is_file() && carried.join("mnist").is_dir() {
        crate::data::mnist::import(&carried.join("mnist"), data)?;
    }
    if !data.join("mnist/train-images-idx3-ubyte").is_file() {
        return Ok(Some(format!(
            "no MNIST in {} or .device/mnist",
            data.display()
        )));
    }
    let classifier = crate::scoring::default_dir(data);
    if !classifier.join("classifier.json").is_file() {
        crate::scoring::install_shipped(&classifier)?;
    }
    Ok(None)
}

fn describe(s: &Session, what: &str) -> (bool, String) {
    let (failed, left) = (Tally::get(&s.tally.failed), Tally::get(&s.tally.stopped));
    let this = Tally::get(&s.tally.done);
    let state = match (failed, left) {
        (0, 0) => "complete".to_string(),
        (0, l) => {
            format!("{l} run(s) stopped or not started by the budget: the next session continues")
        }
        (f, _) => format!("{f} run(s) FAILED (failed.log)"),
    };
    (
        failed == 0,
        format!(
            "{what}: {} of {} runs done ({this} this session); {state}",
            s.done, s.planned
        ),
    )
}

pub fn run(ctx: &mut Ctx) {
    if !ctx.cuda() {
        let why = format!("{NO_CUDA} (paper scale: 25 epochs per run; the sample's order and budgeted growth are tested on the CPU in tests/gpu_check.rs)");
        return skip_all(ctx, &why);
    }
    match ensure_data(&ctx.data) {
        Ok(None) => {}
        Ok(Some(why)) => {
            let why = format!("skipped: {why} (carry it: docs/performance.md)");
            return skip_all(ctx, &why);
        }
        Err(e) => return ctx.line("results.data", Outcome::Fail, format!("error: {e:#}")),
    }
    let experiments = ctx.out.join("experiments");
    let (results, data, device) = (ctx.results.clone(), ctx.data.clone(), ctx.device);
    let classifier = crate::scoring::default_dir(&data);
    let at = |c: &Ctx| Budgeted {
        results: &results,
        data: &data,
        classifier: &classifier,
        device,
        deadline: Instant::now() + Duration::from_secs_f64((c.stage_left() - RESERVE_S).max(0.0)),
    };
    let budget = at(ctx);
    ctx.timed("results.margin-sweep", |_| {
        let s = train_copy(
            "experiments/margin-sweep.toml",
            SWEEP,
            &experiments,
            &budget,
        )?;
        Ok(describe(&s, "Figure 9 margin sweep"))
    });
    // Table 2's pending runs, and whether they fit in half of what is left.
    // The probe trains in this process: a panic (a CUDA error) fails Table 2's line, not gpu-check.
    let table2 =
        std::panic::catch_unwind(|| table2_estimate(&results, device)).unwrap_or_else(|p| {
            Err(anyhow::anyhow!(
                "the step probe panicked: {}",
                super::panic_text(&p)
            ))
        });
    let left = (ctx.stage_left() - RESERVE_S).max(0.0);
    let reserved = match &table2 {
        Ok(e) if e.seconds <= left / 2.0 => e.seconds,
        _ => 0.0,
    };
    let mut sample = at(ctx);
    sample.deadline -= Duration::from_secs_f64(reserved);
    ctx.timed("results.grid-sample", |_| {
        seed_rows(&results, SAMPLE)?;
        let grid = crate::fsutil::source_file("experiments/grid-mnist.toml");
        let (s, groups) = grow_sample(&grid, &experiments, &sample, SAMPLE_STEP)?;
        let (ok, d) = describe(&s, "Table 1 sample (Figure 2)");
        Ok((ok, format!("{d}; {groups} of 256 shape groups represented")))
    });
    let what = "Table 2 at 100 labels, 150 epochs";
    match table2 {
        Ok(e) if e.pending == 0 || reserved > 0.0 => {
            let budget = at(ctx);
            ctx.timed("results.table2-100", |_| {
                let s = train_copy(TABLE2_SOURCE, TABLE2, &experiments, &budget)?;
                Ok(describe(&s, what))
            });
        }
        Ok(e) => {
            let why = format!(
                "skipped: {what}: {} pending run(s) need about {:.0} s ({}), more than half of the {left:.0} s the stage had after the sweep; a session with a longer budget runs them",
                e.pending, e.seconds, e.detail
            );
            ctx.line("results.table2-100", Outcome::Skipped, why);
        }
        Err(e) => ctx.line("results.table2-100", Outcome::Fail, format!("error: {e:#}")),
    }
    let _ = std::fs::write(results.join("README.txt"), results_note());
}

/// What Table 2's pending runs would take here.
pub struct Estimate {
    pub pending: usize,
    pub seconds: f64,
    pub detail: String,
}

/// Table 2's runs not yet in `results`' rows, and their time from a probe of each model's step
/// time (10 steps) times its steps, plus a tenth for the per-epoch test error.
fn table2_estimate(results: &Path, device: tch::Device) -> Result<Estimate> {
    let exp = Experiment::load(&crate::fsutil::source_file(TABLE2_SOURCE))?;
    seed_rows(results, TABLE2)?;
    let dir = ResultsDir::new(results.join(TABLE2));
    let done: HashSet<String> = match dir.root.join("runs.csv").exists() {
        true => dir.rows()?.iter().map(|r| r.run_id.clone()).collect(),
        false => HashSet::new(),
    };
    let pending: Vec<&Run> = exp.runs.iter().filter(|r| !done.contains(&r.id)).collect();
    let mut per_step: BTreeMap<String, f64> = BTreeMap::new();
    let mut seconds = 0.0;
    for r in &pending {
        let c = &r.config;
        let t = *per_step
            .entry(c.model.to_string())
            .or_insert_with(|| crate::train::ladder::seconds_per_step(c, device, 10));
        seconds += 1.1 * t * c.total_steps() as f64;
    }
    let detail = per_step
        .iter()
        .map(|(m, t)| format!("{m} {:.2} ms a step", t * 1e3))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Estimate {
        pending: pending.len(),
        seconds,
        detail: format!("probed: {detail}"),
    })
}

/// Every check of this stage, skipped for `why`.
fn skip_all(ctx: &mut Ctx, why: &str) {
    for check in [
        "results.margin-sweep",
        "results.grid-sample",
        "results.table2-100",
    ] {
        ctx.line(check, Outcome::Skipped, why.to_string());
    }
}

/// Trains the pending runs of the experiment file `source` under the name `name` (its rows
/// apart from the committed ones) until the budget's deadline, then redraws its report.
fn train_copy(source: &str, name: &str, experiments: &Path, at: &Budgeted) -> Result<Session> {
    seed_rows(at.results, name)?;
    let text = std::fs::read_to_string(crate::fsutil::source_file(source))?;
    let exp = Experiment::parse(&text, source)?;
    let text = text.replacen(
        &format!("name = \"{}\"", exp.name),
        &format!("name = \"{name}\""),
        1,
    );
    std::fs::create_dir_all(experiments)?;
    let file = experiments.join(format!("{name}.toml"));
    crate::fsutil::write_atomic(&file, text.as_bytes())?;
    let s = train_budgeted(&file, at)?;
    crate::report::write(&at.results.join(name))?;
    Ok(s)
}

fn results_note() -> String {
    format!("Copy {SWEEP}/, {TABLE2}/ and {SAMPLE}/ (runs.csv, summary.md, figures, notes.md) into the repository's results/ and commit them; the per-run folders stay ignored.\n")
}

/// The runs of `order` grouped by shape group, for tests.
pub fn groups_in(order: &[Run]) -> BTreeMap<ShapeGroup, usize> {
    let mut m = BTreeMap::new();
    for r in order {
        *m.entry(group_of(r)).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Experiment {
        Experiment::load(&crate::fsutil::source_file("experiments/grid-mnist.toml")).unwrap()
    }

    #[test]
    fn the_order_visits_every_shape_group_before_any_twice_and_is_seeded() {
        let g = grid();
        let order = sample_order(&g.runs, SAMPLE_SEED);
        assert_eq!(order.len(), 6656);
        let first = groups_in(&order[..256]);
        assert_eq!(first.len(), 256);
        assert!(first.values().all(|&n| n == 1));
        assert!(order.iter().all(|r| r.config.family() != Family::EbganPt));
        let ids = |o: &[Run]| o.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&order), ids(&sample_order(&g.runs, SAMPLE_SEED)));
        assert_ne!(ids(&order[..256]), ids(&sample_order(&g.runs, 1)[..256]));
        let unique: HashSet<String> = ids(&order).into_iter().collect();
        assert_eq!(unique.len(), 6656);
    }

    #[test]
    fn a_session_plans_past_what_is_done_and_keeps_every_done_run() {
        let g = grid();
        let order = sample_order(&g.runs, SAMPLE_SEED);
        let none = HashSet::new();
        assert_eq!(sample_len(&order, &none, 256), 256);
        // 10 done at the front, one far out (an earlier, larger step): the plan keeps it.
        let mut done: HashSet<String> = order[..10].iter().map(|r| r.id.clone()).collect();
        assert_eq!(sample_len(&order, &done, 256), 266);
        done.insert(order[400].id.clone());
        // The last done run (index 400) reaches past 11 done + 256.
        assert_eq!(sample_len(&order, &done, 256), 401);
        let all: HashSet<String> = order.iter().map(|r| r.id.clone()).collect();
        assert_eq!(sample_len(&order, &all, 256), order.len());
    }

    #[test]
    fn table2s_estimate_probes_each_model_once_and_counts_every_pending_run() {
        let tmp = tempfile::tempdir().unwrap();
        let e = table2_estimate(tmp.path(), tch::Device::Cpu).unwrap();
        let exp = Experiment::load(&crate::fsutil::source_file(TABLE2_SOURCE)).unwrap();
        assert_eq!(e.pending, exp.runs.len());
        // 150 epochs of a ladder step: hours on 2 cores, never under a minute.
        assert!(e.seconds.is_finite() && e.seconds > 60.0, "{}", e.seconds);
        assert_eq!(e.detail.matches("ms a step").count(), 2, "{}", e.detail);
    }

    #[test]
    fn the_sample_file_plans_the_same_runs_under_the_same_ids() {
        let g = grid();
        let order = sample_order(&g.runs, SAMPLE_SEED);
        let text = experiment_text(SAMPLE, "test", &order[..300]).unwrap();
        let e = Experiment::parse(&text, "sample").unwrap();
        assert_eq!(e.name, SAMPLE);
        let ids: Vec<&String> = e.runs.iter().map(|r| &r.id).collect();
        let want: Vec<&String> = order[..300].iter().map(|r| &r.id).collect();
        assert_eq!(ids, want);
    }
}
