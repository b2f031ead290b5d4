//! `homeonorm sweep`: runs an experiment's grid, resumably and across workers.
//!
//! - A complete run (`rundir::state`) is done and skipped; an unfinished folder
//!   (interrupted, truncated) is redone. A complete run whose recorded settings
//!   differ from the grid's stops the sweep with an error naming the run and the
//!   settings, unless `retrain_changed` asks for it to be retrained in place.
//! - `--shard I/N` (I from 0) takes runs I, I+N, I+2N, … of the grid's stable order,
//!   so the N tasks of a Slurm array or a Kubernetes indexed Job split one sweep;
//!   `--shard I-J/N` takes shards I to J together.
//! - Workers sharing one results folder never train a run twice at once: each claims
//!   a run before it trains it (`crate::runs::claim`).
//! - Ctrl-C and SIGTERM stop the training at its next step and release the claims;
//!   the runs in progress stay unfinished.
//! - Pending seeds of one setting train together as a seed batch (`--seeds-per-batch`).

use crate::engine::data::{DataFile, DatasetKind, Limit};
use crate::engine::settings::TrainSettings;
use crate::results::rundir::{self, Outcome, RunState};
use crate::runs::claim::{try_claim, HeldClaims};
use crate::runs::existing::{changed_error, existing, foreign_error, Existing};
use crate::runs::experiment::{Experiment, RunSpec};
use crate::runs::packing::{self, SeedsPerModel};
use crate::runs::placement::Placement;
use crate::runs::progress::Progress;
use crate::runs::train::{train_runs, RunData, TakenOver};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `I/N`: this worker's share of a sweep, the grid's runs whose index is I mod N; or
/// `I-J/N`, the shards I to J of N together (an array task running several shards when
/// the cluster's `MaxArraySize` allows fewer tasks than shards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub first: usize,
    pub last: usize,
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    pub fn one(index: usize, count: usize) -> Shard {
        Shard { first: index, last: index, count }
    }

    /// Whether run `index` of the grid is in this share.
    pub fn holds(&self, index: usize) -> bool {
        (self.first..=self.last).contains(&(index % self.count))
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::one(0, 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}/{}", self.first, self.count)
        } else {
            write!(f, "{}-{}/{}", self.first, self.last, self.count)
        }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N or I-J/N with 0 ≤ I ≤ J < N (I counts from 0), got `{s}`");
        let (range, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, j) = range.split_once('-').unwrap_or((range, range));
        let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        let (first, last, count) = (number(i)?, number(j)?, number(n)?);
        if count == 0 || first > last || last >= count {
            return Err(bad());
        }
        Ok(Shard { first, last, count })
    }
}

#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Results root: runs go to `<out>/<experiment name>/…`.
    pub out: PathBuf,
    pub shard: Shard,
    pub seeds_per_batch: SeedsPerModel,
    /// A claim not refreshed for this long belongs to a worker that is gone.
    pub claim_timeout: Duration,
    /// The data subset the runs use (`--limit`), part of what identifies a run.
    pub data_limit: Limit,
    /// Retrain complete runs whose recorded settings differ from the grid's, instead of stopping.
    pub retrain_changed: bool,
    /// When the runs write their checkpoints (and whether a completed run keeps its last).
    pub checkpoints: crate::runs::train::CheckpointPolicy,
    /// The data files each dataset now has (with their hashes), where they could be read:
    /// a complete run recorded on other bytes is a changed run.
    pub data_files: BTreeMap<DatasetKind, Vec<DataFile>>,
}

/// One run of the grid with its folder and state.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub index: usize,
    pub spec: RunSpec,
    pub dir: PathBuf,
    pub state: RunState,
    /// For a complete run: the recorded settings that differ from the grid's.
    pub changed: Vec<String>,
}

impl PlannedRun {
    /// Whether the run is to be trained (again) by a sweep with these options.
    pub fn pending(&self, options: &SweepOptions) -> bool {
        match self.state {
            RunState::Done(_) => !self.changed.is_empty() && options.retrain_changed,
            RunState::Foreign(_) => false,
            RunState::Missing | RunState::Unfinished(_) => true,
        }
    }
}

