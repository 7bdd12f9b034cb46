//! `ebgan gpu-check` on a machine without CUDA: every stage that can runs on the CPU at tiny
//! sizes, nothing fails, and every check has its line. And the results stage's mechanics on a
//! tiny grid: the sample's order, its growth across sessions, a spent budget.

use ebgan_exp::config::Experiment;
use ebgan_exp::gpu_check::reproduce::{self, Budgeted};
use ebgan_exp::gpu_check::returned;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{mnist_dir, ok};

/// Every check gpu-check reports on a CPU machine (the parity cases come from parity's lists).
const CHECKS: &[&str] = &[
    "setup.gpu",
    "setup.libtorch-cuda",
    "setup.libtorch-cuda-linked",
    "correct.cohort-vs-alone.ebgan",
    "correct.cohort-vs-alone.gan",
    "correct.cohort-vs-alone.began",
    "correct.cohort-vs-alone.magan",
    "correct.cohort-vs-alone.wgan-gp",
    "correct.conv-checkpoint-resume",
    "correct.ladder-step",
    "correct.optim-layouts.ebgan",
    "correct.optim-layouts.gan",
    "parity",
    "fast.bench",
    "fast.bench-grid-packed",
    "fast.bench-grid-per-tensor",
    "fast.bench-conv",
    "fast.jobs-vs-workers",
    "fast.grid-epoch-goal",
    "results.margin-sweep",
    "results.table2-100",
    "results.grid-sample",
];

/// The one device command (scripts/gpu-check.sh) with this binary, a scratch work folder and
/// the returned folder `ret`.
fn device_command(work: &Path, ret: &Path, flags: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gpu-check.sh");
    std::process::Command::new("bash")
        .arg(script)
        .arg(ret)
        .args(flags)
        .env("EBGAN_BIN", env!("CARGO_BIN_EXE_ebgan"))
        .env("EBGAN_WORK", work)
        .env("PYTHON", "python3")
        .output()
        .expect("bash runs")
}

/// The returned folder: the device tool's limits hold, and it holds what the docs say.
fn assert_returned(ret: &Path) {
    let broken = returned::violations(ret).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let mut names: Vec<String> = std::fs::read_dir(ret)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want = [
        "gpu-check.log",
        "gpu-check.md",
        "performance-rows.md",
        "results.zip",
    ];
    assert!(
        names.iter().all(|n| want.contains(&n.as_str())),
        "{names:?}"
    );
    assert!(
        names.contains(&"gpu-check.md".to_string()) && names.contains(&"results.zip".to_string())
    );
}

/// The dry run: the device command under the device machine's limits, on the CPU at tiny sizes.
#[test]
fn the_device_command_on_the_cpu_runs_every_stage_within_its_budget_and_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, ret) = (tmp.path().join("work"), tmp.path().join("ret"));
    let budget = 240.0;
    let start = Instant::now();
    // parity::tests::steps_and_scores_match_pytorch runs the parity cases in the same suite.
    let flags = ["--device", "cpu", "--skip-parity", "--budget", "240"];
    let log = ok(device_command(&work, &ret, &flags));
    // Start-up and packing beside the budget: seconds.
    assert!(start.elapsed().as_secs_f64() < budget + 15.0, "{log}");
    assert_returned(&ret);
    let md = std::fs::read_to_string(ret.join("gpu-check.md")).unwrap();
    assert!(md.contains("(--device-limits)"), "{md}");
    assert!(log.contains("[stage 4/4: results]"), "{log}");
    let lines: Vec<&str> = md.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(!lines.iter().any(|l| l.starts_with("- fail")), "{md}");
    for name in CHECKS {
        let line = lines
            .iter()
            .find(|l| l.split(" · ").nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{md}"));
        // What can run on the CPU passes; what is about CUDA says so.
        let want = match *name {
            "setup.gpu"
            | "setup.libtorch-cuda"
            | "fast.grid-epoch-goal"
            | "results.margin-sweep"
            | "results.table2-100"
            | "results.grid-sample" => "- skipped · ",
            "parity" | "fast.jobs-vs-workers" => "- skipped · ",
            _ if name.starts_with("setup.") => "- ",
            _ => "- pass · ",
        };
        assert!(line.starts_with(want), "{name}: {line}");
    }
    assert!(md.contains("no CUDA device"), "{md}");
    let rows = std::fs::read_to_string(ret.join("performance-rows.md")).unwrap();
    assert!(rows.contains("ebgan bench-conv"), "{rows}");
    // Under the limits cargo and just answer "not here" and nothing else on PATH is lost.
    let stub = work.join(".device-limits/bin/cargo");
    let out = std::process::Command::new(&stub).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on a device machine"));
    // The whole log came back, not only the end the device tool shows.
    let returned_log = std::fs::read_to_string(ret.join("gpu-check.log")).unwrap();
    assert!(
        returned_log.contains("[stage 1/4: set-up]"),
        "{returned_log}"
    );
}

