//! homeonorm: the experiments of Shen, Wang & Navlakha (2021), "A Correspondence
//! Between Normalization Strategies in Artificial and Biological Neural Networks",
//! on tch/libtorch. The README says what it does; `docs/run-folder.md` what it writes.

pub mod bench;
pub mod claim;
pub mod compare;
pub mod cuda_graph;
pub mod data;
pub mod evaluate;
pub mod experiment;
pub mod import;
pub mod interrupt;
pub mod learner;
pub mod metrics;
pub mod model;
pub mod norm;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rundir;
pub mod setting_error;
pub mod settings;
pub mod sweep;
pub mod system;
pub mod text;
pub mod torch_rng;
pub mod train;
pub mod workers;
