//! The one training loop, run by every trainer (MLP cohorts, convolutional runs, ladder runs).
//! Top to bottom: resume from the checkpoint if there is one; then step until done, freezing
//! members whose losses stop being finite (on the device); every [`LOG_EVERY`] steps and at each
//! epoch's end read the log window, the alive flags and the margins back in one transfer (the
//! only host read: an ordinary step reads nothing); checkpoint on one wall-time cadence and when
//! a stop is requested; and hand over to the trainer's finish. A trainer supplies its
//! step, its state and its finish ([`Training`]); everything else lives here, once.

use super::checkpoint::{self, Loaded};
use super::outcome::{LogWindow, Trained, LOG_EVERY};
use super::stop::Stop;
use crate::family::LogColumn;
pub use crate::results::Measured;
use crate::results::{LossLog, RunOutcome};
use anyhow::{bail, Context, Result};
use ebgan_models::rng::GENERATOR;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// Every trainer's checkpoint file, in its (first) run's folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// How long training runs.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Steps in all (MAGAN's pretraining included).
    pub total: u64,
    pub per_epoch: u64,
    /// Steps before the logged training (MAGAN's pretraining): not counted as epochs done.
    pub pretrain: u64,
    /// Images a step trains on, over all members (the progress line's img/s).
    pub images_per_step: u64,
}

/// What one step hands back, on the device.
pub struct Stepped {
    /// Statistics `[R, K]` for the log window (None: a step outside the log, MAGAN's
    /// pretraining).
    pub stats: Option<Tensor>,
    /// `[K]` bool: members still training after the step.
    pub alive: Tensor,
}

/// Tensors by name, as a checkpoint holds them.
pub type Named = Vec<(String, Tensor)>;

/// A trainer as the loop sees it: K members stepped together (K = 1 but for MLP cohorts).
pub trait Training {
    /// The trainer's own part of the checkpoint's metadata (random-stream positions, ...).
    type Meta: Serialize + DeserializeOwned;

    fn schedule(&self) -> Schedule;
    fn device(&self) -> Device;
    /// The loss log's statistics: the four every family logs, then these.
    fn log_columns(&self) -> &'static [LogColumn];
    /// One training step after `done` steps; members not `alive` (`[K]` bool) are not updated.
    fn step(&mut self, done: u64, alive: &Tensor) -> Result<Stepped>;
    /// `[K]` f64 on the device: each member's margin for the log row closed after `step` steps
    /// (NaN: no margin; [`margin_row`] makes one from host values).
    fn margins(&self, step: u64) -> Tensor;
    /// Tensors (weights, optimizer moments, adaptive state) and metadata to checkpoint.
    fn state(&self) -> Result<(Named, Self::Meta)>;
    /// Restores what [`Training::state`] saved.
    fn restore(&mut self, ck: &Loaded, meta: Self::Meta) -> Result<()>;
    /// Samples and scores of the members that finished (`finished[i]`), one per member.
    fn finish(&mut self, finished: &[bool]) -> Result<Vec<Measured>>;
}

/// The runs a loop trains and where it checkpoints.
pub struct Runs<'a> {
    /// Run ids of the members, in member order.
    pub ids: &'a [String],
    /// The checkpoint file.
    pub checkpoint: &'a Path,
    /// Wall time between checkpoints (one is also written when a stop is requested).
    pub checkpoint_every: Duration,
    /// Convolutional runs also checkpoint at the end (`ebgan sample` reads it).
    pub final_checkpoint: bool,
    pub stop: &'a Stop,
}

/// Margins `[K]` f64 on `device` from host values (None: no margin, NaN).
pub fn margin_row(margins: impl IntoIterator<Item = Option<f64>>, device: Device) -> Tensor {
    let v: Vec<f64> = margins.into_iter().map(|m| m.unwrap_or(f64::NAN)).collect();
    ebgan_core::upload(Tensor::from_slice(&v), device)
}

