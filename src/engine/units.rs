//! What a unit is, for the methods' statistics, their rules and the measures alike: a
//! neuron of an fc layer, a channel of a conv layer, over a batch of activations laid
//! out `[S, B, U, …]` (models, batch, units, positions). Below both `norm` and
//! `metrics`, which each use it.

use tch::{Kind, Tensor};

/// The dims that a unit's statistics are taken over: every dim of `z` (`[S, B, U, …]`)
/// but the model (0) and the unit (2).
pub fn stat_dims(z: &Tensor) -> Vec<i64> {
    (0..z.dim() as i64).filter(|&d| d != 0 && d != 2).collect()
}

/// Activation probability per unit of each model over one batch: the fraction of
/// inputs (× positions, for a conv channel) with output > 0, `[S, B, U, …]` → `[S, U]`,
/// in `kind`. Bit for bit the scripts' `(y > 0).to(kind).mean(dims)`: the comparison
/// writes its 0s and 1s straight into a `kind` tensor (`torch.gt(y, 0, out=…)`), which
/// skips the bool tensor and its conversion, two thirds of the time (BENCHMARKS.md).
pub fn activation_prob(hidden: &Tensor, kind: Kind) -> Tensor {
    let dims = stat_dims(hidden);
    let above = Tensor::empty(hidden.size(), (kind, hidden.device()));
    hidden.gt_scalar_out(&above, 0.0).mean_dim(dims.as_slice(), false, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn activation_prob_per_model_and_unit_over_batch_and_positions() {
        // S = 2 models, B = 2 inputs, U = 3 channels of 1×2 positions.
        let y = Tensor::from_slice(&[
            1f32, 0., 0., 0., 2., 2., //
            1., 1., 0., 0., 0., 3., // model 0
            0., 0., 0., 0., 0., 0., //
            5., 0., 5., 0., 5., 0., // model 1
        ])
        .view([2, 2, 3, 1, 2]);
        let p = Vec::<f32>::try_from(activation_prob(&y, Kind::Float).view([-1])).unwrap();
        assert_eq!(p, vec![0.75, 0.0, 0.75, 0.25, 0.25, 0.25]);
    }

    #[test]
    fn activation_prob_is_the_scripts_comparison_and_mean_bit_for_bit() {
        // Negative outputs (SELU), zeros of both signs, NaN (a diverged model), infinities.
        let awkward = Tensor::from_slice(&[-1.5f64, -0.0, 0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-40]);
        for kind in [Kind::Float, Kind::Double] {
            // The script's reduction dims written out (batch and positions), not stat_dims.
            for (shape, dims) in [(vec![3i64, 32, 6, 7, 7], vec![1i64, 3, 4]), (vec![3, 32, 120], vec![1])] {
                // Drawn under the generator's lock, as every test's draws are (a model's
                // initial weights in another test would otherwise change).
                let (y, at, which) = crate::engine::torch_rng::seeded(5, || {
                    let y = tch::Tensor::randn(shape.as_slice(), (kind, Device::Cpu));
                    // A third of the entries, anywhere (every unit gets some), made awkward.
                    let n = y.numel() as i64;
                    let at = Tensor::randint(n, [n / 3], (Kind::Int64, Device::Cpu));
                    let which = Tensor::randint(awkward.size()[0], [n / 3], (Kind::Int64, Device::Cpu));
                    (y, at, which)
                });
                let n = y.numel() as i64;
                let y = y
                    .view([-1])
                    .index_put(&[Some(at.shallow_clone())], &awkward.index_select(0, &which).to_kind(kind), false)
                    .view(shape.as_slice());
                let placed = Tensor::zeros([n], (Kind::Bool, Device::Cpu))
                    .index_put(&[Some(at)], &Tensor::from(true), false)
                    .view(shape.as_slice());
                let per_unit = placed.transpose(0, 2).reshape([shape[2], -1]).any_dim(1, false);
                assert!(Vec::<bool>::try_from(per_unit).unwrap().iter().all(|&p| p), "every unit gets awkward values");
                let scripts = y.gt(0.0).to_kind(kind).mean_dim(dims.as_slice(), false, kind);
                let ours = activation_prob(&y, kind);
                assert_eq!(ours.kind(), kind);
                let bits = |t: &Tensor| {
                    Vec::<f64>::try_from(t.to_kind(Kind::Double).view([-1]))
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&ours), bits(&scripts), "{kind:?} {shape:?}");
            }
        }
    }
}