/// This shard's runs, in the grid's order, with their current state.
pub fn plan(experiment: &Experiment, options: &SweepOptions) -> Vec<PlannedRun> {
    let root = options.out.join(&experiment.name);
    experiment
        .runs
        .iter()
        .enumerate()
        .filter(|(i, _)| options.shard.holds(*i))
        .map(|(index, spec)| {
            let s = &spec.settings;
            let dir = rundir::run_dir(&root, s, spec.seed);
            let state = rundir::state(&dir);
            let changed = match existing(&dir, s, options.data_limit, data_now(s, options)) {
                Existing::Changed(changed) => changed,
                _ => Vec::new(),
            };
            PlannedRun { index, spec: spec.clone(), dir, state, changed }
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct SweepResult {
    /// Run folders this worker trained.
    pub trained: Vec<PathBuf>,
    pub diverged: usize,
    /// Already complete (or diverged) before this worker started.
    pub already_done: usize,
    /// Held by another worker when this one came to them: waited for until finished there
    /// (or trained here after all, when a claim was released unfinished or went stale).
    pub claimed_elsewhere: usize,
    /// Taken over by another worker while this one trained them (it had stalled).
    pub taken_over: usize,
}

/// Stops a sweep on complete runs whose settings differ from the grid's, unless
/// `retrain_changed` asks for them to be retrained.
pub fn check_changed(planned: &[PlannedRun], options: &SweepOptions) -> Result<()> {
    let foreign: Vec<&str> = planned
        .iter()
        .filter_map(|r| if let RunState::Foreign(why) = &r.state { Some(why.as_str()) } else { None })
        .collect();
    if let Some(first) = foreign.first() {
        return Err(foreign_error(foreign.len(), first));
    }
    let changed: Vec<(&Path, &[String])> =
        planned.iter().filter(|r| !r.changed.is_empty()).map(|r| (r.dir.as_path(), r.changed.as_slice())).collect();
    if !changed.is_empty() && !options.retrain_changed {
        return Err(changed_error(&changed, RETRAIN));
    }
    Ok(())
}

/// How a sweep retrains changed runs (the changed-runs error says it).
const RETRAIN: &str = "pass --retrain-changed";

/// Pending runs as seed batches, each trained as one model ([`packing::seed_batches`]).
pub fn seed_batches<'a>(pending: Vec<&'a PlannedRun>, options: &SweepOptions) -> Vec<Vec<&'a PlannedRun>> {
    packing::seed_batches(pending, |run| &run.spec.settings, options.seeds_per_batch)
}

/// The files a run's dataset has now, where they could be read.
fn data_now<'a>(settings: &TrainSettings, options: &'a SweepOptions) -> Option<&'a [DataFile]> {
    options.data_files.get(&settings.dataset).map(Vec::as_slice)
}

/// Whether a planned run's folder now holds a complete run of the settings it asks for.
fn done_as_asked(run: &PlannedRun, options: &SweepOptions) -> bool {
    let settings = &run.spec.settings;
    existing(&run.dir, settings, options.data_limit, data_now(settings, options)) == Existing::Done
}

/// Runs this shard's pending runs. `load` gives a dataset's data on the device.
pub fn run(
    experiment: &Experiment,
    options: &SweepOptions,
    load: impl FnMut(DatasetKind) -> Result<RunData>,
) -> Result<SweepResult> {
    run_planned(experiment, options, &plan(experiment, options), load)
}

