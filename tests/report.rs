//! The report on hand-made run folders: hand-computed means and sample standard
//! deviations (n − 1) over seeds; diverged and unfinished runs counted, named, and
//! never averaged in; settings never pooled.

mod common;

use std::path::Path;

fn layer(name: &str, prob_mean: f64, value_mean: f64, alpha: Option<f64>) -> serde_json::Value {
    serde_json::json!({
        "layer": name, "units": 2,
        "activation_prob_mean": prob_mean, "activation_prob_std": 0.1, "activation_prob_cv": 0.1 / prob_mean,
        "entropy_mean": 0.9, "mean_active_value_mean": value_mean, "mean_active_value_std": 0.5,
        "mean_active_value_cv": 0.5 / value_mean, "never_active_units": 0,
        "alpha_mean": alpha, "alpha_std": alpha.map(|_| 0.01),
    })
}

fn write_run(
    root: &Path,
    method: &str,
    lr: f64,
    seed: u64,
    outcome: Option<(&str, f64, f64)>,
    fc1_probs: [f64; 2],
    curve: &[(usize, f64)],
) {
    let dir = homeonorm::results::rundir::run_path(root, "cifar10", method, lr, seed);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "dataset": "cifar10", "method": method, "lr": lr, "batch_size": 32, "iterations": 45000,
        "eval_every": 1000, "record_every": 100, "conv_measures": false, "eval_stats": "batch", "test_batch_size": 32, "normalize_conv": true, "seed": seed,
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "data_limit": {"train": null, "test": null},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let Some((kind, accuracy, prob)) = outcome else {
        return;
    }; // unfinished: config only
    let mut curve_csv = String::from("iteration,train_loss,test_accuracy\n");
    for (it, acc) in curve {
        curve_csv += &format!("{it},1.0,{acc}\n");
    }
    std::fs::write(dir.join("curve.csv"), curve_csv).unwrap();
    std::fs::write(dir.join("activation_prob.csv"), "iteration,layer,unit,activation_prob\n100,fc1,0,0.5\n").unwrap();
    let units = format!(
        "layer,unit,activation_prob,entropy,mean_active_value,alpha\nfc1,0,{},0.5,1.0,\nfc1,1,{},0.5,2.0,\nfc2,0,0.2,0.5,1.0,\nfc2,1,0.2,0.5,1.0,\n",
        fc1_probs[0], fc1_probs[1]
    );
    std::fs::write(dir.join("unit_stats.csv"), units).unwrap();
    let diverged = kind == "diverged";
    let summary = serde_json::json!({
        "outcome": kind, "diverged_at": if diverged { Some(12) } else { None },
        "iterations": if diverged { 12 } else { 45000 }, "final_accuracy": if diverged { None } else { Some(accuracy) },
        "test_accuracy_batch1": if diverged { None } else { Some(accuracy / 2.0) },
        "best_accuracy": if diverged { None } else { Some(accuracy + 0.01) }, "best_iteration": 100,
        "final_train_loss": 1.0, "wall_time_s": 1.0,
        "layers": if diverged { vec![] } else { vec![layer("fc1", prob, 2.0 * prob, None), layer("fc2", 0.5, 1.0, None)] },
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

/// The rows of one of the report's CSV files (`summary.csv`, `curves.csv`), by column name.
fn report_rows(root: &Path, file: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(root.join("report").join(file)).unwrap();
    reader.deserialize().map(|r| r.unwrap()).collect()
}

fn summary_rows(root: &Path) -> Vec<std::collections::HashMap<String, String>> {
    report_rows(root, "summary.csv")
}

fn num(row: &std::collections::HashMap<String, String>, key: &str) -> f64 {
    row[key].parse().unwrap_or_else(|_| panic!("{key} = {:?}", row[key]))
}

#[test]
fn report_means_and_sample_stds_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let curve = |a: f64| vec![(100usize, a - 0.1), (200, a)];
    write_run(root, "vanilla", 0.003, 0, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &curve(0.5));
    write_run(root, "vanilla", 0.003, 1, Some(("complete", 0.6, 0.3)), [0.1, 0.3], &curve(0.6));
    write_run(root, "vanilla", 0.003, 2, Some(("complete", 0.7, 0.4)), [0.1, 0.3], &curve(0.7));
    write_run(root, "vanilla", 0.003, 3, Some(("diverged", 0.0, 0.0)), [0.1, 0.3], &[]);
    write_run(root, "vanilla", 0.003, 4, None, [0.0, 0.0], &[]);
    write_run(root, "vanilla", 0.01, 0, Some(("complete", 0.2, 0.9)), [0.1, 0.3], &curve(0.2));

    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!(results.len(), 2, "two learning rates are two settings, never pooled");

    let rows = summary_rows(root);
    let main = rows.iter().find(|r| r["lr"] == "0.003").unwrap();
    assert_eq!((main["runs"].as_str(), main["diverged"].as_str(), main["unfinished"].as_str()), ("3", "1", "1"));
    // accuracies 0.5, 0.6, 0.7: mean 0.6, sample std 0.1 (population std would be 0.0816)
    assert!((num(main, "final_accuracy_mean") - 0.6).abs() < 1e-12);
    assert!((num(main, "final_accuracy_std") - 0.1).abs() < 1e-12);
    assert!((num(main, "best_accuracy_mean") - 0.61).abs() < 1e-12);
    // with a test batch of one: 0.25, 0.3, 0.35
    assert!((num(main, "test_accuracy_batch1_mean") - 0.3).abs() < 1e-12);
    assert!((num(main, "test_accuracy_batch1_std") - 0.05).abs() < 1e-12);
    // fc1 probability means 0.2, 0.3, 0.4 → 0.3; active values 0.4, 0.6, 0.8 → 0.6
    assert!((num(main, "fc1_prob_mean") - 0.3).abs() < 1e-12);
    assert!((num(main, "fc1_active_value_mean") - 0.6).abs() < 1e-12);
    // pooled fc units 0.1, 0.3, 0.2, 0.2: mean 0.2, population std √0.005 → CV 0.353553…
    assert!((num(main, "fc_prob_cv") - 0.005f64.sqrt() / 0.2).abs() < 1e-12);
    // fc units' mean active values 1, 2 (fc1) and 1, 1 (fc2): mean 1.25, population variance 0.1875.
    assert!((num(main, "fc_value_cv") - 0.1875f64.sqrt() / 1.25).abs() < 1e-12);
    let other = rows.iter().find(|r| r["lr"] == "0.01").unwrap();
    assert_eq!(other["runs"], "1");
    assert_eq!(other["final_accuracy_std"], "", "one run has no sample std");

    let points = report_rows(root, "curves.csv");
    let last = points.iter().find(|p| p["lr"] == "0.003" && p["iteration"] == "200").unwrap();
    assert_eq!(last["runs"], "3");
    assert!((num(last, "accuracy_mean") - 0.6).abs() < 1e-12 && (num(last, "accuracy_std") - 0.1).abs() < 1e-12);

    // The mean's 95 % interval: 0.6 ± t(0.975, 2) · 0.1 / √3, t = 4.302652729911275.
    let half = 4.302652729911275 * 0.1 / 3f64.sqrt();
    // (statrs' inverse t is exact to about 1e-11 here)
    assert!((num(main, "final_accuracy_ci95_low") - (0.6 - half)).abs() < 1e-9);
    assert!((num(main, "final_accuracy_ci95_high") - (0.6 + half)).abs() < 1e-9);
    assert_eq!(other["final_accuracy_ci95_low"], "", "one run has no interval");

    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| cifar10 | vanilla |") && l.contains("| 0.003 |")).unwrap();
    assert!(
        row.contains("| 3 | 1 | 1 | 60.00 ± 10.00 | 35.16 to 84.84 |"),
        "n, diverged, unfinished, mean ± std, CI: {row}"
    );
    // Against the paper's 59.3 ± 1.4 of 10 seeds: 0.7 points, 0.50 of its std; Welch's
    // t = 0.12089 at df = 2.0236, p = 0.9147 (Student's t density integrated numerically).
    assert!(
        md.contains(
            "| test accuracy (%) | vanilla | 0.003 | 59.3 ± 1.4 | 60.0 ± 10.0 | 0.7 | 0.50 | 0.915 | 3 | 45000 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| fc1 activation probability | vanilla | 0.003 | 0.10 ± 0.15 | 0.30 ± 0.10 | 0.20 | – | – | 3 |"),
        "{md}"
    );
    assert!(md.contains("diverged: cifar10 vanilla lr 0.003 seed 3"), "{md}");
    assert!(md.contains("unfinished: cifar10 vanilla lr 0.003 seed 4"), "{md}");

    // runs.csv: every run folder, the unfinished and diverged ones too, with its setting row.
    let mut reader = csv::Reader::from_path(root.join("report/runs.csv")).unwrap();
    let runs: Vec<std::collections::HashMap<String, String>> = reader.deserialize().map(|r| r.unwrap()).collect();
    assert_eq!(runs.len(), 6);
    let run = |lr: &str, seed: &str| runs.iter().find(|r| r["lr"] == lr && r["seed"] == seed).unwrap();
    let setting = |lr: &str| rows.iter().position(|r| r["lr"] == lr).unwrap().to_string();
    assert_eq!(
        (run("0.003", "1")["outcome"].as_str(), run("0.003", "1")["final_accuracy"].as_str()),
        ("complete", "0.6")
    );
    assert_eq!(run("0.003", "1")["setting"], setting("0.003"));
    assert_eq!(run("0.01", "0")["setting"], setting("0.01"));
    assert_eq!((run("0.003", "3")["outcome"].as_str(), run("0.003", "3")["final_accuracy"].as_str()), ("diverged", ""));
    // (the protocol's length, and how far the diverged run went)
    assert_eq!(
        (run("0.003", "3")["iterations"].as_str(), run("0.003", "3")["iterations_trained"].as_str()),
        ("45000", "12")
    );
    assert_eq!(run("0.003", "4")["outcome"], "unfinished");
    assert!(run("0.003", "4")["why_unfinished"].contains("summary.json"), "{:?}", run("0.003", "4"));
    assert_eq!(run("0.003", "2")["fc1_prob_mean"], "0.4");
    assert_eq!(run("0.003", "2")["run"], "cifar10/vanilla/lr0.003/seed2");
    // (written by hand, without provenance.json: who made the 5 finished runs is not recorded)
    assert_eq!(run("0.003", "2")["commit"], "");
    assert!(
        md.contains("| not recorded | not recorded | not recorded | not recorded | not recorded | not recorded | 5 |"),
        "{md}"
    );

    // --latex: the same tables in booktabs.
    let tex = std::fs::read_to_string(homeonorm::results::report::write_latex(root, &results).unwrap()).unwrap();
    assert_eq!(tex.matches("\\begin{tabular}").count(), 3, "accuracy, measures, against the paper: {tex}");
    assert!(tex.contains("3 & 1 & 1 & 60.00 $\\pm$ 10.00 & 35.16 to 84.84 &"), "{tex}");
    assert!(tex.contains("59.3 $\\pm$ 1.4 & 60.0 $\\pm$ 10.0 & 0.7 & 0.50 & 0.915 & 3 & 45000 \\\\"), "{tex}");
}

#[test]
fn methods_with_settings_of_their_own_share_one_summary_header() {
    // group-norm's `groups` is a column vanilla's setting does not have.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_run(root, "vanilla", 0.003, 0, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
    write_run(root, "group-norm", 0.003, 0, Some(("complete", 0.6, 0.3)), [0.1, 0.3], &[(100, 0.6)]);
    homeonorm::results::report::write(root).unwrap();
    let rows = summary_rows(root);
    let of = |method: &str| rows.iter().find(|r| r["method"] == method).unwrap();
    assert_eq!((of("vanilla")["groups"].as_str(), of("group-norm")["groups"].as_str()), ("", "2"));
    assert_eq!((num(of("vanilla"), "final_accuracy_mean"), num(of("group-norm"), "final_accuracy_mean")), (0.5, 0.6));
}

#[test]
fn a_folder_without_runs_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = homeonorm::results::report::write(tmp.path()).err().unwrap().to_string();
    assert!(err.contains("no run folders"), "{err}");
}

/// Rewrites one key of a hand-made run's JSON file.
fn edit_json(dir: &Path, file: &str, key: &str, value: serde_json::Value) {
    let path = dir.join(file);
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json[key] = value;
    std::fs::write(&path, json.to_string()).unwrap();
}

fn run_dir(root: &Path, seed: u64) -> std::path::PathBuf {
    homeonorm::results::rundir::run_path(root, "cifar10", "vanilla", 0.003, seed)
}

#[test]
fn runs_that_differ_in_pixel_standardization_or_data_limit_are_kept_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for seed in 0..3 {
        write_run(root, "vanilla", 0.003, seed, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
    }
    edit_json(
        &run_dir(root, 1),
        "config.json",
        "normalization",
        serde_json::json!({"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}),
    );
    edit_json(&run_dir(root, 2), "config.json", "data_limit", serde_json::json!({"train": 1000, "test": 1000}));
    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!(results.len(), 3, "pixel standardization and the data subset are settings, never pooled");
    let rows = summary_rows(root);
    assert!(rows.iter().any(|r| r["normalization_mean"] == "0.49 0.48 0.45" && r["runs"] == "1"));
    assert!(rows.iter().any(|r| r["data_limit_train"] == "1000" && r["data_limit_test"] == "1000"));
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(md.contains("| limit 1000/1000 |"), "{md}");
}

#[test]
fn damaged_runs_and_folders_without_a_configuration_are_left_out_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for seed in 0..3 {
        write_run(root, "vanilla", 0.003, seed, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
    }
    // seed 1: unit_stats.csv cut off mid-row; seed 2: config.json gone.
    std::fs::write(
        run_dir(root, 1).join("unit_stats.csv"),
        "layer,unit,activation_prob,entropy,mean_active_value,alpha\nfc1,0,0.",
    )
    .unwrap();
    std::fs::remove_file(run_dir(root, 2).join("config.json")).unwrap();
    assert!(matches!(
        homeonorm::results::rundir::state(&run_dir(root, 1)),
        homeonorm::results::rundir::RunState::Unfinished(_)
    ));

    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!((results[0].complete.len(), results[0].unfinished.len()), (1, 1));
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(md.contains("unfinished: cifar10 vanilla lr 0.003 seed 1") && md.contains("unit_stats.csv"), "{md}");
    assert!(md.contains(&format!("unreadable: {}", run_dir(root, 2).display())), "{md}");
    assert!(!md.contains("every run folder found is complete"), "{md}");
    // The figures skip what the report skips instead of failing on it.
    homeonorm::results::plot::plot(root, homeonorm::results::plot::Format::Png, false).unwrap();
}

#[test]
fn a_run_whose_layer_went_dead_is_complete_reported_and_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_run(root, "vanilla", 0.003, 0, Some(("complete", 0.1, 0.0)), [0.0, 0.0], &[(100, 0.1)]);
    // What training writes for an fc1 whose units are never active.
    std::fs::write(
        run_dir(root, 0).join("unit_stats.csv"),
        "layer,unit,activation_prob,entropy,mean_active_value,alpha\nfc1,0,0,0,,\nfc1,1,0,0,,\nfc2,0,0.2,0.5,1.0,\nfc2,1,0.2,0.5,1.0,\n",
    )
    .unwrap();
    let units: Vec<homeonorm::engine::metrics::UnitStats> = (0..2)
        .map(|unit| homeonorm::engine::metrics::UnitStats {
            layer: "fc1".into(),
            unit,
            activation_prob: 0.0,
            entropy: 0.0,
            mean_active_value: None,
            alpha: None,
        })
        .collect();
    let dead = homeonorm::engine::measures::LayerSummary::of("fc1", &units);
    edit_json(&run_dir(root, 0), "summary.json", "layers", serde_json::json!([dead, layer("fc2", 0.5, 1.0, None)]));
    assert!(std::fs::read_to_string(run_dir(root, 0).join("summary.json")).unwrap().contains("null"));

    assert_eq!(
        homeonorm::results::rundir::state(&run_dir(root, 0)),
        homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Complete)
    );
    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!(results[0].complete.len(), 1);
    let row = &summary_rows(root)[0];
    assert_eq!((row["runs"].as_str(), row["fc1_prob_mean"].as_str()), ("1", "0"));
    assert_eq!((row["fc1_prob_cv"].as_str(), row["fc1_active_value_mean"].as_str()), ("", ""), "undefined");
    let files = homeonorm::results::plot::plot(root, homeonorm::results::plot::Format::Png, false).unwrap();
    assert!(!files.is_empty());
}

#[test]
fn symlinked_folders_are_not_followed_so_runs_count_once_and_loops_end() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("results");
    let curve = vec![(100usize, 0.5)];
    for seed in 0..2 {
        write_run(&root, "vanilla", 0.003, seed, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &curve);
    }
    std::os::unix::fs::symlink(".", root.join("self")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("cifar10").join("back-to-the-top")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), root.join("parent")).unwrap();
    let found = homeonorm::results::report::collect(&root).unwrap();
    assert_eq!(found.runs.len(), 2, "{:?}", found.runs.iter().map(|r| &r.dir).collect::<Vec<_>>());
    let results = homeonorm::results::report::write(&root).unwrap();
    assert_eq!(results[0].complete, vec![0, 1]);
}

