//! homeonorm against PyTorch itself (reference/parity.py): the same initial weights
//! and batches through both, Adam steps with losses compared at every step, every
//! parameter and both evaluation modes' logits compared at the end — for equality,
//! bit for bit. The matrix: every network with every method it takes, on one and on
//! two threads (both sides on the same count); LeNet5 in float32 and float64 at both
//! paper learning rates, the other networks in float32 at CIFAR-10's (a rate is one
//! scalar in Adam's update, and float64 a precision only tests train in: LeNet5's cases
//! check both). One PyTorch process per network runs its cases, beside ours.

mod common;

use common::{read_named, run_reference, start_reference};
use homeonorm::engine::learner::Learner;
use homeonorm::engine::model::{check_method, model_state, shared_input, ModelOptions, Network};
use homeonorm::engine::norm::{EvalStats, Pass, METHODS};
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// Steps and batch size of a case. The long ones, on one thread: 25 steps of 32
/// (the plain CNN, whose step costs some ten of LeNet5's, 8; ResNet-20, some sixty, 5 of 8). On two threads (CI's
/// time) a case is short: a few steps still carry Adam's moments and the rules' state
/// from step to step, which is where a difference would compound. 32 images wherever an
/// fc layer is whitened: groups of 16 units need more than 16 rows to stay decomposable.
fn steps_and_batch(network: Network, long: bool) -> (i64, i64) {
    match (network, long) {
        (Network::Resnet20, true) => (5, 8),
        (Network::Resnet20, false) => (3, 4),
        (Network::PlainCnn, true) => (8, 32),
        (_, true) => (25, 32),
        (Network::PlainCnn, false) => (4, 32),
        (_, false) => (6, 32),
    }
}
const TEST_BATCH: i64 = 40;
const SEED: u64 = 7;
/// The paper's learning rates: CIFAR-10 and SVHN.
const LEARNING_RATES: [f64; 2] = [0.003, 0.01];

/// The precisions and learning rates a network's cases train in: LeNet5 all four
/// pairs, the others float32 at CIFAR-10's rate.
fn settings(network: Network) -> Vec<(Kind, f64)> {
    if network != Network::Lenet5 {
        return vec![(Kind::Float, LEARNING_RATES[0])];
    }
    [Kind::Float, Kind::Double].into_iter().flat_map(|kind| LEARNING_RATES.map(|lr| (kind, lr))).collect()
}

/// Torch's intra-op threads: one, and two (a kernel may split its sums by the count).
const THREADS: [i32; 2] = [1, 2];

struct Case {
    dir: PathBuf,
    network: Network,
    method: &'static str,
    lr: f64,
    kind: Kind,
    threads: i32,
    ours: HashMap<String, Tensor>,
}

fn kind_name(kind: Kind) -> &'static str {
    if kind == Kind::Double {
        "f64"
    } else {
        "f32"
    }
}

/// The methods a network takes (the others are refused before anything runs).
fn methods_of(network: Network) -> Vec<&'static dyn homeonorm::engine::norm::Method> {
    let options = ModelOptions { network, ..ModelOptions::default() };
    METHODS.iter().copied().filter(|m| check_method(*m, &options).is_ok()).collect()
}