/// [`run`] with the shard's runs already planned (a plan reads every run folder).
///
/// A sweep ends when every run of its shard is complete: runs another worker holds are
/// waited for, and trained here when their claim is released unfinished or goes stale
/// (its worker died or stalled past the claim timeout). So a sweep never returns `Ok`
/// with a run of its shard unfinished; a stop asked for meanwhile returns
/// [`crate::runs::interrupt::Interrupted`].
pub fn run_planned(
    experiment: &Experiment,
    options: &SweepOptions,
    planned: &[PlannedRun],
    mut load: impl FnMut(DatasetKind) -> Result<RunData>,
) -> Result<SweepResult> {
    if options.seeds_per_batch == SeedsPerModel::Asked(0) {
        bail!("--seeds-per-batch must be positive");
    }
    let mut result = SweepResult::default();
    check_changed(planned, options)?;
    let pending: Vec<&PlannedRun> = planned.iter().filter(|r| r.pending(options)).collect();
    result.already_done = planned.len() - pending.len();
    log::info!(
        "sweep {}: {} runs in shard {} of {}; {} done, {} to run",
        experiment.name,
        planned.len(),
        options.shard,
        experiment.runs.len(),
        result.already_done,
        pending.len()
    );

    let mut pass = Pass {
        experiment,
        options,
        held: HeldClaims::new(options.claim_timeout / 4),
        data: None,
        progress: Progress::new(&format!("sweep {}", experiment.name), pending.len() as u64, 1),
        finished: 0,
    };
    let outcome = (|| -> Result<()> {
        let mut remaining = pending;
        let mut waited_for: Vec<PathBuf> = Vec::new();
        let mut said = None; // (the count the log last gave: a line when it changes)
        loop {
            let elsewhere = pass.train(remaining, &mut result, &mut load)?;
            // Runs other workers hold (or took over from this one): done when they finish them.
            let held_elsewhere = elsewhere.len();
            remaining = elsewhere.into_iter().filter(|r| !done_as_asked(r, options)).collect();
            pass.finished += (held_elsewhere - remaining.len()) as u64;
            if remaining.is_empty() {
                break;
            }
            for run in &remaining {
                if !waited_for.contains(&run.dir) {
                    waited_for.push(run.dir.clone());
                }
            }
            if said != Some(remaining.len()) {
                said = Some(remaining.len());
                log::info!(
                    "waiting for {} run(s) other workers hold (trained here if a claim is released unfinished \
                     or goes stale); the first: {}",
                    remaining.len(),
                    remaining[0].dir.display()
                );
            }
            wait_a_while(options.claim_timeout)?;
        }
        result.claimed_elsewhere = waited_for.len();
        Ok(())
    })();
    pass.held.release_all();
    pass.progress.finish();
    outcome?;
    Ok(result)
}

/// How often a sweep looks again at runs other workers hold: often enough to take over a
/// claim soon after it goes stale, seldom enough to cost nothing.
fn poll_interval(claim_timeout: Duration) -> Duration {
    (claim_timeout / 4).min(Duration::from_secs(2))
}

/// Sleeps one poll interval, or returns [`crate::runs::interrupt::Interrupted`] as soon as a stop is asked for.
fn wait_a_while(claim_timeout: Duration) -> Result<()> {
    let tick = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < poll_interval(claim_timeout) {
        crate::runs::interrupt::check()?;
        std::thread::sleep(tick);
        slept += tick;
    }
    Ok(crate::runs::interrupt::check()?)
}

/// One worker's state across its passes over the shard's runs.
struct Pass<'a> {
    experiment: &'a Experiment,
    options: &'a SweepOptions,
    /// The claims this worker holds (the heartbeat refreshes them).
    held: HeldClaims,
    /// The dataset loaded last, kept for the next model that trains on it.
    data: Option<RunData>,
    progress: Progress,
    finished: u64,
}

