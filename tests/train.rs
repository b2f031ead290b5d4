//! One training run end to end on small learnable data in CIFAR-10's format.

mod common;

use common::small_cifar as small_data;
use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::settings::TrainSettings;
use homeonorm::results::rundir::{self, Outcome, RunState};
use homeonorm::runs::train::train_seed_batch;
use std::path::Path;

fn short(method: &str) -> TrainSettings {
    let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
    s.iterations = 240;
    s.eval_every = 60;
    s.record_every = 20;
    s
}

fn csv_rows(path: &Path) -> (Vec<String>, usize) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    (header, reader.records().count())
}

#[test]
fn a_short_run_learns_and_writes_a_complete_folder_identically_twice() {
    let root = tempfile::tempdir().unwrap();
    let data = small_data(root.path());
    let settings = short("synaptic-scaling");
    let out_a = root.path().join("a");
    let out_b = root.path().join("b");
    let a = train_seed_batch(&settings, &[3], &data, &out_a, &Default::default()).unwrap();
    train_seed_batch(&settings, &[3], &data, &out_b, &Default::default()).unwrap();

    let summary = &a[0].1;
    assert_eq!(summary.outcome, Outcome::Complete);
    let accuracy = summary.final_accuracy.unwrap();
    assert!(accuracy > 0.8, "10 classes, chance is 0.1; got {accuracy}");
    assert_eq!(summary.layers.len(), 2);
    assert!(summary.layers.iter().all(|l| l.get("alpha_mean").is_some()), "synaptic scaling reports α");
    // With batch statistics, a test batch of one centres each fc unit on the example
    // itself: every fc output is 0, the prediction is the same class for every input.
    let batch1 = summary.test_accuracy_batch1.unwrap();
    assert!(batch1 < 0.3, "synaptic scaling with batch statistics, test batch 1: {batch1}");

    let dir = rundir::run_path(&out_a, "cifar10", "synaptic-scaling", 0.003, 3);
    assert_eq!(rundir::state(&dir), RunState::Done(Outcome::Complete));
    assert_eq!(
        csv_rows(&dir.join("curve.csv")),
        (vec!["iteration".into(), "train_loss".into(), "test_accuracy".into()], 4)
    );
    let (header, rows) = csv_rows(&dir.join("activation_prob.csv"));
    assert_eq!(header, ["iteration", "layer", "unit", "activation_prob"]);
    assert_eq!(rows, 12 * (120 + 84), "one row per recorded iteration per fc unit");
    let (header, rows) = csv_rows(&dir.join("unit_stats.csv"));
    assert_eq!(header, ["layer", "unit", "activation_prob", "entropy", "mean_active_value", "alpha"]);
    assert_eq!(rows, 120 + 84);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["method"], "synaptic-scaling");
    assert_eq!(config["seed"], 3);
    assert_eq!(config["system"]["libtorch"].as_str().unwrap().split('+').next(), Some("2.11.0"));
    assert_eq!(config["data_files"].as_array().unwrap().len(), 6);
    // Who made it: one stretch, over the whole run, by this code on this machine.
    let stretches = rundir::read_provenance(&dir).unwrap().expect("provenance.json").stretches;
    assert_eq!(stretches.len(), 1);
    let made = &stretches[0];
    assert_eq!((made.from_iteration, made.to_iteration), (0, settings.iterations));
    assert_eq!(made.commit.as_deref(), Some(homeonorm::runs::provenance::COMMIT).filter(|c| !c.is_empty()));
    assert_eq!(made.device.as_deref(), Some("cpu"));
    assert_eq!(made.threads, Some(tch::get_num_threads().into()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(made.host.as_deref(), Some(host.trim()));
    assert!(made.started.is_some() && made.started <= made.ended, "{made:?}");
    assert!(summary.files.contains_key("provenance.json"), "its size is recorded, as every file's");

    let dir_b = rundir::run_path(&out_b, "cifar10", "synaptic-scaling", 0.003, 3);
    for file in ["curve.csv", "activation_prob.csv", "unit_stats.csv"] {
        assert_eq!(
            std::fs::read(dir.join(file)).unwrap(),
            std::fs::read(dir_b.join(file)).unwrap(),
            "{file} differs between two runs of one seed"
        );
    }
}

#[test]
fn a_huge_learning_rate_is_recorded_as_diverged() {
    let root = tempfile::tempdir().unwrap();
    let data = small_data(root.path());
    let mut settings = short("vanilla");
    settings.lr = 1e30;
    let out = root.path().join("out");
    let result = train_seed_batch(&settings, &[0], &data, &out, &Default::default()).unwrap();
    let summary = &result[0].1;
    assert_eq!(summary.outcome, Outcome::Diverged);
    let at = summary.diverged_at.expect("the iteration is recorded");
    assert!((1..=20).contains(&at), "diverged at {at}");
    assert_eq!(summary.final_accuracy, None);
    let dir = rundir::run_path(&out, "cifar10", "vanilla", 1e30, 0);
    assert_eq!(rundir::state(&dir), RunState::Done(Outcome::Diverged));
    assert!(dir.join("curve.csv").exists() && dir.join("unit_stats.csv").exists());
}

#[test]
fn bad_settings_are_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let data = small_data(root.path());
    for (change, expected) in [
        (Box::new(|s: &mut TrainSettings| s.lr = 0.0) as Box<dyn Fn(&mut TrainSettings)>, "learning rate"),
        (Box::new(|s: &mut TrainSettings| s.batch_size = 0), "batch size"),
    ] {
        let mut s = short("vanilla");
        change(&mut s);
        let out = root.path().join("refused");
        let err = train_seed_batch(&s, &[0], &data, &out, &Default::default()).expect_err("must fail").to_string();
        assert!(err.contains(expected), "{err}");
        assert!(!out.exists(), "nothing is written for bad settings");
    }
    // A method's own setting that a layer cannot take names both.
    let mut s = short("group-norm");
    s.groups = 4;
    let out = root.path().join("refused");
    let err = train_seed_batch(&s, &[0], &data, &out, &Default::default()).expect_err("must fail").to_string();
    assert!(err.contains("groups") && err.contains("conv1") && err.contains("6 units"), "{err}");
    assert!(!out.exists(), "nothing is written for bad settings");
    // A method name is checked where it is read, before any settings exist.
    let err = "batch-renorm".parse::<homeonorm::engine::norm::MethodId>().unwrap_err().to_string();
    assert!(err.contains("valid methods are"), "{err}");
}

