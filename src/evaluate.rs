//! Evaluation on the test set, in order, `test_batch_size` images at a time: every
//! model's accuracy and, at the end of a run, its measures.

use crate::data::Split;
use crate::learner::Learner;
use crate::metrics::{UnitAccumulator, UnitStats};
use crate::model::{shared_input, LayerKind, LeNet5};
use crate::norm::Pass;
use crate::settings::TrainSettings;
use tch::{Device, Kind, Tensor};

/// A hidden layer the measures are taken of: its place among the model's hidden
/// layers (and in `Forward::hidden`), name and units per model.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredLayer {
    pub index: usize,
    pub name: &'static str,
    pub units: i64,
}

/// The model's hidden layers that are measured: the fc layers, and the conv layers if asked.
pub fn measured_layers(model: &LeNet5, conv_measures: bool) -> Vec<MeasuredLayer> {
    model
        .hidden_layers()
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.kind == LayerKind::Fc || conv_measures)
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
    let model = &learner.model;
    let models = model.models();
    let device = learner.device();
    let layers = if with_units { measured_layers(model, settings.conv_measures) } else { Vec::new() };
    let mut accumulators: Vec<UnitAccumulator> =
        layers.iter().map(|l| UnitAccumulator::new(l.name, models, l.units, device)).collect();
    tch::no_grad(|| {
        let mut correct = Tensor::zeros([models], (Kind::Int64, device));
        let n = test.len() as i64;
        let mut start = 0;
        while start < n {
            let b = (settings.test_batch_size as i64).min(n - start);
            let images = settings.normalization.apply(&test.images.narrow(0, start, b)).to_kind(learner.float_kind());
            let labels = test.labels.narrow(0, start, b);
            let out = model.forward(&shared_input(&images, models), Pass::Eval(settings.eval_stats));
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