#[test]
fn a_summary_with_values_no_run_writes_makes_the_run_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for (seed, (key, value)) in [
        ("final_accuracy", serde_json::json!(-5.0)),
        ("final_accuracy", serde_json::json!(1e308)),
        ("final_accuracy", serde_json::Value::Null),
        ("best_accuracy", serde_json::json!(1.5)),
    ]
    .into_iter()
    .enumerate()
    {
        write_run(root, "vanilla", 0.003, seed as u64, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
        edit_json(&run_dir(root, seed as u64), "summary.json", key, value.clone());
        let state = homeonorm::results::rundir::state(&run_dir(root, seed as u64));
        assert!(
            matches!(&state, homeonorm::results::rundir::RunState::Unfinished(why) if why.contains(key)),
            "{key} {value}: {state:?}"
        );
    }
    write_run(root, "vanilla", 0.003, 9, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!((results[0].complete.clone(), results[0].unfinished.len()), (vec![9], 4));
    assert_eq!(results[0].final_accuracy.mean, Some(0.5), "only the sound run is averaged");
}

/// A report of two networks names each row's probe layer (LeNet5's fc1, ResNet-20's last
/// block), takes the single-layer columns from it, and pools ResNet-20's "fc units" CV
/// over its probe (it has no hidden fc layer).
#[test]
fn a_report_of_two_networks_shows_each_ones_probe_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_run(root, "batch-norm", 0.003, 0, Some(("complete", 0.6, 0.4)), [0.1, 0.3], &[(100, 0.6)]);
    let resnet = homeonorm::results::rundir::run_path(&root.join("resnet20"), "cifar10", "batch-norm", 0.003, 0);
    std::fs::create_dir_all(resnet.parent().unwrap()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    write_run(scratch.path(), "batch-norm", 0.003, 0, Some(("complete", 0.8, 0.3)), [0.1, 0.3], &[(100, 0.8)]);
    std::fs::rename(homeonorm::results::rundir::run_path(scratch.path(), "cifar10", "batch-norm", 0.003, 0), &resnet)
        .unwrap();
    edit_json(&resnet, "config.json", "model", "resnet20".into());
    let probe = "layer3.2.conv2";
    edit_json(&resnet, "summary.json", "layers", serde_json::json!([layer(probe, 0.45, 1.0, None)]));
    let units = format!(
        "layer,unit,activation_prob,entropy,mean_active_value,alpha\n{probe},0,0.3,0.5,1.0,\n{probe},1,0.6,0.5,3.0,\n"
    );
    std::fs::write(resnet.join("unit_stats.csv"), units).unwrap();

    homeonorm::results::report::write(root).unwrap();
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    let header = md.lines().find(|l| l.starts_with("| dataset")).unwrap();
    assert!(header.contains("| model |") && header.contains("| probe layer |"), "{header}");
    assert!(header.contains("| probe activation prob |") && !header.contains("fc1 activation prob"), "{header}");
    let row = |model: &str| md.lines().find(|l| l.contains(&format!("| {model} |"))).unwrap().to_string();
    assert!(row("lenet5").contains("| fc1 | ") && row("lenet5").contains("| 0.400 ± 0.100 |"), "{}", row("lenet5"));
    assert!(row("resnet20").contains(&format!("| {probe} | ")), "{}", row("resnet20"));
    assert!(row("resnet20").contains("| 0.450 ± 0.100 |"), "{}", row("resnet20"));
    // The paper trained LeNet5 only: ResNet-20's 80 % is not set beside its batch-norm number.
    let against = md.split("## Against the paper").nth(1).unwrap();
    let accuracy_rows: Vec<&str> =
        against.lines().filter(|l| l.starts_with("| test accuracy (%) | batch-norm")).collect();
    assert_eq!(accuracy_rows.len(), 1, "{against}");
    assert!(accuracy_rows[0].contains("| 60.0 |"), "{}", accuracy_rows[0]);
    // ResNet-20's pooled CV is over its probe's units: 0.3 and 0.6, mean 0.45, population std 0.15.
    let rows = summary_rows(root);
    let resnet_row = rows.iter().find(|r| r["model"] == "resnet20").unwrap();
    assert!((num(resnet_row, "fc_prob_cv") - 0.15 / 0.45).abs() < 1e-12);
    // Each curve point names its network: the two settings differ in nothing else.
    let points = report_rows(root, "curves.csv");
    let accuracy_of = |model: &str| points.iter().find(|p| p["model"] == model).map(|p| num(p, "accuracy_mean"));
    assert_eq!((accuracy_of("lenet5"), accuracy_of("resnet20"), points.len()), (Some(0.6), Some(0.8), 2));
}

#[test]
fn runs_under_a_folder_named_report_are_found_and_only_the_roots_own_report_is_not_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let curve = [(100usize, 0.4), (200, 0.5)];
    write_run(&root.join("runs/report"), "vanilla", 0.003, 0, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &curve);
    write_run(&root.join("report"), "vanilla", 0.003, 1, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &curve);
    let results = homeonorm::results::report::write(root).unwrap();
    assert_eq!(results.iter().map(|r| r.complete.clone()).collect::<Vec<_>>(), vec![vec![0]], "seed 0 only");
}

