//! `homeonorm compare` on small real runs: identical folders, a setting on one side
//! only, unfinished runs named and left out, and bad input refused with its path.

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::settings::TrainSettings;
use homeonorm::results::compare::compare;
use homeonorm::results::stats::welch_p;
use homeonorm::runs::train::train_seed_batch;
use std::path::{Path, PathBuf};

/// Seeds 0 and 1 of vanilla (and, if asked, vanilla at another learning rate) under `out`.
fn results(data: &homeonorm::runs::train::RunData, out: &Path, other_lr: bool) -> PathBuf {
    let mut s = TrainSettings::preset(DatasetKind::Cifar10, "vanilla".parse().unwrap());
    (s.iterations, s.eval_every, s.record_every, s.test_batch_size) = (40, 20, 10, 50);
    train_seed_batch(&s, &[0, 1], data, out, &Default::default()).unwrap();
    if other_lr {
        s.lr = 0.01;
        train_seed_batch(&s, &[0], data, out, &Default::default()).unwrap();
    }
    out.to_path_buf()
}

/// Rewrites a run's `curve.csv` through `edit` (rows without the header), the run kept complete.
fn edit_curve(run: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let curve = std::fs::read_to_string(run.join("curve.csv")).unwrap();
    let mut lines: Vec<String> = curve.lines().map(String::from).collect();
    let mut rows = lines.split_off(1);
    edit(&mut rows);
    lines.extend(rows);
    common::rewrite_run_file(run, "curve.csv", (lines.join("\n") + "\n").as_bytes());
}

#[test]
fn identical_folders_compare_identical_and_differences_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    let a = results(&data, &tmp.path().join("a"), false);
    let b = results(&data, &tmp.path().join("b"), true);
    let in_b_only =
        |beyond: &[String]| beyond.iter().filter(|l| l.contains("lr 0.01") && l.ends_with("in B only")).count();

    let c = compare(&a, &b).unwrap();
    assert_eq!(c.curves.len(), 1);
    assert_eq!(
        (c.curves[0].seeds, c.curves[0].first_parting, c.curves[0].one_sided_rows),
        (2, None, 0),
        "the same runs twice"
    );
    assert_eq!((c.curves[0].largest_accuracy_difference, c.curves[0].largest_loss_difference), (0.0, Some(0.0)));
    let accuracy = c.measures.iter().find(|m| m.measure == "final_accuracy").unwrap();
    assert_eq!((accuracy.runs_a, accuracy.runs_b, accuracy.difference), (2, 2, Some(0.0)));
    assert_eq!(accuracy.largest_paired_difference, Some(0.0));
    assert!(c.measures.iter().any(|m| m.measure == "fc1_activation_prob_mean"));
    assert!(c.only_a.is_empty() && c.only_b.len() == 1 && c.only_b[0].contains("lr 0.01"), "{:?}", c.only_b);
    // The one thing between them is the setting B alone has: a gate does not pass it.
    let beyond = c.beyond(0.0);
    assert_eq!((beyond.len(), in_b_only(&beyond)), (1, 1), "{beyond:?}");
    assert!(compare(&a, &a).unwrap().beyond(0.0).is_empty(), "a folder against itself");

    // A curve changed by hand: the curves part there, by exactly the change.
    let run = homeonorm::results::rundir::run_path(&b, "cifar10", "vanilla", 0.003, 1);
    let mut was = 0.0;
    edit_curve(&run, |rows| {
        let mut fields: Vec<String> = rows.last().unwrap().split(',').map(String::from).collect();
        was = fields[2].parse().unwrap();
        fields[2] = "0.125".into();
        *rows.last_mut().unwrap() = fields.join(",");
    });
    let c = compare(&a, &b).unwrap();
    assert_eq!(c.curves[0].first_parting, Some(40), "{:?}", c.curves[0]);
    assert_eq!(c.curves[0].largest_accuracy_difference, (was - 0.125f64).abs());
    let beyond = c.beyond((was - 0.125f64).abs() / 2.0);
    assert!(beyond.iter().any(|l| l.contains("test accuracy curves differ")), "{beyond:?}");
    assert_eq!(c.beyond(1.0).len(), 1, "below 1.0 only the one-sided setting is left: {:?}", c.beyond(1.0));

    // A NaN in one curve, and a row on one side only: beyond any tolerance.
    edit_curve(&run, |rows| {
        let mut fields: Vec<String> = rows[0].split(',').map(String::from).collect();
        fields[1] = "NaN".into();
        rows[0] = fields.join(",");
        rows.remove(1);
    });
    let c = compare(&a, &b).unwrap();
    assert!(c.curves[0].largest_loss_difference.unwrap().is_nan(), "{:?}", c.curves[0]);
    assert_eq!(c.curves[0].one_sided_rows, 1);
    let beyond = c.beyond(1.0);
    assert!(beyond.iter().any(|l| l.contains("training loss curves differ by up to NaN")), "{beyond:?}");
    assert!(beyond.iter().any(|l| l.contains("1 curve row(s) on one side only")), "{beyond:?}");

    // An unfinished run is named and left out, never averaged in, and a gate does not pass it.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let c = compare(&a, &b).unwrap();
    assert!(c.left_out.iter().any(|(d, _)| *d == run), "{:?}", c.left_out);
    let accuracy = c.measures.iter().find(|m| m.measure == "final_accuracy").unwrap();
    assert_eq!((accuracy.runs_a, accuracy.runs_b), (2, 1));
    let beyond = c.beyond(1.0);
    assert!(beyond.iter().any(|l| l.contains(&run.display().to_string()) && l.contains("left out")), "{beyond:?}");
    assert!(beyond.iter().any(|l| l.contains("seed 1 in A only")), "{beyond:?}");
    let md = homeonorm::results::compare::markdown(&c, &a, &b);
    assert!(md.contains(&run.display().to_string()), "{md}");
}

