//! homeonorm against `reference/train.py`, the paper's protocol as a PyTorch script,
//! side by side on a small CIFAR-10-format data set: every method, on one and on two
//! threads, 60 iterations (six epochs and more of the DataLoader's shuffles) with
//! evaluations in between. The run folders must hold the same numbers: `curve.csv`,
//! `activation_prob.csv` and `unit_stats.csv` byte for byte, `summary.json`'s values
//! (all but the wall time and file sizes), and `model.safetensors` tensor for tensor.
//! On one thread homeonorm trains two seeds as one seed batch, so each seed of the batch
//! is held to the script's run of that seed alone; on two threads it trains seed 3
//! alone. The other networks the same way, a test each, shorter (10 steps of 32; ResNet-20,
//! whose step costs some sixty of LeNet5's on a CPU, 6 steps of 8) and on 64 test
//! images, on one thread, as a seed batch.
//! The local rules' settings at values other than the preset, packed into one model by a
//! sweep and trained alone, against the script run with the same flags. The script runs
//! all of a comparison's methods and seeds (and rule settings) in one process (Python
//! and torch start once).

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::model::{check_method, ModelOptions, Network};
use homeonorm::engine::norm::METHODS;
use homeonorm::engine::settings::TrainSettings;
use std::path::{Path, PathBuf};
use std::process::Command;

/// LeNet5's runs: iterations, batch size, and how often unit statistics are recorded
/// (evaluations: every [`EVAL_EVERY`]).
const LENET5_LENGTH: (&str, &str, &str) = ("60", "32", "20");
const EVAL_EVERY: &str = "40";

/// The same flags for both programs.
fn run_flags(method: &str, seeds: &str, threads: usize, data: &Path, out: &Path) -> Vec<String> {
    network_flags("lenet5", method, seeds, threads, LENET5_LENGTH, data, out)
}

fn network_flags(
    network: &str,
    method: &str,
    seeds: &str,
    threads: usize,
    (iterations, batch_size, record_every): (&str, &str, &str),
    data: &Path,
    out: &Path,
) -> Vec<String> {
    let flags = [
        ("--model", network),
        ("--dataset", "cifar10"),
        ("--method", method),
        ("--seed", seeds),
        ("--iterations", iterations),
        ("--batch-size", batch_size),
        ("--eval-every", EVAL_EVERY),
        ("--record-every", record_every),
        ("--test-batch-size", "64"),
        ("--limit", "100000"),
        ("--device", "cpu"),
    ];
    let mut args: Vec<String> = flags.iter().flat_map(|(k, v)| [k.to_string(), v.to_string()]).collect();
    args.extend(["--threads".into(), threads.to_string()]);
    args.extend(["--data-dir".into(), data.display().to_string(), "--out".into(), out.display().to_string()]);
    args
}

fn check(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn homeonorm(args: &[String]) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_homeonorm"));
    // The seeds of one command as one model for every method (the CPU's default trains
    // some methods one seed per model).
    c.arg("train").args(args).args(["--seeds-per-batch", "10"]);
    check(c, "homeonorm train");
}

fn script(args: &[String]) {
    let mut c = Command::new(common::python());
    c.arg(common::repo_root().join("reference/train.py")).args(args);
    check(c, "reference/train.py");
}

fn run_dir(out: &Path, method: &str, seed: u64) -> PathBuf {
    homeonorm::results::rundir::run_path(out, "cifar10", method, 0.003, seed)
}

fn network_run_dir(out: &Path, network: Network, method: &str, seed: u64) -> PathBuf {
    let mut settings = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
    settings.model = network;
    homeonorm::results::rundir::run_dir(out, &settings, seed)
}

