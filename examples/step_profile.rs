//! Where one training step's time goes, on one thread: the batch (sampling and pixel
//! standardization), the forward pass, the loss and backward pass, Adam, and an
//! evaluation of 1,000 test images, for one model and for 10 seeds batched; and the
//! tensor operations Adam launches per step (one flat buffer), beside the nine per
//! parameter tensor that PyTorch's single-tensor loop launches.
//!
//!     scripts/with-libtorch.sh cargo run --release --example step_profile [METHOD...]
use homeonorm::engine::data::batches::BatchSampler;
use homeonorm::engine::data::PixelStandardization;
use homeonorm::engine::learner::{per_model_loss, Learner};
use homeonorm::engine::model::shared_input;
use homeonorm::engine::norm::{method_by_name, EvalStats, Pass};
use homeonorm::engine::optim::{Adam, UPDATE_OPERATIONS};
use homeonorm::runs::bench::synthetic_split;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

const STEPS: u32 = 60;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0 / f64::from(STEPS)
}

fn main() {
    tch::set_num_threads(1);
    let split = synthetic_split(Device::Cpu);
    let normalization = PixelStandardization::default();
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = ["vanilla", "batch-norm", "synaptic-scaling"].map(String::from).to_vec();
    }
    println!("one thread, batch 32, ms per step (mean of {STEPS}); eval: 1,000 test images, every model");
    println!(
        "{:<20} {:>6} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>10} {:>16}",
        "method", "seeds", "batch", "forward", "backward", "adam", "rules", "total", "eval 1000", "adam ops (loop)"
    );
    for name in &names {
        let method = method_by_name(name).expect("a method name");
        for seeds in [1u64, 10] {
            let seed_list: Vec<u64> = (0..seeds).collect();
            let learner = Learner::new(method, &seed_list, true, 0.003, Device::Cpu).unwrap();
            let mut adam = Adam::new(learner.vs.trainable_variables(), vec![0.003; seeds as usize]);
            let mut sampler = BatchSampler::chacha8(&split, &seed_list, 32);
            let mut spent = [Duration::ZERO; 5];
            for step in 0..STEPS + 5 {
                let mut clock = Instant::now();
                let mut lap = |k: usize, spent: &mut [Duration; 5]| {
                    if step >= 5 {
                        spent[k] += clock.elapsed();
                    }
                    clock = Instant::now();
                };
                let (images, labels) = sampler.next_batch(&split);
                let x = normalization.apply(&images);
                lap(0, &mut spent);
                let forward = learner.model.forward(&x, Pass::Train);
                lap(1, &mut spent);
                let losses = per_model_loss(&forward.logits, &labels);
                let grads = Tensor::run_backward(&[losses.sum(None::<Kind>)], adam.params(), false, false);
                lap(2, &mut spent);
                adam.step(&grads);
                lap(3, &mut spent);
                learner.model.after_step(&forward);
                lap(4, &mut spent);
            }
            let test = normalization.apply(&split.images.narrow(0, 0, 1000));
            let clock = Instant::now();
            tch::no_grad(|| learner.model.forward(&shared_input(&test, seeds as i64), Pass::Eval(EvalStats::Batch)));
            let eval = clock.elapsed().as_secs_f64() * 1000.0;
            let total: Duration = spent.iter().sum();
            println!(
                "{:<20} {:>6} {:>8.2} {:>8.2} {:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>10.1} {:>16}",
                name,
                seeds,
                ms(spent[0]),
                ms(spent[1]),
                ms(spent[2]),
                ms(spent[3]),
                ms(spent[4]),
                ms(total),
                eval,
                format!("{} ({})", adam.operations_per_step(), UPDATE_OPERATIONS * adam.params().len())
            );
        }
    }
}
