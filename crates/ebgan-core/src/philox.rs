//! Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as 1, 2,
//! 3"), the counter-based generator behind cuRAND and PyTorch's CUDA generator, written in int64
//! tensor ops so that it runs on whatever device holds the tensors and gives the same words on
//! each. A draw is a pure function of (key, counter): a stream's position is its counter, so
//! resuming one is exact by construction. The generator behind the training streams
//! (`ebgan_models::rng::MemberRng`).

use std::cell::Cell;
use tch::{Kind, Tensor};

const M0: i64 = 0xD251_1F53;
const M1: i64 = 0xCD9E_8D57;
const W0: i64 = 0x9E37_79B9;
const W1: i64 = 0xBB67_AE85;
const LOW32: i64 = 0xFFFF_FFFF;

thread_local! {
    static EVALUATIONS: Cell<u64> = const { Cell::new(0) };
    static OPS: Cell<u64> = const { Cell::new(0) };
}

/// [`philox4x32_10`] evaluations on this thread so far (`ebgan bench` counts a step's).
pub fn evaluations() -> u64 {
    EVALUATIONS.with(Cell::get)
}

/// Tensor ops that launch work (not views) the random draws have made on this thread so far:
/// each is counted where it is written, through [`op`] (`ebgan bench` counts a step's).
pub fn tensor_ops() -> u64 {
    OPS.with(Cell::get)
}

/// `t`, counted as one launched tensor op in [`tensor_ops`].
pub fn op(t: Tensor) -> Tensor {
    OPS.with(|c| c.set(c.get() + 1));
    t
}

/// `[a, b]` int64 on `like`'s device, built there (nothing uploaded): three ops.
fn pair(a: i64, b: i64, like: &Tensor) -> Tensor {
    let i = op(Tensor::arange(2, (Kind::Int64, like.device())));
    op(op(i * (b - a)) + a)
}

/// Philox4x32-10 of counters `ctr` `[..., 4]` under keys `key` `[..., 2]` (int64 holding 32-bit
/// words; the two broadcast): `[..., 4]` int64 words below 2^32.
///
/// The state is held as two pairs, (c0, c2) and (c1, c3), so that one multiply makes both of a
/// round's products. A product of two words below 2^32 is below 2^64, and ATen's int64 multiply
/// wraps on the CPU and on CUDA, so it holds the exact product as a bit pattern: its high word is
/// a shift away and its low word is its low 32 bits. Those low words become (c1, c3) and are
/// left unmasked: they only meet the next round through an xor whose result is masked to 32 bits
/// (as are the keys, bumped without a mask). Six ops a round; the host's [`block`] is the
/// reference (tests hold them equal).
pub fn philox4x32_10(ctr: &Tensor, key: &Tensor) -> Tensor {
    EVALUATIONS.with(|c| c.set(c.get() + 1));
    let pairs = |t: &Tensor| t.unflatten(-1, [2, 2]);
    let (mut even, mut odd) = (pairs(ctr).select(-1, 0), pairs(ctr).select(-1, 1));
    let (multipliers, bumps) = (pair(M0, M1, ctr), pair(W0, W1, ctr));
    let mut key = key.shallow_clone();
    for round in 0..10 {
        if round > 0 {
            key = op(key + &bumps);
        }
        // (c2 M1, c0 M0): the products in the order the new words take them.
        let products = op(op(even * &multipliers).flip([-1]));
        let high = op(products.bitwise_right_shift_tensor_scalar(32));
        even =
            op(op(op(high.bitwise_xor_tensor(&odd)).bitwise_xor_tensor(&key)).bitwise_and(LOW32));
        odd = products;
    }
    let odd = op(odd.bitwise_and(LOW32));
    op(Tensor::stack(&[even, odd], -1)).flatten(-2, -1)
}

/// One Philox4x32-10 block on the host: the words [`philox4x32_10`] gives for the same counter
/// and key (the CPU's own kernel for the streams; tests hold the two equal).
pub fn block(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0 as u32), k[1].wrapping_add(W1 as u32)];
        }
        let p0 = c[0] as u64 * M0 as u64;
        let p1 = c[2] as u64 * M1 as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// Consecutive blocks on the host: block i of `out` is [`block`] of counter (`position` + i as