/// Writes the case's inputs, runs homeonorm's side, keeps its results in memory.
fn prepare(
    root: &std::path::Path,
    network: Network,
    method: &'static dyn homeonorm::engine::norm::Method,
    lr: f64,
    kind: Kind,
    threads: i32,
) -> Case {
    let dir = root.join(format!("{network}-{}-{lr}-{}-{threads}t", method.name(), kind_name(kind)));
    std::fs::create_dir_all(&dir).unwrap();
    let case = serde_json::json!({
        "model": network.name(), "method": method.name(), "seed": SEED, "lr": lr, "dtype": kind_name(kind),
        "threads": threads,
    });
    std::fs::write(dir.join("case.json"), case.to_string()).unwrap();

    let long = threads == 1;
    let (steps, batch) = steps_and_batch(network, long);
    let (x, y, test_x) = homeonorm::engine::torch_rng::seeded(1234, || {
        // Learnable batches: a fixed pattern per class plus noise (random labels on pure
        // noise make some methods' f32 training chaotic: PyTorch then disagrees with itself).
        let opts = (Kind::Float, Device::Cpu);
        let patterns = Tensor::randn([10, 3, 32, 32], opts);
        let y = Tensor::randint(10, [steps, batch], (Kind::Int64, Device::Cpu));
        let x = patterns.index_select(0, &y.view([-1])).view([steps, batch, 3, 32, 32])
            + Tensor::randn([steps, batch, 3, 32, 32], opts);
        let test_y = Tensor::randint(10, [TEST_BATCH], (Kind::Int64, Device::Cpu));
        let test_x = patterns.index_select(0, &test_y) + Tensor::randn([TEST_BATCH, 3, 32, 32], opts);
        (x, y, test_x)
    });
    Tensor::write_safetensors(&[("x", &x), ("y", &y), ("test_x", &test_x)], dir.join("batches.safetensors")).unwrap();

    let options = ModelOptions { network, ..ModelOptions::default() };
    let mut learner = Learner::with_options(method, &[SEED], &options, lr, Device::Cpu).unwrap();
    learner.set_float_kind(kind);
    tch::set_num_threads(threads);
    let init = model_state(&learner.vs, 0);
    Tensor::write_safetensors(&init, dir.join("init.safetensors")).unwrap();

    let mut losses = Vec::new();
    for t in 0..steps {
        let xt = x.get(t).to_kind(kind).unsqueeze(0);
        let (loss, _) = learner.step(&xt, &y.get(t).unsqueeze(0));
        losses.push(loss.get(0));
    }
    let mut ours: HashMap<String, Tensor> = HashMap::new();
    ours.insert("losses".into(), Tensor::stack(&losses, 0));
    let test_in = shared_input(&test_x.to_kind(kind), 1);
    tch::no_grad(|| {
        for (name, stats) in [("logits_batch", EvalStats::Batch), ("logits_running", EvalStats::Running)] {
            ours.insert(name.into(), learner.model.forward(&test_in, Pass::Eval(stats)).logits.get(0));
        }
    });
    for (name, t) in model_state(&learner.vs, 0) {
        ours.insert(format!("final.{name}"), t);
    }
    Case { dir, network, method: method.name(), lr, kind, threads, ours }
}

/// Whether two tensors hold the same values (shapes and kinds included).
fn identical(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.kind() == b.kind() && a.equal(b)
}

/// What differs between homeonorm's results and PyTorch's: losses, every final
/// parameter and buffer, and both evaluation modes' logits.
fn differences(ours: &HashMap<String, Tensor>, theirs: &HashMap<String, Tensor>) -> Vec<String> {
    let mut names: Vec<&String> = ours.keys().collect();
    names.sort();
    let mut differing = Vec::new();
    for name in names {
        match theirs.get(name) {
            None => differing.push(format!("{name} (PyTorch has none)")),
            Some(reference) if !identical(&ours[name], reference) => {
                let gap = (&ours[name].to_kind(Kind::Double) - reference.to_kind(Kind::Double)).abs().max();
                differing.push(format!("{name} (by up to {:.1e})", gap.double_value(&[])));
            }
            Some(_) => {}
        }
    }
    differing
}

