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
            cuda_graphs: crate::learner::cuda_graphs_enabled(),
        }
    }
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
