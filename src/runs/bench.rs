//! `homeonorm bench`: training iterations per second of a network on one machine and
//! the same synthetic data in CIFAR-10's shape, in each arrangement a user could run S seeds in:
//! homeonorm's single model, S seeds batched into one model, and N worker processes
//! of one thread each, every one training models of the device's default width (what
//! `sweep` does); the PyTorch reference (`reference/bench.py`) running the S runs one
//! after another, and N processes of one thread each sharing them (what a script's
//! user does). With a busy neighbour ([`Neighbour`]) the same arrangements show what
//! load costs.

use crate::engine::data::{batches::BatchSampler, PixelStandardization, Split};
use crate::engine::learner::Learner;
use crate::engine::model::{check_method, ModelOptions, Network};
use crate::engine::norm::Method;
use crate::engine::settings::TrainSettings;
use crate::runs::packing::SeedsPerModel;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tch::{Device, Kind, Tensor};

/// Which arrangements besides the in-process ones `bench` times.
#[derive(Clone, Debug)]
pub struct Arrangements {
    /// N single-threaded workers side by side (and N PyTorch processes); `None`: not timed.
    pub workers: Option<usize>,
    /// The Python that runs `reference/bench.py`; `None`: PyTorch is not timed.
    pub python: Option<String>,
    /// Everything again beside a busy process.
    pub load: bool,
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub seeds: usize,
    pub iterations: usize,
    pub warmup: usize,
    pub batch_size: usize,
    pub device: Device,
}

/// Synthetic CIFAR-10-shaped data: 2,000 random images and labels.
pub fn synthetic_split(device: Device) -> Split {
    crate::engine::torch_rng::seeded(0, || Split {
        images: Tensor::randint(256, [2000, 3, 32, 32], (Kind::Uint8, device)),
        labels: Tensor::randint(10, [2000], (Kind::Int64, device)),
    })
}

/// What [`time_model`] measured.
struct Timing {
    /// Model-iterations per second: S × steps / s.
    rate: f64,
    /// One model's trainable parameters (every variable holds the S models' side by side).
    parameters: i64,
}

/// `seeds` models of `model` trained as one, timed.
fn time_model(
    method: &'static dyn Method,
    model: &ModelOptions,
    seeds: usize,
    split: &Split,
    options: &BenchOptions,
) -> Result<Timing> {
    let seed_list: Vec<u64> = (0..seeds as u64).collect();
    let mut learner = Learner::with_options(method, &seed_list, model, 0.003, options.device)?;
    let mut sampler = BatchSampler::chacha8(split, &seed_list, options.batch_size);
    let normalization = PixelStandardization::default();
    let mut step = |learner: &mut Learner| {
        let (images, labels) = sampler.next_batch(split);
        learner.step(&normalization.apply(&images), &labels).0
    };
    for _ in 0..options.warmup {
        let _ = step(&mut learner);
    }
    let mut last = Tensor::new();
    let start = std::time::Instant::now();
    for _ in 0..options.iterations {
        last = step(&mut learner);
    }
    let _ = last.double_value(&[0]); // waits for the device
    let rate = (seeds * options.iterations) as f64 / start.elapsed().as_secs_f64();
    let parameters = learner.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum::<i64>() / seeds as i64;
    Ok(Timing { rate, parameters })
}

