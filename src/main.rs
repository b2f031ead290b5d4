//! The homeonorm command line. Everything it runs lives in the library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use homeonorm::data::{self, DatasetKind, Limit};
use homeonorm::norm::MethodId;
use homeonorm::settings::SettingChanges;
use homeonorm::system::DeviceChoice;
use homeonorm::train::{self, RunData};
use homeonorm::{learner::Learner, model, norm, system};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "homeonorm", version = version_line(), about = "Normalization methods and homeostasis in LeNet5 and beyond (Shen, Wang & Navlakha 2021), on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// This worker's share, I/N with I from 0 (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).
        #[arg(long, default_value = "0/1")]
        shard: homeonorm::sweep::Shard,
        /// List what would run and what is done, and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Minutes after which a claim not refreshed by its worker is taken over
        /// (a claim whose process is gone from this host is taken over at once).
        #[arg(long, default_value_t = 10.0)]
        claim_timeout_minutes: f64,
        /// Retrain, in place, complete runs whose recorded settings differ from the
        /// experiment's (by default the sweep stops and names them).
        #[arg(long)]
        retrain_changed: bool,
        /// Worker processes on this machine sharing the sweep through its claims, each
        /// with --threads threads (default: one single-threaded worker per usable core;
        /// on CUDA, 4 sharing the GPU).
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
    },
    /// Figures 2 and 3's panels from the complete runs under DIR, into DIR/report/figures/.
    Plot {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "png")]
        format: homeonorm::plot::Format,
        /// Also draw the paper's Figure 2 as one picture (panels A–E) per setting group.
        #[arg(long)]
        paper: bool,
    },
    /// Tables (CSV and Markdown) of the finished runs under DIR, beside the paper's numbers.
    Report { dir: PathBuf },
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
        eval_stats: Option<homeonorm::norm::EvalStats>,
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
    columns: homeonorm::import::Columns,
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
    /// The data root: data/cifar-10-batches-bin (or the archive beside it), data/svhn.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Use at most N images of each split (a subset, on purpose: the official counts are not checked).
    #[arg(long, value_name = "N", value_parser = positive)]
    limit: Option<usize>,
    /// Runs of one setting (seeds, learning rates, rule settings) trained together as one
    /// seed-batched model, at most [default: 10 on CUDA; 4 on the CPU, 1 for the methods a
    /// seed batch was measured to slow there].
    #[arg(long, value_parser = positive)]
    seeds_per_batch: Option<usize>,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=4096))]
    threads: Option<i32>,
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
    fn device(&self) -> Result<tch::Device> {
        if let Some(n) = self.threads {
            tch::set_num_threads(n);
        }
        self.device.resolve()
    }

    /// `--seeds-per-batch`, or the device's default.
    fn seeds_per_batch(&self) -> Result<homeonorm::workers::SeedsPerModel> {
        use homeonorm::workers::SeedsPerModel;
        Ok(match self.seeds_per_batch {
            Some(n) => SeedsPerModel::Asked(n),
            None => SeedsPerModel::Default { cuda: self.device.resolve()?.is_cuda() },
        })
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(err) = run(Cli::parse()) {
        // Each line escaped, the line breaks kept: a multi-line error reads as lines.
        let message: Vec<String> = format!("{err:#}").lines().map(homeonorm::text::escape).collect();
        eprintln!("error: {}", message.join("\n"));
        let interrupted = err.is::<homeonorm::interrupt::Interrupted>();
        std::process::exit(if interrupted { 130 } else { 1 });
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { method, model } => info(method, model),
        Command::Train(args) => train_command(*args),
        Command::Sweep {
            experiment,
            out,
            shard,
            dry_run,
            claim_timeout_minutes,
            retrain_changed,
            workers,
            datasets,
            runtime,
        } => {
            let mut experiment = homeonorm::experiment::Experiment::load(&experiment)?;
            if !datasets.is_empty() {
                experiment.runs.retain(|r| datasets.contains(&r.settings.dataset));
                if experiment.runs.is_empty() {
                    anyhow::bail!("{}: no runs left for datasets {datasets:?}", experiment.path.display());
                }
            }
            let options = homeonorm::sweep::SweepOptions {
                out,
                shard,
                seeds_per_batch: runtime.seeds_per_batch()?,
                claim_timeout: claim_timeout(claim_timeout_minutes)?,
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
            sweep_command(&experiment, &options, dry_run, workers, runtime)
        }
        Command::Bench {
            methods,
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
        } => {
            if let Some(n) = threads {
                tch::set_num_threads(n);
            }
            let options =
                homeonorm::bench::BenchOptions { seeds, iterations, warmup, batch_size, device: device.resolve()? };
            if worker {
                return bench_worker(&methods, &options);
            }
            let python = python.or_else(|| std::env::var("HOMEONORM_PYTHON").ok()).unwrap_or_else(|| "python3".into());
            // sweep's default: one single-threaded worker per usable core (two per GPU).
            let sweep_default = || {
                let cores = homeonorm::workers::usable_cores();
                homeonorm::workers::plan(options.device.is_cuda(), cores, None, usize::MAX).workers
            };
            let arrangements = homeonorm::bench::Arrangements {
                workers: (!in_process).then(|| workers.map_or_else(sweep_default, usize::from)),
                python: (!in_process && python != "none").then_some(python),
                load,
            };
            bench_command(&methods, &options, &arrangements)
        }
        Command::Plot { dir, format, paper } => {
            let files = homeonorm::plot::plot(&dir, format, paper)?;
            for f in &files {
                println!("{}", homeonorm::text::path(f));
            }
            // report.md links the figures that exist.
            homeonorm::report::write(&dir)?;
            Ok(())
        }
        Command::Eval { run_dir, test_batch_size, eval_stats, data_dir, device, threads } => {
            if let Some(n) = threads {
                tch::set_num_threads(n);
            }
            let (path, result) = homeonorm::evaluate::reevaluate(
                &run_dir,
                test_batch_size,
                eval_stats,
                data_dir.as_deref(),
                device.resolve()?,
            )?;
            println!("test accuracy {:.2} % → {}", 100.0 * result.accuracy, homeonorm::text::path(&path));
            Ok(())
        }
        Command::Compare { a, b, out, tolerance } => {
            if let Some(t) = tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
                anyhow::bail!("--tolerance must be a finite number ≥ 0, got {t}");
            }
            let comparison = homeonorm::compare::compare(&a, &b)?;
            homeonorm::compare::write(&comparison, &a, &b, &out)?;
            for curve in &comparison.curves {
                let verdict = curve.first_parting.map_or("identical".into(), |i| format!("part at iteration {i}"));
                println!("{}: {} seed(s) on both sides, curves {verdict}", curve.setting, curve.seeds);
            }
            for line in &comparison.data_differs {
                println!("{line}");
            }
            for (dir, why) in &comparison.left_out {
                log::warn!("left out {}: {}", homeonorm::text::path(dir), homeonorm::text::escape(why));
            }
            println!("wrote {} and compare.md", homeonorm::text::path(&out.join("compare.csv")));
            if let Some(tolerance) = tolerance {
                let beyond = comparison.beyond(tolerance);
                if !beyond.is_empty() {
                    for line in &beyond {
                        println!("beyond {tolerance}: {line}");
                    }
                    anyhow::bail!("{} difference(s) beyond the tolerance {tolerance} (listed above)", beyond.len());
                }
            }
            Ok(())
        }
        Command::Import(args) => {
            let ImportArgs { table, out, dataset, percent, replace, limit, columns, changes } = *args;
            let data_limit = Limit { train: limit, test: limit };
            let options = homeonorm::import::ImportOptions { columns, dataset, changes, data_limit, percent, replace };
            let written = homeonorm::import::import(&table, &out, &options)?;
            println!("{} run folder(s) under {}", written.len(), homeonorm::text::path(&out));
            Ok(())
        }
        Command::Report { dir } => {
            let results = homeonorm::report::write(&dir)?;
            println!(
                "{} settings; wrote {}",
                results.len(),
                homeonorm::text::path(&dir.join(homeonorm::report::REPORT_DIR))
            );
            Ok(())
        }
        Command::Download { dataset, dir, base_url } => {
            // Ctrl-C or SIGTERM ends a download at its next read, its partial file removed.
            homeonorm::interrupt::install()?;
            let target = data::download::target_dir(dataset, &dir);
            let files = data::download::download(dataset, &target, base_url.as_deref())?;
            for f in files {
                println!("{}", homeonorm::text::path(&f));
            }
            Ok(())
        }
        Command::Data { command: DataCommand::Check { dataset, dir, limit } } => {
            let dir = dir.unwrap_or_else(|| dataset.default_dir(std::path::Path::new("data")));
            data_check(dataset, &dir, Limit { train: limit, test: limit })
        }
    }
}

