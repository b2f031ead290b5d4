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
use crate::results::checkpoint::{self, Checkpoint, CheckpointInfo};
use crate::results::rundir::{
    self, ActivationRow, CurveRow, Outcome, Provenance, RunConfig, Stretch, Summary, UnitRow,
};
use crate::runs::claim::{try_claim, HeldClaims};
use crate::runs::experiment::RunSpec;
use crate::runs::progress::Progress;
use crate::runs::provenance;
use anyhow::{bail, Result};
use std::collections::HashMap;
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

/// How `homeonorm train` treats what is there and what it trains with.
pub struct TrainCommand<'a> {
    /// Train runs complete in `out` again (with these settings, or with other ones).
    pub replace: bool,
    /// The data subset, and the files the data has now (where they could be read).
    pub limit: Limit,
    pub data_now: Option<&'a [crate::engine::data::DataFile]>,
    pub seeds_per_model: crate::runs::packing::SeedsPerModel,
    pub checkpoints: CheckpointPolicy,
    /// A claim not refreshed for this long belongs to a worker that is gone (as `sweep`'s).
    pub claim_timeout: std::time::Duration,
}

/// `homeonorm train`: trains `seeds` of `settings` into run folders under `out`,
/// `seeds_per_model` at a time as one model, and prints each run's result. Each seed's
/// folder is decided on as a sweep decides ([`crate::runs::existing`]): a complete run
/// of these settings is kept (`replace` trains it again), one of other settings is an
/// error (`replace` retrains it), a foreign folder is never trained over, and a run
/// another worker (a sweep's) holds the claim on is refused, naming it. `load` gives the
/// data, called only when something is to be trained.
pub fn train_command(
    settings: &TrainSettings,
    seeds: &[u64],
    out: &Path,
    command: &TrainCommand,
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
        match existing(&dir, settings, command.limit, command.data_now) {
            Existing::Foreign(why) => return Err(foreign_error(1, &why)),
            Existing::Changed(changed) if !command.replace => {
                return Err(changed_error(&[(dir.as_path(), changed.as_slice())], "pass --replace"))
            }
            Existing::Done if !command.replace => {
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
    crate::runs::interrupt::install(&crate::runs::interrupt::StopSignal::ALL)?;
    // The data first: data that cannot be loaded leave nothing written.
    let data = load()?;
    // Claimed as a sweep claims them: a run a sweep's worker is training is not trained
    // beside it (a claim whose worker is gone, or stale, is taken over).
    let held = HeldClaims::new(command.claim_timeout / 4);
    let mut claims = Vec::new();
    for &seed in &to_train {
        let dir = rundir::run_dir(out, settings, seed);
        match try_claim(&dir, command.claim_timeout)? {
            Some(claim) => {
                held.hold(&claim);
                claims.push(claim);
            }
            None => bail!(
                "{} is being trained by another worker ({}): train trains no run beside it; run it again when \
                 that worker is done, or stop it",
                dir.display(),
                crate::runs::claim::holder(&dir)
            ),
        }
    }
    // (every claim still held is released when `held` goes, on an error too)
    let mut diverged = 0;
    let width = command.seeds_per_model.for_method(settings.method.method());
    for (seeds, claims) in to_train.chunks(width).zip(claims.chunks(width)) {
        let runs: Vec<RunSpec> = seeds.iter().map(|&seed| RunSpec { settings: settings.clone(), seed }).collect();
        let still_ours = |k: usize| claims[k].is_ours();
        let written = train_runs(&runs, &data, out, &still_ours, &command.checkpoints);
        held.release(claims);
        for (k, summary) in written? {
            match summary.final_accuracy {
                Some(acc) => println!("seed {}: test accuracy {:.2} %", seeds[k], 100.0 * acc),
                None => {
                    diverged += 1;
                    println!("seed {}: diverged at iteration {}", seeds[k], summary.diverged_at.unwrap_or(0));
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
    checkpoints: &CheckpointPolicy,
) -> Result<Vec<(u64, Summary)>> {
    let runs: Vec<RunSpec> = seeds.iter().map(|&seed| RunSpec { settings: settings.clone(), seed }).collect();
    let trained = train_runs(&runs, data, out, &|_| true, checkpoints)?;
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
    checkpoints: &CheckpointPolicy,
) -> Result<Vec<(usize, Summary)>> {
    let Some(first) = runs.first() else { return Ok(Vec::new()) };
    let settings = &first.settings;
    check_runs(runs, data)?;
    let device = data.train.images.device();
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    let lrs: Vec<f64> = runs.iter().map(|r| r.settings.lr).collect();
    let dirs: Vec<PathBuf> = runs.iter().map(|r| rundir::run_dir(out, &r.settings, r.seed)).collect();
    let resumable = resumable(runs, data, &dirs)?;
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
    let mut training = Training {
        logs: (0..models).map(|_| ModelLog { curve: Vec::new(), diverged_at: None }).collect(),
        activity: ActivityRecord::new(layers.iter().map(|l| (l.name.to_string(), l.units)).collect()),
        step_losses: Vec::new(),
        loss_sum: Tensor::zeros([models as i64], (Kind::Double, device)),
        loss_steps: 0,
        wall_time_before: 0.0,
        stretches_before: vec![Vec::new(); models],
        stretch: provenance::begin(device, 0),
    };
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
    let mut iterations_done = 0;
    if let Some(taken_up) = resumable {
        iterations_done = training.restore(&mut learner, &mut sampler, taken_up)?;
        log::info!("{label}: resumed at iteration {iterations_done}");
    }
    let mut progress = Progress::new(&label, settings.iterations as u64, 5).resuming_from(iterations_done as u64);
    let mut last_accuracy = f64::NAN;
    let mut last_loss = f64::NAN;
    let mut last_checkpoint = (std::time::Instant::now(), iterations_done);
    // Only the runs this worker still holds are written; with none left (a worker that
    // stalled and came back), the training stops here, not at the next evaluation.
    let checkpoint = |training: &Training, learner: &Learner, iteration: usize| -> Result<()> {
        let ours: Vec<usize> = (0..runs.len()).filter(|&s| still_ours(s)).collect();
        if ours.is_empty() {
            return Err(TakenOver.into());
        }
        let wall_time_s = training.wall_time_before + started.elapsed().as_secs_f64();
        for &s in &ours {
            let info = training.info(s, iteration, &runs[s], data, wall_time_s);
            checkpoint::write(&dirs[s], &info, &training.tensors(learner, s as i64))?;
        }
        log::info!("{label}: checkpoint at iteration {iteration} ({} of {} runs)", ours.len(), runs.len());
        Ok(())
    };

    // Fault injection for the tests: a stop as if signalled once this step (and its
    // evaluation) is done, so that every moment of a run can be stopped at exactly.
    let stop_after: Option<usize> =
        std::env::var("HOMEONORM_STOP_AFTER_ITERATION").ok().and_then(|v| v.trim().parse().ok());
    for iteration in iterations_done + 1..=settings.iterations {
        if crate::runs::interrupt::requested() {
            // The steps taken so far are kept: the next sweep goes on from here.
            if iteration > 1 && last_checkpoint.1 != iteration - 1 {
                checkpoint(&training, &learner, iteration - 1)?;
            }
            return Err(crate::runs::interrupt::Interrupted.into());
        }
        let (images, labels) = sampler.next_batch(&data.train);
        let (losses, forward) = learner.step(&settings.normalization.apply(&images), &labels);
        training.loss_sum += losses.to_kind(Kind::Double);
        training.loss_steps += 1;
        training.step_losses.push(losses);
        if iteration % settings.record_every == 0 {
            let hidden: Vec<&Tensor> = layers.iter().map(|l| &forward.hidden[l.index]).collect();
            training.activity.record(iteration, &hidden);
        }
        iterations_done = iteration;
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            let first = iteration + 1 - training.step_losses.len();
            record_divergence(&mut training.logs, &training.step_losses, first, seeds);
            training.step_losses.clear();
            if training.logs.iter().all(|l| l.diverged_at.is_some()) {
                break;
            }
            if !(0..models).any(still_ours) {
                return Err(TakenOver.into());
            }
            let eval = evaluate(&learner, &data.test, settings, false);
            let mean_losses = training.mean_losses();
            for (s, log) in training.logs.iter_mut().enumerate() {
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
            training.loss_sum = training.loss_sum.zero_();
            training.loss_steps = 0;
        }
        if iteration < settings.iterations && checkpoints.due(iteration, last_checkpoint.0.elapsed()) {
            checkpoint(&training, &learner, iteration)?;
            last_checkpoint = (std::time::Instant::now(), iteration);
        }
        if stop_after == Some(iteration) {
            crate::runs::interrupt::request();
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
    let wall_time_s = training.wall_time_before + started.elapsed().as_secs_f64();
    let mut provenances: Vec<Provenance> =
        (0..models).map(|s| Provenance { stretches: training.stretches(s, iterations_done) }).collect();
    let finished = Finished { activity: &training.activity, wall_time_s, iterations_done };
    let mut summaries = Vec::new();
    for (s, log) in training.logs.into_iter().enumerate() {
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
            provenance: std::mem::take(&mut provenances[s]),
        };
        let summary = finished.write_run(dir, config_bytes[s], result)?;
        if checkpoints.keep {
            checkpoint::remove_previous(dir)?;
        } else {
            checkpoint::remove(dir)?;
        }
        summaries.push((s, summary));
    }
    Ok(summaries)
}

/// When a run writes its checkpoint, besides on a stop signal (which always writes one).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointPolicy {
    /// Wall time between checkpoints; `None`: none by time.
    pub every: Option<std::time::Duration>,
    /// Iterations between checkpoints; `None`: none by count.
    pub every_iterations: Option<usize>,
    /// Keep the last checkpoint when the run completes (by default it is removed).
    pub keep: bool,
}

/// The default interval: a preempted run loses at most this much of its training.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every: Some(CHECKPOINT_EVERY), every_iterations: None, keep: false }
    }
}

impl std::str::FromStr for CheckpointPolicy {
    type Err = String;
    /// `--checkpoint-every`: a wall time (`90s`, `10m`, `2h`), a count of iterations
    /// (`5000it`), both comma-separated (whichever comes first), or `0` for none but the
    /// one a stop signal writes.
    fn from_str(text: &str) -> Result<CheckpointPolicy, String> {
        let bad = |item: &str| {
            format!(
                "--checkpoint-every: `{item}` is not a duration (90s, 10m, 2h), a count of iterations (5000it) or 0"
            )
        };
        let mut policy = CheckpointPolicy { every: None, every_iterations: None, keep: false };
        for item in text.split(',').map(str::trim) {
            if item == "0" {
                continue;
            }
            if let Some(n) = item.strip_suffix("it") {
                let n: usize = n.parse().map_err(|_| bad(item))?;
                policy.every_iterations = (n > 0).then_some(n);
                continue;
            }
            let (number, unit) = item.split_at(item.len().saturating_sub(1));
            let seconds = match unit {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad(item)),
            };
            let value: f64 = number.parse().map_err(|_| bad(item))?;
            if !(value.is_finite() && value >= 0.0 && value * seconds <= 1e9) {
                return Err(bad(item));
            }
            policy.every = (value > 0.0).then(|| std::time::Duration::from_secs_f64(value * seconds));
        }
        Ok(policy)
    }
}

impl CheckpointPolicy {
    /// Whether a checkpoint is due after `iteration`, `since` the last one (or the start).
    fn due(&self, iteration: usize, since: std::time::Duration) -> bool {
        self.every.is_some_and(|every| since >= every)
            || self.every_iterations.is_some_and(|n| iteration.is_multiple_of(n))
    }
}

/// The loop's state besides the model: what a checkpoint keeps of it.
struct Training {
    logs: Vec<ModelLog>,
    activity: ActivityRecord,
    /// Each step's losses `[S]` since the last evaluation (kept on the device, so that a
    /// NaN's iteration is exact: the loop synchronises only at evaluations).
    step_losses: Vec<Tensor>,
    /// Their sum `[S]` (f64) and count, for the curve's mean training loss.
    loss_sum: Tensor,
    loss_steps: usize,
    /// Seconds trained in earlier stretches of the run (before its last resume).
    wall_time_before: f64,
    /// Each model's earlier stretches (its checkpoint's), and this process's.
    stretches_before: Vec<Vec<Stretch>>,
    stretch: Stretch,
}

impl Training {
    fn mean_losses(&self) -> Vec<f64> {
        Vec::<f64>::try_from((&self.loss_sum / self.loss_steps as f64).to_device(Device::Cpu)).unwrap()
    }

    /// Model s's tensors for its checkpoint: the learner's, the losses since the last
    /// evaluation (`log/pending_losses`) and the heat-map rows (`log/activity`).
    fn tensors(&self, learner: &Learner, s: i64) -> Vec<(String, Tensor)> {
        let mut tensors = learner.model_checkpoint(s);
        if !self.step_losses.is_empty() {
            tensors.push(("log/pending_losses".into(), Tensor::stack(&self.step_losses, 0).select(1, s)));
        }
        if let (_, Some(rows)) = self.activity.model_rows(s) {
            tensors.push(("log/activity".into(), rows));
        }
        tensors
    }

    /// Model s's stretches as they stand at `iteration`: its earlier ones and this process's, ending now.
    fn stretches(&self, s: usize, iteration: usize) -> Vec<Stretch> {
        [&self.stretches_before[s][..], &[provenance::ended(&self.stretch, iteration)]].concat()
    }

    /// Model s's checkpoint metadata after `iteration` steps.
    fn info(&self, s: usize, iteration: usize, run: &RunSpec, data: &RunData, wall_time_s: f64) -> CheckpointInfo {
        let loss_sum = Vec::<f64>::try_from(self.loss_sum.to_device(Device::Cpu)).unwrap()[s];
        CheckpointInfo {
            checkpoint_format: checkpoint::CHECKPOINT_FORMAT,
            iteration,
            seed: run.seed,
            settings: run.settings.identity(data.limit),
            data_sha256: crate::engine::data::content_sha256(&data.files),
            curve: self.logs[s].curve.clone(),
            diverged_at: self.logs[s].diverged_at,
            loss_sum,
            loss_steps: self.loss_steps,
            activity_iterations: self.activity.model_rows(s as i64).0,
            wall_time_s,
            stretches: self.stretches(s, iteration),
            tensors_sha256: String::new(), // set as it is written
        }
    }

    /// Takes up every model where its checkpoint left it (all at one iteration:
    /// [`resumable`]); returns that iteration.
    fn restore(
        &mut self,
        learner: &mut Learner,
        sampler: &mut BatchSampler,
        taken_up: Vec<Checkpoint>,
    ) -> Result<usize> {
        let iteration = taken_up[0].info.iteration;
        let states: Vec<HashMap<String, Tensor>> =
            taken_up.iter().map(|c| c.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()).collect();
        learner
            .restore(iteration as u64, &states)
            .map_err(|e| anyhow::anyhow!("a checkpoint does not fit its model: {e}"))?;
        sampler.skip(iteration);
        let device = self.loss_sum.device();
        for (log, c) in self.logs.iter_mut().zip(&taken_up) {
            log.curve = c.info.curve.clone();
            log.diverged_at = c.info.diverged_at;
        }
        let pending: Vec<Tensor> =
            taken_up.iter().filter_map(|c| c.tensors.get("log/pending_losses")).map(|t| t.to_device(device)).collect();
        if pending.len() == taken_up.len() {
            self.step_losses = Tensor::stack(&pending, 1).unbind(0);
        }
        let sums: Vec<f64> = taken_up.iter().map(|c| c.info.loss_sum).collect();
        self.loss_sum = Tensor::from_slice(&sums).to_device(device);
        self.loss_steps = taken_up[0].info.loss_steps;
        let rows: Vec<Tensor> =
            taken_up.iter().filter_map(|c| c.tensors.get("log/activity")).map(|t| t.to_device(device)).collect();
        if rows.len() == taken_up.len() {
            self.activity.restore(&taken_up[0].info.activity_iterations, &rows);
        }
        self.wall_time_before = taken_up[0].info.wall_time_s;
        self.stretches_before = taken_up.iter().map(|c| c.info.stretches.clone()).collect();
        self.stretch.from_iteration = iteration;
        Ok(iteration)
    }
}

/// The checkpoints `runs` can be taken up from: one of each run's (its last, or the one
/// before where a kill came between the runs' writes), all at the newest iteration they
/// share, each of its run's seed, settings and data. Otherwise `None`: the runs start
/// over, any checkpoint among them removed and why named in the log.
fn resumable(runs: &[RunSpec], data: &RunData, dirs: &[PathBuf]) -> Result<Option<Vec<Checkpoint>>> {
    let mut usable: Vec<Vec<Checkpoint>> = Vec::new();
    let mut unusable = Vec::new();
    for (run, dir) in runs.iter().zip(dirs) {
        let mut theirs = Vec::new();
        for found in checkpoint::read_all(dir) {
            match found {
                Err(e) => unusable.push(format!("{e:#}")),
                Ok(c) => {
                    let identity = run.settings.identity(data.limit);
                    match c.mismatch(run.seed, &identity, &data.files, run.settings.iterations) {
                        Some(why) => unusable.push(format!("{}: {why}", dir.join(rundir::CHECKPOINT).display())),
                        None => theirs.push(c),
                    }
                }
            }
        }
        usable.push(theirs);
    }
    if usable.iter().all(Vec::is_empty) && unusable.is_empty() {
        return Ok(None); // a fresh start
    }
    let shared = usable[0]
        .iter()
        .map(|c| c.info.iteration)
        .filter(|&i| usable.iter().all(|theirs| theirs.iter().any(|c| c.info.iteration == i)))
        .max();
    if let Some(iteration) = shared {
        if !unusable.is_empty() {
            log::warn!("checkpoints not used: {}", unusable.join("; "));
        }
        let taken_up = usable
            .into_iter()
            .map(|theirs| theirs.into_iter().find(|c| c.info.iteration == iteration).expect("shared by every run"))
            .collect();
        return Ok(Some(taken_up));
    }
    if unusable.is_empty() {
        unusable.push("not every run of the model has one at the same iteration".into());
    }
    log::warn!("starting over, not from the checkpoints: {}", unusable.join("; "));
    for dir in dirs {
        checkpoint::remove(dir)?;
    }
    Ok(None)
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
    provenance: Provenance,
}

impl Finished<'_> {
    /// Writes one run folder's files after its `config.json`, `summary.json` last.
    fn write_run(&self, dir: &Path, config_bytes: u64, result: ModelResult) -> Result<Summary> {
        let ModelResult { index, log, final_accuracy, accuracy_batch1, units, weights, provenance } = result;
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
        files.insert(rundir::PROVENANCE.to_string(), rundir::write_json(dir, rundir::PROVENANCE, &provenance)?);
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
