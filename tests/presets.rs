//! One source of the settings' presets: `src/engine/settings.rs` declares them; the Python
//! writer (`python/homeonorm_writer/run.py`: `PRESETS`, `SETTINGS`) and the PyTorch
//! reference (`reference/networks.py`: `OPTIONS`) repeat them, and are held to them here.

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::settings::TrainSettings;

/// The Python side's presets: `{"presets": …, "settings": …, "options": …}`.
fn python_presets() -> serde_json::Value {
    let root = common::repo_root();
    let script = "import json, sys\nsys.path[:0] = [sys.argv[1], sys.argv[2]]\n\
                  from homeonorm_writer.run import METHODS, MODELS, PRESETS, SETTINGS\nfrom networks import OPTIONS\n\
                  print(json.dumps({'presets': PRESETS, 'settings': SETTINGS, 'options': OPTIONS,\
                  'methods': METHODS, 'models': MODELS}))";
    let out = std::process::Command::new(common::python())
        .args(["-c", script])
        .arg(root.join("python"))
        .arg(root.join("reference"))
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
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
