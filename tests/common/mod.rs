//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod formats;

use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;

/// Runs the homeonorm binary the tests build with `args`.
pub fn homeonorm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_homeonorm")).args(args).output().unwrap()
}

/// [`homeonorm`], which must succeed: its standard output.
pub fn homeonorm_ok(args: &[&str]) -> String {
    let out = homeonorm(args);
    assert!(out.status.success(), "homeonorm {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Python with torch 2.11.0 that `scripts/with-libtorch.sh` set up (`make test` sets
/// HOMEONORM_PYTHON), else `python3` from PATH.
pub fn python() -> String {
    std::env::var("HOMEONORM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `reference/parity.py MODE DIR...`; panics with its output when it fails.
pub fn run_reference(mode: &str, dirs: &[PathBuf]) {
    start_reference(mode, dirs).finish();
}

/// `reference/parity.py MODE DIR...` under way: started by [`start_reference`], so that
/// the caller prepares its next cases while PyTorch computes these (two cores, two sides).
pub struct Reference {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

/// Starts `reference/parity.py MODE DIR...` without waiting for it (its output goes to a
/// file, so no pipe fills while nobody reads it).
pub fn start_reference(mode: &str, dirs: &[PathBuf]) -> Reference {
    let log = tempfile::NamedTempFile::new().unwrap();
    // One open file for both streams (a shared offset: neither writes over the other).
    let stdout = log.reopen().unwrap();
    let stderr = stdout.try_clone().unwrap();
    let child = Command::new(python())
        .arg(repo_root().join("reference/parity.py"))
        .arg(mode)
        .args(dirs)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (set HOMEONORM_PYTHON, or run through `make test`): {e}", python()));
    Reference { child, log }
}

impl Reference {
    /// Waits for it; panics with its output when it failed.
    pub fn finish(mut self) {
        let status = self.child.wait().unwrap();
        let said = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        assert!(status.success(), "the PyTorch reference failed ({status}):\n{said}");
    }
}

pub fn read_named(path: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// max |a − b| / max |b|: the error relative to the reference tensor's scale
/// (elementwise relative error is meaningless for entries near zero).
pub fn relative_error(ours: &Tensor, reference: &Tensor) -> f64 {
    assert_eq!(ours.size(), reference.size(), "shapes differ");
    let ours = ours.to_kind(tch::Kind::Double);
    let reference = reference.to_kind(tch::Kind::Double);
    let diff = (&ours - &reference).abs().max().double_value(&[]);
    let scale = reference.abs().max().double_value(&[]);
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// Small, learnable CIFAR-10-format data (300 training, 200 test images) in `root`,
/// loaded as a subset on the CPU.
pub fn small_cifar(root: &Path) -> homeonorm::runs::train::RunData {
    formats::write_learnable_cifar_dir(&root.join("cifar-10-batches-bin"), 60, 200);
    load_small_cifar(root)
}

/// Loads what [`small_cifar`] wrote (tensors are not shared across threads: each loads its own).
pub fn load_small_cifar(root: &Path) -> homeonorm::runs::train::RunData {
    use homeonorm::engine::data::{self, DatasetKind, Limit};
    let subset = Limit { train: Some(usize::MAX), test: Some(usize::MAX) };
    let dir = root.join("cifar-10-batches-bin");
    homeonorm::runs::train::RunData::new(
        data::load(DatasetKind::Cifar10, &dir, subset).unwrap(),
        &dir,
        subset,
        tch::Device::Cpu,
    )
}

/// Replaces one file of a complete run and the size its `summary.json` records of it, so
/// the run stays complete with the new content (a hand edit the size check would catch).
pub fn rewrite_run_file(run: &Path, name: &str, content: &[u8]) {
    std::fs::write(run.join(name), content).unwrap();
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    summary["files"][name] = (content.len() as u64).into();
    std::fs::write(run.join("summary.json"), summary.to_string()).unwrap();
}
