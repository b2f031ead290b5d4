//! What the program runs on: versions, devices, threads.

use serde::Serialize;
use tch::Device;

/// homeonorm's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The libtorch (PyTorch) version the binary was built against and runs on (its run path).
pub const LIBTORCH_VERSION: &str = env!("HOMEONORM_LIBTORCH_VERSION");

#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    pub homeonorm: String,
    pub libtorch: String,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub cpu_threads: i32,
    /// On CUDA: training steps captured in CUDA graphs (`HOMEONORM_CUDA_GRAPHS`): the
    /// same kernels on the same tensors either way.
    pub cuda_graphs: bool,
}

impl SystemInfo {
    pub fn detect() -> Self {
        SystemInfo {
            homeonorm: VERSION.to_string(),
            libtorch: LIBTORCH_VERSION.to_string(),
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
            cuda_graphs: crate::engine::learner::cuda_graphs_enabled(),
        }
    }
}

/// This machine's host name (the kernel's), if it can be read.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string())
}

/// Which device a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA device 0 when CUDA is available, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> anyhow::Result<Device> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => anyhow::bail!(
                "--device cuda was asked for, but libtorch sees no CUDA device (libtorch {LIBTORCH_VERSION}); \
                 check the driver and that the binary was built against a CUDA libtorch"
            ),
        }
    }
}

/// A short name for a device, for files and logs.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What `homeonorm info` prints: versions, devices and threads, and the methods and
/// networks; with a method, the network's trainable parameters per layer with it.
pub fn describe(
    method: Option<&'static dyn crate::engine::norm::Method>,
    network: crate::engine::model::Network,
) -> anyhow::Result<String> {
    use crate::engine::{learner::Learner, model, norm};
    use std::fmt::Write as _;
    let sys = SystemInfo::detect();
    let mut out = String::new();
    let _ = writeln!(out, "homeonorm        {}", sys.homeonorm);
    let _ = writeln!(out, "libtorch         {}", sys.libtorch);
    let _ = writeln!(
        out,
        "CUDA available   {} ({} device(s), cuDNN {})",
        sys.cuda_available, sys.cuda_devices, sys.cudnn_available
    );
    let graphs = if sys.cuda_graphs { "on (HOMEONORM_CUDA_GRAPHS=0 turns them off)" } else { "off" };
    let _ = writeln!(out, "CUDA graphs      {graphs}");
    let _ = writeln!(out, "CPU threads      {}", sys.cpu_threads);
    match method {
        None => {
            let _ = writeln!(out, "methods          {}", norm::method_names().join(", "));
            let networks: Vec<&str> = model::Network::all().map(|n| n.name()).collect();
            let _ = writeln!(out, "networks         {}", networks.join(", "));
        }
        Some(method) => {
            let options = model::ModelOptions { network, ..Default::default() };
            model::check_method(method, &options)?;
            let learner = Learner::with_options(method, &[0], &options, 1e-3, Device::Cpu)?;
            let _ = writeln!(out, "\n{network} with {} — {}", method.name(), method.summary());
            let counts = model::parameter_counts(&learner.vs, 1);
            let width = counts.iter().map(|c| c.0.len()).max().unwrap_or(0);
            for (name, count) in &counts {
                let _ = writeln!(out, "  {name:<width$} {count:>8}");
            }
            let _ = writeln!(out, "  {:<width$} {:>8}", "total", counts.iter().map(|c| c.1).sum::<i64>());
        }
    }
    Ok(out)
}

/// The largest block glibc may serve from its heap rather than by `mmap` (its ceiling
/// for `M_MMAP_THRESHOLD` on 64-bit Linux).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_BLOCK_LIMIT: i32 = 32 << 20;

/// Keeps the memory of freed tensors in the process for the next step's tensors.
///
/// A step frees and allocates the same tensors every time, several of them megabytes
/// (the MLP's 3 MB fc1 gradient, Adam's temporaries over all parameters). With glibc's
/// defaults, such a block is given back to the kernel when freed (by `munmap`, or by
/// trimming the top of the heap), and the next step faults it in again, each page zeroed
/// by the kernel: about half of an MLP step's time on a CPU (BENCHMARKS.md: one model,
/// one thread, 112–134 iterations/s before, 215–246 after). Blocks up to 32 MiB now
/// come from the heap, which is never trimmed. The tensors and their values are the same;
/// a process keeps its peak heap. A `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_`
/// the user set is left as set.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's parameters; it is called at start-up.
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT) };
        }
        if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
            // -1: never trim (mallopt(3)).
            unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, -1) };
        }
    }
}
