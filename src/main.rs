//! The homeonorm command line. Everything it runs lives in the library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use homeonorm::engine::data::{self, DatasetKind, Limit};
use homeonorm::engine::norm::MethodId;
use homeonorm::engine::settings::SettingChanges;
use homeonorm::engine::system::DeviceChoice;
use homeonorm::engine::{model, norm, system};
use homeonorm::runs::train::{self, RunData};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "homeonorm", version = version_line(), about = "Normalization methods and homeostasis in LeNet5 and beyond (Shen, Wang & Navlakha 2021), on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every finished run under RESULTS as TensorBoard event files: curves, measures and
    /// unit histograms per run, and the HParams tab's table of settings and final numbers.
    Tensorboard {
        results: PathBuf,
        /// Where the event files go (one folder per run); default RESULTS/report/tensorboard.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Versions, devices and threads, the methods and networks; with --method, a model's parameters.
    Info {
        /// Print the per-layer trainable parameter counts of the network with this method.
        #[arg(long, value_name = "METHOD")]
        method: Option<MethodId>,
        /// The network of --method's counts.
        #[arg(long, value_enum, default_value = "lenet5")]
        model: model::Network,
    },
    /// Fetch a dataset from its official source (or a mirror) and verify its MD5 sums.
    Download {
        dataset: DatasetKind,
        /// The data root: CIFAR-10's archive goes here, SVHN's files into DIR/svhn.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Base URL of a mirror holding the files under their official names.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Train one setting for one or more seeds (the paper's protocol unless overridden);
    /// writes OUT/<dataset>/<method>/lr<lr>/seed<k>/ per seed.
    // (Boxed: every setting's flag makes it by far the largest command.)
    Train(Box<TrainArgs>),
    /// Run an experiment file's grid: resumable, shardable across workers sharing OUT.
    Sweep {
        experiment: PathBuf,
        /// Results root: runs go to OUT/<experiment name>/.
        #[arg(long, default_value = "outputs")]
        out: PathBuf,
        /// This worker's share, I/N with I from 0 (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT),
        /// or shards I to J of N together as I-J/N.
        #[arg(long, default_value = "0/1")]
        shard: homeonorm::runs::sweep::Shard,
        /// List what would run and what is done, and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Retrain, in place, complete runs whose recorded settings differ from the
        /// experiment's (by default the sweep stops and names them).
        #[arg(long)]
        retrain_changed: bool,
        /// Worker processes on this machine sharing the sweep through its claims, each
        /// with --threads threads (default: one single-threaded worker per usable core;
        /// on CUDA, 2 sharing the GPU).
        #[arg(long, value_parser = positive)]
        workers: Option<usize>,
        /// Run only these of the experiment's datasets (comma-separated).
        #[arg(long, value_delimiter = ',')]
        datasets: Vec<DatasetKind>,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Training speed: one model, S seeds batched, and the PyTorch reference's S runs in sequence.
    Bench {
        /// Methods to time (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<MethodId>,
        /// Networks to time, a table each (default: lenet5); PyTorch's side runs the same network.
        #[arg(long, value_delimiter = ',', default_value = "lenet5")]
        models: Vec<model::Network>,
        /// S: seeds batched into one model (and PyTorch runs to share out).
        #[arg(long, default_value_t = 10)]
        seeds: usize,
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        /// Threads of the in-process and sequential arrangements (default: every usable core).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=4096))]
        threads: Option<i32>,
        /// N: worker processes (and PyTorch processes) side by side (default: sweep's, one per usable core).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        workers: Option<u16>,
        /// Time every arrangement again beside a busy process, as on a shared node.
        #[arg(long)]
        load: bool,
        /// Time only the in-process arrangements (1 model, S batched): no workers, no PyTorch.
        #[arg(long)]
        in_process: bool,
        /// The Python with torch 2.11 for the PyTorch side (default: $HOMEONORM_PYTHON or python3); "none" skips it.
        #[arg(long)]
        python: Option<String>,
        /// One of `--workers`' processes: time the seed batch, print one JSON line.
        #[arg(long, hide = true)]
        worker: bool,
        /// Instead: what a mid-run checkpoint costs (size per model, time to write S models').
        #[arg(long)]
        checkpoint: bool,
    },
    /// Figures 2 and 3's panels from the complete runs under DIR, into DIR/report/figures/.
    Plot {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "png")]
        format: homeonorm::results::plot::Format,
        /// Also draw the paper's Figure 2 as one picture (panels A–E) per setting group.
        #[arg(long)]
        paper: bool,
    },
    /// Tables (CSV and Markdown) of the finished runs under DIR, beside the paper's numbers:
    /// DIR/report/summary.csv (a row per setting), runs.csv (a row per run), curves.csv
    /// and report.md.
    Report {
        dir: PathBuf,
        /// Also write the tables as LaTeX (booktabs) to DIR/report/tables.tex.
        #[arg(long)]
        latex: bool,
    },
    /// Two results folders side by side (homeonorm's and a PyTorch script's, CPU and
    /// GPU, two machines): per setting, accuracy and measures with Welch's test, and
    /// for shared seeds where the curves part. Writes OUT/compare.csv and compare.md.
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value = "compare")]
        out: PathBuf,
        /// Exit with status 1 when a difference (of means, of a seed's values, of
        /// curves) exceeds this; 0 asks for identical results.
        #[arg(long)]
        tolerance: Option<f64>,
    },
    /// Evaluate a finished run's weights (model.safetensors) again, with another test
    /// batch size or test-time statistics; writes RUN_DIR/eval-<stats>-tb<N>.json.
    Eval {
        run_dir: PathBuf,
        #[arg(long, value_parser = positive)]
        test_batch_size: Option<usize>,
        #[arg(long, value_enum)]
        eval_stats: Option<homeonorm::engine::norm::EvalStats>,
        /// The dataset's folder (default: where the run read it).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=4096))]
        threads: Option<i32>,
    },
    /// A long-format results table (a CSV: one row per method, learning rate, seed and
    /// iteration, with test accuracy and optionally training loss) as partial run
    /// folders under OUT, for `compare`, `report` and `plot`. Every run has the paper's
    /// settings for its dataset and method unless the setting flags, or a column named
    /// as a setting (batch_size, iterations, …), say otherwise.
    Import(Box<ImportArgs>),
    /// A results folder's runs in another program's format.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Dataset files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Args)]
