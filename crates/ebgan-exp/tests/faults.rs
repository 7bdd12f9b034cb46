//! The fault suite: what a careful user and a cluster do to a results folder and its inputs.
//! Each test names the fault; the unit tests beside the code cover flipped bytes in checkpoints
//! (train::checkpoint) and in the classifier (scoring), runs.csv files that do not parse
//! (results), derived counts that would overflow and sizes no machine has (config), and a
//! gpu-check budget (gpu_check tests).

mod common;
use common::{ebgan_env, ids, mnist_dir, ok, rows};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const SIX: &str = r#"
name = "six"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 40
score_samples = 128

[[grid]]
model = "ebgan"
seed = [0, 1, 2]

[[grid]]
model = "gan"
seed = [0, 1, 2]
"#;

fn classifier() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().to_str().unwrap().to_string();
        ok(ebgan(&[
            "classifier",
            "--device",
            "cpu",
            "--classifier",
            &c,
        ]));
        dir
    })
    .path()
}

fn ebgan(args: &[&str]) -> Output {
    ebgan_env(args, &[("EBGAN_DATA", &mnist_dir())])
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn spawn(exp: &Path, results: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args([
            "run",
            exp.to_str().unwrap(),
            "--device",
            "cpu",
            "--no-report",
        ])
        .args(["--results", results.to_str().unwrap()])
        .args(["--classifier", classifier().to_str().unwrap()])
        .args(["--cohort", "1", "--jobs", "1"])
        .args(extra)
        .env("EBGAN_DATA", mnist_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every row of every runs*.csv under `root`.
fn all_rows(root: &Path) -> Vec<ebgan_exp::results::RunRecord> {
    let mut out = vec![];
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("runs") && name.ends_with(".csv") {
            out.extend(rows(&p));
        }
    }
    out
}

#[test]
fn invocations_of_any_shard_and_worker_layout_never_train_a_run_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "six.toml", SIX);
    let results = tmp.path().join("results");
    // One folder, three layouts at once: the whole plan, the same as two workers (shards 0/2
    // and 1/2), and shard 1 of 3. Their shard files differ, so only the per-run claims keep
    // them apart.
    let children = vec![
        spawn(&exp, &results, &[]),
        spawn(&exp, &results, &["--shard", "0/1", "--workers", "2"]),
        spawn(&exp, &results, &["--shard", "1/3"]),
    ];
    let mut codes = vec![];
    for c in children {
        let out = c.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        // 0: all done; 3: left runs that another invocation held to it.
        assert!(matches!(out.status.code(), Some(0 | 3)), "{log}");
        codes.push(out.status.code());
    }
    let root = results.join("six");
    let got = all_rows(&root);
    let mut unique = ids(&got);
    unique.dedup();
    assert_eq!(unique.len(), 6, "{:?}", ids(&got));
    assert_eq!(
        got.len(),
        6,
        "a run was trained twice: {:?} ({codes:?})",
        ids(&got)
    );
    // And the folder reads as one grid.
    let status = ok(ebgan(&["status", root.to_str().unwrap()]));
    assert!(status.contains('6'), "{status}");
}

#[test]
fn a_run_too_large_for_the_machine_fails_alone_and_the_grid_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // 3 layers of 2^20 units: about 2^40 weights, far over any host's memory.
    let text = SIX.replace(
        "[[grid]]\nmodel = \"gan\"\nseed = [0, 1, 2]",
        "[[grid]]\nmodel = \"gan\"\nseed = [0, 1]\n\n[[grid]]\nmodel = \"gan\"\nn_layer_g = 3\nsize_g = 1048576",
    );
    let exp = write(
        tmp.path(),
        "big.toml",
        &text.replace("epochs = 40", "epochs = 1"),
    );
    let results = tmp.path().join("results");
    let out = spawn(&exp, &results, &[]).wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    let failed = std::fs::read_to_string(results.join("six/failed.log")).unwrap();
    assert!(
        failed.contains("GiB") && failed.contains("size_g"),
        "{failed}"
    );
    assert_eq!(rows(&results.join("six/runs.csv")).len(), 5, "{log}");
}

