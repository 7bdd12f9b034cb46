//! End to end on real MNIST (a small subset, a few steps): `ebgan` as a user runs it.
//! Needs MNIST under $EBGAN_DATA or <workspace>/data (`just mnist`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::{ids, mnist_dir as data_dir, ok, rows};
use ebgan_exp::results::Status;

fn ebgan(args: &[&str]) -> Output {
    common::ebgan_env(args, &[("EBGAN_DATA", &data_dir())])
}

/// The shipped classifier, installed once for the tests of this file.
fn classifier() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().to_str().unwrap();
        ok(ebgan(&["classifier", "--device", "cpu", "--classifier", c]));
        dir
    })
    .path()
}

const TINY: &str = r#"
name = "tiny"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 1
score_samples = 128

[[grid]]
model = "ebgan"
n_layer_g = [2, 3]

[[grid]]
model = "gan"
optim_d = ["adam", "sgd"]

[[grid]]                 # diverges: recorded as such, and the grid goes on
model = "gan"
optim_d = "sgd"
optim_g = "sgd"
lr = 1e12
"#;

fn write_experiment(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(exp: &Path, results: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        exp.to_str().unwrap(),
        "--device",
        "cpu",
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend(["--classifier", classifier().to_str().unwrap()]);
    args.extend(extra);
    ok(ebgan(&args))
}

#[test]
fn grid_runs_resumes_and_reruns_only_a_deleted_row() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), TINY);
    let results = tmp.path().join("results");
    let log = run(&exp, &results, &[]);
    assert!(log.contains("5 to run"), "{log}");
    let root = results.join("tiny");
    let csv = root.join("runs.csv");
    let first = rows(&csv);
    assert_eq!(first.len(), 5, "{first:?}");
    let diverged: Vec<_> = first
        .iter()
        .filter(|r| r.status == Status::Diverged)
        .collect();
    assert_eq!(diverged.len(), 1, "{first:?}");
    for id in ids(&first) {
        let d = root.join(&id);
        for f in ["config.toml", "losses.csv", "result.json"] {
            assert!(d.join(f).is_file(), "{id}/{f} missing");
        }
        assert_eq!(
            d.join("samples.png").is_file(),
            diverged[0].run_id != id,
            "{id}"
        );
    }
    for f in [
        "summary.md",
        "fig2.png",
        "fig4.png",
        "classifier.json",
        "experiment.toml",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    let summary = std::fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(summary.contains("| gan | 3 | 2 | 1 |"), "{summary}");

    // Again: nothing to train, nothing rewritten.
    let kept = ids(&first)[0].clone();
    let stamp = std::fs::metadata(root.join(&kept).join("result.json"))
        .unwrap()
        .modified()
        .unwrap();
    let log = run(&exp, &results, &["--no-report"]);
    assert!(log.contains("5 already done, 0 to run"), "{log}");
    assert_eq!(rows(&csv), first);

    // Delete one row: exactly that run trains again.
    let victim = ids(&first)[1].clone();
    let header = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&csv).unwrap();
    let kept_rows: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with(&format!("{victim},")))
        .collect();
    assert_eq!(kept_rows.len(), 4);
    std::fs::write(&csv, format!("{header}\n{}\n", kept_rows.join("\n"))).unwrap();
    let log = run(&exp, &results, &["--no-report"]);
    assert!(
        log.contains("4 already done, 1 to run") && log.contains(&victim),
        "{log}"
    );
    assert_eq!(ids(&rows(&csv)), ids(&first));
    assert_eq!(
        std::fs::metadata(root.join(&kept).join("result.json"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
}

/// Two GAN runs that train as one cohort; the second is rerun alone.
const PAIR: &str = r#"
name = "pair"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 1
score_samples = 300

[[grid]]
model = "gan"
lr = [0.01, 0.001]
"#;

#[test]
fn a_run_rerun_alone_gets_every_cell_it_got_in_its_cohort() {
    // Its scores too: the samples it scores, and their scoring, do not depend on the cohort.
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), PAIR);
    let results = tmp.path().join("results");
    run(&exp, &results, &["--no-report"]);
    let csv = results.join("pair").join("runs.csv");
    let first = rows(&csv);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| r.cohort_size == 2), "{first:?}");
    let before = first[1].clone();
    let text = std::fs::read_to_string(&csv).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with(&format!("{},", before.run_id)))
        .collect();
    std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    run(&exp, &results, &["--no-report"]);
    let mut after = rows(&csv)
        .into_iter()
        .find(|r| r.run_id == before.run_id)
        .unwrap();
    assert_eq!(after.cohort_size, 1);
    // Every other cell the same: all but the cohort's size and the run's time.
    after.result.cohort_size = before.cohort_size;
    after.result.wall_s = before.wall_s;
    after.result.finished_at = before.finished_at.clone();
    assert_eq!(after, before);
    assert!(before.i_prime.is_some() && before.fid.is_some());
}

