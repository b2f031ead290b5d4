//! The engine: what a run computes. The networks ([`model`]) with a method on their
//! hidden layers ([`norm`], one module per method, registered in `norm::METHODS`), the
//! training step ([`learner`]: loss, gradients, [`optim`]'s Adam, the methods' rules;
//! on CUDA captured in a [`cuda_graph`]), evaluation ([`evaluate`]), the measures
//! ([`measures`] registers them, [`metrics`] computes them, [`units`] says what a unit
//! is), the datasets and their batch order ([`data`]), and what a run is set to
//! ([`settings`]) and runs on ([`system`]).
//!
//! It imports nothing of `runs` or `results` (`tests/floor_plan.rs`): a run's arithmetic
//! does not depend on how it is scheduled or where its results go.

pub mod cuda_graph;
pub mod data;
pub mod evaluate;
pub mod learner;
pub mod measures;
pub mod metrics;
pub mod model;
pub mod norm;
pub mod optim;
pub mod setting_error;
pub mod settings;
pub mod system;
pub mod torch_rng;
pub mod units;
