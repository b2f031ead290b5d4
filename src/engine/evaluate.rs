//! Evaluation on the test set, in order, `test_batch_size` images at a time: every
//! model's accuracy and, at the end of a run, its measures.

use crate::engine::data::Split;
use crate::engine::learner::Learner;
use crate::engine::metrics::{UnitAccumulator, UnitStats};
use crate::engine::model::{shared_input, LayerKind, Model};
use crate::engine::norm::Pass;
use crate::engine::settings::TrainSettings;
use tch::{Device, Kind, Tensor};

/// A hidden layer the measures are taken of: its place among the model's hidden
/// layers (and in `Forward::hidden`), name and units per model.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredLayer {
    pub index: usize,
    pub name: &'static str,
    pub units: i64,
}

/// The model's hidden layers that are measured: the fc layers and the network's probe
/// layer ([`Network::probe`](crate::engine::model::Network::probe)), and the conv layers if asked.
pub fn measured_layers(model: &Model, conv_measures: bool) -> Vec<MeasuredLayer> {
    let probe = model.network().probe();
    model
        .hidden_layers()
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.kind == LayerKind::Fc || conv_measures || l.name == probe)
        .map(|(index, l)| MeasuredLayer { index, name: l.name, units: l.units })
        .collect()
}

/// One model's measured layers: name and unit stats.
pub type LayerUnits = Vec<(String, Vec<UnitStats>)>;

/// Per-model test results.
pub struct Evaluation {
    pub accuracy: Vec<f64>,
    /// Per model, per measured layer: unit stats (only when asked).
    pub units: Option<Vec<LayerUnits>>,
}

/// Evaluates every model on the whole test set, in order, `test_batch_size` at a time.
pub fn evaluate(learner: &Learner, test: &Split, settings: &TrainSettings, with_units: bool) -> Evaluation {
    if !with_units {
        if let Some(accuracy) = graphed_accuracy(learner, test, settings) {
            return Evaluation { accuracy, units: None };
        }
    }
    let model = &learner.model;
    let models = model.models();
    let device = learner.device();
    let layers = if with_units { measured_layers(model, settings.conv_measures) } else { Vec::new() };
    let mut accumulators: Vec<UnitAccumulator> =
        layers.iter().map(|l| UnitAccumulator::new(l.name, models, l.units, device)).collect();
    tch::no_grad(|| {
        let weights = model.applied_weights();
        let mut correct = Tensor::zeros([models], (Kind::Int64, device));
        let n = test.len() as i64;
        let mut start = 0;
        while start < n {
            let b = (settings.test_batch_size as i64).min(n - start);
            let images = settings.normalization.apply(&test.images.narrow(0, start, b)).to_kind(learner.float_kind());
            let labels = test.labels.narrow(0, start, b);
            let out = model.forward_with(&shared_input(&images, models), Pass::Eval(settings.eval_stats), &weights);
            let predicted = out.logits.argmax(-1, false); // [S, b]
            correct += predicted.eq_tensor(&labels.unsqueeze(0)).sum_dim_intlist(1, false, Kind::Int64);
            for (layer, acc) in layers.iter().zip(&mut accumulators) {
                acc.update(&out.hidden[layer.index]);
            }
            start += b;
        }
        let accuracy = Vec::<i64>::try_from(correct.to_device(Device::Cpu))
            .expect("accuracy")
            .into_iter()
            .map(|c| c as f64 / n as f64)
            .collect();
        let units = with_units.then(|| {
            let alphas = model.alphas();
            let per_layer: Vec<Vec<Vec<UnitStats>>> = layers
                .iter()
                .zip(&accumulators)
                .map(|(layer, acc)| acc.finish(alphas.iter().find(|(l, _)| *l == layer.name).map(|(_, a)| a)))
                .collect();
            (0..models as usize)
                .map(|s| {
                    layers.iter().zip(&per_layer).map(|(l, stats)| (l.name.to_string(), stats[s].clone())).collect()
                })
                .collect()
        });
        Evaluation { accuracy, units }
    })
}

/// Test batches one CUDA graph of [`graphed_accuracy`] runs.
const BATCHES_PER_GRAPH: i64 = 100;

/// Every model's accuracy as [`evaluate`] computes it, its test batches run by a CUDA
/// graph of [`BATCHES_PER_GRAPH`] batches, replayed (the batches left over run eagerly):
/// for many small batches (the final evaluation with one example a batch: 10,000 small
/// forward passes), where launching each kernel costs more than running it. `None`
/// where no graph is used (the CPU, a method whose forward waits for the host, too few
/// batches) or the capture failed.
fn graphed_accuracy(learner: &Learner, test: &Split, settings: &TrainSettings) -> Option<Vec<f64>> {
    let (b, n) = (settings.test_batch_size as i64, test.len() as i64);
    let chunks = n / b / BATCHES_PER_GRAPH;
    if !learner.capturable() || chunks == 0 {
        return None;
    }
    let model = &learner.model;
    let models = model.models();
    let device = learner.device();
    let pass = Pass::Eval(settings.eval_stats);
    tch::no_grad(|| {
        let weights = model.applied_weights();
        // The whole test set normalized at once: each pixel as a batch's normalization gives it.
        let images = settings.normalization.apply(&test.images).to_kind(learner.float_kind());
        let hits = |x: &Tensor, labels: &Tensor| {
            let out = model.forward_with(&shared_input(x, models), pass, &weights);
            out.logits.argmax(-1, false).eq_tensor(&labels.unsqueeze(0)).sum_dim_intlist(1, false, Kind::Int64)
        };
        // The graph's batch: b images from the position a device counter holds.
        let correct = Tensor::zeros([models], (Kind::Int64, device));
        let cursor = Tensor::zeros([1], (Kind::Int64, device));
        let offsets = Tensor::arange(b, (Kind::Int64, device));
        let graph_batch = || {
            let index = &cursor + &offsets;
            let counted = hits(&images.index_select(0, &index), &test.labels.index_select(0, &index));
            let _ = correct.shallow_clone().g_add_(&counted);
            let _ = cursor.shallow_clone().g_add_scalar_(b);
        };
        let mut graph = crate::engine::cuda_graph::CudaGraph::new().ok()?;
        let warm = graph.on_side_stream(|| drop(hits(&images.narrow(0, 0, b), &test.labels.narrow(0, 0, b))));
        let captured = warm.and_then(|()| {
            graph.capture(|| {
                for _ in 0..BATCHES_PER_GRAPH {
                    graph_batch();
                }
            })
        });
        if let Err(e) = captured {
            log::warn!("{e}: evaluating without a CUDA graph");
            return None;
        }
        for _ in 0..chunks {
            if let Err(e) = graph.replay() {
                log::warn!("{e}: evaluating without a CUDA graph");
                return None;
            }
        }
        let mut start = chunks * BATCHES_PER_GRAPH * b;
        while start < n {
            let size = b.min(n - start);
            let counted = hits(&images.narrow(0, start, size), &test.labels.narrow(0, start, size));
            let _ = correct.shallow_clone().g_add_(&counted);
            start += size;
        }
        let correct = Vec::<i64>::try_from(correct.to_device(Device::Cpu)).ok()?;
        Some(correct.into_iter().map(|c| c as f64 / n as f64).collect())
    })
}
