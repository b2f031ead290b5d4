//! `sweep --workers N`: N processes of this binary share one sweep on one machine
//! through the sweep's claims, each with its own threads, under one progress display.
//!
//! Why processes with few threads each, not one process with many: libtorch's
//! OpenMP threads wait for each other at every operation, so a neighbour on one core
//! stalls them all, while a single-threaded worker beside it keeps its speed
//! (BENCHMARKS.md, "Beside a busy neighbour"). On CUDA, two processes: one overlaps its
//! evaluations and data with the other's captured steps (BENCHMARKS.md, the H200).

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::runs::placement::Placement;

/// Processes sharing one GPU. With its steps in CUDA graphs one process keeps an H200
/// busy: the learning-rate grid took 18.9 s per 1,000 iterations on 2 workers, 21.0 on 4
/// (BENCHMARKS.md); two still overlap one's evaluations with the other's training.
pub const WORKERS_PER_GPU: usize = 2;

/// Set, to the worker's number, in every worker's environment.
pub const WORKER_ENV: &str = "HOMEONORM_WORKER";

/// How many workers, with how many threads each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    pub workers: usize,
    pub threads: usize,
}

/// The cores this process may use: its affinity mask and cgroup quota
/// (`available_parallelism`), or Slurm's allocation when that is smaller.
pub fn usable_cores() -> usize {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    slurm.map_or(available, |s| s.min(available))
}

/// The default arrangement: on the CPU (`gpus` 0) one worker per usable core (or per
/// `threads` cores when given); on CUDA, [`WORKERS_PER_GPU`] workers per GPU. Never more
/// workers than seed batches to train; without `threads`, the cores are split between
/// the workers.
pub fn plan(gpus: usize, cores: usize, threads: Option<usize>, batches: usize) -> WorkerPlan {
    let (cores, batches) = (cores.max(1), batches.max(1));
    let workers = match (gpus, threads) {
        (1.., _) => WORKERS_PER_GPU * gpus,
        (0, Some(t)) => (cores / t.max(1)).max(1),
        (0, None) => cores,
    }
    .min(batches);
    WorkerPlan { workers, threads: threads.unwrap_or((cores / workers).max(1)) }
}

/// The workers and threads a sweep runs with: `workers` (and `threads`) as given, or
/// this machine's default ([`plan`]) for the GPUs (0: the CPU) and the number of models to train.
pub fn arrangement(workers: Option<usize>, threads: Option<usize>, gpus: usize, models: usize) -> WorkerPlan {
    let cores = usable_cores();
    match workers {
        Some(n) => WorkerPlan { workers: n, threads: threads.unwrap_or_else(|| (cores / n).max(1)) },
        None => plan(gpus, cores, threads, models),
    }
}

/// Which worker trains on which GPU, for the log and the dry run: `worker 0 on cuda:0,
/// worker 1 on cuda:1, … (from …)`.
pub fn describe_devices(workers: usize, placement: &Placement) -> String {
    let each: Vec<String> = (0..workers).map(|k| format!("worker {k} on cuda:{}", placement.device_of(k))).collect();
    format!("{} ({})", each.join(", "), placement.source)
}

/// The flags a worker is given its own values of: the parent's are left out.
const WORKER_FLAGS: [&str; 3] = ["--workers", "--threads", "--devices"];

/// This process's arguments without `--workers`, `--threads` and `--devices` (in either
/// the `--flag value` or the `--flag=value` form), for a worker to be given its own.
pub fn worker_args(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        let text = arg.to_string_lossy();
        if WORKER_FLAGS.contains(&text.as_ref()) {
            skip_value = true;
        } else if !WORKER_FLAGS.iter().any(|flag| text.starts_with(&format!("{flag}="))) {
            out.push(arg.clone());
        }
    }
    out
}

