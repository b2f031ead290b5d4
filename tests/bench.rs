//! `homeonorm bench` times the network it is asked for, on its side and PyTorch's
//! (what it measures is BENCHMARKS.md's; here only which model each side trains).

mod common;

use common::{homeonorm_ok, python, repo_root};

/// The MLP's parameters: fc 3072→256→128→64→10, weights and biases.
const MLP_PARAMETERS: i64 = 3072 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10;
const SHORT: [&str; 6] = ["--iterations", "2", "--warmup", "1", "--batch-size", "4"];

fn parameters(json_line: &str) -> i64 {
    let value: serde_json::Value = serde_json::from_str(json_line.lines().last().unwrap()).unwrap();
    value["parameters"].as_i64().unwrap_or_else(|| panic!("no parameter count in {json_line}"))
}

#[test]
fn both_sides_train_the_network_asked_for() {
    let mut worker = vec!["bench", "--worker", "--models", "mlp", "--methods", "vanilla", "--seeds", "1"];
    worker.extend(["--threads", "1", "--python", "none"]);
    worker.extend(SHORT);
    assert_eq!(parameters(&homeonorm_ok(&worker)), MLP_PARAMETERS);

    let out = std::process::Command::new(python())
        .arg(repo_root().join("reference/bench.py"))
        .args(["--model", "mlp", "--method", "vanilla", "--runs", "1", "--threads", "1"])
        .args(SHORT)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference/bench.py: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(parameters(&String::from_utf8_lossy(&out.stdout)), MLP_PARAMETERS);
}

#[test]
fn a_table_per_network_with_the_methods_it_takes() {
    let mut args = vec!["bench", "--models", "mlp,lenet5", "--methods", "instance-norm,vanilla", "--seeds", "2"];
    args.extend(["--threads", "1", "--workers", "1"]);
    args.extend(SHORT);
    let python = python();
    args.extend(["--python", &python]);
    let printed = homeonorm_ok(&args);
    let (mlp, lenet5) = printed.split_once("\nlenet5: ").unwrap_or_else(|| panic!("two tables:\n{printed}"));
    assert!(mlp.contains("mlp: device"), "{printed}");
    let row =
        |table: &str, method: &str| table.lines().find(|l| l.starts_with(&format!("{method} "))).map(str::to_owned);
    // Instance-norm has no layer to take in the MLP: no row there, one in LeNet5's table.
    assert_eq!(row(mlp, "instance-norm"), None, "{printed}");
    for table in [mlp, lenet5] {
        let vanilla = row(table, "vanilla").unwrap_or_else(|| panic!("a vanilla row:\n{printed}"));
        // Every arrangement timed, PyTorch's included: a number in each of the 7 columns.
        let cells: Vec<&str> = vanilla.split_whitespace().skip(1).collect();
        assert_eq!(cells.len(), 7, "{vanilla}");
        assert!(cells.iter().all(|c| c.parse::<f64>().is_ok_and(|v| v > 0.0)), "{vanilla}");
    }
    assert!(row(lenet5, "instance-norm").is_some(), "{printed}");
}
