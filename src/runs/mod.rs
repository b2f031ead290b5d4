//! The runs: how training is carried out. An experiment file becomes a grid of runs
//! ([`experiment`]); a sweep trains the grid's pending runs ([`sweep`]), packed into
//! seed-batched models ([`packing`]), on worker processes ([`workers`], placed on the
//! GPUs by [`placement`]) that share a
//! results folder through claims ([`claim`]); [`train`] trains one model's runs and
//! writes their folders, going on from a checkpoint where a run was stopped;
//! [`provenance`] says which code, machine, command and job trained each stretch of a
//! run; [`bench`] times the arrangements. Signals ([`interrupt`]),
//! progress display ([`progress`]) and dataset downloads ([`download`]) live here too.
//!
//! It uses the engine, and the results wing for the run-folder format (`rundir`, `checkpoint`).

pub mod bench;
pub mod claim;
pub mod download;
pub mod existing;
pub mod experiment;
pub mod interrupt;
pub mod packing;
pub mod placement;
pub mod progress;
pub mod provenance;
pub mod sweep;
pub mod train;
pub mod workers;
