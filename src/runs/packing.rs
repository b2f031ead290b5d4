//! How runs are packed into seed-batched models: how many runs one model trains at most,
//! and which runs share one. The one home of that decision (`sweep`, `train` and
//! `bench` all ask it): runs share a model when their settings are equal but for what
//! each model holds its own of (the learning rate and the rules' settings:
//! `TrainSettings::equal_but_per_model`), up to the width below.

use crate::engine::norm::Method;
use crate::engine::settings::TrainSettings;

/// How many runs one model trains at most: what `--seeds-per-batch` asked, or the
/// device's default for each method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedsPerModel {
    Asked(usize),
    /// On CUDA, where the width is what buys speed, [`CUDA_SEEDS_PER_MODEL`]. On the
    /// CPU, [`CPU_SEEDS_PER_MODEL`], or one run per model for a method whose seed batch
    /// was measured slower than its runs one by one on single-threaded workers
    /// ([`Method::seed_batch_pays_on_cpu`]; BENCHMARKS.md).
    Default {
        cuda: bool,
    },
}

/// The default seed batch on CUDA: 60 runs per model (a setting's 10 seeds at 6 learning
/// rates). An H200 trained 10,400 model-iterations per second at 10, 20,100 at 60,
/// 23,900 at 120 and 20,000 at 240 (BENCHMARKS.md).
pub const CUDA_SEEDS_PER_MODEL: usize = 60;
/// The default seed batch on the CPU: 4 runs per model, the width two single-threaded
/// workers were measured fastest at (a wider model's activations outgrow the cache).
pub const CPU_SEEDS_PER_MODEL: usize = 4;

impl SeedsPerModel {
    /// The most runs one model of `method` trains: as asked or the device's default, and
    /// 1 for a method whose seed batch is not each run bit for bit
    /// ([`Method::exact_in_a_seed_batch`]), so that each run is its script's run.
    pub fn for_method(self, method: &dyn Method) -> usize {
        if !method.exact_in_a_seed_batch() {
            return 1;
        }
        match self {
            SeedsPerModel::Asked(n) => n,
            SeedsPerModel::Default { cuda: true } => CUDA_SEEDS_PER_MODEL,
            SeedsPerModel::Default { cuda: false } if method.seed_batch_pays_on_cpu() => CPU_SEEDS_PER_MODEL,
            SeedsPerModel::Default { cuda: false } => 1,
        }
    }

    /// What the width is, for the dry run: "up to 60 (the default on CUDA)".
    fn describe(self) -> String {
        match self {
            SeedsPerModel::Asked(n) => format!("up to {n} (--seeds-per-batch)"),
            SeedsPerModel::Default { cuda: true } => format!("up to {CUDA_SEEDS_PER_MODEL} (the default on CUDA)"),
            SeedsPerModel::Default { cuda: false } => format!(
                "up to {CPU_SEEDS_PER_MODEL} (the default on the CPU; one run per model for the methods a seed batch slows there)"
            ),
        }
    }
}

/// `runs` as seed batches, each trained as one model: consecutive runs whose settings
/// (`settings_of`) are equal but for what each model holds its own of, up to the width
/// `seeds_per_model` gives their method.
pub fn seed_batches<T>(
    runs: impl IntoIterator<Item = T>,
    settings_of: impl Fn(&T) -> &TrainSettings,
    seeds_per_model: SeedsPerModel,
) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for run in runs {
        let fits = groups.last().is_some_and(|g| {
            let (settings, first) = (settings_of(&run), settings_of(&g[0]));
            settings.equal_but_per_model(first) && g.len() < seeds_per_model.for_method(settings.method.method())
        });
        match groups.last_mut() {
            Some(g) if fits => g.push(run),
            _ => groups.push(vec![run]),
        }
    }
    groups
}

/// How runs are packed into models, for `sweep --dry-run`: the count, and the methods
/// trained one seed per model however many were asked (their seed batch would not be
/// each seed's run bit for bit). `batches` gives each model's settings and width.
pub fn describe(batches: &[(&TrainSettings, usize)], seeds_per_model: SeedsPerModel) -> String {
    let runs: usize = batches.iter().map(|b| b.1).sum();
    let widest = batches.iter().map(|b| b.1).max().unwrap_or(0);
    let mut alone: Vec<&str> = batches
        .iter()
        .map(|b| b.0)
        .filter(|s| !s.method.method().exact_in_a_seed_batch())
        .map(|s| s.method.name())
        .collect();
    alone.sort();
    alone.dedup();
    let alone = if alone.is_empty() {
        String::new()
    } else {
        format!("; one seed per model for {} (not exact in a seed batch)", alone.join(", "))
    };
    format!(
        "{runs} run(s) to train as {} model(s): the seeds, learning rates and rule settings of one setting share a model, {}; the widest here {widest}{alone}",
        batches.len(),
        seeds_per_model.describe()
    )
}
