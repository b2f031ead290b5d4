//! The paper's homeostasis measures (section 4.1 and 4.3), per unit and per layer.
//!
//! Across units of a layer, "± std" is the population standard deviation (numpy's
//! default, as the paper's figures most likely used); across seeds, in the report,
//! it is the sample standard deviation (n − 1).

use crate::engine::units::{activation_prob, stat_dims};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// H(p) = −p log₂ p − (1−p) log₂(1−p), in bits; 0 at p = 0 or 1, 1 at p = 0.5.
pub fn binary_entropy(p: f64) -> f64 {
    let term = |q: f64| if q <= 0.0 { 0.0 } else { -q * q.log2() };
    term(p) + term(1.0 - p)
}

/// Mean and population standard deviation; NaN for no values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Mean and sample standard deviation (n − 1); the std is NaN for fewer than 2 values.
pub fn mean_sample_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let (mean, pop) = mean_std(values);
    if n < 2 {
        return (mean, f64::NAN);
    }
    (mean, pop * (n as f64 / (n as f64 - 1.0)).sqrt())
}

/// Coefficient of variation across values: population std / mean.
pub fn coefficient_of_variation(values: &[f64]) -> f64 {
    let (mean, std) = mean_std(values);
    std / mean
}

/// One hidden unit's measures on the test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitStats {
    pub layer: String,
    pub unit: usize,
    /// Fraction of inputs (× positions, for a conv channel) with output > 0.
    pub activation_prob: f64,
    /// Binary entropy of `activation_prob`, in bits.
    pub entropy: f64,
    /// Mean output over the inputs on which the unit is active; empty if never active.
    pub mean_active_value: Option<f64>,
    /// Learned α, for methods that have one.
    pub alpha: Option<f64>,
}

/// Builds one layer's unit stats from per-unit counts gathered over a test set.
/// `active[u]`: observations with output > 0; `active_sum[u]`: the sum of those
/// outputs; `observations`: inputs (× positions) seen per unit.
pub fn unit_stats(
    layer: &str,
    active: &[f64],
    active_sum: &[f64],
    observations: f64,
    alpha: Option<&[f64]>,
) -> Vec<UnitStats> {
    (0..active.len())
        .map(|u| {
            let p = active[u] / observations;
            UnitStats {
                layer: layer.to_string(),
                unit: u,
                activation_prob: p,
                entropy: binary_entropy(p),
                mean_active_value: (active[u] > 0.0).then(|| active_sum[u] / active[u]),
                alpha: alpha.map(|a| a[u]),
            }
        })
        .collect()
}

/// One hidden layer's unit measures on a test set, for every model of a seed batch,
/// gathered one batch at a time ([`update`](Self::update)) and turned into
/// [`UnitStats`] at the end ([`finish`](Self::finish)). Counts stay on the device, in f64.
pub struct UnitAccumulator {
    layer: String,
    /// Observations with output > 0, per model and unit: `[S, U]`.
    active: Tensor,
    /// The sum of those outputs: `[S, U]`.
    active_sum: Tensor,
    /// Inputs (× positions) seen per unit.
    observations: f64,
}

impl UnitAccumulator {
    pub fn new(layer: &str, models: i64, units: i64, device: Device) -> Self {
        let zeros = || Tensor::zeros([models, units], (Kind::Double, device));
        UnitAccumulator { layer: layer.to_string(), active: zeros(), active_sum: zeros(), observations: 0.0 }
    }

    /// Adds one batch of the layer's post-ReLU activations, `[S, B, U, …]`.
    pub fn update(&mut self, hidden: &Tensor) {
        let size = hidden.size();
        let dims = stat_dims(hidden);
        let y = hidden.to_kind(Kind::Double);
        self.active += y.gt(0.0).to_kind(Kind::Double).sum_dim_intlist(dims.as_slice(), false, Kind::Double);
        // The active outputs' sum (an activation like SELU also gives negative ones).
        self.active_sum += y.relu().sum_dim_intlist(dims.as_slice(), false, Kind::Double);
        self.observations += dims.iter().map(|&d| size[d as usize]).product::<i64>() as f64;
    }