struct ImportArgs {
    table: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// The dataset of the table's runs (a `dataset` column overrides it per run).
    #[arg(long, default_value = "cifar10")]
    dataset: DatasetKind,
    /// The accuracies are percentages (0 to 100), not fractions.
    #[arg(long)]
    percent: bool,
    /// Write over run folders already in OUT (by default: an error naming them).
    #[arg(long)]
    replace: bool,
    /// The runs used the first N images of each split (as `train --limit`).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    columns: homeonorm::results::import::Columns,
    #[command(flatten)]
    changes: SettingChanges,
}

#[derive(Args)]
struct TrainArgs {
    #[arg(long)]
    dataset: DatasetKind,
    /// A registered method (`homeonorm info` lists them).
    #[arg(long)]
    method: MethodId,
    /// Seeds, comma-separated; seeds train together as one seed-batched model.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seed: Vec<u64>,
    #[command(flatten)]
    changes: SettingChanges,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Where run folders go.
    #[arg(long, default_value = "outputs/train")]
    out: PathBuf,
    /// Train seeds whose run in OUT is complete again: with these settings (by default: kept,
    /// not trained), or with other settings (by default: an error).
    #[arg(long)]
    replace: bool,
}

/// Where the work runs and where the data is.
#[derive(Args, Clone)]
struct RuntimeArgs {
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// On CUDA, the GPUs to use, comma-separated (cuda:0,cuda:1): a sweep's worker i
    /// trains on the (i mod n)-th [default: CUDA_VISIBLE_DEVICES's, else Slurm's
    /// SLURM_STEP_GPUS or SLURM_JOB_GPUS, else every visible GPU].
    #[arg(long, value_delimiter = ',', value_parser = homeonorm::runs::placement::parse_cuda_device)]
    devices: Vec<usize>,
    /// The data root: data/cifar-10-batches-bin (or the archive beside it), data/svhn.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Use at most N images of each split (a subset, on purpose: the official counts are not checked).
    #[arg(long, value_name = "N", value_parser = positive)]
    limit: Option<usize>,
    /// Runs of one setting (seeds, learning rates, rule settings) trained together as one
    /// seed-batched model, at most [default: 60 on CUDA; 4 on the CPU, 1 for the methods a
    /// seed batch was measured to slow there].
    #[arg(long, value_parser = positive)]
    seeds_per_batch: Option<usize>,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=4096))]
    threads: Option<i32>,
    /// When a run writes its checkpoint besides on a stop signal: a wall time (90s, 10m,
    /// 2h), iterations (5000it), both (10m,5000it: whichever first), or 0 (signals only).
    #[arg(long, value_name = "EVERY", default_value = "10m")]
    checkpoint_every: homeonorm::runs::train::CheckpointPolicy,
    /// Minutes after which a claim not refreshed by its worker is taken over
    /// (a claim whose process is gone from this host is taken over at once).
    #[arg(long, default_value_t = 10.0)]
    claim_timeout_minutes: f64,
    /// Keep a run's last checkpoint when it completes (by default it is removed).
    #[arg(long)]
    keep_checkpoints: bool,
    /// The signals that stop a run after its step, with a checkpoint (comma-separated;
    /// one left out keeps its usual effect).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "INT,TERM,HUP,USR1,USR2")]
    stop_signals: Vec<homeonorm::runs::interrupt::StopSignal>,
}

