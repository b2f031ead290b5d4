//! Faults a cluster produces, against the real binary: a layer that dies, settings
//! changed between sweeps, kill -9 and Ctrl-C/SIGTERM then a resume, a worker stopped
//! past its claim timeout that comes back, damaged result files, a full disk, and
//! input that must be refused before anything is written.
//!
//! Each test has its own folders and processes, and none needs the machine to itself: its
//! waits have generous limits (a minute for a process to start), so that the tests run
//! side by side, as the test harness runs them, on a busy machine too.

mod common;

use homeonorm::results::rundir::RunState;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn homeonorm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_homeonorm"));
    c.env("RUST_LOG", "info");
    c
}

fn run(args: &[&str]) -> Output {
    homeonorm().args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Small learnable CIFAR-10-format files under `root/data`; returns the data root.
fn data(root: &Path) -> PathBuf {
    let dir = root.join("data");
    common::formats::write_learnable_cifar_dir(&dir.join("cifar-10-batches-bin"), 60, 200);
    dir
}

/// An experiment file with one batch-norm run of `iterations` iterations.
fn experiment(root: &Path, iterations: usize) -> PathBuf {
    let path = root.join("faults.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"faults\"\ndatasets = [\"cifar10\"]\nmethods = [\"batch-norm\"]\nseeds = 1\n\n[settings]\niterations = {iterations}\neval_every = 100\n"
        ),
    )
    .unwrap();
    path
}

/// `sweep` arguments for the experiment under `root`, on the CPU, one thread.
fn sweep_args<'a>(exp: &'a str, out: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sweep", exp, "--out", out, "--data-dir", data, "--limit", "1000", "--device", "cpu"];
    args.extend(["--threads", "1"]);
    args.extend(extra);
    args
}

/// A subset of the data (all of the small files) and one thread.
const SMALL: [&str; 4] = ["--limit", "1000", "--threads", "1"];

/// Runs `train` on the CPU on CIFAR-10-format files under `data`, into `out`, with `extra` settings.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--dataset", "cifar10", "--device", "cpu"];
    args.extend(["--data-dir", s(data), "--out", s(out)]);
    args.extend(extra);
    run(&args)
}

fn the_run(out: &Path) -> PathBuf {
    homeonorm::results::rundir::run_path(&out.join("faults"), "cifar10", "batch-norm", 0.003, 0)
}

/// Waits until `path` exists (the run has started) or panics after `limit`.
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    wait_for_handler(child, name);
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Waits until `child` handles the stop signal `name` (its `SigCgt` in /proc), so that a
/// child still loading libtorch on a busy machine is not killed by a signal it would
/// have caught a moment later; returns at once for other signals or an ended child.
fn wait_for_handler(child: &Child, name: &str) {
    use clap::ValueEnum;
    let Ok(stop) = homeonorm::runs::interrupt::StopSignal::from_str(name, false) else { return };
    let bit = 1u64 << (stop.number() - 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) else { return };
        if process_state(&status) == Some('Z') {
            return; // ended, not yet reaped
        }
        let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(|m| m.trim().to_string());
        match caught.and_then(|m| u64::from_str_radix(&m, 16).ok()) {
            Some(mask) if mask & bit != 0 => return,
            None => return,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("the child never installed its SIG{name} handler");
}

/// The state letter of a `/proc/PID/status` text (R, S, T for stopped, Z for ended…).
fn process_state(status: &str) -> Option<char> {
    status.lines().find_map(|l| l.strip_prefix("State:")).and_then(|s| s.trim().chars().next())
}

fn spawn(args: &[&str]) -> Child {
    homeonorm().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_run_whose_layer_died_is_finished_reported_and_not_trained_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    // Vanilla at lr 0.5: ReLU units die, whole layers of some seeds with them.
    let o = train(
        &data,
        &out,
        &[&SMALL[..], &["--method", "vanilla", "--seed", "0,1,2,3", "--lr", "0.5", "--iterations", "200"]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let summaries: Vec<String> = (0..4)
        .map(|k| {
            let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.5, k);
            std::fs::read_to_string(dir.join("summary.json")).unwrap()
        })
        .collect();
    let dead: Vec<&String> = summaries.iter().filter(|t| t.contains("\"mean_active_value_mean\": null")).collect();
    assert!(!dead.is_empty(), "no layer died: this test needs one to");
    for t in &dead {
        assert!(t.contains("\"outcome\": \"complete\""), "a dead layer is a complete run, not a diverged one: {t}");
    }
    for k in 0..4 {
        let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.5, k);
        assert!(
            matches!(homeonorm::results::rundir::state(&dir), homeonorm::results::rundir::RunState::Done(_)),
            "seed {k}"
        );
    }
    // The same command again trains nothing: every run, the dead one too, is kept as it is.
    let o = train(
        &data,
        &out,
        &[&SMALL[..], &["--method", "vanilla", "--seed", "0,1,2,3", "--lr", "0.5", "--iterations", "200"]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("complete with these settings already; kept").count(), 4, "{}", text(&o));
    for (k, before) in summaries.iter().enumerate() {
        let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.5, k as u64);
        assert_eq!(&std::fs::read_to_string(dir.join("summary.json")).unwrap(), before, "seed {k} was trained again");
    }
    let o = run(&["report", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let results = homeonorm::results::report::write(&out).unwrap();
    let reported: usize = results.iter().map(|r| r.complete.len() + r.diverged.len()).sum();
    assert_eq!(reported, 4, "every run is reported");
    let o = run(&["plot", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_dry_run_shows_how_the_runs_are_packed_into_models_and_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let exp = tmp.path().join("plan.toml");
    std::fs::write(
        &exp,
        "name = \"plan\"\ndatasets = [\"cifar10\"]\nmethods = [\"batch-norm\", \"whitening\"]\nseeds = 3\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let extra = ["--dry-run", "--seeds-per-batch", "2", "--workers", "2"];
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &extra));
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    // batch-norm's seeds 0–2 as a model of two and one of one; whitening's one seed per model.
    assert!(said.contains("6 run(s) to train as 5 model(s)"), "{said}");
    assert!(said.contains("the widest here 2") && said.contains("one seed per model for whitening"), "{said}");
    assert!(said.contains("up to 2 (--seeds-per-batch)"), "{said}");
    assert!(said.contains("on 2 worker process(es) × 1 thread(s) (--workers)"), "{said}");
    assert!(said.contains("of training steps on this machine (cpu"), "a measured estimate: {said}");
    assert!(!out.exists(), "a dry run writes nothing");

    // Runs that differ only in the learning rate share a model.
    std::fs::write(
        &exp,
        "name = \"plan\"\ndatasets = [\"cifar10\"]\nmethods = [\"batch-norm\"]\nlearning_rates = [0.01, 0.003]\nseeds = 2\n",
    )
    .unwrap();
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run", "--seeds-per-batch", "10"]));
    assert!(text(&o).contains("4 run(s) to train as 1 model(s)"), "{}", text(&o));
    // Without --seeds-per-batch, the CPU trains up to 4 runs per model, and layer-norm's
    // one per model (a seed batch was measured to slow it there).
    std::fs::write(&exp, std::fs::read_to_string(&exp).unwrap().replace("seeds = 2", "seeds = 3")).unwrap();
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
    assert!(
        text(&o).contains("6 run(s) to train as 2 model(s)") && text(&o).contains("(the default on the CPU;"),
        "{}",
        text(&o)
    );
    std::fs::write(&exp, std::fs::read_to_string(&exp).unwrap().replace("batch-norm", "layer-norm")).unwrap();
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
    assert!(text(&o).contains("6 run(s) to train as 6 model(s)"), "{}", text(&o));
}

#[test]
fn a_sweep_whose_settings_changed_stops_naming_the_run_and_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 40);
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &[]));
    assert!(o.status.success(), "{}", text(&o));

    experiment(tmp.path(), 60);
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &[]));
    assert!(!o.status.success(), "a changed experiment must not pass for done");
    let said = text(&o);
    assert!(said.contains(s(&the_run(&out))) && said.contains("iterations: recorded 40, now 60"), "{said}");
    // A multi-line error reads as lines, not with literal "\n"s.
    assert!(!said.contains("\\n") && said.contains(&format!("\n  {}: iterations", s(&the_run(&out)))), "{said}");
    // The plan counts it as neither done nor to run.
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
    assert!(text(&o).contains("1 runs in this shard: 0 done, 0 to run, 1 the sweep stops on"), "{}", text(&o));

    // Without --limit the data subset differs too.
    let o = run(&["sweep", s(&exp), "--out", s(&out), "--data-dir", s(&data), "--device", "cpu", "--dry-run"]);
    assert!(text(&o).contains("data_limit: recorded"), "{}", text(&o));

    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--retrain-changed"]));
    assert!(o.status.success(), "{}", text(&o));
    let config = std::fs::read_to_string(the_run(&out).join("config.json")).unwrap();
    assert!(config.contains("\"iterations\": 60"), "{config}");

    // `train` does not replace a run of other settings without being asked to.
    let runs = out.join("faults");
    let again = |extra: &[&str]| {
        let mut args = vec!["--method", "batch-norm", "--iterations", "30"];
        args.extend(SMALL);
        args.extend(extra);
        train(&data, &runs, &args)
    };
    let o = again(&[]);
    assert!(!o.status.success() && text(&o).contains("iterations: recorded 60, now 30"), "{}", text(&o));
    assert!(std::fs::read_to_string(the_run(&out).join("config.json")).unwrap().contains("\"iterations\": 60"));
    let o = again(&["--replace"]);
    assert!(o.status.success(), "{}", text(&o));

    // With the same settings the complete run is kept, not deleted and trained again (a
    // SIGTERM early in a retraining used to leave only config.json of a finished run).
    let summary = std::fs::read(the_run(&out).join("summary.json")).unwrap();
    std::fs::write(the_run(&out).join("eval-batch-tb1000.json"), "{}").unwrap();
    let o = again(&[]);
    assert!(o.status.success() && text(&o).contains("complete with these settings already; kept"), "{}", text(&o));
    assert_eq!(std::fs::read(the_run(&out).join("summary.json")).unwrap(), summary, "the run was not touched");
    assert!(the_run(&out).join("eval-batch-tb1000.json").exists());
    // --replace trains it again, and an evaluation of the old weights goes with them.
    let o = again(&["--replace"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!the_run(&out).join("eval-batch-tb1000.json").exists(), "eval files of the replaced weights are removed");
}

