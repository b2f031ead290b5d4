//! One source of the settings' presets: `src/engine/settings.rs` declares them; the Python
//! writer (`python/homeonorm_writer/run.py`: `PRESETS`, `SETTINGS`) and the PyTorch
//! reference (`reference/networks.py`: `OPTIONS`) repeat them, and are held to them here.

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::settings::TrainSettings;

/// What `script` prints (JSON), run with python/ and reference/ importable and `argument`
/// as `sys.argv[1]`.
fn python_json(script: &str, argument: &str) -> serde_json::Value {
    let root = common::repo_root();
    let prologue = "import json, sys\nsys.path[:0] = [sys.argv[2], sys.argv[3]]\n";
    let out = std::process::Command::new(common::python())
        .args(["-c", &format!("{prologue}{script}"), argument])
        .arg(root.join("python"))
        .arg(root.join("reference"))
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Python side's presets: `{"presets": …, "settings": …, "options": …}`.
fn python_presets() -> serde_json::Value {
    let script = "from homeonorm_writer.run import METHODS, MODELS, PRESETS, SETTINGS\nfrom networks import OPTIONS\n\
                  print(json.dumps({'presets': PRESETS, 'settings': SETTINGS, 'options': OPTIONS,\
                  'methods': METHODS, 'models': MODELS}))";
    python_json(script, "")
}

#[test]
fn the_python_writer_and_the_reference_take_the_presets_rust_declares() {
    let python = python_presets();
    let settings = python["settings"].as_object().unwrap();
    for dataset in DatasetKind::all() {
        let ours = serde_json::to_value(TrainSettings::preset(dataset, "vanilla".parse().unwrap())).unwrap();
        let ours = ours.as_object().unwrap();
        // The writer's settings: every one of config.json's but dataset and method, in its order.
        let keys: Vec<&String> = ours.keys().filter(|k| !["dataset", "method"].contains(&k.as_str())).collect();
        assert_eq!(settings.keys().collect::<Vec<_>>(), keys, "the writer's SETTINGS and config.json's settings");
        for (key, value) in settings {
            let expected = if value.is_null() { &python["presets"][dataset.name()][key] } else { value };
            assert_eq!(expected, &ours[key], "{dataset} {key}: the writer's preset and homeonorm's");
        }
        for (key, value) in python["options"].as_object().unwrap() {
            assert_eq!(value, &ours[key], "{key}: reference/networks.py's OPTIONS and homeonorm's preset");
        }
    }
    assert_eq!(python["presets"].as_object().unwrap().len(), DatasetKind::all().count(), "a preset per dataset");
}

#[test]
fn the_python_writer_knows_every_method_and_network_and_no_other() {
    let python = python_presets();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
    };
    let methods: Vec<String> = homeonorm::engine::norm::method_names().into_iter().map(String::from).collect();
    assert_eq!(names(&python["methods"]), methods, "python/homeonorm_writer/run.py's METHODS");
    let networks: Vec<String> = homeonorm::engine::model::Network::all().map(|n| n.name().to_string()).collect();
    assert_eq!(names(&python["models"]), networks, "python/homeonorm_writer/run.py's MODELS");
}

#[test]
fn the_python_writer_names_changed_rule_settings_as_homeonorm_does() {
    use homeonorm::engine::norm::{RuleSetting, METHODS};
    // Its RULE_SETTINGS: every method's rule settings, in homeonorm's order.
    let script = "from homeonorm_writer.run import RULE_SETTINGS, run_path\ncases = json.loads(sys.argv[1])\n\
                  print(json.dumps({'rules': RULE_SETTINGS, 'paths': [run_path('out', 'cifar10', m, lr, 3, model, **r)\
                  for m, lr, model, r in cases]}))";
    // (method, learning rate, network, the rule settings changed)
    type Case = (&'static str, f64, &'static str, Vec<(RuleSetting, f64)>);
    let cases: Vec<Case> = vec![
        (
            "adaptive-threshold",
            0.003,
            "lenet5",
            vec![(RuleSetting::TargetRate, 0.2), (RuleSetting::ThresholdRate, 0.05)],
        ),
        ("adaptive-threshold", 0.003, "lenet5", vec![(RuleSetting::ThresholdRate, 0.03)]), // the preset's: no level
        ("homeostatic-scaling", 1e-5, "mlp", vec![(RuleSetting::ScalingRate, 0.004)]),
        ("homeostatic-scaling", 0.01, "lenet5", vec![(RuleSetting::TargetRate, 0.35), (RuleSetting::ScalingRate, 0.1)]),
        ("vanilla", 0.003, "lenet5", vec![]),
    ];
    let as_json: Vec<serde_json::Value> = cases
        .iter()
        .map(|(method, lr, model, rules)| {
            let rules: serde_json::Map<String, serde_json::Value> =
                rules.iter().map(|(r, v)| (r.name().to_string(), (*v).into())).collect();
            serde_json::json!([method, lr, model, rules])
        })
        .collect();
    let python = python_json(script, &serde_json::Value::Array(as_json).to_string());
    for method in METHODS {
        let ours: Vec<&str> = method.rule_settings().iter().map(|r| r.name()).collect();
        let theirs: Vec<&str> = python["rules"][method.name()]
            .as_array()
            .map_or(Vec::new(), |names| names.iter().map(|n| n.as_str().unwrap()).collect());
        assert_eq!(theirs, ours, "{}: the writer's RULE_SETTINGS", method.name());
    }
    let empty = tempfile::tempdir().unwrap(); // (no older folders to be found in)
    for ((method, lr, model, rules), theirs) in cases.iter().zip(python["paths"].as_array().unwrap()) {
        let mut settings = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
        settings.lr = *lr;
        settings.model = homeonorm::engine::model::Network::all().find(|n| n.name() == *model).unwrap();
        for (rule, value) in rules {
            settings.set_rule(*rule, *value);
        }
        let ours = homeonorm::results::rundir::run_dir(&empty.path().join("out"), &settings, 3);
        let ours = ours.strip_prefix(empty.path()).unwrap();
        assert_eq!(theirs.as_str().unwrap(), ours.to_str().unwrap(), "{method} {rules:?}");
    }
}
