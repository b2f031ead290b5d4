//! homeonorm: the experiments of Shen, Wang & Navlakha (2021), "A Correspondence
//! Between Normalization Strategies in Artificial and Biological Neural Networks",
//! on tch/libtorch. See DESIGN.md in the shared folder and the README.

pub mod norm;
pub mod model;
pub mod learner;
pub mod system;
pub mod data;
pub mod progress;
pub mod metrics;
pub mod rundir;
pub mod train;