/// A checkpoint's metadata, one JSON entry (`header`) beside its tensors.
#[derive(Serialize, Deserialize)]
struct Header<M> {
    runs: Vec<String>,
    step: u64,
    /// Steps summed in the open log window (its sums are the tensor `run/window`).
    window: u64,
    logs: Vec<Vec<LossLog>>,
    /// Members alive as of the last host check (log rows follow it).
    host_alive: Vec<bool>,
    /// libtorch threads the run trained on: kernels split over another count round differently.
    threads: i32,
    /// The generator of the trainer's stream positions ([`GENERATOR`]; none: host ChaCha
    /// streams, whose positions mean nothing to it).
    #[serde(default)]
    random: String,
    trainer: M,
}

/// Where the members stand.
struct Progress {
    step: u64,
    /// `[K]` bool on the device.
    alive: Tensor,
    /// `[K]` i64 on the device: the step each dead member diverged at (-1: alive).
    dead_at: Tensor,
    host_alive: Vec<bool>,
    logs: Vec<Vec<LossLog>>,
    window: LogWindow,
}

/// Trains `runs` with `t` (or resumes them from their checkpoint). `progress(steps done,
/// message)` is called after every step; the message is the last closed window's.
pub fn train<T: Training>(
    t: &mut T,
    runs: &Runs,
    progress: &mut dyn FnMut(u64, &str),
) -> Result<Trained> {
    let Schedule {
        total,
        per_epoch,
        pretrain,
        images_per_step,
    } = t.schedule();
    let k = runs.ids.len() as i64;
    let rows = 4 + t.log_columns().len() as i64;
    let mut at = match resume(t, runs, rows)? {
        Some(at) => {
            progress(at.step, &format!("resumed at step {}", at.step));
            at
        }
        None => Progress {
            step: 0,
            alive: Tensor::ones([k], (Kind::Bool, t.device())),
            dead_at: Tensor::full([k], -1i64, (Kind::Int64, t.device())),
            host_alive: vec![true; k as usize],
            logs: (0..k).map(|_| vec![]).collect(),
            window: LogWindow::new(rows, k, t.device()),
        },
    };
    let (mut saved, mut clock) = (Instant::now(), (Instant::now(), at.step));
    let mut message = String::new();

    while at.step < total {
        let out = t.step(at.step, &at.alive)?;
        at.step += 1;
        let step = at.step;
        let died = at.alive.logical_and(&out.alive.logical_not());
        let _ = at.dead_at.masked_fill_(&died, step as i64);
        at.alive = out.alive;
        if let Some(stats) = out.stats {
            at.window.add(&stats);
        }
        let epoch_end = step.is_multiple_of(per_epoch) || step == total;
        // The only host read of a step: at a window's boundary, alive flags, margins and the
        // window's means in one transfer. Ordinary steps read nothing.
        if step.is_multiple_of(LOG_EVERY) || epoch_end {
            let read = at.window.close(&at.alive, &t.margins(step))?;
            at.host_alive = read.alive;
            if at.host_alive.iter().all(|a| !a) {
                break;
            }
            if let Some(means) = read.means {
                let epoch = step as f64 / per_epoch as f64;
                for (i, m) in means.iter().enumerate() {
                    if at.host_alive[i] {
                        let margin = read.margins[i];
                        let row = LossLog::from_means(step, epoch, m, margin, t.log_columns());
                        at.logs[i].push(row);
                    }
                }
                let secs = clock.0.elapsed().as_secs_f64().max(1e-9);
                let rate = (step - clock.1) as f64 * images_per_step as f64 / secs;
                message = match (k, &means[..]) {
                    (1, [m]) => format!(
                        "{rate:.0} img/s · D {:.3} · G {:.3} · real {:.3} · fake {:.3}",
                        m[0], m[1], m[2], m[3]
                    ),
                    _ => {
                        let alive = at.host_alive.iter().filter(|a| **a).count();
                        format!("{rate:.0} img/s · {alive}/{k} alive")
                    }
                };
                clock = (Instant::now(), step);
            }
        }
        progress(step, &message);
        if step < total && runs.stop.requested() {
            save(t, runs, &at)?;
            return Ok(Trained::Stopped { step });
        }
        if step < total && saved.elapsed() >= runs.checkpoint_every {
            save(t, runs, &at)?;
            saved = Instant::now();
        }
    }

    let finished = ebgan_core::read::<bool>(&at.alive)?;
    let dead_at = ebgan_core::read::<i64>(&at.dead_at)?;
    if runs.final_checkpoint && finished.iter().any(|&f| f) {
        save(t, runs, &at)?;
    }
    let measured = t.finish(&finished)?;
    let epochs_done = (at.step.saturating_sub(pretrain) / per_epoch) as usize;
    let outcomes = at
        .logs
        .into_iter()
        .zip(measured)
        .enumerate()
        .map(|(i, (log, m))| RunOutcome {
            diverged_at: (!finished[i]).then_some(dead_at[i] as u64),
            log,
            epochs_done: if finished[i] { epochs_done } else { 0 },
            measured: m,
        })
        .collect();
    Ok(Trained::Done(outcomes))
}

