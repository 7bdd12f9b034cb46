//! Datasets on disk: MNIST (IDX files), and image datasets from a source (files or LMDB)
//! through a uint8 cache onto the training device.

pub mod cache;
pub mod image_set;
pub mod imagenet;
pub mod lsun;
pub mod mnist;
pub mod source;
pub mod webp;

use std::path::PathBuf;

/// Where datasets and the scoring classifier live: `--data`, else $EBGAN_DATA, else ./data.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("EBGAN_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}
