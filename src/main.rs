//! The homeonorm command line. Everything it runs lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use homeonorm::data::{self, DatasetKind, Limit};
use homeonorm::{learner::Learner, model, norm, system};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "homeonorm", version = version_line(), about = "Normalization methods and homeostasis in LeNet5 (Shen, Wang & Navlakha 2021), on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Versions, devices and threads; with --model, a method's parameters.
    Info {
        /// Print the per-layer trainable parameter counts of LeNet5 with this method.
        #[arg(long, value_name = "METHOD")]
        model: Option<String>,
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
    /// Dataset files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(err) = run(Cli::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { model } => info(model.as_deref()),
        Command::Download { dataset, dir, base_url } => {
            let target = data::download::target_dir(dataset, &dir);
            let files = data::download::download(dataset, &target, base_url.as_deref())?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Data { command: DataCommand::Check { dataset, dir, limit } } => {
            let dir = dir.unwrap_or_else(|| dataset.default_dir(std::path::Path::new("data")));
            data_check(dataset, &dir, Limit { train: limit, test: limit })
        }
    }
}

fn info(model: Option<&str>) -> Result<()> {
    let method = model.map(norm::method_by_name).transpose()?;
    let sys = system::SystemInfo::detect();
    println!("homeonorm        {}", sys.homeonorm);
    println!("libtorch         {}", sys.libtorch);
    println!("CUDA available   {} ({} device(s), cuDNN {})", sys.cuda_available, sys.cuda_devices, sys.cudnn_available);
    println!("CPU threads      {}", sys.cpu_threads);
    match method {
        None => {
            println!("methods          {}", norm::method_names().join(", "));
        }
        Some(method) => {
            let learner = Learner::new(method, &[0], true, 1e-3, tch::Device::Cpu)?;
            println!("\nLeNet5 with {} — {}", method.name(), method.summary());
            let counts = model::parameter_counts(&learner.vs, 1);
            for (name, count) in &counts {
                println!("  {name:<24} {count:>8}");
            }
            println!("  {:<24} {:>8}", "total", counts.iter().map(|c| c.1).sum::<i64>());
        }
    }
    Ok(())
}

fn data_check(kind: DatasetKind, dir: &std::path::Path, limit: Limit) -> Result<()> {
    let ds = data::load(kind, dir, limit)?;
    println!("{kind} in {}", dir.display());
    for (path, size) in &ds.files {
        println!("  file {} ({size} bytes)", path.display());
    }
    println!("  {:<12} {:>8} {:>8}", "class", "train", "test");
    let (train, test) = (ds.train.class_counts(), ds.test.class_counts());
    for (k, name) in kind.class_names().iter().enumerate() {
        println!("  {:<12} {:>8} {:>8}", format!("{k} {name}"), train[k], test[k]);
    }
    println!("  {:<12} {:>8} {:>8}", "total", ds.train.len(), ds.test.len());
    Ok(())
}