fn info(method: Option<MethodId>, network: model::Network) -> Result<()> {
    let sys = system::SystemInfo::detect();
    println!("homeonorm        {}", sys.homeonorm);
    println!("libtorch         {}", sys.libtorch);
    println!("CUDA available   {} ({} device(s), cuDNN {})", sys.cuda_available, sys.cuda_devices, sys.cudnn_available);
    println!(
        "CUDA graphs      {}",
        if sys.cuda_graphs { "on (HOMEONORM_CUDA_GRAPHS=0 turns them off)" } else { "off" }
    );
    println!("CPU threads      {}", sys.cpu_threads);
    match method {
        None => {
            println!("methods          {}", norm::method_names().join(", "));
            let networks: Vec<&str> = model::Network::all().map(|n| n.name()).collect();
            println!("networks         {}", networks.join(", "));
        }
        Some(method) => {
            let options = model::ModelOptions { network, ..Default::default() };
            model::check_method(method.method(), &options)?;
            let learner = Learner::with_options(method.method(), &[0], &options, 1e-3, tch::Device::Cpu)?;
            println!("\n{network} with {} — {}", method.name(), method.method().summary());
            let counts = model::parameter_counts(&learner.vs, 1);
            let width = counts.iter().map(|c| c.0.len()).max().unwrap_or(0);
            for (name, count) in &counts {
                println!("  {name:<width$} {count:>8}");
            }
            println!("  {:<width$} {:>8}", "total", counts.iter().map(|c| c.1).sum::<i64>());
        }
    }
    Ok(())
}

