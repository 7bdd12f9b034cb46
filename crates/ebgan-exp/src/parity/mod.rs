//! Numerical parity with PyTorch: N training steps of our trainer code and of an independent
//! PyTorch reference (parity/*.py, one plain module per member, `torch.optim`) from the same
//! initial weights, real batches, noise and dropout masks, which we export. Per-step losses,
//! final weights and optimizer moments must agree up to float32 reordering.
//!
//! Each case writes `OUT/<case>.safetensors` (inputs) and `OUT/<case>.json` (its settings); the
//! reference answers with `OUT/<case>.reference.safetensors`, compared key by key with ours.

pub mod conv;
pub mod exercise;
pub mod inception;
pub mod ladder;
pub mod mlp;
pub mod scores;
pub mod scoring;

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// float32's unit roundoff, 2^-24: one rounding moves a value by at most this share of itself.
pub const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
/// How many standard deviations of rounding noise a tolerance allows.
pub const LAMBDA: f64 = 6.0;
/// A tensor that moved less than this share of its magnitude is judged against that share
/// instead: its update is rounding noise (the ladder's upper combinators in their first steps).
pub const STILL: f64 = 1e-2;

/// The largest errors allowed, relative to the largest magnitude of the reference tensor (losses,
/// scores, moments) or of the reference's update final - initial (weights: an update off by a
/// few percent must fail however large the weights are). Derived from float32's rounding, the
/// case's longest sum and its number of steps; none is a value that happened to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub loss: f64,
    pub state: f64,
    pub update: f64,
}

impl Tolerances {
    /// For a case whose longest float32 sum adds `longest_sum` terms, over `steps` steps.
    ///
    /// - `loss`: two implementations add the same n terms in orders of their own; the results
    ///   differ by a random walk of n roundings, under LAMBDA sqrt(n) u of the terms' magnitudes
    ///   but for a probability of about n exp(-LAMBDA^2 / 2) (Higham and Mary 2019, "A new
    ///   approach to probabilistic rounding error analysis", Thm 2.4). The MLP cases' 784-pixel
    ///   sums give 1.0e-5.
    /// - `state` (optimizer moments, weights that hardly moved): each step's gradient takes up
    ///   to three passes of such sums (forward, backward, and WGAN-GP's double backward), and
    ///   the moments add the steps' gradients, so the errors add: 3 x steps x `loss` (1.5e-4
    ///   for 5 steps of the MLP cases).
    /// - `update` (weights, against the reference's update): Adam divides each gradient by its
    ///   own running magnitude, so an element's step carries its gradient's error relative to
    ///   that gradient, not to the tensor's largest. For an element whose gradient is at least
    ///   1/20 of the tensor's largest that is at most 20 x `state` of a step no larger than the
    ///   largest update: 20 x `state` (3.0e-3 for the MLP cases; an update 1% off fails by 3x).
    ///   An element whose gradient is rounding noise (its exact value 0) takes an lr-sized step
    ///   in a direction no two implementations share, under any tolerance: such parameters
    ///   are listed in [`Export::unchecked`].
    pub fn derived(longest_sum: usize, steps: usize) -> Self {
        let loss = LAMBDA * (longest_sum.max(1) as f64).sqrt() * UNIT_ROUNDOFF;
        let state = 3.0 * steps.max(1) as f64 * loss;
        Tolerances {
            loss,
            state,
            update: 20.0 * state,
        }
    }
}

