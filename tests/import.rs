//! `homeonorm import`: a long results table as partial run folders. homeonorm's own
//! curves, written out as another tool's table and imported, compare identical to the
//! runs they came from; every kind of bad row is an error naming its line, and
//! nothing is written then.

mod common;

use common::{homeonorm, homeonorm_ok as ok};
use std::path::Path;

fn run_dir(root: &Path, method: &str, lr: f64, seed: u64) -> std::path::PathBuf {
    homeonorm::results::rundir::run_path(root, "cifar10", method, lr, seed)
}

#[test]
fn homeonorms_curves_imported_from_a_table_compare_identical_to_their_runs() {
    let tmp = tempfile::tempdir().unwrap();
    common::formats::write_learnable_cifar_dir(&tmp.path().join("data/cifar-10-batches-bin"), 60, 200);
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    let data = tmp.path().join("data");
    ok(&[
        "train",
        "--dataset",
        "cifar10",
        "--method",
        "vanilla",
        "--seed",
        "0,1",
        "--iterations",
        "60",
        "--eval-every",
        "20",
        "--limit",
        "100000",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);
    // As a W&B export has them: its own column names, a column it keeps for itself, one
    // setting as a column, rows in no particular order.
    let mut table = String::from("Method,run_seed,step,acc,loss,_runtime,eval_every\n");
    for seed in [1, 0] {
        let curve = std::fs::read_to_string(run_dir(&ours, "vanilla", 0.003, seed).join("curve.csv")).unwrap();
        for line in curve.lines().skip(1).collect::<Vec<_>>().into_iter().rev() {
            let cells: Vec<&str> = line.split(',').collect();
            table += &format!("vanilla,{seed},{},{},{},12.5,20\n", cells[0], cells[2], cells[1]);
        }
    }
    let csv = tmp.path().join("export.csv");
    std::fs::write(&csv, &table).unwrap();
    let said = ok(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        theirs.to_str().unwrap(),
        "--method-column",
        "Method",
        "--seed-column",
        "run_seed",
        "--iteration-column",
        "step",
        "--accuracy-column",
        "acc",
        "--loss-column",
        "loss",
        "--iterations",
        "60",
        "--limit",
        "100000",
    ]);
    assert!(said.contains("2 run folder(s)"), "{said}");
    for seed in [0, 1] {
        let (a, b) = (run_dir(&ours, "vanilla", 0.003, seed), run_dir(&theirs, "vanilla", 0.003, seed));
        assert_eq!(std::fs::read(a.join("curve.csv")).unwrap(), std::fs::read(b.join("curve.csv")).unwrap());
        let summary = homeonorm::results::rundir::check_complete(&b).unwrap();
        let original = homeonorm::results::rundir::read_summary(&a).unwrap();
        assert_eq!((summary.final_accuracy, summary.best_accuracy), (original.final_accuracy, original.best_accuracy));
        assert!(summary.layers.is_empty() && summary.wall_time_s.is_none());
    }
    let c = homeonorm::results::compare::compare(&ours, &theirs).unwrap();
    assert!(c.beyond(0.0).is_empty(), "{:?}", c.beyond(0.0));
    assert_eq!((c.curves.len(), c.curves[0].seeds, c.curves[0].first_parting), (1, 2, None));
    assert_eq!(c.curves[0].largest_loss_difference, Some(0.0));
    let accuracy = c.measures.iter().find(|m| m.measure == "final_accuracy").unwrap();
    assert_eq!((accuracy.paired_seeds, accuracy.largest_paired_difference), (2, Some(0.0)));

    // Without the loss column, the losses are not recorded: compared on accuracy alone.
    let no_loss: String = table
        .lines()
        .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 4).map(|(_, c)| c).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&csv, no_loss).unwrap();
    let accuracy_only = tmp.path().join("accuracy-only");
    ok(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        accuracy_only.to_str().unwrap(),
        "--method-column",
        "Method",
        "--seed-column",
        "run_seed",
        "--iteration-column",
        "step",
        "--accuracy-column",
        "acc",
        "--iterations",
        "60",
        "--limit",
        "100000",
    ]);
    let c = homeonorm::results::compare::compare(&ours, &accuracy_only).unwrap();
    assert_eq!((c.curves[0].first_parting, c.curves[0].largest_loss_difference), (None, None));
    let curve = std::fs::read_to_string(run_dir(&accuracy_only, "vanilla", 0.003, 0).join("curve.csv")).unwrap();
    assert!(curve.lines().skip(1).all(|l| l.split(',').nth(1) == Some("")), "{curve}");
    ok(&["report", accuracy_only.to_str().unwrap()]);
    let md = std::fs::read_to_string(accuracy_only.join("report/report.md")).unwrap();
    assert!(md.contains("| not recorded |"), "{md}");
}

