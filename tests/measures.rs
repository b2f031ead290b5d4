//! The measure registry is complete: every registered layer measure is computed into
//! `summary.json` and read back, described in `docs/run-folder.md` as registered,
//! computed alike by the Python writer, in the report's `summary.csv` where it has a
//! column (the mean over seeds), and in `compare`'s rows where it is compared.

mod common;

use homeonorm::engine::measures::{LayerSummary, LAYER_MEASURES};
use homeonorm::engine::metrics::{unit_stats, UnitStats};
use std::path::Path;

/// Four fc1 units: one never active, with α: every measure defined but a lacking count.
fn units(scale: f64) -> Vec<UnitStats> {
    let alpha = [0.5, 0.7, 0.9, 1.1];
    unit_stats("fc1", &[0.0, 10.0, 5.0, 2.0], &[0.0, 30.0 * scale, 5.0, 1.0], 10.0, Some(&alpha))
}

#[test]
fn every_measure_is_registered_once_and_described_as_registered() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/run-folder.md")).unwrap();
    for (i, m) in LAYER_MEASURES.iter().enumerate() {
        assert!(!m.meaning.is_empty(), "{}: what it means", m.key);
        assert!(LAYER_MEASURES[..i].iter().all(|o| o.key != m.key), "{}: registered twice", m.key);
        if let Some(column) = m.report_column {
            assert!(LAYER_MEASURES[..i].iter().all(|o| o.report_column != Some(column)), "{column}: two measures");
        }
        let row = format!("| `{}` | {} |", m.key, m.meaning);
        assert!(doc.contains(&row), "docs/run-folder.md's layer table lacks the row {row}");
    }
}

#[test]
fn every_measure_is_computed_written_and_read_back() {
    let summary = LayerSummary::of("fc1", &units(1.0));
    let json = serde_json::to_value(&summary).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    let expected: Vec<&str> = ["layer", "units"].into_iter().chain(LAYER_MEASURES.iter().map(|m| m.key)).collect();
    assert_eq!(keys, expected, "summary.json's layer object: its keys in the registry's order");
    for m in LAYER_MEASURES {
        assert!(summary.get(m.key).is_some_and(f64::is_finite), "{}: no value for a layer that has one", m.key);
    }
    assert_eq!(serde_json::from_value::<LayerSummary>(json).unwrap(), summary);
}

#[test]
fn the_python_writer_computes_every_measure_alike() {
    let units = units(1.0);
    let rows: Vec<serde_json::Value> = units
        .iter()
        .map(|u| {
            serde_json::json!({"layer": u.layer, "unit": u.unit, "activation_prob": u.activation_prob,
                "entropy": u.entropy, "mean_active_value": u.mean_active_value, "alpha": u.alpha})
        })
        .collect();
    let script = "import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom homeonorm_writer import measures\n\
                  print(json.dumps(measures.layer_summary('fc1', json.loads(sys.argv[2]))))";
    let python_dir = common::repo_root().join("python");
    let out = std::process::Command::new(common::python())
        .args(["-c", script])
        .arg(&python_dir)
        .arg(serde_json::Value::Array(rows).to_string())
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ours = serde_json::to_value(LayerSummary::of("fc1", &units)).unwrap();
    let ours = ours.as_object().unwrap();
    assert_eq!(theirs.keys().collect::<Vec<_>>(), ours.keys().collect::<Vec<_>>(), "the same keys, in order");
    for (key, value) in ours {
        let (a, b) = (value.as_f64(), theirs[key].as_f64());
        match (a, b) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{key}: {a} against {b}"),
            _ => assert_eq!(value, &theirs[key], "{key}"),
        }
    }
}

/// A complete run folder of vanilla, seed `seed`, whose fc1 summary is of `units`.
fn write_run(root: &Path, seed: u64, units: &[UnitStats]) {
    let dir = homeonorm::results::rundir::run_path(root, "cifar10", "vanilla", 0.003, seed);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "dataset": "cifar10", "method": "vanilla", "lr": 0.003, "batch_size": 32, "iterations": 45000,
        "eval_every": 1000, "record_every": 100, "conv_measures": false, "eval_stats": "batch",
        "test_batch_size": 1000, "normalize_conv": true, "seed": seed,
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "data_limit": {"train": null, "test": null},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("curve.csv"), "iteration,train_loss,test_accuracy\n100,1.0,0.5\n").unwrap();
    let summary = serde_json::json!({
        "outcome": "complete", "diverged_at": null, "iterations": 45000, "final_accuracy": 0.5,
        "best_accuracy": 0.5, "best_iteration": 100, "final_train_loss": 1.0,
        "layers": [LayerSummary::of("fc1", units)],
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

#[test]
fn the_report_lists_every_column_measure_and_compare_tests_every_compared_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runs");
    let (a, b) = (units(1.0), units(2.0));
    write_run(&root, 0, &a);
    write_run(&root, 1, &b);
    let results = homeonorm::results::report::write(&root).unwrap();
    let report = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert_eq!(results.iter().map(|r| r.complete.len()).sum::<usize>(), 2, "{report}");
    let mut reader = csv::Reader::from_path(root.join("report/summary.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let row: Vec<String> = reader.records().next().unwrap().unwrap().iter().map(String::from).collect();
    let (sa, sb) = (LayerSummary::of("fc1", &a), LayerSummary::of("fc1", &b));
    for m in LAYER_MEASURES {
        let Some(column) = m.report_column else { continue };
        let name = format!("fc1_{column}");
        let at = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("summary.csv has no {name}"));
        let mean = (sa.get(m.key).unwrap() + sb.get(m.key).unwrap()) / 2.0;
        let value: f64 = row[at].parse().unwrap();
        assert!((value - mean).abs() <= 1e-12 * mean.abs().max(1.0), "{name}: {value}, the seeds' mean is {mean}");
    }
    let comparison = homeonorm::results::compare::compare(&root, &root).unwrap();
    for m in LAYER_MEASURES {
        let name = format!("fc1_{}", m.key);
        let rows = comparison.measures.iter().filter(|r| r.measure == name).count();
        assert_eq!(rows, usize::from(m.compared), "{name}: compared {}", m.compared);
    }
}
