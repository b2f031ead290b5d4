//! Ctrl-C and SIGTERM (what Slurm sends before its kill, and `docker stop`): the
//! training loop stops at its next step, a sweep releases its claims, and the run
//! folders being trained stay unfinished (no `summary.json`), to be redone by the
//! next sweep. A second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The error a stopped run returns; `main` turns it into exit status 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C or SIGTERM): the runs in progress are left unfinished; a sweep redoes them")]
pub struct Interrupted;

/// Installs the handler for SIGINT, SIGTERM and SIGHUP.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("second interrupt: exiting now");
            std::process::exit(130);
        }
        log::warn!("interrupt received: stopping after this step");
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
