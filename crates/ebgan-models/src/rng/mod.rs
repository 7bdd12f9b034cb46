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
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tch::{Device, Kind, Tensor};
use window::{Draw, Pool, Values};

mod window;
pub use window::{step_draws, window_blocks, StepDraws};

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

/// How the MemberRngs made from now on draw, process-wide: as usual (0), or with the tensor
/// ops (on the CPU too) in windows of at most `blocks - 1` blocks (1: every draw evaluated
/// alone). `ebgan bench` counts what a GPU runs through the trainers on any device.
static FORCED_WINDOW: AtomicI64 = AtomicI64::new(0);

/// From now on, MemberRngs draw with the tensor ops a GPU runs, on the CPU too, in windows of
/// at most `blocks` blocks (0: every draw evaluated alone); None: as usual again.
pub fn set_draw_window(blocks: Option<i64>) {
    FORCED_WINDOW.store(blocks.map_or(0, |b| b + 1), Ordering::Relaxed);
}

/// The pool behind `pool` (a panic elsewhere leaves its window usable: every draw is checked
/// against its counter).
fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The streams of one trainer: one seed per member on one device, sharing the window their
/// draws are evaluated in ahead on the tensor path (`window`). [`Streams::next_step`] at each
/// step's start lets it predict the coming steps' draws; without it every draw is evaluated
/// alone, with the same words.
#[derive(Clone)]
pub struct Streams {
    seeds: Vec<u64>,
    device: Device,
    pool: Arc<Mutex<Pool>>,
    via_tensors: bool,
}

impl Streams {
    pub fn new(seeds: &[u64], device: Device) -> Streams {
        let words: Vec<i64> = seeds
            .iter()
            .flat_map(|&s| [(s & 0xFFFF_FFFF) as i64, (s >> 32) as i64])
            .collect();
        let keys = if device == Device::Cpu {
            Tensor::from_slice(&words)
        } else {
            ebgan_core::upload(Tensor::from_slice(&words), device)
        };
        let mut pool = Pool::new(keys.view([-1, 2]), device);
        let forced = FORCED_WINDOW.load(Ordering::Relaxed);
        if forced > 0 {
            pool.most_blocks = forced - 1;
        }
        Streams {
            seeds: seeds.to_vec(),
            device,
            pool: Arc::new(Mutex::new(pool)),
            via_tensors: forced > 0,
        }
    }

    /// Stream `stream` of every member, drawing through this window.
    pub fn stream(&self, stream: Stream) -> MemberRng {
        let mut pool = lock(&self.pool);
        pool.sources += 1;
        MemberRng {
            seeds: self.seeds.clone(),
            pool: self.pool.clone(),
            source: pool.sources - 1,
            stream,
            index: 0,
            position: 0,
            device: self.device,
            tape: None,
            via_tensors: self.via_tensors,
        }
    }

    /// A training step begins (see [`window`]).
    pub fn next_step(&self) {
        lock(&self.pool).next_step();
    }

    #[cfg(test)]
    fn pool(&self) -> MutexGuard<'_, Pool> {
        lock(&self.pool)
    }
}

/// Per-member counter-based streams on the run's device: Philox4x32-10 keyed by the member's
/// seed, counting blocks of four 32-bit words from counter (position, stream, index). A draw is a
/// function of (seed, stream, index, position) alone, so a member draws the same alone or in any
/// cohort, the same integer words on every device, and resumes exactly from its position.
///
/// On CUDA the words come from tensor ops on the device (nothing is generated on the host or
/// uploaded), evaluated a window of steps ahead with the trainer's other streams ([`Streams`]); on
/// the CPU, the device is the host, and a plain loop computes the same words (tested equal)
/// faster than int64 tensor ops can.
pub struct MemberRng {
    seeds: Vec<u64>,
    pool: Arc<Mutex<Pool>>,
    /// This stream's number in its pool.
    source: usize,
    stream: Stream,
    /// The fourth counter word: 0 for whole-run streams, a step for per-step ones.
    index: u32,
    /// Blocks drawn so far (the first two counter words).
    position: u64,
    device: Device,
    /// Every draw since [`MemberRng::record`], in order (the parity harness hands them to the
    /// PyTorch reference).
    tape: Option<Vec<Tensor>>,
    /// Draw with tensor ops on the CPU too (tests compare the two paths).
    via_tensors: bool,
}

impl MemberRng {
    /// A stream with a window of its own.
    pub fn new(seeds: &[u64], stream: Stream, device: Device) -> Self {
        Streams::new(seeds, device).stream(stream)
    }

    /// Streams with the tensor ops on the CPU too (what a GPU runs; tests).
    pub fn on_tensor_path(mut self) -> Self {
        self.via_tensors = true;
        self
    }