#[test]
fn bad_input_is_refused_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    let a = results(&data, &tmp.path().join("a"), false);
    let err = |b: &Path| compare(&a, b).err().expect("refused").to_string();

    let missing = tmp.path().join("nothing-here");
    assert!(err(&missing).contains(&missing.display().to_string()));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = err(&empty);
    assert!(e.contains(&empty.display().to_string()) && e.contains("not a results folder"), "{e}");

    // A folder whose only run is half-written has nothing to compare.
    let half = results(&data, &tmp.path().join("half"), false);
    for seed in [0, 1] {
        std::fs::remove_file(
            homeonorm::results::rundir::run_path(&half, "cifar10", "vanilla", 0.003, seed).join("summary.json"),
        )
        .unwrap();
    }
    let e = err(&half);
    assert!(e.contains(&half.display().to_string()) && e.contains("no complete run"), "{e}");

    // A run of another format version.
    let newer = results(&data, &tmp.path().join("newer"), false);
    let run = homeonorm::results::rundir::run_path(&newer, "cifar10", "vanilla", 0.003, 1);
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    std::fs::write(run.join("config.json"), text.replacen("\"format_version\": 2", "\"format_version\": 3", 1))
        .unwrap();
    let e = err(&newer);
    assert!(e.contains(&run.display().to_string()) && e.contains("format 3"), "{e}");
}

#[test]
fn welch_p_of_a_textbook_case() {
    // Two samples of two with unit variance of the mean each: df = 2, and t = 4.3027
    // is the two-sided 5 % point of Student's t with 2 degrees of freedom.
    let d = 4.302652729911275 * 2f64.sqrt();
    let p = welch_p(&[-1.0, 1.0], &[d - 1.0, d + 1.0]).unwrap();
    assert!((p - 0.05).abs() < 1e-9, "{p}");
    assert_eq!(welch_p(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), Some(1.0));
    assert_eq!(welch_p(&[1.0], &[1.0, 2.0]), None, "one value gives no spread");
}

#[test]
fn paths_with_control_characters_are_escaped_in_reports_and_a_file_in_the_way_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    let a = results(&data, &tmp.path().join("a\u{1b}[31m"), false);
    let unfinished = homeonorm::results::rundir::run_path(&a, "cifar10", "vanilla", 0.003, 1);
    std::fs::remove_file(unfinished.join("summary.json")).unwrap();
    let c = compare(&a, &a).unwrap();
    let md = homeonorm::results::compare::markdown(&c, &a, &a);
    assert!(!md.contains('\u{1b}') && md.contains("a\\u{1b}[31m"), "{md}");
    assert!(c.beyond(0.0).iter().all(|l| !l.contains('\u{1b}')), "{:?}", c.beyond(0.0));
    homeonorm::results::report::write(&a).unwrap();
    let report = std::fs::read_to_string(a.join("report/report.md")).unwrap();
    assert!(!report.contains('\u{1b}') && report.contains("a\\u{1b}[31m"), "{report}");
    // `report/` or compare's output folder taken by a file: the error names it.
    std::fs::remove_dir_all(a.join("report")).unwrap();
    std::fs::write(a.join("report"), "").unwrap();
    let err = format!("{:#}", homeonorm::results::report::write(&a).err().expect("refused"));
    assert!(err.contains(&a.join("report").display().to_string()), "{err}");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = format!("{:#}", homeonorm::results::compare::write(&c, &a, &a, &file).unwrap_err());
    assert!(err.contains(&file.display().to_string()), "{err}");
}

#[test]
fn a_folder_written_in_format_1_compares_with_its_format_2_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    let (now, older) = (results(&data, &tmp.path().join("now"), false), tmp.path().join("older"));
    results(&data, &older, false);
    // What homeonorm wrote before format 2: format_version 1, no model.
    for seed in [0, 1] {
        let run = homeonorm::results::rundir::run_path(&older, "cifar10", "vanilla", 0.003, seed);
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["format_version"], 2);
        config["format_version"] = 1.into();
        config.as_object_mut().unwrap().remove("model");
        common::rewrite_run_file(&run, "config.json", config.to_string().as_bytes());
        assert_eq!(homeonorm::results::rundir::recorded_format(&run), Some(1));
        assert_eq!(homeonorm::results::rundir::read_config(&run).unwrap().settings.model, Default::default(), "LeNet5");
    }
    let c = compare(&now, &older).unwrap();
    assert!(c.beyond(0.0).is_empty(), "{:?}", c.beyond(0.0));
    assert_eq!((c.curves.len(), c.curves[0].seeds), (1, 2));
}
