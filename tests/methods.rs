//! Properties of the methods and the model that need no PyTorch.

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::learner::Learner;
use homeonorm::engine::model::LayerShape;
use homeonorm::engine::model::{model_state, parameter_counts, shared_input};
use homeonorm::engine::norm::{
    method_by_name, EvalStats, LayerSpec, Method, MethodOptions, Pass, RuleSetting, DEFAULT_SCALING_RATE,
    DEFAULT_THRESHOLD_RATE, METHODS,
};
use homeonorm::engine::settings::TrainSettings;
use tch::{nn, Device, Kind, Tensor};

const VANILLA_PARAMETERS: i64 = 62006;

/// The parameters `method` declares for a hidden layer, with their sizes in one
/// model; none where it does not apply (instance-norm's fc layers are vanilla).
fn declared(method: &dyn Method, layer: &LayerShape) -> Vec<(&'static str, i64)> {
    let applies = layer.kind == homeonorm::engine::model::LayerKind::Conv || method.applies_to_fc();
    let mut sizes =
        if applies { method.parameter_sizes(&layer.spec(1, &MethodOptions::default())) } else { Vec::new() };
    sizes.sort();
    sizes
}

/// Normal draws from torch's generator under its lock: a draw from another test's
/// thread could otherwise land between a Learner's seeding and its initial weights.
fn random(shape: &[i64]) -> Tensor {
    homeonorm::engine::torch_rng::unseeded(|| Tensor::randn(shape, (Kind::Float, Device::Cpu)))
}

#[test]
fn parameter_counts_per_method() {
    // Every registered method: the vanilla network plus the parameters it declares.
    for method in METHODS {
        let name = method.name();
        let learner = Learner::new(*method, &[0], true, 1e-3, Device::Cpu).unwrap();
        let counts = parameter_counts(&learner.vs, 1);
        let total: i64 = counts.iter().map(|c| c.1).sum();
        let added: i64 =
            learner.model.hidden_layers().iter().flat_map(|l| declared(*method, l)).map(|(_, size)| size).sum();
        assert_eq!(total, VANILLA_PARAMETERS + added, "{name}: {counts:?}");
        assert!(
            counts.iter().all(|(n, _)| !n.starts_with("fc3.norm")),
            "{name} normalizes the output layer: {counts:?}"
        );
        let fc3: Vec<_> = counts.iter().filter(|(n, _)| n.starts_with("fc3")).collect();
        assert_eq!(fc3.len(), 2, "{name}: the output layer has weight and bias only");
    }
}

/// Every method module in `src/engine/norm/` is in the registry: a method written but
/// left out of `METHODS` would train nowhere and be tested by nothing.
#[test]
fn every_method_module_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/norm");
    let registry = std::fs::read_to_string(format!("{dir}/mod.rs")).unwrap();
    let start = registry.find("pub static METHODS").expect("METHODS in norm/mod.rs");
    let listed = &registry[start..start + registry[start..].find("];").unwrap()];
    let mut modules = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(module) = file.strip_suffix(".rs").filter(|m| *m != "mod") else { continue };
        modules += 1;
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let method = text
            .lines()
            .find_map(|l| l.strip_prefix("impl Method for ").and_then(|rest| rest.strip_suffix(" {")))
            .unwrap_or_else(|| panic!("{file}: no `impl Method for …`"));
        assert!(registry.contains(&format!("mod {module};")), "{file} is not a module of norm");
        assert!(listed.contains(&format!("&{method},")), "{method} ({file}) is not in METHODS");
    }
    assert_eq!(modules, METHODS.len(), "a registered method without its own module, or the other way round");
}

