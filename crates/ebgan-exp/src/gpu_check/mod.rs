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
//! The budget is a hard end: every child stops at it, and a watchdog ends the command there with
//! the report of what it found, whatever check is running. With `--return DIR` the few files that
//! should come back from a device machine are packed there (`returned.rs`) after each stage and
//! at the end; `--device-limits` also gives this process the machine's limits (`sandbox.rs`):
//! `scripts/gpu-check.sh` is the one device command, and the same command with `--device cpu`
//! is its dry run here.
//! Without CUDA every stage that can runs on the CPU at tiny sizes, and the checks about CUDA
//! itself say "skipped: no CUDA device".

mod correct;
mod fast;
pub mod reproduce;
pub mod returned;
pub mod sandbox;
mod setup;

pub use crate::child::{run_for, OutOfTime};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    /// The folder that comes back from a device machine: gpu-check.md, performance-rows.md,
    /// gpu-check.log and results.zip (the small files of OUT), within the device tool's limits.
    #[arg(long = "return", value_name = "DIR")]
    ret: Option<PathBuf>,
    /// A device machine's limits for this command: its python children have no network and no
    /// pytorch-fid or torch-fidelity but the carried ones, and cargo and just answer "not here"
    /// (needs --return, whose folder is checked against the limits).
    #[arg(long, requires = "ret")]
    device_limits: bool,
    /// Tests: a check named test-stall that sleeps this many seconds after set-up (the budget's
    /// end must cut it).
    #[arg(long, hide = true)]
    test_stall: Option<f64>,
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
    /// Shared with the watchdog, which writes it when the budget ends mid-check.
    report: Arc<Mutex<Report>>,
    /// The check whose CUDA error left this process's CUDA context unusable (CUDA errors are
    /// sticky): later in-process checks are skipped, children still run.
    poisoned: Option<String>,
}

