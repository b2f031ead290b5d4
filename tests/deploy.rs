//! deploy/slurm-array.sbatch as a task runs it: which shard, which GPUs and which
//! command it hands on, with stand-ins for `docker` and `homeonorm` that record their
//! arguments. (The Slurm tests, scripts/cluster-test.sh and scripts/multinode-test.sh,
//! run it under a real scheduler; this covers what they cannot: GPUs and docker.)

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the sbatch file as task `task` of `tasks` with `env`; returns (exit status,
/// stderr, the arguments the stand-in for the runner was called with, one per line).
fn run_task(task: usize, tasks: usize, env: &[(&str, &str)]) -> (i32, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let args_file = dir.path().join("args");
    for name in ["docker", "homeonorm", "apptainer"] {
        let stand_in = bin.join(name);
        std::fs::write(
            &stand_in,
            format!("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > {}\n", args_file.display()),
        )
        .unwrap();
        std::fs::set_permissions(&stand_in, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut command = Command::new("bash");
    command
        .arg(repo().join("deploy/slurm-array.sbatch"))
        .arg(repo().join("experiments/quick.toml"))
        .current_dir(dir.path())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("SLURM_ARRAY_TASK_ID", task.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", tasks.to_string())
        .env("HOMEONORM_OUT", dir.path().join("out"))
        .env("HOMEONORM_DATA", dir.path().join("data"));
    for var in ["CUDA_VISIBLE_DEVICES", "HOMEONORM_SHARDS_PER_TASK", "HOMEONORM_RUNNER", "HOMEONORM_DEVICE"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let args = std::fs::read_to_string(&args_file).unwrap_or_default().lines().map(String::from).collect();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned(), args)
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str())
}

#[test]
fn each_task_runs_its_shard_or_its_run_of_shards() {
    let native = [("HOMEONORM_RUNNER", "native"), ("HOMEONORM_DEVICE", "cpu")];
    let (status, _, args) = run_task(1, 4, &native);
    assert_eq!(status, 0);
    assert_eq!(args[0], "sweep");
    assert_eq!(after(&args, "--shard"), Some("1/4"));
    // Three shards per task: task 1 of 2 runs shards 3 to 5 of 6, which sweep parses.
    let (status, _, args) = run_task(1, 2, &[native[0], native[1], ("HOMEONORM_SHARDS_PER_TASK", "3")]);
    assert_eq!(status, 0);
    let shard = after(&args, "--shard").unwrap();
    assert_eq!(shard, "3-5/6");
    assert!(shard.parse::<homeonorm::runs::sweep::Shard>().is_ok());
    let (status, stderr, args) = run_task(0, 2, &[native[0], ("HOMEONORM_SHARDS_PER_TASK", "0")]);
    assert_eq!(status, 2);
    assert!(stderr.contains("HOMEONORM_SHARDS_PER_TASK") && stderr.contains("'0'"), "{stderr}");
    assert!(args.is_empty(), "nothing runs on a bad setting");
}

#[test]
fn docker_is_given_every_gpu_of_the_job() {
    let docker = ("HOMEONORM_RUNNER", "docker");
    // A list must reach docker quoted: `--gpus device=2,3` would give the container GPU 2 alone.
    let (status, _, args) = run_task(0, 1, &[docker, ("CUDA_VISIBLE_DEVICES", "2,3")]);
    assert_eq!(status, 0);
    assert_eq!(after(&args, "--gpus"), Some("\"device=2,3\""));
    assert_eq!(after(&args, "--device"), Some("cuda"));
    let (_, _, args) = run_task(0, 1, &[docker]);
    assert_eq!(after(&args, "--gpus"), Some("all"));
    let (_, _, args) = run_task(0, 1, &[docker, ("HOMEONORM_DEVICE", "cpu"), ("CUDA_VISIBLE_DEVICES", "0")]);
    assert_eq!(after(&args, "--gpus"), None, "{args:?}");
}