/// What one case hands the reference and what our code computed from it.
pub struct Export {
    pub name: String,
    /// The reference script in parity/.
    pub script: &'static str,
    pub settings: serde_json::Value,
    pub inputs: Vec<(String, Tensor)>,
    /// Keyed as the reference keys its answers: `out/...` losses, `final/...` weights,
    /// `moment/...` optimizer moments.
    pub ours: BTreeMap<String, Tensor>,
    /// Parameters whose weights and moments are not compared: biases that feed a batch norm.
    /// Their exact gradient is zero (the norm subtracts the batch mean), what is computed is
    /// rounding noise, which Adam scales up to steps of about lr in directions no two
    /// implementations share; they change no output (the losses, compared, show it).
    pub unchecked: Vec<String>,
    /// What the case must exercise for its comparison to test every term (e.g. "k_t strictly
    /// between 0 and 1 in some D step"), with whether our run did: a case whose draws no
    /// longer reach a term fails rather than passing vacuously.
    pub exercised: Vec<(String, bool)>,
    /// The most terms any float32 sum of the case adds (a layer's fan-in, a weight gradient's
    /// batch x positions, a batch norm's batch x positions), and its training steps (1 for a
    /// score): what its [`Tolerances`] are derived from.
    pub longest_sum: usize,
    pub steps: usize,
}

impl Export {
    fn is_checked(&self, key: &str) -> bool {
        !self
            .unchecked
            .iter()
            .any(|n| key == format!("final/{n}") || key.starts_with(&format!("moment/{n}/")))
    }
}

/// One parameter's optimizer moments under the reference's names: Adam's `m` and `v`, SGD's
/// momentum `buf` (kept in exp_avg by an optimizer without Adam members), none for plain SGD.
/// `moment` looks a moment up by its ebgan-core name (`exp_avg`, `exp_avg_sq`, `momentum_buf`).
pub fn moments<'a>(
    kind: ebgan_core::OptimKind,
    momentum: f64,
    moment: impl Fn(&str) -> Option<&'a Tensor>,
) -> Vec<(&'static str, &'a Tensor)> {
    match kind {
        ebgan_core::OptimKind::Adam => vec![
            ("m", moment("exp_avg").expect("Adam's first moment")),
            ("v", moment("exp_avg_sq").expect("Adam's second moment")),
        ],
        ebgan_core::OptimKind::Sgd if momentum > 0.0 => {
            let buf = moment("momentum_buf").or_else(|| moment("exp_avg"));
            vec![("buf", buf.expect("SGD's momentum buffer"))]
        }
        ebgan_core::OptimKind::Sgd => vec![],
    }
}

/// One compared quantity group of a case.
#[derive(Debug, Clone)]
pub struct Check {
    pub case: String,
    /// "losses", "scores", "weights" or "moments".
    pub group: &'static str,
    pub tensors: usize,
    /// Worst error relative to the reference tensor's largest magnitude, and where.
    pub worst: f64,
    pub worst_key: String,
    pub tolerance: f64,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.worst <= self.tolerance
    }
}

/// Where the reference scripts live: `$EBGAN_PARITY_DIR`, the source tree's parity/, or
/// ./parity (a copied binary run from a checkout).
/// Steps a case of run `c` takes: `steps`, or its whole run where its family pretrains D
/// (MAGAN), so that epochs end inside the case.
pub fn case_steps(c: &RunConfig, steps: usize) -> usize {
    match c.pretrain_steps_over(c.train_images) {
        0 => steps,
        _ => c.total_steps() as usize,
    }
}

pub fn scripts_dir() -> PathBuf {
    if let Ok(d) = std::env::var("EBGAN_PARITY_DIR") {
        return PathBuf::from(d);
    }
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../parity");
    if source.is_dir() {
        source
    } else {
        PathBuf::from("parity")
    }
}

fn to_cpu(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).contiguous()
}

/// Longest a reference process may run (the slowest, every CPU case in one process, takes about
/// two minutes here).
pub const REFERENCE_SECS: f64 = 900.0;

/// Runs a reference script for at most [`REFERENCE_SECS`]; when it fails, the error carries the
/// end of its output (the Python traceback), so a report that ran it says why.
pub fn run_reference(command: &mut std::process::Command, what: &str) -> Result<()> {
    let (code, log) = crate::child::run_for(command, REFERENCE_SECS)?;
    if code != 0 {
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        bail!("{what} failed (exit status {code}):\n{tail}");
    }
    Ok(())
}

