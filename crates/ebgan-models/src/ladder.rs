//! Ladder network for permutation-invariant MNIST (Rasmus et al. 2015), the discriminator of
//! EBGAN-LN (paper §4.2; ../docs/decisions.md "Ladder network").
//!
//! Encoder 784-1000-500-250-250-250-10: z = BN(h W) with batch statistics and no learned scale,
//! Gaussian noise on x and on every z in the corrupted path, h = ReLU(z + beta) and at the top
//! softmax(gamma * (z + beta)). The decoder runs top-down, u = BN(z_hat_above V), and a
//! per-unit combinator g(z_tilde, u) denoises each layer. One run at a time (no member dimension).

use crate::rng::MemberRng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Combinator {
    /// The NIPS paper's: mu = a1 sig(a2 u + a3) + a4 u + a5, v likewise with a6..a10,
    /// z_hat = (z_tilde - mu) v + mu.
    #[default]
    Gauss,
    /// The "vanilla" one of the older code (Pezeshki et al.): z_hat = b0 + w0z z + w0u u + w0zu z u
    /// + w_sigma sig(b1 + w1z z + w1u u + w1zu z u).
    Sig,
}

pub const WIDTHS: [i64; 7] = [784, 1000, 500, 250, 250, 250, 10];
const BN_EPS: f64 = 1e-10;

/// Normalises each column of `z` `[B, F]` with its batch mean and std; returns (z, mean, std).
fn batch_normalize(z: &Tensor) -> (Tensor, Tensor, Tensor) {
    let mean = z.mean_dim(0, true, None);
    let std = (z.var_dim(0, false, true) + BN_EPS).sqrt();
    ((z - &mean) / &std, mean, std)
}

struct CombinatorParams {
    a: Vec<Tensor>,
}

impl CombinatorParams {
    fn new(vs: &nn::Path, kind: Combinator, width: i64) -> Self {
        let (count, ones): (usize, &[usize]) = match kind {
            Combinator::Gauss => (10, &[1, 6]), // a2, a7
            Combinator::Sig => (9, &[1, 5, 8]), // w0z, w1z, w_sigma (see `apply`)
        };
        let a = (0..count)
            .map(|i| {
                vs.var(
                    &format!("a{}", i + 1),
                    &[width],
                    Init::Const(if ones.contains(&i) { 1.0 } else { 0.0 }),
                )
            })
            .collect();
        CombinatorParams { a }
    }

    fn apply(&self, kind: Combinator, z: &Tensor, u: &Tensor) -> Tensor {
        let a = &self.a;
        match kind {
            Combinator::Gauss => {
                let mu = &a[0] * (&a[1] * u + &a[2]).sigmoid() + &a[3] * u + &a[4];
                let v = &a[5] * (&a[6] * u + &a[7]).sigmoid() + &a[8] * u + &a[9];
                (z - &mu) * v + mu
            }
            Combinator::Sig => {
                // a: b0, w0z, w0u, w0zu, b1, w1z, w1u, w1zu, w_sigma
                let zu = z * u;
                let lin = &a[0] + &a[1] * z + &a[2] * u + &a[3] * &zu;
                let gate = (&a[4] + &a[5] * z + &a[6] * u + &a[7] * &zu).sigmoid();
                lin + &a[8] * gate
            }
        }
    }
}

/// Ladder network parameters.
pub struct Ladder {
    w: Vec<Tensor>,
    v: Vec<Tensor>,
    beta: Vec<Tensor>,
    gamma: Tensor,
    combinators: Vec<CombinatorParams>,
    pub combinator: Combinator,
    pub noise_std: f64,
}

/// One encoder pass over a batch.
pub struct EncoderPass {
    /// Normalised pre-activations z_l (l = 1..L) after noise (corrupted) or without (clean);
    /// z[0] is the (noisy) input.
    pub z: Vec<Tensor>,
    /// Batch mean and std of each layer's pre-activation (index l; entry 0 unused).
    pub mean: Vec<Tensor>,
    pub std: Vec<Tensor>,
    /// Class probabilities `[B, 10]` and log-probabilities.
    pub probs: Tensor,
    pub log_probs: Tensor,
}

