//! A user's own PyTorch script beside homeonorm through the Python writer
//! (python/homeonorm_writer): the README's worked example, run as written with the
//! package installed as the README says, must write the very run `homeonorm train`
//! does (the tutorial's LeNet is homeonorm's vanilla LeNet5); a script that records
//! its curve only writes a partial run that `report`, `plot` and `compare` read.

mod common;

use common::homeonorm_ok as homeonorm;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs python/ into `site` as `pip install ./python` does (from a copy, so no
/// build files land in the checkout; without reaching PyPI: the set-up's setuptools).
fn install_writer(tmp: &Path) -> PathBuf {
    let source = tmp.join("python-src");
    copy_dir(&common::repo_root().join("python"), &source);
    let site = tmp.join("site");
    let out = Command::new(common::python())
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"])
        .args(["--no-build-isolation", "--no-index", "--target"])
        .arg(&site)
        .arg(&source)
        .output()
        .expect("pip runs");
    assert!(out.status.success(), "pip install ./python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    site
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == "build" || name.to_string_lossy().ends_with(".egg-info") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The README's code block marked `<!-- readme-example: my_train.py -->`.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let after = readme.split("<!-- readme-example: my_train.py -->").nth(1).expect("the README marks its example");
    let block = after.split("```python\n").nth(1).expect("a python block follows the mark");
    block.split("\n```").next().unwrap().to_string() + "\n"
}

/// Runs a Python script with the installed writer on its path, one thread (as homeonorm's
/// `--threads 1`); panics with its output when it fails.
fn run_script(script: &Path, site: &Path, args: &[&str]) {
    let out = Command::new(common::python())
        .arg(script)
        .args(args)
        .env("PYTHONPATH", site)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_readme_example_writes_the_run_homeonorm_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let site = install_writer(tmp.path());
    // The official split sizes (the script reads every image; homeonorm takes a full
    // split without --limit), of learnable synthetic images.
    let data = tmp.path().join("data/cifar-10-batches-bin");
    common::formats::write_learnable_cifar_dir(&data, 10_000, 10_000);
    let script = tmp.path().join("my_train.py");
    std::fs::write(&script, readme_example()).unwrap();
    let (theirs, ours) = (tmp.path().join("theirs"), tmp.path().join("ours"));
    run_script(&script, &site, &[data.to_str().unwrap(), theirs.to_str().unwrap(), "0", "250"]);
    let data_root = tmp.path().join("data");
    homeonorm(&[
        "train",
        "--dataset",
        "cifar10",
        "--method",
        "vanilla",
        "--seed",
        "0",
        "--iterations",
        "250",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--data-dir",
        data_root.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);

    // Byte for byte where both record the same thing, and compare finds nothing apart.
    let run = |root: &Path| homeonorm::results::rundir::run_path(root, "cifar10", "vanilla", 0.003, 0);
    for file in ["curve.csv", "activation_prob.csv", "unit_stats.csv"] {
        let (a, b) = (std::fs::read(run(&ours).join(file)).unwrap(), std::fs::read(run(&theirs).join(file)).unwrap());
        assert!(a == b, "{file} differs:\n{}\n---\n{}", String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    }
    let c = homeonorm::results::compare::compare(&ours, &theirs).unwrap();
    assert_eq!(c.curves.len(), 1, "one setting on both sides");
    assert_eq!((c.curves[0].seeds, c.curves[0].first_parting), (1, None));
    assert!(c.beyond(0.0).is_empty(), "{:?}", c.beyond(0.0));
    let fc1 = c.measures.iter().find(|m| m.measure == "fc1_activation_prob_mean").expect("fc1 compared");
    assert_eq!((fc1.runs_a, fc1.runs_b, fc1.difference), (1, 1, Some(0.0)));
    let curve = std::fs::read_to_string(run(&theirs).join("curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 2, "one evaluation, at the last iteration: {curve}");
    assert!(!curve.contains(",0.0\n") && !curve.contains(",,"), "a real accuracy and loss: {curve}");
    // Who made it: the script's stretch, read as homeonorm reads its own (runs.csv's columns).
    let made = homeonorm::results::rundir::read_provenance(&run(&theirs)).unwrap().expect("provenance.json");
    let stretch = &made.stretches[0];
    assert_eq!((made.stretches.len(), stretch.from_iteration, stretch.to_iteration), (1, 0, 250));
    assert_eq!(stretch.homeonorm.as_deref(), Some("homeonorm_writer 0.2.0"));
    assert!(stretch.command.iter().any(|a| a.ends_with("my_train.py")), "{:?}", stretch.command);
    assert!(stretch.started.is_some() && stretch.started <= stretch.ended, "{stretch:?}");
    assert_eq!(stretch.libtorch.as_deref().map(|v| v.starts_with("2.11.0")), Some(true));
}

/// A user's loop with its own model and data loading that records its curve only.
const PARTIAL_SCRIPT: &str = r#"
import sys
import numpy as np
import torch
from homeonorm_writer import Run

data_dir, out = sys.argv[1], sys.argv[2]
def load(names):
    raw = np.concatenate([np.fromfile(f"{data_dir}/{n}", dtype=np.uint8).reshape(-1, 3073) for n in names])
    return torch.from_numpy(raw[:, 1:]).float() / 255, torch.from_numpy(raw[:, 0].astype(np.int64))
x, y = load([f"data_batch_{i}.bin" for i in range(1, 6)])
tx, ty = load(["test_batch.bin"])
for seed in (0, 1):
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(3072, 64), torch.nn.LayerNorm(64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(mlp.parameters(), lr=0.05)
    run = Run(out, dataset="cifar10", method="layer-norm", seed=seed, lr=0.05, iterations=40, eval_every=20,
              data_limit=100000)
    for it in range(1, 41):
        i = torch.randint(0, len(y), (32,))
        loss = torch.nn.functional.cross_entropy(mlp(x[i]), y[i])
        opt.zero_grad(); loss.backward(); opt.step()
        run.step(it, loss.item())
        if it % 20 == 0:
            with torch.no_grad():
                run.log(it, (mlp(tx).argmax(1) == ty).float().mean().item())
    run.finish()
"#;

#[test]
fn a_scripts_partial_runs_are_reported_plotted_and_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let site = install_writer(tmp.path());
    common::formats::write_learnable_cifar_dir(&tmp.path().join("data/cifar-10-batches-bin"), 60, 200);
    let script = tmp.path().join("partial.py");
    std::fs::write(&script, PARTIAL_SCRIPT).unwrap();
    let (theirs, ours) = (tmp.path().join("theirs"), tmp.path().join("ours"));
    let data = tmp.path().join("data/cifar-10-batches-bin");
    run_script(&script, &site, &[data.to_str().unwrap(), theirs.to_str().unwrap()]);

    for seed in [0, 1] {
        let dir = homeonorm::results::rundir::run_path(&theirs, "cifar10", "layer-norm", 0.05, seed);
        assert_eq!(
            homeonorm::results::rundir::state(&dir),
            homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Complete),
            "a folder of config, curve and summary is a complete run"
        );
        // The measures and weights not recorded; who made it, as every writer's run says.
        for optional in homeonorm::results::rundir::OPTIONAL {
            let written = optional == homeonorm::results::rundir::PROVENANCE;
            assert_eq!(dir.join(optional).exists(), written, "{optional}");
        }
    }
    homeonorm(&["report", theirs.to_str().unwrap()]);
    let md = std::fs::read_to_string(theirs.join("report/report.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| cifar10 | layer-norm |")).expect("the setting's row");
    let cells: Vec<&str> = row.split(" | ").collect();
    assert_eq!(cells[6], "2", "two complete runs: {row}");
    assert!(cells.iter().filter(|c| c.contains("not recorded")).count() >= 9, "measures not recorded: {row}");
    assert!(!row.contains("0.000"), "never zero for what was not recorded: {row}");
    let plotted = homeonorm(&["plot", theirs.to_str().unwrap()]);
    let figures: Vec<String> = std::fs::read_dir(theirs.join("report/figures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(figures.iter().any(|f| f.starts_with("accuracy-")), "{figures:?} {plotted}");
    assert!(!figures.iter().any(|f| f.starts_with("heatmap-")), "no heat map without its rows: {figures:?}");

    // homeonorm's layer-norm runs of the same setting: paired by setting and seed.
    homeonorm(&[
        "train",
        "--dataset",
        "cifar10",
        "--method",
        "layer-norm",
        "--lr",
        "0.05",
        "--seed",
        "0,1",
        "--iterations",
        "40",
        "--eval-every",
        "20",
        "--limit",
        "100000",
        "--device",
        "cpu",
        "--data-dir",
        tmp.path().join("data").to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);
    let c = homeonorm::results::compare::compare(&ours, &theirs).unwrap();
    assert!(c.only_a.is_empty() && c.only_b.is_empty(), "{:?} {:?}", c.only_a, c.only_b);
    let accuracy = c.measures.iter().find(|m| m.measure == "final_accuracy").unwrap();
    assert_eq!((accuracy.runs_a, accuracy.runs_b, accuracy.paired_seeds), (2, 2, 2));
    let fc1 = c.measures.iter().find(|m| m.measure == "fc1_activation_prob_mean").unwrap();
    assert_eq!((fc1.runs_a, fc1.runs_b, fc1.difference), (2, 0, None), "one side's measures: no difference");
    assert_eq!(c.curves[0].seeds, 2);
    assert!(c.curves[0].largest_loss_difference.is_some(), "both sides record losses");
}

#[test]
fn the_writer_refuses_names_outside_its_folder_and_values_that_are_not_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let escaped = tmp.path().join("escaped");
    let script = tmp.path().join("strict.py");
    std::fs::write(
        &script,
        r#"import json, math, os, sys
sys.path.insert(0, sys.argv[1])
from homeonorm_writer import Run
out = sys.argv[2]
def refused(what, **kw):
    try:
        Run(out, **{"dataset": "cifar10", "method": "vanilla", "seed": 0, **kw})
    except (ValueError, TypeError) as e:
        print(f"refused {what}: {e}")
    else:
        raise SystemExit(f"{what} was accepted")
refused("a method that climbs out", method="../../../escaped")
refused("an absolute method", method=os.path.abspath(sys.argv[3]))
refused("a model that is not homeonorm's", model="../x")
refused("lr -0.0", lr=-0.0)
refused("lr NaN", lr=math.nan)
run = Run(out, dataset="cifar10", method="vanilla", seed=0, iterations=2)
try:
    run.log(2, math.nan)
    raise SystemExit("a NaN accuracy was accepted")
except ValueError as e:
    print(f"refused a NaN accuracy: {e}")
run.step(1, 2.0)
run.step(2, math.inf)
run.log(2, 0.5)
summary = run.finish()
assert summary["outcome"] == "diverged" and summary["diverged_at"] == 2, summary
json.loads(open(os.path.join(run.folder, "summary.json")).read())  # whole JSON
print("diverged run written")
"#,
    )
    .unwrap();
    let output = Command::new(common::python())
        .arg(&script)
        .arg(common::repo_root().join("python"))
        .arg(&out)
        .arg(&escaped)
        .output()
        .expect("python runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{said}");
    assert_eq!(said.matches("refused").count(), 6, "{said}");
    assert!(said.contains("diverged run written"), "{said}");
    assert!(!escaped.exists() && !tmp.path().join("x").exists(), "nothing outside the output folder");
    let dir = homeonorm::results::rundir::run_path(&out, "cifar10", "vanilla", 0.003, 0);
    assert_eq!(
        homeonorm::results::rundir::state(&dir),
        homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Diverged)
    );
}

/// summary.json's std across units: the writer computes it as homeonorm does, bit for
/// bit. (Python's `x ** 2` is libm's `pow`, which rounds about one square in a thousand
/// other than `x * x` does: seen as a one-ulp difference in fc2's
/// `mean_active_value_std` between the script's run and homeonorm's.)
#[test]
fn the_writers_mean_and_std_across_units_are_homeonorms_bit_for_bit() {
    // Three layers where the two roundings give other stds (found by search), and 500 of 84
    // units each.
    let mut layers = vec![vec![2.4, 2.283, 2.294], vec![1.41, 2.481, 1.834], vec![0.603, 1.11, 2.869]];
    let mut state = 7u64;
    layers.extend((0..500).map(|_| {
        (0..84)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 * 3.0
            })
            .collect::<Vec<f64>>()
    }));
    let program = "import json, sys; sys.path.insert(0, sys.argv[1]); \
                   from homeonorm_writer.measures import mean_std; \
                   print(json.dumps([mean_std(v) for v in json.load(sys.stdin)]))";
    let mut child = Command::new(common::python())
        .args(["-c", program])
        .arg(common::repo_root().join("python"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &layers).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let theirs: Vec<(f64, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    let differing: Vec<String> = layers
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter_map(|(k, (values, theirs))| {
            let ours = homeonorm::engine::metrics::mean_std(values);
            let same = ours.0.to_bits() == theirs.0.to_bits() && ours.1.to_bits() == theirs.1.to_bits();
            (!same).then(|| format!("layer {k}: {ours:?} against {theirs:?}"))
        })
        .collect();
    assert_eq!(theirs.len(), layers.len());
    assert!(differing.is_empty(), "{} of {} layers differ:\n{}", differing.len(), layers.len(), differing.join("\n"));
}
