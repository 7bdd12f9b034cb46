//! EBGAN math on tensors, with no I/O.
//!
//! Every function takes a leading member dimension `K` (`[K, B, ...]`; `K = 1` for a single run)
//! and reduces per member, never across members, so that many grid runs can train as one cohort.

pub mod began;
pub mod energy;
pub mod gan_loss;
pub mod loss;
pub mod magan;
pub mod margin;
pub mod member_wise;
pub mod mkl_path;
pub mod optim;
pub mod philox;
pub mod pulling_away;
pub mod score;
pub mod upload;
pub mod wgan_gp;

pub use energy::Energy;
pub use margin::MarginSchedule;
pub use member_wise::member_wise;
pub use optim::{Layout, MemberOptim, OptimHyper, OptimKind};
pub use upload::{read, transfers, upload, Transfers};
