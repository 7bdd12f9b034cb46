//! Results on disk: one folder per run and one row per finished run.
//!
//! results/<experiment>/
//!   experiment.toml, classifier.json    copies, so reports need nothing else
//!   runs.csv | runs-shard-I-of-N.csv    one row per finished run; the commit point of a run
//!   <run-id>/config.toml                resolved config, the first file a run writes
//!   <run-id>/losses.csv, samples.png, result.json
//!
//! A run counts as done when its row is in any runs*.csv; everything in its folder is written
//! before the row is appended. Deleting a row therefore re-runs exactly that run.

/// Where `ebgan run` writes by default: a user's own results, git-ignored.
pub const USER_ROOT: &str = "runs";
/// The committed references (results/<experiment>/): `ebgan run` compares with them and, unless
/// told `--results results`, never writes there.
pub const REFERENCE_ROOT: &str = "results";

pub mod events;
mod outcome;
mod read;
pub use outcome::{LossLog, Measured, RunOutcome, Status};
use read::parse_rows;
pub use read::read_rows;

use crate::config::{Experiment, Family, RunConfig, Shard};
use crate::fsutil::{append_line, write_atomic};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The result columns of a runs.csv row (before the config columns), in column order; also
/// the top of a run's result.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultColumns {
    pub run_id: String,
    pub family: Family,
    pub status: Status,
    pub i_prime: Option<f64>,
    pub i_prime_printed: Option<f64>,
    pub inception_score: Option<f64>,
    /// MNIST: Frechet distance of the scoring classifier's features, samples vs test set.
    #[serde(default)]
    pub fid: Option<f64>,
    /// Image runs: FID and KID against the dataset with the FID-Inception network.
    #[serde(default)]
    pub inception_fid: Option<f64>,
    #[serde(default)]
    pub inception_kid: Option<f64>,
    /// Test error in % (semi-supervised models).
    pub test_error: Option<f64>,
    /// Error in % on the validation images held out of training (`validation` > 0).
    #[serde(default)]
    pub validation_error: Option<f64>,
    pub final_loss_d: Option<f64>,
    pub final_loss_g: Option<f64>,
    #[serde(default)]
    pub epochs_done: usize,
    pub diverged_step: Option<u64>,
    #[serde(default, serialize_with = "millis")]
    pub wall_s: f64,
    /// Runs trained together with this one (1 = alone).
    #[serde(default = "one")]
    pub cohort_size: usize,
    #[serde(default)]
    pub device: String,
    /// libtorch threads the run trained on (0: a row from before this was recorded).
    #[serde(default)]
    pub threads: usize,
    /// Float32 precision of CUDA matmuls and convolutions in the process that trained it
    /// (`--matmul-precision`: highest or high; empty: a row from before this was recorded).
    #[serde(default)]
    pub matmul_precision: String,
    /// CPU model, cores, vector instructions and libtorch of the machine that trained it.
    #[serde(default)]
    pub machine: String,
    /// MKL's kernel path in the process that trained it: `intel` where the binary pinned it
    /// (ebgan-core/src/mkl_path.rs), `machine` where MKL chose by the CPU's vendor; empty: a
    /// row from before this was recorded.
    #[serde(default)]
    pub mkl_path: String,
    /// SHA-256 prefix of the scoring classifier's weights behind I', IS and FID (empty for
    /// unscored runs and rows from before it was recorded): scores are comparable only under
    /// one classifier.
    #[serde(default)]
    pub classifier: String,
    #[serde(default)]
    pub finished_at: String,
}

fn one() -> usize {
    1
}

impl ResultColumns {
    /// A row of `run_id` with no scores, losses or timing yet (one run, alone).
    pub fn new(run_id: String, family: Family, status: Status) -> Self {
        ResultColumns {
            run_id,
            family,
            status,
            i_prime: None,
            i_prime_printed: None,
            inception_score: None,
            fid: None,
            inception_fid: None,
            inception_kid: None,
            test_error: None,
            validation_error: None,
            final_loss_d: None,
            final_loss_g: None,
            epochs_done: 0,
            diverged_step: None,
            wall_s: 0.0,
            cohort_size: 1,
            device: String::new(),
            threads: 0,
            matmul_precision: String::new(),
            machine: String::new(),
            mkl_path: String::new(),
            classifier: String::new(),
            finished_at: String::new(),
        }
    }
}

