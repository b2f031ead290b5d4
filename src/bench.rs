//! `homeonorm bench`: training iterations per second, measured in one run on one
//! machine and the same synthetic data in CIFAR-10's shape, for one model, for S
//! seeds batched into one model, and for the PyTorch reference
//! (`reference/bench.py`) doing the same S runs one after another.

use crate::data::{batches::BatchSampler, PixelStandardization, Split};
use crate::learner::Learner;
use crate::norm::Method;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub seeds: usize,
    pub iterations: usize,
    pub warmup: usize,
    pub batch_size: usize,
    pub device: Device,
}

/// Synthetic CIFAR-10-shaped data: 2,000 random images and labels.
pub fn synthetic_split(device: Device) -> Split {
    crate::torch_rng::seeded(0, || Split {
        images: Tensor::randint(256, [2000, 3, 32, 32], (Kind::Uint8, device)),
        labels: Tensor::randint(10, [2000], (Kind::Int64, device)),
    })
}

/// Model-iterations per second (S × steps / s) of `seeds` models trained as one.
pub fn time_training(method: &'static dyn Method, seeds: usize, split: &Split, options: &BenchOptions) -> Result<f64> {
    let seed_list: Vec<u64> = (0..seeds as u64).collect();
    let mut learner = Learner::new(method, &seed_list, true, 0.003, options.device)?;
    let mut sampler = BatchSampler::chacha8(split, &seed_list, options.batch_size);
    let normalization = PixelStandardization::default();
    let mut step = |learner: &mut Learner| {
        let (images, labels) = sampler.next_batch(split);
        learner.step(&normalization.apply(&images), &labels).0
    };
    for _ in 0..options.warmup {
        let _ = step(&mut learner);
    }
    let mut last = Tensor::new();
    let start = std::time::Instant::now();
    for _ in 0..options.iterations {
        last = step(&mut learner);
    }
    let _ = last.double_value(&[0]); // waits for the device
    Ok((seeds * options.iterations) as f64 / start.elapsed().as_secs_f64())
}

/// Runs the PyTorch reference; its model-iterations per second.
pub fn time_pytorch(python: &str, repo: &Path, method: &str, options: &BenchOptions) -> Result<f64> {
    let device = match options.device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    };
    let output = std::process::Command::new(python)
        .arg(repo.join("reference/bench.py"))
        .args(["--method", method])
        .args(["--runs", &options.seeds.to_string()])
        .args(["--iterations", &options.iterations.to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--batch-size", &options.batch_size.to_string()])
        .args(["--threads", &tch::get_num_threads().to_string()])
        .args(["--device", &device])
        .output()
        .with_context(|| format!("cannot run {python} (set --python, or HOMEONORM_PYTHON)"))?;
    if !output.status.success() {
        bail!("reference/bench.py failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value =
        serde_json::from_str(line.trim()).with_context(|| format!("reference/bench.py printed {line}"))?;
    value["model_iterations_per_s"].as_f64().context("no model_iterations_per_s")
}
