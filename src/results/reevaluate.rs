//! `homeonorm eval`: a finished run's weights (`model.safetensors`) evaluated again, with
//! another test batch size or test-time statistics, on the run's test split (the data it
//! recorded: other bytes are refused); the result written beside the run as
//! `eval-<stats>-tb<N>.json`.

use crate::engine::data;
use crate::engine::evaluate::evaluate;
use crate::engine::learner::Learner;
use crate::engine::measures::LayerSummary;
use crate::engine::norm::EvalStats;
use crate::results::rundir;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Device;

/// What `homeonorm eval` writes beside a run: `eval-<stats>-tb<N>.json`.
#[derive(Debug, Serialize)]
pub struct Reevaluation {
    pub eval_stats: EvalStats,
    pub test_batch_size: usize,
    pub accuracy: f64,
    pub layers: Vec<LayerSummary>,
}

/// Evaluates a finished run's `model.safetensors` again, with its own settings but
/// `test_batch_size` and `eval_stats` if given, on its test split (read from
/// `data_dir`, or where the run read it), and writes the result beside the run.
pub fn reevaluate(
    dir: &Path,
    test_batch_size: Option<usize>,
    eval_stats: Option<EvalStats>,
    data_dir: Option<&Path>,
    device: Device,
) -> Result<(PathBuf, Reevaluation)> {
    let summary = rundir::check_complete(dir).map_err(|e| anyhow!("{}: not a finished run: {e:#}", dir.display()))?;
    if summary.outcome == rundir::Outcome::Diverged {
        bail!("{}: the run diverged; its weights are not a model to evaluate", dir.display());
    }
    let config = rundir::read_config(dir)?;
    let mut settings = config.settings.clone();
    settings.test_batch_size = test_batch_size.unwrap_or(settings.test_batch_size);
    settings.eval_stats = eval_stats.unwrap_or(settings.eval_stats);
    settings.validate()?;
    let weights = rundir::read_model(dir)?;
    let learner = Learner::with_options(
        settings.method.method(),
        &[config.seed],
        &settings.model_options(),
        settings.lr,
        device,
    )?;
    learner
        .model
        .load_pytorch_state(&learner.vs, 0, &weights)
        .map_err(|e| anyhow!("{}: {e}", dir.join(rundir::MODEL).display()))?;
    let data_dir = data_dir.map_or(config.data_dir.clone(), Path::to_path_buf);
    let dataset = data::load(settings.dataset, &data_dir, config.data_limit)?;
    // The run's own data, as train and sweep hold it: another copy's bytes are another test.
    if let Some(difference) = data::data_difference(&config.data_files, &dataset.files) {
        bail!(
            "{}: not the data the run trained and was tested on ({difference}); eval evaluates a run on its own data",
            data_dir.display()
        );
    }
    if dataset.test.is_empty() {
        bail!("{}: the test split has no images to evaluate on", data_dir.display());
    }
    let test = dataset.test.to_device(device);
    let evaluation = evaluate(&learner, &test, &settings, true);
    let layers = evaluation.units.expect("asked for units").remove(0);
    let result = Reevaluation {
        eval_stats: settings.eval_stats,
        test_batch_size: settings.test_batch_size,
        accuracy: evaluation.accuracy[0],
        layers: layers.iter().map(|(name, units)| LayerSummary::of(name, units)).collect(),
    };
    let stats = serde_json::to_value(settings.eval_stats)?;
    let name = format!("eval-{}-tb{}.json", stats.as_str().unwrap_or("stats"), settings.test_batch_size);
    rundir::write_json(dir, &name, &result)?;
    Ok((dir.join(name), result))
}
