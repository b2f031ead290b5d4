//! A setting that cannot be used. `settings` raises it for a value out of range,
//! `model` for a method a network cannot take, each method (`norm`) for options a
//! layer cannot take: its own module, so that none of them reaches into another for it.

/// A setting that cannot be used, named by its key in files (`batch_size`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    pub key: &'static str,
    pub message: String,
}