/// Everything a method needs is reached from the registry: a name and summary, a
/// colour of its own, the per-unit parameters it declares (and no others) in every
/// hidden layer, a PyTorch reference, and a line in the README's method table.
#[test]
fn every_registered_method_is_complete() {
    let root = env!("CARGO_MANIFEST_DIR");
    let reference = std::fs::read_to_string(format!("{root}/reference/networks.py")).unwrap();
    let start = reference.find("\nMETHODS = [").expect("METHODS in networks.py");
    let reference_methods = &reference[start..start + reference[start..].find(']').expect("METHODS' closing ]")];
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let mut problems = Vec::new();
    for (i, method) in METHODS.iter().enumerate() {
        let name = method.name();
        if name.is_empty() || method.summary().is_empty() {
            problems.push(format!("method {i}: a name and a summary"));
        }
        if METHODS[..i].iter().any(|m| m.name() == name) {
            problems.push(format!("{name}: registered twice"));
        }
        if !reference_methods.contains(&format!("\"{name}\"")) {
            problems.push(format!("{name}: not in reference/networks.py's METHODS (its PyTorch reference)"));
        }
        if !readme.lines().any(|l| l.starts_with(&format!("| {name} |"))) {
            problems.push(format!("{name}: no row in the README's method table"));
        }
        // Colours: far enough apart to tell methods apart in a legend.
        for other in &METHODS[..i] {
            let [a, b] = [method.colour(), other.colour()].map(|c| c.map(f64::from));
            let distance = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
            if distance < 60.0 {
                problems.push(format!(
                    "{name}: colour {:?} too close to {}'s {:?}",
                    method.colour(),
                    other.name(),
                    other.colour()
                ));
            }
        }
        // Rule settings: declared exactly when a changed value changes the state a step's
        // rules leave (a folder level, and a grid axis, for each one the method reads). The
        // buffers only: Adam's first steps turn rounding into ±lr, and a test running
        // meanwhile may change torch's thread count, and with it how a sum is split.
        let preset = TrainSettings::preset(DatasetKind::Cifar10, name.parse().unwrap());
        let buffers_after_a_step = |settings: &TrainSettings| {
            let mut learner =
                Learner::with_options(*method, &[0], &settings.model_options(), 1e-3, Device::Cpu).unwrap();
            // Fixed inputs, not torch's generator (other tests draw from it meanwhile).
            let x = Tensor::arange(8 * 3 * 32 * 32, (Kind::Float, Device::Cpu)).sin().view([1, 8, 3, 32, 32]);
            let labels = Tensor::arange(8, (Kind::Int64, Device::Cpu)).view([1, 8]);
            let _ = learner.step(&x, &labels);
            let mut buffers: Vec<(String, Tensor)> =
                learner.vs.variables().into_iter().filter(|(_, t)| !t.requires_grad()).collect();
            buffers.sort_by(|a, b| a.0.cmp(&b.0));
            buffers
        };
        let unchanged = buffers_after_a_step(&preset);
        for rule in RuleSetting::ALL {
            let mut changed = preset.clone();
            let far = match rule {
                RuleSetting::TargetRate => 0.1,
                RuleSetting::ThresholdRate => 1.0,
                RuleSetting::ScalingRate => 0.5,
            };
            changed.set_rule(rule, far);
            let reads = buffers_after_a_step(&changed)
                .iter()
                .zip(&unchanged)
                .any(|((_, a), (_, b))| !a.allclose(b, 1e-4, 1e-6, false));
            let declared = method.rule_settings().contains(&rule);
            if reads != declared {
                problems.push(format!(
                    "{name}: reads {} {reads}, declares it {declared} (Method::rule_settings)",
                    rule.name()
                ));
            }
        }
        // Method settings: one the method does not declare changes nothing of a step (its
        // runs stay done when it changes); its rule settings are among the declared ones.
        // The loss the forward pass gives and the buffers a step leaves (not the weights,
        // for the reason above).
        let loss_and_buffers = |settings: &TrainSettings| {
            let mut learner =
                Learner::with_options(*method, &[0], &settings.model_options(), 1e-3, Device::Cpu).unwrap();
            let x = Tensor::arange(8 * 3 * 32 * 32, (Kind::Float, Device::Cpu)).sin().view([1, 8, 3, 32, 32]);
            let labels = Tensor::arange(8, (Kind::Int64, Device::Cpu)).view([1, 8]);
            let (loss, _) = learner.step(&x, &labels);
            let mut all: Vec<(String, Tensor)> =
                learner.vs.variables().into_iter().filter(|(_, t)| !t.requires_grad()).collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all.push(("loss".into(), loss));
            all
        };
        let before = loss_and_buffers(&preset);
        let other_values = [
            ("groups", serde_json::json!(1)),
            ("whitening_group_size", serde_json::json!(8)),
            ("target_rate", serde_json::json!(0.1)),
            ("threshold_rate", serde_json::json!(1.0)),
            ("scaling_rate", serde_json::json!(0.5)),
            ("rate_window", serde_json::json!(3)),
            ("branch_size", serde_json::json!(7)),
        ];
        assert_eq!(
            other_values.each_ref().map(|v| v.0),
            homeonorm::engine::settings::METHOD_SETTINGS,
            "a value for each"
        );
        for (key, value) in other_values.iter().filter(|(k, _)| !method.method_settings().contains(k)) {
            let mut json = serde_json::to_value(&preset).unwrap();
            json[*key] = value.clone();
            let changed: TrainSettings = serde_json::from_value(json).unwrap();
            let after = loss_and_buffers(&changed);
            if before.iter().zip(&after).any(|((_, a), (_, b))| !a.allclose(b, 1e-5, 1e-7, false)) {
                problems
                    .push(format!("{name}: a step reads {key}, which it does not declare (Method::method_settings)"));
            }
        }
        for rule in method.rule_settings() {
            if !method.method_settings().contains(&rule.name()) {
                problems.push(format!("{name}: rule setting {} not among its method_settings", rule.name()));
            }
        }
        // Declared parameters: exactly these, of these sizes, in every hidden layer.
        let learner = Learner::new(*method, &[0], true, 1e-3, Device::Cpu).unwrap();
        let counts = parameter_counts(&learner.vs, 1);
        for layer in learner.model.hidden_layers() {
            let prefix = format!("{}.norm.", layer.name);
            let mut found: Vec<(&str, i64)> =
                counts.iter().filter_map(|(n, c)| n.strip_prefix(&prefix).map(|p| (p, *c))).collect();
            found.sort();
            let declared = declared(*method, &layer);
            if found != declared {
                problems.push(format!("{name}, {}: parameters {found:?}, declared {declared:?}", layer.name));
            }
        }
    }
    assert!(problems.is_empty(), "incomplete registrations:\n{}", problems.join("\n"));
}

