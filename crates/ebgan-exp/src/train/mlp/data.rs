//! A cohort's training images on the device and each member's order through them.

use crate::data::mnist::PIXELS;
use ebgan_models::rng::Stream;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Training images on the device, as bytes; each member's batch is gathered by index.
pub struct DeviceImages {
    pub images: Tensor,
    pub len: usize,
}

impl DeviceImages {
    pub fn new(images: &[u8], len: usize, device: Device) -> Self {
        let images = Tensor::from_slice(&images[..len * PIXELS])
            .view([len as i64, PIXELS as i64])
            .to_device(device);
        DeviceImages { images, len }
    }

    /// The same images, sharing their storage.
    pub fn shallow_clone(&self) -> Self {
        DeviceImages {
            images: self.images.shallow_clone(),
            len: self.len,
        }
    }

    /// `[K, B, 784]` in [-1, 1] for flat indices `[K * B]`.
    pub fn batch(&self, idx: &Tensor, k: i64, b: i64) -> Tensor {
        self.images
            .index_select(0, idx)
            .to_kind(Kind::Float)
            .view([k, b, PIXELS as i64])
            * (2.0 / 255.0)
            - 1.0
    }
}

/// Each member's data order: a permutation of the training images per epoch, from the member's
/// own Data stream, so a run sees the same batches alone and inside any cohort.
pub(super) struct DataOrder {
    rngs: Vec<ChaCha8Rng>,
    images: usize,
}

impl DataOrder {
    pub fn new(seeds: &[u64], images: usize) -> Self {
        let rngs = seeds
            .iter()
            .map(|&s| {
                let mut r = ChaCha8Rng::seed_from_u64(s);
                r.set_stream(Stream::Data as u64);
                r
            })
            .collect();
        DataOrder { rngs, images }
    }

    pub fn positions(&self) -> Vec<u128> {
        self.rngs.iter().map(|r| r.get_word_pos()).collect()
    }

    pub fn seek(&mut self, positions: &[u128]) {
        for (r, &p) in self.rngs.iter_mut().zip(positions) {
            r.set_word_pos(p);
        }
    }

    pub fn next_epoch(&mut self) -> Vec<Vec<i64>> {
        let n = self.images as i64;
        self.rngs
            .iter_mut()
            .map(|r| {
                let mut p: Vec<i64> = (0..n).collect();
                p.shuffle(r);
                p
            })
            .collect()
    }
}
