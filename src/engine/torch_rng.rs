//! torch's global CPU generator, the one `torch.manual_seed` seeds: a model's
//! initial weights and a DataLoader's shuffling both come from it, as in a PyTorch
//! script. Its users reseed it and draw inside [`seeded`], one at a time, so that
//! draws in other threads (tests run in parallel, say) cannot interleave.

use tch::{Device, Kind, Tensor};

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `torch.manual_seed(seed)`, then `draws()`, with no other thread drawing in between.
pub fn seeded<T>(seed: u64, draws: impl FnOnce() -> T) -> T {
    unseeded(|| {
        tch::manual_seed(seed as i64);
        draws()
    })
}

/// `draws()` from the generator as it stands, with no other thread drawing in between:
/// random tensors that must not land between another thread's seeding and its draws
/// (a test's), and that differ from call to call.
pub fn unseeded<T>(draws: impl FnOnce() -> T) -> T {
    let _only_us = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    draws()
}

/// `torch.empty((), dtype=torch.int64).random_().item()`: the draw a DataLoader
/// iterator makes for its base seed, and a `RandomSampler` for its generator's seed.
/// Call it inside [`seeded`].
pub fn draw_int64() -> i64 {
    Tensor::empty([], (Kind::Int64, Device::Cpu)).random_().int64_value(&[])
}
