//! Training batches: each model of a seed batch walks its own reshuffled epochs,
//! like `DataLoader(train, batch_size, shuffle=True)` (drop_last False, no workers):
//! every epoch is a fresh permutation of the training set, cut into batches, the
//! last one partial. Each epoch's permutation goes to the device once; a batch is
//! then a slice of it, gathered on the device.
//!
//! Where the permutations come from is the setting [`BatchOrder`]:
//!
//! - `dataloader` (the default): the very permutations a PyTorch script's
//!   `DataLoader` gives after `torch.manual_seed(seed); net = Net()`. What the script
//!   does with torch's global generator, in order: `Net()` draws its weights; then
//!   each time an iterator over a DataLoader is created it draws one int64 (its base
//!   seed, unused without workers) — the training loader at each epoch's start and
//!   the test loader at each evaluation — and on an epoch's first batch the
//!   `RandomSampler` draws one more int64, seeds a fresh generator with it and takes
//!   the epoch's order from its `randperm(n)`. The schedule of epochs and evaluations
//!   is known from the settings, so [`dataloader_epoch_seeds`] replays the global
//!   generator's draws in that order once, and each epoch's `randperm` comes from
//!   the generator reseeded with the sampler's seed (a fresh generator and the
//!   global one reseeded give the same permutation). `../shared/notes` checks the
//!   replay against DataLoader itself; `tests/against_pytorch.rs` against a script.
//! - `chacha8`: permutations from a ChaCha8 generator seeded with the model's seed
//!   (homeonorm's order before it followed PyTorch's; no script can replay it).

use super::Split;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Where each epoch's permutation comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BatchOrder {
    /// PyTorch's `DataLoader(shuffle=True)` after `torch.manual_seed(seed); Net()`.
    #[default]
    Dataloader,
    /// A ChaCha8 generator seeded with the seed.
    Chacha8,
}

/// What the script does with torch's generator besides shuffling: builds its net
/// (whose initialisation draws first), and evaluates (each test loader draws once).
/// And whether to give up replaying it (a stop was asked for).
#[derive(Clone, Copy)]
pub struct Schedule<'a> {
    /// Asked now and then while a long schedule is replayed: true ends the replay with [`Stopped`].
    pub stop_requested: &'a dyn Fn() -> bool,
    /// Draws from torch's global generator what building the net draws (the caller's
    /// model: the batch order knows only that it draws first).
    pub build_net: &'a dyn Fn(),
    pub iterations: usize,
    /// Evaluations at every multiple of this and at the last iteration.
    pub eval_every: usize,
}

/// The seed a `DataLoader(train, batch_size, shuffle=True)`'s sampler draws for each
/// epoch of a script that seeds torch with `seed`, builds its net, and trains for
/// `schedule` over `n` images (see the module's comment for the order of draws).
/// A long schedule takes seconds to replay: a stop asked for meanwhile ends it with
/// [`Stopped`] (the epochs drawn so far would not be the whole run's).
pub fn dataloader_epoch_seeds(seed: u64, n: usize, batch_size: usize, schedule: Schedule) -> Result<Vec<u64>, Stopped> {
    let batches_per_epoch = n.div_ceil(batch_size);
    crate::engine::torch_rng::seeded(seed, || {
        (schedule.build_net)();
        let draw = crate::engine::torch_rng::draw_int64;
        let (iterations, every) = (schedule.iterations, schedule.eval_every);
        let mut epoch_seeds = Vec::new();
        let mut iteration = 0;
        while iteration < iterations {
            if epoch_seeds.len() % 4096 == 0 && (schedule.stop_requested)() {
                return Err(Stopped);
            }
            let _training_iterator_base_seed = draw();
            epoch_seeds.push(draw() as u64);
            // This epoch's evaluations, each a test loader's draw: at every multiple of
            // `every` among its iterations, and at the last iteration of the run.
            let end = (iteration + batches_per_epoch).min(iterations);
            let evaluations = end / every - iteration / every + usize::from(end == iterations && end % every != 0);
            for _ in 0..evaluations {
                let _test_iterator_base_seed = draw();
            }
            iteration = end;
        }
        Ok(epoch_seeds)
    })
}

/// The schedule's replay was given up: a stop was asked for meanwhile.
#[derive(Debug, thiserror::Error)]
#[error("stopped while replaying the batch order's schedule")]
pub struct Stopped;

