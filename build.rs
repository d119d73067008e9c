//! Makes the `cdw` binary find libtorch at run time without `LD_LIBRARY_PATH`, and keeps the CUDA
//! part of libtorch linked.
//!
//! torch-sys (a direct dependency, `links = "tch"`) reports the libtorch library directory as
//! `DEP_TCH_LIBTORCH_LIB`. Two things go wrong without this script:
//! - no rpath: the binary only runs with `LD_LIBRARY_PATH` set;
//! - `--as-needed` (the default of many linkers) drops `libtorch_cuda.so` because no symbol of it is
//!   referenced directly; CUDA then silently reports "not available" at run time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: the binary gets no libtorch rpath"
        );
        return;
    };
    let lib_dir = std::path::PathBuf::from(lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=CDW_LIBTORCH_LIB={}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