#[test]
fn the_palette_has_distinct_colours_for_sixteen_methods_and_more() {
    let palette = homeonorm::engine::norm::PALETTE;
    assert!(palette.len() >= 16);
    for (i, a) in palette.iter().enumerate() {
        for b in &palette[..i] {
            let d: f64 = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>().sqrt();
            assert!(d >= 60.0, "{a:?} and {b:?} are too close ({d:.0})");
        }
    }
    // Each registered method takes its colour from the palette, so the next ones have room.
    assert!(METHODS.iter().all(|m| palette.contains(&m.colour())));
}

/// A colour's CIE L*a*b* (sRGB, D65).
fn lab([r, g, b]: [u8; 3]) -> [f64; 3] {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let xyz = [
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    ];
    let f =
        |t: f64| if t > (6.0f64 / 29.0).powi(3) { t.cbrt() } else { t / (3.0 * (6.0f64 / 29.0).powi(2)) + 4.0 / 29.0 };
    let [fx, fy, fz] = xyz.map(f);
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

#[test]
fn any_two_methods_a_figure_may_draw_together_are_told_apart_at_a_glance() {
    // Any methods can share a figure (an experiment names them): every pair of registered
    // methods differs by a CIE76 ΔE of 15 or more, and one method at most is drawn in a
    // colour so dark (L* < 30) that its lines read as black.
    let mut close = Vec::new();
    for (i, a) in METHODS.iter().enumerate() {
        for b in &METHODS[..i] {
            let (la, lb) = (lab(a.colour()), lab(b.colour()));
            let delta = la.iter().zip(&lb).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
            if delta < 15.0 {
                close.push(format!("{} and {}: ΔE {delta:.1}", a.name(), b.name()));
            }
        }
    }
    assert!(close.is_empty(), "colours too close: {close:?}");
    let dark: Vec<&str> = METHODS.iter().filter(|m| lab(m.colour())[0] < 30.0).map(|m| m.name()).collect();
    assert!(dark.len() <= 1, "these read as black beside each other: {dark:?}");
    // The measure itself: black against the dark red homeostatic scaling once had.
    assert!(lab([128, 0, 0])[0] < 30.0 && lab([0, 0, 0])[0] < 30.0);
}

#[test]
fn synaptic_scaling_centres_every_unit_on_its_batch_mean() {
    let method = method_by_name("synaptic-scaling").unwrap();
    for shape in [vec![32i64, 6, 28, 28], vec![32, 120]] {
        let vs = nn::VarStore::new(Device::Cpu);
        let units = shape[1];
        let norm = method.attach(&vs.root(), &LayerSpec::fc(1, units, 4), &random(&[1, units, 4]));
        let z = random(&shape).unsqueeze(0) * 3.0 + 5.0;
        let centred = norm.normalize(&z, Pass::Train).squeeze_dim(0);
        let z = z.squeeze_dim(0);
        let dims: Vec<i64> = (0..shape.len() as i64).filter(|&d| d != 1).collect();
        let means = centred.mean_dim(dims.as_slice(), false, Kind::Float);
        let worst = means.abs().max().double_value(&[]);
        assert!(worst < 1e-5, "largest batch mean after centring {worst} for shape {shape:?}");
        // and it is a pure shift per unit
        let shift = (&z - &centred).std_dim(dims.as_slice(), true, false).abs().max().double_value(&[]);
        assert!(shift < 1e-4, "not a per-unit shift: {shift}");
    }
}

#[test]
fn running_mean_follows_batchnorm_momentum_and_batch_evaluation_leaves_it() {
    for name in ["synaptic-scaling", "mean-only"] {
        let vs = nn::VarStore::new(Device::Cpu);
        let norm = method_by_name(name).unwrap().attach(&vs.root(), &LayerSpec::fc(1, 4, 3), &random(&[1, 4, 3]));
        // One model: activations [1, B, U], per-unit vectors [1, U].
        let normalize = |z: &Tensor, pass| norm.normalize(&z.unsqueeze(0), pass).squeeze_dim(0);
        let z1 = random(&[16, 4]) + 2.0;
        let z2 = random(&[16, 4]) - 1.0;
        let _ = normalize(&z1, Pass::Train);
        let _ = normalize(&z2, Pass::Train);
        let expected = (z1.mean_dim(0, false, Kind::Float) * 0.1) * 0.9 + z2.mean_dim(0, false, Kind::Float) * 0.1;
        let running = vs.variables()["running_mean"].squeeze_dim(0);
        assert!(running.allclose(&expected, 1e-6, 1e-6, false), "{name}: running mean");
        let before = running.copy();
        let z3 = random(&[16, 4]) * 4.0;
        let out = normalize(&z3, Pass::Eval(EvalStats::Batch));
        assert!(running.equal(&before), "{name}: batch evaluation changed the running mean");
        assert!(out.allclose(&(&z3 - z3.mean_dim(0, true, Kind::Float)), 1e-6, 1e-6, false));
        let out = normalize(&z3, Pass::Eval(EvalStats::Running));
        assert!(out.allclose(&(&z3 - before.unsqueeze(0)), 1e-6, 1e-6, false), "{name}: running evaluation");
    }
}

#[test]
fn weight_norm_effective_weight_has_norm_c_per_unit() {
    let vs = nn::VarStore::new(Device::Cpu);
    let v = random(&[1, 6, 3, 5, 5]);
    let norm = method_by_name("weight-norm").unwrap().attach(&vs.root(), &LayerSpec::fc(1, 6, 3), &v);
    // g is kept as PyTorch keeps it, `[U, 1, 1, 1]` per model.
    let mut g = vs.variables()["g"].view([6]);
    let initial = v.reshape([6, -1]).norm_scalaropt_dim(2, [1].as_slice(), false);
    assert!(g.allclose(&initial, 1e-6, 1e-6, false), "c starts at ‖v‖");
    tch::no_grad(|| g.copy_(&Tensor::from_slice(&[0.5f32, 1.0, 2.0, 3.0, 0.1, 7.0])));
    let w = norm.effective_weight(&v);
    let norms = w.reshape([6, -1]).norm_scalaropt_dim(2, [1].as_slice(), false);
    assert!(norms.allclose(&g, 1e-5, 1e-6, false), "‖w‖ per unit = c: {norms:?}");
}

#[test]
fn scale_only_with_alpha_one_equals_vanilla() {
    let x = shared_input(&random(&[8, 3, 32, 32]), 1);
    let vanilla = Learner::new(method_by_name("vanilla").unwrap(), &[3], true, 1e-3, Device::Cpu).unwrap();
    let scale_only = Learner::new(method_by_name("scale-only").unwrap(), &[3], true, 1e-3, Device::Cpu).unwrap();
    let a = vanilla.model.forward(&x, Pass::Train);
    let b = scale_only.model.forward(&x, Pass::Train);
    assert!(a.logits.equal(&b.logits), "scale-only with α = 1 must equal vanilla exactly");
    for alpha in scale_only.model.alphas() {
        assert!(alpha.1.eq(1.0).all().int64_value(&[]) == 1);
    }
}

#[test]
fn hidden_activations_are_returned_for_every_hidden_layer() {
    for method in METHODS {
        let learner = Learner::new(*method, &[1, 2], true, 1e-3, Device::Cpu).unwrap();
        let x = random(&[2, 5, 3, 32, 32]);
        let out = learner.model.forward(&x, Pass::Train);
        assert_eq!(out.logits.size(), [2, 5, 10]);
        let shapes: Vec<Vec<i64>> = out.hidden.iter().map(|h| h.size()).collect();
        assert_eq!(
            shapes,
            vec![vec![2, 5, 6, 28, 28], vec![2, 5, 16, 10, 10], vec![2, 5, 120], vec![2, 5, 84]],
            "{}",
            method.name()
        );
        // After the activation: ReLU's ≥ 0; SELU's ≥ −λα.
        let floor = if method.name() == "self-norm" { -1.7581 } else { 0.0 };
        assert!(out.hidden.iter().all(|h| h.min().double_value(&[]) >= floor), "{}: post-activation", method.name());
        assert_eq!(learner.model.hidden_layers().len(), 4);
    }
}

#[test]
fn normalizing_fc_layers_only_leaves_conv_layers_vanilla() {
    let learner = Learner::new(method_by_name("batch-norm").unwrap(), &[0], false, 1e-3, Device::Cpu).unwrap();
    let names: Vec<String> = model_state(&learner.vs, 0).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().all(|n| !n.starts_with("conv1.norm") && !n.starts_with("conv2.norm")), "{names:?}");
    assert!(names.iter().any(|n| n == "fc1.norm.gamma") && names.iter().any(|n| n == "fc2.norm.gamma"));
}

