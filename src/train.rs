//! One training run — or several seeds of one setting trained together as a seed
//! batch — with the paper's protocol and measures, written to run folders.

use crate::data::{batches::BatchSampler, Dataset, DatasetKind, Limit, Normalization, Split};
use crate::learner::Learner;
use crate::metrics::{unit_stats, LayerSummary, UnitStats};
use crate::model::{hidden_layers, per_model_input, shared_input, split_models, LayerKind};
use crate::norm::{method_by_name, EvalStats, Pass};
use crate::progress::Progress;
use crate::rundir::{self, ActivationRow, CurveRow, Outcome, Summary, UnitRow};
use crate::system::{device_name, SystemInfo};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Every setting of a run. Recorded in each run's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    pub dataset: DatasetKind,
    pub method: String,
    pub lr: f64,
    pub batch_size: usize,
    pub iterations: usize,
    /// Test accuracy (on the whole test set) every this many iterations, and at the end.
    pub eval_every: usize,
    /// Activation probabilities over the training batch every this many iterations (Figure 2B).
    pub record_every: usize,
    /// Statistics used by normalized layers at test time (the paper: the test batch's own).
    pub eval_stats: EvalStats,
    /// Test batch size: matters for batch-statistics evaluation. The last partial batch is evaluated too.
    pub test_batch_size: usize,
    /// Apply the method to the conv layers too (the paper: "every layer except input and output").
    pub normalize_conv: bool,
    /// Also record the measures for conv channels (fc units are always recorded).
    pub conv_measures: bool,
    /// Per-channel normalization after scaling pixels to [0, 1].
    pub normalization: Normalization,
}

impl TrainSettings {
    /// The paper's protocol for a dataset (section 4): CIFAR-10 batch 32, lr 0.003,
    /// 45,000 iterations; SVHN batch 256, lr 0.01, 8,000 iterations.
    pub fn preset(dataset: DatasetKind, method: &str) -> TrainSettings {
        let (batch_size, lr, iterations, eval_every) = match dataset {
            DatasetKind::Cifar10 => (32, 0.003, 45_000, 1_000),
            DatasetKind::Svhn => (256, 0.01, 8_000, 200),
        };
        TrainSettings {
            dataset,
            method: method.to_string(),
            lr,
            batch_size,
            iterations,
            eval_every,
            record_every: 100,
            eval_stats: EvalStats::Batch,
            test_batch_size: batch_size,
            normalize_conv: true,
            conv_measures: false,
            normalization: Normalization::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        method_by_name(&self.method)?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("learning rate must be a positive finite number, got {}", self.lr);
        }
        for (name, v) in [
            ("batch size", self.batch_size),
            ("iterations", self.iterations),
            ("eval-every", self.eval_every),
            ("record-every", self.record_every),
            ("test batch size", self.test_batch_size),
        ] {
            if v == 0 {
                bail!("{name} must be positive, got 0");
            }
        }
        if self.normalization.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            bail!("normalization std must be positive, got {:?}", self.normalization.std);
        }
        Ok(())
    }
}

/// Changes to a preset, from the command line or an experiment file. Applied in one
/// place so that both follow the same rules (a new batch size is also the test batch
/// size unless that is given too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingChanges {
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub iterations: Option<usize>,
    pub eval_every: Option<usize>,
    pub record_every: Option<usize>,
    pub eval_stats: Option<EvalStats>,
    pub test_batch_size: Option<usize>,
    pub normalize_conv: Option<bool>,
    pub conv_measures: Option<bool>,
    pub normalization: Option<Normalization>,
}

impl SettingChanges {
    pub fn apply(&self, s: &mut TrainSettings) {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut s.lr, self.lr);
        set(&mut s.batch_size, self.batch_size);
        set(&mut s.test_batch_size, self.batch_size);
        set(&mut s.test_batch_size, self.test_batch_size);
        set(&mut s.iterations, self.iterations);
        set(&mut s.eval_every, self.eval_every);
        set(&mut s.record_every, self.record_every);
        set(&mut s.eval_stats, self.eval_stats);
        set(&mut s.normalize_conv, self.normalize_conv);
        set(&mut s.conv_measures, self.conv_measures);
        set(&mut s.normalization, self.normalization);
    }
}