/// The main command as a fresh clone runs it: results go to runs/<name>, never to the committed
/// references in results/, every row names the pinned MKL path, and the run ends with its
/// verdict against results/<name>; `ebgan compare` gives the same and fails on a difference.
#[test]
fn a_run_writes_to_runs_and_ends_with_its_verdict_against_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), PAIR);
    let in_tmp = |args: &[&str]| {
        let data = data_dir();
        Command::new(env!("CARGO_BIN_EXE_ebgan"))
            .current_dir(tmp.path())
            .env("EBGAN_DATA", &data)
            .args(args)
            .output()
            .unwrap()
    };
    let c = classifier().to_str().unwrap();
    let train = || {
        ok(in_tmp(&[
            "run",
            exp.to_str().unwrap(),
            "--device",
            "cpu",
            "--classifier",
            c,
        ]))
    };
    let log = train();
    let (mine, reference) = (
        tmp.path().join("runs/pair"),
        tmp.path().join("results/pair"),
    );
    let first = rows(&mine.join("runs.csv"));
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| r.mkl_path == "intel"), "{first:?}");
    assert!(
        !tmp.path().join("results").exists() && !log.contains("bit-equal"),
        "{log}"
    );
    // Those rows become the reference; a fresh run compares with it and leaves it alone.
    std::fs::create_dir_all(&reference).unwrap();
    std::fs::copy(mine.join("runs.csv"), reference.join("runs.csv")).unwrap();
    std::fs::remove_dir_all(tmp.path().join("runs")).unwrap();
    let log = train();
    assert!(log.contains("**2 of 2 bit-equal**"), "{log}");
    assert!(std::fs::read_to_string(mine.join("verdict.md"))
        .unwrap()
        .contains("2 of 2 bit-equal"));
    let names: Vec<_> = std::fs::read_dir(&reference)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["runs.csv"], "the reference folder was written to");
    let (a, b) = (mine.to_str().unwrap(), reference.to_str().unwrap());
    assert!(ok(in_tmp(&["compare", a, b])).contains("2 of 2 bit-equal"));
    // One final loss one ulp off in the reference: one run differs, and compare says so.
    let text = std::fs::read_to_string(reference.join("runs.csv")).unwrap();
    let loss = first[0].final_loss_d.unwrap();
    let off = f64::from_bits(loss.to_bits() + 1);
    let edited = text.replacen(&format!(",{loss},"), &format!(",{off},"), 1);
    assert_ne!(edited, text);
    std::fs::write(reference.join("runs.csv"), edited).unwrap();
    let out = in_tmp(&["compare", a, b]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("1 of 2 bit-equal") && said.contains("final_loss_d in 1"),
        "{said}"
    );
}

#[test]
fn shards_cover_the_grid_exactly_once_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), TINY);
    let results = tmp.path().join("results");
    run(&exp, &results, &["--shard", "0/2", "--no-report"]);
    run(&exp, &results, &["--shard", "1/2"]);
    let root = results.join("tiny");
    let s0 = ids(&rows(&root.join("runs-shard-0-of-2.csv")));
    let s1 = ids(&rows(&root.join("runs-shard-1-of-2.csv")));
    assert_eq!((s0.len(), s1.len()), (3, 2));
    assert!(s0.iter().all(|id| !s1.contains(id)));
    let plan = ok(ebgan(&["plan", exp.to_str().unwrap(), "--list"]));
    let planned = common::planned_ids(&plan);
    let mut union = [s0, s1].concat();
    union.sort();
    assert_eq!(union, planned);
    // The report reads both shard files.
    let summary = std::fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(summary.contains("from 5 rows"), "{summary}");
}