fn data_check(kind: DatasetKind, dir: &std::path::Path, limit: Limit) -> Result<()> {
    let ds = data::load(kind, dir, limit)?;
    println!("{kind} in {}", homeonorm::text::path(dir));
    for file in &ds.files {
        println!(
            "  file {} ({} bytes, sha256 {})",
            file.path.display(),
            file.bytes,
            file.sha256.as_deref().unwrap_or("-")
        );
    }
    if let Some(hash) = data::content_sha256(&ds.files) {
        println!("  content sha256 {hash}");
    }
    println!("  {:<12} {:>8} {:>8}", "class", "train", "test");
    let (train, test) = (ds.train.class_counts(), ds.test.class_counts());
    for (k, name) in kind.class_names().iter().enumerate() {
        println!("  {:<12} {:>8} {:>8}", format!("{k} {name}"), train[k], test[k]);
    }
    println!("  {:<12} {:>8} {:>8}", "total", ds.train.len(), ds.test.len());
    Ok(())
}

fn train_command(args: TrainArgs) -> Result<()> {
    let settings = args.changes.settings(args.dataset, args.method)?;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(seed) = args.seed.iter().find(|s| !seen.insert(**s)) {
        anyhow::bail!("--seed: seed {seed} is given twice");
    }
    // A complete run in the way is kept: one with other settings is another experiment's
    // result (an error), one with these settings is this run, done (skipped); --replace
    // retrains either.
    let identity = settings.identity(args.runtime.limit());
    let data_now = args.runtime.data_files(args.dataset);
    let mut to_train = Vec::new();
    for &seed in &args.seed {
        let dir = homeonorm::rundir::run_dir(&args.out, &settings, seed);
        let state = homeonorm::rundir::state(&dir);
        if let homeonorm::rundir::RunState::Foreign(why) = &state {
            anyhow::bail!(
                "{why}: another writer's run is never trained over (--replace or not); move it, or use another --out"
            );
        }
        if let (homeonorm::rundir::RunState::Done(_), false) = (state, args.replace) {
            let changed = homeonorm::rundir::differences(&dir, &identity, data_now.as_deref())?;
            if !changed.is_empty() {
                anyhow::bail!(
                    "{} holds a complete run with other settings ({}); pass --replace to replace it, or use another --out",
                    dir.display(),
                    changed.join("; ")
                );
            }
            println!(
                "seed {seed}: {} is complete with these settings already; kept (--replace trains it again)",
                dir.display()
            );
            continue;
        }
        to_train.push(seed);
    }
    if to_train.is_empty() {
        return Ok(());
    }
    homeonorm::interrupt::install()?;
    let device = args.runtime.device()?;
    let data = args.runtime.load(args.dataset, device)?;
    let mut diverged = 0;
    for seeds in to_train.chunks(settings.seeds_per_batch(args.runtime.seeds_per_batch()?)) {
        for (seed, summary) in train::train_seed_batch(&settings, seeds, &data, &args.out)? {
            match summary.final_accuracy {
                Some(acc) => println!("seed {seed}: test accuracy {:.2} %", 100.0 * acc),
                None => {
                    diverged += 1;
                    println!("seed {seed}: diverged at iteration {}", summary.diverged_at.unwrap_or(0));
                }
            }
        }
    }
    if diverged > 0 {
        log::warn!("{diverged} run(s) diverged; their folders record it");
    }
    Ok(())
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

fn sweep_command(
    experiment: &homeonorm::experiment::Experiment,
    options: &homeonorm::sweep::SweepOptions,
    dry_run: bool,
    workers: Option<usize>,
    runtime: RuntimeArgs,
) -> Result<()> {
    use homeonorm::{rundir::RunState, sweep};
    homeonorm::interrupt::install()?;
    if dry_run {
        let planned = sweep::plan(experiment, options);
        let (mut done, mut pending, mut stops) = (0, 0, 0);
        for run in &planned {
            let state = match &run.state {
                RunState::Done(_) if !run.changed.is_empty() => format!(
                    "complete, with other settings ({}): {}",
                    run.changed.join("; "),
                    if options.retrain_changed { "will be retrained" } else { "the sweep stops on it" }
                ),
                RunState::Done(outcome) => format!("{outcome:?}").to_lowercase(),
                RunState::Unfinished(why) => format!("unfinished ({}): will be redone", homeonorm::text::escape(why)),
                RunState::Foreign(why) => format!(
                    "not read by this homeonorm, never trained over ({}): the sweep stops on it",
                    homeonorm::text::escape(why)
                ),
                RunState::Missing => "to run".to_string(),
            };
            match (&run.state, run.pending(options)) {
                (_, true) => pending += 1,
                (RunState::Done(_), false) if run.changed.is_empty() => done += 1,
                _ => stops += 1,
            }
            println!("{:>5}  {}  {state}", run.index, homeonorm::text::path(&run.dir));
        }
        let stopping = if stops > 0 { format!(", {stops} the sweep stops on (see above)") } else { String::new() };
        println!("{} runs in this shard: {done} done, {pending} to run{stopping}", planned.len());
        let batches = sweep::seed_batches(planned.iter().filter(|r| r.pending(options)).collect(), options);
        let arrangement = arrangement(workers, &runtime, batches.len())?;
        println!("{}", sweep::packing(&batches, options));
        println!(
            "on {} worker process(es) × {} thread(s) ({}): each worker takes the next model when it finishes one",
            arrangement.workers,
            arrangement.threads,
            if workers.is_some() { "--workers" } else { "this machine's default" }
        );
        if !batches.is_empty() {
            tch::set_num_threads(arrangement.threads as i32);
            let models: Vec<(&homeonorm::settings::TrainSettings, usize)> =
                batches.iter().map(|b| (&b[0].spec.settings, b.len())).collect();
            let device = runtime.device.resolve()?;
            let time = homeonorm::bench::estimate_plan(&models, arrangement.workers, device)?;
            println!(
                "about {} of training steps on this machine ({}; each setting timed for a few steps; evaluations add to it)",
                homeonorm::progress::format_duration(time.as_secs_f64()),
                homeonorm::system::device_name(device)
            );
        }
        return Ok(());
    }
    let planned = sweep::plan(experiment, options);
    sweep::check_changed(&planned, options)?;
    let batches = sweep::seed_batches(planned.iter().filter(|r| r.pending(options)).collect(), options).len();
    let arrangement = arrangement(workers, &runtime, batches)?;
    let device = runtime.device.resolve()?;
    if arrangement.workers > 1 {
        // The workers take the seed batches through the claims; this process shows their progress.
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let dirs: Vec<PathBuf> = planned.iter().map(|r| r.dir.clone()).collect();
        let finished = || {
            let done = dirs.iter().filter(|d| d.join(homeonorm::rundir::SUMMARY).is_file()).count();
            (done as u64, dirs.len() as u64)
        };
        homeonorm::workers::run(arrangement, &homeonorm::workers::worker_args(&args), finished)?;
        println!("sweep {}: {} workers finished", homeonorm::text::escape(&experiment.name), arrangement.workers);
        return Ok(());
    }
    tch::set_num_threads(arrangement.threads as i32);
    let result = sweep::run_planned(experiment, options, &planned, |kind| runtime.load(kind, device))?;
    println!(
        "sweep {}: trained {} run(s) here ({} diverged); {} already done; {} waited for while other workers held them; {} taken over",
        homeonorm::text::escape(&experiment.name),
        result.trained.len(),
        result.diverged,
        result.already_done,
        result.claimed_elsewhere,
        result.taken_over
    );
    Ok(())
}

/// The sweep's worker processes and threads: `--workers` (and `--threads`) as given, or
/// this machine's default for the device and the number of models to train.
fn arrangement(workers: Option<usize>, runtime: &RuntimeArgs, models: usize) -> Result<homeonorm::workers::WorkerPlan> {
    let threads = runtime.threads.map(|t| t as usize);
    let cores = homeonorm::workers::usable_cores();
    Ok(match workers {
        Some(n) => {
            homeonorm::workers::WorkerPlan { workers: n, threads: threads.unwrap_or_else(|| (cores / n).max(1)) }
        }
        None => homeonorm::workers::plan(runtime.device.resolve()?.is_cuda(), cores, threads, models),
    })
}

/// One `bench --workers` process: the batched model's rate as one JSON line.
fn bench_worker(methods: &[MethodId], options: &homeonorm::bench::BenchOptions) -> Result<()> {
    let [method] = methods else { anyhow::bail!("a bench worker times exactly one method") };
    let split = homeonorm::bench::synthetic_split(options.device);
    let rate = homeonorm::bench::time_training(method.method(), options.seeds, &split, options)?;
    println!("{}", serde_json::json!({ "model_iterations_per_s": rate }));
    Ok(())
}

fn bench_command(
    methods: &[MethodId],
    options: &homeonorm::bench::BenchOptions,
    arrangements: &homeonorm::bench::Arrangements,
) -> Result<()> {
    use homeonorm::bench;
    if options.seeds == 0 || options.iterations == 0 || options.batch_size == 0 {
        anyhow::bail!("--seeds, --iterations and --batch-size must be positive");
    }
    let methods: Vec<&'static dyn norm::Method> =
        if methods.is_empty() { norm::METHODS.to_vec() } else { methods.iter().map(|m| m.method()).collect() };
    let split = bench::synthetic_split(options.device);
    let repo = std::env::current_dir()?;
    let (s, threads) = (options.seeds, tch::get_num_threads() as usize);
    let n = arrangements.workers;
    println!(
        "device {}, batch {}, {} timed iterations after {} warm-up; model-iterations per second",
        system::device_name(options.device),
        options.batch_size,
        options.iterations,
        options.warmup
    );
    // The workers train models of the width a sweep takes by default for the method.
    let default = homeonorm::workers::SeedsPerModel::Default { cuda: options.device.is_cuda() };
    let width = |method: &dyn norm::Method| default.for_method(method).min(s);
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
        let _neighbour = if loaded { Some(bench::Neighbour::start()?) } else { None };
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
        for &method in &methods {
            let one = bench::time_training(method, 1, &split, options)?;
            let batched = bench::time_training(method, s, &split, options)?;
            let spread = n.map(|n| bench::time_workers(method.name(), n, width(method), options)).transpose()?;
            let torch = match (&arrangements.python, n) {
                (Some(py), Some(n)) => Some((
                    bench::time_pytorch(py, &repo, method.name(), 1, threads, options)?,
                    bench::time_pytorch(py, &repo, method.name(), n, 1, options)?,
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