/// What differs between two run folders' results.
fn differences(ours: &Path, theirs: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in ["curve.csv", "activation_prob.csv", "unit_stats.csv"] {
        let (a, b) = (std::fs::read(ours.join(file)).unwrap(), std::fs::read(theirs.join(file)).unwrap());
        if a != b {
            found.push(file.to_string());
        }
        // A header alone on both sides would compare equal and prove nothing.
        if String::from_utf8_lossy(&a).lines().count() < 2 {
            found.push(format!("{file}: no rows (record more often)"));
        }
    }
    let summary = |dir: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let object = v.as_object_mut().unwrap();
        object.remove("wall_time_s");
        object.remove("files");
        v
    };
    if summary(ours) != summary(theirs) {
        found.push(format!("summary.json: {} against {}", summary(ours), summary(theirs)));
    }
    let (a, b) =
        (common::read_named(&ours.join("model.safetensors")), common::read_named(&theirs.join("model.safetensors")));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x.size() == y.size() && x.kind() == y.kind() && x.equal(y) => {}
            _ => found.push(format!("model.safetensors: {name}")),
        }
    }
    found
}

/// Holds one of homeonorm's run folders to the script's: prints `what` and "identical"
/// or what differs, and adds a difference to `failures`.
fn compare_runs(what: &str, ours: &Path, theirs: &Path, failures: &mut Vec<String>) {
    let differing = differences(ours, theirs);
    let verdict = if differing.is_empty() { "identical".to_string() } else { differing.join("; ") };
    println!("{what:<60} {verdict}");
    if !differing.is_empty() {
        failures.push(format!("{what}: {verdict}"));
    }
}

#[test]
fn homeonorm_and_the_pytorch_script_write_the_same_runs() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    common::formats::write_learnable_cifar_dir(&data.join("cifar-10-batches-bin"), 60, 200);
    let out = |side: &str| root.path().join(side);
    // The script: every method, seeds 3 and 4 on one thread, seed 3 on two (two processes).
    let all = METHODS.iter().map(|m| m.name()).collect::<Vec<_>>().join(",");
    script(&run_flags(&all, "3,4", 1, &data, &out("torch-1")));
    script(&run_flags(&all, "3", 2, &data, &out("torch-2")));
    let mut failures = Vec::new();
    for method in METHODS.iter().map(|m| m.name()) {
        // homeonorm: seeds 3 and 4 as one seed batch on one thread; seed 3 alone on two.
        homeonorm(&run_flags(method, "3,4", 1, &data, &out("homeonorm-1")));
        homeonorm(&run_flags(method, "3", 2, &data, &out("homeonorm-2")));
        let side = |name: &str, seed| run_dir(&out(name), method, seed);
        let compared = [
            ("seed batch, seed 3", side("homeonorm-1", 3), side("torch-1", 3)),
            ("seed batch, seed 4", side("homeonorm-1", 4), side("torch-1", 4)),
            ("2 threads, alone", side("homeonorm-2", 3), side("torch-2", 3)),
        ];
        for (what, ours, theirs) in compared {
            compare_runs(&format!("{method}, {what}"), &ours, &theirs, &mut failures);
        }
    }
    assert!(failures.is_empty(), "homeonorm and the PyTorch script differ:\n{}", failures.join("\n"));

    // compare agrees (the same seeds on both sides), and holds them to a tolerance of zero.
    let mut c = Command::new(env!("CARGO_BIN_EXE_homeonorm"));
    c.args(["compare", "--tolerance", "0", "--out"]).arg(out("compare")).arg(out("torch-1")).arg(out("homeonorm-1"));
    check(c, "homeonorm compare");
    let md = std::fs::read_to_string(out("compare").join("compare.md")).unwrap();
    assert_eq!(md.matches("| identical |").count(), METHODS.len(), "{md}");

    // Weights cross over: homeonorm evaluates the script's trained model as the script did.
    let torch_run = run_dir(&out("torch-1"), "batch-norm", 3);
    let mut c = Command::new(env!("CARGO_BIN_EXE_homeonorm"));
    c.args(["eval", "--device", "cpu", "--test-batch-size", "64", "--threads", "1"]).arg(&torch_run);
    check(c, "homeonorm eval");
    let read =
        |path: PathBuf| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap() };
    let (evaluated, summary) = (read(torch_run.join("eval-batch-tb64.json")), read(torch_run.join("summary.json")));
    assert_eq!(evaluated["accuracy"], summary["final_accuracy"]);
    assert_eq!(evaluated["layers"], summary["layers"]);
    // …and PyTorch loads homeonorm's (load_state_dict, strict) and evaluates it as homeonorm did.
    let ours = run_dir(&out("homeonorm-1"), "weight-norm", 4);
    let printed = Command::new(common::python())
        .arg(common::repo_root().join("reference/evaluate.py"))
        .arg(&ours)
        .args(["--threads", "1"])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let evaluated: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(evaluated["accuracy"], read(ours.join("summary.json"))["final_accuracy"]);
}

