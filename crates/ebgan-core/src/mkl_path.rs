//! One MKL kernel path on every machine: Intel's.
//!
//! MKL, linked into libtorch_cpu, picks its kernels by asking `mkl_serv_intel_cpu_true()`:
//! Intel's CPUs take one set of kernels, every other CPU another, and the two round differently,
//! so the same run trained on an Intel Xeon and on an AMD EPYC ended in other bits
//! (docs/decisions.md, "One MKL path"). libtorch_cpu calls the question through its dynamic
//! symbol, and the dynamic linker looks in the executable first (before any library, preloaded
//! or not). So every binary and test binary of this workspace answers it here: each crate's
//! build.rs keeps the function (`-u`) and exports it (`--export-dynamic-symbol`), and ebgan-exp
//! names this module (its `MKL_PIN`) so that its own unit-test binary, where nothing else pulls
//! this object in ahead of libtorch's definition, links the answer too. MKL still
//! chooses by instruction set (AVX-512, AVX2, ...) after this answer; only the vendor is fixed.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

static QUERIES: AtomicU64 = AtomicU64::new(0);

/// MKL's vendor question, answered "Intel" on every machine.
#[no_mangle]
pub extern "C" fn mkl_serv_intel_cpu_true() -> c_int {
    QUERIES.fetch_add(1, Ordering::Relaxed);
    1
}

/// How many times MKL has asked this process's answer (it asks on its first calls).
pub fn queries() -> u64 {
    QUERIES.load(Ordering::Relaxed)
}

/// The MKL path this process's rows record: `intel` when the answer above is the one the
/// dynamic linker hands out (the pin is in effect), `machine` otherwise (a binary linked
/// without the export: MKL asks libtorch's own check, which answers by the CPU's vendor).
pub fn path() -> &'static str {
    if pinned() {
        "intel"
    } else {
        "machine"
    }
}

/// Whether the process-wide lookup of `mkl_serv_intel_cpu_true` finds the function above.
pub fn pinned() -> bool {
    lookup(c"mkl_serv_intel_cpu_true") == mkl_serv_intel_cpu_true as *mut c_void
}

/// The address of `name` in the process's global scope (null when nothing defines it).
fn lookup(name: &std::ffi::CStr) -> *mut c_void {
    extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
    // RTLD_DEFAULT (null): the global scope in load order, the executable first.
    unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// The pin is in effect in this test binary, and MKL asked it. `just test-isa` also runs
    /// this with a library preloaded that answers "not Intel" (scripts/mkl-vendor.c, named in
    /// EBGAN_MKL_PRELOAD): MKL must not ask that one.
    #[test]
    fn mkl_asks_this_binary_and_takes_intels_path() {
        assert!(
            pinned(),
            "mkl_serv_intel_cpu_true resolves to libtorch's own vendor check: this binary does not export ebgan-core's answer (build.rs)"
        );
        assert_eq!(path(), "intel");
        // A product large enough for ATen to hand to MKL's sgemm.
        let a = Tensor::ones([64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(f64::try_from(a.mm(&a).mean(Kind::Float)).unwrap(), 64.0);
        assert!(queries() > 0, "MKL never asked this binary's vendor answer");
        if std::env::var_os("EBGAN_MKL_PRELOAD").is_some() {
            let preloaded = lookup(c"ebgan_mkl_vendor_queries");
            assert!(
                !preloaded.is_null(),
                "EBGAN_MKL_PRELOAD is set but no vendor answer is preloaded"
            );
            let asked =
                unsafe { std::mem::transmute::<*mut c_void, extern "C" fn() -> c_int>(preloaded) }(
                );
            assert_eq!(
                asked, 0,
                "MKL asked the preloaded answer, not this binary's"
            );
        }
    }
}
