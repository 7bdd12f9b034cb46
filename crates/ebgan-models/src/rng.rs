//! Per-member random streams on the host.
//!
//! A member's initial weights, noise, dropout masks and data order come from its own seed, so a
//! run gives the same result alone or in any cohort, and in any thread (libtorch's global
//! generator is shared by every thread of the process).

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Device, Kind, Tensor};

/// Independent streams derived from one run seed.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Init = 1,
    Noise = 2,
    Dropout = 3,
    Data = 4,
    Sample = 5,
    Labels = 6,
    /// Random crop positions (LSUN's augmented variant).
    Crop = 7,
    /// EBGAN-LN's generator weights (the ladder's own come from Init).
    GeneratorInit = 8,
    /// WGAN-GP's interpolation weights eps (one per sample).
    Interpolate = 9,
}

/// Stream `stream` of `seed` at position `index` (0 for a run's whole-run streams; a step or an
/// epoch for the streams the convolutional trainer restarts at each one, which makes them
/// functions of (seed, step) and so exactly resumable).
pub fn stream(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream((index << 8) | stream as u64);
    r
}

/// `shape` of N(0, 1) draws from `rng`, on `device`.
pub fn normal(rng: &mut ChaCha8Rng, shape: &[i64], device: Device) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    ebgan_core::upload(Tensor::from_slice(&v).view(shape), device)
}

/// `shape` of U[0, 1) draws from `rng`, on `device`.
pub fn uniform(rng: &mut ChaCha8Rng, shape: &[i64], device: Device) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    ebgan_core::upload(Tensor::from_slice(&v).view(shape), device)
}

/// One generator per member, all on the same stream.
pub struct MemberRng {
    rngs: Vec<ChaCha8Rng>,
    device: Device,
    /// Every draw since [`MemberRng::record`], in order (the parity harness hands them to the
    /// PyTorch reference).
    tape: Option<Vec<Tensor>>,
}

impl MemberRng {
    pub fn new(seeds: &[u64], stream: Stream, device: Device) -> Self {
        let rngs = seeds.iter().map(|&s| self::stream(s, stream, 0)).collect();
        MemberRng {
            rngs,
            device,
            tape: None,
        }
    }

    /// Keeps a copy of every draw from now on.
    pub fn record(&mut self) {
        self.tape = Some(vec![]);
    }

    /// The draws recorded since [`MemberRng::record`] or the last call.
    pub fn take_recorded(&mut self) -> Vec<Tensor> {
        self.tape.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn members(&self) -> i64 {
        self.rngs.len() as i64
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn member(&mut self, k: usize) -> &mut ChaCha8Rng {
        &mut self.rngs[k]
    }

    /// `[K, shape...]` of N(0, std^2) draws, member k from its own stream.
    pub fn normal(&mut self, shape: &[i64], std: f64) -> Tensor {
        let n: i64 = shape.iter().product();
        let mut v = Vec::with_capacity(self.rngs.len() * n as usize);
        for r in &mut self.rngs {
            v.extend((0..n).map(|_| r.sample::<f32, _>(StandardNormal) * std as f32));
        }
        self.stack(&v, shape, Kind::Float)
    }

    /// `[K, shape...]` of U[0, 1) draws, member k from its own stream.
    pub fn uniform(&mut self, shape: &[i64]) -> Tensor {
        let n: i64 = shape.iter().product();
        let mut v = Vec::with_capacity(self.rngs.len() * n as usize);
        for r in &mut self.rngs {
            v.extend((0..n).map(|_| r.random::<f32>()));
        }
        self.stack(&v, shape, Kind::Float)
    }

    /// Each member's position in its stream (ChaCha word counts), for checkpoints.
    pub fn positions(&self) -> Vec<u128> {
        self.rngs.iter().map(|r| r.get_word_pos()).collect()
    }

    /// Moves each member to a position of [`MemberRng::positions`]: the draws that follow are
    /// those that followed there.
    pub fn seek(&mut self, positions: &[u128]) {
        assert_eq!(positions.len(), self.rngs.len(), "one position per member");
        for (r, &p) in self.rngs.iter_mut().zip(positions) {
            r.set_word_pos(p);
        }
    }

    /// `[K, shape...]` of uniform bytes (dropout masks).
    pub fn bytes(&mut self, shape: &[i64]) -> Tensor {
        let n: i64 = shape.iter().product();
        let mut v = vec![0u8; self.rngs.len() * n as usize];
        for (r, chunk) in self.rngs.iter_mut().zip(v.chunks_mut(n as usize)) {
            r.fill_bytes(chunk);
        }
        self.stack(&v, shape, Kind::Uint8)
    }

    fn stack<T: tch::kind::Element>(&mut self, v: &[T], shape: &[i64], _kind: Kind) -> Tensor {
        let mut full = vec![self.rngs.len() as i64];
        full.extend_from_slice(shape);
        let t = ebgan_core::upload(Tensor::from_slice(v).view(full.as_slice()), self.device);
        if let Some(tape) = &mut self.tape {
            tape.push(t.copy());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_draws_do_not_depend_on_its_cohort() {
        let alone = MemberRng::new(&[7], Stream::Noise, Device::Cpu).normal(&[3, 2], 1.0);
        let mut cohort = MemberRng::new(&[1, 7, 7], Stream::Noise, Device::Cpu);
        let both = cohort.normal(&[3, 2], 1.0);
        assert!(both.get(1).equal(&alone.get(0)));
        assert!(both.get(2).equal(&alone.get(0)));
        assert!(!both.get(0).equal(&alone.get(0)));
    }

    #[test]
    fn step_streams_differ_and_index_0_is_the_run_stream() {
        let mut whole = MemberRng::new(&[7], Stream::Noise, Device::Cpu);
        let a = whole.normal(&[4], 1.0).get(0);
        let b = normal(&mut stream(7, Stream::Noise, 0), &[4], Device::Cpu);
        let c = normal(&mut stream(7, Stream::Noise, 1), &[4], Device::Cpu);
        assert!(a.equal(&b));
        assert!(!b.equal(&c));
    }

    #[test]
    fn a_stream_resumes_where_its_position_was_taken() {
        let mut a = MemberRng::new(&[3, 4], Stream::Dropout, Device::Cpu);
        let _ = a.normal(&[5], 1.0);
        let _ = a.bytes(&[7]); // not a whole number of words
        let at = a.positions();
        let (n, m) = (a.normal(&[6], 1.0), a.bytes(&[9]));
        let mut b = MemberRng::new(&[3, 4], Stream::Dropout, Device::Cpu);
        b.seek(&at);
        assert!(b.normal(&[6], 1.0).equal(&n) && b.bytes(&[9]).equal(&m));
    }

    #[test]
    fn streams_differ() {
        let a = MemberRng::new(&[7], Stream::Noise, Device::Cpu).normal(&[4], 1.0);
        let b = MemberRng::new(&[7], Stream::Init, Device::Cpu).normal(&[4], 1.0);
        assert!(!a.equal(&b));
    }
}