/// Whether an error's text is CUDA's own: after one, every later CUDA call of the process fails.
pub fn is_cuda_error(text: &str) -> bool {
    [
        "CUDA error",
        "CUBLAS_STATUS_",
        "CUDNN_STATUS_",
        "device-side assert",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// What gpu-check.md says, and where it and the returned files go.
struct Report {
    md: PathBuf,
    ret: Option<PathBuf>,
    start: Instant,
    budget: Duration,
    header: String,
    lines: Vec<(usize, String, Outcome, String)>,
    /// The check running now, for the watchdog's line.
    running: Option<String>,
}

/// The stages, with the share of the budget each may use on CUDA and on the CPU (the results
/// stage: the rest; on the CPU it has nothing to run), and whether its checks use this
/// process's CUDA context (the fast stage's run as children).
const STAGES: [(&str, f64, f64, bool); 4] = [
    ("set-up", 0.03, 0.03, true),
    ("correct", 0.27, 0.5, true),
    ("fast", 0.25, 0.45, false),
    ("results", 1.0, 1.0, true),
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
        self.lock().line(self.stage.0, name, outcome, detail.into());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        // A panic while writing leaves the lines whole: keep using them.
        self.report.lock().unwrap_or_else(|p| p.into_inner())
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
            Err(e) => {
                let text = format!("{e:#}");
                if is_cuda_error(&text) && self.poisoned.is_none() {
                    self.poisoned = Some(name.to_string());
                }
                self.line(name, Outcome::Fail, format!("error: {text}"))
            }
        }
    }

    /// Runs `f` as check `name` unless the stage's slice is spent, or a CUDA error earlier
    /// left this process's CUDA context unusable and `f` would use it (every stage's checks do
    /// but the fast stage's, which run as children).
    pub fn timed(&mut self, name: &str, f: impl FnOnce(&mut Ctx) -> Result<(bool, String)>) {
        if self.stage_left() <= 0.0 {
            let why = format!("skipped: the {} stage's time slice is spent", self.stage.1);
            return self.line(name, Outcome::Skipped, why);
        }
        let in_process = STAGES.get(self.stage.0.wrapping_sub(1)).is_none_or(|s| s.3);
        if let (Some(check), true) = (&self.poisoned, in_process) {
            let why = format!("skipped: the CUDA error of {check} left this process's CUDA context unusable (its line says which)");
            return self.line(name, Outcome::Skipped, why);
        }
        self.lock().running = Some(name.to_string());
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|p| Err(anyhow::anyhow!("panicked: {}", panic_text(&p))));
        let secs = start.elapsed().as_secs_f64();
        self.lock().running = None;
        self.check(name, r.map(|(ok, d)| (ok, format!("{d} ({secs:.1} s)"))));
    }

    pub fn failed(&self) -> usize {
        self.lock().count(Outcome::Fail)
    }

    /// Packs the returned folder (with --return) and says so when it cannot.
    fn pack(&self) {
        if let Err(e) = self.lock().pack() {
            eprintln!("cannot pack the returned folder: {e:#}");
        }
    }

    /// Starts stage `i` (1-based): its slice ends at its share of what is left, and never after
    /// the budget.
    fn begin(&mut self, i: usize) {
        let (name, cuda_share, cpu_share, _) = STAGES[i - 1];
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

impl Report {
    fn line(&mut self, stage: usize, name: &str, outcome: Outcome, detail: String) {
        let detail = detail.replace('\n', " ");
        eprintln!(
            "  [{:>5.0} s] {outcome} · {name} · {detail}",
            self.start.elapsed().as_secs_f64()
        );
        self.lines.push((stage, name.to_string(), outcome, detail));
        if let Err(e) = self.write() {
            eprintln!("cannot write {}: {e:#}", self.md.display());
        }
    }

    fn write(&self) -> Result<()> {
        let mut s = format!("# gpu-check\n\n{}\n", self.header);
        let names = STAGES.iter().map(|s| s.0).chain(["returned"]);
        for (i, stage) in names.enumerate() {
            let lines: Vec<_> = self.lines.iter().filter(|l| l.0 == i + 1).collect();
            if lines.is_empty() {
                continue;
            }
            s += &format!("\n## {}. {stage}\n\n", i + 1);
            for (_, name, outcome, detail) in lines {
                s += &format!("- {outcome} · {name} · {detail}\n");
            }
        }
        s += &format!(
            "\n{} checks: {} pass, {} fail, {} skipped · {:.0} s of a {:.0} s budget\n",
            self.lines.len(),
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skipped),
            self.start.elapsed().as_secs_f64(),
            self.budget.as_secs_f64()
        );
        crate::fsutil::write_atomic(&self.md, s.as_bytes())
    }

    fn count(&self, o: Outcome) -> usize {
        self.lines.iter().filter(|l| l.2 == o).count()
    }

    /// The returned folder from the work folder, then its check against the device tool's
    /// limits (a fail line, and the folder packed again with it, when they are broken).
    fn pack(&mut self) -> Result<()> {
        let Some(ret) = self.ret.clone() else {
            return Ok(());
        };
        let work = self.md.parent().unwrap_or(Path::new(".")).to_path_buf();
        returned::pack(&work, &ret)?;
        let broken = returned::violations(&ret)?;
        if !broken.is_empty() {
            let detail = format!(
                "{} is over the device tool's limits: {}",
                ret.display(),
                broken.join("; ")
            );
            self.line(STAGES.len() + 1, "returned.limits", Outcome::Fail, detail);
            returned::pack(&work, &ret)?;
        }
        Ok(())
    }
}

