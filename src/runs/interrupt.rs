//! Stop signals: what a cluster sends before it kills or preempts a job (Slurm's SIGTERM,
//! or the signal `--signal` names, often SIGUSR1; submitit's SIGUSR2 and SIGHUP;
//! `docker stop`'s SIGTERM; Ctrl-C's SIGINT). The training loop finishes its step, each
//! run writes its checkpoint (`crate::results::checkpoint`), a sweep releases its claims,
//! and the process exits with status 130; the next `sweep` or `train` goes on from the
//! checkpoints. A second signal, a second or more after the first, ends the process at
//! once (signals closer together are one: Slurm signals every process of a job while
//! `sweep` passes the signal on to its workers too). A sweep worker never takes its
//! parent's passing-on for a second signal, however late it comes: on a loaded machine
//! Ctrl-C's SIGINT and the parent's SIGTERM after it can be more than a second apart.
//!
//! Which signals stop a run is a setting (`--stop-signals`); a signal left out keeps its
//! usual effect.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use signal_hook::iterator::exfiltrator::WithOrigin;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: std::sync::Once = std::sync::Once::new();
/// When the first signal came, in milliseconds since the epoch.
static FIRST_MS: AtomicU64 = AtomicU64::new(0);
/// In a sweep worker, the sweep process that started it (0 elsewhere).
static PARENT: AtomicI32 = AtomicI32::new(0);

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
        if std::env::var_os(crate::runs::workers::WORKER_ENV).is_some() {
            // Read now: once the parent dies this process has another.
            PARENT.store(unsafe { libc::getppid() }, Ordering::SeqCst);
        }
        result = signal_hook::iterator::SignalsInfo::<WithOrigin>::new(&numbers).map(|mut signals| {
            std::thread::spawn(move || {
                for origin in signals.forever() {
                    let parent = PARENT.load(Ordering::SeqCst);
                    let from_parent = parent != 0 && origin.process.is_some_and(|p| p.pid == parent);
                    on_signal(origin.signal, from_parent);
                }
            });
        });
    });
    Ok(result?)
}

/// What a stop signal does, given what came before it.
#[derive(Debug, PartialEq, Eq)]
enum Response {
    /// The first: stop after this step.
    Stop,
    /// Part of the first (within a second of it, or a worker's parent passing it on).
    Same,
    /// A second, later signal: exit at once.
    ExitNow,
}

fn response(first_ms: Option<u64>, now_ms: u64, from_parent: bool) -> Response {
    match first_ms {
        None => Response::Stop,
        Some(_) if from_parent => Response::Same,
        Some(first) if now_ms.saturating_sub(first) < 1000 => Response::Same,
        Some(_) => Response::ExitNow,
    }
}

fn on_signal(signal: i32, from_parent: bool) {
    let now = now_ms();
    let first = REQUESTED.swap(true, Ordering::SeqCst).then(|| FIRST_MS.load(Ordering::SeqCst));
    match response(first, now, from_parent) {
        Response::Stop => {
            FIRST_MS.store(now, Ordering::SeqCst);
            log::warn!("stop signal {signal} received: stopping after this step");
        }
        Response::Same => {}
        Response::ExitNow => {
            eprintln!("second stop signal: exiting now");
            // Not `process::exit`: its exit handlers tear libtorch down under the training
            // thread, which then dies of SIGSEGV instead of exiting with 130.
            unsafe { libc::_exit(130) };
        }
    }
}

/// Asks for a stop as a stop signal does (`train`'s fault injection:
/// `HOMEONORM_STOP_AFTER_ITERATION`).
pub fn request() {
    on_signal(0, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_signal_exits_unless_it_is_the_parent_passing_the_first_on() {
        assert_eq!(response(None, 5_000, false), Response::Stop);
        assert_eq!(response(None, 5_000, true), Response::Stop, "the parent's passing-on alone stops a worker");
        assert_eq!(response(Some(5_000), 5_999, false), Response::Same);
        assert_eq!(response(Some(5_000), 6_000, false), Response::ExitNow);
        assert_eq!(response(Some(5_000), 60_000, true), Response::Same);
    }
}