/// One model's source of epochs.
enum Epochs {
    Dataloader(std::vec::IntoIter<u64>),
    Chacha8(Box<ChaCha8Rng>),
}

impl Epochs {
    fn next_permutation(&mut self, n: i64) -> Vec<i64> {
        match self {
            Epochs::Dataloader(seeds) => {
                let seed = seeds.next().expect("the schedule's epochs are all drawn");
                let perm = crate::engine::torch_rng::seeded(seed, || Tensor::randperm(n, (Kind::Int64, Device::Cpu)));
                Vec::<i64>::try_from(perm).expect("an int64 permutation")
            }
            Epochs::Chacha8(rng) => {
                let mut perm: Vec<i64> = (0..n).collect();
                perm.shuffle(rng.as_mut());
                perm
            }
        }
    }
}

pub struct BatchSampler {
    epochs: Vec<Epochs>,
    batch_size: i64,
    len: i64,
    /// `[S, N]` on the data's device: this epoch's order for each model.
    order: Tensor,
    position: i64,
}

impl BatchSampler {
    /// Batches for models seeded with `seeds`, in `order`, for a run of `schedule`;
    /// [`Stopped`] when a stop is asked for while the schedule is replayed.
    pub fn new(
        split: &Split,
        seeds: &[u64],
        batch_size: usize,
        order: BatchOrder,
        schedule: Schedule,
    ) -> Result<Self, Stopped> {
        let epochs = seeds
            .iter()
            .map(|&seed| {
                Ok(match order {
                    BatchOrder::Dataloader => {
                        Epochs::Dataloader(dataloader_epoch_seeds(seed, split.len(), batch_size, schedule)?.into_iter())
                    }
                    BatchOrder::Chacha8 => Epochs::Chacha8(Box::new(ChaCha8Rng::seed_from_u64(seed))),
                })
            })
            .collect::<Result<Vec<_>, Stopped>>()?;
        Ok(Self::from_epochs(split, epochs, batch_size))
    }

    /// Batches in the ChaCha8 order, for as long as asked (tests and benchmarks).
    pub fn chacha8(split: &Split, seeds: &[u64], batch_size: usize) -> Self {
        let epochs = seeds.iter().map(|&seed| Epochs::Chacha8(Box::new(ChaCha8Rng::seed_from_u64(seed)))).collect();
        Self::from_epochs(split, epochs, batch_size)
    }

    fn from_epochs(split: &Split, epochs: Vec<Epochs>, batch_size: usize) -> Self {
        assert!(batch_size > 0 && !split.is_empty());
        let mut sampler = BatchSampler {
            epochs,
            batch_size: batch_size as i64,
            len: split.len() as i64,
            order: Tensor::new(),
            position: 0,
        };
        sampler.new_epoch(split.images.device());
        sampler
    }

    fn new_epoch(&mut self, device: Device) {
        let n = self.len;
        let all: Vec<i64> = self.epochs.iter_mut().flat_map(|e| e.next_permutation(n)).collect();
        self.order = Tensor::from_slice(&all).view([self.epochs.len() as i64, n]).to_device(device);
        self.position = 0;
    }

    /// The next batch's indices, `[S, b]` (b = the batch size, or less at an epoch's end).
    pub fn next_indices(&mut self) -> Tensor {
        if self.position >= self.len {
            self.new_epoch(self.order.device());
        }
        let b = self.batch_size.min(self.len - self.position);
        let idx = self.order.narrow(1, self.position, b);
        self.position += b;
        idx
    }

    /// Passes over the next `batches` batches without gathering them: where a run taken up
    /// from a checkpoint stands in its batch order (the epochs' permutations drawn as they
    /// were, so every later batch is the one the run would have had).
    pub fn skip(&mut self, batches: usize) {
        for _ in 0..batches {
            let _ = self.next_indices();
        }
    }

    /// The next batch: uint8 images `[S, b, 3, 32, 32]` and labels `[S, b]`.
    pub fn next_batch(&mut self, split: &Split) -> (Tensor, Tensor) {
        let idx = self.next_indices();
        let (s, b) = (idx.size()[0], idx.size()[1]);
        let flat = idx.reshape([-1]);
        let images = split.images.index_select(0, &flat).view([s, b, 3, 32, 32]);
        let labels = split.labels.index_select(0, &flat).view([s, b]);
        (images, labels)
    }
}