impl<'a> Pass<'a> {
    /// Trains the runs of `runs` this worker can claim, seed batch by seed batch; returns
    /// the runs it could not claim and those taken over from it (another worker holds them).
    fn train(
        &mut self,
        runs: Vec<&'a PlannedRun>,
        result: &mut SweepResult,
        load: &mut impl FnMut(DatasetKind) -> Result<RunData>,
    ) -> Result<Vec<&'a PlannedRun>> {
        let options = self.options;
        let root = options.out.join(&self.experiment.name);
        let mut elsewhere = Vec::new();
        for group in seed_batches(runs, options) {
            let mut mine = Vec::new();
            let mut claims = Vec::new();
            for run in &group {
                // Another worker may have finished it (or retrained it) since the plan.
                if done_as_asked(run, options) {
                    result.already_done += 1;
                    self.finished += 1;
                } else if let Some(claim) = try_claim(&run.dir, options.claim_timeout)? {
                    self.held.hold(&claim);
                    // Under the claim, what the folder holds now: another sweep (of other
                    // settings, into the same folder) may have completed it since the plan.
                    let settings = &run.spec.settings;
                    match existing(&run.dir, settings, options.data_limit, data_now(settings, options)) {
                        Existing::Foreign(why) => return Err(foreign_error(1, &why)),
                        Existing::Done => {
                            self.held.release(&[claim]);
                            result.already_done += 1;
                            self.finished += 1;
                            continue;
                        }
                        Existing::Changed(changed) if !options.retrain_changed => {
                            return Err(changed_error(&[(run.dir.as_path(), changed.as_slice())], RETRAIN));
                        }
                        Existing::Changed(_) | Existing::Absent => {}
                    }
                    claims.push(claim);
                    mine.push(*run);
                } else {
                    // Said once per wait, with the count, by `run_planned`; each poll only at debug.
                    log::debug!("{}: claimed by another worker", run.dir.display());
                    elsewhere.push(*run);
                }
            }
            if mine.is_empty() {
                continue;
            }
            let settings = &mine[0].spec.settings;
            if self.data.as_ref().map(|d| d.kind) != Some(settings.dataset) {
                self.data = None; // free the previous dataset first
                self.data = Some(load(settings.dataset)?);
            }
            let seeds: Vec<u64> = mine.iter().map(|r| r.spec.seed).collect();
            let specs: Vec<RunSpec> = mine.iter().map(|r| r.spec.clone()).collect();
            let still_ours = |k: usize| claims[k].is_ours();
            let trained = train_runs(&specs, self.data.as_ref().unwrap(), &root, &still_ours, &options.checkpoints);
            self.held.release(&claims);
            let trained = match trained {
                Err(e) if e.is::<TakenOver>() => {
                    log::warn!("seeds {seeds:?}: {e}");
                    Vec::new()
                }
                other => other.with_context(|| {
                    let lrs: Vec<f64> = specs.iter().map(|r| r.settings.lr).collect();
                    format!("training {} {} seeds {seeds:?} at lr {lrs:?}", settings.dataset, settings.method)
                })?,
            };
            for (k, summary) in &trained {
                if summary.outcome == Outcome::Diverged {
                    result.diverged += 1;
                }
                result.trained.push(mine[*k].dir.clone());
            }
            let taken_over: Vec<&PlannedRun> =
                (0..mine.len()).filter(|k| !trained.iter().any(|(t, _)| t == k)).map(|k| mine[k]).collect();
            result.taken_over += taken_over.len();
            elsewhere.extend(taken_over);
            self.finished += trained.len() as u64;
            let here = result.trained.len();
            self.progress.update(self.finished, || format!("{here} trained here"));
        }
        Ok(elsewhere)
    }
}

impl SweepResult {
    /// The line a sweep ends with.
    pub fn summary(&self, experiment: &str) -> String {
        format!(
            "sweep {}: trained {} run(s) here ({} diverged); {} already done; {} waited for while other workers held them; {} taken over",
            crate::text::escape(experiment),
            self.trained.len(),
            self.diverged,
            self.already_done,
            self.claimed_elsewhere,
            self.taken_over
        )
    }
}

