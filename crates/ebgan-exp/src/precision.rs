//! Float32 precision of CUDA matmuls and convolutions. libtorch's defaults differ by library
//! (cuBLAS matmuls in full FP32, cuDNN convolutions in TF32, whose 10-bit mantissa changes
//! results well beyond rounding), and no result should inherit that silently: `ebgan run`,
//! `ebgan bench` and `ebgan gpu-check` set both switches (csrc/precision.cpp) and every row
//! records which. The CPU computes in FP32 either way.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

extern "C" {
    fn ebgan_set_allow_tf32(allow: std::ffi::c_int) -> std::ffi::c_int;
    fn ebgan_allow_tf32() -> std::ffi::c_int;
    fn ebgan_set_deterministic_cudnn(on: std::ffi::c_int) -> std::ffi::c_int;
    fn ebgan_deterministic_cudnn() -> std::ffi::c_int;
}

/// Holds cuDNN to deterministic convolution algorithms without the benchmark search (`on`), or
/// releases it (training then lets cuDNN benchmark a run's fixed shapes). Checks that compare
/// bits between two trainings on a GPU need it: the benchmark may pick different kernels for
/// each.
pub fn set_deterministic_cudnn(on: bool) -> Result<()> {
    // SAFETY: as in `MatmulPrecision::apply`.
    let status = unsafe { ebgan_set_deterministic_cudnn(on as std::ffi::c_int) };
    ensure!(
        status == 0,
        "libtorch refused to set cuDNN's deterministic switch"
    );
    ensure!(
        deterministic_cudnn() == on,
        "cuDNN's deterministic switch did not read back {on}"
    );
    Ok(())
}

/// cuDNN held to deterministic algorithms while this lives: released when it drops, also when
/// the check that holds it fails or panics.
pub struct DeterministicCudnn(());

impl DeterministicCudnn {
    pub fn hold() -> Result<Self> {
        set_deterministic_cudnn(true)?;
        Ok(DeterministicCudnn(()))
    }
}

impl Drop for DeterministicCudnn {
    fn drop(&mut self) {
        if let Err(e) = set_deterministic_cudnn(false) {
            eprintln!("cannot release cuDNN's deterministic switch: {e:#}");
        }
    }
}

/// Whether cuDNN is held to deterministic algorithms now.
pub fn deterministic_cudnn() -> bool {
    // SAFETY: as in `MatmulPrecision::apply`.
    unsafe { ebgan_deterministic_cudnn() == 1 }
}

/// Named after PyTorch's `torch.set_float32_matmul_precision`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MatmulPrecision {
    /// Full FP32 in cuBLAS and cuDNN: what reproduction and the parity checks use.
    #[default]
    Highest,
    /// TF32 in cuBLAS matmuls and cuDNN convolutions (Ampere and later): faster, less exact.
    High,
}

impl MatmulPrecision {
    /// Sets libtorch's switches for this process, and checks they read back so.
    pub fn apply(self) -> Result<()> {
        let allow = self == MatmulPrecision::High;
        // SAFETY: plain C functions over libtorch's global context, which catch every C++
        // exception.
        let status = unsafe { ebgan_set_allow_tf32(allow as std::ffi::c_int) };
        ensure!(status == 0, "libtorch refused to set its TF32 switches");
        let now = Self::current()?;
        ensure!(
            now == (allow, allow),
            "libtorch's TF32 switches read (cuBLAS, cuDNN) = {now:?} after setting {self}"
        );
        Ok(())
    }

    /// Whether (cuBLAS, cuDNN) may use TF32 now.
    pub fn current() -> Result<(bool, bool)> {
        // SAFETY: as in `apply`.
        let bits = unsafe { ebgan_allow_tf32() };
        ensure!(bits >= 0, "libtorch refused to read its TF32 switches");
        Ok((bits & 1 != 0, bits & 2 != 0))
    }
}

impl fmt::Display for MatmulPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatmulPrecision::Highest => "highest",
            MatmulPrecision::High => "high",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deterministic_cudnn_switch_reads_back() {
        assert!(!deterministic_cudnn(), "libtorch's default");
        set_deterministic_cudnn(true).unwrap();
        assert!(deterministic_cudnn());
        set_deterministic_cudnn(false).unwrap();
        assert!(!deterministic_cudnn());
        // Held for a check, released when it ends, by a panic too.
        let r = std::panic::catch_unwind(|| {
            let _held = DeterministicCudnn::hold().unwrap();
            assert!(deterministic_cudnn());
            panic!("the check fails");
        });
        assert!(r.is_err() && !deterministic_cudnn());
    }

    #[test]
    fn both_switches_follow_the_setting() {
        // libtorch's own start: cuBLAS in FP32, cuDNN allowed TF32 (the mix this module exists
        // to end). No other test of this process sets them.
        assert_eq!(MatmulPrecision::current().unwrap(), (false, true));
        MatmulPrecision::High.apply().unwrap();
        assert_eq!(MatmulPrecision::current().unwrap(), (true, true));
        MatmulPrecision::Highest.apply().unwrap();
        assert_eq!(MatmulPrecision::current().unwrap(), (false, false));
    }
}
