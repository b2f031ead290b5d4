//! Who made a run: the stretch of training this process does, as `provenance.json`
//! records it (`rundir::Stretch`) — homeonorm's version and commit, libtorch's, the
//! device and its name, the threads, the host, the command line, the Slurm job, and the
//! start and end times. A run taken up from a checkpoint keeps the stretches before it
//! (the checkpoint carries them), so its `provenance.json` lists every process that
//! trained it.

use crate::engine::system::{self, LIBTORCH_VERSION, VERSION};
use crate::results::rundir::{SlurmJob, Stretch};
use std::ffi::OsString;
use tch::Device;

/// The commit the binary was built from (`-dirty` when its source differed; build.rs).
pub const COMMIT: &str = env!("HOMEONORM_COMMIT");

/// Where a sweep's command line reaches its worker processes (JSON, a list of strings):
/// a worker's own is the sweep's plus what the sweep added.
pub const COMMAND_ENV: &str = "HOMEONORM_COMMAND";

/// This process's stretch of a run on `device` from `from_iteration`, started now; its
/// end is set by [`ended`].
pub fn begin(device: Device, from_iteration: usize) -> Stretch {
    Stretch {
        from_iteration,
        to_iteration: from_iteration,
        started: Some(now()),
        ended: None,
        homeonorm: Some(VERSION.to_string()),
        commit: (!COMMIT.is_empty()).then(|| COMMIT.to_string()),
        libtorch: Some(LIBTORCH_VERSION.to_string()),
        device: Some(system::device_name(device)),
        device_name: device_name(device),
        threads: Some(tch::get_num_threads().into()),
        host: system::host_name(),
        command: command_line(),
        slurm: slurm_job(|name| std::env::var(name).ok()),
    }
}

/// `stretch` as it stands at `iteration`, now.
pub fn ended(stretch: &Stretch, iteration: usize) -> Stretch {
    Stretch { to_iteration: iteration, ended: Some(now()), ..stretch.clone() }
}

/// The time now, UTC, to the second: `2026-12-04T22:40:00Z`.
fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).map_or_else(|_| now.to_string(), |t| t.to_string())
}

/// The command line as typed: a worker's sweep's (passed in [`COMMAND_ENV`]), else this
/// process's own.
fn command_line() -> Vec<String> {
    if let Some(command) = std::env::var(COMMAND_ENV).ok().and_then(|c| serde_json::from_str(&c).ok()) {
        return command;
    }
    std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// What a worker process is given in [`COMMAND_ENV`]: this process's command line.
pub fn command_for_workers() -> OsString {
    serde_json::to_string(&command_line()).unwrap_or_default().into()
}

/// The Slurm job of an environment (`var` reads one variable), when it is one's.
fn slurm_job(var: impl Fn(&str) -> Option<String>) -> Option<SlurmJob> {
    Some(SlurmJob {
        job_id: var("SLURM_JOB_ID")?,
        array_job_id: var("SLURM_ARRAY_JOB_ID"),
        array_task_id: var("SLURM_ARRAY_TASK_ID"),
        restart_count: var("SLURM_RESTART_COUNT").and_then(|n| n.parse().ok()),
        node: var("SLURMD_NODENAME"),
    })
}

/// The CPU's model name (`/proc/cpuinfo`), or the GPU's name and driver.
fn device_name(device: Device) -> Option<String> {
    match device {
        Device::Cuda(index) => gpu_name(index),
        _ => cpu_model(&std::fs::read_to_string("/proc/cpuinfo").ok()?),
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| line.split_once(':').filter(|(key, _)| key.trim() == "model name"))
        .map(|(_, name)| name.trim().to_string())
}

/// `nvidia-smi`'s name and driver version of CUDA device `index` (this process's
/// numbering: the `index`-th of `CUDA_VISIBLE_DEVICES` where that is set, which
/// `nvidia-smi -i` takes as it is: an index or a UUID), e.g. `NVIDIA H200 (driver 580.65.06)`.
fn gpu_name(index: usize) -> Option<String> {
    gpu_name_from("nvidia-smi".as_ref(), index, std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref())
}

fn gpu_name_from(nvidia_smi: &std::path::Path, index: usize, visible: Option<&str>) -> Option<String> {
    let id = match visible.map(str::trim).filter(|v| !v.is_empty()) {
        Some(list) => list.split(',').nth(index)?.trim().to_string(),
        None => index.to_string(),
    };
    let output = std::process::Command::new(nvidia_smi)
        .args(["-i", &id, "--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (name, driver) = text.lines().next()?.split_once(',')?;
    Some(format!("{} (driver {})", name.trim(), driver.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_the_first_model_name_line() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n\
                       processor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn a_slurm_array_task_is_named_by_its_array_job_and_task() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let task = slurm_job(env(&[
            ("SLURM_JOB_ID", "107"),
            ("SLURM_ARRAY_JOB_ID", "105"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_RESTART_COUNT", "1"),
            ("SLURMD_NODENAME", "node3"),
        ]))
        .unwrap();
        assert_eq!((task.name().as_str(), task.restart_count, task.node.as_deref()), ("105_2", Some(1), Some("node3")));
        let job = slurm_job(env(&[("SLURM_JOB_ID", "9")])).unwrap();
        assert_eq!((job.name().as_str(), job.restart_count), ("9", None));
        assert_eq!(slurm_job(env(&[("SLURM_ARRAY_TASK_ID", "2")])), None, "no job id: not in a Slurm job");
    }

    #[test]
    fn a_gpu_is_asked_of_nvidia_smi_by_its_visible_id() {
        // A stand-in nvidia-smi that answers with the id it was asked for.
        let dir = std::env::temp_dir().join(format!("homeonorm-nvidia-smi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let smi = dir.join("nvidia-smi");
        std::fs::write(&smi, "#!/bin/sh\n[ \"$1\" = -i ] || exit 9\necho \"GPU $2, 580.65.06\"\n").unwrap();
        std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(gpu_name_from(&smi, 1, None).as_deref(), Some("GPU 1 (driver 580.65.06)"));
        assert_eq!(gpu_name_from(&smi, 1, Some("2,3")).as_deref(), Some("GPU 3 (driver 580.65.06)"));
        assert_eq!(gpu_name_from(&smi, 0, Some("GPU-8f3a")).as_deref(), Some("GPU GPU-8f3a (driver 580.65.06)"));
        assert_eq!(gpu_name_from(&smi, 2, Some("2,3")), None, "not a visible device");
        assert_eq!(gpu_name_from(&dir.join("absent"), 0, None), None, "no nvidia-smi");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stretch_ends_where_it_is_told_and_keeps_the_rest() {
        let start = begin(Device::Cpu, 300);
        assert_eq!((start.from_iteration, start.to_iteration, start.ended.as_deref()), (300, 300, None));
        let end = ended(&start, 1500);
        assert_eq!((end.from_iteration, end.to_iteration), (300, 1500));
        let started = start.started.as_deref().unwrap();
        assert!(started.len() == 20 && started.ends_with('Z') && started.as_bytes()[10] == b'T', "{started}");
        assert!(end.ended.as_deref().unwrap() >= started);
        assert_eq!(Stretch { to_iteration: 300, ended: None, ..end }, start);
    }
}
