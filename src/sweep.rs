//! `homeonorm sweep`: runs an experiment's grid, resumably and across workers.
//!
//! - A run whose folder has a `summary.json` is done and skipped; a folder without
//!   one (interrupted) is redone.
//! - `--shard I/N` (I from 0) takes runs I, I+N, I+2N, … of the grid's stable order,
//!   so the N tasks of a Slurm array or a Kubernetes indexed Job split one sweep.
//! - Workers sharing one results folder never train a run twice at once: a worker
//!   claims a run by creating `<run>/.claim` exclusively and refreshes its
//!   modification time while it trains; a claim untouched for longer than the claim
//!   timeout (its worker is gone) is taken over.
//! - Pending seeds of one setting train together as a seed batch (`--seeds-per-batch`).

use crate::data::DatasetKind;
use crate::experiment::{Experiment, RunSpec};
use crate::progress::Progress;
use crate::rundir::{self, Outcome, RunState};
use crate::train::{train_seed_batch, RunData};
use anyhow::{bail, Context, Result};
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
}

/// One run of the grid with its folder and state.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub index: usize,
    pub spec: RunSpec,
    pub dir: PathBuf,
    pub state: RunState,
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
            let dir = rundir::run_path(&root, s.dataset.name(), &s.method, s.lr, spec.seed);
            let state = rundir::state(&dir);
            PlannedRun { index, spec: spec.clone(), dir, state }
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
}

/// Runs this shard's pending runs. `load` gives a dataset's data on the device.
pub fn run(
    experiment: &Experiment,
    options: &SweepOptions,
    mut load: impl FnMut(DatasetKind) -> Result<RunData>,
) -> Result<SweepResult> {
    if options.seeds_per_batch == 0 {
        bail!("--seeds-per-batch must be positive");
    }
    let root = options.out.join(&experiment.name);
    let planned = plan(experiment, options);
    let mut result = SweepResult::default();
    let pending: Vec<&PlannedRun> = planned.iter().filter(|r| !matches!(r.state, RunState::Done(_))).collect();
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

    let held: Arc<Mutex<Vec<PathBuf>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeat = spawn_heartbeat(held.clone(), stop.clone(), options.claim_timeout / 4);
    let mut data: Option<RunData> = None;
    let mut progress = Progress::new(&format!("sweep {}", experiment.name), pending.len() as u64, 1);
    let mut finished = 0u64;

    // Consecutive pending runs with equal settings form seed batches.
    let mut groups: Vec<Vec<&PlannedRun>> = Vec::new();
    for run in pending {
        match groups.last_mut() {
            Some(g) if g[0].spec.settings == run.spec.settings && g.len() < options.seeds_per_batch => g.push(run),
            _ => groups.push(vec![run]),
        }
    }
    let outcome = (|| -> Result<()> {
        for group in groups {
            let mut mine = Vec::new();
            for run in &group {
                // Another worker may have finished it since the plan.
                if matches!(rundir::state(&run.dir), RunState::Done(_)) {
                    result.already_done += 1;
                } else if try_claim(&run.dir, options.claim_timeout)? {
                    held.lock().unwrap().push(run.dir.clone());
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
            let trained = train_seed_batch(settings, &seeds, data.as_ref().unwrap(), &root);
            for run in &mine {
                release(&run.dir);
                held.lock().unwrap().retain(|d| d != &run.dir);
            }
            for (_, summary) in trained.with_context(|| {
                format!("training {} {} lr {} seeds {seeds:?}", settings.dataset, settings.method, settings.lr)
            })? {
                if summary.outcome == Outcome::Diverged {
                    result.diverged += 1;
                }
            }
            result.trained.extend(mine.iter().map(|r| r.dir.clone()));
            finished += mine.len() as u64;
            progress.update(finished, || format!("{} trained here", result.trained.len()));
        }
        Ok(())
    })();
    stop.store(true, Ordering::SeqCst);
    let _ = heartbeat.join();
    for dir in held.lock().unwrap().drain(..) {
        release(&dir);
    }
    progress.finish();
    outcome?;
    Ok(result)
}

fn claim_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "unknown-host".into());
    format!("{} pid {} thread {:?}", host.trim(), std::process::id(), std::thread::current().id())
}

/// Claims a run folder; false if another live worker holds it.
pub fn try_claim(dir: &Path, timeout: Duration) -> Result<bool> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let claim = dir.join(CLAIM);
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&claim) {
            Ok(mut f) => {
                writeln!(f, "{}", claim_owner())?;
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !is_stale(&claim, timeout) {
                    return Ok(false);
                }
                // Move the stale claim aside (atomic: one worker's rename wins), check that
                // what was moved is still stale, then try to create a fresh one.
                let aside = dir.join(format!(".claim.stale.{}", std::process::id()));
                if std::fs::rename(&claim, &aside).is_err() {
                    return Ok(false);
                }
                if !is_stale(&aside, timeout) {
                    let _ = std::fs::rename(&aside, &claim);
                    return Ok(false);
                }
                log::warn!(
                    "{}: taking over a stale claim ({})",
                    dir.display(),
                    std::fs::read_to_string(&aside).unwrap_or_default().trim()
                );
                let _ = std::fs::remove_file(&aside);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", claim.display())),
        }
    }
    Ok(false)
}

fn is_stale(claim: &Path, timeout: Duration) -> bool {
    let age = std::fs::metadata(claim)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
    matches!(age, Ok(a) if a > timeout)
}

fn release(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(CLAIM));
}

/// Refreshes the modification time of every held claim every `period`.
fn spawn_heartbeat(
    held: Arc<Mutex<Vec<PathBuf>>>,
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
                for dir in held.lock().unwrap().iter() {
                    if let Ok(f) = OpenOptions::new().write(true).open(dir.join(CLAIM)) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                }
            }
        }
    })
}