#[test]
fn runs_on_other_data_bytes_stop_a_sweep_and_never_compare_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let exp = experiment(tmp.path(), 40);
    let o = run(&sweep_args(s(&exp), s(&a), s(&data), &[]));
    assert!(o.status.success(), "{}", text(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(the_run(&a).join("config.json")).unwrap()).unwrap();
    let files = config["data_files"].as_array().unwrap();
    assert_eq!(files.len(), 6);
    assert!(files.iter().all(|f| f["sha256"].as_str().is_some_and(|h| h.len() == 64)), "{files:?}");

    // One test pixel changed: the data is other bytes of the same size.
    let test_file = data.join("cifar-10-batches-bin/test_batch.bin");
    let mut bytes = std::fs::read(&test_file).unwrap();
    bytes[100] = bytes[100].wrapping_add(1);
    std::fs::write(&test_file, bytes).unwrap();
    let o = run(&sweep_args(s(&exp), s(&a), s(&data), &[]));
    assert!(!o.status.success(), "a run on other data must not pass for done");
    assert!(text(&o).contains(s(&the_run(&a))) && text(&o).contains("data content sha256"), "{}", text(&o));

    // The same run on the new bytes elsewhere: compare names the seed, at any tolerance.
    let o = run(&sweep_args(s(&exp), s(&b), s(&data), &[]));
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["compare", s(&a), s(&b), "--out", s(&tmp.path().join("cmp")), "--tolerance", "1"]);
    assert!(!o.status.success(), "runs on other data are never the same run: {}", text(&o));
    assert!(text(&o).contains("seed 0: trained on other data"), "{}", text(&o));
    // A tolerance that could let anything through is refused.
    for bad in ["NaN", "-1", "inf"] {
        let o = run(&["compare", s(&a), s(&a), "--out", s(&tmp.path().join("cmp")), &format!("--tolerance={bad}")]);
        assert!(
            !o.status.success() && text(&o).contains("--tolerance must be a finite number ≥ 0"),
            "{bad}: {}",
            text(&o)
        );
    }
}