/// Population statistics of the clean path, for evaluation.
pub struct PopulationStats {
    pub mean: Vec<Tensor>,
    pub std: Vec<Tensor>,
}

impl Ladder {
    /// Weights N(0, 1/fan_in) drawn from `rng` (the run's Init stream), so a run's start does
    /// not depend on libtorch's generator, which every thread of the process shares.
    pub fn new(
        vs: &nn::Path,
        combinator: Combinator,
        noise_std: f64,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Self {
        let mut randn = |name: String, shape: [i64; 2], std: f64| {
            let t = vs.var(&name, &shape, Init::Const(0.0));
            let _g = tch::no_grad_guard();
            t.shallow_clone()
                .copy_(&(crate::rng::normal(rng, &shape, vs.device()) * std));
            t
        };
        let n = WIDTHS.len() - 1;
        let mut w = vec![];
        let mut v = vec![];
        let mut beta = vec![];
        let mut combinators = vec![];
        for l in 0..n {
            let (i, o) = (WIDTHS[l], WIDTHS[l + 1]);
            let std = 1.0 / (i as f64).sqrt();
            w.push(randn(format!("w{}", l + 1), [i, o], std));
            v.push(randn(
                format!("v{}", l + 1),
                [o, i],
                1.0 / (o as f64).sqrt(),
            ));
            beta.push(vs.var(&format!("beta{}", l + 1), &[o], Init::Const(0.0)));
        }
        for (l, &width) in WIDTHS.iter().enumerate() {
            combinators.push(CombinatorParams::new(
                &(vs / format!("g{l}")),
                combinator,
                width,
            ));
        }
        let gamma = vs.var("gamma", &[WIDTHS[n]], Init::Const(1.0));
        Ladder {
            w,
            v,
            beta,
            gamma,
            combinators,
            combinator,
            noise_std,
        }
    }

    /// Encoder pass. `noise` gives the corrupted path; `stats` replaces batch statistics
    /// (evaluation with population statistics).
    pub fn encode(
        &self,
        x: &Tensor,
        mut noise: Option<&mut MemberRng>,
        stats: Option<&PopulationStats>,
    ) -> EncoderPass {
        let n = self.w.len();
        let mut add_noise = |t: Tensor| -> Tensor {
            match noise.as_deref_mut() {
                Some(rng) if self.noise_std > 0.0 => {
                    let size = t.size();
                    &t + rng
                        .normal(&size, self.noise_std)
                        .squeeze_dim(0)
                        .to_device(t.device())
                }
                _ => t,
            }
        };
        let x = add_noise(x.shallow_clone());
        let mut z = vec![x.shallow_clone()];
        let (mut means, mut stds) = (
            vec![Tensor::zeros([1], (Kind::Float, x.device()))],
            vec![Tensor::ones([1], (Kind::Float, x.device()))],
        );
        let mut h = x;
        let mut top = None;
        for l in 0..n {
            let pre = h.matmul(&self.w[l]);
            let (zl, mean, std) = match stats {
                Some(s) => (
                    (&pre - &s.mean[l + 1]) / &s.std[l + 1],
                    s.mean[l + 1].shallow_clone(),
                    s.std[l + 1].shallow_clone(),
                ),
                None => batch_normalize(&pre),
            };
            let zl = add_noise(zl);
            let shifted = &zl + &self.beta[l];
            if l + 1 == n {
                top = Some(&self.gamma * shifted);
            } else {
                h = shifted.relu();
            }
            z.push(zl);
            means.push(mean);
            stds.push(std);
        }
        let logits = top.unwrap();
        EncoderPass {
            z,
            mean: means,
            std: stds,
            probs: logits.softmax(-1, Kind::Float),
            log_probs: logits.log_softmax(-1, Kind::Float),
        }
    }

    /// Decoder: z_hat_l for l = 0..L from a corrupted pass (top-down).
    pub fn decode(&self, corrupted: &EncoderPass) -> Vec<Tensor> {
        let n = self.w.len();
        let mut z_hat: Vec<Option<Tensor>> = (0..=n).map(|_| None).collect();
        for l in (0..=n).rev() {
            let u = if l == n {
                corrupted.probs.shallow_clone()
            } else {
                z_hat[l + 1].as_ref().unwrap().matmul(&self.v[l])
            };
            let (u, _, _) = batch_normalize(&u);
            z_hat[l] = Some(self.combinators[l].apply(self.combinator, &corrupted.z[l], &u));
        }
        z_hat.into_iter().map(|t| t.unwrap()).collect()
    }

    /// Per-sample reconstruction cost of layer l `[B]`: ||target - z_hat_BN||^2 / width, where for
    /// l >= 1 the target is the clean z and z_hat is normalised by the clean batch statistics,
    /// and for l = 0 the target is the clean input.
    pub fn layer_cost(&self, l: usize, z_hat: &Tensor, clean: &EncoderPass, x: &Tensor) -> Tensor {
        let (target, rec) = if l == 0 {
            (x.shallow_clone(), z_hat.shallow_clone())
        } else {
            (
                clean.z[l].shallow_clone(),
                (z_hat - &clean.mean[l]) / &clean.std[l],
            )
        };
        (target - rec).square().sum_dim_intlist(1, false, None) / WIDTHS[l] as f64
    }

    /// The energy of EBGAN-LN: the bottom-layer reconstruction cost `[B]` of each sample through
    /// the corrupted encoder and the decoder.
    pub fn energy(&self, x: &Tensor, noise: &mut MemberRng) -> Tensor {
        let corrupted = self.encode(x, Some(noise), None);
        let z_hat = self.decode(&corrupted);
        (x - &z_hat[0]).square().sum_dim_intlist(1, false, None) / WIDTHS[0] as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;
    use tch::Device;

    fn ladder(kind: Combinator, noise: f64) -> (nn::VarStore, Ladder) {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut rng = crate::rng::stream(0, Stream::Init, 0);
        let l = Ladder::new(&vs.root(), kind, noise, &mut rng);
        (vs, l)
    }

    #[test]
    fn initial_weights_come_from_the_runs_stream_not_libtorchs_generator() {
        let weights = |torch_seed: i64, seed: u64| -> Vec<f32> {
            tch::manual_seed(torch_seed);
            let vs = nn::VarStore::new(Device::Cpu);
            let mut rng = crate::rng::stream(seed, Stream::Init, 0);
            let l = Ladder::new(&vs.root(), Combinator::Gauss, 0.3, &mut rng);
            Vec::<f32>::try_from(l.w[0].flatten(0, -1).narrow(0, 0, 50)).unwrap()
        };
        assert_eq!(weights(1, 5), weights(2, 5));
        assert_ne!(weights(1, 5), weights(1, 6));
        // N(0, 1/784) for the first layer: 50 draws of std 1/28 stay well inside 5 std.
        assert!(weights(1, 5).iter().all(|w| w.abs() < 5.0 / 28.0));
    }

    fn x() -> Tensor {
        Tensor::rand([8, 784], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn zero_noise_gives_identical_clean_and_corrupted_paths() {
        let (_vs, net) = ladder(Combinator::Gauss, 0.0);
        let x = x();
        let mut rng = MemberRng::new(&[1], Stream::Noise, Device::Cpu);
        let clean = net.encode(&x, None, None);
        let corrupted = net.encode(&x, Some(&mut rng), None);
        for (a, b) in clean.z.iter().zip(&corrupted.z) {
            assert!(a.equal(b));
        }
        let (_vs, noisy) = ladder(Combinator::Gauss, 0.3);
        let corrupted = noisy.encode(&x, Some(&mut rng), None);
        let clean = noisy.encode(&x, None, None);
        assert!(!clean.z[1].equal(&corrupted.z[1]));
        // Noise of std 0.3 on normalised units: the difference has about that std.
        let d = f64::try_from((&corrupted.z[0] - &x).std(true)).unwrap();
        assert!((d - 0.3).abs() < 0.02, "{d}");
    }

    #[test]
    fn clean_pre_activations_are_batch_normalised_and_probabilities_sum_to_one() {
        let (_vs, net) = ladder(Combinator::Gauss, 0.3);
        let clean = net.encode(&x(), None, None);
        let m = f64::try_from(clean.z[2].mean_dim(0, false, None).abs().max()).unwrap();
        let s = f64::try_from(clean.z[2].var_dim(0, false, false).mean(None)).unwrap();
        assert!(m < 1e-5 && (s - 1.0).abs() < 1e-3, "{m} {s}");
        let sums = clean.probs.sum_dim_intlist(1, false, None);
        assert!(f64::try_from((sums - 1.0).abs().max()).unwrap() < 1e-5);
        assert_eq!(clean.z.len(), 7);
    }

    #[test]
    fn gauss_combinator_by_hand() {
        // At init (a2 = a7 = 1, others 0): mu = 0 and v = 0, so z_hat = 0 whatever z and u.
        let (_vs, net) = ladder(Combinator::Gauss, 0.0);
        let z = Tensor::from_slice(&[1.5f32, -2.0]).view([1, 2]);
        let u = Tensor::from_slice(&[0.3f32, 4.0]).view([1, 2]);
        let g = CombinatorParams {
            a: net.combinators[0]
                .a
                .iter()
                .map(|t| t.narrow(0, 0, 2))
                .collect(),
        };
        assert_eq!(
            Vec::<f32>::try_from(g.apply(Combinator::Gauss, &z, &u).flatten(0, -1)).unwrap(),
            [0.0, 0.0]
        );
        // With a4 = 1 (mu = u), a9 = 1 (v = u): z_hat = (z - u) u + u.
        let mut a: Vec<Tensor> = (0..10)
            .map(|_| Tensor::zeros([2], (Kind::Float, Device::Cpu)))
            .collect();
        a[3] = Tensor::ones([2], (Kind::Float, Device::Cpu));
        a[8] = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let g = CombinatorParams { a };
        let got = Vec::<f32>::try_from(g.apply(Combinator::Gauss, &z, &u).flatten(0, -1)).unwrap();
        let want = [(1.5 - 0.3) * 0.3 + 0.3, (-2.0 - 4.0) * 4.0 + 4.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn sig_combinator_starts_as_z_plus_a_gate() {
        // Init: w0z = w1z = w_sigma = 1: z_hat = z + sigmoid(z).
        let (_vs, net) = ladder(Combinator::Sig, 0.0);
        let z = Tensor::from_slice(&[0.0f32, 2.0]).view([1, 2]);
        let u = Tensor::from_slice(&[5.0f32, -1.0]).view([1, 2]);
        let g = CombinatorParams {
            a: net.combinators[0]
                .a
                .iter()
                .map(|t| t.narrow(0, 0, 2))
                .collect(),
        };
        let got = Vec::<f32>::try_from(g.apply(Combinator::Sig, &z, &u).flatten(0, -1)).unwrap();
        let want = [0.5, 2.0 + 1.0 / (1.0 + (-2.0f32).exp())];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn decoder_reconstructs_every_layer_and_energy_is_per_sample() {
        let (_vs, net) = ladder(Combinator::Gauss, 0.3);
        let x = x();
        let mut rng = MemberRng::new(&[1], Stream::Noise, Device::Cpu);
        let corrupted = net.encode(&x, Some(&mut rng), None);
        let z_hat = net.decode(&corrupted);
        let widths: Vec<i64> = z_hat.iter().map(|t| t.size()[1]).collect();
        assert_eq!(widths, WIDTHS);
        let e = net.energy(&x, &mut rng);
        assert_eq!(e.size(), [8]);
        // At init z_hat_0 = 0, so the energy is the mean square of each input.
        let want = x.square().mean_dim(1, false, None);
        assert!(f64::try_from((e - want).abs().max()).unwrap() < 1e-5);
    }
}
