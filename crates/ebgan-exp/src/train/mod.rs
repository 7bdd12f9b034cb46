//! Trainers. One cohort = runs that share a network shape, trained as one member-batched model.

pub mod checkpoint;
pub mod conv;
pub mod ladder;
pub mod mlp;

use crate::config::{Model, RunConfig};

/// What must agree between runs for them to train as one cohort: the network shapes and the
/// step count. Everything else (lr, optimizers, dropout, margins, PT weight, seeds, init) may differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CohortKey {
    pub model: Model,
    pub network: crate::config::Network,
    pub steps: u64,
    pub n_layer_g: usize,
    pub size_g: i64,
    pub n_layer_d: usize,
    pub size_d: i64,
    pub z_dim: i64,
    pub batch_norm: bool,
    pub batch_size: i64,
    pub epochs: usize,
    pub train_images: usize,
    pub score_samples: usize,
    pub energy: ebgan_core::Energy,
}

impl CohortKey {
    /// Ladder and convolutional runs train alone.
    pub fn trains_alone(&self) -> bool {
        self.model.is_ladder() || self.network.is_conv()
    }

    pub fn of(c: &RunConfig) -> Self {
        CohortKey {
            model: c.model,
            network: c.network,
            steps: c.steps,
            n_layer_g: c.n_layer_g,
            size_g: c.size_g,
            n_layer_d: c.n_layer_d,
            size_d: c.size_d,
            z_dim: c.z_dim,
            batch_norm: c.batch_norm,
            batch_size: c.batch_size,
            epochs: c.epochs,
            train_images: c.train_images,
            score_samples: c.score_samples,
            energy: c.energy,
        }
    }
}
