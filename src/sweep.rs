//! `homeonorm sweep`: runs an experiment's grid, resumably and across workers.
//!
//! - A complete run (`rundir::state`) is done and skipped; an unfinished folder
//!   (interrupted, truncated) is redone. A complete run whose recorded settings
//!   differ from the grid's stops the sweep with an error naming the run and the
//!   settings, unless `retrain_changed` asks for it to be retrained in place.
//! - `--shard I/N` (I from 0) takes runs I, I+N, I+2N, … of the grid's stable order,
//!   so the N tasks of a Slurm array or a Kubernetes indexed Job split one sweep.
//! - Workers sharing one results folder never train a run twice at once: a worker
//!   claims a run by creating `<run>/.claim` exclusively (its host, process id and
//!   start time, and a token of its own) and refreshes its modification time while
//!   it trains. A claim is taken over when its process is gone (same host) or when
//!   it is untouched for longer than the claim timeout (another host, or a stalled
//!   worker). A worker checks its token before it refreshes, releases or writes: one
//!   that stalled and came back finds its run taken over and stops it unwritten.
//! - Ctrl-C and SIGTERM stop the training at its next step and release the claims;
//!   the runs in progress stay unfinished.
//! - Pending seeds of one setting train together as a seed batch (`--seeds-per-batch`).

use crate::data::{DataFile, DatasetKind, Limit};
use crate::experiment::{Experiment, RunSpec};
use crate::progress::Progress;
use crate::rundir::{self, Outcome, RunState};
use crate::settings::TrainSettings;
use crate::train::{train_seed_batch_supervised, RunData, TakenOver};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const CLAIM: &str = ".claim";

/// `I/N`: this worker's share of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 0 ≤ I < N (I counts from 0), got `{s}`");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Results root: runs go to `<out>/<experiment name>/…`.
    pub out: PathBuf,
    pub shard: Shard,
    pub seeds_per_batch: usize,
    /// A claim not refreshed for this long belongs to a worker that is gone.
    pub claim_timeout: Duration,
    /// The data subset the runs use (`--limit`), part of what identifies a run.
    pub data_limit: Limit,
    /// Retrain complete runs whose recorded settings differ from the grid's, instead of stopping.
    pub retrain_changed: bool,
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
        .filter(|(i, _)| i % options.shard.count == options.shard.index)
        .map(|(index, spec)| {
            let s = &spec.settings;
            let dir = rundir::run_path(&root, s.dataset.name(), s.method.name(), s.lr, spec.seed);
            let state = rundir::state(&dir);
            let changed = match state {
                RunState::Done(_) => changed_settings(&dir, s, options).unwrap_or_else(|e| vec![format!("{e:#}")]),
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
    /// Claimed by another worker.
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
    let changed: Vec<&PlannedRun> = planned.iter().filter(|r| !r.changed.is_empty()).collect();
    if !changed.is_empty() && !options.retrain_changed {
        return Err(changed_error(&changed));
    }
    Ok(())
}

/// Pending runs as seed batches: consecutive runs of equal settings, up to `seeds_per_batch`.
pub fn seed_batches<'a>(pending: Vec<&'a PlannedRun>, options: &SweepOptions) -> Vec<Vec<&'a PlannedRun>> {
    let mut groups: Vec<Vec<&PlannedRun>> = Vec::new();
    for run in pending {
        match groups.last_mut() {
            Some(g)
                if g[0].spec.settings == run.spec.settings
                    && g.len() < run.spec.settings.seeds_per_batch(options.seeds_per_batch) =>
            {
                g.push(run)
            }
            _ => groups.push(vec![run]),
        }
    }
    groups
}

/// The settings (and data subset) recorded in a run folder that differ from `settings`.
fn changed_settings(dir: &Path, settings: &TrainSettings, options: &SweepOptions) -> Result<Vec<String>> {
    let data_now = options.data_files.get(&settings.dataset).map(Vec::as_slice);
    rundir::differences(dir, &settings.identity(options.data_limit), data_now)
}

/// Whether a planned run's folder now holds a complete run of the settings it asks for.
fn done_as_asked(run: &PlannedRun, options: &SweepOptions) -> bool {
    matches!(rundir::state(&run.dir), RunState::Done(_))
        && changed_settings(&run.dir, &run.spec.settings, options).is_ok_and(|d| d.is_empty())
}

/// The error for run folders this homeonorm does not read: never deleted, never redone.
fn foreign_error(count: usize, first: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{count} run folder(s) in the results folder hold a configuration this homeonorm does not read \
         (a newer homeonorm's, or another program's); they are never deleted or trained over: \
         move them, or use another --out. The first: {}",
        crate::text::escape(first)
    )
}

