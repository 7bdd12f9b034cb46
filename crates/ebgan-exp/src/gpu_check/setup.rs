//! Stage 1: the card (nvidia-smi), what libtorch sees, and whether this process really runs
//! with libtorch_cuda (the silent CPU fallback that build.rs's link argument guards against).

use super::{Ctx, Outcome, NO_CUDA};

/// `name, driver, memory.total, memory.free` of each GPU, or None without nvidia-smi.
pub fn nvidia_smi() -> Option<Vec<String>> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version,memory.total,memory.free",
            "--format=csv,noheader",
        ])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect()
    })
}

/// The card's name for the performance rows: the first GPU's, else the CPU's model.
pub fn machine_name(ctx: &Ctx) -> String {
    if ctx.cuda() {
        if let Some(gpus) = nvidia_smi() {
            if let Some(first) = gpus.first() {
                return first.split(',').next().unwrap_or(first).trim().to_string();
            }
        }
        return "CUDA device (no nvidia-smi)".into();
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} cores, no GPU", crate::device::cores())
}

/// The shared objects named `*libtorch_cuda*` mapped into this process.
pub fn mapped_libtorch_cuda() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut found: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("libtorch_cuda"))
        .map(String::from)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Whether the running binary names libtorch_cuda.so among its dynamic dependencies (its
/// string table holds every NEEDED name).
fn binary_names_libtorch_cuda() -> bool {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map(|b| b.windows(17).any(|w| w == b"libtorch_cuda.so\0"))
        .unwrap_or(false)
}

pub fn run(ctx: &mut Ctx) {
    let gpus = nvidia_smi();
    match &gpus {
        Some(g) if !g.is_empty() => {
            ctx.line("setup.gpu", Outcome::Pass, g.join("; "));
        }
        _ => ctx.line(
            "setup.gpu",
            Outcome::Skipped,
            format!("{NO_CUDA} (no nvidia-smi or no GPU listed)"),
        ),
    }
    // Touches CUDA: loads libtorch_cuda's kernels when they are linked.
    let available = tch::Cuda::is_available();
    let seen = format!(
        "tch::Cuda::is_available {available} · device_count {} · cudnn available {} · device {}",
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available(),
        crate::device::describe(ctx.device)
    );
    let has_gpu = gpus.as_ref().is_some_and(|g| !g.is_empty());
    match (available, has_gpu) {
        (true, _) => ctx.line("setup.libtorch-cuda", Outcome::Pass, seen),
        // A GPU is there and libtorch does not see it: the silent CPU fallback.
        (false, true) => ctx.line("setup.libtorch-cuda", Outcome::Fail, seen),
        (false, false) => ctx.line(
            "setup.libtorch-cuda",
            Outcome::Skipped,
            format!("{NO_CUDA} ({seen})"),
        ),
    }
    let mapped = mapped_libtorch_cuda();
    let needed = binary_names_libtorch_cuda();
    let detail = format!(
        "mapped: {} · the binary names libtorch_cuda.so: {needed}",
        if mapped.is_empty() {
            "none".to_string()
        } else {
            mapped.join(", ")
        }
    );
    let linked = !mapped.is_empty() && needed;
    let outcome = match (linked, has_gpu || ctx.cuda()) {
        (true, _) => Outcome::Pass,
        (false, true) => Outcome::Fail,
        // A CPU-only libtorch is a legitimate build where there is no GPU.
        (false, false) => Outcome::Skipped,
    };
    ctx.line("setup.libtorch-cuda-linked", outcome, detail);
}