#[test]
fn fid_explains_what_it_accepts_and_never_prints_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    image::RgbImage::new(8, 8).save(one.join("a.png")).unwrap();
    let two = tmp.path().join("two");
    std::fs::create_dir_all(&two).unwrap();
    for name in ["a.png", "b.png"] {
        image::RgbImage::new(8, 8).save(two.join(name)).unwrap();
    }
    let mlp_run = tmp.path().join("run");
    std::fs::create_dir_all(&mlp_run).unwrap();
    std::fs::write(mlp_run.join("config.toml"), "").unwrap();
    std::fs::copy(two.join("a.png"), mlp_run.join("samples.png")).unwrap();
    let mnist_exp = write(tmp.path(), "six.toml", SIX);
    let weights = tmp.path().join("no-weights.safetensors");
    let fid = |a: &Path, b: &Path, extra: &[&str]| {
        let mut args = vec!["fid", a.to_str().unwrap(), b.to_str().unwrap()];
        args.extend(["--inception", weights.to_str().unwrap()]);
        args.extend(extra);
        let out = ebgan(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.contains("panicked") && !err.contains("NaN"), "{err}");
        err
    };
    let err = fid(&one, &two, &[]);
    assert!(err.contains("one") && err.contains("at least 2"), "{err}");
    let err = fid(&two, &two, &["--n", "1"]);
    assert!(err.contains("--n 1"), "{err}");
    let err = fid(&mnist_exp, &two, &[]);
    assert!(
        err.contains("six.toml") && err.contains("MNIST classifier"),
        "{err}"
    );
    let err = fid(&mlp_run, &two, &[]);
    assert!(err.contains("without checkpoint.safetensors"), "{err}");
}

#[test]
fn a_gpu_check_budget_must_be_a_positive_number_and_cuda_k_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["nan", "-1", "0", "inf"] {
        let flag = format!("--budget={bad}");
        let out = ebgan(&["gpu-check", tmp.path().to_str().unwrap(), &flag]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--budget"),
            "{bad}: {err}"
        );
    }
    // No CUDA here: --device cuda:0 is understood, and fails setup for want of the device
    // rather than being refused as a flag.
    let out = ebgan(&[
        "gpu-check",
        tmp.path().to_str().unwrap(),
        "--device",
        "cuda:0",
        "--budget",
        "5",
        "--skip-parity",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("expected auto, cuda"), "{err}");
    let md = std::fs::read_to_string(tmp.path().join("gpu-check.md")).unwrap_or_default();
    assert!(
        md.contains("--device cuda:0") || err.contains("cuda:0"),
        "{md}\n{err}"
    );
}

const FOUR: &str = r#"
name = "four"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 2
score_samples = 128

[[grid]]
model = "gan"
seed = [0, 1, 2, 3]
"#;

#[test]
fn a_closed_stderr_ends_the_run_without_a_panic_or_a_failed_run() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "four.toml", FOUR);
    let results = tmp.path().join("results");
    // `ebgan run ... 2>&1 | head -1`: the reader goes away after the first line.
    let mut child = spawn(&exp, &results, &[]);
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(13),
        "SIGPIPE, not a panic: {status:?} after {first:?}"
    );
    let root = results.join("four");
    assert!(
        !root.join("failed.log").exists(),
        "no run recorded as failed"
    );
    // The next invocation trains what is left, each run once.
    let out = spawn(&exp, &results, &[]).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut done = ids(&all_rows(&root));
    done.sort();
    let plan = ok(ebgan(&["plan", exp.to_str().unwrap(), "--list"]));
    assert_eq!(done, common::planned_ids(&plan));
}

#[test]
fn a_grid_whose_every_run_failed_exits_2_and_names_the_first_error() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "four.toml", FOUR);
    let results = tmp.path().join("results");
    // A folder where each run's sample sheet would go: every run fails when it writes it,
    // inside the run (as on a full disk), and none commits a row.
    let root = results.join("four");
    let plan = ok(ebgan(&["plan", exp.to_str().unwrap(), "--list"]));
    for id in common::planned_ids(&plan) {
        std::fs::create_dir_all(root.join(&id).join("samples.png")).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args(["run", exp.to_str().unwrap(), "--device", "cpu"])
        .args(["--results", results.to_str().unwrap()])
        .args(["--classifier", classifier().to_str().unwrap()])
        .env("EBGAN_DATA", mnist_dir())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("4 run(s) failed")
            && last.contains("the first:")
            && last.contains(" failed: "),
        "{last}"
    );
}
