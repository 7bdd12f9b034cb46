//! Child processes (the PyTorch references, nvidia-smi, a nested `ebgan`) with a time limit and
//! their output captured, so that a reference that hangs or fails says why in the report that
//! ran it.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};

/// A child stopped because its time slice ran out: the check is skipped, not failed.
#[derive(Debug)]
pub struct OutOfTime(pub String);

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutOfTime {}

/// A process-wide end for every child (gpu-check's budget): `run_for` stops a child there even
/// when its own limit is later.
static DEADLINE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Sets the process-wide deadline (once; later calls keep the first).
pub fn set_deadline(at: Instant) {
    let _ = DEADLINE.set(at);
}

/// Runs `cmd` for at most `secs` (and not past the process-wide deadline); past it the child is
/// killed. Under a process-wide deadline the child leads its own process group and the whole
/// group is killed, so a benchmark's PyTorch reference ends with it; without one it stays in
/// ours, where a terminal's Ctrl-C reaches it. Returns its exit status and stdout + stderr.
pub fn run_for(cmd: &mut std::process::Command, secs: f64) -> Result<(i32, String)> {
    let own = Instant::now() + Duration::from_secs_f64(secs.max(1.0));
    match DEADLINE.get() {
        Some(&d) => run_until(cmd, d.min(own), true),
        None => run_until(cmd, own, false),
    }
}

/// [`run_for`] until `deadline`, the child in its own process group or not.
fn run_until(
    cmd: &mut std::process::Command,
    deadline: Instant,
    own_group: bool,
) -> Result<(i32, String)> {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("log");
    let file = std::fs::File::create(&log)?;
    if own_group {
        cmd.process_group(0);
    }
    let mut child = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            if own_group {
                // SAFETY: kill(2) on the group this child leads (process_group(0) above).
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            let limit = deadline.saturating_duration_since(started).as_secs_f64();
            return Err(
                OutOfTime(format!("{cmd:?} ran past its {limit:.0} s and was stopped")).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Ok((status.code().unwrap_or(-1), text))
}

/// The warning lines libtorch printed into `log` (c10's format: `[W1207 20:51:39.123 4242
/// Memory.cpp:46] Warning: ...`). A training step prints none: one per step would bury the output
/// a device machine sends back (tests and gpu-check's children count them).
pub fn libtorch_warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("[W")
                && l[2..].starts_with(|c: char| c.is_ascii_digit())
                && l.contains("] Warning: ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_a_deadline_what_the_child_started_is_stopped_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let pid_file = tmp.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", &script]);
        let err = run_until(&mut sh, Instant::now() + Duration::from_secs(1), true).unwrap_err();
        assert!(err.downcast_ref::<OutOfTime>().is_some(), "{err}");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild (sleep) is gone: reaped by init, or a zombie at most.
        std::thread::sleep(Duration::from_millis(200));
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        assert!(
            matches!(state, None | Some("Z")),
            "sleep {pid} still {state:?}"
        );
    }

    #[test]
    fn libtorch_warning_lines_are_counted_and_other_lines_are_not() {
        let log = "step 1\n[W1207 20:51:39.123456789 4242 Memory.cpp:46] Warning: The argument 'device' of Tensor.pin_memory() is deprecated. (function operator())\n[Warmup] Warning: not libtorch's\nWarning: plain\n  [W1207 20:51:40.1 4242 Memory.cpp:31] Warning: is_pinned\n";
        let w = libtorch_warnings(log);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("pin_memory"));
    }

    #[test]
    fn a_failing_reference_says_why_and_a_hanging_one_is_stopped() {
        let mut fails = std::process::Command::new("python3");
        fails.args(["-c", "import sys; print('working'); sys.exit('the reason')"]);
        let err = crate::parity::run_reference(&mut fails, "a reference")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exit status 1") && err.contains("the reason"),
            "{err}"
        );
        let mut hangs = std::process::Command::new("sleep");
        hangs.arg("30");
        let start = Instant::now();
        let err = run_for(&mut hangs, 1.0).unwrap_err();
        assert!(err.downcast_ref::<OutOfTime>().is_some(), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