#[test]
fn a_run_of_a_newer_format_or_with_unknown_keys_is_never_deleted_or_trained_over() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 40);
    assert!(run(&sweep_args(s(&exp), s(&out), s(&data), &[])).status.success());
    let config_path = the_run(&out).join("config.json");
    let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let mut newer = original.clone();
    newer["format_version"] = 99.into();
    let mut unknown = original.clone();
    unknown["optimizer_betas"] = serde_json::json!([0.9, 0.99]);
    let mut network = original.clone();
    network["model"] = "vit-tiny".into();
    for (what, config, says) in [
        ("newer", newer, "run-folder format 99"),
        ("unknown key", unknown, "unknown field(s) [\"optimizer_betas\"]"),
        ("unknown network", network, "unknown variant `vit-tiny`"),
    ] {
        std::fs::write(&config_path, config.to_string()).unwrap();
        let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut f: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect();
            f.sort();
            f
        };
        let before = files(&the_run(&out));
        let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
        assert!(text(&o).contains("not read by this homeonorm") && text(&o).contains(says), "{what}: {}", text(&o));
        for extra in [&[][..], &["--retrain-changed"]] {
            let o = run(&sweep_args(s(&exp), s(&out), s(&data), extra));
            assert!(!o.status.success() && text(&o).contains("never deleted or trained over"), "{what}: {}", text(&o));
        }
        let mut args = vec!["--method", "batch-norm", "--iterations", "40", "--replace"];
        args.extend(SMALL);
        let o = train(&data, &out.join("faults"), &args);
        assert!(!o.status.success() && text(&o).contains("never trained over"), "{what}: {}", text(&o));
        assert_eq!(files(&the_run(&out)), before, "{what}: the folder was changed");
    }
}

#[test]
fn the_longest_run_allowed_starts_at_once_and_stops_on_the_first_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    // 10^8 one-image batches over 10 images: ten million epochs to plan.
    let mut args = vec!["train", "--dataset", "cifar10", "--method", "vanilla", "--device", "cpu"];
    args.extend(["--data-dir", s(&data), "--out", s(&out), "--limit", "10", "--threads", "1"]);
    args.extend(["--batch-size", "1", "--iterations", "100000000", "--eval-every", "100000000"]);
    let child = spawn(&args);
    let run = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.003, 0);
    wait_for(&run.join("config.json"), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let stopped = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(stopped.elapsed() < Duration::from_secs(10), "one SIGTERM took {:?}", stopped.elapsed());
    assert!(!run.join("summary.json").exists());
}

#[test]
fn eval_refuses_weights_that_are_not_the_runs_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let o = train(&data, &out, &["--method", "vanilla", "--iterations", "20", "--eval-every", "10", "--limit", "1000"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.003, 0);
    let eval = || run(&["eval", "--device", "cpu", s(&dir)]);
    let o = eval();
    assert!(o.status.success(), "the run's own weights: {}", text(&o));
    // A copy of the data whose test labels differ is not the run's data: refused, by its hash.
    let copy = tmp.path().join("copy/cifar-10-batches-bin");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(data.join("cifar-10-batches-bin")).unwrap().flatten() {
        let mut bytes = std::fs::read(entry.path()).unwrap();
        if entry.file_name() == "test_batch.bin" {
            bytes[0] = (bytes[0] + 1) % 10; // the first image's label
        }
        std::fs::write(copy.join(entry.file_name()), bytes).unwrap();
    }
    let o = run(&["eval", "--device", "cpu", s(&dir), "--data-dir", s(&copy)]);
    assert!(!o.status.success() && text(&o).contains("not the data the run trained"), "{}", text(&o));
    let weights = homeonorm::results::rundir::read_model(&dir).unwrap();
    let rewrite = |change: &dyn Fn(&str, &tch::Tensor) -> tch::Tensor| {
        let changed: Vec<(String, tch::Tensor)> = weights.iter().map(|(n, t)| (n.clone(), change(n, t))).collect();
        tch::Tensor::write_safetensors(&changed, dir.join("model.safetensors")).unwrap();
        common::rewrite_run_file(&dir, "model.safetensors", &std::fs::read(dir.join("model.safetensors")).unwrap());
    };
    rewrite(&|_, t| t.to_kind(tch::Kind::Int));
    let o = eval();
    assert!(!o.status.success() && text(&o).contains("is Int, the model's is Float"), "I32 weights: {}", text(&o));
    rewrite(&|n, t| if n == "fc1.layer.weight" { t.full_like(f64::NAN) } else { t.shallow_clone() });
    let o = eval();
    assert!(
        !o.status.success() && text(&o).contains("`fc1.layer.weight` holds NaN or infinite values"),
        "{}",
        text(&o)
    );
    rewrite(&|_, t| t.shallow_clone());
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    summary["outcome"] = "diverged".into();
    summary["final_accuracy"] = serde_json::Value::Null;
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    let o = eval();
    assert!(!o.status.success() && text(&o).contains("the run diverged"), "{}", text(&o));
}

#[test]
fn two_sweep_processes_started_together_never_train_a_run_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = tmp.path().join("together.toml");
    std::fs::write(
        &exp,
        "name = \"together\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"batch-norm\"]\nseeds = 3\n\n[settings]\niterations = 150\neval_every = 50\n",
    )
    .unwrap();
    let extra = ["--seeds-per-batch", "1", "--workers", "1"];
    let both: Vec<Child> = (0..2).map(|_| spawn(&sweep_args(s(&exp), s(&out), s(&data), &extra))).collect();
    let said: Vec<String> = both.into_iter().map(|c| text(&c.wait_with_output().unwrap())).collect();
    let mut trained_by = Vec::new();
    for (p, text) in said.iter().enumerate() {
        let runs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("] ")?.1.split_once(": test accuracy").map(|(run, _)| run))
            .collect();
        trained_by.push(runs.len());
        for run in runs {
            let everywhere = said.iter().map(|t| t.matches(&format!("{run}: test accuracy")).count()).sum::<usize>();
            assert_eq!(everywhere, 1, "process {p}: {run} trained {everywhere} times");
        }
    }
    assert_eq!(trained_by.iter().sum::<usize>(), 6, "together they trained the grid: {said:?}");
    assert!(trained_by.iter().all(|&n| n > 0), "both processes trained (they overlapped): {trained_by:?}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["info"][..], &["sweep", "experiments/paper-cifar10.toml", "--dry-run", "--out", "/nonexistent"]] {
        let mut child = homeonorm()
            .args(args)
            .current_dir(common::repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first line is written
        let o = child.wait_with_output().unwrap();
        let said = text(&o);
        assert!(!said.contains("panicked") && !said.contains("Broken pipe"), "{args:?}: {said}");
        assert!(o.status.success() || o.status.signal() == Some(libc::SIGPIPE), "{args:?}: {:?}", o.status);
    }
}

#[test]
fn kill_9_then_a_rerun_takes_over_the_dead_workers_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 3000);
    let mut worker = spawn(&sweep_args(s(&exp), s(&out), s(&data), &[]));
    wait_for(&the_run(&out).join("config.json"), Duration::from_secs(60));
    signal(&worker, "KILL");
    worker.wait().unwrap();
    assert!(the_run(&out).join(".claim").exists(), "kill -9 leaves its claim");
    assert!(!the_run(&out).join("summary.json").exists());

    // The claim's process is gone from this host: taken over at once, not after the timeout.
    experiment(tmp.path(), 150);
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &[]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained 1 run(s) here"), "{}", text(&o));
    assert!(!the_run(&out).join(".claim").exists());
    assert_eq!(
        homeonorm::results::rundir::state(&the_run(&out)),
        homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Complete)
    );
}

