//! Makes the `ebgan` binary find libtorch at run time (rpath) and really load libtorch_cuda, and
//! builds the precision shim (csrc/precision.cpp).
//!
//! No symbol of libtorch_cuda is referenced from Rust, so with the default `--as-needed` the
//! linker drops it and CUDA is silently never available. Force it in when it exists.
use std::path::PathBuf;

fn main() {
    // One MKL kernel path on every machine (ebgan-core/src/mkl_path.rs): keep ebgan-core's
    // `mkl_serv_intel_cpu_true` in every executable and export it, so MKL asks it first.
    println!("cargo:rustc-link-arg=-Wl,-u,mkl_serv_intel_cpu_true");
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=mkl_serv_intel_cpu_true");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    precision_shim(&lib);
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

/// The float32-precision switches of libtorch's global context (csrc/precision.cpp), compiled
/// against the headers beside the library tch links (`<libtorch>/include`).
fn precision_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/precision.cpp");
    let include = lib
        .parent()
        .expect("libtorch's lib folder has a parent")
        .join("include");
    // libtorch 2.x is built with the C++11 ABI (tch's build assumes the same).
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/precision.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .warnings(false)
        .compile("ebgan_precision");
    println!("cargo:rustc-link-lib=c10");
    println!("cargo:rustc-link-lib=torch_cpu");
}