#[test]
fn workers_split_a_shard_into_processes_that_train_each_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), TINY);
    let results = tmp.path().join("results");
    let log = run(&exp, &results, &["--workers", "2", "--cohort", "1"]);
    assert!(
        log.contains("[worker 1, shard 1/2]") && log.contains("5 of 5 runs"),
        "{log}"
    );
    let root = results.join("tiny");
    let s0 = ids(&rows(&root.join("runs-shard-0-of-2.csv")));
    let s1 = ids(&rows(&root.join("runs-shard-1-of-2.csv")));
    assert_eq!((s0.len(), s1.len()), (3, 2));
    let mut all = [s0, s1].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5);
    assert!(root.join("summary.md").is_file());
    // Nothing left: a second call trains nothing.
    let log = run(&exp, &results, &["--workers", "2", "--no-report"]);
    assert!(log.contains("0 to run"), "{log}");
}

#[test]
fn a_killed_grid_resumes_without_losing_or_repeating_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), &TINY.replace("epochs = 1", "epochs = 20"));
    let results = tmp.path().join("results");
    let csv = results.join("tiny/runs.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args([
            "run",
            exp.to_str().unwrap(),
            "--device",
            "cpu",
            "--jobs",
            "1",
            "--cohort",
            "3",
            "--no-report",
        ])
        .args([
            "--results",
            results.to_str().unwrap(),
            "--classifier",
            classifier().to_str().unwrap(),
        ])
        .env("EBGAN_DATA", data_dir())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(&csv)
        .map(|t| t.lines().count() < 2)
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no run finished in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = rows(&csv);
    assert!(
        !before.is_empty() && before.len() < 5,
        "killed too late to test anything: {}",
        before.len()
    );
    // The three GAN runs share a shape and train as one cohort: a kill inside it loses all three.
    let log = run(&exp, &results, &["--no-report", "--cohort", "3"]);
    assert!(
        log.contains(&format!(
            "{} already done, {} to run",
            before.len(),
            5 - before.len()
        )),
        "{log}"
    );
    let after = rows(&csv);
    assert_eq!(after.len(), 5);
    let mut unique = ids(&after);
    unique.dedup();
    assert_eq!(unique, ids(&after), "a run was committed twice");
    assert!(
        before.iter().all(|r| after.contains(r)),
        "a finished row changed"
    );
}

#[test]
fn plan_counts_table1() {
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/grid-mnist.toml");
    let out = ok(ebgan(&["plan", grid.to_str().unwrap()]));
    assert!(
        out.contains("ebgan: 512 runs")
            && out.contains("gan: 6144 runs")
            && out.contains("ebgan-pt: 512 runs")
            && out.contains("total: 7168 runs"),
        "{out}"
    );
}

#[test]
fn an_unknown_key_is_an_error_naming_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(
        tmp.path(),
        "name = \"x\"\n[[grid]]\nmodel = \"gan\"\nlearning_rate = 0.1\n",
    );
    let out = ebgan(&["plan", exp.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exp.toml") && err.contains("line 4") && err.contains("learning_rate"),
        "{err}"
    );
}

#[test]
fn a_corrupted_mnist_file_fails_with_a_checksum_message() {
    let tmp = tempfile::tempdir().unwrap();
    let mnist = tmp.path().join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::copy(data_dir().join("mnist").join(f), mnist.join(f)).unwrap();
    }
    let p = mnist.join("t10k-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args([
            "--data",
            tmp.path().to_str().unwrap(),
            "classifier",
            "--epochs",
            "1",
            "--classifier",
        ])
        .arg(tmp.path().join("c"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t10k-labels-idx1-ubyte")
            && err.contains("MD5")
            && err.contains("27ae3e4e09519cfbb04c329615203637"),
        "{err}"
    );
}

