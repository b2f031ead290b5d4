//! Stop signals: what a cluster sends before it kills or preempts a job (Slurm's SIGTERM,
//! or the signal `--signal` names, often SIGUSR1; submitit's SIGUSR2 and SIGHUP;
//! `docker stop`'s SIGTERM; Ctrl-C's SIGINT). The training loop finishes its step, each
//! run writes its checkpoint (`crate::results::checkpoint`), a sweep releases its claims,
//! and the process exits with status 130; the next `sweep` or `train` goes on from the
//! checkpoints. A second signal, a second or more after the first, ends the process at
//! once (signals closer together are one: Slurm signals every process of a job while
//! `sweep` passes the signal on to its workers too).
//!
//! Which signals stop a run is a setting (`--stop-signals`); a signal left out keeps its
//! usual effect.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: std::sync::Once = std::sync::Once::new();
/// When the first signal came, in milliseconds since the epoch.
static FIRST_MS: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A signal that can stop a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "UPPER")]
pub enum StopSignal {
    Int,
    Term,
    Hup,
    Usr1,
    Usr2,
}

impl StopSignal {
    /// Every one of them: the default.
    pub const ALL: [StopSignal; 5] =
        [StopSignal::Int, StopSignal::Term, StopSignal::Hup, StopSignal::Usr1, StopSignal::Usr2];

    /// Its signal number on this system.
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Int => libc::SIGINT,
            StopSignal::Term => libc::SIGTERM,
            StopSignal::Hup => libc::SIGHUP,
            StopSignal::Usr1 => libc::SIGUSR1,
            StopSignal::Usr2 => libc::SIGUSR2,
        }
    }
}

/// The error a stopped run returns; `main` turns it into exit status 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by a stop signal: the runs in progress wrote their checkpoints; the next sweep or train goes on from them")]
pub struct Interrupted;

/// Makes `signals` stop the run (once per process; later calls change nothing).
pub fn install(signals: &[StopSignal]) -> anyhow::Result<()> {
    let numbers: Vec<i32> = signals.iter().map(|s| s.number()).collect();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = signal_hook::iterator::Signals::new(&numbers).map(|mut signals| {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    on_signal(signal);
                }
            });
        });
    });
    Ok(result?)
}

fn on_signal(signal: i32) {
    if !REQUESTED.swap(true, Ordering::SeqCst) {
        FIRST_MS.store(now_ms(), Ordering::SeqCst);
        log::warn!("stop signal {signal} received: stopping after this step");
    } else if now_ms().saturating_sub(FIRST_MS.load(Ordering::SeqCst)) >= 1000 {
        eprintln!("second stop signal: exiting now");
        std::process::exit(130);
    }
}

/// Asks for a stop as a stop signal does (`train`'s fault injection:
/// `HOMEONORM_STOP_AFTER_ITERATION`).
pub fn request() {
    on_signal(0);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}
