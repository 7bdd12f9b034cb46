//! ebgan-exp: the experiments of "Energy-based Generative Adversarial Network" (Zhao, Mathieu,
//! LeCun, ICLR 2017) from TOML files. The modules follow the data flow:
//!
//! ```text
//! family     each family in one file: its settings, D, per-step state, log columns, label
//!            (beneath everything: config, train and report all ask it)
//! experiments/X.toml
//!   -> config   Experiment, RunConfig + defaults, grid expansion, validation, shards
//!   -> run      plan -> pending -> cohorts -> train -> commit; progress; workers
//!   -> train    one entry point for every family; the shared step; mlp / conv / ladder
//!   -> results  run folders, runs.csv rows (the commit point)
//!   -> report   figures and tables from results alone
//! beside them: data (MNIST, image sources, caches), scoring (the MNIST classifier), fid (FID and
//! KID with the FID-Inception network; fid_command: `ebgan fid`),
//! cluster (Slurm), bench, gpu_check (the checks of a GPU session), parity (our steps against PyTorch references), png (image sheets), device, fsutil,
//! stats (order statistics, which trainers' logs and reports share)
//! ```
//! A module imports only modules below it in this list (or beside it), never one above.

pub mod bench;
pub mod child;
pub mod cluster;
pub mod config;
pub mod data;
pub mod device;
pub mod family;
pub mod fid;
pub mod fid_command;
pub mod fsutil;
pub mod gpu_check;
pub mod parity;
pub mod png;
pub mod precision;
pub mod report;
pub mod results;
pub mod run;
pub mod scoring;
pub mod stats;
pub mod train;