#[test]
fn failed_runs_exit_2_and_a_run_that_cannot_start_leaves_experiment_toml_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), TINY);
    let results = tmp.path().join("results");
    let root = results.join("tiny");
    let args = |classifier: &str| {
        vec![
            "run".to_string(),
            exp.display().to_string(),
            "--device".into(),
            "cpu".into(),
            "--no-report".into(),
            "--results".into(),
            results.display().to_string(),
            "--classifier".into(),
            classifier.to_string(),
        ]
    };
    let call = |classifier: &str| {
        let a = args(classifier);
        ebgan(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // No classifier: an error before anything is trained or recorded.
    let out = call("/nonexistent/classifier");
    assert_eq!(out.status.code(), Some(1));
    assert!(!root.join("experiment.toml").exists());

    // One EBGAN run cannot write its samples (a folder stands where the file goes): it fails,
    // the others are committed, and the exit status says so.
    let plan = ok(ebgan(&["plan", exp.to_str().unwrap(), "--list"]));
    let victim = common::planned_ids(&plan)
        .into_iter()
        .find(|id| id.starts_with("ebgan-"))
        .unwrap();
    std::fs::create_dir_all(root.join(&victim).join("samples.png/blocked")).unwrap();
    let out = call(classifier().to_str().unwrap());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!("FAILED {victim}")) && log.contains("retries them"),
        "{log}"
    );
    let done = ids(&rows(&root.join("runs.csv")));
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(!done.contains(&victim));
    let recorded = std::fs::read_to_string(root.join("experiment.toml")).unwrap();
    assert!(recorded.ends_with(TINY), "{recorded}");

    // A run of another file under the same name that fails to start keeps the record; once the
    // blocker is gone the failed run trains and the exit status is 0.
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, TINY.replace("n_layer_g = [2, 3]", "n_layer_g = 4")).unwrap();
    let out = ebgan(&[
        "run",
        other.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--classifier",
        "/nonexistent/classifier",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(root.join("experiment.toml")).unwrap(),
        recorded
    );
    std::fs::remove_dir_all(root.join(&victim).join("samples.png")).unwrap();
    let out = call(classifier().to_str().unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&rows(&root.join("runs.csv"))).len(), 5);
}