#[test]
fn unknown_method_lists_the_valid_names() {
    let err = method_by_name("batch-renorm").unwrap_err().to_string();
    assert!(err.contains("batch-renorm"), "{err}");
    for m in METHODS {
        assert!(err.contains(m.name()), "{err}");
    }
}

#[test]
fn learning_rate_must_be_positive_and_finite() {
    for lr in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let err = Learner::new(METHODS[0], &[0], true, lr, Device::Cpu).err().expect("must fail");
        assert!(err.to_string().contains("learning rate"), "{err}");
    }
}

/// A method's layer on one fc layer of `units` units with 3 inputs, and its var store.
fn attach(name: &str, units: i64) -> (nn::VarStore, Box<dyn homeonorm::engine::norm::MethodLayer>) {
    let vs = nn::VarStore::new(Device::Cpu);
    let norm = method_by_name(name).unwrap().attach(&vs.root(), &LayerSpec::fc(1, units, 3), &random(&[1, units, 3]));
    (vs, norm)
}

/// Outputs `[1, 4, 3]` (4 examples, 3 units) whose units are active on 4, 1 and 0 of
/// the 4 examples: activation probabilities 1, 0.25, 0.
fn outputs_active_on_4_1_0() -> Tensor {
    Tensor::from_slice(&[1.0f32, 0.5, 0.0, 2.0, 0.0, 0.0, 0.1, 0.0, 0.0, 3.0, 0.0, 0.0]).view([1, 4, 3])
}