/// Starts `plan.workers` copies of this binary with `args` plus `--workers 1
/// --threads T` (and on CUDA `--devices cuda:D`, worker `k` on the placement's `k` mod
/// `n`-th GPU), shows `progress()` (done, total) until they end, passes Ctrl-C and
/// SIGTERM on to them, and fails if any worker failed.
pub fn run(
    plan: WorkerPlan,
    placement: Option<&Placement>,
    args: &[OsString],
    mut progress: impl FnMut() -> (u64, u64),
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's own path to start workers")?;
    log::info!("{} workers × {} thread(s)", plan.workers, plan.threads);
    if let Some(placement) = placement {
        log::info!("{}", describe_devices(plan.workers, placement));
    }
    let mut children: Vec<Child> = Vec::new();
    for k in 0..plan.workers {
        let mut command = Command::new(&exe);
        command.args(args).args(["--workers", "1", "--threads", &plan.threads.to_string()]);
        if let Some(placement) = placement {
            command.args(["--devices", &format!("cuda:{}", placement.device_of(k))]);
        }
        command.env(WORKER_ENV, k.to_string());
        command.env(crate::runs::provenance::COMMAND_ENV, crate::runs::provenance::command_for_workers());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn"); // the workers' progress is this process's display
        }
        // A worker outlives no parent: it gets SIGTERM (and stops cleanly) when this process dies.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(&mut children);
                return Err(e).with_context(|| format!("cannot start worker {k} ({})", exe.display()));
            }
        }
    }
    let (before, total) = progress();
    let mut bar = crate::runs::progress::Progress::new("sweep (all workers)", total, 1).resuming_from(before);
    let mut statuses = vec![None; children.len()];
    let mut forwarded = false;
    while statuses.iter().any(Option::is_none) {
        std::thread::sleep(Duration::from_millis(500));
        if crate::runs::interrupt::requested() && !forwarded {
            forwarded = true;
            for child in &children {
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        for (child, status) in children.iter_mut().zip(statuses.iter_mut()).filter(|(_, s)| s.is_none()) {
            *status = child.try_wait().context("cannot wait for a worker")?;
        }
        let (done, _) = progress();
        bar.update(done, || {
            format!("{} of {} workers running", statuses.iter().filter(|s| s.is_none()).count(), plan.workers)
        });
    }
    bar.finish();
    if forwarded {
        return Err(crate::runs::interrupt::Interrupted.into());
    }
    // A worker stopped by a signal of its own (exit 130) was interrupted, not failed.
    let interrupted = |s: &ExitStatus| s.code() == Some(130);
    let failed: Vec<String> = statuses
        .iter()
        .enumerate()
        .filter_map(|(k, s)| s.filter(|s| !s.success() && !interrupted(s)).map(|s| format!("worker {k}: {s}")))
        .collect();
    if !failed.is_empty() {
        bail!("{} of {} workers failed ({}); their errors are above", failed.len(), plan.workers, failed.join(", "));
    }
    if statuses.iter().flatten().any(interrupted) {
        return Err(crate::runs::interrupt::Interrupted.into());
    }
    Ok(())
}

/// Ends the workers started so far.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_single_threaded_worker_per_core_on_the_cpu_two_per_gpu() {
        assert_eq!(plan(0, 2, None, 36), WorkerPlan { workers: 2, threads: 1 });
        assert_eq!(plan(0, 16, Some(4), 36), WorkerPlan { workers: 4, threads: 4 });
        assert_eq!(plan(0, 16, None, 3), WorkerPlan { workers: 3, threads: 5 }, "no idle workers or cores");
        assert_eq!(plan(0, 2, None, 1), WorkerPlan { workers: 1, threads: 2 });
        assert_eq!(plan(1, 16, None, 36), WorkerPlan { workers: 2, threads: 8 });
        assert_eq!(plan(4, 16, None, 36), WorkerPlan { workers: 8, threads: 2 }, "two per GPU");
        assert_eq!(plan(4, 16, None, 5), WorkerPlan { workers: 5, threads: 3 });
        assert_eq!(plan(0, 0, None, 0), WorkerPlan { workers: 1, threads: 1 });
    }

    #[test]
    fn a_worker_gets_the_arguments_without_workers_and_threads() {
        let args: Vec<OsString> = [
            "sweep",
            "e.toml",
            "--threads",
            "2",
            "--workers=3",
            "--out",
            "o",
            "--threads=4",
            "--devices",
            "cuda:0,cuda:1",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let kept: Vec<String> = worker_args(&args).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(kept, ["sweep", "e.toml", "--out", "o"]);
        let kept = worker_args(&[OsString::from("--devices=cuda:1"), OsString::from("--workers"), OsString::from("2")]);
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn the_log_and_the_dry_run_say_which_worker_has_which_gpu() {
        let placement = Placement { devices: vec![0, 1], source: "SLURM_JOB_GPUS=2,3".into() };
        assert_eq!(
            describe_devices(3, &placement),
            "worker 0 on cuda:0, worker 1 on cuda:1, worker 2 on cuda:0 (SLURM_JOB_GPUS=2,3)"
        );
    }
}