#[test]
fn ctrl_c_and_sigterm_release_the_claim_and_leave_the_run_unfinished() {
    for sig in ["INT", "TERM"] {
        let tmp = tempfile::tempdir().unwrap();
        let data = data(tmp.path());
        let out = tmp.path().join("out");
        let exp = experiment(tmp.path(), 3000);
        let worker = spawn(&sweep_args(s(&exp), s(&out), s(&data), &[]));
        wait_for(&the_run(&out).join("config.json"), Duration::from_secs(60));
        signal(&worker, sig);
        let o = worker.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(130), "SIG{sig}: {}", text(&o));
        assert!(text(&o).contains("interrupted"), "{}", text(&o));
        assert!(!the_run(&out).join(".claim").exists(), "SIG{sig} releases the claim");
        assert!(matches!(
            homeonorm::results::rundir::state(&the_run(&out)),
            homeonorm::results::rundir::RunState::Unfinished(_)
        ));
        let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
        let said = text(&o);
        assert!(
            said.contains("will be redone") || said.contains("will go on from its checkpoint at iteration"),
            "{said}"
        );
        // runs.csv says how far the stopped run got: its checkpoint's iteration, or none.
        let reached = said
            .split("will go on from its checkpoint at iteration ")
            .nth(1)
            .map_or(String::new(), |rest| rest.chars().take_while(|c| c.is_ascii_digit()).collect::<String>());
        let experiment_dir = out.join("faults");
        let o = run(&["report", s(&experiment_dir)]);
        assert!(o.status.success(), "{}", text(&o));
        let mut rows = csv::Reader::from_path(experiment_dir.join("report/runs.csv")).unwrap();
        let row: std::collections::HashMap<String, String> = rows.deserialize().next().unwrap().unwrap();
        assert_eq!(
            (row["outcome"].as_str(), row["iterations_trained"].as_str()),
            ("unfinished", reached.as_str()),
            "{said}"
        );
    }
}

#[test]
fn a_worker_stopped_past_its_claim_timeout_does_not_write_over_the_one_that_took_over() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 1200);
    let timeout = ["--claim-timeout-minutes", "0.05"]; // 3 s
    let first = spawn(&sweep_args(s(&exp), s(&out), s(&data), &timeout));
    wait_for(&the_run(&out).join("config.json"), Duration::from_secs(60));
    signal(&first, "STOP");
    std::thread::sleep(Duration::from_secs(4));
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &timeout));
    assert!(o.status.success() && text(&o).contains("trained 1 run(s) here"), "{}", text(&o));
    let summary = std::fs::read(the_run(&out).join("summary.json")).unwrap();
    let curve = std::fs::read(the_run(&out).join("curve.csv")).unwrap();

    signal(&first, "CONT");
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 taken over"), "{}", text(&o));
    assert_eq!(std::fs::read(the_run(&out).join("summary.json")).unwrap(), summary, "written over");
    assert_eq!(std::fs::read(the_run(&out).join("curve.csv")).unwrap(), curve, "written over");
}

#[test]
fn damaged_result_files_make_a_run_unfinished_for_sweep_report_and_plot_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 100);
    assert!(run(&sweep_args(s(&exp), s(&out), s(&data), &[])).status.success());
    for damaged in ["curve.csv", "activation_prob.csv", "unit_stats.csv", "config.json"] {
        let path = the_run(&out).join(damaged);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let o = run(&sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]));
        assert!(text(&o).contains("will be redone"), "{damaged}: {}", text(&o));
        let o = run(&["report", s(&out)]);
        assert!(o.status.success(), "{damaged}: {}", text(&o));
        let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
        assert!(md.contains(damaged), "{damaged}: report.md names neither the run nor why: {md}");
        let o = run(&sweep_args(s(&exp), s(&out), s(&data), &[]));
        assert!(o.status.success() && text(&o).contains("trained 1 run(s) here"), "{damaged}: {}", text(&o));
    }
}

#[test]
fn a_full_disk_is_an_error_naming_the_file_and_leaves_the_run_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("small-disk");
    std::fs::create_dir_all(&out).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48k", "tmpfs", s(&out)]).output();
    if !matches!(&mounted, Ok(o) if o.status.success()) {
        // CI runs as root, where the mount works: there a refusal is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "cannot mount a small tmpfs in CI: {mounted:?}");
        // Elsewhere the skip is said on the process's stderr itself, which the test harness
        // does not capture (an eprintln! of a passing test is never shown).
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED a_full_disk_…: cannot mount a small tmpfs here (needs root): {mounted:?}"
        );
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&out);
    // 800 rows of activation probabilities per 100 iterations … more than 48 KiB in all.
    let o = train(
        &data,
        &out,
        &[&SMALL[..], &["--method", "batch-norm", "--iterations", "400", "--record-every", "5", "--eval-every", "200"]]
            .concat(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "batch-norm", 0.003, 0);
    let said = text(&o);
    assert!(said.contains(s(&dir)) && said.contains("No space left on device"), "{said}");
    assert!(matches!(homeonorm::results::rundir::state(&dir), homeonorm::results::rundir::RunState::Unfinished(_)));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn out_of_range_input_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let empty = tmp.path().join("empty");
    let empty_cifar = empty.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&empty_cifar).unwrap();
    for f in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"] {
        std::fs::write(empty_cifar.join(f), b"").unwrap();
    }
    std::fs::copy(data.join("cifar-10-batches-bin/test_batch.bin"), empty_cifar.join("test_batch.bin")).unwrap();
    let train = |extra: &[&str], data: &Path| {
        train(data, &out, &[&["--method", "vanilla", "--iterations", "5"], extra].concat())
    };
    let huge = tmp.path().join("huge.toml");
    std::fs::write(
        &huge,
        "name = \"huge\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\"]\nseeds = 1000000000000\n",
    )
    .unwrap();
    let twice = tmp.path().join("twice.toml");
    std::fs::write(
        &twice,
        "name = \"twice\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"vanilla\"]\nseeds = 2\n",
    )
    .unwrap();
    let exp = experiment(tmp.path(), 10);
    let cases: Vec<(&str, Output, &str)> = vec![
        ("--limit 0", train(&["--limit", "0"], &data), "--limit"),
        ("--threads 0", train(&["--limit", "10", "--threads", "0"], &data), "--threads"),
        ("--seeds-per-batch 0", train(&["--limit", "10", "--seeds-per-batch", "0"], &data), "--seeds-per-batch"),
        ("--seed 0,0", train(&["--limit", "10", "--seed", "0,0"], &data), "seed 0 is given twice"),
        ("--threshold-rate 0", train(&["--limit", "10", "--threshold-rate", "0"], &data), "threshold_rate"),
        ("--scaling-rate -0.01", train(&["--limit", "10", "--scaling-rate=-0.01"], &data), "scaling_rate"),
        ("--target-rate 1", train(&["--limit", "10", "--target-rate", "1"], &data), "target_rate"),
        ("--target-rate 0", train(&["--limit", "10", "--target-rate", "0"], &data), "target_rate"),
        ("empty training files", train(&["--limit", "10"], &empty), "data_batch_1.bin"),
        ("--batch-size 2^63", train(&["--limit", "10", "--batch-size", "9223372036854775808"], &data), "batch_size"),
        ("--iterations 2^63", train(&["--limit", "10", "--iterations", "9223372036854775808"], &data), "iterations"),
        (
            "--test-batch-size 2^64-1",
            train(&["--limit", "10", "--test-batch-size", "18446744073709551615"], &data),
            "test_batch_size",
        ),
        (
            "--rate-window 2^64-1",
            train(&["--limit", "10", "--rate-window", "18446744073709551615"], &data),
            "rate_window",
        ),
        (
            "--claim-timeout-minutes 1e-300",
            run(&["sweep", s(&exp), "--out", s(&out), "--claim-timeout-minutes", "1e-300"]),
            "--claim-timeout-minutes",
        ),
        (
            "--claim-timeout-minutes 1e300",
            run(&["sweep", s(&exp), "--out", s(&out), "--claim-timeout-minutes", "1e300"]),
            "--claim-timeout-minutes",
        ),
        ("seeds = 10^12", run(&["sweep", s(&huge), "--out", s(&out)]), "huge.toml:4: seeds"),
        ("a method listed twice", run(&["sweep", s(&twice), "--out", s(&out)]), "vanilla is listed twice"),
    ];
    for (what, o, names) in cases {
        let said = text(&o);
        assert!(matches!(o.status.code(), Some(1) | Some(2)), "{what}: exit {:?} (a panic?): {said}", o.status);
        assert!(!said.contains("panicked"), "{what}: {said}");
        assert!(said.contains(names), "{what}: the error does not name {names:?}: {said}");
        assert!(!out.exists(), "{what}: something was written");
    }
}

