//! Makes the `ebgan` binary find libtorch at run time (rpath) and really load libtorch_cuda.
//!
//! No symbol of libtorch_cuda is referenced from Rust, so with the default `--as-needed` the
//! linker drops it and CUDA is silently never available. Force it in when it exists.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