#[test]
fn a_curve_whose_rows_repeat_or_go_back_makes_its_run_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_run(root, "vanilla", 0.003, 0, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.4), (200, 0.5)]);
    let dir = run_dir(root, 0);
    for (what, curve) in [
        ("repeated", "iteration,train_loss,test_accuracy\n100,1.0,0.4\n200,1.0,0.5\n200,1.0,0.5\n"),
        ("out of order", "iteration,train_loss,test_accuracy\n200,1.0,0.5\n100,1.0,0.4\n"),
    ] {
        common::rewrite_run_file(&dir, "curve.csv", curve.as_bytes());
        match homeonorm::results::rundir::state(&dir) {
            homeonorm::results::rundir::RunState::Unfinished(why) => {
                assert!(why.contains("rows out of order or repeated"), "{what}: {why}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn a_copied_run_folder_is_named_and_its_seed_counted_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runs");
    let curve = [(100usize, 0.4), (200, 0.5)];
    for seed in [0, 1] {
        write_run(&root, "vanilla", 0.003, seed, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &curve);
    }
    let original = run_dir(&root, 0);
    let copy = original.with_file_name("seed0.bak");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&original).unwrap().flatten() {
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let results = homeonorm::results::report::write(&root).unwrap();
    assert_eq!(results[0].complete, vec![0, 1], "two seeds, each once");
    let report = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(
        report.contains("- duplicate: ") && report.contains("seed0.bak: seed 0 of its setting is also at"),
        "{report}"
    );
    let comparison = homeonorm::results::compare::compare(&root, &root).unwrap();
    let accuracy = comparison.measures.iter().find(|m| m.measure == "final_accuracy").unwrap();
    assert_eq!((accuracy.runs_a, accuracy.runs_b), (2, 2));
    assert!(comparison.left_out.iter().any(|(d, _)| d.ends_with("seed0.bak")));
}

/// Writes a `provenance.json` of `stretches` (host, commit, Slurm restart count) into a run folder.
fn write_provenance(dir: &Path, stretches: &[(&str, &str, u32)]) {
    let stretches: Vec<serde_json::Value> = stretches
        .iter()
        .enumerate()
        .map(|(k, (host, commit, restarts))| {
            serde_json::json!({
                "from_iteration": 1000 * k, "to_iteration": 1000 * (k + 1),
                "started": format!("2026-12-04T0{k}:00:00Z"), "ended": format!("2026-12-04T0{k}:30:00Z"),
                "homeonorm": "0.1.0", "commit": commit, "libtorch": "2.11.0", "device": "cpu",
                "device_name": "AMD EPYC", "threads": 1, "host": host, "command": ["homeonorm", "sweep"],
                "slurm": {"job_id": "107", "array_job_id": "105", "array_task_id": "2", "restart_count": restarts},
            })
        })
        .collect();
    std::fs::write(dir.join("provenance.json"), serde_json::json!({ "stretches": stretches }).to_string()).unwrap();
}

#[test]
fn who_made_each_run_is_in_runs_csv_and_the_report_and_compare_notes_other_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (root, commit) in [(&a, "c0ffee"), (&b, "beef00")] {
        for seed in 0..2 {
            write_run(root, "vanilla", 0.003, seed, Some(("complete", 0.5, 0.2)), [0.1, 0.3], &[(100, 0.5)]);
        }
        let run = |seed| homeonorm::results::rundir::run_path(root, "cifar10", "vanilla", 0.003, seed);
        // Seed 0 preempted on node1 and taken up on node2 after a requeue; seed 1 stopped
        // and taken up again on node3 (one run there, two stretches).
        write_provenance(&run(0), &[("node1", commit, 0), ("node2", commit, 1)]);
        write_provenance(&run(1), &[("node3", commit, 0), ("node3", commit, 1)]);
    }
    homeonorm::results::report::write(&a).unwrap();

    let mut reader = csv::Reader::from_path(a.join("report/runs.csv")).unwrap();
    let runs: Vec<std::collections::HashMap<String, String>> = reader.deserialize().map(|r| r.unwrap()).collect();
    let seed0 = runs.iter().find(|r| r["seed"] == "0").unwrap();
    assert_eq!(seed0["hosts"], "node1 + node2");
    assert_eq!(seed0["slurm_jobs"], "105_2 + 105_2 (restart 1)");
    assert_eq!((seed0["started"].as_str(), seed0["ended"].as_str()), ("2026-12-04T00:00:00Z", "2026-12-04T01:30:00Z"));
    assert_eq!(
        (seed0["stretches"].as_str(), seed0["commit"].as_str(), seed0["threads"].as_str()),
        ("2", "c0ffee", "1")
    );
    let seed1 = runs.iter().find(|r| r["seed"] == "1").unwrap();
    assert_eq!((seed1["hosts"].as_str(), seed1["stretches"].as_str()), ("node3", "2"));

    let md = std::fs::read_to_string(a.join("report/report.md")).unwrap();
    assert!(md.contains("| 0.1.0 | c0ffee | 2.11.0 | cpu | AMD EPYC | 1 | 2 |"), "{md}");
    assert!(md.contains("Hosts (runs): node1 (1), node2 (1), node3 (1)."), "{md}");
    assert!(md.contains("Slurm jobs: 105_2."), "{md}");

    let comparison = homeonorm::results::compare::compare(&a, &b).unwrap();
    assert_eq!(
        comparison.made_differently(),
        ["the two sides ran on different code: A on homeonorm 0.1.0 (c0ffee), libtorch 2.11.0; \
          B on homeonorm 0.1.0 (beef00), libtorch 2.11.0"]
    );
    assert!(comparison.beyond(0.0).is_empty(), "other code is a note, never a difference of results");
    let same = homeonorm::results::compare::compare(&a, &a).unwrap();
    assert!(same.made_differently().is_empty());
}