    /// Every model's unit stats; `alpha` is the layer's learned α, `[S, U]`, if the
    /// method has one.
    pub fn finish(&self, alpha: Option<&Tensor>) -> Vec<Vec<UnitStats>> {
        let host = |t: &Tensor, s: i64| Vec::<f64>::try_from(t.get(s).to_kind(Kind::Double).to_device(Device::Cpu));
        (0..self.active.size()[0])
            .map(|s| {
                let alpha = alpha.map(|a| host(a, s).expect("α is a float tensor"));
                unit_stats(
                    &self.layer,
                    &host(&self.active, s).expect("counts"),
                    &host(&self.active_sum, s).expect("sums"),
                    self.observations,
                    alpha.as_deref(),
                )
            })
            .collect()
    }
}

/// The activation probabilities of the training batch, every model's, recorded at
/// some iterations (Figure 2B's heat map).
pub struct ActivityRecord {
    /// Measured layers: name and units per model.
    layers: Vec<(String, i64)>,
    /// Per recorded iteration: `[S, ΣU]`, the layers' units one after another.
    rows: Vec<(usize, Tensor)>,
}

impl ActivityRecord {
    pub fn new(layers: Vec<(String, i64)>) -> Self {
        ActivityRecord { layers, rows: Vec::new() }
    }

    /// Records one training batch's activations (`[S, B, U, …]` per measured layer).
    pub fn record(&mut self, iteration: usize, hidden: &[&Tensor]) {
        let probs: Vec<Tensor> = hidden.iter().map(|h| activation_prob(&h.detach(), Kind::Float)).collect();
        self.rows.push((iteration, Tensor::cat(&probs, 1)));
    }

    /// The iterations recorded, and model s's rows as one tensor `[rows, ΣU]` (`None`
    /// before the first): what a checkpoint keeps.
    pub fn model_rows(&self, s: i64) -> (Vec<usize>, Option<Tensor>) {
        let iterations = self.rows.iter().map(|(i, _)| *i).collect();
        let rows: Vec<Tensor> = self.rows.iter().map(|(_, r)| r.get(s)).collect();
        (iterations, (!rows.is_empty()).then(|| Tensor::stack(&rows, 0)))
    }