#[test]
fn an_empty_split_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    for split in ["training", "test"] {
        let mut data = small_data(root.path());
        let target = if split == "training" { &mut data.train } else { &mut data.test };
        *target = homeonorm::engine::data::Split {
            images: target.images.narrow(0, 0, 0),
            labels: target.labels.narrow(0, 0, 0),
        };
        let out = root.path().join("refused");
        let err = train_seed_batch(&short("vanilla"), &[0], &data, &out, &Default::default())
            .expect_err("must fail")
            .to_string();
        assert!(err.contains(&format!("{split} split")) && err.contains("has no images"), "{err}");
        assert!(!out.exists(), "nothing is written for an empty {split} split");
    }
}

#[test]
fn a_method_without_batch_statistics_scores_the_same_with_a_test_batch_of_one() {
    let root = tempfile::tempdir().unwrap();
    let data = small_data(root.path());
    for method in ["adaptive-threshold", "divisive-norm"] {
        let mut settings = short(method);
        settings.iterations = 120;
        let summary =
            &train_seed_batch(&settings, &[1], &data, &root.path().join(method), &Default::default()).unwrap()[0].1;
        let (whole, one) = (summary.final_accuracy.unwrap(), summary.test_accuracy_batch1.unwrap());
        assert!(whole > 0.5, "{method} learns: {whole}");
        // Each example is computed alone either way; a batched convolution may round a
        // near tie apart: at most one test image.
        let images = data.test.len() as f64;
        assert!(
            (whole - one).abs() * images <= 1.0 + 1e-9,
            "{method}: {whole} with the whole test batch, {one} one by one"
        );
    }
}
