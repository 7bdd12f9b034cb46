//! Cohorts: runs that share a network shape train together as one member-batched model.
//! [`CohortKey`] says which runs may share a cohort; `--cohort auto` how many: on CUDA, as many
//! as fit in 80% of the free device memory (`device::cuda_free_bytes`; a `--workers` worker's
//! share of it, from its parent), at most [`MAX_CUDA`];
//! on the CPU, 2 (docs/performance.md).

use crate::config::{Model, Network, RunConfig};
use ebgan_core::Energy;
use tch::Device;

/// What must agree between runs for them to train as one cohort: the network shapes and the
/// step count. Everything else (lr, optimizers, dropout, margins, PT weight, seeds, init) may differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CohortKey {
    pub model: Model,
    pub network: Network,
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
    pub energy: Energy,
    /// BEGAN's energy exponent and MAGAN's pretraining length shape every member's step.
    pub began_eta: u64,
    pub magan_pretrain_epochs: usize,
    /// WGAN-GP's critic steps per G step: members update G on the same steps.
    pub wgan_n_critic: u64,
}

impl CohortKey {
    /// Ladder and convolutional runs train alone.
    pub fn trains_alone(&self) -> bool {
        self.model.is_ladder() || self.network.is_conv()
    }

    /// The key of a run. Every [`RunConfig`] field is named here, either in the key or as free
    /// per member, so a new field does not compile until someone decides which it is.
    pub fn of(c: &RunConfig) -> Self {
        let RunConfig {
            // Shapes and lengths: shared by a cohort.
            model,
            network,
            steps,
            n_layer_g,
            size_g,
            n_layer_d,
            size_d,
            z_dim,
            batch_norm,
            batch_size,
            epochs,
            train_images,
            score_samples,
            energy,
            began_eta,
            magan_pretrain_epochs,
            wgan_n_critic,
            // Per member in an MLP cohort.
            dropout_d: _,
            dropout_p: _,
            optim_d: _,
            optim_g: _,
            lr: _,
            beta1: _,
            beta2: _,
            adam_eps: _,
            sgd_momentum: _,
            margin: _,
            margin_decay: _,
            margin_floor: _,
            margin_decay_start: _,
            margin_decay_end: _,
            pulling_away: _,
            began_gamma: _,
            began_lambda_k: _,
            magan_strict: _,
            wgan_lambda: _,
            init_std_g: _,
            init_std_d: _,
            seed: _,
            // Convolutional and ladder runs train alone (`trains_alone`), so their own fields
            // never meet in a cohort.
            image_size: _,
            g_base: _,
            ae_base: _,
            d_base: _,
            noise_planes: _,
            random_crop: _,
            sample_every: _,
            checkpoint_every: _,
            labels: _,
            lambda_0: _,
            combinator: _,
            ladder_noise: _,
            lr_decay_start: _,
            g_lr_decay: _,
            g_fresh_noise: _,
            g_lr: _,
            g_beta1: _,
            hinge_weight: _,
            validation: _,
        } = c.clone();
        CohortKey {
            model,
            network,
            steps,
            n_layer_g,
            size_g,
            n_layer_d,
            size_d,
            z_dim,
            batch_norm,
            batch_size,
            epochs,
            train_images,
            score_samples,
            energy,
            began_eta: began_eta.to_bits(),
            magan_pretrain_epochs,
            wgan_n_critic,
        }
    }
}

/// The largest cohort `auto` picks on CUDA: the largest the grid-throughput issue's H100 probe
/// measured (96 members per step, 43x the run-steps/s of one); not measured here.
pub const MAX_CUDA: usize = 96;
/// Device memory `auto` plans with when nvidia-smi cannot say what is free (a MIG instance, no
/// nvidia-smi): the smallest MIG slice of an 80 GB card, 10 GB, so a cohort fits wherever it
/// lands.
pub const UNKNOWN_CUDA_BYTES: u64 = 10 << 30;
const CPU: usize = 2;

/// `--cohort K` or `--cohort auto`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CohortSize {
    Fixed(usize),
    Auto,
}

impl CohortSize {
    /// Members per cohort of shape `key` (`free`: device memory free for this cohort).
    pub fn resolve(self, key: &CohortKey, device: Device, free: Option<u64>) -> usize {
        match self {
            CohortSize::Fixed(k) => k,
            CohortSize::Auto => members(key, device, free),
        }
    }
}

impl std::str::FromStr for CohortSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(CohortSize::Auto),
            n => n
                .parse()
                .ok()
                .filter(|&k: &usize| k >= 1)
                .map(CohortSize::Fixed)
                .ok_or_else(|| format!("--cohort {n:?}: expected auto or a number >= 1")),
        }
    }
}