/// `homeonorm sweep`: the dry run's plan, or this shard's runs trained on `workers`
/// worker processes (as asked, or this machine's default for `device` and the GPUs of
/// `placement`) of `threads` threads each. `load` gives a dataset's data on `device`.
pub fn command(
    experiment: &Experiment,
    options: &SweepOptions,
    dry_run: bool,
    (workers, threads): (Option<usize>, Option<usize>),
    (device, placement): (tch::Device, Option<&Placement>),
    load: impl FnMut(DatasetKind) -> Result<RunData>,
) -> Result<()> {
    crate::runs::interrupt::install(&crate::runs::interrupt::StopSignal::ALL)?;
    let planned = plan(experiment, options);
    let gpus = placement.map_or(0, |p| p.devices.len());
    let arrangement = |models: usize| crate::runs::workers::arrangement(workers, threads, gpus, models);
    if dry_run {
        return print_plan(&planned, options, arrangement, workers.is_some(), (device, placement));
    }
    check_changed(&planned, options)?;
    let models = seed_batches(planned.iter().filter(|r| r.pending(options)).collect(), options).len();
    let arrangement = arrangement(models);
    if arrangement.workers > 1 {
        // The workers take the seed batches through the claims; this process shows their progress.
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let dirs: Vec<PathBuf> = planned.iter().map(|r| r.dir.clone()).collect();
        let finished = || {
            let done = dirs.iter().filter(|d| d.join(rundir::SUMMARY).is_file()).count();
            (done as u64, dirs.len() as u64)
        };
        crate::runs::workers::run(arrangement, placement, &crate::runs::workers::worker_args(&args), finished)?;
        println!("sweep {}: {} workers finished", crate::text::escape(&experiment.name), arrangement.workers);
        return Ok(());
    }
    tch::set_num_threads(arrangement.threads as i32);
    let result = run_planned(experiment, options, &planned, load)?;
    println!("{}", result.summary(&experiment.name));
    Ok(())
}

/// `sweep --dry-run`: each run's state, the counts, how the runs to train are packed into
/// models and handed to workers, and an estimate of the training time on this machine.
fn print_plan(
    planned: &[PlannedRun],
    options: &SweepOptions,
    arrangement: impl Fn(usize) -> crate::runs::workers::WorkerPlan,
    workers_asked: bool,
    (device, placement): (tch::Device, Option<&Placement>),
) -> Result<()> {
    let (mut done, mut pending, mut stops) = (0, 0, 0);
    for run in planned {
        let state = match &run.state {
            RunState::Done(_) if !run.changed.is_empty() => format!(
                "complete, with other settings ({}): {}",
                run.changed.join("; "),
                if options.retrain_changed { "will be retrained" } else { "the sweep stops on it" }
            ),
            RunState::Done(outcome) => format!("{outcome:?}").to_lowercase(),
            RunState::Unfinished(why) => match crate::results::checkpoint::read(&run.dir) {
                Ok(Some(c)) => format!(
                    "unfinished ({}): will go on from its checkpoint at iteration {}",
                    crate::text::escape(why),
                    c.info.iteration
                ),
                _ => format!("unfinished ({}): will be redone", crate::text::escape(why)),
            },
            RunState::Foreign(why) => format!(
                "not read by this homeonorm, never trained over ({}): the sweep stops on it",
                crate::text::escape(why)
            ),
            RunState::Missing => "to run".to_string(),
        };
        match (&run.state, run.pending(options)) {
            (_, true) => pending += 1,
            (RunState::Done(_), false) if run.changed.is_empty() => done += 1,
            _ => stops += 1,
        }
        println!("{:>5}  {}  {state}", run.index, crate::text::path(&run.dir));
    }
    let stopping = if stops > 0 { format!(", {stops} the sweep stops on (see above)") } else { String::new() };
    println!("{} runs in this shard: {done} done, {pending} to run{stopping}", planned.len());
    let batches = seed_batches(planned.iter().filter(|r| r.pending(options)).collect(), options);
    let models: Vec<(&TrainSettings, usize)> = batches.iter().map(|b| (&b[0].spec.settings, b.len())).collect();
    let arrangement = arrangement(batches.len());
    println!("{}", packing::describe(&models, options.seeds_per_batch));
    println!(
        "on {} worker process(es) × {} thread(s) ({}): each worker takes the next model when it finishes one",
        arrangement.workers,
        arrangement.threads,
        if workers_asked { "--workers" } else { "this machine's default" }
    );
    if let Some(placement) = placement {
        println!("GPUs: {}", crate::runs::workers::describe_devices(arrangement.workers, placement));
    }
    if !models.is_empty() {
        tch::set_num_threads(arrangement.threads as i32);
        let time = crate::runs::bench::estimate_plan(&models, arrangement.workers, device)?;
        println!(
            "about {} of training steps on this machine ({}; each setting timed for a few steps; evaluations add to it)",
            crate::runs::progress::format_duration(time.as_secs_f64()),
            crate::engine::system::device_name(device)
        );
    }
    Ok(())
}