#[test]
fn training_matches_pytorch_step_by_step() {
    let root = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut references = Vec::new();
    for network in Network::all() {
        let first = cases.len();
        for (kind, lr) in settings(network) {
            for threads in THREADS {
                for method in methods_of(network) {
                    cases.push(prepare(root.path(), network, method, lr, kind, threads));
                }
            }
        }
        // PyTorch's side of this network's cases, while ours prepares the next network's.
        let dirs: Vec<PathBuf> = cases[first..].iter().map(|c| c.dir.clone()).collect();
        references.push(start_reference("train", &dirs));
    }
    // LeNet5's 8 settings (2 precisions, 2 rates, 2 thread counts), the other networks' 2.
    let expected = 8 * METHODS.len() + 2 * (3 * METHODS.len() - 1);
    assert_eq!(cases.len(), expected, "every network with every method it takes");
    references.into_iter().for_each(common::Reference::finish);

    let mut failures = Vec::new();
    for case in &cases {
        let theirs = read_named(&case.dir.join("torch.safetensors"));
        let differing = differences(&case.ours, &theirs);
        let verdict = if differing.is_empty() { "identical".to_string() } else { differing.join(", ") };
        let what = format!(
            "{:<9} {:<17} lr {:<6} {} {} thread(s)",
            case.network,
            case.method,
            case.lr,
            kind_name(case.kind),
            case.threads
        );
        println!("{what}: {verdict}");
        if !differing.is_empty() {
            failures.push(format!("{what}: {verdict}"));
        }
    }
    assert!(failures.is_empty(), "homeonorm and PyTorch differ:\n{}", failures.join("\n"));
}

#[test]
fn initialisation_is_pytorchs_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut ours = Vec::new();
    for network in Network::all() {
        for method in methods_of(network) {
            let what = format!("{network} {}", method.name());
            let dir = root.path().join(what.replace(' ', "-"));
            std::fs::create_dir_all(&dir).unwrap();
            let case = serde_json::json!({"model": network.name(), "method": method.name(), "seed": 42});
            std::fs::write(dir.join("case.json"), case.to_string()).unwrap();
            let options = ModelOptions { network, ..ModelOptions::default() };
            let learner = Learner::with_options(method, &[42], &options, 1e-3, Device::Cpu).unwrap();
            ours.push((what, model_state(&learner.vs, 0)));
            dirs.push(dir);
        }
    }
    run_reference("init", &dirs);
    for (dir, (what, state)) in dirs.iter().zip(&ours) {
        let theirs = read_named(&dir.join("torch_init.safetensors"));
        assert_eq!(theirs.len(), state.len(), "{what}: tensor count");
        for (name, t) in state {
            let reference = &theirs[name];
            // Shapes and dtypes first: a broadcasting difference would pass a wrong shape.
            assert_eq!((t.size(), t.kind()), (reference.size(), reference.kind()), "{what}: {name}");
            assert!(t.equal(reference), "{what}: {name} differs from PyTorch's initialisation");
        }
    }
}

#[test]
fn a_method_no_layer_of_a_network_takes_is_refused_by_name() {
    let mlp = ModelOptions { network: Network::Mlp, ..ModelOptions::default() };
    use homeonorm::engine::norm::method_by_name;
    let instance_norm = method_by_name("instance-norm").unwrap();
    let e = check_method(instance_norm, &mlp).unwrap_err();
    assert_eq!(e.key, "model");
    assert!(e.message.contains("instance-norm") && e.message.contains("mlp"), "{e}");
    // Without its conv layers ResNet-20 has no hidden layer a method could take; LeNet5
    // none that instance-norm could.
    let without_conv = |network| ModelOptions { network, normalize_conv: false, ..ModelOptions::default() };
    let e = check_method(method_by_name("batch-norm").unwrap(), &without_conv(Network::Resnet20)).unwrap_err();
    assert_eq!(e.key, "normalize_conv", "{e}");
    assert!(check_method(instance_norm, &without_conv(Network::Lenet5)).is_err());
    assert!(check_method(method_by_name("batch-norm").unwrap(), &without_conv(Network::Lenet5)).is_ok());
    // Every other method runs on every network; the conv networks take all 15.
    assert_eq!(methods_of(Network::Mlp).len(), METHODS.len() - 1);
    for network in [Network::Lenet5, Network::PlainCnn, Network::Resnet20] {
        assert_eq!(methods_of(network).len(), METHODS.len(), "{network}");
    }
}