/// Writes the case's inputs, runs its reference with `python` and compares the answers.
pub fn check(export: &Export, out: &Path, python: &Path) -> Result<Vec<Check>> {
    check_all(std::slice::from_ref(export), out, python)
}

/// [`check`] for many cases, their references run by one python process (parity/run.py: one
/// torch import instead of one per case).
pub fn check_all(exports: &[Export], out: &Path, python: &Path) -> Result<Vec<Check>> {
    let bases = exports
        .iter()
        .map(|e| write(e, out))
        .collect::<Result<Vec<_>>>()?;
    let script = scripts_dir().join("run.py");
    let mut command = std::process::Command::new(python);
    command.arg(&script);
    for (e, base) in exports.iter().zip(&bases) {
        command.arg(e.script).arg(base);
    }
    let names: Vec<&str> = exports.iter().map(|e| e.name.as_str()).collect();
    run_reference(
        &mut command,
        &format!("the references of {}", names.join(", ")),
    )?;
    let mut checks = vec![];
    for (e, base) in exports.iter().zip(&bases) {
        checks.extend(judge(e, base)?);
    }
    Ok(checks)
}

/// Writes the case's inputs, our answers and its settings into `out`; returns its base path.
/// A case that no longer exercises its terms is an error before any reference runs.
fn write(export: &Export, out: &Path) -> Result<PathBuf> {
    for (what, done) in &export.exercised {
        if !done {
            bail!("{}: the case no longer exercises {what}", export.name);
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let base = out.join(&export.name);
    let inputs: Vec<(String, Tensor)> = export
        .inputs
        .iter()
        .map(|(n, t)| (n.clone(), to_cpu(t)))
        .collect();
    Tensor::write_safetensors(&inputs, base.with_extension("safetensors"))?;
    let ours: Vec<(String, Tensor)> = export
        .ours
        .iter()
        .map(|(n, t)| (n.clone(), to_cpu(t)))
        .collect();
    Tensor::write_safetensors(&ours, base.with_extension("ours.safetensors"))?;
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&export.settings)?,
    )?;
    Ok(base)
}

/// Compares the reference's answer for a written case with ours.
fn judge(export: &Export, base: &Path) -> Result<Vec<Check>> {
    let answer = base.with_extension("reference.safetensors");
    let reference: BTreeMap<String, Tensor> = Tensor::read_safetensors(&answer)
        .with_context(|| format!("cannot read the reference's answer {}", answer.display()))?
        .into_iter()
        .filter(|(k, _)| export.is_checked(k))
        .collect();
    let ours: BTreeMap<String, Tensor> = export
        .ours
        .iter()
        .filter(|(k, _)| export.is_checked(k))
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    let init: BTreeMap<String, Tensor> = export
        .inputs
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix("init/")
                .map(|n| (format!("final/{n}"), to_cpu(t)))
        })
        .collect();
    let tolerances = Tolerances::derived(export.longest_sum, export.steps);
    compare(&export.name, &ours, &reference, &init, &tolerances)
}

