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

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
