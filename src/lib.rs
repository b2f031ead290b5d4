//! homeonorm: the experiments of Shen, Wang & Navlakha (2021), "A Correspondence
//! Between Normalization Strategies in Artificial and Biological Neural Networks",
//! on tch/libtorch. The README says what it does; `docs/run-folder.md` what it writes.
//!
//! Three wings (the README's "How the code is laid out" draws them):
//!
//! - [`engine`]: what a run computes — networks, methods, the optimiser, the measures,
//!   evaluation, data. It imports nothing of the other two wings.
//! - [`results`]: what runs leave — the run-folder format, and what reads it (report,
//!   compare, plot, import, eval). It uses the engine and never imports the runs.
//! - [`runs`]: how runs are carried out — experiments, sweeps, workers, claims,
//!   training, benchmarks, signals, downloads. It uses both.
//!
//! `tests/floor_plan.rs` holds the import rule. [`text`] (escaping for messages) is
//! shared by all three.

pub mod engine;
pub mod results;
pub mod runs;
pub mod text;
