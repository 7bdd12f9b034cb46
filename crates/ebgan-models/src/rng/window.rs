//! The tensor path's draws, evaluated a window of steps ahead.
//!
//! The streams of one trainer share a [`Pool`]. It remembers each step's draws (every stream,
//! member subset and kind of value), and at the next step's start it predicts the draws of the
//! coming steps from them: a stream at a fixed index moves on by as many blocks as it moved last
//! step, a per-step stream moves its index on by as much as last step. All of them are evaluated
//! in one Philox evaluation and turned into their values (uniforms, bytes, normals) once, and a
//! predicted draw is then a view into that window. A draw the prediction missed is evaluated
//! alone. A word is a function of its counter, so either way a draw gets the words it would
//! have got alone: the window changes how many kernels run, never a word.

use ebgan_core::philox::{evaluations, op, philox4x32_10, tensor_ops, uniform};
use std::cell::Cell;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// The most steps one window holds.
const MOST_STEPS: i64 = 64;

/// A window's most blocks over all its members and steps: 2^23 on a GPU (the evaluation's int64
/// temporaries then peak near 1 GiB; an MLP cohort at Table 1's largest shape draws about 2^19
/// blocks a step), 2^14 on the CPU, where the tensor path only runs for tests and `ebgan bench`.
pub fn window_blocks(device: Device) -> i64 {
    match device {
        Device::Cpu => 1 << 14,
        _ => 1 << 23,
    }
}

/// The draws of training steps: Philox evaluations and tensor ops that launch work.
/// Only streams whose trainer marks its steps ([`super::Streams::next_step`]) count, so one-off draws
/// (sample sheets, initial weights) are not among them.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepDraws {
    pub evaluations: u64,
    pub ops: u64,
}

thread_local! {
    static STEP_DRAWS: Cell<StepDraws> = const {
        Cell::new(StepDraws { evaluations: 0, ops: 0 })
    };
}

/// The draws of training steps on this thread so far.
pub fn step_draws() -> StepDraws {
    STEP_DRAWS.with(Cell::get)
}

/// `f()`, counted in [`step_draws`] if `stepping`.
fn counted<T>(stepping: bool, f: impl FnOnce() -> T) -> T {
    if !stepping {
        return f();
    }
    let before = (evaluations(), tensor_ops());
    let out = f();
    STEP_DRAWS.with(|c| {
        let mut d = c.get();
        d.evaluations += evaluations() - before.0;
        d.ops += tensor_ops() - before.1;
        c.set(d);
    });
    out
}

/// What a draw turns its words into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Values {
    /// Four uniforms in [0, 1) per block: a word's top 24 bits times 2^-24.
    Uniform,
    /// Sixteen bytes per block, a word's low byte first.
    Bytes,
    /// Four normals per block times a standard deviation (its f64 bits): Box-Muller on the
    /// block's two pairs of uniforms, the first of each pair moved to (0, 1] for its logarithm.
    Normal(u64),
}

impl Values {
    pub(super) fn per_block(self) -> i64 {
        match self {
            Values::Uniform | Values::Normal(_) => 4,
            Values::Bytes => 16,
        }
    }

    /// `[W, M, L, 4]` words -> `[W, M, L * per_block]` values.
    fn of(self, words: &Tensor) -> Tensor {
        let [w, m] = [words.size()[0], words.size()[1]];
        let values = match self {
            Values::Uniform => uniform(words),
            Values::Bytes => {
                let shifts = op(Tensor::arange_start_step(
                    0,
                    32,
                    8,
                    (Kind::Int64, words.device()),
                ));
                let bytes = op(words.unsqueeze(-1).bitwise_right_shift(&shifts));
                op(op(bytes.bitwise_and(0xFF)).to_kind(Kind::Uint8))
            }
            Values::Normal(std) => {
                let u = uniform(words).unflatten(-1, [2, 2]);
                let first = op(u.select(-1, 0) + 1.0 / 16_777_216.0);
                let radius = op(op(op(first.log()) * -2.0).sqrt());
                let angle = op(u.select(-1, 1) * std::f64::consts::TAU);
                let cos = op(&radius * op(angle.cos()));
                let sin = op(radius * op(angle.sin()));
                op(op(Tensor::stack(&[cos, sin], -1)) * f64::from_bits(std))
            }
        };
        values.reshape([w, m, -1])
    }
}

/// One draw: blocks `start..start + blocks` of sub-stream `index` of `stream` for `members`, as
/// `values`, by MemberRng number `source` of its pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Draw {
    pub source: usize,
    pub stream: u32,
    pub index: u32,
    pub start: u64,
    pub blocks: i64,
    pub members: Vec<usize>,
    pub values: Values,
}

/// How a source moved from one step to the next: its index on (a per-step stream, drawing from
/// the same blocks), or its position on (a stream at one index).
#[derive(Clone, Copy)]
enum Move {
    Index(u32),
    Position(u64),
}

impl Draw {
    /// This draw `k` steps on.
    fn after(&self, k: i64, by: Move) -> Draw {
        let mut d = self.clone();
        match by {
            Move::Index(i) => d.index += k as u32 * i,
            Move::Position(p) => d.start += k as u64 * p,
        }
        d
    }
}