/// Every key of either side must be in both; errors are grouped by the key's first part. A
/// weight with its initial value in `init` (keyed like the weight) is judged against the
/// reference's update: max |ours - theirs| / max |theirs - init|.
pub fn compare(
    case: &str,
    ours: &BTreeMap<String, Tensor>,
    reference: &BTreeMap<String, Tensor>,
    init: &BTreeMap<String, Tensor>,
    tolerances: &Tolerances,
) -> Result<Vec<Check>> {
    for k in reference.keys() {
        if !ours.contains_key(k) {
            bail!("{case}: the reference has `{k}`, we do not");
        }
    }
    let mut checks: BTreeMap<&'static str, Check> = BTreeMap::new();
    for (key, mine) in ours {
        let Some(theirs) = reference.get(key) else {
            bail!("{case}: the reference did not answer `{key}`");
        };
        let mine = to_cpu(mine).to_kind(Kind::Double);
        let theirs = to_cpu(theirs).to_kind(Kind::Double);
        if mine.size() != theirs.size() {
            bail!(
                "{case}: `{key}` is {:?} here and {:?} in the reference",
                mine.size(),
                theirs.size()
            );
        }
        let magnitude = f64::try_from(theirs.abs().max())?;
        let (scale, against_update) = match init.get(key) {
            Some(start) => {
                let update = f64::try_from((&theirs - start.to_kind(Kind::Double)).abs().max())?;
                (update.max(STILL * magnitude), true)
            }
            None => (magnitude, false),
        };
        let scale = scale.max(1e-30);
        let err = f64::try_from((&mine - &theirs).abs().max())? / scale;
        let err = if err.is_finite() { err } else { f64::INFINITY };
        let (group, tolerance) = match key.split('/').next() {
            Some("out") => ("losses", tolerances.loss),
            // Scores in f64 from float32 inputs: judged as the float32 sums that made them.
            Some("score") => ("scores", tolerances.loss),
            Some("final") if against_update => ("weights", tolerances.update),
            Some("final") => ("weights", tolerances.state),
            Some("moment") => ("moments", tolerances.state),
            _ => bail!("{case}: unknown key group `{key}`"),
        };
        let c = checks.entry(group).or_insert(Check {
            case: case.to_string(),
            group,
            tensors: 0,
            worst: 0.0,
            worst_key: String::new(),
            tolerance,
        });
        c.tensors += 1;
        if err > c.worst || c.worst_key.is_empty() {
            c.worst = err;
            c.worst_key = key.clone();
        }
    }
    Ok(checks.into_values().collect())
}

/// A markdown table of checks.
pub fn table(checks: &[Check]) -> String {
    let mut s = String::from(
        "| case | quantity | tensors | worst relative error | at | tolerance | result |\n|---|---|---:|---:|---|---:|---|\n",
    );
    for c in checks {
        s += &format!(
            "| {} | {} | {} | {:.2e} | `{}` | {:.1e} | {} |\n",
            c.case,
            c.group,
            c.tensors,
            c.worst,
            c.worst_key,
            c.tolerance,
            if c.passed() { "pass" } else { "FAIL" }
        );
    }
    s
}

/// Every case, on `device`.
pub fn exports(device: Device, steps: usize) -> Vec<Export> {
    exporters(device, steps)
        .into_iter()
        .map(|(_, build)| build())
        .collect()
}

/// A case's name and what builds its export (our side trained or scored), not yet run.
pub type Exporter = (String, Box<dyn FnOnce() -> Export>);

/// Every case, each built only when asked: gpu-check builds them one at a time, so that one
/// that fails (a panic on the device) fails only itself.
pub fn exporters(device: Device, steps: usize) -> Vec<Exporter> {
    let mut e: Vec<Exporter> = vec![];
    for c in mlp::cases() {
        let name = c.name.to_string();
        e.push((name, Box::new(move || mlp::export(&c, steps, device))));
    }
    for c in conv::cases() {
        let name = c.name.to_string();
        e.push((name, Box::new(move || conv::export(&c, steps, device))));
    }
    for c in ladder::cases() {
        let name = c.name.to_string();
        e.push((name, Box::new(move || ladder::export(&c, steps, device))));
    }
    e.push(("scores".into(), Box::new(move || scores::export(device))));
    let classifier = move || scoring::classifier_export(device);
    e.push(("scoring-classifier".into(), Box::new(classifier)));
    e.push(("kid".into(), Box::new(move || scoring::kid_export(device))));
    e
}

/// `ebgan parity`: our training steps against the PyTorch references, on the CPU or CUDA.
#[derive(clap::Args)]
pub struct ParityArgs {
    /// Where the exported inputs and both sides' answers go.
    #[arg(long, default_value = "parity-out")]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// A python with torch 2.11.0.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Steps per case.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Only cases whose name contains this.
    #[arg(long)]
    case: Option<String>,
}