    /// Moves to the start of sub-stream `index` (a step's draws, so that they are a function of
    /// the step alone).
    pub fn at(&mut self, index: u64) -> &mut Self {
        self.index = u32::try_from(index).expect("a stream index below 2^32");
        self.position = 0;
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
        let z = self.draw(Values::Normal(std.to_bits()), n, None);
        self.finish(z, shape)
    }

    /// `[K, shape...]` of U[0, 1) draws, member k from its own stream.
    pub fn uniform(&mut self, shape: &[i64]) -> Tensor {
        let n: i64 = shape.iter().product();
        let u = self.draw(Values::Uniform, n, None);
        self.finish(u, shape)
    }

    /// `[M, shape...]` of uniform bytes (dropout masks) for the M members `members` (indices
    /// into the cohort; None: all). The position moves as if every member drew.
    pub fn bytes(&mut self, shape: &[i64], members: Option<&[usize]>) -> Tensor {
        let n: i64 = shape.iter().product();
        let b = self.draw(Values::Bytes, n, members);
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
        lock(&self.pool).forget(self.source);
    }

    /// `[M, n]` values for members `members` (None: all), from the current position, which then
    /// moves past them.
    fn draw(&mut self, values: Values, n: i64, members: Option<&[usize]>) -> Tensor {
        let members = members.map_or_else(|| (0..self.seeds.len()).collect(), <[usize]>::to_vec);
        let m = members.len() as i64;
        if n == 0 || m == 0 {
            let kind = match values {
                Values::Uniform | Values::Normal(_) => Kind::Float,
                Values::Bytes => Kind::Uint8,
            };
            return Tensor::zeros([m, n], (kind, self.device));
        }
        let per = values.per_block();
        // A pair of uniforms per two normals: an odd count takes one more uniform.
        let words = match values {
            Values::Normal(_) => (n + 1) / 2 * 2,
            _ => n,
        };
        let blocks = (words + per - 1) / per;
        let start = self.position;
        self.position += blocks as u64;
        let out = if self.device == Device::Cpu && !self.via_tensors {
            self.draw_on_host(values, (words, blocks), start, &members)
        } else {
            let d = Draw {
                source: self.source,
                stream: self.stream as u32,
                index: self.index,
                start,
                blocks,
                members,
                values,
            };
            lock(&self.pool).take(d)
        };
        out.narrow(1, 0, n)
    }

