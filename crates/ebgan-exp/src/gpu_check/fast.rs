//! Stage 3: fast. `ebgan bench`, `bench-grid` (both optimizer layouts) and `bench-conv`
//! against PyTorch eager, run as child processes of this binary (each within the stage's
//! slice; a libtorch warning in a child's output fails its line), their tables gathered into
//! OUT/performance-rows.md under the card's name; and the grid-epoch estimate against the goal
//! of at most 7 minutes on one H100 / H200.

use super::{last_words, run_for, Ctx, Outcome, NO_CUDA};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The goal: one grid-epoch (6,656 runs x one MNIST epoch) in at most this many seconds.
pub const GRID_EPOCH_GOAL_S: f64 = 420.0;

/// One timed command: its name, its output file in OUT, and its flags (device and python are
/// added). CUDA: the sizes of docs/performance.md; CPU: tiny step counts and shapes.
fn commands(cuda: bool) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let tiny = ["--steps", "3", "--warmup", "1"];
    let small_grid = ["--shape", "2,400,2,128", "--shape", "3,400,3,128"];
    let with = |a: &[&'static str], b: &[&'static str]| [a, b].concat();
    match cuda {
        true => vec![
            ("bench", "bench.md", vec!["--steps", "30", "--warmup", "5"]),
            (
                "bench-grid",
                "bench-grid-packed.md",
                vec!["--optim-layout", "packed"],
            ),
            (
                "bench-grid",
                "bench-grid-per-tensor.md",
                vec!["--optim-layout", "per-tensor"],
            ),
            (
                "bench-conv",
                "bench-conv.md",
                vec![
                    "--steps", "30", "--warmup", "5", "--batch", "32", "--batch", "64",
                ],
            ),
        ],
        false => vec![
            (
                "bench",
                "bench.md",
                with(&tiny, &["--shape", "2,400,2,128"]),
            ),
            (
                "bench-grid",
                "bench-grid-packed.md",
                with(&with(&tiny, &small_grid), &["--optim-layout", "packed"]),
            ),
            (
                "bench-grid",
                "bench-grid-per-tensor.md",
                with(&with(&tiny, &small_grid), &["--optim-layout", "per-tensor"]),
            ),
            (
                "bench-conv",
                "bench-conv.md",
                with(&tiny, &["--base", "8", "--batch", "8", "--no-pipeline"]),
            ),
        ],
    }
}