/// A count that must be at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

impl RuntimeArgs {
    /// The device this process trains on: the CPU, or the first GPU of its placement
    /// (a sweep's worker is given its own with `--devices`).
    fn device(&self) -> Result<tch::Device> {
        if let Some(n) = self.threads {
            tch::set_num_threads(n);
        }
        Ok(match self.placement()? {
            Some(placement) => tch::Device::Cuda(placement.devices[0]),
            None => self.device.resolve()?,
        })
    }

    /// On CUDA, the GPUs this process's workers share out (`--devices`, or what the job
    /// was given); None on the CPU.
    fn placement(&self) -> Result<Option<homeonorm::runs::placement::Placement>> {
        use homeonorm::runs::placement::{place, GpuEnv};
        if !self.device.resolve()?.is_cuda() {
            if !self.devices.is_empty() {
                anyhow::bail!(
                    "--devices places runs on GPUs, but this run is on the CPU (--device cuda asks for CUDA)"
                );
            }
            return Ok(None);
        }
        Ok(Some(place(&self.devices, &GpuEnv::read(), tch::Cuda::device_count().max(0) as usize)?))
    }

    /// `--seeds-per-batch`, or the device's default.
    fn seeds_per_batch(&self) -> Result<homeonorm::runs::packing::SeedsPerModel> {
        use homeonorm::runs::packing::SeedsPerModel;
        Ok(match self.seeds_per_batch {
            Some(n) => SeedsPerModel::Asked(n),
            None => SeedsPerModel::Default { cuda: self.device.resolve()?.is_cuda() },
        })
    }

    fn checkpoints(&self) -> homeonorm::runs::train::CheckpointPolicy {
        homeonorm::runs::train::CheckpointPolicy { keep: self.keep_checkpoints, ..self.checkpoint_every.clone() }
    }

    fn limit(&self) -> Limit {
        Limit { train: self.limit, test: self.limit }
    }

    /// The dataset's files and their hashes as they are now, where they can be read
    /// (a missing dataset is reported by the load that needs it).
    fn data_files(&self, kind: DatasetKind) -> Option<Vec<data::DataFile>> {
        data::identify(kind, &kind.default_dir(&self.data_dir)).ok()
    }

    fn load(&self, kind: DatasetKind, device: tch::Device) -> Result<RunData> {
        let dir = kind.default_dir(&self.data_dir);
        let limit = self.limit();
        let dataset = data::load(kind, &dir, limit)?;
        log::info!(
            "{kind}: {} training and {} test images from {}",
            dataset.train.len(),
            dataset.test.len(),
            dir.display()
        );
        Ok(RunData::new(dataset, &dir, limit, device))
    }
}