/// The data of a run, loaded once and kept on the training device.
pub struct RunData {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
    pub dir: PathBuf,
    pub files: Vec<(PathBuf, u64)>,
    pub limit: Limit,
}

impl RunData {
    pub fn new(dataset: Dataset, dir: &Path, limit: Limit, device: Device) -> RunData {
        RunData {
            kind: dataset.kind,
            train: dataset.train.to_device(device),
            test: dataset.test.to_device(device),
            dir: dir.to_path_buf(),
            files: dataset.files,
            limit,
        }
    }

    /// Another handle on the same tensors (no copy).
    pub fn shallow_clone(&self) -> RunData {
        let split = |s: &Split| Split { images: s.images.shallow_clone(), labels: s.labels.shallow_clone() };
        RunData {
            kind: self.kind,
            train: split(&self.train),
            test: split(&self.test),
            dir: self.dir.clone(),
            files: self.files.clone(),
            limit: self.limit,
        }
    }
}

/// What `config.json` holds besides the settings.
#[derive(Serialize)]
struct RunConfig<'a> {
    #[serde(flatten)]
    settings: &'a TrainSettings,
    seed: u64,
    /// The seeds trained together with this one as one seed-batched model.
    seed_batch: &'a [u64],
    device: String,
    system: SystemInfo,
    data_dir: &'a Path,
    data_files: Vec<DataFile<'a>>,
    train_images: usize,
    test_images: usize,
    data_limit: Limit,
    choices: Choices,
}

#[derive(Serialize)]
struct DataFile<'a> {
    path: &'a Path,
    bytes: u64,
}

/// Where the paper is silent: what this run chose (DESIGN.md, "Where the paper is silent").
#[derive(Serialize)]
struct Choices {
    weight_init: &'static str,
    optimizer: &'static str,
    batch_order: &'static str,
    unit_std: &'static str,
    inactive_units: &'static str,
}

const CHOICES: Choices = Choices {
    weight_init: "PyTorch defaults for nn.Conv2d/nn.Linear drawn as torch.manual_seed(seed); Net() would",
    optimizer: "Adam, beta=(0.9, 0.999), eps=1e-8, no weight decay (PyTorch defaults); loss = mean cross-entropy",
    batch_order: "each epoch a fresh permutation from ChaCha8(seed); last batch of an epoch partial (drop_last=False)",
    unit_std: "std across units is the population std (ddof=0)",
    inactive_units: "mean active value is over active inputs only; never-active units are left out of its mean/std/CV",
};

/// The hidden layers measured: fc1 and fc2, and the conv layers if asked.
fn measured_layers(settings: &TrainSettings) -> Vec<(usize, &'static str)> {
    hidden_layers()
        .enumerate()
        .filter(|(_, l)| l.kind == LayerKind::Fc || settings.conv_measures)
        .map(|(i, l)| (i, l.name))
        .collect()
}

/// Units (channels) of one model in hidden layer `index`.
fn layer_units(index: usize) -> i64 {
    hidden_layers().nth(index).expect("hidden layer").units
}

