//! `ebgan gpu-check OUT`: everything a session on a GPU machine should find out, in one
//! time-budgeted command that a copied binary runs beside a python with torch but no Rust
//! (scripts/gpu-check.sh). Stages, each with its slice of the budget:
//! 1. set-up (`setup.rs`): the card, what libtorch sees, whether libtorch_cuda is really linked;
//! 2. correct (`correct.rs`): parity with PyTorch on the device, a mixed cohort against its
//!    members alone, a conv checkpoint round trip, a ladder step, both optimizer layouts;
//! 3. fast (`fast.rs`): bench, bench-grid (both layouts), bench-conv, the grid-epoch goal;
//! 4. results (`reproduce.rs`): the Figure 9 margin sweep, then a growing stratified sample of
//!    Table 1, resumable across sessions.
//!
//! OUT/gpu-check.md gets one pass / fail / skipped line per check (rewritten after each line,
//! so a killed command leaves what it found); the exit status is non-zero when a check failed.
//! Without CUDA every stage that can runs on the CPU at tiny sizes, and the checks about CUDA
//! itself say "skipped: no CUDA device".

mod correct;
mod fast;
pub mod reproduce;
mod setup;

pub use crate::child::{run_for, OutOfTime};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

/// `ebgan gpu-check OUT`.
#[derive(clap::Args)]
pub struct GpuCheckArgs {
    /// Folder for gpu-check.md, performance-rows.md, the parity and bench files and (unless
    /// --results) the results folders.
    out: PathBuf,
    /// Seconds for the whole command; the stages get slices of it and the results stage what
    /// is left. The default fits a 10-minute call with start-up to spare.
    #[arg(long, default_value_t = 540.0)]
    budget: f64,
    /// auto (CUDA when libtorch sees it), cuda or cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// A python with torch 2.11.0 (and numpy, scipy, torchvision, pytorch-fid for the
    /// FID-Inception case) for the PyTorch references.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Leave out the parity stage (the test suite runs the same cases by itself).
    #[arg(long)]
    skip_parity: bool,
    /// Where the results stage's folders go (default OUT/results; they are seeded from
    /// ./results/<name>/runs*.csv, the committed rows of earlier sessions).
    #[arg(long)]
    results: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skipped,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        })
    }
}

/// What "skipped" says for a check that is about CUDA itself, or too big for the CPU.
pub const NO_CUDA: &str = "skipped: no CUDA device";

/// Everything a stage needs: where to write, the device, the clock and the budget.
pub struct Ctx {
    pub out: PathBuf,
    pub device: Device,
    pub python: PathBuf,
    pub data: PathBuf,
    pub results: PathBuf,
    pub skip_parity: bool,
    start: Instant,
    budget: Duration,
    /// The current stage's end.
    stage_end: Instant,
    stage: (usize, &'static str),
    lines: Vec<(usize, String, Outcome, String)>,
    header: String,
}

/// The stages, with the share of the budget each may use on CUDA and on the CPU (the results
/// stage: the rest; on the CPU it has nothing to run).
const STAGES: [(&str, f64, f64); 4] = [
    ("set-up", 0.03, 0.03),
    ("correct", 0.27, 0.5),
    ("fast", 0.25, 0.45),
    ("results", 1.0, 1.0),
];

impl Ctx {
    pub fn cuda(&self) -> bool {
        self.device.is_cuda()
    }

    /// Seconds left in the current stage's slice.
    pub fn stage_left(&self) -> f64 {
        self.stage_end
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    }

    /// Seconds left of the whole budget.
    pub fn budget_left(&self) -> f64 {
        (self.start + self.budget)
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    }

    /// Records a check's line, shows it and rewrites gpu-check.md.
    pub fn line(&mut self, name: &str, outcome: Outcome, detail: impl Into<String>) {
        let detail = detail.into().replace('\n', " ");
        eprintln!(
            "  [{:>5.0} s] {outcome} · {name} · {detail}",
            self.start.elapsed().as_secs_f64()
        );
        self.lines
            .push((self.stage.0, name.to_string(), outcome, detail));
        if let Err(e) = self.write() {
            eprintln!("cannot write {}: {e:#}", self.md().display());
        }
    }

    /// A check's result: Ok((passed, numbers)) or an error, which fails it.
    pub fn check(&mut self, name: &str, result: Result<(bool, String)>) {
        match result {
            Ok((true, d)) => self.line(name, Outcome::Pass, d),
            Ok((false, d)) => self.line(name, Outcome::Fail, d),
            // Cut by the budget is not a finding about the code.
            Err(e) if e.downcast_ref::<OutOfTime>().is_some() => {
                self.line(name, Outcome::Skipped, format!("skipped (budget): {e:#}"))
            }
            Err(e) => self.line(name, Outcome::Fail, format!("error: {e:#}")),
        }
    }