fn device_arg(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// Starts `processes` copies of `command()` at once and waits for all; the sum of
/// the model-iterations per second each prints as its JSON line's
/// `model_iterations_per_s` (their timed sections run side by side).
fn concurrent_rate(what: &str, processes: usize, command: impl Fn() -> Command) -> Result<f64> {
    let children = (0..processes)
        .map(|_| {
            command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot start {what}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut total = 0.0;
    for child in children {
        let output = child.wait_with_output().with_context(|| format!("{what} did not finish"))?;
        if !output.status.success() {
            bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().unwrap_or_default();
        let value: serde_json::Value =
            serde_json::from_str(line.trim()).with_context(|| format!("{what} printed {text}"))?;
        total += value["model_iterations_per_s"].as_f64().with_context(|| format!("{what} printed {line}"))?;
    }
    Ok(total)
}

/// The PyTorch reference: `processes` processes of `threads` threads each, each doing
/// its share of `options.seeds` runs one after another; their model-iterations per
/// second together.
pub fn time_pytorch(
    python: &str,
    repo: &Path,
    network: Network,
    method: &str,
    processes: usize,
    threads: usize,
    options: &BenchOptions,
) -> Result<f64> {
    let runs = options.seeds.div_ceil(processes).to_string();
    concurrent_rate(&format!("{python} reference/bench.py (set --python, or HOMEONORM_PYTHON)"), processes, || {
        let mut c = Command::new(python);
        c.arg(repo.join("reference/bench.py"))
            .args(["--model", network.name(), "--method", method, "--runs", &runs])
            .args(["--iterations", &options.iterations.to_string()])
            .args(["--warmup", &options.warmup.to_string()])
            .args(["--batch-size", &options.batch_size.to_string()])
            .args(["--threads", &threads.to_string()])
            .args(["--device", &device_arg(options.device)]);
        c
    })
}

/// homeonorm's workers: `workers` processes of this binary with one thread each, each
/// training models of `width` seeds (one sweep worker's models); their
/// model-iterations per second together.
pub fn time_workers(
    network: Network,
    method: &str,
    workers: usize,
    width: usize,
    options: &BenchOptions,
) -> Result<f64> {
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    concurrent_rate("a bench worker", workers, || {
        let mut c = Command::new(&exe);
        c.args(["bench", "--worker", "--models", network.name(), "--methods", method])
            .args(["--threads", "1", "--python", "none"])
            .args(["--seeds", &width.to_string()])
            .args(["--iterations", &options.iterations.to_string()])
            .args(["--warmup", &options.warmup.to_string()])
            .args(["--batch-size", &options.batch_size.to_string()])
            .args(["--device", if options.device.is_cuda() { "cuda" } else { "cpu" }]);
        c
    })
}

/// A busy neighbour: a process spinning on one core until dropped, as another job on
/// a shared node does.
pub struct Neighbour(Child);

impl Neighbour {
    pub fn start() -> Result<Neighbour> {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start a busy process (sh)")?;
        Ok(Neighbour(child))
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A sweep plan's training time on this machine: each model (a setting and how many
/// runs it trains) timed for a few steps on synthetic data, scaled to its iterations,
/// and the models handed to `workers` processes in order, each taking the next when it
/// finishes one (what the claims do). Training steps only: evaluations add to it.
pub fn estimate_plan(
    models: &[(&TrainSettings, usize)],
    workers: usize,
    device: Device,
) -> Result<std::time::Duration> {
    let split = synthetic_split(device);
    let mut rates: Vec<(&TrainSettings, usize, f64)> = Vec::new();
    let mut seconds = Vec::new();
    for &(settings, width) in models {
        // One timing per setting and width (neither the learning rate nor a rule setting
        // changes a step's cost).
        let same = |(s, w, _): &&(&TrainSettings, usize, f64)| *w == width && settings.equal_but_per_model(s);
        let rate = match rates.iter().find(same) {
            Some(&(_, _, rate)) => rate,
            None => {
                let options =
                    BenchOptions { seeds: width, iterations: 8, warmup: 2, batch_size: settings.batch_size, device };
                let rate =
                    time_model(settings.method.method(), &settings.model_options(), width, &split, &options)?.rate;
                rates.push((settings, width, rate));
                rate
            }
        };
        seconds.push((width * settings.iterations) as f64 / rate);
    }
    Ok(std::time::Duration::from_secs_f64(makespan(&seconds, workers)))
}

/// When the last of `workers` finishes, each taking the next job (seconds) in order
/// as soon as it is free.
fn makespan(jobs: &[f64], workers: usize) -> f64 {
    let mut free_at = vec![0f64; workers.max(1)];
    for job in jobs {
        let earliest = free_at.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("at least one worker");
        *earliest += job;
    }
    free_at.into_iter().fold(0.0, f64::max)
}

/// One `bench --workers` process: the batched model's rate as one JSON line.
pub fn worker(methods: &[&'static dyn Method], networks: &[Network], options: &BenchOptions) -> Result<()> {
    let ([method], [network]) = (methods, networks) else {
        bail!("a bench worker times exactly one method of one network")
    };
    let split = synthetic_split(options.device);
    let model = ModelOptions { network: *network, ..ModelOptions::default() };
    let timing = time_model(*method, &model, options.seeds, &split, options)?;
    // One model's parameter count says which network was timed, as reference/bench.py's does.
    println!("{}", serde_json::json!({ "model_iterations_per_s": timing.rate, "parameters": timing.parameters }));
    Ok(())
}

/// `bench --checkpoint`: what a mid-run checkpoint costs, for each of `methods` at
/// `options.seeds` models (the CIFAR-10 protocol's LeNet5): its size per model, at the
/// end of a 45,000-iteration run (its heat map is then longest), the time to write the
/// seed batch's checkpoints (fsynced), and that time as a share of the default interval.
pub fn checkpoint_cost(methods: &[&'static dyn Method], options: &BenchOptions) -> Result<()> {
    use crate::results::checkpoint::{self, CheckpointInfo, CHECKPOINT_FORMAT};
    let split = synthetic_split(options.device);
    let settings = TrainSettings::preset(crate::engine::data::DatasetKind::Cifar10, "vanilla".parse()?);
    let interval = crate::runs::train::CHECKPOINT_EVERY.as_secs_f64();
    println!(
        "checkpoint of {} model(s), each at iteration {} (a heat-map row every {}): size per model, time to write all (fsynced), share of a {interval:.0} s interval",
        options.seeds, settings.iterations, settings.record_every
    );
    for &method in methods {
        let seeds: Vec<u64> = (0..options.seeds as u64).collect();
        let mut learner = Learner::with_options(method, &seeds, &ModelOptions::default(), settings.lr, options.device)?;
        let mut sampler = BatchSampler::chacha8(&split, &seeds, options.batch_size);
        let normalization = PixelStandardization::default();
        let mut forward = None;
        for _ in 0..2 {
            let (images, labels) = sampler.next_batch(&split);
            forward = Some(learner.step(&normalization.apply(&images), &labels).1);
        }
        let hidden = forward.expect("two steps").hidden;
        let units: i64 = crate::engine::evaluate::measured_layers(&learner.model, false)
            .iter()
            .map(|l| hidden[l.index].size()[2])
            .sum();
        let rows = (settings.iterations / settings.record_every) as i64;
        let activity = Tensor::rand([rows, units], (Kind::Float, Device::Cpu));
        let dir = std::env::temp_dir().join(format!("homeonorm-bench-checkpoint-{}", std::process::id()));
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for s in 0..options.seeds {
            let run_dir = dir.join(s.to_string());
            std::fs::create_dir_all(&run_dir)?;
            let mut tensors = learner.model_checkpoint(s as i64);
            tensors.push(("log/activity".into(), activity.shallow_clone()));
            let info = CheckpointInfo {
                checkpoint_format: CHECKPOINT_FORMAT,
                iteration: settings.iterations - 1,
                seed: s as u64,
                settings: settings.identity(Default::default()),
                data_sha256: None,
                curve: Vec::new(),
                diverged_at: None,
                loss_sum: 0.0,
                loss_steps: 0,
                activity_iterations: (0..rows as usize).map(|r| (r + 1) * settings.record_every).collect(),
                wall_time_s: 0.0,
                stretches: vec![crate::runs::provenance::begin(options.device, 0)],
                tensors_sha256: String::new(),
            };
            bytes = checkpoint::write(&run_dir, &info, &tensors)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        println!(
            "{:<20} {:>8.1} KB per model {:>8.1} ms for {} {:>9.4} %",
            method.name(),
            bytes as f64 / 1024.0,
            1000.0 * seconds,
            options.seeds,
            100.0 * seconds / interval
        );
    }
    Ok(())
}

/// `homeonorm bench`: prints the table of every arrangement's rate for each of
/// `methods` that `network` takes.
pub fn table(
    network: Network,
    methods: &[&'static dyn Method],
    options: &BenchOptions,
    arrangements: &Arrangements,
) -> Result<()> {
    if options.seeds == 0 || options.iterations == 0 || options.batch_size == 0 {
        bail!("--seeds, --iterations and --batch-size must be positive");
    }
    let split = synthetic_split(options.device);
    let repo = std::env::current_dir()?;
    let (s, threads) = (options.seeds, tch::get_num_threads() as usize);
    let n = arrangements.workers;
    let model = ModelOptions { network, ..ModelOptions::default() };
    println!(
        "\n{network}: device {}, batch {}, {} timed iterations after {} warm-up; model-iterations per second",
        crate::engine::system::device_name(options.device),
        options.batch_size,
        options.iterations,
        options.warmup
    );
    // The workers train models of the width a sweep takes by default for the method.
    let default = SeedsPerModel::Default { cuda: options.device.is_cuda() };
    let width = |method: &dyn Method| default.for_method(method).min(s);
    let workers_text = n.map_or(String::new(), |n| {
        format!("; {n} workers × 1 thread, each training models of the default width for the method (sweep's default)")
    });
    let python_text = match (&arrangements.python, n) {
        (Some(_), Some(n)) => format!(
            " PyTorch (reference/bench.py): {s} runs in sequence on {threads} thread(s); {n} processes × 1 thread sharing them."
        ),
        _ => String::new(),
    };
    println!(
        "homeonorm: 1 model and {s} seeds batched in one process of {threads} thread(s){workers_text}.{python_text}"
    );
    let conditions: &[bool] = if arrangements.load { &[false, true] } else { &[false] };
    let cell = |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    for &loaded in conditions {
        let _neighbour = if loaded { Some(Neighbour::start()?) } else { None };
        println!("\n{}", if loaded { "beside one busy process" } else { "idle" });
        let n_text = n.map_or("–".to_string(), |n| n.to_string());
        println!(
            "{:<20} {:>9} {:>11} {:>12} {:>12} {:>12} {:>10} {:>10}",
            "method",
            "1 model",
            format!("{s} batched"),
            format!("{n_text} workers"),
            format!("PT {s} seq."),
            format!("PT {n_text} proc."),
            "÷ best PT",
            "÷ PT seq."
        );
        for &method in methods.iter().filter(|m| check_method(**m, &model).is_ok()) {
            let one = time_model(method, &model, 1, &split, options)?.rate;
            let batched = time_model(method, &model, s, &split, options)?.rate;
            let spread = n.map(|n| time_workers(network, method.name(), n, width(method), options)).transpose()?;
            let torch = match (&arrangements.python, n) {
                (Some(py), Some(n)) => Some((
                    time_pytorch(py, &repo, network, method.name(), 1, threads, options)?,
                    time_pytorch(py, &repo, network, method.name(), n, 1, options)?,
                )),
                _ => None,
            };
            let ratio = |f: fn((f64, f64)) -> f64| spread.zip(torch).map(|(w, t)| w / f(t));
            println!(
                "{:<20} {:>9.1} {:>11.1} {:>12} {:>12} {:>12} {:>10} {:>10}",
                method.name(),
                one,
                batched,
                cell(spread, 1),
                cell(torch.map(|t| t.0), 1),
                cell(torch.map(|t| t.1), 1),
                cell(ratio(|t| t.0.max(t.1)), 2),
                cell(ratio(|t| t.0), 2)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn workers_take_the_next_model_when_free() {
        // Two workers: 5 and 1 start; the second takes 1 (at 1), then 4 (at 2): done at 6.
        assert_eq!(super::makespan(&[5.0, 1.0, 1.0, 4.0], 2), 6.0);
        assert_eq!(super::makespan(&[5.0, 1.0, 1.0, 4.0], 1), 11.0);
        assert_eq!(super::makespan(&[], 3), 0.0);
    }
}