#[test]
fn workers_share_a_sweep_and_stop_together_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let grid = |iterations: usize| {
        let path = tmp.path().join("workers.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"workers\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"batch-norm\"]\nseeds = 1\n\n[settings]\niterations = {iterations}\neval_every = 50\n"
            ),
        )
        .unwrap();
        path
    };
    let runs = |out: &Path| {
        ["vanilla", "batch-norm"]
            .map(|m| homeonorm::results::rundir::run_path(&out.join("workers"), "cifar10", m, 0.003, 0))
    };
    let exp = grid(100);
    let o = run(&["sweep", s(&exp), "--out", s(&out), "--data-dir", s(&data), "--limit", "1000", "--workers", "2"]);
    assert!(o.status.success() && text(&o).contains("2 workers finished"), "{}", text(&o));
    for dir in runs(&out) {
        assert_eq!(
            homeonorm::results::rundir::state(&dir),
            homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Complete),
            "{}",
            dir.display()
        );
    }

    // SIGTERM to the parent reaches both workers, Ctrl-C at a terminal (SIGINT to the
    // whole process group, then the parent's SIGTERM on top) counts once, and workers
    // stopped by signals of their own stop the parent too: the workers stop, release
    // their claims, and the parent exits with 130.
    let exp = grid(5000);
    for name in ["term", "ctrl-c", "the workers alone"] {
        let out = tmp.path().join(name);
        let args = ["sweep", s(&exp), "--out", s(&out), "--data-dir", s(&data), "--limit", "1000", "--workers", "2"];
        let mut command = homeonorm();
        command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let parent = command.spawn().unwrap();
        for dir in runs(&out) {
            wait_for(&dir.join("config.json"), Duration::from_secs(60));
        }
        let kill = |sig: &str, target: String| {
            assert!(Command::new("kill").args([sig, "--", &target]).status().unwrap().success());
        };
        match name {
            "term" => kill("-TERM", parent.id().to_string()),
            "ctrl-c" => kill("-INT", format!("-{}", parent.id())),
            _ => {
                let workers = children_of(parent.id());
                assert_eq!(workers.len(), 2, "{name}: the parent's children: {workers:?}");
                for worker in workers {
                    kill("-INT", worker.to_string());
                }
            }
        }
        let o = parent.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(130), "{name}: {}", text(&o));
        assert!(!text(&o).contains("exiting now"), "{name}: a worker took one signal for two: {}", text(&o));
        for dir in runs(&out) {
            assert!(!dir.join(".claim").exists() && !dir.join("summary.json").exists(), "{name}: {}", dir.display());
        }
    }
}

#[test]
fn a_worker_never_takes_its_parents_passing_on_for_a_second_signal() {
    // On a loaded machine the sweep's SIGTERM to its workers can come more than a second
    // after the SIGINT Ctrl-C gave them (CI saw it). A worker mid-step, stopped by SIGINT,
    // frozen for 1.5 s and then sent SIGTERM: from its parent (this test, which started
    // it as a worker) it is the same stop; from anyone else it is a second one.
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    for (sender, from_parent) in [("its parent", true), ("another process", false)] {
        let said = (0..3)
            .find_map(|attempt| {
                late_term_to_a_stopping_worker(&data, &tmp.path().join(format!("{sender}{attempt}")), from_parent)
            })
            .unwrap_or_else(|| panic!("{sender}: the worker ended its step before it was frozen, three times"));
        let exited_at_once = said.contains("second stop signal: exiting now");
        assert_eq!(exited_at_once, !from_parent, "SIGTERM from {sender}: {said}");
    }
}