/// Imports `table` (with the header `method,lr,seed,iteration,test_accuracy,train_loss`
/// unless it has its own) into a fresh folder, expecting an error that says each of `said`.
fn refused(tmp: &Path, name: &str, table: &str, extra: &[&str], said: &[&str]) {
    let csv = tmp.join(format!("{name}.csv"));
    std::fs::write(&csv, table).unwrap();
    let out = tmp.join(format!("out-{name}"));
    let mut args = vec!["import", csv.to_str().unwrap(), "--out", out.to_str().unwrap(), "--iterations", "2"];
    args.extend(extra);
    let result = homeonorm(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{name}: {stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    for what in said.iter().chain([&csv.to_str().unwrap()]) {
        assert!(stderr.contains(what), "{name}: {what:?} not in: {stderr}");
    }
    assert!(!out.exists(), "{name}: nothing is written when a row is bad");
}

const HEADER: &str = "method,lr,seed,iteration,test_accuracy,train_loss\n";

#[test]
fn every_kind_of_bad_row_is_an_error_naming_its_line_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let good = "vanilla,0.003,0,1,0.1,2.0\nvanilla,0.003,0,2,0.2,1.9\n";
    refused(
        t,
        "no-accuracy",
        "method,lr,seed,iteration,acc\nvanilla,0.003,0,2,0.2\n",
        &[],
        &["no column \"test_accuracy\"", "--accuracy-column"],
    );
    refused(t, "lr", &format!("{HEADER}{good}vanilla,fast,1,2,0.2,1.9\n"), &[], &["line 4", "\"lr\"", "not a number"]);
    refused(t, "seed", &format!("{HEADER}vanilla,0.003,-1,2,0.2,1.9\n"), &[], &["line 2", "\"seed\"", "not a seed"]);
    refused(t, "iteration", &format!("{HEADER}vanilla,0.003,0,2.5,0.2,1.9\n"), &[], &["line 2", "not an iteration"]);
    refused(
        t,
        "accuracy",
        &format!("{HEADER}{good}vanilla,0.003,1,2,62.5,1.9\n"),
        &[],
        &["line 4", "not an accuracy from 0 to 1"],
    );
    refused(t, "percent", &format!("{HEADER}vanilla,0.003,1,2,101,1.9\n"), &["--percent"], &["line 2", "0 to 100"]);
    refused(t, "loss", &format!("{HEADER}{good}vanilla,0.003,1,2,0.2,low\n"), &[], &["line 4", "\"train_loss\""]);
    refused(
        t,
        "duplicate",
        &format!("{HEADER}{good}vanilla,0.003,0,2,0.3,1.8\n"),
        &[],
        &["line 4", "first on line 3", "duplicate row"],
    );
    refused(
        t,
        "conflicting",
        "method,lr,seed,iteration,test_accuracy,batch_size\nvanilla,0.003,0,1,0.1,32\nvanilla,0.003,0,2,0.2,64\n",
        &[],
        &["line 3", "batch_size 64", "line 2", "conflicting settings"],
    );
    refused(
        t,
        "conflicting-empty",
        "method,lr,seed,iteration,test_accuracy,batch_size\nvanilla,0.003,0,1,0.1,32\nvanilla,0.003,0,2,0.2,\n",
        &[],
        &["line 3", "batch_size empty", "line 2 of the same run", "has 32", "conflicting settings"],
    );
    refused(t, "method", &format!("{HEADER}{good}fancy-norm,0.003,0,2,0.2,1.9\n"), &[], &["line 4", "fancy-norm"]);
    refused(
        t,
        "setting",
        "method,lr,seed,iteration,test_accuracy,batch_size\nvanilla,0.003,0,2,0.2,0\n",
        &[],
        &["line 2", "batch_size"],
    );
    refused(
        t,
        "dataset",
        "method,seed,iteration,test_accuracy,dataset\nvanilla,0,2,0.2,mnist\n",
        &[],
        &["line 2", "mnist"],
    );
    refused(t, "short", &format!("{HEADER}vanilla,0.003,0,1,0.1,2.0\nvanilla,0.003,0,1\n"), &[], &["line 3"]);
    refused(
        t,
        "length",
        &format!("{HEADER}vanilla,0.003,0,1,0.1,2.0\n"),
        &[],
        &["line 2", "last row", "iteration 1", "2 iterations"],
    );
    refused(t, "empty", HEADER, &[], &["no rows"]);
    // A value whose folder no filesystem takes, on a later line: refused before anything is written.
    refused(
        t,
        "huge-lr",
        &format!("{HEADER}{good}vanilla,1e300,0,1,0.1,2.0\nvanilla,1e300,0,2,0.2,1.9\n"),
        &[],
        &["line 4", "longer than a folder name may be"],
    );
    refused(
        t,
        "two-accuracy-columns",
        "method,lr,seed,iteration,test_accuracy,test_accuracy\nvanilla,0.003,0,2,0.2,0.3\n",
        &[],
        &["column \"test_accuracy\" is named twice", "columns 5 and 6"],
    );

    // A run already there is named, and replaced only when asked.
    let csv = t.join("good.csv");
    std::fs::write(&csv, format!("{HEADER}{good}")).unwrap();
    let out = t.join("twice");
    let args = ["import", csv.to_str().unwrap(), "--out", out.to_str().unwrap(), "--iterations", "2"];
    ok(&args);
    let again = homeonorm(&args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains("already holds a run") && stderr.contains("--replace"),
        "{stderr}"
    );
    ok(&[&args[..], &["--replace"]].concat());

    // A file where a run's folder must go: named, and nothing written.
    let blocked = t.join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("cifar10"), "a file").unwrap();
    let o = homeonorm(&["import", csv.to_str().unwrap(), "--out", blocked.to_str().unwrap(), "--iterations", "2"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("not a folder, where the run of line 2 goes"), "{stderr}");
    assert_eq!(std::fs::read_dir(&blocked).unwrap().count(), 1, "nothing written beside it");

    // Another writer's run (a newer format) is never written over, --replace or not.
    let dir = run_dir(&out, "vanilla", 0.003, 0);
    let config = dir.join("config.json");
    let mut newer: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    newer["format_version"] = 3.into();
    std::fs::write(&config, newer.to_string()).unwrap();
    let before = std::fs::read(dir.join("curve.csv")).unwrap();
    let again = homeonorm(&[&args[..], &["--replace"]].concat());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("another writer's run"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("curve.csv")).unwrap(), before, "the foreign run is as it was");
    assert!(std::fs::read_to_string(&config).unwrap().contains("\"format_version\":3"));
}