/// The table rows of a bench file, compactly, for the check's line.
fn rows(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| ---") && !l.contains("---|"))
        .skip(1)
        .take(16)
        .map(|l| l.trim_matches('|').trim().replace(" | ", " "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Seconds of the cohort path's grid-epoch in a bench-grid file.
pub fn grid_epoch_seconds(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("| cohorts"))?;
    let open = line.rfind('(')?;
    line[open + 1..].split_whitespace().next()?.parse().ok()
}

fn bench(ctx: &Ctx, cmd: &str, file: &str, flags: &[&str]) -> Result<(bool, String)> {
    let out = ctx.out.join(file);
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut c = std::process::Command::new(exe);
    c.arg(cmd)
        .args(["--device", &crate::device::describe(ctx.device)])
        .arg("--out")
        .arg(&out)
        .args(flags);
    // The per-tensor grid runs Rust only: PyTorch's side does not depend on our layout. On the
    // CPU bench-grid runs Rust only (bench and bench-conv time PyTorch there).
    if !file.contains("per-tensor") && (ctx.cuda() || cmd != "bench-grid") {
        c.arg("--python").arg(&ctx.python);
    }
    let (code, log) = run_for(&mut c, ctx.stage_left())?;
    if code != 0 {
        bail!("{cmd} exited {code}: {}", last_words(&log));
    }
    let text = std::fs::read_to_string(&out)
        .with_context(|| format!("{cmd} wrote no {}", out.display()))?;
    // Its steps train as runs do: a warning per step would fill the output that comes back.
    match crate::child::libtorch_warnings(&log)[..] {
        [] => Ok((true, rows(&text))),
        ref w => Ok((
            false,
            format!(
                "{} libtorch warning line(s), the first: {}; {}",
                w.len(),
                w[0],
                rows(&text)
            ),
        )),
    }
}

pub fn run(ctx: &mut Ctx) {
    let cuda = ctx.cuda();
    for (cmd, file, flags) in commands(cuda) {
        let name = format!("fast.{}", file.trim_end_matches(".md"));
        ctx.timed(&name, |c| bench(c, cmd, file, &flags));
    }
    ctx.line(
        "fast.jobs-vs-workers",
        Outcome::Skipped,
        "skipped: bench-grid times one cohort in one process; --jobs against --workers is measured end to end with `ebgan run` (docs/performance.md), not here",
    );
    grid_goal(ctx);
    if let Err(e) = performance_rows(ctx) {
        ctx.line(
            "fast.performance-rows",
            Outcome::Fail,
            format!("error: {e:#}"),
        );
    }
}

/// The best grid-epoch of the two layouts against the goal (CUDA only: the goal is a GPU's).
fn grid_goal(ctx: &mut Ctx) {
    let estimates: Vec<(String, f64)> = ["packed", "per-tensor"]
        .iter()
        .filter_map(|l| {
            let text = std::fs::read_to_string(ctx.out.join(format!("bench-grid-{l}.md"))).ok()?;
            grid_epoch_seconds(&text).map(|s| (l.to_string(), s))
        })
        .collect();
    let Some((layout, best)) = estimates.iter().cloned().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        // bench-grid failed (its own line says why), or the slice ran out before it.
        let (outcome, why) = match ctx.stage_left() > 0.0 {
            true => (Outcome::Fail, "no grid-epoch estimate: bench-grid failed"),
            false => (
                Outcome::Skipped,
                "skipped: no grid-epoch estimate in the fast stage's time slice",
            ),
        };
        return ctx.line("fast.grid-epoch-goal", outcome, why);
    };
    let detail = format!(
        "grid-epoch by cohorts {best:.0} s = {:.1} min ({layout} layout; {}) against the goal of {:.0} min on one H100 / H200",
        best / 60.0,
        estimates
            .iter()
            .map(|(l, s)| format!("{l} {s:.0} s"))
            .collect::<Vec<_>>()
            .join(", "),
        GRID_EPOCH_GOAL_S / 60.0
    );
    match (ctx.cuda(), best <= GRID_EPOCH_GOAL_S) {
        (false, _) => ctx.line(
            "fast.grid-epoch-goal",
            Outcome::Skipped,
            format!("{NO_CUDA} ({detail}; tiny CPU sample)"),
        ),
        (true, true) => ctx.line("fast.grid-epoch-goal", Outcome::Pass, detail),
        (true, false) => ctx.line("fast.grid-epoch-goal", Outcome::Fail, detail),
    }
}

/// OUT/performance-rows.md: every bench table of this stage under the machine's name and date,
/// for docs/performance.md.
fn performance_rows(ctx: &Ctx) -> Result<()> {
    let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut s = format!(
        "# Performance rows: {}\n\n`ebgan gpu-check` on {when}, device {}{}.\n",
        super::setup::machine_name(ctx),
        crate::device::describe(ctx.device),
        if ctx.cuda() {
            ""
        } else {
            " (tiny step counts and shapes: a check of the commands, not figures to quote)"
        }
    );
    for (cmd, file, flags) in commands(ctx.cuda()) {
        let path: &Path = &ctx.out.join(file);
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        s += &format!("\n## `ebgan {cmd} {}`\n\n{text}", flags.join(" "));
    }
    crate::fsutil::write_atomic(&ctx.out.join("performance-rows.md"), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cohort_grid_epoch_is_read_from_a_bench_grid_table() {
        let t = "| path | grid-epoch |\n|---|---:|\n| cohorts (--cohort auto) | 124.7 h (448920 s) |\n| single-run path | 117.8 h (424080 s) |\n";
        assert_eq!(grid_epoch_seconds(t), Some(448920.0));
        assert_eq!(grid_epoch_seconds("nothing"), None);
    }
}
