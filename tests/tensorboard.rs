//! `homeonorm export tensorboard` read back by TensorBoard itself (the PyPI `tensorboard`
//! package's EventAccumulator and its HParams plugin's protos, tests/python/read_tensorboard.py):
//! every scalar, step and histogram as the run folders hold them, the HParams records
//! parse, the export is idempotent, and PyTorch's SummaryWriter writing the same curves
//! reads back the same.

mod common;

use common::{python, repo_root, small_cifar};
use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::metrics::coefficient_of_variation;
use homeonorm::engine::settings::TrainSettings;
use homeonorm::results::rundir::{self, ActivationRow, CurveRow, UnitRow};
use homeonorm::runs::train::train_seed_batch;
use serde_json::Value;
use std::path::Path;

fn short(method: &str, lr: f64) -> TrainSettings {
    let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
    s.iterations = 120;
    s.eval_every = 40;
    s.record_every = 20;
    s.lr = lr;
    s
}

/// TensorBoard's reading of a log folder (`read`), or PyTorch's writing (`torch-curves`).
fn tensorboard_side(args: &[&Path], mode: &str) -> Value {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("tests/python/read_tensorboard.py"))
        .arg(mode)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run through `make test`): {e}", python()));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "read_tensorboard.py {mode}: {said}");
    if mode == "read" {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        Value::Null
    }
}

/// Every file under `dir` with its bytes, by path.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut found = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                found.insert(entry.path().display().to_string(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    found
}