// (libtest starts tests in the order of their names: these three start beside the
// LeNet5 test, the longest, not after it.)
#[test]
fn mlp_runs_as_its_pytorch_module_does() {
    network_runs_as_its_pytorch_module_does(Network::Mlp);
}

#[test]
fn plain_cnn_runs_as_its_pytorch_module_does() {
    network_runs_as_its_pytorch_module_does(Network::PlainCnn);
}

#[test]
fn resnet20_runs_as_its_pytorch_module_does() {
    network_runs_as_its_pytorch_module_does(Network::Resnet20);
}

/// The tests above and the LeNet5 ones cover every network: a network added to `Network`
/// stops this match from compiling until it has its own test.
#[test]
fn every_network_has_its_test_against_pytorch() {
    for network in Network::all() {
        match network {
            Network::Lenet5 | Network::Mlp | Network::PlainCnn | Network::Resnet20 => {}
        }
    }
}

/// `network` with every method it takes, two seeds as one seed batch, against the script.
fn network_runs_as_its_pytorch_module_does(network: Network) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // 64 test images, one test batch (a ResNet-20 evaluation of 200 took most of a run).
    common::formats::write_learnable_cifar_dir(&data.join("cifar-10-batches-bin"), 60, 64);
    let out = |side: &str| root.path().join(side);
    let options = ModelOptions { network, ..ModelOptions::default() };
    let methods: Vec<&str> = METHODS.iter().filter(|m| check_method(**m, &options).is_ok()).map(|m| m.name()).collect();
    // Every method but instance-norm on the MLP (no feature maps to normalize).
    assert_eq!(methods.len(), METHODS.len() - usize::from(network == Network::Mlp), "{network}: {methods:?}");
    // 10 steps of 32 cross into the second epoch of the 300 training images.
    let length = if network == Network::Resnet20 { ("6", "8", "3") } else { ("10", "32", "5") };
    let flags = |method: &str, side| network_flags(network.name(), method, "3,4", 1, length, &data, &out(side));
    script(&flags(&methods.join(","), "torch"));
    let mut failures = Vec::new();
    for method in methods {
        // (a seed batch of two: each seed's run alone is the parity test's, S = 1)
        homeonorm(&flags(method, "homeonorm"));
        for seed in [3, 4] {
            let side = |name: &str| network_run_dir(&out(name), network, method, seed);
            let what = format!("{network} {method}, seed {seed} of a seed batch");
            compare_runs(&what, &side("homeonorm"), &side("torch"), &mut failures);
        }
    }
    assert!(failures.is_empty(), "homeonorm and the PyTorch script differ:\n{}", failures.join("\n"));
}