/// Activation probability per unit of each model: `[B, S·U, …]` → `[S, U]`.
fn activation_prob(hidden: &Tensor, models: i64) -> Tensor {
    let active = hidden.gt(0.0).to_kind(Kind::Float);
    let dims: Vec<i64> = (0..active.dim() as i64).filter(|&d| d != 1).collect();
    active.mean_dim(dims.as_slice(), false, Kind::Float).view([models, -1])
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
    let models = learner.model.models();
    let layers = measured_layers(settings);
    tch::no_grad(|| {
        let device = learner.device();
        let mut correct = Tensor::zeros([models], (Kind::Int64, device));
        // per measured layer: active count and active sum per [S, U]
        let zeros = || -> Vec<Tensor> {
            layers.iter().map(|&(i, _)| Tensor::zeros([models, layer_units(i)], (Kind::Double, device))).collect()
        };
        let (mut active, mut active_sum) = (zeros(), zeros());
        let mut observations = vec![0f64; layers.len()];
        let n = test.len() as i64;
        let mut start = 0;
        while start < n {
            let b = (settings.test_batch_size as i64).min(n - start);
            let images = settings.normalization.apply(&test.images.narrow(0, start, b)).to_kind(learner.float_kind());
            let labels = test.labels.narrow(0, start, b);
            let out = learner.model.forward(&shared_input(&images, models), Pass::Eval(settings.eval_stats));
            let predicted = out.logits.argmax(-1, false); // [S, b]
            correct += predicted.eq_tensor(&labels.unsqueeze(0)).sum_dim_intlist(1, false, Kind::Int64);
            if with_units {
                for (k, &(index, _)) in layers.iter().enumerate() {
                    let y = split_models(&out.hidden[index], models); // [b, S, U, …]
                    let dims: Vec<i64> = (0..y.dim() as i64).filter(|&d| d != 1 && d != 2).collect();
                    let count = y.gt(0.0).to_kind(Kind::Double).sum_dim_intlist(dims.as_slice(), false, Kind::Double);
                    let sum = y.to_kind(Kind::Double).sum_dim_intlist(dims.as_slice(), false, Kind::Double);
                    observations[k] += (y.numel() as i64 / (models * y.size()[2])) as f64;
                    active[k] += count;
                    active_sum[k] += sum;
                }
            }
            start += b;
        }
        let accuracy = Vec::<i64>::try_from(correct.to_device(Device::Cpu))
            .expect("accuracy")
            .into_iter()
            .map(|c| c as f64 / n as f64)
            .collect();
        let units = with_units.then(|| {
            let alphas = learner.model.alphas();
            (0..models)
                .map(|s| {
                    layers
                        .iter()
                        .enumerate()
                        .map(|(k, &(_, name))| {
                            let host = |t: &Tensor| Vec::<f64>::try_from(t.get(s).to_device(Device::Cpu)).unwrap();
                            let alpha = alphas.iter().find(|(l, _)| *l == name).map(|(_, a)| {
                                Vec::<f64>::try_from(a.get(s).to_kind(Kind::Double).to_device(Device::Cpu)).unwrap()
                            });
                            (
                                name.to_string(),
                                unit_stats(
                                    name,
                                    &host(&active[k]),
                                    &host(&active_sum[k]),
                                    observations[k],
                                    alpha.as_deref(),
                                ),
                            )
                        })
                        .collect()
                })
                .collect()
        });
        Evaluation { accuracy, units }
    })
}

/// What one model of a seed batch has gathered so far.
struct ModelLog {
    curve: Vec<CurveRow>,
    activation_rows: Vec<(usize, Tensor)>,
    diverged_at: Option<usize>,
}

/// Marks each model whose loss became NaN or infinite among `step_losses`
/// (each `[S]`, the first at iteration `first`) as diverged at that iteration.
fn record_divergence(logs: &mut [ModelLog], step_losses: &[Tensor], first: usize, seeds: &[u64]) {
    let stacked = Tensor::stack(step_losses, 0).to_kind(Kind::Double).to_device(Device::Cpu); // [steps, S]
    for (s, log) in logs.iter_mut().enumerate().filter(|(_, l)| l.diverged_at.is_none()) {
        let series = Vec::<f64>::try_from(stacked.select(1, s as i64)).unwrap();
        if let Some(k) = series.iter().position(|l| !l.is_finite()) {
            log.diverged_at = Some(first + k);
            log::warn!("seed {}: the loss is {} at iteration {}: diverged", seeds[s], series[k], first + k);
        }
    }
}

/// What identifies a run's experiment in its `config.json`: every setting and the
/// data subset. A complete run whose recorded identity differs from the one asked
/// for is another experiment (see `rundir::differences`).
pub fn recorded_identity(settings: &TrainSettings, data_limit: Limit) -> serde_json::Map<String, serde_json::Value> {
    let mut map = match serde_json::to_value(settings) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => unreachable!("settings serialize to a JSON object"),
    };
    map.insert("data_limit".into(), serde_json::to_value(data_limit).expect("a limit serializes"));
    map
}

/// A sweep's run was taken over by another worker (this one stalled past the claim
/// timeout): this worker stops it without writing.
#[derive(Debug, thiserror::Error)]
#[error("every run of this seed batch was taken over by another worker; stopped without writing")]
pub struct TakenOver;

/// Trains `seeds` together as one seed-batched model and writes one run folder per
/// seed under `out`. Returns each seed's summary.
pub fn train_seed_batch(
    settings: &TrainSettings,
    seeds: &[u64],
    data: &RunData,
    out: &Path,
) -> Result<Vec<(u64, Summary)>> {
    train_seed_batch_supervised(settings, seeds, data, out, &|_| true)
}