#[test]
fn a_report_killed_at_any_moment_leaves_every_figure_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), TINY);
    let results = tmp.path().join("results");
    run(&exp, &results, &[]);
    let root = results.join("tiny");
    let figures = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "md"))
            .collect();
        v.sort();
        v
    };
    let expected = figures();
    assert!(expected.len() >= 4, "{expected:?}");
    for f in &expected {
        std::fs::remove_file(f).unwrap();
    }
    let mut redrawn = 0;
    for kill_after_ms in [0u64, 40, 80, 120, 160, 200, 300, 400, 600, 900] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebgan"))
            .args(["report", root.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(kill_after_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        redrawn += usize::from(finished);
        // Whatever the moment: each figure is absent or whole, each table absent or complete.
        for f in figures() {
            let bytes = std::fs::read(&f).unwrap();
            if f.extension().is_some_and(|e| e == "png") {
                image::load_from_memory(&bytes).unwrap_or_else(|e| {
                    panic!("{} after a kill at {kill_after_ms} ms: {e}", f.display())
                });
            } else {
                assert!(
                    String::from_utf8(bytes)
                        .unwrap()
                        .contains("## Runs per family"),
                    "{} after a kill at {kill_after_ms} ms",
                    f.display()
                );
            }
        }
    }
    // Killed runs of the report are redone by the next one.
    ok(ebgan(&["report", root.to_str().unwrap()]));
    assert_eq!(
        figures(),
        expected,
        "{redrawn} of the killed reports had finished"
    );
}

#[test]
fn a_budget_or_sigterm_stop_checkpoints_and_the_resumed_grid_equals_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let text = TINY.replace("epochs = 1", "epochs = 150");
    let exp = write_experiment(tmp.path(), &text);
    let base = [
        "--device",
        "cpu",
        "--no-report",
        "--jobs",
        "1",
        "--cohort",
        "3",
    ];
    let call = |results: &Path, extra: &[&str]| {
        let mut args = vec!["run", exp.to_str().unwrap()];
        args.extend(base);
        args.extend(["--results", results.to_str().unwrap()]);
        args.extend(["--classifier", classifier().to_str().unwrap()]);
        args.extend(extra);
        ebgan(&args)
    };
    let whole = tmp.path().join("whole");
    ok(call(&whole, &[]));

    // A budget shorter than the grid: the cohort in flight when it ends is checkpointed, cohorts
    // it cannot fit are not started, and the exit status says to call again.
    let budget = tmp.path().join("budget");
    let out = call(&budget, &["--time-budget", "4s"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("the time budget") && log.contains("run(s) remain"),
        "{log}"
    );
    if log.contains("stopped at step") {
        assert!(log.contains("resumes from its checkpoint"), "{log}");
        let status = ok(ebgan(&["status", budget.join("tiny").to_str().unwrap()]));
        assert!(status.contains("checkpointed: "), "{status}");
    }
    ok(call(&budget, &[]));

    // SIGTERM (Slurm's time limit, preemption) once a run is committed.
    let term = tmp.path().join("term");
    let mut args: Vec<String> = vec!["run".into(), exp.display().to_string()];
    args.extend(base.iter().map(|s| s.to_string()));
    args.extend(["--results".into(), term.display().to_string()]);
    args.extend(["--classifier".into(), classifier().display().to_string()]);
    let child = Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args(&args)
        .env("EBGAN_DATA", data_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let csv = term.join("tiny/runs.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !csv.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no run finished in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Into the next cohort's training (each takes seconds): a stop between cohorts would leave
    // nothing in flight to checkpoint, which is not what this part tests.
    std::thread::sleep(std::time::Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("a stop was requested") && log.contains("stopped at step"),
        "{log}"
    );
    let committed = rows(&csv).len();
    assert!((1..5).contains(&committed), "{committed} rows: {log}");
    ok(call(&term, &[]));

    // Both end as the uninterrupted grid: the same rows and loss logs, and no checkpoint left.
    let reference = rows(&whole.join("tiny/runs.csv"));
    for root in [&budget, &term] {
        let got = rows(&root.join("tiny/runs.csv"));
        assert_eq!(ids(&got), ids(&reference));
        for r in &reference {
            let g = got.iter().find(|g| g.run_id == r.run_id).unwrap();
            assert_eq!(
                (
                    g.status,
                    g.final_loss_d,
                    g.final_loss_g,
                    g.i_prime,
                    g.epochs_done
                ),
                (
                    r.status,
                    r.final_loss_d,
                    r.final_loss_g,
                    r.i_prime,
                    r.epochs_done
                ),
                "{}",
                r.run_id
            );
            let losses = |root: &Path| {
                std::fs::read(root.join("tiny").join(&r.run_id).join("losses.csv")).unwrap()
            };
            assert_eq!(losses(root), losses(&whole), "{}", r.run_id);
            assert!(!root
                .join("tiny")
                .join(&r.run_id)
                .join("checkpoint.safetensors")
                .exists());
        }
    }
}

#[test]
fn sigkills_during_a_grid_and_its_checkpoint_writes_lose_and_repeat_nothing() {
    // Checkpoints after every step, so the kills also land inside checkpoint writes.
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path(), &TINY.replace("epochs = 1", "epochs = 20"));
    let flags = [
        "--no-report",
        "--jobs",
        "1",
        "--cohort",
        "1",
        "--checkpoint-minutes",
        "0",
    ];
    // The reference trains two cohorts at a time, the killed grid one: a run's thread count is
    // its own (train::Trainer::threads), so --jobs never changes a result.
    let whole = tmp.path().join("whole");
    let mut two_jobs = flags;
    two_jobs[2] = "2";
    run(&exp, &whole, &two_jobs);
    let killed = tmp.path().join("killed");
    let mut kills = 0;
    for delay_ms in [700u64, 1100, 1500, 1900, 2300, 2700] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebgan"))
            .args(["run", exp.to_str().unwrap(), "--device", "cpu"])
            .args(flags)
            .args(["--results", killed.to_str().unwrap()])
            .args(["--classifier", classifier().to_str().unwrap()])
            .env("EBGAN_DATA", data_dir())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    run(&exp, &killed, &flags);
    let csv = killed.join("tiny/runs.csv");
    let got = rows(&csv);
    let mut unique = ids(&got);
    unique.dedup();
    assert_eq!(unique.len(), 5, "{kills} kills: {:?}", ids(&got));
    assert_eq!(got.len(), 5, "a run was committed twice");
    let reference = rows(&whole.join("tiny/runs.csv"));
    // Bit for bit: every run trains on one libtorch thread whichever invocation, --jobs or
    // number of pending cohorts it resumes in, and a kill loses at most the work since the last
    // checkpoint, which is redone from the same streams.
    for r in &reference {
        let g = got.iter().find(|g| g.run_id == r.run_id).unwrap();
        assert_eq!(
            (
                g.status,
                g.final_loss_d,
                g.final_loss_g,
                g.i_prime,
                g.threads
            ),
            (r.status, r.final_loss_d, r.final_loss_g, r.i_prime, 1),
            "{} after {kills} kills",
            r.run_id
        );
        let dir = killed.join("tiny").join(&r.run_id);
        let json = std::fs::read_to_string(dir.join("result.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&json).unwrap();
        assert!(!dir.join("checkpoint.safetensors").exists());
    }
    assert!(
        kills >= 3,
        "only {kills} of the kills landed while training"
    );
}

#[test]
fn a_semi_supervised_search_selects_on_validation_and_draws_each_runs_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(
        tmp.path(),
        r#"
name = "semi"
[common]
batch_size = 20
train_images = 400
validation = 100
labels = 20
epochs = 2
n_layer_g = 2
size_g = 32
[[grid]]
model = "ebgan-ln"
margin = [0.0, 1.0]
g_lr = 0.0002
[[grid]]
model = "ladder"
"#,
    );
    let results = tmp.path().join("results");
    run(&exp, &results, &[]);
    let dir = results.join("semi");
    let rows = rows(&dir.join("runs.csv"));
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert!(r.result.validation_error.is_some(), "{r:?}");
        let ebgan_ln = r.config.model == ebgan_exp::config::Model::EbganLn;
        assert_eq!(r.config.g_lr, ebgan_ln.then_some(0.0002));
        // 300 training images at 20 a step: 15 steps an epoch, a row after each.
        let epochs = std::fs::read_to_string(dir.join(&r.result.run_id).join("epochs.csv"));
        assert_eq!(epochs.unwrap().lines().count(), 3, "{}", r.result.run_id);
    }
    let table = std::fs::read_to_string(dir.join("table2.md")).unwrap();
    assert!(
        table.contains("## Search: EBGAN-LN") && table.contains("(selected)"),
        "{table}"
    );
    assert!(table.contains("## Epoch by epoch"), "{table}");
    assert!(dir.join("epochs.png").is_file());
    // At m = 0 the hinge never acts and the fake passes have their own noise: LN's numbers.
    // At m = 1, above every energy here (about 0.2), it acts on every sample.
    use ebgan_exp::config::Model;
    let find = |model, m: f64| {
        let r = rows
            .iter()
            .find(|r| r.config.model == model && r.config.margin == m);
        let r = r.unwrap().result.clone();
        (
            r.validation_error.map(f64::to_bits),
            r.test_error.map(f64::to_bits),
        )
    };
    let ln = rows
        .iter()
        .find(|r| r.config.model == Model::Ladder)
        .unwrap();
    let ln = find(Model::Ladder, ln.config.margin);
    assert_eq!(find(Model::EbganLn, 0.0), ln);
    assert_ne!(find(Model::EbganLn, 1.0), ln);
    // Every run's rows gathered beside runs.csv: a header and 2 rows a run. With the run
    // folders gone (a committed reference in a fresh clone) the report redraws from it.
    let gathered = std::fs::read_to_string(dir.join("epochs.csv")).unwrap();
    assert_eq!(gathered.lines().count(), 1 + 3 * 2, "{gathered}");
    for r in &rows {
        std::fs::remove_dir_all(dir.join(&r.result.run_id)).unwrap();
    }
    std::fs::remove_file(dir.join("epochs.png")).unwrap();
    ok(ebgan(&["report", dir.to_str().unwrap()]));
    assert!(dir.join("epochs.png").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("table2.md")).unwrap(),
        table
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("epochs.csv")).unwrap(),
        gathered
    );
}
