//! What a run folder already holds decides what training may do with it, for `train`
//! and `sweep` alike: nothing complete is trained (an unfinished folder is trained
//! over); a complete run of the same settings, on the same data, is kept; a complete
//! run of other settings is another experiment's result, retrained only when asked
//! (`train --replace`, `sweep --retrain-changed`); a folder this homeonorm does not read
//! (a newer format, another program's) is never trained over.

use crate::engine::data::{DataFile, Limit};
use crate::engine::settings::TrainSettings;
use crate::results::rundir::{self, RunState};
use std::path::Path;

/// What a run folder holds, for a run about to be trained into it.
#[derive(Clone, Debug, PartialEq)]
pub enum Existing {
    /// Nothing complete there: train it.
    Absent,
    /// A complete run of these settings on these data: done.
    Done,
    /// A complete run whose recorded settings (or data) differ: what differs.
    Changed(Vec<String>),
    /// Not a folder this homeonorm reads, and why.
    Foreign(String),
}

/// What `dir` holds for a run of `settings` on the data subset `limit`, whose data files
/// are now `data_now` (where they could be read: a run recorded on other bytes is changed).
pub fn existing(dir: &Path, settings: &TrainSettings, limit: Limit, data_now: Option<&[DataFile]>) -> Existing {
    match rundir::state(dir) {
        RunState::Missing | RunState::Unfinished(_) => Existing::Absent,
        RunState::Foreign(why) => Existing::Foreign(why),
        RunState::Done(_) => match rundir::differences(dir, &settings.identity(limit), data_now) {
            Ok(changed) if changed.is_empty() => Existing::Done,
            Ok(changed) => Existing::Changed(changed),
            Err(e) => Existing::Changed(vec![format!("{e:#}")]),
        },
    }
}

/// The error for run folders this homeonorm does not read: never deleted, never trained over.
pub fn foreign_error(count: usize, first: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{count} run folder(s) in the results folder hold a configuration this homeonorm does not read \
         (a newer homeonorm's, or another program's); they are never deleted or trained over (a run \
         there is never trained over, with --replace or --retrain-changed either): move them, or use \
         another --out. The first: {}",
        crate::text::escape(first)
    )
}

/// The error for complete runs (folder, what differs) whose settings differ from the
/// ones asked for; `how` says how to retrain them anyway.
pub fn changed_error(changed: &[(&Path, &[String])], how: &str) -> anyhow::Error {
    let mut message = format!(
        "{} complete run(s) in the results folder were trained with other settings than asked for \
         (ask for theirs, use another --out, or {how} to retrain them in place):",
        changed.len()
    );
    for (dir, differences) in changed.iter().take(5) {
        message += &format!("\n  {}: {}", dir.display(), differences.join("; "));
    }
    if changed.len() > 5 {
        message += &format!("\n  … and {} more", changed.len() - 5);
    }
    anyhow::anyhow!(message)
}