/// Blocks `draw.start..draw.start + span` of each of `steps` steps from `step` on (moving `by`
/// a step), for one source, member subset and kind of value: one piece of a window.
struct Lane {
    draw: Draw,
    by: Move,
    span: i64,
    step: i64,
    steps: i64,
}

impl Lane {
    /// The lane of draw `d` alone.
    fn of(d: &Draw) -> Lane {
        Lane {
            draw: d.clone(),
            by: Move::Position(0),
            span: d.blocks,
            step: 0,
            steps: 1,
        }
    }

    /// `[W * M * L, 4]` counters, member-major within each step.
    fn counters(&self, m: i64, device: Device) -> Tensor {
        let (w, l, d) = (self.steps, self.span, &self.draw);
        let int = (Kind::Int64, device);
        let k = op(Tensor::arange_start(self.step, self.step + w, int)).unsqueeze(1);
        let (d_index, d_start) = match self.by {
            Move::Index(i) => (i as i64, 0),
            Move::Position(p) => (0, p as i64),
        };
        let blocks = op(Tensor::arange(l, int)).unsqueeze(0);
        let position = op(blocks + op(op(&k * d_start) + d.start as i64));
        let index = op(op(k * d_index) + d.index as i64).expand([w, l], false);
        let words = [
            op(position.bitwise_and(0xFFFF_FFFF)),
            op(position.bitwise_right_shift_tensor_scalar(32)),
            op(Tensor::full([w, l], d.stream as i64, int)),
            index,
        ];
        let ctr = op(Tensor::stack(&words, -1));
        rows(ctr.unsqueeze(1).expand([w, m, l, 4], false))
    }
}

/// The window and what it knows of the steps before; see the module's doc.
pub(super) struct Pool {
    /// `[K, 2]` key words of every member, on the device.
    keys: Tensor,
    device: Device,
    /// The keys of member subsets that drew (dropout's), kept on the device.
    subsets: Vec<(Vec<usize>, Tensor)>,
    pub(super) sources: usize,
    /// The most blocks a window holds (0: none; every draw is evaluated alone).
    pub(super) most_blocks: i64,
    /// Whether its trainer marks its steps (its work is then counted in [`step_draws`]).
    stepping: bool,
    /// This step's draws, in order.
    this_step: Vec<Draw>,
    /// Each source's (index, end) after its last draw of the step before.
    last_end: HashMap<usize, (u32, u64)>,
    /// Steps the last window held (each window holds twice as many, up to [`MOST_STEPS`]).
    ahead: i64,
    /// The predicted draws evaluated: their lane, step in it and first value.
    ready: HashMap<Draw, (usize, i64, i64)>,
    /// `[W, M, values of a step]` per lane.
    lanes: Vec<Tensor>,
}

impl Pool {
    pub(super) fn new(keys: Tensor, device: Device) -> Pool {
        Pool {
            keys,
            device,
            subsets: vec![],
            sources: 0,
            most_blocks: window_blocks(device),
            stepping: false,
            this_step: vec![],
            last_end: HashMap::new(),
            ahead: 0,
            ready: HashMap::new(),
            lanes: vec![],
        }
    }

    /// `[M, blocks * per_block]` values of draw `d`: a view into the window, or evaluated alone.
    pub(super) fn take(&mut self, d: Draw) -> Tensor {
        counted(self.stepping, || self.take_uncounted(d))
    }

    fn take_uncounted(&mut self, d: Draw) -> Tensor {
        let served = self.ready.remove(&d);
        let (blocks, per) = (d.blocks, d.values.per_block());
        self.this_step.push(d);
        if let Some((lane, step, first)) = served {
            return self.lanes[lane].get(step).narrow(1, first, blocks * per);
        }
        let d = self.this_step.last().expect("just pushed");
        self.evaluate(&[&Lane::of(d)]).remove(0).get(0)
    }

    /// A step begins: predicts the coming steps' draws from the step that ended and, unless
    /// the window already holds the coming step's, evaluates a new window.
    pub(super) fn next_step(&mut self) {
        self.stepping = true;
        counted(true, || self.predict());
    }