#[test]
fn rule_settings_at_other_values_run_as_the_script_runs() {
    use homeonorm::engine::norm::RuleSetting;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    common::formats::write_learnable_cifar_dir(&data.join("cifar-10-batches-bin"), 60, 200);
    let out = |side: &str| root.path().join(side);
    // Each rule setting at two values other than the preset (an experiment's axes, shared
    // by the methods that read them): a sweep packs each method's four runs into one
    // model; the script trains each alone.
    let axes: [(RuleSetting, [f64; 2]); 3] = [
        (RuleSetting::TargetRate, [0.2, 0.35]),
        (RuleSetting::ThresholdRate, [0.05, 0.01]),
        (RuleSetting::ScalingRate, [0.004, 0.02]),
    ];
    let methods = ["adaptive-threshold", "homeostatic-scaling"];
    let mut experiment = format!("name = \"rules\"\ndatasets = [\"cifar10\"]\nmethods = {methods:?}\nseeds = [3]\n");
    for (rule, values) in &axes {
        experiment += &format!("{}s = [{}, {}]\n", rule.name(), values[0], values[1]);
    }
    let (iterations, batch_size, record_every) = LENET5_LENGTH;
    experiment += &format!(
        "\n[settings]\niterations = {iterations}\nbatch_size = {batch_size}\neval_every = {EVAL_EVERY}\n\
         record_every = {record_every}\ntest_batch_size = 64\n"
    );
    let file = root.path().join("rules.toml");
    std::fs::write(&file, &experiment).unwrap();
    let sweep = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_homeonorm"));
        c.arg("sweep").arg(&file).arg("--out").arg(out("homeonorm")).arg("--data-dir").arg(&data);
        c.args(["--limit", "100000", "--device", "cpu", "--threads", "1", "--workers", "1", "--seeds-per-batch", "10"]);
        c.args(extra);
        c
    };
    let plan = sweep(&["--dry-run"]).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&plan.stdout), String::from_utf8_lossy(&plan.stderr));
    let runs = 4 * methods.len();
    assert!(said.contains(&format!("{runs} run(s) to train as 2 model(s)")), "one model per method:\n{said}");
    check(sweep(&[]), "homeonorm sweep");

    let mut compared = Vec::new();
    for method in methods {
        let settings = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
        let read = settings.method.method().rule_settings();
        let values = |rule: RuleSetting| axes.iter().find(|(r, _)| *r == rule).unwrap().1;
        let (first, second) = (read[0], read[1]);
        // The script: the method's four runs in one process (a list of values per setting).
        let mut flags = run_flags(method, "3", 1, &data, &out("torch"));
        for rule in [first, second] {
            let [a, b] = values(rule);
            flags.extend([format!("--{}", rule.name().replace('_', "-")), format!("{a},{b}")]);
        }
        script(&flags);
        for x in values(first) {
            for y in values(second) {
                let mut settings = settings.clone();
                settings.set_rule(first, x);
                settings.set_rule(second, y);
                let theirs = homeonorm::results::rundir::run_dir(&out("torch"), &settings, 3);
                let ours = homeonorm::results::rundir::run_dir(&out("homeonorm").join("rules"), &settings, 3);
                assert!(theirs.to_string_lossy().contains(&format!("{}{x}", first.name())), "{}", theirs.display());
                compared.push((format!("{method} {}={x} {}={y}", first.name(), second.name()), ours, theirs));
            }
        }
    }
    // One of them trained alone by homeonorm train, with the same flags as the script.
    let mut alone = run_flags("adaptive-threshold", "3", 1, &data, &out("homeonorm-alone"));
    alone.extend(["--target-rate", "0.35", "--threshold-rate", "0.01"].map(String::from));
    homeonorm(&alone);
    let mut settings = TrainSettings::preset(DatasetKind::Cifar10, "adaptive-threshold".parse().unwrap());
    settings.set_rule(RuleSetting::TargetRate, 0.35);
    settings.set_rule(RuleSetting::ThresholdRate, 0.01);
    compared.push((
        "adaptive-threshold target_rate=0.35 threshold_rate=0.01, trained alone".into(),
        homeonorm::results::rundir::run_dir(&out("homeonorm-alone"), &settings, 3),
        homeonorm::results::rundir::run_dir(&out("torch"), &settings, 3),
    ));
    assert_eq!(compared.len(), runs + 1);
    // The values take effect: each rule setting changes its runs (a rule read by neither
    // side would make them identical and equal).
    for (a, b) in [(0, 2), (0, 1), (4, 5)] {
        let file = |k: usize| std::fs::read(compared[k].1.join("activation_prob.csv")).unwrap();
        assert_ne!(file(a), file(b), "{} and {} trained alike", compared[a].0, compared[b].0);
    }
    let mut failures = Vec::new();
    for (what, ours, theirs) in compared {
        compare_runs(&what, &ours, &theirs, &mut failures);
    }
    assert!(failures.is_empty(), "homeonorm and the PyTorch script differ:\n{}", failures.join("\n"));
}
