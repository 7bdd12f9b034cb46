//! ebgan-exp: the experiments of "Energy-based Generative Adversarial Network" (Zhao, Mathieu,
//! LeCun, ICLR 2017) from TOML files. The modules follow the data flow:
//!
//! ```text
//! family     each family in one file: its settings, D, per-step state, log columns, label
//!            (beneath everything: config, train and report all ask it)
//! experiments/X.toml
//!   -> config   Experiment, RunConfig + defaults, grid expansion, validation, shards
//!   -> run      plan -> pending -> cohorts -> train -> commit; progress; workers
//!   -> train    one entry point for every family; the shared step; mlp / conv / ladder
//!   -> results  run folders, runs.csv rows (the commit point)
//!   -> report   figures and tables from results alone
//! beside them: data (MNIST, image sources, caches), scoring (the MNIST classifier), fid (FID and
//! KID with the FID-Inception network; fid_command: `ebgan fid`),
//! cluster (Slurm), bench, gpu_check (the checks of a GPU session), parity (our steps against PyTorch references), png (image sheets), device, fsutil,
//! stats (order statistics, which trainers' logs and reports share)
//! ```
//! A module imports only modules below it in this list (or beside it), never one above.

/// Keeps ebgan-core's answer to MKL's vendor question (`ebgan_core::mkl_path`) in every
/// executable that links this library, its own unit-test binary included. Naming the C symbol
/// would not: libtorch_cpu.so defines it too, and the linker binds to the first definition it
/// has seen. Naming a Rust item of the same module pulls in the object that defines ebgan-core's
/// answer, which then takes precedence and build.rs exports.
#[used]
static MKL_PIN: fn() -> u64 = ebgan_core::mkl_path::queries;

pub mod bench;
pub mod child;
pub mod cluster;
pub mod config;
pub mod data;
pub mod device;
pub mod family;
pub mod fid;
pub mod fid_command;
pub mod fsutil;
pub mod gpu_check;
pub mod parity;
pub mod png;
pub mod precision;
pub mod report;
pub mod results;
pub mod run;
pub mod scoring;
pub mod stats;
pub mod train;

#[cfg(test)]
mod tests {
    /// Where the process-wide lookup finds MKL's vendor question, found without naming
    /// ebgan-core's answer here (naming it would link it in by itself): in this executable.
    #[test]
    fn this_librarys_unit_tests_take_mkls_pinned_path_too() {
        let name = c"mkl_serv_intel_cpu_true";
        // SAFETY: dlsym and dladdr on a NUL-terminated name; dli_fname is NUL-terminated.
        let file = unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
            assert!(!sym.is_null(), "libtorch is linked and asks MKL's question");
            let mut info: libc::Dl_info = std::mem::zeroed();
            assert!(libc::dladdr(sym, &mut info) != 0);
            std::ffi::CStr::from_ptr(info.dli_fname)
                .to_string_lossy()
                .into_owned()
        };
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(
            std::fs::canonicalize(&file).ok().as_ref(),
            Some(&exe),
            "MKL's vendor question resolves in {file}, not in this test binary (MKL_PIN)"
        );
    }
}