    /// Runs `f` as check `name` unless the stage's slice is spent.
    pub fn timed(&mut self, name: &str, f: impl FnOnce(&mut Ctx) -> Result<(bool, String)>) {
        if self.stage_left() <= 0.0 {
            let why = format!("skipped: the {} stage's time slice is spent", self.stage.1);
            return self.line(name, Outcome::Skipped, why);
        }
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|p| Err(anyhow::anyhow!("panicked: {}", panic_text(&p))));
        let secs = start.elapsed().as_secs_f64();
        self.check(name, r.map(|(ok, d)| (ok, format!("{d} ({secs:.1} s)"))));
    }

    fn md(&self) -> PathBuf {
        self.out.join("gpu-check.md")
    }

    fn write(&self) -> Result<()> {
        let mut s = format!("# gpu-check\n\n{}\n", self.header);
        for (i, (stage, ..)) in STAGES.iter().enumerate() {
            let lines: Vec<_> = self.lines.iter().filter(|l| l.0 == i + 1).collect();
            if lines.is_empty() {
                continue;
            }
            s += &format!("\n## {}. {stage}\n\n", i + 1);
            for (_, name, outcome, detail) in lines {
                s += &format!("- {outcome} · {name} · {detail}\n");
            }
        }
        let fails = self.failed();
        s += &format!(
            "\n{} checks: {} pass, {fails} fail, {} skipped · {:.0} s of a {:.0} s budget\n",
            self.lines.len(),
            self.count(Outcome::Pass),
            self.count(Outcome::Skipped),
            self.start.elapsed().as_secs_f64(),
            self.budget.as_secs_f64()
        );
        crate::fsutil::write_atomic(&self.md(), s.as_bytes())
    }

    fn count(&self, o: Outcome) -> usize {
        self.lines.iter().filter(|l| l.2 == o).count()
    }

    pub fn failed(&self) -> usize {
        self.count(Outcome::Fail)
    }

    /// Starts stage `i` (1-based): its slice ends at its share of what is left, and never after
    /// the budget.
    fn begin(&mut self, i: usize) {
        let (name, cuda_share, cpu_share) = STAGES[i - 1];
        let share = if self.cuda() { cuda_share } else { cpu_share };
        let left = self.budget_left();
        self.stage = (i, name);
        // A share of the whole budget (the last stage: all that is left).
        let slice = match share < 1.0 {
            true => (self.budget.as_secs_f64() * share).min(left),
            false => left,
        };
        self.stage_end = Instant::now() + Duration::from_secs_f64(slice);
        eprintln!(
            "[stage {i}/{}: {name}] elapsed {:.0} s · budget left {:.0} s · this stage {:.0} s",
            STAGES.len(),
            self.start.elapsed().as_secs_f64(),
            left,
            self.stage_left()
        );
    }
}

/// A panic's message.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The last line of `text` that says something (an error's message), for a fail line.
pub fn last_words(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

impl GpuCheckArgs {
    pub fn run(&self, data: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        anyhow::ensure!(
            self.budget.is_finite() && self.budget > 0.0,
            "--budget {}: expected a positive number of seconds",
            self.budget
        );
        let requested = self.device.as_str();
        let index: Option<usize> = match requested {
            "auto" | "cpu" => None,
            "cuda" => Some(0),
            _ => match requested.strip_prefix("cuda:").and_then(|k| k.parse().ok()) {
                Some(k) => Some(k),
                None => bail!("--device {requested:?}: expected auto, cuda, cuda:K or cpu"),
            },
        };
        let seen = tch::Cuda::device_count().max(0) as usize;
        let device = match (requested, index) {
            ("cpu", _) => Device::Cpu,
            (_, Some(k)) if k < seen => Device::Cuda(k),
            ("auto", _) if seen > 0 => Device::Cuda(0),
            _ => Device::Cpu,
        };
        // Every check and reference in full FP32 (the references are told the same).
        crate::precision::MatmulPrecision::Highest.apply()?;
        let now = Instant::now();
        let mut ctx = Ctx {
            out: self.out.clone(),
            device,
            python: self.python.clone(),
            data: data.to_path_buf(),
            results: self
                .results
                .clone()
                .unwrap_or_else(|| self.out.join("results")),
            skip_parity: self.skip_parity,
            start: now,
            budget: Duration::from_secs_f64(self.budget),
            stage_end: now,
            stage: (0, ""),
            lines: vec![],
            header: format!(
                "device: {} · budget {:.0} s · python {} · ebgan {}",
                crate::device::describe(device),
                self.budget,
                self.python.display(),
                env!("CARGO_PKG_VERSION")
            ),
        };
        ctx.begin(1);
        setup::run(&mut ctx);
        if index.is_some() && !ctx.cuda() {
            ctx.line(
                "setup.device",
                Outcome::Fail,
                format!("--device {requested}, but libtorch sees {seen} CUDA device(s)"),
            );
        } else {
            for (i, stage) in [correct::run, fast::run, reproduce::run]
                .into_iter()
                .enumerate()
            {
                ctx.begin(i + 2);
                stage(&mut ctx);
            }
        }
        ctx.write()?;
        eprintln!(
            "wrote {} ({:.0} s)",
            ctx.md().display(),
            ctx.start.elapsed().as_secs_f64()
        );
        match ctx.failed() {
            0 => Ok(()),
            n => bail!("{n} check(s) failed: see {}", ctx.md().display()),
        }
    }
}