#[test]
fn adaptive_thresholds_move_by_the_rate_times_the_gap_to_the_target() {
    let (vs, norm) = attach("adaptive-threshold", 3);
    let theta = vs.variables()["theta"].shallow_clone();
    assert_eq!(Vec::<f32>::try_from(theta.view([3])).unwrap(), [0.0; 3], "θ starts at 0: vanilla");
    norm.after_step(&outputs_active_on_4_1_0());
    // p* = 0.5: θ += η (p̂ − 0.5) for p̂ = 1, 0.25, 0.
    let eta = DEFAULT_THRESHOLD_RATE;
    let expected = [0.5 * eta, -0.25 * eta, -0.5 * eta];
    let got = Vec::<f32>::try_from(theta.view([3])).unwrap();
    assert!(got.iter().zip(expected).all(|(g, e)| (f64::from(*g) - e).abs() < 1e-7), "θ after one step: {got:?}");
    // The threshold is subtracted from the pre-activation of every example.
    let z = random(&[1, 5, 3]);
    let shifted = norm.normalize(&z, Pass::Train);
    assert!(shifted.allclose(&(&z - theta.view([1, 1, 3])), 1e-7, 1e-7, false));
    assert!(vs.trainable_variables().is_empty(), "θ is not trained by the loss");
}

