//! Ctrl-C and SIGTERM (what Slurm sends before its kill, and `docker stop`): the
//! training loop stops at its next step, a sweep releases its claims, and the run
//! folders being trained stay unfinished (no `summary.json`), to be redone by the
//! next sweep. A second signal, a second or more after the first, ends the process
//! at once (signals closer together are one: Slurm signals every process of a job
//! while `sweep` passes the signal on to its workers too).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// When the first signal came, in milliseconds since the epoch.
static FIRST_MS: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The error a stopped run returns; `main` turns it into exit status 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C or SIGTERM): the runs in progress are left unfinished; a sweep redoes them")]
pub struct Interrupted;

/// Installs the handler for SIGINT, SIGTERM and SIGHUP.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if !REQUESTED.swap(true, Ordering::SeqCst) {
            FIRST_MS.store(now_ms(), Ordering::SeqCst);
            log::warn!("interrupt received: stopping after this step");
        } else if now_ms().saturating_sub(FIRST_MS.load(Ordering::SeqCst)) >= 1000 {
            eprintln!("second interrupt: exiting now");
            std::process::exit(130);
        }
    })?;
    Ok(())
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
