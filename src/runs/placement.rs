//! Which GPUs a sweep's workers use: on a node with several, worker *i* trains on the
//! *i* mod *n*-th of the *n* GPUs the job was given, never all on `cuda:0`.
//!
//! What the job was given, in this order: `--devices cuda:0,cuda:1` as asked; else
//! `CUDA_VISIBLE_DEVICES` (CUDA then numbers those GPUs 0…n−1, so this process sees
//! exactly them); else Slurm's `SLURM_STEP_GPUS` or `SLURM_JOB_GPUS` (physical
//! indices: when this process sees just that many GPUs, a device cgroup has already
//! renumbered them 0…n−1, otherwise it sees the whole node and the listed indices are
//! used as they are); else every GPU this process sees. The choice is a pure function
//! of those values ([`place`]), so it is tested without a GPU.

use anyhow::{bail, Result};

/// The environment variables that say which GPUs a job was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuEnv {
    pub cuda_visible_devices: Option<String>,
    pub slurm_step_gpus: Option<String>,
    pub slurm_job_gpus: Option<String>,
}

impl GpuEnv {
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        GpuEnv {
            cuda_visible_devices: var("CUDA_VISIBLE_DEVICES"),
            slurm_step_gpus: var("SLURM_STEP_GPUS"),
            slurm_job_gpus: var("SLURM_JOB_GPUS"),
        }
    }
}

/// The GPUs a sweep's workers share out, as this process numbers them, and where that
/// choice came from (for the log and the dry run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub devices: Vec<usize>,
    pub source: String,
}

impl Placement {
    /// The device of worker `k`: the `k` mod `n`-th GPU.
    pub fn device_of(&self, worker: usize) -> usize {
        self.devices[worker % self.devices.len()]
    }
}

/// Parses `--devices`' `cuda:N` (or a bare `N`).
pub fn parse_cuda_device(text: &str) -> Result<usize, String> {
    let index = text.trim().strip_prefix("cuda:").unwrap_or(text.trim());
    index
        .parse::<usize>()
        .map_err(|_| format!("--devices takes cuda:N (N a device number, e.g. cuda:0,cuda:1), got `{text}`"))
}

/// A list of GPU indices (`0,1` or `GPU-…` UUIDs), as the variables hold them.
fn entries(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).collect()
}

/// The GPUs the workers use, given `--devices` (`asked`), the job's variables and how
/// many CUDA devices this process sees (`visible`).
pub fn place(asked: &[usize], env: &GpuEnv, visible: usize) -> Result<Placement> {
    if visible == 0 {
        bail!("no CUDA device is visible to this process, so no worker can be placed on one");
    }
    if !asked.is_empty() {
        if let Some(&bad) = asked.iter().find(|&&d| d >= visible) {
            bail!(
                "--devices names cuda:{bad}, but this process sees {visible} CUDA device(s) (cuda:0 to cuda:{}{})",
                visible - 1,
                env.cuda_visible_devices.as_ref().map_or(String::new(), |v| format!("; CUDA_VISIBLE_DEVICES={v}"))
            );
        }
        let mut devices = asked.to_vec();
        devices.dedup();
        return Ok(Placement { devices, source: "--devices".into() });
    }
    if let Some(list) = &env.cuda_visible_devices {
        let n = entries(list).len().min(visible);
        if n == 0 {
            bail!("CUDA_VISIBLE_DEVICES is `{list}`: this job was given no GPU");
        }
        return Ok(Placement { devices: (0..n).collect(), source: format!("CUDA_VISIBLE_DEVICES={list}") });
    }
    for (name, value) in [("SLURM_STEP_GPUS", &env.slurm_step_gpus), ("SLURM_JOB_GPUS", &env.slurm_job_gpus)] {
        let Some(list) = value else { continue };
        let ids = entries(list);
        if ids.is_empty() {
            continue;
        }
        let source = format!("{name}={list}");
        if ids.len() == visible {
            return Ok(Placement { devices: (0..visible).collect(), source });
        }
        let mut devices = Vec::new();
        for id in &ids {
            match id.parse::<usize>() {
                Ok(d) if d < visible => devices.push(d),
                _ => bail!(
                    "{name}={list} names GPU `{id}`, which this process (seeing {visible} CUDA device(s)) cannot use"
                ),
            }
        }
        return Ok(Placement { devices, source });
    }
    Ok(Placement { devices: (0..visible).collect(), source: "every visible GPU".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cuda: Option<&str>, step: Option<&str>, job: Option<&str>) -> GpuEnv {
        GpuEnv {
            cuda_visible_devices: cuda.map(String::from),
            slurm_step_gpus: step.map(String::from),
            slurm_job_gpus: job.map(String::from),
        }
    }

    #[test]
    fn workers_go_round_the_gpus_the_job_was_given() {
        // CUDA_VISIBLE_DEVICES=2,3: CUDA numbers them 0 and 1.
        let p = place(&[], &env(Some("2,3"), None, Some("2,3")), 2).unwrap();
        assert_eq!(p.devices, [0, 1]);
        assert_eq!((0..5).map(|k| p.device_of(k)).collect::<Vec<_>>(), [0, 1, 0, 1, 0]);
        assert_eq!(p.source, "CUDA_VISIBLE_DEVICES=2,3");
        // UUIDs count as entries.
        assert_eq!(place(&[], &env(Some("GPU-aa,GPU-bb,GPU-cc"), None, None), 3).unwrap().devices, [0, 1, 2]);
        // Slurm's list without CUDA_VISIBLE_DEVICES: renumbered by a device cgroup ...
        assert_eq!(place(&[], &env(None, None, Some("4,5,6")), 3).unwrap().devices, [0, 1, 2]);
        // ... or the whole node visible: the physical indices; the step's list first.
        let p = place(&[], &env(None, Some("5,7"), Some("4,5,6,7")), 8).unwrap();
        assert_eq!(p.devices, [5, 7]);
        assert_eq!(p.source, "SLURM_STEP_GPUS=5,7");
        assert_eq!(place(&[], &env(None, None, Some("1,3")), 4).unwrap().devices, [1, 3]);
        // Nothing said: every GPU this process sees.
        assert_eq!(place(&[], &GpuEnv::default(), 4).unwrap().devices, [0, 1, 2, 3]);
        // --devices wins over everything.
        let p = place(&[1], &env(Some("0,1"), None, Some("0,1")), 2).unwrap();
        assert_eq!((p.devices, p.source.as_str()), (vec![1], "--devices"));
    }

    #[test]
    fn a_gpu_that_is_not_there_is_an_error_naming_it() {
        let e = place(&[2], &env(Some("0,1"), None, None), 2).unwrap_err().to_string();
        assert!(e.contains("cuda:2") && e.contains("sees 2") && e.contains("CUDA_VISIBLE_DEVICES=0,1"), "{e}");
        let e = place(&[], &env(None, None, Some("1,9")), 4).unwrap_err().to_string();
        assert!(e.contains("SLURM_JOB_GPUS=1,9") && e.contains("`9`"), "{e}");
        let e = place(&[], &env(Some(""), None, None), 1).unwrap_err().to_string();
        assert!(e.contains("given no GPU"), "{e}");
        assert!(place(&[], &GpuEnv::default(), 0).is_err());
        assert_eq!(parse_cuda_device("cuda:3"), Ok(3));
        assert_eq!(parse_cuda_device("1"), Ok(1));
        assert!(parse_cuda_device("gpu1").unwrap_err().contains("cuda:N"));
    }
}
