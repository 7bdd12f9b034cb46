//! The ladder's data: MNIST on the device in [0, 1], the balanced labelled subset, the
//! labelled and unlabelled draws, and the test error of the clean path.

use super::{Ladder, PopulationStats, WIDTHS};
use crate::config::RunConfig;
use crate::data::mnist::{Mnist, PIXELS};
use ebgan_core::upload;
use ebgan_models::rng::{stream, Stream};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// `n` labelled training indices, n/10 per class, chosen by a seeded shuffle of the training set.
pub fn balanced_labels(labels: &[u8], n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut stream(seed, Stream::Labels, 0));
    let mut taken = [0usize; 10];
    let mut out = vec![];
    for i in order {
        let c = labels[i] as usize;
        if taken[c] < n / 10 {
            taken[c] += 1;
            out.push(i);
        }
    }
    out.sort_unstable();
    out
}

fn images(pixels: &[u8], device: Device) -> Tensor {
    let n = (pixels.len() / PIXELS) as i64;
    Tensor::from_slice(pixels)
        .view([n, PIXELS as i64])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0
}

/// Population statistics of the clean path over the training images (mean of batch means and of
/// batch variances, batches of 1,000).
fn population_stats(net: &Ladder, x: &Tensor) -> PopulationStats {
    tch::no_grad(|| {
        let n = x.size()[0];
        let layers = WIDTHS.len();
        let mut mean: Vec<Tensor> = (0..layers)
            .map(|_| Tensor::zeros([1], (Kind::Float, x.device())))
            .collect();
        let mut var: Vec<Tensor> = mean.iter().map(|t| t.zeros_like()).collect();
        let batches = (n / 1000).max(1);
        for b in 0..batches {
            let pass = net.encode(&x.narrow(0, b * 1000, 1000.min(n)), None, None);
            for l in 1..layers {
                mean[l] = &mean[l] + &pass.mean[l] / batches as f64;
                var[l] = &var[l] + pass.std[l].square() / batches as f64;
            }
        }
        PopulationStats {
            std: var.iter().map(|v| v.sqrt()).collect(),
            mean,
        }
    })
}

/// Error (%) `[1]` f64 on the device of the clean path on `x` with labels `y`, under population
/// statistics `stats`.
fn error_on(net: &Ladder, stats: &PopulationStats, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let pred = net.encode(x, None, Some(stats)).probs.argmax(-1, false);
        pred.ne_tensor(y).to_kind(Kind::Double).mean(None).view([1]) * 100.0
    })
}

/// Test error (%) on the 10,000 test images and, where some were held out, the validation
/// error: clean path, population statistics of the training images, argmax. `[1]` or `[2]` f64
/// on the device.
pub(super) fn errors(net: &Ladder, d: &LadderData) -> Tensor {
    let stats = population_stats(net, &d.train_x);
    let mut e = vec![error_on(net, &stats, &d.test_x, &d.test_y)];
    if let Some((x, y)) = &d.validation {
        e.push(error_on(net, &stats, x, y));
    }
    Tensor::cat(&e, 0)
}

/// MNIST on the device for the ladder: pixels in [0, 1], labels, and the labelled subset.
pub(super) struct LadderData {
    /// The training images (those not held out for validation).
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
    /// The last `validation` of the `train_images`: images and labels, never trained on.
    pub validation: Option<(Tensor, Tensor)>,
    pub labelled: Vec<usize>,
    pub images: usize,
}

impl LadderData {
    pub fn new(c: &RunConfig, mnist: &Mnist, device: Device) -> Self {
        let n = c.train_images.min(mnist.train_len());
        // Validation checks that this leaves at least a batch and the labelled count.
        let kept = n - c.validation.min(n);
        let labels = |l: &[u8]| Tensor::from_slice(l).to_kind(Kind::Int64).to_device(device);
        let px = &mnist.train_images;
        LadderData {
            train_x: images(&px[..kept * PIXELS], device),
            train_y: labels(&mnist.train_labels[..kept]),
            test_x: images(&mnist.test_images, device),
            test_y: labels(&mnist.test_labels),
            validation: (kept < n).then(|| {
                (
                    images(&px[kept * PIXELS..n * PIXELS], device),
                    labels(&mnist.train_labels[kept..n]),
                )
            }),
            labelled: balanced_labels(&mnist.train_labels[..kept], c.labels, c.seed),
            images: kept,
        }
    }
}

impl LadderData {
    /// A labelled batch (images, labels) and an unlabelled one, each of `b`.
    pub fn batch(
        &self,
        labelled: &mut Draws,
        unlabelled: &mut Draws,
        b: usize,
        rng: &mut ChaCha8Rng,
    ) -> (Tensor, Tensor, Tensor) {
        let device = self.train_x.device();
        let li = upload(Tensor::from_slice(&labelled.take(b, rng)), device);
        let ui = upload(Tensor::from_slice(&unlabelled.take(b, rng)), device);
        (
            self.train_x.index_select(0, &li),
            self.train_y.index_select(0, &li),
            self.train_x.index_select(0, &ui),
        )
    }
}

/// Batches of indices drawn without replacement from a pool, reshuffled each time it runs out.
pub(super) struct Draws {
    pool: Vec<usize>,
    pub order: Vec<usize>,
    pub pos: usize,
}

impl Draws {
    pub fn new(pool: Vec<usize>) -> Self {
        Draws {
            pool,
            order: vec![],
            pos: 0,
        }
    }

    pub fn take(&mut self, b: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
        (0..b)
            .map(|_| {
                if self.pos == self.order.len() {
                    self.order = self.pool.clone();
                    self.order.shuffle(rng);
                    self.pos = 0;
                }
                self.pos += 1;
                self.order[self.pos - 1] as i64
            })
            .collect()
    }
}

/// The labelled and unlabelled draws, and the stream that shuffles them.
pub(super) struct DataDraws {
    pub labelled: Draws,
    pub unlabelled: Draws,
    pub order: ChaCha8Rng,
}