/// Starts `train` as a sweep worker of this process on a step of seconds (ResNet-20, 256
/// images), sends SIGINT mid-step, freezes it (SIGSTOP) once it logged the stop, sends
/// SIGTERM 1.5 s later from this process or from `kill`, and lets it go on: its output,
/// or `None` if it had ended before it was frozen.
fn late_term_to_a_stopping_worker(data: &Path, out: &Path, from_parent: bool) -> Option<String> {
    use std::io::BufRead;
    let args = ["train", "--dataset", "cifar10", "--device", "cpu", "--data-dir", s(data), "--out", s(out)];
    let settings = ["--limit", "1000", "--threads", "1", "--model", "resnet20", "--batch-size", "256"];
    let mut child = homeonorm()
        .args(args)
        .args(settings)
        .args(["--method", "vanilla", "--iterations", "1000"])
        .env(homeonorm::runs::workers::WORKER_ENV, "0")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, logged) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all += &line;
            all.push('\n');
        }
        all
    });
    let run = homeonorm::results::rundir::run_path(&out.join("resnet20"), "cifar10", "vanilla", 0.003, 0);
    wait_for(&run.join("config.json"), Duration::from_secs(120));
    wait_for_handler(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500)); // into a step
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !logged
        .recv_timeout(deadline - Instant::now())
        .expect("the worker never logged its stop")
        .contains("stop signal")
    {}
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let frozen = loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        match process_state(&status) {
            Some('T') => break true,
            Some('Z') | None => break false,
            Some(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    std::thread::sleep(Duration::from_millis(1500));
    if from_parent {
        unsafe { libc::kill(pid, libc::SIGTERM) };
    } else {
        signal(&child, "TERM"); // through `kill`
    }
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let status = child.wait().unwrap();
    let said = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{status}: {said}");
    assert!(!said.contains("panicked"), "{said}");
    frozen.then_some(said)
}

/// The processes `pid` started that are still running.
fn children_of(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let listed = tasks.flatten().map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default());
    listed.flat_map(|l| l.split_whitespace().map(|c| c.parse().unwrap()).collect::<Vec<u32>>()).collect()
}

/// Every file and folder below `root`.
fn entries_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// Every claim file left under `root` (a run folder's `.claim`).
fn claims_under(root: &Path) -> Vec<PathBuf> {
    entries_under(root).into_iter().filter(|p| !p.is_dir() && p.file_name().is_some_and(|n| n == ".claim")).collect()
}

#[test]
fn sigterm_at_any_moment_of_a_sweep_never_panics_and_a_resume_completes_the_shard() {
    stopped_at_moments_then_resumed("TERM");
}

#[test]
fn kill_at_any_moment_of_a_sweep_never_panics_and_a_resume_completes_the_shard() {
    stopped_at_moments_then_resumed("KILL");
}

/// A sweep of six runs on two workers, sent SIG`sig` at moments from its start to its
/// last writes, each time resumed at once.
fn stopped_at_moments_then_resumed(sig: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let exp = tmp.path().join("moments.toml");
    std::fs::write(
        &exp,
        "name = \"moments\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"mean-only\", \"scale-only\"]\nseeds = 2\n\n[settings]\niterations = 30\neval_every = 10\n",
    )
    .unwrap();
    let runs = |out: &Path| -> Vec<PathBuf> {
        let root = out.join("moments");
        ["vanilla", "mean-only", "scale-only"]
            .iter()
            .flat_map(|m| {
                (0..2).map(|k| homeonorm::results::rundir::run_path(&root, "cifar10", m, 0.003, k)).collect::<Vec<_>>()
            })
            .collect()
    };
    let extra = ["--workers", "2", "--seeds-per-batch", "1"];
    // From before the workers exist to the last runs' writing: the schedule's replay, the
    // model's construction, the first step, an evaluation, the run folders' files. A KILL
    // lands while the program still loads, too; a TERM is sent once its handler is in
    // place (`signal`), some half second after the start, so the moments before that are
    // one moment for TERM, and it is sent once there.
    let moments_ms: &[u64] = match sig {
        "TERM" => &[0, 500, 800, 1200, 1700, 2300, 3000],
        _ => &[0, 60, 150, 300, 500, 800, 1200, 1700, 2300, 3000],
    };
    for (i, wait) in moments_ms.iter().enumerate() {
        let out = tmp.path().join(format!("{sig}-{i}"));
        let args = sweep_args(s(&exp), s(&out), s(&data), &extra);
        let parent = spawn(&args);
        std::thread::sleep(Duration::from_millis(*wait));
        signal(&parent, sig);
        // Its output ends when the workers (which share its pipes) have ended too.
        let o = parent.wait_with_output().unwrap();
        let said = text(&o);
        let case = format!("SIG{sig} after {wait} ms");
        assert!(!said.contains("panicked"), "{case}: {said}");
        let complete = runs(&out).iter().all(|d| matches!(homeonorm::results::rundir::state(d), RunState::Done(_)));
        match o.status.code() {
            Some(0) => assert!(complete, "{case}: exit 0 with runs missing: {said}"),
            Some(130) => {}
            // KILL, or a TERM before the handler is installed (the program still loading:
            // nothing claimed or written yet, which the checks below hold it to).
            None => {}
            Some(other) => panic!("{case}: exit status {other}: {said}"),
        }
        assert_eq!(claims_under(&out), Vec::<PathBuf>::new(), "{case}: claims left behind: {said}");

        // At once, a resume completes the shard and says so with exit status 0.
        let o = run(&args);
        assert!(o.status.success() && !text(&o).contains("panicked"), "{case}, resumed: {}", text(&o));
        for dir in runs(&out) {
            assert!(matches!(homeonorm::results::rundir::state(&dir), RunState::Done(_)), "{case}: {}", dir.display());
        }
    }
}

#[test]
fn a_sweep_waits_for_the_runs_another_worker_holds_and_exits_0_only_when_they_are_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 400);
    let timeout = ["--claim-timeout-minutes", "0.05"]; // 3 s
                                                       // A claim from a live worker on another host: never refreshed, so stale after the timeout.
    let dir = the_run(&out);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".claim"), "{\"host\":\"elsewhere\",\"pid\":1,\"pid_start\":null,\"token\":\"t\"}\n")
        .unwrap();
    let started = Instant::now();
    let o = run(&sweep_args(s(&exp), s(&out), s(&data), &timeout));
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("waiting for 1 run(s) other workers hold"), "{said}");
    assert!(said.contains("taking over a stale claim"), "{said}");
    assert!(said.contains("trained 1 run(s) here") && said.contains("1 waited for"), "{said}");
    assert!(started.elapsed() >= Duration::from_secs(3), "it waited for the claim to go stale");
    assert_eq!(homeonorm::results::rundir::state(&dir), RunState::Done(homeonorm::results::rundir::Outcome::Complete));

    // The same held claim, and a SIGTERM while the sweep waits: exit 130, no claim of its own left.
    let out = tmp.path().join("out2");
    let dir = the_run(&out);
    std::fs::create_dir_all(&dir).unwrap();
    let foreign_claim = "{\"host\":\"elsewhere\",\"pid\":1,\"pid_start\":null,\"token\":\"t\"}\n";
    std::fs::write(dir.join(".claim"), foreign_claim).unwrap();
    let waiting = spawn(&sweep_args(s(&exp), s(&out), s(&data), &["--claim-timeout-minutes", "10"]));
    std::thread::sleep(Duration::from_millis(1500));
    signal(&waiting, "TERM");
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join(".claim")).unwrap(), foreign_claim, "the other worker's claim stays");
}