#[test]
fn homeostatic_scaling_averages_the_rate_then_scales_alpha() {
    let (vs, norm) = attach("homeostatic-scaling", 3);
    let vars = vs.variables();
    let (alpha, average) = (vars["alpha"].shallow_clone(), vars["average_rate"].shallow_clone());
    let values = |t: &Tensor| Vec::<f32>::try_from(t.view([3])).unwrap();
    assert_eq!((values(&alpha), values(&average)), (vec![1.0; 3], vec![0.5; 3]), "α = 1, p̄ = p* to start");
    let output = outputs_active_on_4_1_0();
    let (mut alpha_expected, mut average_expected) = ([1.0f64; 3], [0.5f64; 3]);
    for _ in 0..3 {
        norm.after_step(&output);
        for (u, p) in [1.0, 0.25, 0.0].into_iter().enumerate() {
            // window 100, p* 0.5
            average_expected[u] += (p - average_expected[u]) / 100.0;
            alpha_expected[u] *= 1.0 + DEFAULT_SCALING_RATE * (0.5 - average_expected[u]);
        }
    }
    for (got, expected) in [(values(&average), average_expected), (values(&alpha), alpha_expected)] {
        assert!(got.iter().zip(expected).all(|(g, e)| (f64::from(*g) - e).abs() < 1e-6), "{got:?} vs {expected:?}");
    }
    assert!(alpha_expected[0] < 1.0 && alpha_expected[2] > 1.0, "too active scales down, too quiet up");
    // α scales each unit's weights, as α·w.
    let w = random(&[1, 3, 3]);
    assert!(norm.effective_weight(&w).allclose(&(&w * alpha.view([1, 3, 1])), 1e-7, 1e-7, false));
    assert!(vs.trainable_variables().is_empty(), "α is not trained by the loss");
}

