//! Per-member random streams.
//!
//! A member's initial weights, noise, dropout masks and data order come from its own seed, so a
//! run gives the same result alone or in any cohort, and in any thread (libtorch's global
//! generator is shared by every thread of the process). What a training step draws comes from
//! [`MemberRng`], counter-based streams on the run's device; one-off draws on the host (data
//! orders, sample latents of the parity harness) from ChaCha streams ([`stream`]).

use rand::{Rng, SeedableRng};
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
    /// EBGAN-LN's corruption noise on G's samples (D's hinge pass and G's step), apart from the
    /// real images' (Dropout): at m = 0 an EBGAN-LN run then trains LN's ladder, bit for bit.
    FakeCorruption = 10,
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

/// The generator [`MemberRng`] draws from (checkpoints name it: positions of another generator
/// mean nothing to this one).
pub const GENERATOR: &str = "philox4x32-10";

/// Per-member counter-based streams on the run's device: Philox4x32-10 keyed by the member's
/// seed, counting blocks of four 32-bit words from counter (position, stream, index). A draw is a
/// function of (seed, stream, index, position) alone, so a member draws the same alone or in any
/// cohort, the same integer words on every device, and resumes exactly from its position.
///
/// On CUDA the words come from tensor ops on the device (nothing is generated on the host or
/// uploaded); on the CPU, the device is the host, and a plain loop computes the same words
/// (tested equal) faster than int64 tensor ops can.
pub struct MemberRng {
    seeds: Vec<u64>,
    /// `[K, 2]` int64 key words on the device (the tensor path's).
    keys: Tensor,
    stream: Stream,
    /// The fourth counter word: 0 for whole-run streams, a step for per-step ones.
    index: u32,
    /// Blocks drawn so far (the first two counter words).
    position: u64,
    device: Device,
    /// Every draw since [`MemberRng::record`], in order (the parity harness hands them to the
    /// PyTorch reference).
    tape: Option<Vec<Tensor>>,
    /// The keys of the last subset of members that drew (dropout's), kept on the device.
    subset: Option<(Vec<usize>, Tensor)>,
    /// Draw with tensor ops on the CPU too (tests compare the two paths).
    via_tensors: bool,
    /// The tensor path's words evaluated ahead of the position.
    window: Option<Window>,
    /// Blocks per member the next window evaluates at least (doubling up to [`window_words`]).
    window_blocks: i64,
    /// The window's most words, when not the device's (`ebgan bench` counts a GPU's on the CPU).
    window_cap: Option<i64>,
}

/// Words of the tensor path evaluated ahead, `[M, blocks, 4]` for the members that draw, from
/// block `start` of the current sub-stream. A stream's draws take consecutive blocks, so one
/// Philox evaluation serves the draws of many steps, each the same words it would have evaluated
/// alone (a word is a function of its counter); `seek` and `at` drop it, and the next draw evaluates
/// from there, so a resume is exact by construction.
struct Window {
    start: u64,
    /// The members whose words these are (rows in this order).
    members: Vec<usize>,
    words: Tensor,
}

/// The most int64 words a window holds over its members: 32 MiB on a GPU, where each Philox
/// evaluation is hundreds of kernel launches; 512 KiB on the CPU, where a window past its caches
/// costs more than the ops it saves (the CPU trains on the host loop anyway).
pub fn window_words(device: Device) -> i64 {
    match device {
        Device::Cpu => 1 << 16,
        _ => 1 << 22,
    }
}

/// What a draw turns its words into.
#[derive(Clone, Copy)]
enum Words {
    /// Four uniforms in [0, 1) per block: a word's top 24 bits times 2^-24.
    Uniform,
    /// Sixteen bytes per block, a word's low byte first.
    Bytes,
}

impl Words {
    fn per_block(self) -> i64 {
        match self {
            Words::Uniform => 4,
            Words::Bytes => 16,
        }
    }
}