/// the first two words, then `high`) under `key`. Eight blocks at a time, lane by lane, so that
/// the compiler can vectorise the multiplies.
// Indexing four lane arrays at once is the form the compiler vectorises.
#[allow(clippy::needless_range_loop)]
pub fn fill(position: u64, high: [u32; 2], key: [u32; 2], out: &mut [[u32; 4]]) {
    const L: usize = 8;
    for (j, chunk) in out.chunks_mut(L).enumerate() {
        let mut c = [[0u32; L]; 4];
        for i in 0..L {
            let p = position.wrapping_add((j * L + i) as u64);
            c[0][i] = p as u32;
            c[1][i] = (p >> 32) as u32;
            c[2][i] = high[0];
            c[3][i] = high[1];
        }
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k = [k[0].wrapping_add(W0 as u32), k[1].wrapping_add(W1 as u32)];
            }
            for i in 0..L {
                let p0 = c[0][i] as u64 * M0 as u64;
                let p1 = c[2][i] as u64 * M1 as u64;
                c[0][i] = (p1 >> 32) as u32 ^ c[1][i] ^ k[0];
                c[1][i] = p1 as u32;
                c[2][i] = (p0 >> 32) as u32 ^ c[3][i] ^ k[1];
                c[3][i] = p0 as u32;
            }
        }
        for (i, w) in chunk.iter_mut().enumerate() {
            *w = [c[0][i], c[1][i], c[2][i], c[3][i]];
        }
    }
}

/// Uniform floats in [0, 1) from words `[...]` < 2^32: the top 24 bits times 2^-24, exact in
/// f32 on every device.
pub fn uniform(words: &Tensor) -> Tensor {
    let top = op(words.bitwise_right_shift_tensor_scalar(8));
    op(op(top.to_kind(Kind::Float)) * (1.0 / 16_777_216.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn words(v: &[i64]) -> Tensor {
        Tensor::from_slice(v).to_kind(Kind::Int64)
    }

    #[test]
    fn random123_known_answers() {
        // Random123's tests/kat_vectors for philox4x32_10: zeros, all ones, and pi's digits.
        let cases: [([i64; 4], [i64; 2], [i64; 4]); 3] = [
            (
                [0; 4],
                [0; 2],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [0xffffffff; 4],
                [0xffffffff; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, want) in cases {
            let got = Vec::<i64>::try_from(philox4x32_10(&words(&ctr), &words(&key))).unwrap();
            assert_eq!(got, want, "ctr {ctr:x?} key {key:x?}");
            let host = block(ctr.map(|w| w as u32), key.map(|w| w as u32));
            assert_eq!(host.map(i64::from), want, "host: ctr {ctr:x?} key {key:x?}");
        }
        // Batched: the three at once, broadcast over a leading dimension, give the same.
        let ctr = Tensor::stack(&cases.map(|c| words(&c.0)), 0);
        let key = Tensor::stack(&cases.map(|c| words(&c.1)), 0);
        let got = Vec::<i64>::try_from(philox4x32_10(&ctr, &key).flatten(0, -1)).unwrap();
        let want: Vec<i64> = cases.iter().flat_map(|c| c.2).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fill_gives_consecutive_blocks() {
        // 11 blocks (a partial chunk of 8) across a carry into the counter's second word.
        let (start, high, key) = (u32::MAX as u64 - 4, [7, 9], [0xdead_beef, 3]);
        let mut out = [[0u32; 4]; 11];
        fill(start, high, key, &mut out);
        for (i, w) in out.iter().enumerate() {
            let p = start + i as u64;
            assert_eq!(
                *w,
                block([p as u32, (p >> 32) as u32, high[0], high[1]], key),
                "{i}"
            );
        }
    }

    #[test]
    fn uniforms_are_exact_multiples_of_two_to_the_minus_24_below_one() {
        let w = words(&[0, 0xff, 0x100, 0xffffffff]);
        let u = Vec::<f32>::try_from(uniform(&w)).unwrap();
        assert_eq!(
            u,
            [0.0, 0.0, 1.0 / 16_777_216.0, 16_777_215.0 / 16_777_216.0]
        );
        let many = uniform(&philox4x32_10(
            &Tensor::arange(4000, (Kind::Int64, Device::Cpu)).view([1000, 4]),
            &words(&[7, 9]),
        ));
        let mean = f64::try_from(many.mean(None)).unwrap();
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
