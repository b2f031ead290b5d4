//! The results: what runs leave, and what reads it. The run-folder format ([`rundir`]:
//! `config.json`, the CSV files, `summary.json`, `model.safetensors`, and what makes a
//! folder complete; an unfinished run's mid-run [`checkpoint`]), tables over a results
//! folder ([`report`]), two folders side by side ([`compare`]), the paper's figures
//! ([`plot`]), other programs' tables turned into run folders ([`import`]), a finished
//! run evaluated again ([`reevaluate`]), and the statistics the tables print ([`stats`])
//! and the tables themselves, as Markdown or LaTeX ([`table`]); every run as TensorBoard
//! event files ([`tensorboard`]).
//!
//! It uses the engine (the measures, the settings, the networks) and never imports the
//! runs (`tests/floor_plan.rs`): any program's run folders read the same.

pub mod checkpoint;
pub mod compare;
pub mod import;
pub mod plot;
pub mod reevaluate;
pub mod report;
pub mod rundir;
pub mod runs_table;
pub mod stats;
pub mod table;
pub mod tensorboard;