impl ParityArgs {
    pub fn run(&self) -> Result<()> {
        let device = crate::device::parse(&self.device)?;
        let chosen: Vec<Export> = exports(device, self.steps)
            .into_iter()
            .filter(|e| {
                self.case
                    .as_ref()
                    .is_none_or(|c| e.name.contains(c.as_str()))
            })
            .collect();
        let mut checks = check_all(&chosen, &self.out, &self.python)?;
        if self
            .case
            .as_ref()
            .is_none_or(|c| "fid-inception".contains(c.as_str()))
        {
            checks.extend(inception::check(&self.out, &self.python, device)?);
        }
        let report = table(&checks);
        print!("{report}");
        std::fs::write(self.out.join("parity.md"), &report)?;
        let failed = checks.iter().filter(|c| !c.passed()).count();
        if failed > 0 {
            bail!("{failed} of {} parity checks failed", checks.len());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_scores_match_pytorch() {
        let dir = tempfile::tempdir().unwrap();
        let python = Path::new("python3");
        let mut checks = check_all(&exports(Device::Cpu, 5), dir.path(), python).unwrap();
        checks.extend(inception::check(dir.path(), python, Device::Cpu).unwrap());
        eprintln!("{}", table(&checks));
        // 8 MLP, 7 convolutional and 3 ladder cases of 3 groups, 3 score cases, fid-inception's 2.
        assert_eq!(checks.len(), 59, "{checks:?}");
        assert!(checks.iter().all(Check::passed), "{}", table(&checks));
    }

    #[test]
    fn tolerances_follow_from_float32_rounding_by_hand() {
        // 784 terms: 6 x sqrt(784) = 168 roundings of 2^-24; 3 passes x 5 steps; 20 x that.
        let t = Tolerances::derived(784, 5);
        assert_eq!(t.loss, 168.0 / 16_777_216.0);
        assert!((t.state - 15.0 * 168.0 / 16_777_216.0).abs() < 1e-18);
        assert!((t.update - 300.0 * 168.0 / 16_777_216.0).abs() < 1e-17);
        // An update 1% off fails by 3x; longer sums and more steps allow more.
        assert!(0.01 / t.update > 3.0);
        let conv = Tolerances::derived(8 * 32 * 32, 5);
        assert!(conv.loss > t.loss && Tolerances::derived(784, 10).state > t.state);
    }

    #[test]
    fn compare_names_missing_and_wrong_answers() {
        let t = |v: &[f32]| Tensor::from_slice(v);
        let ours = BTreeMap::from([
            ("out/loss_d/0".to_string(), t(&[1.0, 2.0])),
            ("final/w".to_string(), t(&[10.0, -20.0])),
        ]);
        let mut theirs = BTreeMap::from([("out/loss_d/0".to_string(), t(&[1.0, 2.0]))]);
        let none = BTreeMap::new();
        let tol = Tolerances::derived(784, 5);
        let err = compare("c", &ours, &theirs, &none, &tol)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not answer `final/w`"), "{err}");
        // 0.002 off on a tensor whose largest magnitude is 20: relative error 1e-4.
        theirs.insert("final/w".to_string(), t(&[10.0, -20.002]));
        let checks = compare("c", &ours, &theirs, &none, &tol).unwrap();
        let w = checks.iter().find(|c| c.group == "weights").unwrap();
        assert!((w.worst - 1e-4).abs() < 1e-6, "{}", w.worst);
        assert!(checks.iter().find(|c| c.group == "losses").unwrap().worst == 0.0);
        // From an initial (9.5, -20.1) the reference moved by at most 0.5: 0.002 off is 0.4%
        // of the update, over the update's tolerance.
        let init = BTreeMap::from([("final/w".to_string(), t(&[9.5, -20.1]))]);
        let checks = compare("c", &ours, &theirs, &init, &tol).unwrap();
        let w = checks.iter().find(|c| c.group == "weights").unwrap();
        assert!(
            (w.worst - 0.002 / 0.5).abs() < 1e-4 && !w.passed(),
            "{}",
            w.worst
        );
        theirs.insert("extra/x".to_string(), t(&[0.0]));
        assert!(compare("c", &ours, &theirs, &none, &tol).is_err());
    }
}