fn save<T: Training>(t: &T, runs: &Runs, at: &Progress) -> Result<()> {
    let (mut tensors, trainer) = t.state()?;
    tensors.extend([
        ("run/alive".to_string(), at.alive.to_kind(Kind::Int64)),
        ("run/dead_at".to_string(), at.dead_at.shallow_clone()),
        ("run/window".to_string(), at.window.sums().shallow_clone()),
    ]);
    let header = Header {
        runs: runs.ids.to_vec(),
        step: at.step,
        window: at.window.steps(),
        logs: at.logs.clone(),
        host_alive: at.host_alive.clone(),
        threads: tch::get_num_threads(),
        random: GENERATOR.to_string(),
        trainer,
    };
    let meta = HashMap::from([("header".to_string(), serde_json::to_string(&header)?)]);
    checkpoint::save(runs.checkpoint, &tensors, meta)
}

/// Where the runs stood at their checkpoint, restoring `t` there. None: no checkpoint, or one
/// these runs cannot resume from (an earlier version's, or another cohort's after the grid was
/// regrouped), and they start over. A damaged checkpoint, or one of other runs altogether, is an
/// error: nothing is overwritten.
fn resume<T: Training>(t: &mut T, runs: &Runs, rows: i64) -> Result<Option<Progress>> {
    let path = runs.checkpoint;
    if !path.exists() {
        return Ok(None);
    }
    let ck = checkpoint::load(path)?;
    let header = match header::<T::Meta>(&ck)? {
        Some(h) if h.random == GENERATOR => h,
        _ => {
            eprintln!(
                "{}: a checkpoint of an earlier ebgan version, which this one cannot resume \
                 from; the run starts over",
                path.display()
            );
            return Ok(None);
        }
    };
    if header.runs != runs.ids {
        if !header.runs.iter().any(|id| runs.ids.contains(id)) {
            bail!(
                "checkpoint {} belongs to run {}, not {}; move it away to start over",
                path.display(),
                header.runs.join(", "),
                runs.ids.join(", ")
            );
        }
        eprintln!(
            "{}: a checkpoint of another cohort ({} members); this cohort starts over",
            path.display(),
            header.runs.len()
        );
        return Ok(None);
    }
    let device = t.device();
    let k = runs.ids.len() as i64;
    let tensor = |name: &str, shape: &[i64]| -> Result<Tensor> {
        match ck.tensors.get(name) {
            Some(t) if t.size() == shape => Ok(t.to_device(device)),
            _ => bail!(
                "checkpoint {}: no `{name}` of shape {shape:?}",
                path.display()
            ),
        }
    };
    let at = Progress {
        step: header.step,
        alive: tensor("run/alive", &[k])?.to_kind(Kind::Bool),
        dead_at: tensor("run/dead_at", &[k])?,
        host_alive: header.host_alive,
        logs: header.logs,
        window: LogWindow::resume(tensor("run/window", &[rows, k])?, header.window),
    };
    anyhow::ensure!(
        at.host_alive.len() == k as usize && at.logs.len() == k as usize,
        "checkpoint {}: its header lists {} members' logs, expected {k}",
        path.display(),
        at.logs.len()
    );
    t.restore(&ck, header.trainer)?;
    tch::set_num_threads(header.threads.max(1));
    Ok(Some(at))
}

