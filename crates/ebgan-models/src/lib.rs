//! Networks for EBGAN on libtorch, in the style of candle's model files: a spec struct, a
//! constructor taking a variable path, and `forward`.
//!
//! Grid networks carry a leading member dimension `K` (weights `[K, in, out]`; batched matmuls on
//! CUDA, each member's own 2-D calls on the CPU): one implementation serves a single run (K = 1)
//! and a cohort of runs that share a shape.

#[cfg(test)]
mod batch_invariance;
pub mod classifier;
pub mod dcgan;
pub mod inception;
pub mod ladder;
pub mod layers;
pub mod mlp;
pub mod rng;
pub mod vars;

pub use rng::MemberRng;
pub use vars::Vars;
