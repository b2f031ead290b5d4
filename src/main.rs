//! The homeonorm command line. Everything it runs lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use homeonorm::{learner::Learner, model, norm, system};

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