    /// The host loop's `[M, >= n]` values for `members` from `blocks` blocks, of which normals
    /// use the first `words` uniforms (the tensor ops of the draws before windows, kept as they
    /// were: on the CPU, ATen's vector and scalar loops can round a logarithm differently, so
    /// the CPU's normals keep their tensors' shapes).
    fn draw_on_host(
        &self,
        values: Values,
        (words, blocks): (i64, i64),
        start: u64,
        members: &[usize],
    ) -> Tensor {
        let m = members.len() as i64;
        let mut w = vec![[0u32; 4]; members.len() * blocks as usize];
        for (&k, out) in members.iter().zip(w.chunks_mut(blocks as usize)) {
            let key = [self.seeds[k] as u32, (self.seeds[k] >> 32) as u32];
            ebgan_core::philox::fill(start, [self.stream as u32, self.index], key, out);
        }
        let w = w.as_flattened();
        let uniforms = || {
            let v: Vec<f32> = w
                .iter()
                .map(|&w| (w >> 8) as f32 * (1.0 / 16_777_216.0))
                .collect();
            Tensor::from_slice(&v).view([m, -1])
        };
        match values {
            Values::Uniform => uniforms(),
            Values::Bytes => {
                let mut v = vec![0u8; w.len() * 4];
                for (b, w) in v.chunks_exact_mut(4).zip(w) {
                    b.copy_from_slice(&w.to_le_bytes());
                }
                Tensor::from_slice(&v).view([m, -1])
            }
            Values::Normal(std) => {
                let u = uniforms().narrow(1, 0, words).reshape([m, -1, 2]);
                let radius = ((u.select(2, 0) + 1.0 / 16_777_216.0).log() * -2.0).sqrt();
                let angle = u.select(2, 1) * std::f64::consts::TAU;
                let z = Tensor::stack(&[&radius * angle.cos(), radius * angle.sin()], 2);
                z.reshape([m, -1]) * f64::from_bits(std)
            }
        }
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

    /// One step of a trainer with three streams: two dropout draws for a subset, a normal
    /// draw, and a per-step stream (`at(step)`) of uniforms.
    fn step(streams: &mut [MemberRng; 3], step: u64) -> Vec<Tensor> {
        let [masks, noise, interpolation] = streams;
        vec![
            masks.bytes(&[10, 3], Some(&[2, 0])),
            noise.normal(&[4, 6], 0.5),
            masks.bytes(&[37, 13], Some(&[2, 0])),
            interpolation.at(step).uniform(&[5]),
            noise.normal(&[7], 0.5),
        ]
    }

    fn streams(draws: &Streams, tensors: bool) -> [MemberRng; 3] {
        [Stream::Dropout, Stream::Noise, Stream::Interpolate].map(|s| match tensors {
            true => draws.stream(s).on_tensor_path(),
            false => draws.stream(s),
        })
    }

    /// Whether `got` is `want`: bit for bit, except the normals (draws 1 and 4), which on the
    /// CPU's tensor path may round differently where ATen's vector loop and its scalar tail
    /// take the window's values apart in other places than the draw's own tensors: each of
    /// log, cos and sin within 2 units of 2^-24 relative, so z = r cos(a) within 8 units
    /// of r's most, sqrt(-2 ln 2^-24), times the standard deviation.
    fn same_draws(got: &[Tensor], want: &[Tensor]) -> bool {
        let most = 8.0 * (-2.0 * (2f64.powi(-24)).ln()).sqrt() * 2f64.powi(-24) * 0.5;
        got.iter().zip(want).enumerate().all(|(i, (g, w))| match i {
            1 | 4 => g.size() == w.size() && f64::try_from((g - w).abs().max()).unwrap() <= most,
            _ => g.equal(w),
        })
    }

    #[test]
    fn a_window_gives_every_stream_of_a_step_its_words_in_one_evaluation_and_resumes_exactly() {
        let seeds = [5, u64::MAX, 1 << 33];
        let mut host = streams(&Streams::new(&seeds, Device::Cpu), false);
        let draws = Streams::new(&seeds, Device::Cpu);
        let mut ahead = streams(&draws, true);
        let (mut want, mut got, mut evaluations) = (vec![], vec![], vec![]);
        let mut at: Vec<Vec<u128>> = vec![];
        for t in 0..12 {
            if t == 6 {
                at = ahead.iter().map(MemberRng::positions).collect();
            }
            let before = ebgan_core::philox::evaluations();
            draws.next_step();
            want.push(step(&mut host, t));
            got.push(step(&mut ahead, t));
            evaluations.push(ebgan_core::philox::evaluations() - before);
        }
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(same_draws(g, w), "step {t}");
        }
        // Steps 0 and 1 draw alone (5 each); then windows of 1, 2, 4 and 8 steps, each one
        // evaluation for all three streams, made at the start of steps 2, 3, 5 and 9.
        assert_eq!(evaluations, [5, 5, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0]);
        // A resume at step 6, inside the window of steps 5-8, from the positions alone.
        let resumed = Streams::new(&seeds, Device::Cpu);
        let mut streams = streams(&resumed, true);
        for (s, p) in streams.iter_mut().zip(&at) {
            s.seek(p);
        }
        for (t, w) in want.iter().enumerate().skip(6) {
            resumed.next_step();
            assert!(
                same_draws(&step(&mut streams, t as u64), w),
                "step {t} after the resume"
            );
        }
    }

    #[test]
    fn a_step_of_five_draws_launches_at_most_twenty_tensor_ops_amortized() {
        let draws = Streams::new(&[1, 2, 3], Device::Cpu);
        let mut streams = streams(&draws, true);
        let mut from = step_draws();
        // Windows of 1, 2, 4, ... steps from step 2 on: steps 65-128 are one of 64.
        for t in 0..129 {
            if t == 65 {
                from = step_draws();
            }
            draws.next_step();
            let _ = step(&mut streams, t);
        }
        let (now, steps) = (step_draws(), 64);
        assert_eq!(now.evaluations - from.evaluations, 1);
        let per_step = (now.ops - from.ops) as f64 / steps as f64;
        assert!(per_step <= 20.0, "{per_step} tensor ops a step");
        // Each draw alone: one evaluation and its own ops, every step.
        let alone = Streams::new(&[1, 2, 3], Device::Cpu);
        alone.pool().most_blocks = 0;
        let mut streams = self::streams(&alone, true);
        let before = step_draws();
        alone.next_step();
        let _ = step(&mut streams, 0);
        assert_eq!(step_draws().evaluations - before.evaluations, 5);
        assert!(step_draws().ops - before.ops > 5 * 70);
    }

    #[test]
    fn a_draw_the_window_did_not_predict_is_evaluated_alone() {
        let draws = Streams::new(&[9, 10], Device::Cpu);
        let mut noise = draws.stream(Stream::Noise).on_tensor_path();
        let mut host = MemberRng::new(&[9, 10], Stream::Noise, Device::Cpu);
        for t in 0..6 {
            draws.next_step();
            // Step 4 draws a larger batch than the window predicted from the steps before.
            let n = if t == 4 { 33 } else { 8 };
            assert!(noise.uniform(&[n]).equal(&host.uniform(&[n])), "step {t}");
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
