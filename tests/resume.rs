//! A run taken up from a checkpoint ends bit for bit as if never stopped: the engine's
//! part. For every network with every method it takes, in float32 and float64, a seed
//! batch of two models at two learning rates is stopped after K steps, its models'
//! checkpoints written to a file and read back into a fresh learner, and trained on: its
//! parameters, buffers and Adam moments after K + M steps are those of the same batch
//! never stopped. (`tests/faults.rs` does the same through `train` and `sweep`, files
//! and all.)

mod common;

use homeonorm::engine::data::batches::BatchSampler;
use homeonorm::engine::data::PixelStandardization;
use homeonorm::engine::learner::Learner;
use homeonorm::engine::model::{check_method, ModelOptions, Network};
use homeonorm::engine::norm::METHODS;
use std::collections::HashMap;
use tch::{Kind, Tensor};

const SEEDS: [u64; 2] = [3, 4];
const LEARNING_RATES: [f64; 2] = [0.003, 0.01];

/// Steps before and after the stop, and the batch: fewer and smaller for ResNet-20 and
/// in float64 (CI's time; the rules and Adam's state are in play from the second step).
fn plan(network: Network, kind: Kind) -> (usize, usize, usize) {
    match (network, kind) {
        (Network::Resnet20, _) => (2, 2, 4),
        (_, Kind::Double) => (3, 3, 8),
        _ => (4, 4, 16),
    }
}

fn learner(network: Network, method: &'static dyn homeonorm::engine::norm::Method, kind: Kind) -> Learner {
    let options = ModelOptions { network, ..ModelOptions::default() };
    let mut learner =
        Learner::with_learning_rates(method, &SEEDS, &options, &LEARNING_RATES, tch::Device::Cpu).unwrap();
    learner.set_float_kind(kind);
    learner
}

fn train(learner: &mut Learner, sampler: &mut BatchSampler, data: &homeonorm::runs::train::RunData, steps: usize) {
    let normalization = PixelStandardization::default();
    for _ in 0..steps {
        let (images, labels) = sampler.next_batch(&data.train);
        let _ = learner.step(&normalization.apply(&images).to_kind(learner.float_kind()), &labels);
    }
}

/// Every method `network` takes, in both precisions: stopped, taken up, compared.
fn taken_up_from_its_checkpoint_ends_as_if_never_stopped(network: Network) {
    tch::set_num_threads(1);
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let mut differing = Vec::new();
    let mut cases = 0;
    let options = ModelOptions { network, ..ModelOptions::default() };
    for method in METHODS.iter().copied().filter(|m| check_method(*m, &options).is_ok()) {
        for kind in [Kind::Float, Kind::Double] {
            let (before, after, batch) = plan(network, kind);
            let case = format!("{network} {} {kind:?}", method.name());
            cases += 1;

            let mut whole = learner(network, method, kind);
            let mut sampler = BatchSampler::chacha8(&data.train, &SEEDS, batch);
            train(&mut whole, &mut sampler, &data, before + after);

            let mut stopped = learner(network, method, kind);
            let mut sampler = BatchSampler::chacha8(&data.train, &SEEDS, batch);
            train(&mut stopped, &mut sampler, &data, before);
            let file = root.path().join("checkpoint.safetensors");
            let states: Vec<HashMap<String, Tensor>> = (0..SEEDS.len() as i64)
                .map(|s| {
                    let tensors = stopped.model_checkpoint(s);
                    Tensor::write_safetensors(&tensors, &file).unwrap();
                    Tensor::read_safetensors(&file).unwrap().into_iter().collect()
                })
                .collect();
            let steps = stopped.steps();
            drop(stopped);

            let mut resumed = learner(network, method, kind);
            resumed.restore(steps, &states).unwrap_or_else(|e| panic!("{case}: {e}"));
            let mut sampler = BatchSampler::chacha8(&data.train, &SEEDS, batch);
            sampler.skip(before);
            train(&mut resumed, &mut sampler, &data, after);

            assert_eq!(resumed.steps(), whole.steps(), "{case}");
            for s in 0..SEEDS.len() as i64 {
                for ((name, a), (_, b)) in whole.model_checkpoint(s).iter().zip(resumed.model_checkpoint(s)) {
                    if !(a.size() == b.size() && a.equal(&b)) {
                        differing.push(format!("{case}, model {s}: {name}"));
                    }
                }
            }
        }
    }
    // (every method but one, at most, is taken by each network)
    assert!(cases >= 2 * (METHODS.len() - 1), "{network}: every method it takes, in both precisions ({cases})");
    assert!(differing.is_empty(), "taken up from a checkpoint, these differ:\n{}", differing.join("\n"));
}

// One test per network, so that the test harness runs them side by side.
#[test]
fn a_lenet5_seed_batch_taken_up_from_its_checkpoint_ends_as_if_never_stopped() {
    taken_up_from_its_checkpoint_ends_as_if_never_stopped(Network::Lenet5);
}

#[test]
fn an_mlp_seed_batch_taken_up_from_its_checkpoint_ends_as_if_never_stopped() {
    taken_up_from_its_checkpoint_ends_as_if_never_stopped(Network::Mlp);
}

#[test]
fn a_plain_cnn_seed_batch_taken_up_from_its_checkpoint_ends_as_if_never_stopped() {
    taken_up_from_its_checkpoint_ends_as_if_never_stopped(Network::PlainCnn);
}

#[test]
fn a_resnet20_seed_batch_taken_up_from_its_checkpoint_ends_as_if_never_stopped() {
    taken_up_from_its_checkpoint_ends_as_if_never_stopped(Network::Resnet20);
}

/// The tests above cover every network: a network added to `Network` stops this match
/// from compiling until it has its own test.
#[test]
fn every_network_has_its_resume_test() {
    for network in Network::all() {
        match network {
            Network::Lenet5 | Network::Mlp | Network::PlainCnn | Network::Resnet20 => {}
        }
    }
}

#[test]
fn a_checkpoint_of_another_model_is_refused_naming_the_tensor() {
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let batch_norm = METHODS.iter().copied().find(|m| m.name() == "batch-norm").unwrap();
    let vanilla = METHODS.iter().copied().find(|m| m.name() == "vanilla").unwrap();
    let mut trained = learner(Network::Lenet5, vanilla, Kind::Float);
    let mut sampler = BatchSampler::chacha8(&data.train, &SEEDS, 8);
    train(&mut trained, &mut sampler, &data, 2);
    let states: Vec<HashMap<String, Tensor>> =
        (0..SEEDS.len() as i64).map(|s| trained.model_checkpoint(s).into_iter().collect()).collect();
    let error = learner(Network::Lenet5, batch_norm, Kind::Float).restore(2, &states).unwrap_err();
    assert!(error.contains("no `var/") && error.contains(".norm."), "{error}");
    let error = learner(Network::Lenet5, vanilla, Kind::Double).restore(2, &states).unwrap_err();
    assert!(error.contains("Float") && error.contains("Double"), "{error}");
}