fn millis<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

/// Everything known about a run once it has ended: its runs.csv row and its result.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub result: ResultColumns,
    pub config: RunConfig,
}

impl std::ops::Deref for RunRecord {
    type Target = ResultColumns;
    fn deref(&self) -> &ResultColumns {
        &self.result
    }
}

fn config_fields(c: &RunConfig) -> BTreeMap<String, serde_json::Value> {
    match serde_json::to_value(c).expect("a run config serialises") {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => unreachable!("a struct serialises to an object"),
    }
}

/// `r` as CSV fields, with the column names when `header`.
fn result_fields(r: &ResultColumns) -> Result<(Vec<String>, Vec<String>)> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.serialize(r)?;
    let bytes = w.into_inner()?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(&bytes[..]);
    let head = rdr.headers()?.iter().map(String::from).collect();
    let row = rdr
        .records()
        .next()
        .expect("one serialised row")?
        .iter()
        .map(String::from)
        .collect();
    Ok((head, row))
}

fn result_columns() -> Vec<String> {
    let example = ResultColumns::new(String::new(), Family::Gan, Status::Finished);
    result_fields(&example).expect("result columns serialise").0
}

/// The columns of runs.csv: the result columns, then every config field (sorted).
pub fn header() -> Vec<String> {
    result_columns()
        .into_iter()
        .chain(config_fields(&RunConfig::default()).into_keys())
        .collect()
}

impl RunRecord {
    fn csv_fields(&self) -> Result<Vec<String>> {
        let mut f = result_fields(&self.result)?.1;
        f.extend(config_fields(&self.config).into_values().map(|v| match v {
            serde_json::Value::String(s) => s,
            // An unset optional field (`g_lr`): an empty cell.
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }));
        Ok(f)
    }
}