/// The error for complete runs whose settings differ from the grid's.
fn changed_error(changed: &[&PlannedRun]) -> anyhow::Error {
    let mut message = format!(
        "{} complete run(s) in the results folder were trained with other settings than the experiment asks for \
         (edit the experiment back, use another --out, or pass --retrain-changed to retrain them in place):",
        changed.len()
    );
    for run in changed.iter().take(5) {
        message += &format!("\n  {}: {}", run.dir.display(), run.changed.join("; "));
    }
    if changed.len() > 5 {
        message += &format!("\n  … and {} more", changed.len() - 5);
    }
    anyhow::anyhow!(message)
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
pub fn run_planned(
    experiment: &Experiment,
    options: &SweepOptions,
    planned: &[PlannedRun],
    mut load: impl FnMut(DatasetKind) -> Result<RunData>,
) -> Result<SweepResult> {
    if options.seeds_per_batch == 0 {
        bail!("--seeds-per-batch must be positive");
    }
    let root = options.out.join(&experiment.name);
    let mut result = SweepResult::default();
    check_changed(planned, options)?;
    let pending: Vec<&PlannedRun> = planned.iter().filter(|r| r.pending(options)).collect();
    result.already_done = planned.len() - pending.len();
    log::info!(
        "sweep {}: {} runs in shard {}/{} of {}; {} done, {} to run",
        experiment.name,
        planned.len(),
        options.shard.index,
        options.shard.count,
        experiment.runs.len(),
        result.already_done,
        pending.len()
    );

    let held: Arc<Mutex<Vec<Claim>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeat = spawn_heartbeat(held.clone(), stop.clone(), options.claim_timeout / 4);
    let mut data: Option<RunData> = None;
    let mut progress = Progress::new(&format!("sweep {}", experiment.name), pending.len() as u64, 1);
    let mut finished = 0u64;

    let groups = seed_batches(pending, options);
    let outcome = (|| -> Result<()> {
        for group in groups {
            let mut mine = Vec::new();
            let mut claims = Vec::new();
            for run in &group {
                // Another worker may have finished it (or retrained it) since the plan.
                if done_as_asked(run, options) {
                    result.already_done += 1;
                } else if let Some(claim) = try_claim(&run.dir, options.claim_timeout)? {
                    held.lock().unwrap().push(claim.clone());
                    // Under the claim, what the folder holds now: another sweep (of other
                    // settings, into the same folder) may have completed it since the plan.
                    let state = rundir::state(&run.dir);
                    if let RunState::Foreign(why) = &state {
                        return Err(foreign_error(1, why));
                    }
                    if let RunState::Done(_) = state {
                        let changed = changed_settings(&run.dir, &run.spec.settings, options)?;
                        if changed.is_empty() {
                            held.lock().unwrap().retain(|c| *c != claim);
                            claim.release();
                            result.already_done += 1;
                            continue;
                        }
                        if !options.retrain_changed {
                            let run = PlannedRun { changed, ..(*run).clone() };
                            return Err(changed_error(&[&run]));
                        }
                    }
                    claims.push(claim);
                    mine.push(*run);
                } else {
                    log::info!("{}: claimed by another worker, skipped", run.dir.display());
                    result.claimed_elsewhere += 1;
                }
            }
            finished += (group.len() - mine.len()) as u64;
            if mine.is_empty() {
                continue;
            }
            let settings = &mine[0].spec.settings;
            if data.as_ref().map(|d| d.kind) != Some(settings.dataset) {
                data = None; // free the previous dataset first
                data = Some(load(settings.dataset)?);
            }
            let seeds: Vec<u64> = mine.iter().map(|r| r.spec.seed).collect();
            let still_ours = |k: usize| claims[k].is_ours();
            let trained = train_seed_batch_supervised(settings, &seeds, data.as_ref().unwrap(), &root, &still_ours);
            held.lock().unwrap().retain(|c| !claims.contains(c));
            for claim in &claims {
                claim.release();
            }
            let trained = match trained {
                Err(e) if e.is::<TakenOver>() => {
                    log::warn!("seeds {seeds:?}: {e}");
                    Vec::new()
                }
                other => other.with_context(|| {
                    format!("training {} {} lr {} seeds {seeds:?}", settings.dataset, settings.method, settings.lr)
                })?,
            };
            for (seed, summary) in &trained {
                if summary.outcome == Outcome::Diverged {
                    result.diverged += 1;
                }
                let run = mine.iter().find(|r| r.spec.seed == *seed).expect("a trained seed is one of ours");
                result.trained.push(run.dir.clone());
            }
            result.taken_over += mine.len() - trained.len();
            finished += mine.len() as u64;
            progress.update(finished, || format!("{} trained here", result.trained.len()));
        }
        Ok(())
    })();
    stop.store(true, Ordering::SeqCst);
    let _ = heartbeat.join();
    for claim in held.lock().unwrap().drain(..) {
        claim.release();
    }
    progress.finish();
    outcome?;
    Ok(result)
}

/// What a `.claim` file holds.
#[derive(Serialize, Deserialize)]
struct ClaimRecord {
    host: String,
    pid: u32,
    /// The process's start time (clock ticks since boot), so a reused pid is not taken for the claimant.
    pid_start: Option<u64>,
    /// Unique to this claim: a worker knows its own claim by it.
    token: String,
}

/// A claim this worker holds on a run folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    dir: PathBuf,
    token: String,
}

