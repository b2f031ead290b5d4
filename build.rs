//! Makes the binary find libtorch at run time and keeps CUDA linked.
//!
//! torch-sys finds libtorch (via `LIBTORCH_USE_PYTORCH=1` or `LIBTORCH`, set up by
//! `scripts/setup-libtorch.sh`) and exports its library folder as
//! `DEP_TCH_LIBTORCH_LIB`. It does not put that folder on the run path, and Rust
//! links with `--as-needed`, which drops `libtorch_cuda` because no symbol of it
//! is referenced directly: CUDA would then never be available.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    let lib_dir = match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            // torch-sys itself fails first with its own message in that case; this is the fallback.
            panic!(
                "libtorch was not found. Run `make setup` (or `scripts/setup-libtorch.sh`) and build \
                 through `make`, or set LIBTORCH_USE_PYTORCH=1 with a Python that has torch 2.11.0 on PATH."
            );
        }
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=HOMEONORM_LIBTORCH_VERSION={}", libtorch_version(&lib_dir));
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// The version of the PyTorch distribution libtorch came from (`torch/version.py`,
/// beside `torch/lib`), or the libtorch `build-version` file of a standalone download.
fn libtorch_version(lib_dir: &std::path::Path) -> String {
    let root = lib_dir.parent().unwrap_or(lib_dir);
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("__version__ = ") {
                return v.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