#[derive(Subcommand)]
enum DataCommand {
    /// Read and validate a dataset; print its counts per class and split.
    Check {
        #[arg(long)]
        dataset: DatasetKind,
        /// The dataset's folder (default: data/cifar-10-batches-bin or data/svhn).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Accept a subset: keep at most N images of each split instead of checking the official counts.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

fn version_line() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (libtorch ", env!("HOMEONORM_LIBTORCH_VERSION"), ")")
}

fn main() {
    // Output into a closed pipe (`homeonorm info | head -1`) ends the program quietly, as
    // it does other command-line tools, instead of a panic in `println!`.
    // SAFETY: called before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    system::keep_freed_memory();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(err) = run(Cli::parse()) {
        // Each line escaped, the line breaks kept: a multi-line error reads as lines.
        let message: Vec<String> = format!("{err:#}").lines().map(homeonorm::text::escape).collect();
        eprintln!("error: {}", message.join("\n"));
        let interrupted = err.is::<homeonorm::runs::interrupt::Interrupted>();
        std::process::exit(if interrupted { 130 } else { 1 });
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { method, model } => {
            print!("{}", system::describe(method.map(|m| m.method()), model)?);
            Ok(())
        }
        Command::Train(args) => {
            let TrainArgs { dataset, method, seed, changes, runtime, out, replace } = *args;
            homeonorm::runs::interrupt::install(&runtime.stop_signals)?;
            let settings = changes.settings(dataset, method)?;
            let data_now = runtime.data_files(dataset);
            let command = train::TrainCommand {
                replace,
                limit: runtime.limit(),
                data_now: data_now.as_deref(),
                seeds_per_model: runtime.seeds_per_batch()?,
                checkpoints: runtime.checkpoints(),
                claim_timeout: claim_timeout(runtime.claim_timeout_minutes)?,
            };
            train::train_command(&settings, &seed, &out, &command, || runtime.load(dataset, runtime.device()?))
        }
        Command::Sweep { experiment, out, shard, dry_run, retrain_changed, workers, datasets, runtime } => {
            homeonorm::runs::interrupt::install(&runtime.stop_signals)?;
            let mut experiment = homeonorm::runs::experiment::Experiment::load(&experiment)?;
            experiment.keep_datasets(&datasets)?;
            let options = homeonorm::runs::sweep::SweepOptions {
                out,
                shard,
                seeds_per_batch: runtime.seeds_per_batch()?,
                checkpoints: runtime.checkpoints(),
                claim_timeout: claim_timeout(runtime.claim_timeout_minutes)?,
                data_limit: runtime.limit(),
                retrain_changed,
                data_files: experiment
                    .runs
                    .iter()
                    .map(|r| r.settings.dataset)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .filter_map(|kind| Some((kind, runtime.data_files(kind)?)))
                    .collect(),
            };
            let placement = runtime.placement()?;
            let device = runtime.device()?;
            let threads = runtime.threads.map(|t| t as usize);
            let on = (device, placement.as_ref());
            homeonorm::runs::sweep::command(&experiment, &options, dry_run, (workers, threads), on, |kind| {
                runtime.load(kind, device)
            })
        }
        Command::Bench {
            methods,
            models,
            seeds,
            iterations,
            warmup,
            batch_size,
            device,
            threads,
            workers,
            load,
            in_process,
            python,
            worker,
            checkpoint,
        } => {
            if let Some(n) = threads {
                tch::set_num_threads(n);
            }
            let options = homeonorm::runs::bench::BenchOptions {
                seeds,
                iterations,
                warmup,
                batch_size,
                device: device.resolve()?,
            };
            let methods: Vec<&'static dyn norm::Method> =
                if methods.is_empty() { norm::METHODS.to_vec() } else { methods.iter().map(|m| m.method()).collect() };
            if worker {
                return homeonorm::runs::bench::worker(&methods, &models, &options);
            }
            if checkpoint {
                return homeonorm::runs::bench::checkpoint_cost(&methods, &options);
            }
            let python = python.or_else(|| std::env::var("HOMEONORM_PYTHON").ok()).unwrap_or_else(|| "python3".into());
            // sweep's default: one single-threaded worker per usable core (two per GPU).
            let sweep_default = || {
                let cores = homeonorm::runs::workers::usable_cores();
                homeonorm::runs::workers::plan(usize::from(options.device.is_cuda()), cores, None, usize::MAX).workers
            };
            let arrangements = homeonorm::runs::bench::Arrangements {
                workers: (!in_process).then(|| workers.map_or_else(sweep_default, usize::from)),
                python: (!in_process && python != "none").then_some(python),
                load,
            };
            for network in models {
                homeonorm::runs::bench::table(network, &methods, &options, &arrangements)?;
            }
            Ok(())
        }
        Command::Plot { dir, format, paper } => {
            let files = homeonorm::results::plot::plot(&dir, format, paper)?;
            for f in &files {
                println!("{}", homeonorm::text::path(f));
            }
            // report.md links the figures that exist.
            homeonorm::results::report::write(&dir)?;
            Ok(())
        }
        Command::Eval { run_dir, test_batch_size, eval_stats, data_dir, device, threads } => {
            if let Some(n) = threads {
                tch::set_num_threads(n);
            }
            let (path, result) = homeonorm::results::reevaluate::reevaluate(
                &run_dir,
                test_batch_size,
                eval_stats,
                data_dir.as_deref(),
                device.resolve()?,
            )?;
            println!("test accuracy {:.2} % → {}", 100.0 * result.accuracy, homeonorm::text::path(&path));
            Ok(())
        }
        Command::Compare { a, b, out, tolerance } => homeonorm::results::compare::command(&a, &b, &out, tolerance),
        Command::Export(ExportCommand::Tensorboard { results, out }) => {
            let out = out.unwrap_or_else(|| results.join(homeonorm::results::rundir::REPORT_DIR).join("tensorboard"));
            let (runs, left_out) = homeonorm::results::tensorboard::export(&results, &out)?;
            for (dir, why) in &left_out {
                log::warn!("left out {}: {}", homeonorm::text::path(dir), homeonorm::text::escape(why));
            }
            println!("{runs} run(s) as TensorBoard event files under {}", homeonorm::text::path(&out));
            println!("view them: tensorboard --logdir {}", homeonorm::text::path(&out));
            Ok(())
        }
        Command::Import(args) => {
            let ImportArgs { table, out, dataset, percent, replace, limit, columns, changes } = *args;
            let data_limit = Limit { train: limit, test: limit };
            let options =
                homeonorm::results::import::ImportOptions { columns, dataset, changes, data_limit, percent, replace };
            let written = homeonorm::results::import::import(&table, &out, &options)?;
            println!("{} run folder(s) under {}", written.len(), homeonorm::text::path(&out));
            Ok(())
        }
        Command::Report { dir, latex } => {
            let results = homeonorm::results::report::write(&dir)?;
            if latex {
                homeonorm::results::report::write_latex(&dir, &results)?;
            }
            println!(
                "{} settings; wrote {}",
                results.len(),
                homeonorm::text::path(&dir.join(homeonorm::results::rundir::REPORT_DIR))
            );
            Ok(())
        }
        Command::Download { dataset, dir, base_url } => {
            // Ctrl-C or SIGTERM ends a download at its next read, its partial file removed.
            homeonorm::runs::interrupt::install(&homeonorm::runs::interrupt::StopSignal::ALL)?;
            let target = homeonorm::runs::download::target_dir(dataset, &dir);
            let files = homeonorm::runs::download::download(dataset, &target, base_url.as_deref())?;
            for f in files {
                println!("{}", homeonorm::text::path(&f));
            }
            Ok(())
        }
        Command::Data { command: DataCommand::Check { dataset, dir, limit } } => {
            let dir = dir.unwrap_or_else(|| dataset.default_dir(std::path::Path::new("data")));
            print!("{}", data::describe(dataset, &dir, Limit { train: limit, test: limit })?);
            Ok(())
        }
    }
}

/// `--claim-timeout-minutes` checked: from 3 seconds (a claim is refreshed every quarter
/// of it, so a shorter one is taken over from live workers) up to a week.
fn claim_timeout(minutes: f64) -> Result<std::time::Duration> {
    const WEEK: f64 = 7.0 * 24.0 * 60.0;
    const SHORTEST: f64 = 0.05;
    if !(minutes.is_finite() && (SHORTEST..=WEEK).contains(&minutes)) {
        anyhow::bail!(
            "--claim-timeout-minutes must be at least {SHORTEST} (3 seconds) and at most {WEEK} (a week), got {minutes}"
        );
    }
    Ok(std::time::Duration::from_secs_f64(minutes * 60.0))
}
