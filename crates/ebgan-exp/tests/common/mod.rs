//! Helpers shared by the end-to-end tests: the `ebgan` binary as a user runs it, and results
//! read back through the library.
#![allow(dead_code)] // each test file uses its own subset

use ebgan_exp::results::{read_rows, RunRecord};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The data folder the tests share ($EBGAN_DATA or <workspace>/data).
pub fn data_dir() -> PathBuf {
    std::env::var_os("EBGAN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

/// The data folder, which must hold MNIST (`just mnist` before the tests).
pub fn mnist_dir() -> PathBuf {
    let d = data_dir();
    assert!(
        d.join("mnist/train-images-idx3-ubyte").is_file(),
        "MNIST is not in {}: run `just mnist` (or `ebgan mnist --from DIR`) before the tests",
        d.display()
    );
    d
}

/// `ebgan ARGS` with extra environment variables.
pub fn ebgan_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ebgan"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("ebgan runs")
}

/// stderr + stdout of a command that must have succeeded and printed no libtorch warning (one
/// per training step would bury a device machine's output).
pub fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "ebgan failed: {err}");
    let warnings = ebgan_exp::child::libtorch_warnings(&err);
    assert!(
        warnings.is_empty(),
        "ebgan printed libtorch warnings: {warnings:#?}"
    );
    err + &String::from_utf8_lossy(&out.stdout)
}

/// The rows of one runs*.csv, read as `ebgan` reads them.
pub fn rows(csv: &Path) -> Vec<RunRecord> {
    read_rows(csv).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Sorted run ids of `rows`.
pub fn ids(rows: &[RunRecord]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    v.sort();
    v
}

/// Sorted run ids that `ebgan plan --list` prints for an experiment file.
pub fn planned_ids(plan_output: &str) -> Vec<String> {
    let mut v: Vec<String> = plan_output
        .lines()
        .filter(|l| !l.contains(": ") && !l.starts_with('(') && !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Trains the grid of experiment text `toml` (named `name`) on the CPU with the shipped
/// classifier, as a user runs it, in a temporary folder; returns that folder (kept alive by the
/// caller) and the experiment's results folder.
pub fn train_grid(toml: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join(format!("{name}.toml"));
    std::fs::write(&exp, toml).unwrap();
    let (results, classifier) = (tmp.path().join("results"), tmp.path().join("classifier"));
    let data = mnist_dir();
    let env = [("EBGAN_DATA", data.as_path())];
    let c = classifier.to_str().unwrap();
    ok(ebgan_env(
        &["classifier", "--device", "cpu", "--classifier", c],
        &env,
    ));
    let r = results.to_str().unwrap();
    let exp = exp.to_str().unwrap();
    let args = [
        "run",
        exp,
        "--device",
        "cpu",
        "--results",
        r,
        "--classifier",
        c,
    ];
    ok(ebgan_env(&args, &env));
    let root = results.join(name);
    (tmp, root)
}

/// A python script of the repository (the torch environment's python, via scripts/with-torch)
/// with `args`.
pub fn python(script: &str, args: &[&Path]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(script);
    Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("python3 (the torch environment's, via scripts/with-torch)")
}
