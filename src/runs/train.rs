//! One training run — or several seeds (and learning rates) of one setting trained
//! together as one seed-batched model — with the paper's protocol, written to run
//! folders: the loop, the divergence watch, and what each run folder gets.

use crate::engine::data::batches::{BatchSampler, Schedule};
use crate::engine::data::{Dataset, DatasetKind, Limit, Split};
use crate::engine::evaluate::{evaluate, measured_layers, LayerUnits};
use crate::engine::learner::Learner;
use crate::engine::measures::LayerSummary;
use crate::engine::metrics::ActivityRecord;
use crate::engine::settings::{GroupKey, TrainSettings};
use crate::engine::system::{device_name, SystemInfo};
use crate::results::rundir::{self, ActivationRow, CurveRow, Outcome, RunConfig, Summary, UnitRow};
use crate::runs::experiment::RunSpec;
use crate::runs::progress::Progress;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The data of a run, loaded once and kept on the training device.
pub struct RunData {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
    pub dir: PathBuf,
    pub files: Vec<crate::engine::data::DataFile>,
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

/// What homeonorm chose where the paper is silent, recorded in every `config.json`
/// (`docs/run-folder.md` describes the field): these, then each method's own
/// ([`Method::choice`](crate::engine::norm::Method::choice)), then the last evaluation's.
const CHOICES: [(&str, &str); 6] = [
    ("weight_init", "PyTorch defaults for nn.Conv2d/nn.Linear drawn as torch.manual_seed(seed); Net() would"),
    ("optimizer", "Adam, beta=(0.9, 0.999), eps=1e-8, no weight decay (PyTorch defaults); loss = mean cross-entropy"),
    ("batch_order", "batch_order dataloader: DataLoader(train, batch_size, shuffle=True)'s permutations after torch.manual_seed(seed); Net(method) (chacha8: a permutation per epoch from ChaCha8(seed)); last batch of an epoch partial (drop_last=False)"),
    ("unit_std", "std across units is the population std (ddof=0)"),
    ("inactive_units", "mean active value is over active inputs only; never-active units are left out of its mean/std/CV"),
    ("test_batch", "the paper does not say; 1,000 by default (with batch statistics at test time, small test batches lose 2-3 points)"),
];
const LAST_CHOICE: (&str, &str) = (
    "test_batch1",
    "test_accuracy_batch1: the final evaluation again with test batches of one example and the run's eval_stats",
);

/// Every choice, in `config.json`'s order: the general ones, each method's, the last.
fn choices() -> serde_json::Map<String, serde_json::Value> {
    let methods = crate::engine::norm::METHODS.iter().filter_map(|m| m.choice());
    let mut map = serde_json::Map::new();
    for (key, text) in CHOICES.into_iter().chain(methods).chain([LAST_CHOICE]) {
        map.entry(key).or_insert_with(|| text.into());
    }
    map
}

/// What one model of a seed batch has gathered so far.
struct ModelLog {
    curve: Vec<CurveRow>,
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

/// `homeonorm train`: trains `seeds` of `settings` into run folders under `out`,
/// `seeds_per_model` at a time as one model, and prints each run's result. Each seed's
/// folder is decided on as a sweep decides ([`crate::runs::existing`]): a complete run
/// of these settings is kept (`replace` trains it again), one of other settings is an
/// error (`replace` retrains it), a foreign folder is never trained over. The data are
/// the subset `limit` of files that are now `data_now` (where they could be read);
/// `load` gives them, called only when something is to be trained.
pub fn train_command(
    settings: &TrainSettings,
    seeds: &[u64],
    out: &Path,
    replace: bool,
    (limit, data_now): (Limit, Option<&[crate::engine::data::DataFile]>),
    seeds_per_model: crate::runs::packing::SeedsPerModel,
    load: impl FnOnce() -> Result<RunData>,
) -> Result<()> {
    use crate::runs::existing::{changed_error, existing, foreign_error, Existing};
    let mut seen = std::collections::BTreeSet::new();
    if let Some(seed) = seeds.iter().find(|s| !seen.insert(**s)) {
        bail!("--seed: seed {seed} is given twice");
    }
    let mut to_train = Vec::new();
    for &seed in seeds {
        let dir = rundir::run_dir(out, settings, seed);
        match existing(&dir, settings, limit, data_now) {
            Existing::Foreign(why) => return Err(foreign_error(1, &why)),
            Existing::Changed(changed) if !replace => {
                return Err(changed_error(&[(dir.as_path(), changed.as_slice())], "pass --replace"))
            }
            Existing::Done if !replace => {
                println!(
                    "seed {seed}: {} is complete with these settings already; kept (--replace trains it again)",
                    dir.display()
                );
            }
            _ => to_train.push(seed),
        }
    }
    if to_train.is_empty() {
        return Ok(());
    }
    crate::runs::interrupt::install()?;
    let data = load()?;
    let mut diverged = 0;
    for seeds in to_train.chunks(seeds_per_model.for_method(settings.method.method())) {
        for (seed, summary) in train_seed_batch(settings, seeds, &data, out)? {
            match summary.final_accuracy {
                Some(acc) => println!("seed {seed}: test accuracy {:.2} %", 100.0 * acc),
                None => {
                    diverged += 1;
                    println!("seed {seed}: diverged at iteration {}", summary.diverged_at.unwrap_or(0));
                }
            }
        }
    }
    if diverged > 0 {
        log::warn!("{diverged} run(s) diverged; their folders record it");
    }
    Ok(())
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
    let runs: Vec<RunSpec> = seeds.iter().map(|&seed| RunSpec { settings: settings.clone(), seed }).collect();
    let trained = train_runs(&runs, data, out, &|_| true)?;
    Ok(trained.into_iter().map(|(k, summary)| (seeds[k], summary)).collect())
}

/// Trains `runs` as one model — the seeds of one setting, and its learning rates and
/// rule settings where they differ (every other setting the same) — and writes each run's folder under
/// `out`, each as it would be trained alone. For a sweep, `still_ours(k)` says whether
/// this worker still holds the claim on run `k`. Asked at every evaluation and before a
/// run's files are written: a run taken over is not written, and when none is left the
/// training stops ([`TakenOver`]). Ctrl-C or SIGTERM stops it too
/// ([`crate::runs::interrupt::Interrupted`]). Returns the index and summary of each run written.
pub fn train_runs(
    runs: &[RunSpec],
    data: &RunData,
    out: &Path,
    still_ours: &dyn Fn(usize) -> bool,
) -> Result<Vec<(usize, Summary)>> {
    let Some(first) = runs.first() else { return Ok(Vec::new()) };
    let settings = &first.settings;
    check_runs(runs, data)?;
    let device = data.train.images.device();
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    let lrs: Vec<f64> = runs.iter().map(|r| r.settings.lr).collect();
    let dirs: Vec<PathBuf> = runs.iter().map(|r| rundir::run_dir(out, &r.settings, r.seed)).collect();
    let config_bytes = write_configs(runs, data, &dirs)?;

    let model = TrainSettings::model_options_of(&runs.iter().map(|r| &r.settings).collect::<Vec<_>>());
    let mut learner = Learner::with_learning_rates(settings.method.method(), &seeds, &model, &lrs, device)?;
    let method = settings.method.method();
    let build_net = || drop(crate::engine::model::draw_initial_parameters(method, &model));
    let schedule = Schedule {
        stop_requested: &crate::runs::interrupt::requested,
        build_net: &build_net,
        iterations: settings.iterations,
        eval_every: settings.eval_every,
    };
    let mut sampler = BatchSampler::new(&data.train, &seeds, settings.batch_size, settings.batch_order, schedule)
        .map_err(|_stopped| crate::runs::interrupt::Interrupted)?;
    let seeds = seeds.as_slice();
    let models = seeds.len();
    let layers = measured_layers(&learner.model, settings.conv_measures);
    let mut activity = ActivityRecord::new(layers.iter().map(|l| (l.name.to_string(), l.units)).collect());
    let mut logs: Vec<ModelLog> = (0..models).map(|_| ModelLog { curve: Vec::new(), diverged_at: None }).collect();
    // Losses stay on the device until the next evaluation point, the one place the loop
    // synchronises with the device; each step's loss is kept, so a NaN's iteration is exact.
    let mut step_losses: Vec<Tensor> = Vec::new();
    let mut loss_sum = Tensor::zeros([models as i64], (Kind::Double, device));
    let mut loss_steps = 0usize;
    let mut rates = lrs.clone();
    rates.dedup();
    let rates: Vec<String> = rates.iter().map(f64::to_string).collect();
    let label = format!(
        "{} {} lr {} seed{} {:?}",
        settings.dataset,
        settings.method,
        rates.join(","),
        if models > 1 { "s" } else { "" },
        seeds
    );
    let mut progress = Progress::new(&label, settings.iterations as u64, 5);
    let mut last_accuracy = f64::NAN;
    let mut last_loss = f64::NAN;
    let mut iterations_done = 0;

    for iteration in 1..=settings.iterations {
        crate::runs::interrupt::check()?;
        let (images, labels) = sampler.next_batch(&data.train);
        let (losses, forward) = learner.step(&settings.normalization.apply(&images), &labels);
        loss_sum += losses.to_kind(Kind::Double);
        loss_steps += 1;
        step_losses.push(losses);
        if iteration % settings.record_every == 0 {
            activity.record(iteration, &layers.iter().map(|l| &forward.hidden[l.index]).collect::<Vec<_>>());
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
                    log.curve.push(CurveRow {
                        iteration,
                        train_loss: Some(mean_losses[s]),
                        test_accuracy: eval.accuracy[s],
                    });
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
    let units = final_eval.units.expect("asked for units");
    let one_by_one = evaluate(&learner, &data.test, &TrainSettings { test_batch_size: 1, ..settings.clone() }, false);
    let finished = Finished { activity: &activity, wall_time_s: started.elapsed().as_secs_f64(), iterations_done };
    let mut summaries = Vec::new();
    for (s, log) in logs.into_iter().enumerate() {
        let dir = &dirs[s];
        if !still_ours(s) {
            log::warn!("{}: taken over by another worker; this worker's result is not written", dir.display());
            continue;
        }
        let result = ModelResult {
            index: s,
            log,
            final_accuracy: final_eval.accuracy[s],
            accuracy_batch1: one_by_one.accuracy[s],
            units: &units[s],
            weights: learner.pytorch_state(s as i64),
        };
        let summary = finished.write_run(dir, config_bytes[s], result)?;
        summaries.push((s, summary));
    }
    Ok(summaries)
}

/// Refuses runs one model cannot train together (they differ in more than what each
/// model holds its own of), invalid settings, and data that are not the runs'.
fn check_runs(runs: &[RunSpec], data: &RunData) -> Result<()> {
    let settings = &runs[0].settings;
    if let Some(other) = runs.iter().find(|r| !settings.equal_but_per_model(&r.settings)) {
        let keys = [settings, &other.settings].map(|s| GroupKey::of(s, Limit::default()));
        let differing = crate::engine::settings::differing_columns(&[&keys[0], &keys[1]]);
        bail!(
            "one model trains runs that differ in their learning rate and rule settings only; these differ in {}",
            differing.join(", ")
        );
    }
    for run in runs {
        run.settings.validate()?;
    }
    if data.kind != settings.dataset {
        bail!("the data loaded is {}, the settings ask for {}", data.kind, settings.dataset);
    }
    for (split, name) in [(&data.train, "training"), (&data.test, "test")] {
        if split.is_empty() {
            bail!("the {} {name} split in {} has no images", data.kind, data.dir.display());
        }
    }
    Ok(())
}

/// Writes each run's `config.json` into a cleared run folder; returns their sizes.
fn write_configs(runs: &[RunSpec], data: &RunData, dirs: &[PathBuf]) -> Result<Vec<u64>> {
    let device = data.train.images.device();
    let system = serde_json::to_value(SystemInfo::detect())?;
    let choices = serde_json::Value::Object(choices());
    let seed_batch: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    let mut sizes = Vec::new();
    for (dir, run) in dirs.iter().zip(runs) {
        rundir::prepare(dir)?;
        let config = RunConfig {
            format_version: rundir::FORMAT_VERSION,
            settings: run.settings.clone(),
            seed: run.seed,
            seed_batch: seed_batch.clone(),
            data_limit: data.limit,
            train_images: data.train.len(),
            test_images: data.test.len(),
            data_dir: data.dir.clone(),
            data_files: data.files.clone(),
            device: device_name(device),
            system: system.clone(),
            choices: choices.clone(),
        };
        sizes.push(rundir::write_json(dir, rundir::CONFIG, &config)?);
    }
    Ok(sizes)
}

/// What the whole seed batch ended with.
struct Finished<'a> {
    activity: &'a ActivityRecord,
    wall_time_s: f64,
    iterations_done: usize,
}

/// What one model of the seed batch ended with.
struct ModelResult<'a> {
    index: usize,
    log: ModelLog,
    final_accuracy: f64,
    /// With a test batch of one example.
    accuracy_batch1: f64,
    units: &'a LayerUnits,
    /// Final parameters and buffers under PyTorch's names.
    weights: Vec<(String, Tensor)>,
}

impl Finished<'_> {
    /// Writes one run folder's files after its `config.json`, `summary.json` last.
    fn write_run(&self, dir: &Path, config_bytes: u64, result: ModelResult) -> Result<Summary> {
        let ModelResult { index, log, final_accuracy, accuracy_batch1, units, weights } = result;
        let diverged = log.diverged_at.is_some();
        let activation_rows: Vec<ActivationRow> = self
            .activity
            .rows(index as i64, log.diverged_at)
            .into_iter()
            .map(|(iteration, layer, unit, activation_prob)| ActivationRow {
                iteration,
                layer: layer.to_string(),
                unit,
                activation_prob,
            })
            .collect();
        let unit_rows: Vec<UnitRow> =
            if diverged { Vec::new() } else { units.iter().flat_map(|(_, us)| us.iter().cloned()).collect() };
        let mut files = std::collections::BTreeMap::new();
        files.insert(rundir::CONFIG.to_string(), config_bytes);
        files.insert(rundir::CURVE.to_string(), rundir::write_csv(dir, &log.curve)?);
        files.insert(rundir::ACTIVATION_PROB.to_string(), rundir::write_csv(dir, &activation_rows)?);
        files.insert(rundir::UNIT_STATS.to_string(), rundir::write_csv(dir, &unit_rows)?);
        files.insert(rundir::MODEL.to_string(), rundir::write_model(dir, &weights)?);
        let best = log.curve.iter().max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
        let summary = Summary {
            outcome: if diverged { Outcome::Diverged } else { Outcome::Complete },
            diverged_at: log.diverged_at,
            iterations: log.diverged_at.unwrap_or(self.iterations_done),
            final_accuracy: (!diverged).then_some(final_accuracy),
            test_accuracy_batch1: (!diverged).then_some(accuracy_batch1),
            best_accuracy: best.map(|b| b.test_accuracy),
            best_iteration: best.map(|b| b.iteration),
            final_train_loss: log.curve.last().and_then(|c| c.train_loss),
            wall_time_s: Some(self.wall_time_s),
            layers: if diverged {
                Vec::new()
            } else {
                units.iter().map(|(name, us)| LayerSummary::of(name, us)).collect()
            },
            files,
        };
        rundir::write_json(dir, rundir::SUMMARY, &summary)?;
        match log.diverged_at {
            Some(at) => log::warn!("{}: diverged at iteration {at}", dir.display()),
            None => log::info!("{}: test accuracy {:.2} %", dir.display(), 100.0 * final_accuracy),
        }
        Ok(summary)
    }
}