/// A checkpoint's header, its trainer's part read as `M` (None: a checkpoint written before
/// headers).
fn header<M: DeserializeOwned>(ck: &Loaded) -> Result<Option<Header<M>>> {
    let unreadable = || format!("checkpoint {}: unreadable header", ck.path.display());
    ck.meta_opt("header")
        .map(|h| serde_json::from_str(h).with_context(unreadable))
        .transpose()
}

/// The trainer's part of a checkpoint's header (`ebgan sample` reads a conv run's config).
pub fn trainer_meta<M: DeserializeOwned>(ck: &Loaded) -> Result<Option<M>> {
    Ok(header::<M>(ck)?.map(|h| h.trainer))
}

/// Where a checkpoint's runs stand, read from its header (`ebgan status`).
#[derive(Debug)]
pub struct Position {
    pub runs: Vec<String>,
    pub step: u64,
}

impl Position {
    pub fn of(ck: &Loaded) -> Result<Position> {
        // What `resume` would start over from is no resume point.
        let header = header::<serde::de::IgnoredAny>(ck)?
            .filter(|h| h.random == GENERATOR)
            .with_context(|| {
                format!(
                    "checkpoint {}: written by an earlier ebgan version (the run starts over)",
                    ck.path.display()
                )
            })?;
        Ok(Position {
            runs: header.runs,
            step: header.step,
        })
    }
}

/// The steps after which a training read anything back to the host, and how many reads: fed
/// from the progress callback, which runs after every step on the training thread.
#[cfg(test)]
pub(crate) struct ReadsPerStep {
    last: Option<u64>,
    pub reads: Vec<(u64, u64)>,
}

#[cfg(test)]
impl ReadsPerStep {
    pub fn new() -> Self {
        ReadsPerStep {
            last: None,
            reads: vec![],
        }
    }

    /// Called after step `step`; the first call only sets the baseline.
    pub fn after(&mut self, step: u64) {
        let now = ebgan_core::transfers().reads;
        if let Some(last) = self.last {
            if now > last {
                self.reads.push((step, now - last));
            }
        }
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trainer whose statistics are the step number: member i's row after step s is
    /// (s, 2s, -s, s/2); member i dies at step `deaths[i]`; its "weights" count the steps it
    /// trained. Every window mean below is derived by hand from that.
    struct Counting {
        deaths: Vec<Option<u64>>,
        per_epoch: u64,
        total: u64,
        trained: Tensor,
    }

    impl Counting {
        fn new(deaths: &[Option<u64>]) -> Self {
            Counting {
                deaths: deaths.to_vec(),
                per_epoch: 16,
                total: 40,
                trained: Tensor::zeros([deaths.len() as i64], (Kind::Float, Device::Cpu)),
            }
        }
    }

    impl Training for Counting {
        type Meta = String;

        fn schedule(&self) -> Schedule {
            Schedule {
                total: self.total,
                per_epoch: self.per_epoch,
                pretrain: 0,
                images_per_step: 1,
            }
        }

        fn device(&self) -> Device {
            Device::Cpu
        }

        fn log_columns(&self) -> &'static [LogColumn] {
            &[]
        }

        fn step(&mut self, done: u64, alive: &Tensor) -> Result<Stepped> {
            let s = (done + 1) as f64;
            let k = self.deaths.len();
            let row = |v: f64| Tensor::full([1, k as i64], v, (Kind::Float, Device::Cpu));
            let stats = Tensor::cat(&[row(s), row(2.0 * s), row(-s), row(s / 2.0)], 0);
            let dies: Vec<bool> = self.deaths.iter().map(|d| *d == Some(done + 1)).collect();
            let alive = alive.logical_and(&Tensor::from_slice(&dies).logical_not());
            self.trained += alive.to_kind(Kind::Float);
            // A dead member's statistics are NaN, as a diverged loss would be.
            let stats = stats.where_scalarother(&alive.unsqueeze(0), f64::NAN);
            Ok(Stepped {
                stats: Some(stats),
                alive,
            })
        }

        fn margins(&self, step: u64) -> Tensor {
            margin_row(vec![Some(step as f64); self.deaths.len()], Device::Cpu)
        }

        fn state(&self) -> Result<(Named, String)> {
            Ok((
                vec![("toy/trained".into(), self.trained.copy())],
                "toy".into(),
            ))
        }

        fn restore(&mut self, ck: &Loaded, meta: String) -> Result<()> {
            assert_eq!(meta, "toy");
            self.trained = ck.tensors["toy/trained"].copy();
            Ok(())
        }

        fn finish(&mut self, finished: &[bool]) -> Result<Vec<Measured>> {
            let trained = Vec::<f32>::try_from(&self.trained)?;
            Ok(finished
                .iter()
                .zip(trained)
                .map(|(_, t)| Measured {
                    test_error: Some(t as f64),
                    ..Measured::default()
                })
                .collect())
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("run-{i}")).collect()
    }