/// Ends the command at `end` whatever is running: the running check's line says the budget cut
/// it, gpu-check.md and the returned folder are written, and the exit status is gpu-check's own
/// (non-zero when a check failed).
fn watchdog(report: Arc<Mutex<Report>>, end: Instant) {
    std::thread::spawn(move || {
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        let stage = r.lines.last().map_or(1, |l| l.0);
        let (name, what) = match r.running.clone() {
            Some(n) => (n, "cut by the budget's end"),
            None => ("budget".to_string(), "the budget ended between checks"),
        };
        let detail = format!(
            "skipped (budget): {what} at {:.0} s; the checks above are what it found",
            r.start.elapsed().as_secs_f64()
        );
        r.line(stage, &name, Outcome::Skipped, detail);
        if let Err(e) = r.pack() {
            eprintln!("cannot pack the returned folder: {e:#}");
        }
        let fails = r.count(Outcome::Fail);
        eprintln!(
            "gpu-check: the {:.0} s budget ended: {} written",
            r.budget.as_secs_f64(),
            r.md.display()
        );
        std::process::exit(if fails > 0 { 1 } else { 0 });
    });
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
        if let Some(ret) = &self.ret {
            std::fs::create_dir_all(ret)
                .with_context(|| format!("--return {}: cannot create it", ret.display()))?;
            anyhow::ensure!(
                !ret.canonicalize()?.starts_with(self.out.canonicalize()?),
                "--return {}: must lie outside OUT {} (it is packed from OUT)",
                ret.display(),
                self.out.display()
            );
        }
        // Before libtorch starts threads: the environment children inherit.
        if self.device_limits {
            sandbox::apply(&self.out.join(".device-limits"))?;
        }
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
        let budget = Duration::from_secs_f64(self.budget);
        let report = Arc::new(Mutex::new(Report {
            md: self.out.join("gpu-check.md"),
            ret: self.ret.clone(),
            start: now,
            budget,
            header: format!(
                "device: {} · budget {:.0} s · python {} · ebgan {}{}",
                crate::device::describe(device),
                self.budget,
                self.python.display(),
                env!("CARGO_PKG_VERSION"),
                match self.device_limits {
                    true => " · under a device machine's limits (--device-limits)",
                    false => "",
                }
            ),
            lines: vec![],
            running: None,
        }));
        // Children stop at the budget's end; the watchdog a moment later, once they are gone.
        crate::child::set_deadline(now + budget);
        watchdog(report.clone(), now + budget + Duration::from_secs(1));
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
            budget,
            stage_end: now,
            stage: (0, ""),
            report,
            poisoned: None,
        };
        ctx.begin(1);
        setup::run(&mut ctx);
        if let Some(secs) = self.test_stall {
            ctx.lock().running = Some("test-stall".into());
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
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
                ctx.pack();
                ctx.begin(i + 2);
                stage(&mut ctx);
            }
        }
        ctx.lock().write()?;
        ctx.pack();
        let md = ctx.lock().md.clone();
        eprintln!(
            "wrote {} ({:.0} s)",
            md.display(),
            ctx.start.elapsed().as_secs_f64()
        );
        match ctx.failed() {
            0 => Ok(()),
            n => bail!("{n} check(s) failed: see {}", md.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(out: &Path) -> Ctx {
        let now = Instant::now();
        let budget = Duration::from_secs(3600);
        let report = Report {
            md: out.join("gpu-check.md"),
            ret: None,
            start: now,
            budget,
            header: String::new(),
            lines: vec![],
            running: None,
        };
        Ctx {
            out: out.to_path_buf(),
            device: Device::Cpu,
            python: "python3".into(),
            data: out.to_path_buf(),
            results: out.to_path_buf(),
            skip_parity: true,
            start: now,
            budget,
            stage_end: now,
            stage: (0, ""),
            report: Arc::new(Mutex::new(report)),
            poisoned: None,
        }
    }

    #[test]
    fn a_cuda_error_fails_its_check_and_skips_the_later_in_process_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = ctx(tmp.path());
        c.begin(2);
        c.timed("a", |_| Ok((true, "fine".into())));
        c.timed("b", |_| {
            Err(anyhow::anyhow!(
                "Torch(\"CUDA error: an illegal memory access was encountered\")"
            ))
        });
        c.timed("c", |_| panic!("must not run"));
        c.begin(3);
        c.timed("d", |_| Ok((true, "a child".into())));
        c.begin(4);
        c.timed("e", |_| panic!("must not run"));
        let md = std::fs::read_to_string(tmp.path().join("gpu-check.md")).unwrap();
        let line = |n: &str| {
            md.lines()
                .find(|l| l.split(" · ").nth(1) == Some(n))
                .unwrap_or_else(|| panic!("no {n}: {md}"))
                .to_string()
        };
        assert!(line("a").starts_with("- pass"), "{md}");
        assert!(
            line("b").starts_with("- fail · b · error: Torch(\"CUDA error"),
            "{md}"
        );
        for n in ["c", "e"] {
            assert!(line(n).contains("skipped: the CUDA error of b"), "{md}");
        }
        assert!(line("d").starts_with("- pass"), "{md}");
        // An error that is not CUDA's poisons nothing.
        let mut c = ctx(tmp.path());
        c.begin(2);
        c.timed("f", |_| Err(anyhow::anyhow!("a reference failed")));
        assert!(c.poisoned.is_none());
        assert!(!is_cuda_error("cudaMalloc is a word") && is_cuda_error("CUDNN_STATUS_BAD_PARAM"));
    }
}
