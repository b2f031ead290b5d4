//! Adaptive firing thresholds (Bienenstock, Cooper & Munro 1982; Turrigiano 2011): a
//! neuron whose recent activity stays above its target raises its threshold, one
//! below lowers it. y = ReLU(z − θ) with one θ per unit (starting at 0: vanilla),
//! not trained by the loss; after each training step θ ← θ + η (p̂ − p*), p̂ the
//! unit's activation probability on that step's batch, p* the target rate, η the
//! setting `threshold_rate`. Needs no batch statistics at test time.

use super::{per_unit_like_z, LayerSpec, Method, MethodLayer, Pass, RuleOperand, RuleSetting};
use crate::engine::units::activation_prob;
use tch::{nn, Tensor};

pub struct AdaptiveThreshold;

/// The rules' choices, shared with homeostatic scaling (one `config.json` entry).
pub(crate) const AFTER_STEP_RULES_CHOICE: &str = "adaptive-threshold and homeostatic-scaling update theta, and p-bar then alpha, under no_grad after each optimiser step, from the activation probability of the batch that step trained on (share of outputs > 0, x positions in a conv layer); theta starts at 0, alpha at 1, p-bar at the target rate; none of them is a parameter";

struct AdaptiveThresholdLayer {
    theta: Tensor,
    rate: RuleOperand,
    target: RuleOperand,
}

impl MethodLayer for AdaptiveThresholdLayer {
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        z - per_unit_like_z(&self.theta, z)
    }
    fn after_step(&self, output: &Tensor) {
        let step = self.rate.multiplying(&self.target.subtracted_from(&activation_prob(output, output.kind())));
        let _ = self.theta.shallow_clone().g_add_(&step);
    }
}

impl Method for AdaptiveThreshold {
    fn method_settings(&self) -> &'static [&'static str] {
        &["target_rate", "threshold_rate"]
    }
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("after_step_rules", AFTER_STEP_RULES_CHOICE))
    }
    fn name(&self) -> &'static str {
        "adaptive-threshold"
    }
    fn summary(&self) -> &'static str {
        "adaptive firing thresholds: y = ReLU(w·x + b − θ); after each step θ ← θ + η(p̂ − p*)"
    }
    fn colour(&self) -> [u8; 3] {
        [214, 39, 40]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("theta", "theta")]
    }
    fn table1_row(&self) -> &'static str {
        "single neuron: firing thresholds (intrinsic plasticity)"
    }
    fn rule_settings(&self) -> &'static [RuleSetting] {
        &[RuleSetting::TargetRate, RuleSetting::ThresholdRate]
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let options = &layer.options;
        Box::new(AdaptiveThresholdLayer {
            theta: path.zeros_no_train("theta", &layer.unit_shape()),
            rate: options.threshold_rate.operand(layer.models, path.device()),
            target: options.target_rate.operand(layer.models, path.device()),
        })
    }
}