impl Claim {
    fn path(&self) -> PathBuf {
        self.dir.join(CLAIM)
    }

    /// Whether the run's claim file is still this claim (not released, not taken over).
    pub fn is_ours(&self) -> bool {
        read_claim(&self.path()).is_some_and(|r| r.token == self.token)
    }

    /// Marks the claim alive (its modification time), if it is still ours.
    fn refresh(&self) {
        if self.is_ours() {
            if let Ok(f) = OpenOptions::new().write(true).open(self.path()) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
    }

    /// Removes the claim file, if it is still ours.
    pub fn release(&self) {
        if self.is_ours() {
            let _ = std::fs::remove_file(self.path());
        }
    }
}

fn read_claim(path: &Path) -> Option<ClaimRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// A process's start time from `/proc/<pid>/stat` (field 22); None if it is not running.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that made a claim on this host is gone.
fn claimant_is_gone(record: &ClaimRecord) -> bool {
    if record.host != hostname() || !Path::new("/proc/self/stat").exists() {
        return false; // cannot tell: only the timeout decides
    }
    match (process_start(record.pid), record.pid_start) {
        (None, _) => true,
        (Some(now), Some(then)) => now != then,
        (Some(_), None) => false,
    }
}

fn new_claim_record() -> ClaimRecord {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pid = std::process::id();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let host = hostname();
    ClaimRecord { token: format!("{host}-{pid}-{nanos}-{n}"), host, pid, pid_start: process_start(pid) }
}

/// Claims a run folder; None if another live worker holds it.
pub fn try_claim(dir: &Path, timeout: Duration) -> Result<Option<Claim>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let claim = dir.join(CLAIM);
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&claim) {
            Ok(mut f) => {
                let record = new_claim_record();
                let text = serde_json::to_string(&record)?;
                if let Err(e) = writeln!(f, "{text}") {
                    let _ = std::fs::remove_file(&claim);
                    return Err(e).with_context(|| format!("cannot write {}", claim.display()));
                }
                return Ok(Some(Claim { dir: dir.to_path_buf(), token: record.token }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !is_stale(&claim, timeout) {
                    return Ok(None);
                }
                // Move the stale claim aside (atomic: one worker's rename wins), check that
                // what was moved is still stale, then try to create a fresh one.
                let aside = dir.join(format!(".claim.stale.{}", std::process::id()));
                if std::fs::rename(&claim, &aside).is_err() {
                    return Ok(None);
                }
                if !is_stale(&aside, timeout) {
                    let _ = std::fs::rename(&aside, &claim);
                    return Ok(None);
                }
                log::warn!(
                    "{}: taking over a stale claim ({})",
                    dir.display(),
                    crate::text::escape(std::fs::read_to_string(&aside).unwrap_or_default().trim())
                );
                let _ = std::fs::remove_file(&aside);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", claim.display())),
        }
    }
    Ok(None)
}

/// How long a claim file may stay empty or unreadable: a worker writes its record right
/// after creating the file, so one older than this is a worker that died in between.
const UNWRITTEN_CLAIM_GRACE: Duration = Duration::from_secs(5);

/// A claim is stale when its process is gone (same host), it was not refreshed within
/// `timeout`, or it never got its record.
fn is_stale(claim: &Path, timeout: Duration) -> bool {
    let record = read_claim(claim);
    if record.as_ref().is_some_and(claimant_is_gone) {
        return true;
    }
    let age = std::fs::metadata(claim)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
    let limit = if record.is_some() { timeout } else { UNWRITTEN_CLAIM_GRACE.min(timeout) };
    matches!(age, Ok(a) if a > limit)
}

/// Refreshes the modification time of every held claim every `period`.
fn spawn_heartbeat(
    held: Arc<Mutex<Vec<Claim>>>,
    stop: Arc<AtomicBool>,
    period: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let tick = Duration::from_millis(200).min(period);
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(tick);
            waited += tick;
            if waited >= period {
                waited = Duration::ZERO;
                for claim in held.lock().unwrap().iter() {
                    claim.refresh();
                }
            }
        }
    })
}