impl MemberRng {
    pub fn new(seeds: &[u64], stream: Stream, device: Device) -> Self {
        let words: Vec<i64> = seeds
            .iter()
            .flat_map(|&s| [(s & 0xFFFF_FFFF) as i64, (s >> 32) as i64])
            .collect();
        let keys = if device == Device::Cpu {
            Tensor::from_slice(&words)
        } else {
            ebgan_core::upload(Tensor::from_slice(&words), device)
        };
        MemberRng {
            seeds: seeds.to_vec(),
            keys: keys.view([-1, 2]),
            stream,
            index: 0,
            position: 0,
            device,
            tape: None,
            subset: None,
            via_tensors: false,
            window: None,
            window_blocks: 0,
            window_cap: None,
        }
    }

    /// Windows of at most `words` int64 words, whatever the device (e.g. a GPU's on the CPU).
    pub fn with_window_words(mut self, words: i64) -> Self {
        self.window_cap = Some(words);
        self
    }

    /// Draws with the tensor ops on the CPU too (what a GPU runs; tests and `ebgan bench`).
    pub fn on_tensor_path(mut self) -> Self {
        self.via_tensors = true;
        self
    }

    /// Moves to the start of sub-stream `index` (a step's draws, so that they are a function of
    /// the step alone).
    pub fn at(&mut self, index: u64) -> &mut Self {
        self.index = u32::try_from(index).expect("a stream index below 2^32");
        self.position = 0;
        (self.window, self.window_blocks) = (None, 0);
        self
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
        self.seeds.len() as i64
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// `[K, shape...]` of N(0, std^2) draws, member k from its own stream (Box-Muller on pairs
    /// of uniforms; the first of each pair moved to (0, 1] for its logarithm).
    pub fn normal(&mut self, shape: &[i64], std: f64) -> Tensor {
        let n: i64 = shape.iter().product();
        let u = self.draw(Words::Uniform, (n + 1) / 2 * 2, None);
        let u = u.reshape([self.members(), -1, 2]);
        let radius = ((u.select(2, 0) + 1.0 / 16_777_216.0).log() * -2.0).sqrt();
        let angle = u.select(2, 1) * std::f64::consts::TAU;
        let z = Tensor::stack(&[&radius * angle.cos(), radius * angle.sin()], 2);
        let z = z.reshape([self.members(), -1]).narrow(1, 0, n) * std;
        self.finish(z, shape)
    }

    /// `[K, shape...]` of U[0, 1) draws, member k from its own stream.
    pub fn uniform(&mut self, shape: &[i64]) -> Tensor {
        let n: i64 = shape.iter().product();
        let u = self.draw(Words::Uniform, n, None);
        self.finish(u, shape)
    }

    /// `[M, shape...]` of uniform bytes (dropout masks) for the M members `members` (indices
    /// into the cohort; None: all). The position moves as if every member drew.
    pub fn bytes(&mut self, shape: &[i64], members: Option<&[usize]>) -> Tensor {
        let n: i64 = shape.iter().product();
        let b = self.draw(Words::Bytes, n, members);
        self.finish(b, shape)
    }

    /// Each member's position in its stream (blocks drawn; the same for every member), for
    /// checkpoints.
    pub fn positions(&self) -> Vec<u128> {
        vec![self.position as u128; self.seeds.len()]
    }

    /// Moves to a position of [`MemberRng::positions`]: the draws that follow are those that
    /// followed there.
    pub fn seek(&mut self, positions: &[u128]) {
        assert_eq!(positions.len(), self.seeds.len(), "one position per member");
        self.position = positions.first().map_or(0, |&p| p as u64);
        self.window = None;
    }

    /// `[M, n]` values of `words` for members `members` (None: all), from the current position,
    /// which then moves past them.
    fn draw(&mut self, words: Words, n: i64, members: Option<&[usize]>) -> Tensor {
        let m = members.map_or(self.seeds.len(), <[usize]>::len) as i64;
        if n == 0 || m == 0 {
            let kind = match words {
                Words::Uniform => Kind::Float,
                Words::Bytes => Kind::Uint8,
            };
            return Tensor::zeros([m, n], (kind, self.device));
        }
        let blocks = (n + words.per_block() - 1) / words.per_block();
        let start = self.position;
        self.position += blocks as u64;
        let all: Vec<usize>;
        let members = match members {
            Some(m) => m,
            None => {
                all = (0..self.seeds.len()).collect();
                &all
            }
        };
        let out = if self.device == Device::Cpu && !self.via_tensors {
            self.draw_on_host(words, blocks, start, members)
        } else {
            self.draw_with_tensors(words, blocks, start, members)
        };
        out.narrow(1, 0, n)
    }

    /// `[M, 2]` keys of `members` on the device (a subset's uploaded once).
    fn keys_of(&mut self, members: &[usize]) -> Tensor {
        if members.iter().copied().eq(0..self.seeds.len()) {
            return self.keys.shallow_clone();
        }
        if self.subset.as_ref().is_none_or(|(m, _)| m != members) {
            let idx: Vec<i64> = members.iter().map(|&k| k as i64).collect();
            let idx = ebgan_core::upload(Tensor::from_slice(&idx), self.device);
            self.subset = Some((members.to_vec(), self.keys.index_select(0, &idx)));
        }
        self.subset.as_ref().expect("just set").1.shallow_clone()
    }

    fn counter(&self, start: u64, b: u64) -> [u32; 4] {
        let p = start + b;
        [p as u32, (p >> 32) as u32, self.stream as u32, self.index]
    }

    fn draw_on_host(&self, words: Words, blocks: i64, start: u64, members: &[usize]) -> Tensor {
        let (m, per) = (members.len() as i64, blocks * words.per_block());
        let mut w = vec![[0u32; 4]; members.len() * blocks as usize];
        for (&k, out) in members.iter().zip(w.chunks_mut(blocks as usize)) {
            let key = [self.seeds[k] as u32, (self.seeds[k] >> 32) as u32];
            ebgan_core::philox::fill(start, [self.stream as u32, self.index], key, out);
        }
        let w = w.as_flattened();
        match words {
            Words::Uniform => {
                let v: Vec<f32> = w
                    .iter()
                    .map(|&w| (w >> 8) as f32 * (1.0 / 16_777_216.0))
                    .collect();
                Tensor::from_slice(&v).view([m, per])
            }
            Words::Bytes => {
                let mut v = vec![0u8; w.len() * 4];
                for (b, w) in v.chunks_exact_mut(4).zip(w) {
                    b.copy_from_slice(&w.to_le_bytes());
                }
                Tensor::from_slice(&v).view([m, per])
            }
        }
    }

    fn draw_with_tensors(
        &mut self,
        words: Words,
        blocks: i64,
        start: u64,
        members: &[usize],
    ) -> Tensor {
        let w = self.ahead(start, blocks, members);
        let m = members.len() as i64;
        match words {
            Words::Uniform => ebgan_core::philox::uniform(&w).view([m, -1]),
            Words::Bytes => {
                let shifts = Tensor::arange_start_step(0, 32, 8, (Kind::Int64, self.device));
                w.unsqueeze(-1)
                    .bitwise_right_shift(&shifts)
                    .bitwise_and(0xFF)
                    .to_kind(Kind::Uint8)
                    .view([m, -1])
            }
        }
    }

    /// `[M, blocks, 4]` words of `members` from block `start`: a slice of the window, evaluated
    /// anew (for these members, twice the last window's length within the device's
    /// [`window_words`]) when the blocks run past it or other members draw.
    fn ahead(&mut self, start: u64, blocks: i64, members: &[usize]) -> Tensor {
        let fits = |w: &Window| {
            w.members == members
                && start >= w.start
                && start + blocks as u64 <= w.start + w.words.size()[1] as u64
        };
        if !self.window.as_ref().is_some_and(fits) {
            let cap = self.window_cap.unwrap_or_else(|| window_words(self.device));
            let most = (cap / (4 * members.len() as i64)).max(1);
            self.window_blocks = (self.window_blocks * 2).min(most).max(blocks);
            let keys = self.keys_of(members);
            let words = self.evaluate(start, self.window_blocks, &keys);
            let members = members.to_vec();
            self.window = Some(Window {
                start,
                members,
                words,
            });
        }
        let w = self.window.as_ref().expect("just set");
        w.words.narrow(1, (start - w.start) as i64, blocks)
    }

    /// Philox of blocks `start..start + blocks` of the current sub-stream under `keys` `[M, 2]`:
    /// `[M, blocks, 4]` words.
    fn evaluate(&self, start: u64, blocks: i64, keys: &Tensor) -> Tensor {
        let p = Tensor::arange(blocks, (Kind::Int64, self.device)) + start as i64;
        let c = self.counter(0, 0);
        let ctr = Tensor::stack(
            &[
                p.bitwise_and(0xFFFF_FFFF),
                p.bitwise_right_shift_tensor_scalar(32),
                p.zeros_like() + c[2] as i64,
                p.zeros_like() + c[3] as i64,
            ],
            -1,
        );
        ebgan_core::philox::philox4x32_10(&ctr.unsqueeze(0), &keys.unsqueeze(1))
    }

    /// `[M, n]` -> `[M, shape...]`, recorded if recording.
    fn finish(&mut self, t: Tensor, shape: &[i64]) -> Tensor {
        let mut full = vec![t.size()[0]];
        full.extend_from_slice(shape);
        let t = t.reshape(full.as_slice());
        if let Some(tape) = &mut self.tape {
            tape.push(t.copy());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(seeds: &[u64], stream: Stream) -> MemberRng {
        MemberRng::new(seeds, stream, Device::Cpu)
    }

    #[test]
    fn a_members_draws_do_not_depend_on_its_cohort() {
        let alone = cpu(&[7], Stream::Noise).normal(&[3, 2], 1.0);
        let mut cohort = cpu(&[1, 7, 7], Stream::Noise);
        let both = cohort.normal(&[3, 2], 1.0);
        assert!(both.get(1).equal(&alone.get(0)));
        assert!(both.get(2).equal(&alone.get(0)));
        assert!(!both.get(0).equal(&alone.get(0)));
    }

    #[test]
    fn the_words_are_philox_of_position_stream_index_under_the_seed() {
        // Seed 2^32 + 5: key (5, 1). The third block of sub-stream 9 of Dropout (3).
        let seed = (1u64 << 32) + 5;
        let mut r = cpu(&[seed], Stream::Dropout);
        let _ = r.at(9).bytes(&[2 * 16], None);
        let got = Vec::<u8>::try_from(r.bytes(&[16], None).flatten(0, -1)).unwrap();
        let words = ebgan_core::philox::block([2, 0, 3, 9], [5, 1]);
        let want: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(got, want);
        let u = Vec::<f32>::try_from(cpu(&[seed], Stream::Noise).uniform(&[4]).flatten(0, -1));
        let w = ebgan_core::philox::block([0, 0, 2, 0], [5, 1]);
        assert_eq!(u.unwrap(), w.map(|w| (w >> 8) as f32 / 16_777_216.0));
    }

    #[test]
    fn normals_are_box_muller_of_the_uniforms() {
        let u = Vec::<f32>::try_from(cpu(&[3], Stream::Noise).uniform(&[6]).flatten(0, -1));
        let z = Vec::<f32>::try_from(cpu(&[3], Stream::Noise).normal(&[5], 2.0).flatten(0, -1));
        let (u, z) = (u.unwrap(), z.unwrap());
        for i in 0..5 {
            let (u1, u2) = (
                u[i / 2 * 2] as f64 + 2f64.powi(-24),
                u[i / 2 * 2 + 1] as f64,
            );
            let r = (-2.0 * u1.ln()).sqrt();
            let a = std::f64::consts::TAU * u2;
            let want = 2.0 * if i % 2 == 0 { r * a.cos() } else { r * a.sin() };
            assert!(
                (z[i] as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                "{i}"
            );
        }
        let many = cpu(&[11], Stream::Noise).normal(&[100_000], 1.0);
        let (mean, std) = (
            f64::try_from(many.mean(None)),
            f64::try_from(many.std(true)),
        );
        assert!(mean.unwrap().abs() < 0.01 && (std.unwrap() - 1.0).abs() < 0.01);
    }

    #[test]
    fn the_host_loop_and_the_tensor_ops_draw_the_same_bits() {
        let draw = |via_tensors: bool| {
            let mut r = cpu(&[0, u64::MAX, 1 << 40], Stream::Interpolate);
            if via_tensors {
                r = r.on_tensor_path();
            }
            r.at(3);
            [
                r.normal(&[5, 3], 0.5),
                r.uniform(&[7]),
                r.bytes(&[2, 9], None).to_kind(Kind::Float),
                r.bytes(&[33], Some(&[0, 2])).to_kind(Kind::Float),
                // Every member, out of order: the rows follow the list on both paths.
                r.bytes(&[5], Some(&[2, 0, 1])).to_kind(Kind::Float),
                r.normal(&[0], 1.0),
                r.bytes(&[4], Some(&[])).to_kind(Kind::Float),
            ]
        };
        for (host, device) in draw(false).iter().zip(draw(true)) {
            assert_eq!(host.size(), device.size());
            assert!(host.equal(&device));
        }
    }

    #[test]
    fn windows_evaluated_ahead_give_each_draw_its_words_and_a_resume_inside_one_is_exact() {
        let seeds = [5, u64::MAX, 1 << 33];
        // One subset throughout (a window is evaluated for the members that draw).
        let draw = |r: &mut MemberRng, i: usize| match i % 2 {
            0 => r.bytes(&[10, 3], Some(&[2, 0])),
            _ => r.bytes(&[37, 13], Some(&[2, 0])),
        };
        let mut host = cpu(&seeds, Stream::Dropout);
        let mut ahead = cpu(&seeds, Stream::Dropout).on_tensor_path();
        let (mut want, mut got, mut at) = (vec![], vec![], vec![]);
        for i in 0..8 {
            if i == 3 {
                at = ahead.positions();
            }
            want.push(draw(&mut host, i));
            got.push(draw(&mut ahead, i));
            // Draw 3 is served by the window draw 2 evaluated (it spans the resume point).
            if i == 3 {
                let w = ahead.window.as_ref().unwrap();
                assert!(w.start < at[0] as u64, "draw 3 started a window of its own");
            }
        }
        for (i, (h, t)) in want.iter().zip(&got).enumerate() {
            assert!(h.equal(t), "draw {i}");
        }
        let mut resumed = cpu(&seeds, Stream::Dropout).on_tensor_path();
        resumed.seek(&at);
        for (i, w) in want.iter().enumerate().skip(3) {
            assert!(draw(&mut resumed, i).equal(w), "draw {i} after the resume");
        }
    }

    #[test]
    fn a_subset_draws_its_members_rows_and_moves_the_position_as_all_do() {
        let mut all = cpu(&[4, 5, 6], Stream::Dropout);
        let mut some = cpu(&[4, 5, 6], Stream::Dropout);
        for _ in 0..2 {
            let full = all.bytes(&[40], None);
            let part = some.bytes(&[40], Some(&[2, 0]));
            assert!(part.get(0).equal(&full.get(2)) && part.get(1).equal(&full.get(0)));
        }
        assert_eq!(all.positions(), some.positions());
    }

    #[test]
    fn sub_streams_differ_and_index_0_is_the_run_stream() {
        let a = cpu(&[7], Stream::Noise).normal(&[4], 1.0);
        let mut r = cpu(&[7], Stream::Noise);
        let _ = r.normal(&[9], 1.0);
        assert!(r.at(0).normal(&[4], 1.0).equal(&a));
        assert!(!r.at(1).normal(&[4], 1.0).equal(&a));
    }

    #[test]
    fn a_stream_resumes_where_its_position_was_taken() {
        let mut a = cpu(&[3, 4], Stream::Dropout);
        let _ = a.normal(&[5], 1.0);
        let _ = a.bytes(&[7], None); // not a whole block
        let at = a.positions();
        let (n, m) = (a.normal(&[6], 1.0), a.bytes(&[9], None));
        let mut b = cpu(&[3, 4], Stream::Dropout);
        b.seek(&at);
        assert!(b.normal(&[6], 1.0).equal(&n) && b.bytes(&[9], None).equal(&m));
    }

    #[test]
    fn streams_differ() {
        let a = cpu(&[7], Stream::Noise).normal(&[4], 1.0);
        let b = cpu(&[7], Stream::Init).normal(&[4], 1.0);
        assert!(!a.equal(&b));
    }

    #[test]
    fn host_streams_differ_by_index() {
        let b = normal(&mut stream(7, Stream::Noise, 0), &[4], Device::Cpu);
        let c = normal(&mut stream(7, Stream::Noise, 1), &[4], Device::Cpu);
        assert!(!b.equal(&c));
    }
}