    /// Takes up the rows a checkpoint kept: at `iterations`, each model's `[rows, ΣU]`.
    pub fn restore(&mut self, iterations: &[usize], per_model: &[Tensor]) {
        self.rows = iterations
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, Tensor::stack(&per_model.iter().map(|m| m.get(k as i64)).collect::<Vec<_>>(), 0)))
            .collect();
    }

    /// Model s's rows before iteration `until` (all if `None`): (iteration, layer, unit, probability).
    pub fn rows(&self, s: i64, until: Option<usize>) -> Vec<(usize, &str, usize, f64)> {
        let mut out = Vec::new();
        for (iteration, probs) in self.rows.iter().filter(|(i, _)| until.is_none_or(|u| *i < u)) {
            let values =
                Vec::<f64>::try_from(probs.get(s).to_kind(Kind::Double).to_device(Device::Cpu)).expect("probabilities");
            let mut offset = 0;
            for (layer, units) in &self.layers {
                for unit in 0..*units as usize {
                    out.push((*iteration, layer.as_str(), unit, values[offset + unit]));
                }
                offset += *units as usize;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_probabilities() {
        assert_eq!(binary_entropy(0.5), 1.0);
        assert_eq!(binary_entropy(0.0), 0.0);
        assert_eq!(binary_entropy(1.0), 0.0);
        // H(0.25) = 0.25·2 + 0.75·log2(4/3) = 0.811278...
        assert!((binary_entropy(0.25) - 0.8112781244591328).abs() < 1e-12);
    }

    #[test]
    fn cv_and_std_of_a_known_vector() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]; // mean 5, population std 2
        assert_eq!(mean_std(&v), (5.0, 2.0));
        assert_eq!(coefficient_of_variation(&v), 0.4);
        let (m, s) = mean_sample_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - 1.2909944487358056).abs() < 1e-12);
        assert!(mean_sample_std(&[3.0]).1.is_nan());
    }

    #[test]
    fn units_never_active_always_active_and_half_active() {
        // unit 0 never active, unit 1 always active (values sum to 30 over 10), unit 2 active half the time
        let units = unit_stats("fc1", &[0.0, 10.0, 5.0], &[0.0, 30.0, 5.0], 10.0, Some(&[0.5, 1.0, 1.5]));
        assert_eq!(units[0].activation_prob, 0.0);
        assert_eq!(units[0].entropy, 0.0);
        assert_eq!(units[0].mean_active_value, None);
        assert_eq!(units[1].activation_prob, 1.0);
        assert_eq!(units[1].entropy, 0.0);
        assert_eq!(units[1].mean_active_value, Some(3.0));
        assert_eq!(units[2].entropy, 1.0);
        assert_eq!(units[2].mean_active_value, Some(1.0));
    }

    #[test]
    fn activity_record_keeps_each_models_rows_until_it_diverged() {
        let mut record = ActivityRecord::new(vec![("fc1".into(), 2), ("fc2".into(), 1)]);
        for iteration in [10, 20] {
            let fc1 = Tensor::from_slice(&[1f32, 0., 1., 1., /* model 1 */ 0., 0., 0., 2.]).view([2, 2, 2]);
            let fc2 = Tensor::from_slice(&[0f32, 3., /* model 1 */ 1., 1.]).view([2, 2, 1]);
            record.record(iteration, &[&fc1, &fc2]);
        }
        assert_eq!(
            record.rows(0, None),
            vec![
                (10, "fc1", 0, 1.0),
                (10, "fc1", 1, 0.5),
                (10, "fc2", 0, 0.5),
                (20, "fc1", 0, 1.0),
                (20, "fc1", 1, 0.5),
                (20, "fc2", 0, 0.5)
            ]
        );
        assert_eq!(record.rows(1, Some(20)), vec![(10, "fc1", 0, 0.0), (10, "fc1", 1, 0.5), (10, "fc2", 0, 1.0)]);
    }

    #[test]
    fn unit_accumulator_over_two_batches_equals_one_pass_by_hand() {
        // S = 2 models, U = 2 units; two test batches of 2 and 1 inputs.
        let first = Tensor::from_slice(&[1f32, 0., 3., 0., /* model 1 */ 0., 0., 0., 2.]).view([2, 2, 2]);
        let second = Tensor::from_slice(&[2f32, 0., /* model 1 */ 0., 4.]).view([2, 1, 2]);
        let mut acc = UnitAccumulator::new("fc1", 2, 2, Device::Cpu);
        acc.update(&first);
        acc.update(&second);
        let alpha = Tensor::from_slice(&[0.5f32, 1.5, 2.0, 1.0]).view([2, 2]);
        let stats = acc.finish(Some(&alpha));
        // model 0: unit 0 active on 3 of 3 inputs (1 + 3 + 2), unit 1 never
        assert_eq!(stats[0][0].activation_prob, 1.0);
        assert_eq!(stats[0][0].mean_active_value, Some(2.0));
        assert_eq!((stats[0][1].activation_prob, stats[0][1].mean_active_value), (0.0, None));
        // model 1: unit 0 never, unit 1 on 2 of 3 inputs (2 + 4)
        assert_eq!(stats[1][0].mean_active_value, None);
        assert_eq!(stats[1][1].activation_prob, 2.0 / 3.0);
        assert_eq!(stats[1][1].mean_active_value, Some(3.0));
        assert_eq!(stats[1][1].entropy, binary_entropy(2.0 / 3.0));
        assert_eq!((stats[0][1].alpha, stats[1][0].alpha), (Some(1.5), Some(2.0)));
        assert!(stats.iter().flatten().all(|u| u.layer == "fc1"));
    }
}