/// [`train_seed_batch`] for a sweep: `still_ours(k)` says whether this worker still
/// holds the claim on seed `k`'s run. Asked at every evaluation and before a run's
/// files are written: a run taken over is not written, and when none is left the
/// training stops ([`TakenOver`]). Ctrl-C or SIGTERM stops it too
/// ([`crate::interrupt::Interrupted`]). Returns the summaries of the runs written.
pub fn train_seed_batch_supervised(
    settings: &TrainSettings,
    seeds: &[u64],
    data: &RunData,
    out: &Path,
    still_ours: &dyn Fn(usize) -> bool,
) -> Result<Vec<(u64, Summary)>> {
    settings.validate()?;
    if data.kind != settings.dataset {
        bail!("the data loaded is {}, the settings ask for {}", data.kind, settings.dataset);
    }
    for (split, name) in [(&data.train, "training"), (&data.test, "test")] {
        if split.is_empty() {
            bail!("the {} {name} split in {} has no images", data.kind, data.dir.display());
        }
    }
    let method = method_by_name(&settings.method)?;
    let device = data.train.images.device();
    let started = std::time::Instant::now();
    let dirs: Vec<PathBuf> = seeds
        .iter()
        .map(|&s| rundir::run_path(out, settings.dataset.name(), &settings.method, settings.lr, s))
        .collect();
    let system = SystemInfo::detect();
    let mut config_bytes = Vec::new();
    for (dir, &seed) in dirs.iter().zip(seeds) {
        rundir::prepare(dir)?;
        let config = RunConfig {
            settings,
            seed,
            seed_batch: seeds,
            device: device_name(device),
            system: system.clone(),
            data_dir: &data.dir,
            data_files: data.files.iter().map(|(p, b)| DataFile { path: p, bytes: *b }).collect(),
            train_images: data.train.len(),
            test_images: data.test.len(),
            data_limit: data.limit,
            choices: CHOICES,
        };
        config_bytes.push(rundir::write_json(dir, rundir::CONFIG, &config)?);
    }

    let mut learner = Learner::new(method, seeds, settings.normalize_conv, settings.lr, device)?;
    let mut sampler = BatchSampler::new(&data.train, seeds, settings.batch_size);
    let models = seeds.len();
    let layers = measured_layers(settings);
    let mut logs: Vec<ModelLog> =
        (0..models).map(|_| ModelLog { curve: Vec::new(), activation_rows: Vec::new(), diverged_at: None }).collect();
    // Losses stay on the device until the next evaluation point, the one place the loop
    // synchronises with the device; each step's loss is kept, so a NaN's iteration is exact.
    let mut step_losses: Vec<Tensor> = Vec::new();
    let mut loss_sum = Tensor::zeros([models as i64], (Kind::Double, device));
    let mut loss_steps = 0usize;
    let label = format!(
        "{} {} lr {} seed{} {:?}",
        settings.dataset,
        settings.method,
        settings.lr,
        if models > 1 { "s" } else { "" },
        seeds
    );
    let mut progress = Progress::new(&label, settings.iterations as u64, 5);
    let mut last_accuracy = f64::NAN;
    let mut last_loss = f64::NAN;
    let mut iterations_done = 0;

    for iteration in 1..=settings.iterations {
        crate::interrupt::check()?;
        let (images, labels) = sampler.next_batch(&data.train);
        let x = per_model_input(&settings.normalization.apply(&images));
        let (losses, forward) = learner.step(&x, &labels);
        loss_sum += losses.to_kind(Kind::Double);
        loss_steps += 1;
        step_losses.push(losses);
        if iteration % settings.record_every == 0 {
            let probs: Vec<Tensor> =
                layers.iter().map(|&(i, _)| activation_prob(&forward.hidden[i].detach(), models as i64)).collect();
            for (s, log) in logs.iter_mut().enumerate() {
                log.activation_rows
                    .push((iteration, Tensor::cat(&probs.iter().map(|p| p.get(s as i64)).collect::<Vec<_>>(), 0)));
            }
        }
        iterations_done = iteration;
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            record_divergence(&mut logs, &step_losses, iteration + 1 - step_losses.len(), seeds);
            step_losses.clear();
            if logs.iter().all(|l| l.diverged_at.is_some()) {
                break;
            }
            if !(0..models).any(still_ours) {
                return Err(TakenOver.into());
            }
            let eval = evaluate(&learner, &data.test, settings, false);
            let mean_losses = Vec::<f64>::try_from((&loss_sum / loss_steps as f64).to_device(Device::Cpu)).unwrap();
            for (s, log) in logs.iter_mut().enumerate() {
                if log.diverged_at.is_none() {
                    log.curve.push(CurveRow { iteration, train_loss: mean_losses[s], test_accuracy: eval.accuracy[s] });
                }
            }
            last_accuracy = eval.accuracy.iter().sum::<f64>() / models as f64;
            last_loss = mean_losses.iter().sum::<f64>() / models as f64;
            loss_sum = loss_sum.zero_();
            loss_steps = 0;
        }
        progress.update(iteration as u64, || {
            if last_accuracy.is_nan() {
                "not evaluated yet".to_string()
            } else {
                format!("loss {last_loss:.3} test accuracy {:.2} %", 100.0 * last_accuracy)
            }
        });
    }
    progress.finish();

    let final_eval = evaluate(&learner, &data.test, settings, true);
    let wall_time_s = started.elapsed().as_secs_f64();
    let units = final_eval.units.expect("asked for units");
    let mut summaries = Vec::new();
    for (s, log) in logs.into_iter().enumerate() {
        let dir = &dirs[s];
        if !still_ours(s) {
            log::warn!("{}: taken over by another worker; this worker's result is not written", dir.display());
            continue;
        }
        let mut files = std::collections::BTreeMap::new();
        files.insert(rundir::CONFIG.to_string(), config_bytes[s]);
        files.insert(
            rundir::CURVE.to_string(),
            rundir::write_csv(dir, rundir::CURVE, &log.curve, &rundir::CURVE_COLUMNS)?,
        );
        let names: Vec<(&str, i64)> = layers.iter().map(|&(i, n)| (n, layer_units(i))).collect();
        let mut rows = Vec::new();
        for (iteration, probs) in &log.activation_rows {
            if log.diverged_at.is_some_and(|d| *iteration >= d) {
                break;
            }
            let values = Vec::<f64>::try_from(probs.to_kind(Kind::Double).to_device(Device::Cpu)).unwrap();
            let mut offset = 0;
            for &(layer, n) in &names {
                for unit in 0..n as usize {
                    rows.push(ActivationRow {
                        iteration: *iteration,
                        layer: layer.to_string(),
                        unit,
                        activation_prob: values[offset + unit],
                    });
                }
                offset += n as usize;
            }
        }
        files.insert(
            rundir::ACTIVATION_PROB.to_string(),
            rundir::write_csv(dir, rundir::ACTIVATION_PROB, &rows, &rundir::ACTIVATION_COLUMNS)?,
        );
        let diverged = log.diverged_at.is_some();
        let unit_rows: Vec<UnitRow> =
            if diverged { Vec::new() } else { units[s].iter().flat_map(|(_, us)| us.iter().cloned()).collect() };
        files.insert(
            rundir::UNIT_STATS.to_string(),
            rundir::write_csv(dir, rundir::UNIT_STATS, &unit_rows, &rundir::UNIT_COLUMNS)?,
        );
        let best = log.curve.iter().max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
        let summary = Summary {
            outcome: if diverged { Outcome::Diverged } else { Outcome::Complete },
            diverged_at: log.diverged_at,
            iterations: log.diverged_at.map_or(iterations_done, |d| d),
            final_accuracy: (!diverged).then(|| final_eval.accuracy[s]),
            best_accuracy: best.map(|b| b.test_accuracy),
            best_iteration: best.map(|b| b.iteration),
            final_train_loss: log.curve.last().map(|c| c.train_loss),
            wall_time_s,
            layers: if diverged {
                Vec::new()
            } else {
                units[s].iter().map(|(name, us)| LayerSummary::of(name, us)).collect()
            },
            files,
        };
        rundir::write_json(dir, rundir::SUMMARY, &summary)?;
        if diverged {
            log::warn!("{}: diverged at iteration {}", dir.display(), log.diverged_at.unwrap());
        } else {
            log::info!("{}: test accuracy {:.2} %", dir.display(), 100.0 * final_eval.accuracy[s]);
        }
        summaries.push((seeds[s], summary));
    }
    Ok(summaries)
}
