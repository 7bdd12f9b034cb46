//! Pins MKL's kernel path in this crate's test binaries (ebgan-core/src/mkl_path.rs): keeps
//! ebgan-core's `mkl_serv_intel_cpu_true` in the executable and exports it, so that libtorch's
//! MKL asks it rather than libtorch's own vendor check.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,-u,mkl_serv_intel_cpu_true");
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=mkl_serv_intel_cpu_true");
}