/// A grid of `methods` at two learning rates, two seeds (one model of four runs per
/// method), and its uninterrupted runs under `whole`, to hold a stopped sweep's runs to.
struct ResumeGrid {
    tmp: tempfile::TempDir,
    data: PathBuf,
    exp: PathBuf,
    whole: PathBuf,
}

impl ResumeGrid {
    fn new(methods: &[&str], iterations: usize, eval_every: usize) -> ResumeGrid {
        let tmp = tempfile::tempdir().unwrap();
        let data = data(tmp.path());
        let exp = tmp.path().join("resume.toml");
        std::fs::write(
            &exp,
            format!(
                "name = \"resume\"\ndatasets = [\"cifar10\"]\nmethods = {methods:?}\n\
                 learning_rates = [0.003, 0.01]\nseeds = 2\n\n[settings]\niterations = {iterations}\n\
                 eval_every = {eval_every}\nrecord_every = 10\n"
            ),
        )
        .unwrap();
        let whole = tmp.path().join("whole");
        let o = run(&sweep_args(s(&exp), s(&whole), s(&data), &RESUME_ARGS));
        assert!(o.status.success(), "{}", text(&o));
        ResumeGrid { tmp, data, exp, whole }
    }

    /// The sweep of this grid into `out`, with a checkpoint every `every`.
    fn args<'a>(&'a self, out: &'a Path, every: &'a str) -> Vec<&'a str> {
        let mut args = sweep_args(s(&self.exp), s(out), s(&self.data), &RESUME_ARGS);
        args.extend(["--checkpoint-every", every]);
        args
    }
}

/// batch-norm's running statistics and adaptive-threshold's rule.
const RESUME_METHODS: [&str; 2] = ["batch-norm", "adaptive-threshold"];

const RESUME_ARGS: [&str; 4] = ["--seeds-per-batch", "4", "--workers", "1"];

/// Every file under `a` is under `b` with the same bytes (`summary.json` but its wall
/// time and `provenance.json`'s size; `config.json` is the run's settings, checked by the
/// sweep itself; `provenance.json` says who trained each stretch: its stretches in `b`
/// cover the run's iterations in order, whatever they were).
fn assert_same_runs(a: &Path, b: &Path) {
    assert_same_runs_of(a, b, 8);
}

/// [`assert_same_runs`] of a grid of `runs` runs.
fn assert_same_runs_of(a: &Path, b: &Path, runs: usize) {
    let mut files = 0;
    for path in entries_under(a).into_iter().filter(|p| !p.is_dir()) {
        let other = b.join(path.strip_prefix(a).unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files += 1;
        match name.as_str() {
            "config.json" => assert!(other.is_file(), "{}", other.display()),
            "summary.json" => {
                let read = |p: &Path| {
                    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                    v.as_object_mut().unwrap().remove("wall_time_s");
                    v["files"].as_object_mut().unwrap().remove("provenance.json");
                    v
                };
                assert_eq!(read(&path), read(&other), "{}", other.display());
            }
            "provenance.json" => assert_stretches_cover_the_run(&other),
            _ => {
                assert!(std::fs::read(&path).unwrap() == std::fs::read(&other).unwrap(), "{} differs", other.display())
            }
        }
    }
    assert!(files >= runs * 5, "the grid's runs, each whole ({files} files)");
    for path in entries_under(b) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with("checkpoint"), "{}: removed when the run completed", path.display());
    }
}

/// A run's `provenance.json` lists stretches that go on from one another, from 0 to the
/// run's last iteration, each saying when, where and by which command it ran.
fn assert_stretches_cover_the_run(provenance: &Path) {
    let dir = provenance.parent().unwrap();
    let stretches = homeonorm::results::rundir::read_provenance(dir).unwrap().unwrap().stretches;
    let summary = homeonorm::results::rundir::read_summary(dir).unwrap();
    let mut at = 0;
    for stretch in &stretches {
        assert_eq!(stretch.from_iteration, at, "{}: {stretches:?}", provenance.display());
        assert!(stretch.to_iteration >= at && stretch.started <= stretch.ended && stretch.ended.is_some());
        assert!(stretch.host.is_some() && stretch.command.iter().any(|a| a == "sweep" || a == "train"));
        at = stretch.to_iteration;
    }
    assert_eq!(at, summary.iterations, "{}: the stretches end where the run ended", provenance.display());
}

/// The iterations a command's log says its runs were resumed at.
fn resumed_at(said: &str) -> Vec<String> {
    said.lines().filter_map(|l| l.split_once("resumed at iteration ").map(|(_, k)| k.to_string())).collect()
}

#[test]
fn a_sweep_stopped_again_and_again_goes_on_from_its_checkpoints_and_ends_byte_identical() {
    let grid = ResumeGrid::new(&RESUME_METHODS, 200, 40);

    // Stopped by the signals clusters send (Slurm's TERM or --signal USR1, submitit's HUP),
    // at moments from the first steps to the evaluations and writing; each time taken up again.
    let out = grid.tmp.path().join("stopped");
    let args = grid.args(&out, "25it");
    let (mut resumed, mut stops) = (Vec::new(), 0);
    for (round, sig) in ["TERM", "USR1", "HUP", "TERM", "USR1", "TERM", "HUP", "TERM"].iter().enumerate() {
        let child = spawn(&args);
        std::thread::sleep(Duration::from_millis(600 + 450 * round as u64));
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let said = text(&o);
        assert!(!said.contains("panicked"), "{said}");
        resumed.extend(resumed_at(&said));
        match o.status.code() {
            Some(130) => stops += 1,
            Some(0) => break,
            other => panic!("SIG{sig}: exit {other:?}: {said}"),
        }
    }
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    resumed.extend(resumed_at(&text(&o)));
    assert!(stops >= 2 && !resumed.is_empty(), "stopped {stops} times, resumed at {resumed:?}");
    assert_same_runs(&grid.whole, &out);
    assert!(most_stretches(&out) >= 2, "a resumed run's provenance.json lists each process that trained it");
}