#[test]
fn dendritic_branches_have_their_gains_as_norms() {
    // A conv layer: a branch per input channel (its 5×5 kernel).
    let vs = nn::VarStore::new(Device::Cpu);
    let v = random(&[1, 6, 3, 5, 5]);
    let spec = LayerSpec { inputs: 3, conv: true, ..LayerSpec::fc(1, 6, 3) };
    let norm = method_by_name("dendritic-norm").unwrap().attach(&vs.root(), &spec, &v);
    let mut gain = vs.variables()["gain"].shallow_clone();
    assert_eq!(gain.size(), [1, 6, 3]);
    assert!(norm.effective_weight(&v).allclose(&v, 1e-5, 1e-6, false), "the first weight is v itself");
    tch::no_grad(|| gain.copy_(&(random(&[1, 6, 3]).abs() + 0.5)));
    let norms = norm.effective_weight(&v).flatten(3, 4).norm_scalaropt_dim(2, [3].as_slice(), false);
    assert!(norms.allclose(&gain, 1e-5, 1e-6, false), "‖w_b‖ = c_b per input channel");
    // An fc layer of 120 inputs, branches of 25: four of 25 and one of 20.
    let vs = nn::VarStore::new(Device::Cpu);
    let v = random(&[2, 4, 120]);
    let norm = method_by_name("dendritic-norm").unwrap().attach(&vs.root(), &LayerSpec::fc(2, 4, 120), &v);
    let mut gain = vs.variables()["gain"].shallow_clone();
    assert_eq!(gain.size(), [2, 4, 5]);
    tch::no_grad(|| gain.copy_(&(random(&[2, 4, 5]).abs() + 0.5)));
    let w = norm.effective_weight(&v);
    for (b, (start, len)) in [(0, 25), (25, 25), (50, 25), (75, 25), (100, 20)].into_iter().enumerate() {
        let branch = w.narrow(2, start, len).norm_scalaropt_dim(2, [2].as_slice(), false);
        assert!(branch.allclose(&gain.select(2, b as i64), 1e-5, 1e-6, false), "branch {b}");
        // and it points where v's branch points
        let cosine = (w.narrow(2, start, len) * v.narrow(2, start, len)).sum_dim_intlist(2, false, Kind::Float)
            / (branch * v.narrow(2, start, len).norm_scalaropt_dim(2, [2].as_slice(), false));
        assert!(cosine.allclose(&cosine.ones_like(), 1e-5, 1e-5, false), "branch {b} keeps v's direction");
    }
}

#[test]
fn divisive_normalization_divides_by_sigma_plus_the_pooled_activity() {
    let (vs, norm) = attach("divisive-norm", 4);
    let z = Tensor::from_slice(&[1.0f32, -2.0, 3.0, 0.0, -1.0, -1.0, -1.0, 4.0]).view([1, 2, 4]);
    let y = Vec::<f32>::try_from(norm.activate(&z).view([8])).unwrap();
    // σ = e⁰ = 1; example 1's pool: (1 + 0 + 3 + 0)/4 = 1; example 2's: 4/4 = 1.
    assert_eq!(y, [0.5, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0, 2.0]);
    // A conv layer pools the channels at each position: [1, B, C, H, W], mean over C.
    let z = random(&[1, 2, 4, 3, 3]);
    let r = z.relu();
    let expected = &r / (r.mean_dim([2].as_slice(), true, Kind::Float) + 1.0);
    assert!(norm.activate(&z).allclose(&expected, 1e-6, 1e-6, false));
    assert_eq!(vs.trainable_variables().len(), 1, "σ (as log σ) is learned, one per layer");
}