#[test]
fn a_table_without_line_breaks_is_refused_before_it_fills_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let started = std::time::Instant::now();
    let result = homeonorm(&["import", "/dev/zero", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a line longer than 1048576 bytes"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "refused at once");
    assert!(!out.exists());
}

#[test]
fn a_loss_that_stops_being_finite_imports_a_diverged_run() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("diverged.csv");
    let rows = "vanilla,0.1,0,1,0.1,2.0\nvanilla,0.1,0,2,0.1,NaN\nvanilla,0.1,0,3,0.1,NaN\n";
    std::fs::write(&csv, format!("{HEADER}{rows}")).unwrap();
    let out = tmp.path().join("out");
    ok(&["import", csv.to_str().unwrap(), "--out", out.to_str().unwrap(), "--iterations", "5"]);
    let dir = run_dir(&out, "vanilla", 0.1, 0);
    let summary = homeonorm::results::rundir::check_complete(&dir).unwrap();
    assert_eq!(summary.outcome, homeonorm::results::rundir::Outcome::Diverged);
    assert_eq!((summary.diverged_at, summary.iterations, summary.final_accuracy), (Some(2), 2, None));
    let curve = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    assert_eq!(curve, "iteration,train_loss,test_accuracy\n1,2.0,0.1\n", "the rows before it");
}

#[test]
fn percentages_are_converted_and_the_lr_flag_serves_a_table_without_an_lr_column() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("percent.csv");
    // No lr column: every run has --lr's learning rate. Accuracies in percent.
    let rows = "method,seed,iteration,test_accuracy,train_loss\nvanilla,0,1,12.5,2.0\nvanilla,0,2,65.25,1.5\n";
    std::fs::write(&csv, rows).unwrap();
    let out = tmp.path().join("out");
    let (csv, out_arg) = (csv.to_str().unwrap(), out.to_str().unwrap());
    ok(&["import", csv, "--out", out_arg, "--iterations", "2", "--percent", "--lr", "0.01"]);
    assert!(!run_dir(&out, "vanilla", 0.003, 0).exists(), "not at the preset's learning rate");
    let dir = run_dir(&out, "vanilla", 0.01, 0);
    let summary = homeonorm::results::rundir::check_complete(&dir).unwrap();
    assert_eq!(summary.final_accuracy, Some(0.6525));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["lr"], 0.01);
    let curve = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    assert_eq!(curve, "iteration,train_loss,test_accuracy\n1,2.0,0.125\n2,1.5,0.6525\n");
}
