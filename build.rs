//! Makes the binary find libtorch at run time and keeps CUDA linked.
//!
//! torch-sys finds libtorch (via `LIBTORCH_USE_PYTORCH=1` or `LIBTORCH`, set up by
//! `scripts/setup-libtorch.sh`) and exports its library folder as
//! `DEP_TCH_LIBTORCH_LIB`. It does not put that folder on the run path, and Rust
//! links with `--as-needed`, which drops `libtorch_cuda` because no symbol of it
//! is referenced directly: CUDA would then never be available.
//!
//! Where libtorch has CUDA and the CUDA runtime's headers are found (PyPI's torch wheel
//! brings them, `site-packages/nvidia/cu13/include`), it also compiles `csrc/cuda_graph.cpp`,
//! the CUDA-graph shim `src/engine/cuda_graph.rs` calls, and sets `cfg(homeonorm_cuda_graph)`.

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
    println!("cargo:rustc-env=HOMEONORM_COMMIT={}", source_commit());
    println!("cargo::rustc-check-cfg=cfg(homeonorm_cuda_graph)");
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        match cuda_include(&lib_dir) {
            Some(cuda) => compile_cuda_graph_shim(&lib_dir, &cuda),
            None => println!(
                "cargo:warning=no CUDA runtime headers (cuda_runtime_api.h) beside libtorch or in CUDA_HOME: \
                 built without CUDA graphs (set HOMEONORM_CUDA_INCLUDE to their folder)"
            ),
        }
    }
}

/// The git commit the binary is built from, `-dirty` added when its source (src, csrc,
/// build.rs, Cargo.toml, Cargo.lock) differs from it; `HOMEONORM_COMMIT` where there is no
/// git checkout (the Docker build copies no `.git`: its build argument passes the commit);
/// empty when neither is known. Rerun when the commit or the source changes.
fn source_commit() -> String {
    println!("cargo:rerun-if-env-changed=HOMEONORM_COMMIT");
    if let Ok(commit) = std::env::var("HOMEONORM_COMMIT") {
        return commit;
    }
    // (only paths that exist: cargo reruns a build script on every build for a missing one)
    let watched =
        [".git/HEAD", ".git/index", ".git/packed-refs", ".git/refs/heads", "src", "csrc", "Cargo.toml", "Cargo.lock"];
    for path in watched.into_iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output().ok();
    let Some(head) = git(&["rev-parse", "HEAD"]).filter(|o| o.status.success()) else {
        return String::new();
    };
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let source = ["src", "csrc", "build.rs", "Cargo.toml", "Cargo.lock"];
    let diff = git(&[&["diff", "--quiet", "HEAD", "--"][..], &source[..]].concat());
    match diff.map(|o| o.status.code()) {
        Some(Some(0)) => commit,
        _ => format!("{commit}-dirty"),
    }
}

/// The folder holding `cuda_runtime_api.h`: `HOMEONORM_CUDA_INCLUDE`, the CUDA wheels beside
/// torch in its site-packages, or a CUDA toolkit.
fn cuda_include(lib_dir: &std::path::Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=HOMEONORM_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("HOMEONORM_CUDA_INCLUDE").map(PathBuf::from).into_iter().collect();
    // lib_dir is site-packages/torch/lib: the wheels are site-packages/nvidia/<name>/include.
    if let Some(site) = lib_dir.parent().and_then(|torch| torch.parent()) {
        for name in ["cu13", "cu12", "cuda_runtime"] {
            candidates.push(site.join("nvidia").join(name).join("include"));
        }
    }
    candidates.extend(std::env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("include")));
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    candidates.into_iter().find(|dir| dir.join("cuda_runtime_api.h").is_file())
}

fn compile_cuda_graph_shim(lib_dir: &std::path::Path, cuda_include: &std::path::Path) {
    let source = "csrc/cuda_graph.cpp";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib_dir.parent().unwrap_or(lib_dir).join("include");
    // torch-sys's own default: the C++11 ABI, as PyPI's wheels are built.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file(source)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(cuda_include)
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .warnings(false)
        .compile("homeonorm_cuda_graph");
    for lib in ["torch_cuda", "c10_cuda", "torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-cfg=homeonorm_cuda_graph");
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