/// A scalar series as TensorBoard read it: (step, value) pairs (none: no such tag).
fn series(run: &Value, tag: &str) -> Vec<(u64, f64)> {
    run["scalars"][tag]
        .as_array()
        .map_or(&[][..], |a| &a[..])
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn tensorboard_reads_back_every_scalar_histogram_and_hparams_record_as_the_run_folders_hold_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_cifar(tmp.path());
    let results = tmp.path().join("results");
    // Two methods (one with α) of two seeds, a diverged run, and a partial run (curve only,
    // as a user's own script or `homeonorm import` leaves it).
    train_seed_batch(&short("vanilla", 0.003), &[0, 1], &data, &results, &Default::default()).unwrap();
    train_seed_batch(&short("synaptic-scaling", 0.003), &[0, 1], &data, &results, &Default::default()).unwrap();
    train_seed_batch(&short("vanilla", 1e30), &[0], &data, &results, &Default::default()).unwrap();
    let partial = rundir::run_path(&results, "cifar10", "batch-norm", 0.003, 0);
    let full = rundir::run_path(&results, "cifar10", "vanilla", 0.003, 0);
    std::fs::create_dir_all(&partial).unwrap();
    let mut config: Value = serde_json::from_slice(&std::fs::read(full.join("config.json")).unwrap()).unwrap();
    config["method"] = "batch-norm".into();
    std::fs::write(partial.join("config.json"), config.to_string()).unwrap();
    std::fs::write(partial.join("curve.csv"), "iteration,train_loss,test_accuracy\n60,,0.25\n120,,0.375\n").unwrap();
    std::fs::write(
        partial.join("summary.json"),
        r#"{"outcome":"complete","diverged_at":null,"iterations":120,"final_accuracy":0.375,"best_accuracy":0.375,"best_iteration":120,"final_train_loss":null}"#,
    )
    .unwrap();

    let logs = tmp.path().join("logs");
    let said =
        common::homeonorm_ok(&["export", "tensorboard", results.to_str().unwrap(), "--out", logs.to_str().unwrap()]);
    assert!(said.contains("6 run(s)"), "{said}");
    let read = tensorboard_side(&[&logs], "read");
    let runs = read.as_object().unwrap();
    assert_eq!(runs.len(), 7, "six runs and the experiment at the root: {:?}", runs.keys());

    for (name, run) in runs.iter().filter(|(name, _)| name.as_str() != ".") {
        let dir = results.join(name);
        let summary = rundir::read_summary(&dir).unwrap();
        // The curve: every evaluation's accuracy and loss at its iteration (f32, as TensorBoard keeps scalars).
        let curve: Vec<CurveRow> = rundir::read_csv(&dir).unwrap();
        let expected: Vec<(u64, f64)> =
            curve.iter().map(|c| (c.iteration as u64, c.test_accuracy as f32 as f64)).collect();
        assert_eq!(series(run, "test_accuracy"), expected, "{name}");
        let losses: Vec<(u64, f64)> =
            curve.iter().filter_map(|c| c.train_loss.map(|l| (c.iteration as u64, l as f32 as f64))).collect();
        assert_eq!(series(run, "train_loss"), losses, "{name}: (none where no loss was recorded)");
        // Each layer's activation probability across units, at each recorded iteration.
        if let Some(rows) = rundir::read_optional_csv::<ActivationRow>(&dir).unwrap() {
            for layer in ["fc1", "fc2"] {
                let mut steps: Vec<usize> = rows.iter().map(|r| r.iteration).collect();
                steps.dedup();
                let of = |it: usize| -> Vec<f64> {
                    rows.iter().filter(|r| r.iteration == it && r.layer == layer).map(|r| r.activation_prob).collect()
                };
                let means: Vec<(u64, f64)> = steps
                    .iter()
                    .map(|&it| (it as u64, (of(it).iter().sum::<f64>() / of(it).len() as f64) as f32 as f64))
                    .collect();
                assert_eq!(series(run, &format!("activation_prob_mean/{layer}")), means, "{name} {layer}");
                let cvs: Vec<(u64, f64)> = steps
                    .iter()
                    .map(|&it| (it as u64, coefficient_of_variation(&of(it))))
                    .filter(|(_, cv)| cv.is_finite())
                    .map(|(it, cv)| (it, cv as f32 as f64))
                    .collect();
                assert_eq!(series(run, &format!("activation_prob_cv/{layer}")), cvs, "{name} {layer}");
            }
        } else {
            assert!(run["scalars"].get("activation_prob_mean/fc1").is_none(), "{name}: a partial run has none");
        }
        // The unit measures at the end, one histogram each, exactly.
        let units = rundir::read_optional_csv::<UnitRow>(&dir).unwrap().unwrap_or_default();
        for layer in ["fc1", "fc2"] {
            let of_layer: Vec<&UnitRow> = units.iter().filter(|u| u.layer == layer).collect();
            for (measure, values) in [
                ("activation_prob", of_layer.iter().map(|u| u.activation_prob).collect::<Vec<f64>>()),
                ("alpha", of_layer.iter().filter_map(|u| u.alpha).collect()),
            ] {
                let tag = format!("units/{measure}/{layer}");
                if values.is_empty() {
                    assert!(run["histograms"].get(&tag).is_none(), "{name}: {tag} of no values");
                    continue;
                }
                let h = &run["histograms"][&tag][0];
                assert_eq!(h["step"].as_u64(), Some(summary.iterations as u64), "{name} {tag}");
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!((h["min"].as_f64(), h["max"].as_f64()), (Some(min), Some(max)), "{name} {tag}");
                assert_eq!(h["num"].as_f64(), Some(values.len() as f64));
                assert_eq!(h["sum"].as_f64(), Some(values.iter().sum::<f64>()));
                assert_eq!(h["sum_squares"].as_f64(), Some(values.iter().map(|v| v * v).sum::<f64>()));
                let counts: f64 = h["bucket"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum();
                assert_eq!(counts, values.len() as f64, "{name} {tag}: every unit in one bucket");
            }
        }
        if name.contains("synaptic-scaling") && !units.is_empty() {
            let alpha = summary.layers[0].get("alpha_mean").unwrap();
            assert_eq!(series(run, "alpha_mean/fc1"), [(summary.iterations as u64, alpha as f32 as f64)]);
        }
        // Its HParams session: its settings, and how it ended.
        let config = rundir::read_config(&dir).unwrap();
        let start = &run["hparams"]["_hparams_/session_start_info"]["session_start_info"]["hparams"];
        assert_eq!(start["method"], config.settings.method.name(), "{name}");
        assert_eq!(start["lr"].as_f64(), Some(config.settings.lr), "{name}");
        assert_eq!(start["seed"].as_f64(), Some(config.seed as f64), "{name}");
        let end = &run["hparams"]["_hparams_/session_end_info"]["session_end_info"]["status"];
        let ended = if summary.final_accuracy.is_some() { "STATUS_SUCCESS" } else { "STATUS_FAILURE" };
        assert_eq!(end, ended, "{name}: complete is success, diverged failure");
        if let Some(accuracy) = summary.final_accuracy {
            let last = (summary.iterations as u64, accuracy as f32 as f64);
            assert_eq!(series(run, "final/test_accuracy"), [last], "{name}: the HParams tab's metric");
        }
    }
    // The experiment: every setting with the values the runs take, and the metrics.
    let experiment = &runs["."]["hparams"]["_hparams_/experiment"]["experiment"];
    let infos = experiment["hparam_infos"].as_array().unwrap();
    let names: Vec<&str> = infos.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names[..5], ["dataset", "model", "method", "lr", "seed"], "{names:?}");
    let domain = |name: &str| infos.iter().find(|i| i["name"] == name).unwrap()["domain_discrete"].clone();
    assert_eq!(domain("method"), serde_json::json!(["batch-norm", "synaptic-scaling", "vanilla"]));
    assert_eq!(domain("lr"), serde_json::json!([0.003, 1e30]));
    assert_eq!(infos.iter().find(|i| i["name"] == "lr").unwrap()["type"], "DATA_TYPE_FLOAT64");
    let metrics: Vec<&str> =
        experiment["metric_infos"].as_array().unwrap().iter().map(|m| m["name"]["tag"].as_str().unwrap()).collect();
    assert!(metrics.contains(&"final/test_accuracy") && metrics.contains(&"final/alpha_mean/fc1"), "{metrics:?}");

    // Idempotent: exported again, every file is the same.
    let before = files(&logs);
    common::homeonorm_ok(&["export", "tensorboard", results.to_str().unwrap(), "--out", logs.to_str().unwrap()]);
    assert_eq!(files(&logs), before, "a second export writes the same bytes");

    // PyTorch's SummaryWriter, given the same curves, reads back the same.
    let torch_logs = tmp.path().join("torch");
    tensorboard_side(&[&results, &torch_logs], "torch-curves");
    let theirs = tensorboard_side(&[&torch_logs], "read");
    for (name, run) in theirs.as_object().unwrap() {
        for tag in ["test_accuracy", "train_loss"] {
            if run["scalars"].get(tag).is_some() {
                assert_eq!(series(run, tag), series(&runs[name], tag), "{name} {tag}: SummaryWriter's and ours");
            }
        }
    }
    assert_eq!(theirs.as_object().unwrap().len(), 6);
}

#[test]
fn a_folder_without_finished_runs_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::homeonorm(&["export", "tensorboard", tmp.path().to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("no finished run to export"), "{said}");
}
