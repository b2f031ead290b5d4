//! Whitening: decorrelated batch normalization (Huang et al. 2018). Per group of
//! `whitening_group_size` units (channels; the layer's last group may be smaller),
//! over the batch (× positions): centre, Σ = XcXcᵀ/m + εI, Σ = DΛDᵀ, and
//! ẑ = DΛ^{-1/2}Dᵀ·Xc (ZCA); then a per-unit affine γ, β. Running mean and running
//! whitening matrix (momentum 0.1) serve `--eval-stats running`; batch evaluation
//! whitens the test batch with its own statistics and leaves them. ε = 1e-5.
//! Gradients flow through the eigendecomposition (autograd), as in a PyTorch
//! transcription; `reference/networks.py`'s `Whitening` is the same algorithm, op for op.

use super::{
    affine, model_slices, per_model, per_unit, EvalStats, LayerSpec, Method, MethodLayer, Pass, RUNNING_MOMENTUM,
};
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;

pub struct Whitening;

struct WhiteningLayer {
    gamma: Tensor,
    beta: Tensor,
    /// `[S, U]`.
    running_mean: Tensor,
    /// `[S, U, U]`, block-diagonal by group (identity to start).
    running_wm: Tensor,
    group: i64,
}

impl WhiteningLayer {
    /// One model's layer: `z` `[B, C, …]`.
    fn whiten(&self, s: i64, z: &Tensor, pass: Pass) -> Tensor {
        let size = z.size();
        let c = size[1];
        let x = z.transpose(0, 1).reshape([c, -1]); // units × (batch · positions)
        let use_batch = pass != Pass::Eval(EvalStats::Running);
        let (running_mean, running_wm) = (self.running_mean.get(s), self.running_wm.get(s));
        let mut parts = Vec::new();
        let mut start = 0;
        while start < c {
            let g = self.group.min(c - start);
            let xg = x.narrow(0, start, g);
            let (xc, wm) = if use_batch {
                let mean = xg.mean_dim(1, true, None);
                let xc = &xg - &mean;
                let m = xc.size()[1] as f64;
                let cov = xc.matmul(&xc.tr()) / m + Tensor::eye(g, (z.kind(), z.device())) * EPS;
                let (eigenvalues, eigenvectors) = cov.f_linalg_eigh("L").unwrap_or_else(|_| {
                    // LAPACK gives up on a Σ that is not finite (a model whose weights the
                    // step before made NaN): where a PyTorch script stops with its
                    // LinAlgError, this model's outputs become NaN, so that its loss marks
                    // it diverged and the other models of a seed batch train on.
                    let nan = |shape: &[i64]| Tensor::full(shape, f64::NAN, (z.kind(), z.device()));
                    (nan(&[g]), nan(&[g, g]))
                });
                let wm = eigenvectors.matmul(&eigenvalues.rsqrt().diag(0)).matmul(&eigenvectors.tr());
                if pass == Pass::Train {
                    tch::no_grad(|| {
                        let mut rm = running_mean.narrow(0, start, g);
                        let _ = rm.g_mul_scalar_(1.0 - RUNNING_MOMENTUM);
                        let _ = rm.g_add_(&(mean.flatten(0, -1) * RUNNING_MOMENTUM));
                        let mut rw = running_wm.narrow(0, start, g).narrow(1, start, g);
                        let _ = rw.g_mul_scalar_(1.0 - RUNNING_MOMENTUM);
                        let _ = rw.g_add_(&(&wm * RUNNING_MOMENTUM));
                    });
                }
                (xc, wm)
            } else {
                let xc = &xg - running_mean.narrow(0, start, g).view([-1, 1]);
                (xc, running_wm.narrow(0, start, g).narrow(1, start, g))
            };
            parts.push(wm.matmul(&xc));
            start += g;
        }
        let mut unflat = vec![c, size[0]];
        unflat.extend(&size[2..]);
        let y = Tensor::cat(&parts, 0).reshape(unflat.as_slice()).transpose(0, 1).contiguous();
        let mut shape = vec![1i64; size.len()];
        shape[1] = -1;
        y * self.gamma.get(s).view(shape.as_slice()) + self.beta.get(s).view(shape.as_slice())
    }
}

impl MethodLayer for WhiteningLayer {
    fn normalize(&self, z: &Tensor, pass: Pass) -> Tensor {
        // One model: its activations as a view, so that the gradient reaching the layer
        // below keeps the strides it has in PyTorch (whitening's transposes leave it
        // non-contiguous, and the bias gradient sums it in that order). A seed batch's
        // gradients are stacked, contiguous: equal up to rounding.
        let zs = model_slices(z);
        per_model(zs.len(), |s| self.whiten(s as i64, &zs[s], pass))
    }
}

impl Method for Whitening {
    fn method_settings(&self) -> &'static [&'static str] {
        &["whitening_group_size"]
    }
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("whitening", "ZCA whitening per group of whitening_group_size units (a layer's last group smaller), Sigma = Xc Xc^T/m + 1e-5 I, gradients through eigh; running mean and whitening matrix with momentum 0.1 for eval_stats running; with eval_stats batch a test batch whitens itself (a single fc example: Sigma = 1e-5 I); a Sigma LAPACK cannot decompose (NaN weights) makes the model's outputs NaN, so its run is recorded as diverged"))
    }
    fn name(&self) -> &'static str {
        "whitening"
    }
    fn summary(&self) -> &'static str {
        "whitening (decorrelated batch norm): ẑ = Σ_B^(-1/2)(z − μ_B) per group of units; y = ReLU(γẑ + β)"
    }
    fn colour(&self) -> [u8; 3] {
        [127, 127, 127]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["gamma", "beta"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("gamma", "wh.weight"),
            ("beta", "wh.bias"),
            ("running_mean", "wh.running_mean"),
            ("running_wm", "wh.running_wm"),
        ]
    }
    fn table1_row(&self) -> &'static str {
        "layer of neurons: whitening"
    }
    /// `linalg_eigh` checks its result on the host (a CUDA synchronisation), which a
    /// CUDA graph cannot hold.
    fn captures_in_a_cuda_graph(&self) -> bool {
        false
    }
    fn exact_in_a_seed_batch(&self) -> bool {
        false // see `normalize`: a batched model's gradients reach the layer below contiguous
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let (gamma, beta) = affine(path, layer);
        let eye = Tensor::eye(layer.units, (tch::Kind::Float, path.device())).expand([layer.models, -1, -1], false);
        Box::new(WhiteningLayer {
            gamma,
            beta,
            running_mean: path.zeros_no_train("running_mean", &layer.unit_shape()),
            running_wm: path.add("running_wm", eye.contiguous(), false),
            group: layer.options.whitening_group_size,
        })
    }
}
