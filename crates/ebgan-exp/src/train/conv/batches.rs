//! The batch of each step of a convolutional run: data order from (seed, epoch), crops from
//! (seed, step). When the image set is held in host memory (too large for the device), a
//! background thread gathers each step's batch one step ahead, so that the gather overlaps the
//! device's step; the batches are the same either way.

use crate::config::RunConfig;
use crate::data::image_set::ImageSet;
use ebgan_models::rng::{stream as stream_rng, Stream};
use rand::seq::SliceRandom;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::thread::Scope;
use tch::Tensor;

/// Gathers the batch of any step (uint8, where the images are).
pub(super) struct Batches {
    pub c: RunConfig,
    pub data: ImageSet,
    pub len: usize,
    pub per_epoch: u64,
    perm: (u64, Vec<i64>),
}

impl Batches {
    pub fn new(c: &RunConfig, data: &ImageSet, len: usize, per_epoch: u64) -> Self {
        Batches {
            c: c.clone(),
            data: data.shallow_clone(),
            len,
            per_epoch,
            perm: (u64::MAX, vec![]),
        }
    }

    fn gather(&mut self, step: u64) -> Tensor {
        let (c, b) = (&self.c, self.c.batch_size as usize);
        let epoch = step / self.per_epoch;
        if self.perm.0 != epoch {
            let mut p: Vec<i64> = (0..self.len as i64).collect();
            p.shuffle(&mut stream_rng(c.seed, Stream::Data, epoch));
            self.perm = (epoch, p);
        }
        let start = ((step % self.per_epoch) * b as u64) as usize;
        let idx: Vec<i64> = (0..b)
            .map(|i| self.perm.1[(start + i) % self.len])
            .collect();
        let rng = &mut stream_rng(c.seed, Stream::Crop, step);
        self.data.gather(&idx, c.image_size, rng)
    }
}

/// Where a run's batches come from.
pub(super) enum Source {
    /// Gathered when asked (the set is on the training device).
    Direct(Box<Batches>),
    /// Gathered one step ahead by a thread: `start` says from which step, once.
    Ahead {
        start: Option<Sender<u64>>,
        ready: Receiver<(u64, Tensor)>,
        data: ImageSet,
    },
}

impl Source {
    /// Gathers ahead in a thread of `scope` when the set is gathered on the host.
    pub fn new<'scope>(scope: &'scope Scope<'scope, '_>, mut batches: Batches) -> Source {
        if !batches.data.gathers_on_host() {
            return Source::Direct(Box::new(batches));
        }
        let data = batches.data.shallow_clone();
        let (start, from) = channel::<u64>();
        // One batch waiting, one being gathered.
        let (done, ready) = sync_channel::<(u64, Tensor)>(1);
        scope.spawn(move || {
            let Ok(mut step) = from.recv() else { return };
            // Ends when the run drops its receiver.
            loop {
                let x = batches.gather(step);
                if done.send((step, x)).is_err() {
                    return;
                }
                step += 1;
            }
        });
        Source::Ahead {
            start: Some(start),
            ready,
            data,
        }
    }

    /// The batch of `step` on the training device, `[B, C, S, S]` in [-1, 1]. Steps are asked
    /// for in order.
    pub fn at(&mut self, step: u64) -> Tensor {
        match self {
            Source::Direct(b) => {
                let x = b.gather(step);
                b.data.to_training(x)
            }
            Source::Ahead { start, ready, data } => {
                if let Some(start) = start.take() {
                    start
                        .send(step)
                        .expect("the gathering thread waits for its start");
                }
                let (at, x) = ready
                    .recv()
                    .expect("the gathering thread runs until dropped");
                assert_eq!(at, step, "batches are asked for in step order");
                data.to_training(x)
            }
        }
    }
}