/// The most stretches a run under `out` records in its `provenance.json`.
fn most_stretches(out: &Path) -> usize {
    entries_under(out)
        .iter()
        .filter(|p| p.ends_with("provenance.json"))
        .map(|p| homeonorm::results::rundir::read_provenance(p.parent().unwrap()).unwrap().unwrap().stretches.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn kill_9_loses_only_the_steps_after_the_last_checkpoint() {
    let grid = ResumeGrid::new(&RESUME_METHODS, 120, 40);

    let out = grid.tmp.path().join("killed");
    let args = grid.args(&out, "30it");
    let child = spawn(&args);
    // Killed once every run of the first model has a checkpoint (a kill between two runs'
    // writes leaves each its previous one to share).
    for lr in ["0.003", "0.01"] {
        for seed in 0..2 {
            let dir = out.join(format!("resume/cifar10/batch-norm/lr{lr}/seed{seed}"));
            wait_for(&dir.join("checkpoint.safetensors"), Duration::from_secs(120));
        }
    }
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, "KILL");
    child.wait_with_output().unwrap();
    let o = run(&args);
    let said = text(&o);
    assert!(o.status.success() && said.contains("resumed at iteration"), "{said}");
    assert_same_runs(&grid.whole, &out);
    assert_eq!(most_stretches(&out), 2, "the killed stretch up to its last checkpoint, and the rest");
}

/// A way of damaging a checkpoint: what it is, what the log says of it, and the damage.
type Damage = (&'static str, &'static str, fn(&Path));

#[test]
fn a_damaged_or_foreign_checkpoint_is_named_and_never_used() {
    let grid = ResumeGrid::new(&RESUME_METHODS, 60, 20);
    let damages: [Damage; 4] = [
        ("truncated", "not a whole safetensors file", |p| {
            let bytes = std::fs::read(p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("a flipped data byte", "SHA-256 differs", |p| {
            let mut bytes = std::fs::read(p).unwrap();
            let last = bytes.len() - 3;
            bytes[last] ^= 0x40;
            std::fs::write(p, bytes).unwrap();
        }),
        ("a newer format", "checkpoint format 9", |p| {
            let mut bytes = std::fs::read(p).unwrap();
            let key = b"checkpoint_format\\\":1"; // a JSON string in the header's JSON
            let at = bytes.windows(key.len()).position(|w| w == key).expect("the format in the header");
            bytes[at + key.len() - 1] = b'9';
            std::fs::write(p, bytes).unwrap();
        }),
        ("another program's file", "not a whole safetensors file", |p| std::fs::write(p, b"not a checkpoint").unwrap()),
    ];
    for (what, reason, damage) in damages {
        let out = grid.tmp.path().join(what.replace(' ', "-"));
        let args = grid.args(&out, "20it");
        let child = spawn(&args);
        let checkpoint = out.join("resume/cifar10/batch-norm/lr0.003/seed0/checkpoint.safetensors");
        wait_for(&checkpoint, Duration::from_secs(120));
        signal(&child, "TERM");
        assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130), "{what}");
        damage(&checkpoint);
        let o = run(&args);
        let said = text(&o);
        assert!(o.status.success(), "{what}: {said}");
        // Named, and not used: the run starts over, or goes on from the checkpoint before.
        assert!(said.contains(reason), "{what}: {said}");
        assert!(
            said.contains("starting over, not from the checkpoints") || said.contains("checkpoints not used"),
            "{said}"
        );
        assert_same_runs(&grid.whole, &out);
    }
}

#[test]
fn stopped_at_every_kind_of_moment_a_run_goes_on_and_ends_byte_identical() {
    // One model of four runs (adaptive-threshold's rule, two learning rates, two seeds).
    let grid = ResumeGrid::new(&["adaptive-threshold"], 60, 20);
    let once = |out: &Path, stop_after: Option<usize>| {
        let mut command = homeonorm();
        command.args(grid.args(out, "25it"));
        if let Some(k) = stop_after {
            command.env("HOMEONORM_STOP_AFTER_ITERATION", k.to_string());
        }
        command.output().unwrap()
    };
    // After the first step; a plain step; a checkpoint's step (25) and the step right after
    // it; an evaluation's step (40: stopped once it is evaluated); the last but one; and
    // stopped three times over.
    let cases: [&[usize]; 7] = [&[1], &[13], &[25], &[26], &[40], &[59], &[20, 35, 50]];
    for stops in cases {
        let out = grid.tmp.path().join(format!("stopped-{stops:?}").replace([' ', ',', '[', ']'], "_"));
        for &k in stops {
            let o = once(&out, Some(k));
            assert_eq!(o.status.code(), Some(130), "stopped after {k}: {}", text(&o));
        }
        let o = once(&out, None);
        let said = text(&o);
        let last = stops.last().unwrap();
        assert!(o.status.success() && said.contains(&format!("resumed at iteration {last}\n")), "{stops:?}: {said}");
        assert_same_runs_of(&grid.whole, &out, 4);
    }
}

#[test]
fn train_trains_no_run_beside_the_sweep_worker_that_holds_its_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 3000);
    let sweep = spawn(&sweep_args(s(&exp), s(&out), s(&data), &[]));
    wait_for(&the_run(&out).join("config.json"), Duration::from_secs(60));
    let o = train(
        &data,
        &out.join("faults"),
        &[&SMALL[..], &["--method", "batch-norm", "--seed", "0", "--iterations", "50"]].concat(),
    );
    let said = text(&o);
    assert!(!o.status.success() && said.contains("is being trained by another worker (host "), "{said}");
    signal(&sweep, "TERM");
    assert_eq!(sweep.wait_with_output().unwrap().status.code(), Some(130));
    let config = std::fs::read_to_string(the_run(&out).join("config.json")).unwrap();
    assert!(config.contains("\"iterations\": 3000"), "the sweep's run, not train's: {config}");
    // Once the sweep has stopped, the run is free: train takes it (its own settings).
    let o =
        train(&data, &out.join("faults"), &[&SMALL[..], &["--method", "batch-norm", "--iterations", "50"]].concat());
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_fifo_under_a_run_files_name_hangs_no_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("out");
    let exp = experiment(tmp.path(), 20);
    assert!(run(&sweep_args(s(&exp), s(&out), s(&data), &[])).status.success());
    let config = the_run(&out).join("config.json");
    std::fs::remove_file(&config).unwrap();
    let path = std::ffi::CString::new(s(&config)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0, "mkfifo");
    let results = out.join("faults");
    let compare_out = tmp.path().join("compare");
    let commands: [Vec<&str>; 4] = [
        vec!["report", s(&results)],
        vec!["plot", s(&results)],
        vec!["compare", s(&results), s(&results), "--out", s(&compare_out)],
        sweep_args(s(&exp), s(&out), s(&data), &["--dry-run"]),
    ];
    for args in commands {
        let mut child = spawn(&args);
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{args:?} hangs on a FIFO named config.json");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let said = text(&child.wait_with_output().unwrap());
        assert!(!said.contains("panicked"), "{args:?}: {said}");
        // `report` writes its report and names the run there; the others say it.
        let told = match args[0] {
            "report" => std::fs::read_to_string(results.join("report/report.md")).unwrap(),
            _ => said.clone(),
        };
        assert!(told.contains("not a regular file") || args[0] == "sweep", "{args:?}: {told}");
    }
}