/// A check that runs past the budget is cut there: the command ends on time with its report and
/// the returned folder, and what ran before the cut is in it.
#[test]
fn the_budgets_end_cuts_a_running_check_and_still_returns_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, ret) = (tmp.path().join("work"), tmp.path().join("ret"));
    let start = Instant::now();
    let flags = [
        "--device",
        "cpu",
        "--skip-parity",
        "--budget",
        "5",
        "--test-stall",
        "30",
    ];
    ok(device_command(&work, &ret, &flags));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_returned(&ret);
    let md = std::fs::read_to_string(ret.join("gpu-check.md")).unwrap();
    assert!(
        md.contains("- skipped · test-stall · skipped (budget): cut by the budget's end"),
        "{md}"
    );
    assert!(md.contains("setup.libtorch-cuda-linked"), "{md}");
}

/// 4 shape groups x 4 runs, 4 steps each.
const TINY_GRID: &str = r#"
name = "tiny-grid"
[common]
n_layer_g = [2, 3]
size_g = 32
n_layer_d = 2
size_d = [16, 24]
batch_size = 32
train_images = 256
steps = 4
score_samples = 128

[[grid]]
model = "ebgan"
seed = [0, 1]

[[grid]]
model = "gan"
lr = [0.01, 0.001]
"#;

#[test]
fn the_grid_sample_grows_in_its_seeded_order_across_budgeted_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = mnist_dir();
    let classifier = tmp.path().join("classifier");
    ok(common::ebgan_env(
        &[
            "classifier",
            "--device",
            "cpu",
            "--classifier",
            classifier.to_str().unwrap(),
        ],
        &[("EBGAN_DATA", &data)],
    ));
    let grid = tmp.path().join("tiny-grid.toml");
    std::fs::write(&grid, TINY_GRID).unwrap();
    let order = reproduce::sample_order(
        &Experiment::load(&grid).unwrap().runs,
        reproduce::SAMPLE_SEED,
    );
    assert_eq!(order.len(), 16);
    assert_eq!(
        reproduce::groups_in(&order[..4]).len(),
        4,
        "one run of each group first"
    );
    let results = tmp.path().join("results");
    let session = |secs: u64| {
        let at = Budgeted {
            results: &results,
            data: &data,
            classifier: &classifier,
            device: tch::Device::Cpu,
            deadline: Instant::now() + Duration::from_secs(secs),
        };
        reproduce::grow_sample(&grid, &tmp.path().join("experiments"), &at, 4).unwrap()
    };
    let done = |n: usize| {
        let rows = common::rows(&results.join(reproduce::SAMPLE).join("runs.csv"));
        let got: HashSet<String> = rows.iter().map(|r| r.run_id.clone()).collect();
        let want: HashSet<String> = order[..n].iter().map(|r| r.id.clone()).collect();
        assert_eq!(rows.len(), n);
        assert_eq!(got, want);
    };
    let (s, groups) = session(600);
    assert_eq!((s.planned, s.done, groups), (4, 4, 4));
    done(4);
    let (s, _) = session(600);
    assert_eq!((s.planned, s.done), (8, 8));
    done(8);
    // A spent budget starts nothing: the next session plans the same runs again.
    let (s, _) = session(0);
    assert_eq!((s.planned, s.done), (12, 8));
    done(8);
    let notes = std::fs::read_to_string(results.join(reproduce::SAMPLE).join("notes.md")).unwrap();
    assert!(notes.contains("8 of the 16"), "{notes}");
    assert!(results.join(reproduce::SAMPLE).join("summary.md").is_file());
    assert!(Path::new(&results.join(reproduce::SAMPLE).join("fig2.png")).is_file());
}