    /// Trains `t` as `ids` with its checkpoint in `dir`, asking for a stop after `stop_at`.
    fn run(t: &mut Counting, ids: &[String], dir: &Path, stop_at: Option<u64>) -> Result<Trained> {
        let stop = Stop::never();
        let path = dir.join(CHECKPOINT);
        let runs = Runs {
            ids,
            checkpoint: &path,
            checkpoint_every: Duration::MAX,
            final_checkpoint: false,
            stop: &stop,
        };
        train(t, &runs, &mut |s, _| {
            if Some(s) == stop_at {
                stop.request()
            }
        })
    }

    fn done(t: Result<Trained>) -> Vec<RunOutcome> {
        match t.unwrap() {
            Trained::Done(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn windows_close_at_epoch_ends_and_a_dead_member_is_frozen_where_it_died() {
        let dir = tempfile::tempdir().unwrap();
        let out = done(run(
            &mut Counting::new(&[None, Some(7)]),
            &ids(2),
            dir.path(),
            None,
        ));
        // 16 steps an epoch, 40 in all: windows end at 16, 32 and 40, their means those of
        // 1..=16, 17..=32 and 33..=40.
        let rows: Vec<(u64, f64, [f64; 4], Option<f64>)> = out[0]
            .log
            .iter()
            .map(|l| {
                (
                    l.step,
                    l.epoch,
                    [l.loss_d, l.loss_g, l.real, l.fake],
                    l.margin,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (16, 1.0, [8.5, 17.0, -8.5, 4.25], Some(16.0)),
                (32, 2.0, [24.5, 49.0, -24.5, 12.25], Some(32.0)),
                (40, 2.5, [36.5, 73.0, -36.5, 18.25], Some(40.0)),
            ]
        );
        assert_eq!((out[0].diverged_at, out[0].epochs_done), (None, 2));
        assert_eq!(out[0].measured.test_error, Some(40.0));
        // Member 1 died at step 7: no row, frozen after 6 steps, recorded as diverged there.
        assert_eq!((out[1].diverged_at, out[1].epochs_done), (Some(7), 0));
        assert!(out[1].log.is_empty());
        assert_eq!(out[1].measured.test_error, Some(6.0));
    }

    #[test]
    fn the_host_reads_once_per_window_boundary_and_never_between() {
        let dir = tempfile::tempdir().unwrap();
        let stop = Stop::never();
        let path = dir.path().join(CHECKPOINT);
        let runs = Runs {
            ids: &ids(2),
            checkpoint: &path,
            checkpoint_every: Duration::MAX,
            final_checkpoint: false,
            stop: &stop,
        };
        let mut reads = ReadsPerStep::new();
        let mut t = Counting::new(&[None, Some(7)]);
        train(&mut t, &runs, &mut |s, _| reads.after(s)).unwrap();
        assert_eq!(reads.reads, [(16, 1), (32, 1), (40, 1)]);
    }

    #[test]
    fn when_every_member_is_dead_training_ends_at_the_next_host_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Counting::new(&[Some(3), Some(5)]);
        let out = done(run(&mut t, &ids(2), dir.path(), None));
        assert_eq!(
            out.iter().map(|o| o.diverged_at).collect::<Vec<_>>(),
            [Some(3), Some(5)]
        );
        // The first check is at the first epoch's end, step 16; nothing was logged.
        assert!(out.iter().all(|o| o.log.is_empty()));
        assert_eq!(out[0].measured.test_error, Some(2.0));
    }

    #[test]
    fn a_stop_mid_window_resumes_to_the_same_outcome() {
        let whole = done(run(
            &mut Counting::new(&[None, Some(7)]),
            &ids(2),
            tempfile::tempdir().unwrap().path(),
            None,
        ));
        let dir = tempfile::tempdir().unwrap();
        let mut first = Counting::new(&[None, Some(7)]);
        match run(&mut first, &ids(2), dir.path(), Some(20)).unwrap() {
            Trained::Stopped { step } => {
                assert_eq!((step, dir.path().join(CHECKPOINT).is_file()), (20, true))
            }
            other => panic!("{other:?}"),
        }
        let resumed = done(run(
            &mut Counting::new(&[None, Some(7)]),
            &ids(2),
            dir.path(),
            None,
        ));
        for (a, b) in whole.iter().zip(&resumed) {
            assert_eq!(a.log, b.log);
            assert_eq!(a.diverged_at, b.diverged_at);
            assert_eq!(a.measured.test_error, b.measured.test_error);
        }
    }

    #[test]
    fn a_regrouped_cohorts_checkpoint_starts_over_and_other_runs_checkpoint_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Counting::new(&[None, None]);
        assert!(matches!(
            run(&mut t, &ids(2), dir.path(), Some(20)).unwrap(),
            Trained::Stopped { .. }
        ));
        // run-0 alone: a member of that cohort, which starts over.
        let alone = done(run(&mut Counting::new(&[None]), &ids(1), dir.path(), None));
        assert_eq!(alone[0].measured.test_error, Some(40.0));
        assert_eq!(alone[0].log[0].loss_d, 8.5);
        // Runs that share nothing with it: refused, naming the file.
        let other = vec!["other".to_string()];
        let err = run(&mut Counting::new(&[None]), &other, dir.path(), None).unwrap_err();
        assert!(format!("{err:#}").contains(CHECKPOINT), "{err:#}");
    }

    #[test]
    fn a_checkpoint_of_other_random_streams_starts_over() {
        // Trains to a stop at step 20, then again from there: did it resume?
        let resumes = |edit: &dyn Fn(&mut serde_json::Value)| -> bool {
            let dir = tempfile::tempdir().unwrap();
            let ids = ids(1);
            run(&mut Counting::new(&[None]), &ids, dir.path(), Some(20)).unwrap();
            let path = dir.path().join(CHECKPOINT);
            let ck = checkpoint::load(&path).unwrap();
            let mut header: serde_json::Value =
                serde_json::from_str(&ck.metadata["header"]).unwrap();
            edit(&mut header);
            let tensors: Named = ck.tensors.into_iter().collect();
            let meta = HashMap::from([("header".to_string(), header.to_string())]);
            checkpoint::save(&path, &tensors, meta).unwrap();
            // `ebgan status` lists a checkpoint as a resume point exactly when it is one.
            let listed = Position::of(&checkpoint::load(&path).unwrap()).is_ok();
            let (stop, mut said) = (Stop::never(), vec![]);
            let runs = Runs {
                ids: &ids,
                checkpoint: &path,
                checkpoint_every: Duration::MAX,
                final_checkpoint: false,
                stop: &stop,
            };
            let mut t = Counting::new(&[None]);
            train(&mut t, &runs, &mut |_, m| said.push(m.to_string())).unwrap();
            let resumed = said.iter().any(|m| m.starts_with("resumed at step 20"));
            assert_eq!(listed, resumed);
            resumed
        };
        assert!(resumes(&|_| ()));
        // Written before the streams were Philox (no `random`): its positions are ChaCha's.
        assert!(!resumes(&|h| {
            h.as_object_mut().unwrap().remove("random");
        }));
    }
}