/// Bytes one member of a cohort of shape `key` holds on the device (CUDA, packed optimizer
/// layout): 8 f32 per parameter at the update's peak (the parameter, two Adam moments, an SGD
/// momentum buffer in mixed cohorts, the gathered gradient, and the update's whole-buffer
/// temporaries: Adam's, SGD's and their per-member selection), and the activations autograd keeps (three
/// tensors per hidden unit: pre-activation, batch-normalised, activated) for G's pass and D's
/// three passes (real, fake for D's step, fake for G's step).
pub fn bytes_per_member(key: &CohortKey) -> u64 {
    // In u128: a run's sizes are validated (config::validate), but an estimate must never wrap.
    const PIXELS: u128 = 784;
    let (ng, sg, nd, sd, z) = (
        key.n_layer_g as u128,
        key.size_g as u128,
        key.n_layer_d as u128,
        key.size_d as u128,
        key.z_dim as u128,
    );
    let linear = |i: u128, o: u128| i * o + o;
    let g = linear(z, sg) + ng.saturating_sub(2) * linear(sg, sg) + linear(sg, PIXELS);
    let (d_out, passes) = (
        key.model.d_kind().outputs(PIXELS),
        key.model.d_kind().kept_passes(),
    );
    let d = linear(PIXELS, sd) + nd.saturating_sub(2) * linear(sd, sd) + linear(sd, d_out);
    let params = g + d;
    let b = key.batch_size as u128;
    let g_units = ng.saturating_sub(1) * sg + PIXELS;
    let d_units = nd.saturating_sub(1) * sd + d_out;
    let activations = b * 3 * (g_units + passes * d_units);
    u64::try_from(4 * (8 * params + activations)).unwrap_or(u64::MAX)
}

/// Members per cohort for `--cohort auto` given the free device memory (None: unknown).
pub fn members(key: &CohortKey, device: Device, free: Option<u64>) -> usize {
    match (device, free) {
        (Device::Cpu, _) => CPU,
        (_, None) => members(key, device, Some(UNKNOWN_CUDA_BYTES)),
        (_, Some(free)) => {
            ((free as f64 * 0.8) as u64 / bytes_per_member(key)).clamp(1, MAX_CUDA as u64) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(model: Model, shape: [i64; 4]) -> CohortKey {
        CohortKey::of(&crate::bench::table1_config(shape, model))
    }

    #[test]
    fn bytes_per_member_by_hand() {
        // EBGAN 2/400/2/128: G 100*400+400 + 400*784+784 = 354,784 parameters; D 784*128+128 +
        // 128*784+784 = 201,616. Activations: 64 * 3 * ((400 + 784) + 3 * (128 + 784)) = 752,640.
        let k = key(Model::Ebgan, [2, 400, 2, 128]);
        assert_eq!(
            bytes_per_member(&k),
            4 * (8 * (354_784 + 201_616) + 752_640)
        );
        // GAN: D ends in one logit: 784*128+128 + 128+1 = 100,609; activations 64*3*(1184 + 3*129).
        let k = key(Model::Gan, [2, 400, 2, 128]);
        assert_eq!(
            bytes_per_member(&k),
            4 * (8 * (354_784 + 100_609) + 64 * 3 * (1184 + 3 * 129))
        );
    }

    #[test]
    fn members_from_free_memory() {
        let k = key(Model::Ebgan, [5, 3200, 5, 1024]);
        let per = bytes_per_member(&k);
        assert_eq!(members(&k, Device::Cuda(0), Some(per * 10)), 8); // 80% of 10 members
        assert_eq!(members(&k, Device::Cuda(0), Some(per / 2)), 1);
        assert_eq!(members(&k, Device::Cuda(0), Some(u64::MAX / 2)), MAX_CUDA);
        // Unknown free memory (a MIG instance): planned as a 10 GB slice, not a whole card.
        assert_eq!(
            members(&k, Device::Cuda(0), None),
            members(&k, Device::Cuda(0), Some(UNKNOWN_CUDA_BYTES))
        );
        assert_eq!(members(&k, Device::Cpu, Some(per * 10)), 2);
    }

    #[test]
    fn cohort_flag() {
        assert_eq!("auto".parse::<CohortSize>(), Ok(CohortSize::Auto));
        assert_eq!("4".parse::<CohortSize>(), Ok(CohortSize::Fixed(4)));
        assert!("0".parse::<CohortSize>().unwrap_err().contains("--cohort"));
        // A fixed size holds whatever the memory; auto follows it.
        let k = key(Model::Gan, [2, 400, 2, 128]);
        assert_eq!(
            CohortSize::Fixed(4).resolve(&k, Device::Cuda(0), Some(0)),
            4
        );
        assert_eq!(CohortSize::Auto.resolve(&k, Device::Cuda(0), Some(0)), 1);
        assert_eq!(CohortSize::Auto.resolve(&k, Device::Cpu, None), 2);
    }
}