    /// What [`Pool::next_step`] does: the prediction and, where needed, a new window.
    fn predict(&mut self) {
        let done = std::mem::take(&mut self.this_step);
        let mut ends = HashMap::new();
        let mut mixed = vec![];
        for d in &done {
            if ends.get(&d.source).is_some_and(|&(i, _)| i != d.index) {
                mixed.push(d.source);
            }
            ends.insert(d.source, (d.index, d.start + d.blocks as u64));
        }
        let mut moves = HashMap::new();
        for (&source, &(index, end)) in &ends {
            let by = match self.last_end.get(&source) {
                _ if mixed.contains(&source) => continue,
                Some(&(i, _)) if index > i => Move::Index(index - i),
                Some(&(i, e)) if index == i && end > e => Move::Position(end - e),
                _ => continue,
            };
            moves.insert(source, by);
        }
        self.last_end = ends;
        let predicted: Vec<(&Draw, Move)> = done
            .iter()
            .filter_map(|d| moves.get(&d.source).map(|&by| (d, by)))
            .collect();
        if self.most_blocks == 0
            || predicted.is_empty()
            || predicted
                .iter()
                .all(|(d, by)| self.ready.contains_key(&d.after(1, *by)))
        {
            return;
        }
        let per_step: i64 = predicted
            .iter()
            .map(|(d, _)| d.members.len() as i64 * d.blocks)
            .sum();
        let steps = (self.ahead * 2)
            .clamp(1, MOST_STEPS)
            .min((self.most_blocks / per_step).max(1));
        let fits = |by: Move| match by {
            Move::Index(i) => index_room(&done, i, steps),
            Move::Position(_) => true,
        };
        // One lane per source, subset and kind of value, spanning its draws of a step.
        let mut lanes: Vec<(Lane, Vec<&Draw>)> = vec![];
        for &(d, by) in predicted.iter().filter(|(_, by)| fits(*by)) {
            let same = |l: &&mut (Lane, Vec<&Draw>)| {
                let o = &l.0.draw;
                (o.source, &o.members, o.values) == (d.source, &d.members, d.values)
            };
            match lanes.iter_mut().find(same) {
                Some((lane, draws)) => {
                    let end = (lane.draw.start as i64 + lane.span).max(d.start as i64 + d.blocks);
                    lane.draw.start = lane.draw.start.min(d.start);
                    lane.span = end - lane.draw.start as i64;
                    draws.push(d);
                }
                None => {
                    let lane = Lane {
                        draw: d.clone(),
                        by,
                        span: d.blocks,
                        step: 1,
                        steps,
                    };
                    lanes.push((lane, vec![d]));
                }
            }
        }
        if lanes.is_empty() {
            return;
        }
        self.ahead = steps;
        self.lanes = self.evaluate(&lanes.iter().map(|l| &l.0).collect::<Vec<_>>());
        self.ready.clear();
        for (i, (lane, draws)) in lanes.iter().enumerate() {
            let per = lane.draw.values.per_block();
            for d in draws {
                let first = (d.start - lane.draw.start) as i64 * per;
                for k in 0..steps {
                    self.ready.insert(d.after(k + 1, lane.by), (i, k, first));
                }
            }
        }
    }

    /// A source moved (a checkpoint's position): forget what was predicted for it.
    pub(super) fn forget(&mut self, source: usize) {
        self.last_end.remove(&source);
        self.ready.retain(|d, _| d.source != source);
    }

    /// `[M, 2]` keys of `members` on the device (a subset's uploaded once).
    fn keys_of(&mut self, members: &[usize]) -> Tensor {
        if members.iter().copied().eq(0..self.keys.size()[0] as usize) {
            return self.keys.shallow_clone();
        }
        if let Some((_, k)) = self.subsets.iter().find(|(m, _)| m == members) {
            return k.shallow_clone();
        }
        let idx: Vec<i64> = members.iter().map(|&k| k as i64).collect();
        let idx = ebgan_core::upload(Tensor::from_slice(&idx), self.device);
        let keys = self.keys.index_select(0, &idx);
        self.subsets.push((members.to_vec(), keys.shallow_clone()));
        keys
    }

    /// Every lane's `[W, M, L * per_block]` values, from one Philox evaluation.
    fn evaluate(&mut self, lanes: &[&Lane]) -> Vec<Tensor> {
        let (mut counters, mut keys, mut sizes) = (vec![], vec![], vec![]);
        for lane in lanes {
            let m = lane.draw.members.len() as i64;
            let k = self.keys_of(&lane.draw.members);
            counters.push(lane.counters(m, self.device));
            let k = k
                .view([1, m, 1, 2])
                .expand([lane.steps, m, lane.span, 2], false);
            keys.push(rows(k));
            sizes.push(lane.steps * m * lane.span);
        }
        let words = match counters.len() {
            1 => philox4x32_10(&counters[0], &keys[0]),
            _ => philox4x32_10(&op(Tensor::cat(&counters, 0)), &op(Tensor::cat(&keys, 0))),
        };
        let mut first = 0;
        lanes
            .iter()
            .zip(sizes)
            .map(|(lane, n)| {
                let m = lane.draw.members.len() as i64;
                let w = words
                    .narrow(0, first, n)
                    .view([lane.steps, m, lane.span, 4]);
                first += n;
                lane.draw.values.of(&w)
            })
            .collect()
    }
}

/// Whether the per-step sources of `done` can move their index on by `by` for `steps` steps
/// without leaving 32 bits.
fn index_room(done: &[Draw], by: u32, steps: i64) -> bool {
    done.iter()
        .all(|d| d.index as u64 + by as u64 * steps as u64 <= u32::MAX as u64)
}

/// `t` `[..., n]` as `[rows, n]`: a view where it can be, else a copy (one op).
fn rows(t: Tensor) -> Tensor {
    let n = *t.size().last().expect("a last dimension");
    match t.is_contiguous() {
        true => t.view([-1, n]),
        false => op(t.reshape([-1, n])),
    }
}