#[test]
fn a_training_step_runs_the_after_step_rule_on_its_own_batch() {
    let mut learner =
        Learner::new(method_by_name("adaptive-threshold").unwrap(), &[5], true, 1e-3, Device::Cpu).unwrap();
    let x = random(&[1, 16, 3, 32, 32]);
    let labels = Tensor::arange(16, (Kind::Int64, Device::Cpu)).remainder(10).view([1, 16]);
    let (_, forward) = learner.step(&x, &labels);
    let theta = learner.vs.variables()["fc1.norm.theta"].shallow_clone();
    // The batch's fc1 rates, from the forward pass the step trained on (θ was 0).
    let rates = forward.hidden[2].gt(0.0).to_kind(Kind::Float).mean_dim([1].as_slice(), false, Kind::Float);
    let expected = (rates - 0.5) * DEFAULT_THRESHOLD_RATE;
    assert!(theta.allclose(&expected, 1e-7, 1e-7, false), "θ after one step is η(p̂ − p*)");
    assert!(theta.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

/// Everything a network needs is reached from its registration: a layer table that
/// chains (each layer's inputs are what the one before gives), ends in the classes'
/// logits and has hidden layers; a PyTorch module in reference/networks.py's NETWORKS;
/// a row in the README's network table.
#[test]
fn every_registered_network_is_complete() {
    use homeonorm::engine::model::{LayerKind, Network, Pool, Residual};
    let root = env!("CARGO_MANIFEST_DIR");
    let reference = std::fs::read_to_string(format!("{root}/reference/networks.py")).unwrap();
    let start = reference.find("\nNETWORKS = {").expect("NETWORKS in networks.py");
    let reference_networks = &reference[start..start + reference[start..].find('}').expect("NETWORKS' closing }")];
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let mut problems = Vec::new();
    for network in Network::all() {
        let name = network.name();
        if !reference_networks.contains(&format!("\"{name}\":")) {
            problems.push(format!("{name}: not in reference/networks.py's NETWORKS (its PyTorch module)"));
        }
        if !readme.lines().any(|l| l.starts_with(&format!("| `{name}`"))) {
            problems.push(format!("{name}: no row in the README's network table"));
        }
        let layers = network.layers();
        let (mut channels, mut side) = (3, 32);
        for layer in layers {
            let given = match layer.kind {
                LayerKind::Conv => channels,
                LayerKind::Fc => channels * side * side,
            };
            if layer.inputs != given {
                problems
                    .push(format!("{name}, {}: {} inputs, the layer before gives {given}", layer.name, layer.inputs));
            }
            match layer.kind {
                LayerKind::Conv => {
                    side = (side + 2 * layer.padding - layer.kernel) / layer.stride + 1;
                    side = match layer.pool {
                        Pool::None => side,
                        Pool::Max2 => side / 2,
                        Pool::GlobalAverage => 1,
                    };
                    channels = layer.units;
                }
                LayerKind::Fc => (channels, side) = (layer.units, 1),
            }
        }
        // Residual blocks close after they open, one at a time, on a layer of the same kind.
        let mut open = false;
        for layer in layers {
            match (layer.residual, open) {
                (Residual::Opens, false) => open = true,
                (Residual::Closes, true) => open = false,
                (Residual::None, _) => {}
                _ => problems.push(format!("{name}, {}: a residual block that does not open and close", layer.name)),
            }
        }
        if open {
            problems.push(format!("{name}: a residual block left open"));
        }
        if !layers.iter().any(|l| l.hidden && l.name == network.probe()) {
            problems.push(format!("{name}: its probe layer {} is not one of its hidden layers", network.probe()));
        }
        let last = layers.last().unwrap();
        if last.hidden || last.units != 10 || layers.iter().rev().skip(1).any(|l| !l.hidden) {
            problems.push(format!("{name}: hidden layers, then one output layer of the 10 classes"));
        }
    }
    assert!(problems.is_empty(), "incomplete registrations:\n{}", problems.join("\n"));
}

#[test]
fn a_whitening_model_with_nan_weights_diverges_alone_instead_of_stopping_the_batch() {
    // LAPACK cannot decompose a NaN covariance (PyTorch raises LinAlgError there): model 0
    // of a seed batch of two gets NaN weights; its loss is NaN, model 1's is finite.
    let mut learner = Learner::new(method_by_name("whitening").unwrap(), &[0, 1], true, 1e-3, Device::Cpu).unwrap();
    let weight = learner.vs.variables()["fc1.weight"].shallow_clone();
    let _ = tch::no_grad(|| weight.get(0).fill_(f64::NAN));
    let x = random(&[2, 32, 3, 32, 32]);
    let labels = Tensor::arange(64, (Kind::Int64, Device::Cpu)).remainder(10).view([2, 32]);
    let (losses, _) = learner.step(&x, &labels);
    let losses = Vec::<f32>::try_from(&losses).unwrap();
    assert!(losses[0].is_nan() && losses[1].is_finite(), "losses {losses:?}");
}
