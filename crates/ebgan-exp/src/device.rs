//! `--device auto|cpu|cuda|cuda:K`.

use anyhow::{bail, Result};
use tch::Device;

pub fn parse(s: &str) -> Result<Device> {
    let cuda_count = tch::Cuda::device_count() as usize;
    let need_cuda = |i: usize| -> Result<Device> {
        if i >= cuda_count {
            bail!("--device {s}: CUDA device {i} is not available (libtorch sees {cuda_count} CUDA device(s))");
        }
        Ok(Device::Cuda(i))
    };
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => need_cuda(0),
        _ => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => need_cuda(i),
            None => bail!("--device {s:?}: expected auto, cpu, cuda or cuda:K"),
        },
    }
}

pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The libtorch that tch 0.24 builds against (docs/design.md: the pinned stack).
pub const LIBTORCH: &str = "2.11.0";

/// The machine a run trains on, as its row records it: CPU model, cores, the widest vector
/// instructions ATen can pick, and the environment variables that move ATen or MKL onto other
/// kernels, e.g. "AMD EPYC · 2 cores · AVX-512 · libtorch 2.11.0" (no commas: it is a CSV cell).
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let isa = if has("avx512f") {
        "AVX-512"
    } else if has("avx2") {
        "AVX2"
    } else {
        "no AVX2"
    };
    let mut s = format!(
        "{} · {} cores · {isa} · libtorch {LIBTORCH}",
        field("model name")
            .unwrap_or_else(|| std::env::consts::ARCH.to_string())
            .replace(',', " "),
        cores()
    );
    for var in ["ATEN_CPU_CAPABILITY", "MKL_CBWR"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                s.push_str(&format!(" · {var}={v}"));
            }
        }
    }
    s
}

/// Memory a run on `device` can have, in bytes: the host's total (CPU) or the card's free
/// memory (CUDA); None when unknown.
pub fn memory_bytes(device: Device) -> Option<u64> {
    match device {
        Device::Cuda(i) => cuda_free_bytes(i),
        _ => std::fs::read_to_string("/proc/meminfo")
            .ok()?
            .lines()
            .find(|l| l.starts_with("MemTotal:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kib| kib * 1024),
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Free memory of CUDA device `index` in bytes, from `nvidia-smi` (tch exposes no memory query),
/// through CUDA_VISIBLE_DEVICES when set: its entries may be indices or GPU UUIDs (or their
/// prefixes). A MIG instance (`MIG-...`) is not listed by `--query-gpu`: None (unknown).
pub fn cuda_free_bytes(index: usize) -> Option<u64> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,uuid,memory.free",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    parse_free(
        &String::from_utf8_lossy(&out.stdout),
        visible.as_deref(),
        index,
    )
}

/// `index, uuid, MiB free` lines -> bytes free of the `index`-th visible GPU.
fn parse_free(text: &str, visible: Option<&str>, index: usize) -> Option<u64> {
    let entry = match visible.map(str::trim) {
        Some(v) if !v.is_empty() => v.split(',').nth(index)?.trim().to_string(),
        _ => index.to_string(),
    };
    if entry.starts_with("MIG-") {
        return None;
    }
    text.lines().find_map(|l| {
        let mut cols = l.split(',').map(str::trim);
        let (i, uuid, mib) = (cols.next()?, cols.next()?, cols.next()?);
        let this = match entry.parse::<usize>() {
            Ok(n) => i.parse::<usize>().ok()? == n,
            Err(_) => uuid.starts_with(&entry),
        };
        this.then(|| mib.parse::<u64>().ok().map(|m| m << 20))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines() {
        let text = "0, GPU-aaaa1111-0000, 81000\n1, GPU-bbbb2222-0000, 1024\n";
        assert_eq!(parse_free(text, None, 1), Some(1024 << 20));
        assert_eq!(parse_free(text, None, 0), Some(81000 << 20));
        assert_eq!(parse_free(text, None, 2), None);
        assert_eq!(parse_free("garbage", None, 0), None);
        // Through CUDA_VISIBLE_DEVICES: indices, UUIDs and UUID prefixes; MIG: unknown.
        assert_eq!(parse_free(text, Some("1,0"), 0), Some(1024 << 20));
        assert_eq!(parse_free(text, Some("GPU-bbbb2222"), 0), Some(1024 << 20));
        assert_eq!(parse_free(text, Some(" GPU-aaaa, 1"), 0), Some(81000 << 20));
        assert_eq!(parse_free(text, Some("MIG-3c7d9e10-5f5f"), 0), None);
        assert_eq!(parse_free(text, Some("GPU-cccc"), 0), None);
    }
}