fn csv_line(fields: &[String]) -> Result<String> {
    let mut w = csv::WriterBuilder::new().from_writer(vec![]);
    w.write_record(fields)?;
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// First line of a results folder's experiment.toml: the file it was copied from.
const SOURCE_HEADER: &str = "# experiment file copied by ebgan from";

/// The results folder of one experiment.
pub struct ResultsDir {
    pub root: PathBuf,
}

impl ResultsDir {
    pub fn new(root: PathBuf) -> Self {
        ResultsDir { root }
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// `runs.csv` for a whole grid, `runs-shard-I-of-N.csv` for a shard, so that concurrent
    /// shards never write the same file.
    pub fn runs_csv(&self, shard: Shard) -> PathBuf {
        if shard.count == 1 {
            self.root.join("runs.csv")
        } else {
            self.root
                .join(format!("runs-shard-{}-of-{}.csv", shard.index, shard.count))
        }
    }

    /// Every runs*.csv of the experiment.
    pub fn csv_files(&self) -> Result<Vec<PathBuf>> {
        let mut files = vec![];
        if self.root.is_dir() {
            for e in std::fs::read_dir(&self.root)? {
                let p = e?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with("runs") && name.ends_with(".csv") {
                    files.push(p);
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// Takes the exclusive lock of a shard file (`runs*.csv.lock`): one process per shard file,
    /// since a second `ebgan run` of the same shard would train runs twice. Held while the
    /// returned file lives.
    pub fn lock(&self, csv: &Path) -> Result<std::fs::File> {
        let path = csv.with_extension("csv.lock");
        let lock = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "{}: another `ebgan run` is working on this shard (lock {})",
                csv.display(),
                path.display()
            )
        })?;
        Ok(lock)
    }

    /// Claims run `id` for this process: an exclusive lock on `locks/<id>.lock`, held while the
    /// returned file lives (and released by the OS if the process dies); None when another
    /// `ebgan run` holds it. Every invocation claims each run it trains, whatever its shard or
    /// worker layout, so two invocations over one folder never train the same run.
    pub fn claim(&self, id: &str) -> Result<Option<std::fs::File>> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{id}.lock"));
        let lock = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(lock)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Copies the experiment file `file` (whose plan is `exp`) to the folder's experiment.toml,
    /// headed by where it came from. When that changes the plan, returns a notice saying how
    /// many finished rows reports now leave out and where the previous file came from.
    pub fn record_experiment(&self, file: &Path, exp: &Experiment) -> Result<Option<String>> {
        let path = self.root.join("experiment.toml");
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let source = file; // as given: relative paths stay relative (results get committed)
        let mut notice = None;
        if let Ok(previous) = std::fs::read_to_string(&path) {
            let (from, body) = match previous.split_once('\n') {
                Some((head, body)) if head.starts_with(SOURCE_HEADER) => {
                    (head[SOURCE_HEADER.len()..].trim().to_string(), body)
                }
                _ => ("an unrecorded file".to_string(), previous.as_str()),
            };
            if body != text {
                let planned: std::collections::HashSet<&str> =
                    exp.runs.iter().map(|r| r.id.as_str()).collect();
                let left_out = self
                    .rows()?
                    .iter()
                    .filter(|r| !planned.contains(r.run_id.as_str()))
                    .count();
                if left_out > 0 {
                    notice = Some(format!(
                        "{}: the plan changed (the previous experiment file was {from}): {left_out} \
                         finished row(s) are not in the plan of {} and reports leave them out \
                         (they stay in runs*.csv)",
                        self.root.display(),
                        source.display()
                    ));
                }
            }
        }
        let copy = format!("{SOURCE_HEADER} {}\n{text}", source.display());
        write_atomic(&path, copy.as_bytes())?;
        Ok(notice)
    }

    /// A run's losses.csv.
    pub fn read_losses(&self, id: &str) -> Result<Vec<LossLog>> {
        let path = self.run_dir(id).join("losses.csv");
        let mut rdr = csv::Reader::from_path(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        rdr.deserialize()
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: not a loss log", path.display()))
    }

    /// Writes the resolved config of a run about to start: the first file of its folder.
    pub fn start_run(&self, id: &str, config: &RunConfig) -> Result<()> {
        let dir = self.run_dir(id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomic(
            &dir.join("config.toml"),
            toml::to_string(config)?.as_bytes(),
        )
    }

    /// Writes the run's losses, result file and TensorBoard events, then commits its row.
    pub fn finish_run(&self, record: &RunRecord, log: &[LossLog], csv: &Path) -> Result<()> {
        let dir = self.run_dir(&record.run_id);
        let mut w = csv::Writer::from_writer(vec![]);
        for row in log {
            w.serialize(row)?;
        }
        write_atomic(&dir.join("losses.csv"), &w.into_inner()?)?;
        write_atomic(
            &dir.join("result.json"),
            serde_json::to_string_pretty(record)?.as_bytes(),
        )?;
        events::write_run(&dir, record, log)?;
        self.append_row(csv, record)
    }

    fn append_row(&self, csv: &Path, record: &RunRecord) -> Result<()> {
        let head = csv_line(&header())?;
        let line = csv_line(&record.csv_fields()?)?;
        // The row must read back as written: one row its reader refused would make every
        // later run, report and status of the folder fail.
        let back = parse_rows(format!("{head}{line}").as_bytes(), csv).with_context(|| {
            format!(
                "{}: refusing to commit run {}",
                csv.display(),
                record.run_id
            )
        })?;
        let again = back
            .iter()
            .map(|r| r.csv_fields())
            .collect::<Result<Vec<_>>>()?;
        anyhow::ensure!(
            again.len() == 1 && csv_line(&again[0])? == line,
            "{}: refusing to commit run {}: its row does not read back as written",
            csv.display(),
            record.run_id
        );
        // A missing or empty file (e.g. truncated by hand) starts with the header.
        if std::fs::metadata(csv).map(|m| m.len() == 0).unwrap_or(true) {
            write_atomic(csv, head.as_bytes())?;
        }
        append_line(csv, &line)
    }

    /// Drops a torn last line (no newline: a write cut by power loss) so appends stay valid, and
    /// migrates a file with an older column set. Call before appending to `csv`.
    /// A file that does not parse is left exactly as it is (the error names it).
    pub fn repair(&self, csv: &Path) -> Result<()> {
        let Ok(bytes) = std::fs::read(csv) else {
            return Ok(());
        };
        // Parse first: nothing rewrites a file it could not read.
        let rows = parse_rows(&bytes, csv)?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let keep = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            eprintln!(
                "{}: dropping a torn last line ({} bytes)",
                csv.display(),
                bytes.len() - keep
            );
            write_atomic(csv, &bytes[..keep])?;
        }
        let first = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let current = csv_line(&header())?;
        if !first.is_empty() && first != current.trim_end() {
            // Written by a version with other columns: rewrite it under this version's header
            // (missing config columns take their defaults, which were the old behaviour).
            let mut text = current;
            for r in &rows {
                text += &csv_line(&r.csv_fields()?)?;
            }
            eprintln!(
                "{}: rewriting {} rows under the current column set",
                csv.display(),
                rows.len()
            );
            write_atomic(csv, text.as_bytes())?;
        }
        Ok(())
    }

    /// Rows of every runs*.csv. A run id in two rows is one run when the rows are the same
    /// (counted once, the duplicate named) and an error when they differ: which is right is
    /// not ours to guess.
    pub fn rows(&self) -> Result<Vec<RunRecord>> {
        let mut seen: std::collections::HashMap<String, (usize, PathBuf)> = Default::default();
        let mut out: Vec<RunRecord> = vec![];
        for file in self.csv_files()? {
            for r in read_rows(&file)? {
                match seen.get(&r.run_id) {
                    None => {
                        seen.insert(r.run_id.clone(), (out.len(), file.clone()));
                        out.push(r);
                    }
                    Some((i, first)) if out[*i] == r => eprintln!(
                        "{}: {} is also in {} (the same row, counted once)",
                        file.display(),
                        r.run_id,
                        first.display()
                    ),
                    Some((_, first)) => bail!(
                        "{}: {} has another row in {} with other values: keep one of them",
                        file.display(),
                        r.run_id,
                        first.display()
                    ),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config of a test run named `name` (its seed derived from the name).
    fn config_of(name: &str) -> RunConfig {
        RunConfig {
            lr: 0.0001,
            dropout_d: true,
            seed: name.bytes().map(u64::from).sum(),
            ..Default::default()
        }
    }

    /// The id of test run `name`: its config's hash, as `ebgan run` writes it.
    fn id(name: &str) -> String {
        config_of(name).run_id()
    }

    fn record(name: &str, i_prime: Option<f64>) -> RunRecord {
        RunRecord {
            result: ResultColumns {
                run_id: id(name),
                family: Family::Gan,
                status: if i_prime.is_some() {
                    Status::Finished
                } else {
                    Status::Diverged
                },
                i_prime,
                i_prime_printed: i_prime.map(|v| v * v),
                inception_score: i_prime.map(f64::exp),
                fid: i_prime.map(|v| 10.0 * v),
                inception_fid: None,
                inception_kid: None,
                test_error: None,
                validation_error: None,
                final_loss_d: Some(1.5),
                final_loss_g: None,
                epochs_done: 3,
                diverged_step: i_prime.is_none().then_some(17),
                wall_s: 2.0,
                cohort_size: 1,
                device: "cpu".into(),
                threads: 1,
                matmul_precision: "highest".into(),
                machine: "AMD EPYC · 2 cores · AVX-512 · libtorch 2.11.0".into(),
                mkl_path: "intel".into(),
                classifier: "5615b1c19a98f8a3".into(),
                finished_at: "2026-01-01T00:00:00Z".into(),
            },
            config: config_of(name),
        }
    }

    #[test]
    fn rows_round_trip_and_a_torn_tail_is_ignored_then_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.25))).unwrap();
        // An optional field set on one row, unset (an empty cell) on the other.
        let mut b = record("b", None);
        b.config.g_lr = Some(0.0002);
        b.result.run_id = b.config.run_id();
        res.append_row(&csv, &b).unwrap();
        let rows = res.rows().unwrap();
        assert_eq!(
            (rows[0].config.g_lr, rows[1].config.g_lr),
            (None, Some(0.0002))
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].i_prime, Some(1.25));
        assert_eq!(rows[0].config, record("a", None).config);
        assert_eq!(
            (rows[1].status, rows[1].diverged_step),
            (Status::Diverged, Some(17))
        );
        // Every column comes back as it went in.
        assert_eq!(rows[0], record("a", Some(1.25)));
        // A torn line (no newline) does not count as a run and is cut before the next append.
        let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
        std::io::Write::write_all(&mut f, b"c,gan,fini").unwrap();
        assert_eq!(res.rows().unwrap().len(), 2);
        res.repair(&csv).unwrap();
        res.append_row(&csv, &record("d", Some(0.5))).unwrap();
        let ids: Vec<_> = res
            .rows()
            .unwrap()
            .into_iter()
            .map(|r| r.result.run_id)
            .collect();
        assert_eq!(ids, [id("a"), b.result.run_id, id("d")]);
    }

    #[test]
    fn a_file_with_an_older_column_set_is_migrated_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        // Drop the `labels` column, as a version before it would have written.
        let text = std::fs::read_to_string(&csv).unwrap();
        let head: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let j = head.iter().position(|h| *h == "labels").unwrap();
        let old: String = text
            .lines()
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| *i != j)
                    .map(|(_, c)| c)
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            })
            .collect();
        std::fs::write(&csv, old).unwrap();
        res.repair(&csv).unwrap();
        res.append_row(&csv, &record("b", Some(2.0))).unwrap();
        let rows = res.rows().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].config, record("a", None).config);
        assert_eq!(rows[1].i_prime, Some(2.0));
    }

    #[test]
    fn an_empty_runs_csv_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        std::fs::write(&csv, b"").unwrap();
        assert!(res.rows().unwrap().is_empty());
        res.repair(&csv).unwrap();
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        assert_eq!(res.rows().unwrap(), vec![record("a", Some(1.0))]);
    }

    #[test]
    fn a_row_its_reader_would_refuse_is_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        let before = std::fs::read(&csv).unwrap();
        // An infinite lr serialises to JSON null, which no run config column parses back from.
        let mut bad = record("b", Some(1.0));
        bad.config.lr = f64::INFINITY;
        let err = format!("{:#}", res.append_row(&csv, &bad).unwrap_err());
        assert!(
            err.contains(&format!("refusing to commit run {}", id("b"))),
            "{err}"
        );
        assert_eq!(std::fs::read(&csv).unwrap(), before);
        assert_eq!(res.rows().unwrap().len(), 1);
    }

    #[test]
    fn a_changed_plan_says_how_many_rows_reports_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().join("t"));
        std::fs::create_dir_all(&res.root).unwrap();
        let write = |name: &str, lr: &str| {
            let p = dir.path().join(name);
            std::fs::write(
                &p,
                format!("name = \"t\"\n[[grid]]\nmodel = \"gan\"\nlr = {lr}\n"),
            )
            .unwrap();
            (p.clone(), Experiment::load(&p).unwrap())
        };
        let (a, exp_a) = write("a.toml", "[0.1, 0.2]");
        assert_eq!(res.record_experiment(&a, &exp_a).unwrap(), None);
        for r in &exp_a.runs {
            let mut row = record(&r.id, Some(1.0));
            row.config = r.config.clone();
            row.result.run_id = r.id.clone();
            res.append_row(&res.runs_csv(Shard::ALL), &row).unwrap();
        }
        // The same file again, and a file that keeps both runs: nothing to say.
        assert_eq!(res.record_experiment(&a, &exp_a).unwrap(), None);
        let (b, exp_b) = write("b.toml", "[0.1, 0.2, 0.3]");
        assert_eq!(res.record_experiment(&b, &exp_b).unwrap(), None);
        // Another file under the same name that plans neither run.
        let (c, exp_c) = write("c.toml", "0.5");
        let notice = res.record_experiment(&c, &exp_c).unwrap().unwrap();
        assert!(
            notice.contains("2 finished row(s)") && notice.contains("b.toml"),
            "{notice}"
        );
        let copy = std::fs::read_to_string(res.root.join("experiment.toml")).unwrap();
        assert!(
            copy.ends_with("lr = 0.5\n") && copy.contains("c.toml"),
            "{copy}"
        );
        assert_eq!(
            Experiment::load(&res.root.join("experiment.toml"))
                .unwrap()
                .runs
                .len(),
            1
        );
    }

    #[test]
    fn shard_files_are_separate_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let s0 = res.runs_csv(Shard { index: 0, count: 2 });
        let s1 = res.runs_csv(Shard { index: 1, count: 2 });
        assert_ne!(s0, s1);
        res.append_row(&s0, &record("a", Some(1.0))).unwrap();
        res.append_row(&s1, &record("b", Some(2.0))).unwrap();
        assert_eq!(res.rows().unwrap().len(), 2);
    }

    #[test]
    fn a_bad_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        let text = std::fs::read_to_string(&csv)
            .unwrap()
            .replace(",1.0,1.0,", ",x1,1.0,");
        std::fs::write(&csv, text).unwrap();
        let err = format!("{:#}", res.rows().unwrap_err());
        assert!(
            err.contains("runs.csv") && err.contains("line 2") && err.contains("i_prime"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_named_and_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        // A non-UTF-8 header and a torn last line: repair would otherwise cut the tail.
        let mut bytes = std::fs::read(&csv).unwrap();
        bytes[1] = 0xff;
        bytes.extend_from_slice(b"torn");
        std::fs::write(&csv, &bytes).unwrap();
        for err in [res.repair(&csv).unwrap_err(), res.rows().unwrap_err()] {
            let err = format!("{err:#}");
            assert!(err.contains("runs.csv") && err.contains("line 1"), "{err}");
        }
        assert_eq!(std::fs::read(&csv).unwrap(), bytes);
    }

    #[test]
    fn a_cut_column_an_edited_row_or_a_conflicting_duplicate_is_an_error_and_nothing_is_rewritten()
    {
        let dir = tempfile::tempdir().unwrap();
        let res = ResultsDir::new(dir.path().to_path_buf());
        let csv = res.runs_csv(Shard::ALL);
        res.append_row(&csv, &record("a", Some(1.0))).unwrap();
        let good = std::fs::read_to_string(&csv).unwrap();
        let check = |text: &str, wants: &[&str]| {
            std::fs::write(&csv, text).unwrap();
            for err in [res.rows().unwrap_err(), res.repair(&csv).unwrap_err()] {
                let err = format!("{err:#}");
                assert!(wants.iter().all(|w| err.contains(w)), "{err}");
            }
            assert_eq!(std::fs::read_to_string(&csv).unwrap(), text, "rewritten");
        };
        // The i_prime column cut out (a spreadsheet export).
        let cut: String = good
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                [&cells[..3], &cells[4..]].concat().join(",") + "\n"
            })
            .collect();
        check(&cut, &["runs.csv", "line 1", "`i_prime`"]);
        // lr edited by hand: the row no longer hashes to its id.
        let edited = good.replace(",0.0001,", ",0.001,");
        assert_ne!(edited, good);
        check(&edited, &["runs.csv", "line 2", &id("a"), "edited by hand"]);
        // Ids that are paths or markup are not ids.
        for bad in ["../../outside", "<img src=x onerror=alert(1)>"] {
            check(&good.replace(&id("a"), bad), &["line 2", "is not the id"]);
        }
        // One run in two files: counted once when the rows agree, an error when they differ.
        std::fs::write(&csv, &good).unwrap();
        let other = res.runs_csv(Shard { index: 0, count: 2 });
        std::fs::write(&other, &good).unwrap();
        assert_eq!(res.rows().unwrap().len(), 1);
        let later = good.replace("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        assert_ne!(later, good);
        std::fs::write(&other, later).unwrap();
        let err = format!("{:#}", res.rows().unwrap_err());
        assert!(
            err.contains(&id("a")) && err.contains("other values"),
            "{err}"
        );
    }
}
