//! The claim protocol of workers sharing one results folder: a worker claims a run by
//! creating `<run>/.claim` exclusively (its host, process id and start time, and a
//! token of its own) and refreshes its modification time while it trains. A claim is
//! taken over when its process is gone (same host) or when it is untouched for longer
//! than the claim timeout (another host, or a stalled worker). A worker checks its
//! token before it refreshes, releases or writes: one that stalled and came back finds
//! its run taken over and stops it unwritten. `sweep` claims; `report` reads a claim as
//! a run in progress.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::results::rundir::CLAIM;

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

/// Who holds `dir`'s claim, for messages: "host <h>, process <pid>" (or that it is unreadable).
pub fn holder(dir: &Path) -> String {
    match read_claim(&dir.join(CLAIM)) {
        Some(record) => format!("host {}, process {}", crate::text::escape(&record.host), record.pid),
        None => "a claim being written or unreadable".into(),
    }
}

fn read_claim(path: &Path) -> Option<ClaimRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn hostname() -> String {
    crate::engine::system::host_name().unwrap_or_else(|| "unknown-host".into())
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

/// The claims a worker holds, kept alive while it trains: a heartbeat thread refreshes
/// each one every `period`. Dropping it (or [`release_all`](Self::release_all)) stops the
/// heartbeat and releases every claim still held, on an error as on success.
pub struct HeldClaims {
    held: Arc<Mutex<Vec<Claim>>>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl HeldClaims {
    pub fn new(period: Duration) -> Self {
        let held: Arc<Mutex<Vec<Claim>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (beat_held, beat_stop) = (held.clone(), stop.clone());
        let heartbeat = std::thread::spawn(move || {
            let tick = Duration::from_millis(200).min(period);
            let mut waited = Duration::ZERO;
            while !beat_stop.load(Ordering::SeqCst) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= period {
                    waited = Duration::ZERO;
                    for claim in beat_held.lock().unwrap().iter() {
                        claim.refresh();
                    }
                }
            }
        });
        HeldClaims { held, stop, heartbeat: Some(heartbeat) }
    }

    /// Keeps `claim` alive from now on.
    pub fn hold(&self, claim: &Claim) {
        self.held.lock().unwrap().push(claim.clone());
    }

    /// Stops keeping `claims` alive and releases them (those still ours).
    pub fn release(&self, claims: &[Claim]) {
        self.held.lock().unwrap().retain(|c| !claims.contains(c));
        for claim in claims {
            claim.release();
        }
    }

    /// Stops the heartbeat and releases every claim still held.
    pub fn release_all(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        for claim in self.held.lock().unwrap().drain(..) {
            claim.release();
        }
    }
}

impl Drop for HeldClaims {
    fn drop(&mut self) {
        self.release_all();
    }
}
