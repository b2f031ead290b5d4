//! Synaptic scaling as the brain does it (Turrigiano 2008): a neuron scales all its
//! incoming synapses by one factor, down when its average activity stays above its
//! target rate, up when below — a slow, local rule, without batches or gradients.
//! w̃ = α·w with one α per unit (starting at 1: vanilla), not trained by the loss;
//! z = w̃·x + b, y = ReLU(z), no mean subtraction. After each training step
//! p̄ ← p̄ + (p̂ − p̄)/window (p̂ the unit's activation probability on the step's
//! batch, p̄ starting at p*), then α ← α (1 + η (p* − p̄)). Needs no batch
//! statistics at test time.

use super::{scale_rows, LayerSpec, Method, MethodLayer, RuleOperand, RuleSetting};
use crate::engine::units::activation_prob;
use tch::{nn, Tensor};

pub struct HomeostaticScaling;

struct HomeostaticScalingLayer {
    alpha: Tensor,
    /// p̄ per unit.
    average_rate: Tensor,
    rate: RuleOperand,
    target: RuleOperand,
    window: f64,
}

impl MethodLayer for HomeostaticScalingLayer {
    fn effective_weight(&self, weight: &Tensor) -> Tensor {
        scale_rows(weight, &self.alpha)
    }
    fn alpha(&self) -> Option<Tensor> {
        Some(self.alpha.shallow_clone())
    }
    fn after_step(&self, output: &Tensor) {
        let memory = 1.0 - 1.0 / self.window;
        let mut average = self.average_rate.shallow_clone();
        let _ = average.g_mul_scalar_(memory);
        let _ = average.g_add_(&(activation_prob(output, output.kind()) / self.window));
        let factor = self.rate.multiplying(&self.target.added_to(&-&average)) + 1.0;
        let _ = self.alpha.shallow_clone().g_mul_(&factor);
    }
}

impl Method for HomeostaticScaling {
    fn method_settings(&self) -> &'static [&'static str] {
        &["target_rate", "scaling_rate", "rate_window"]
    }
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("after_step_rules", super::adaptive_threshold::AFTER_STEP_RULES_CHOICE))
    }
    fn name(&self) -> &'static str {
        "homeostatic-scaling"
    }
    fn summary(&self) -> &'static str {
        "synaptic scaling by a local rule: y = ReLU(α·w·x + b); after each step α ← α(1 + η(p* − p̄))"
    }
    fn colour(&self) -> [u8; 3] {
        [255, 0, 255]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("alpha", "alpha"), ("average_rate", "average_rate")]
    }
    fn table1_row(&self) -> &'static str {
        "synaptic weights: homeostatic synaptic scaling, the brain's rule"
    }
    fn rule_settings(&self) -> &'static [RuleSetting] {
        &[RuleSetting::TargetRate, RuleSetting::ScalingRate]
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let options = &layer.options;
        let target = options.target_rate.operand(layer.models, path.device());
        let mut average_rate = path.zeros_no_train("average_rate", &layer.unit_shape());
        tch::no_grad(|| target.fill(&mut average_rate));
        Box::new(HomeostaticScalingLayer {
            alpha: path.ones_no_train("alpha", &layer.unit_shape()),
            average_rate,
            rate: options.scaling_rate.operand(layer.models, path.device()),
            target,
            window: options.rate_window as f64,
        })
    }
}
