//! Training batches: each model of a seed batch walks its own reshuffled epochs,
//! like `DataLoader(shuffle=True, drop_last=False)`: every epoch is a fresh
//! permutation of the training set, cut into batches, the last one partial.
//!
//! The permutations come from a ChaCha8 generator seeded with the model's seed, so
//! the same seed gives the same batch sequence on any machine and any device.
//! Each epoch's permutation goes to the device once; a batch is then a slice of
//! it, gathered on the device.

use super::Split;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

pub struct BatchSampler {
    rngs: Vec<ChaCha8Rng>,
    batch_size: i64,
    len: i64,
    /// `[S, N]` on the data's device: this epoch's order for each model.
    order: Tensor,
    position: i64,
}

impl BatchSampler {
    pub fn new(split: &Split, seeds: &[u64], batch_size: usize) -> Self {
        assert!(batch_size > 0 && !split.is_empty());
        let rngs = seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
        let mut sampler = BatchSampler {
            rngs,
            batch_size: batch_size as i64,
            len: split.len() as i64,
            order: Tensor::new(),
            position: 0,
        };
        sampler.new_epoch(split.images.device());
        sampler
    }

    fn new_epoch(&mut self, device: tch::Device) {
        let n = self.len as usize;
        let mut all = Vec::with_capacity(n * self.rngs.len());
        for rng in &mut self.rngs {
            let mut perm: Vec<i64> = (0..self.len).collect();
            perm.shuffle(rng);
            all.extend(perm);
        }
        self.order = Tensor::from_slice(&all).view([self.rngs.len() as i64, self.len]).to_device(device);
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
