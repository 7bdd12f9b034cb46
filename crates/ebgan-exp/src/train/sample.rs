//! `ebgan sample` and `ebgan interpolate`: pictures from a convolutional run's checkpoint (and
//! the loader `ebgan fid` samples runs through, fid_command.rs).

use super::checkpoint;
use super::conv::{self, interpolations, ConvGan, Latent};
use crate::config::RunConfig;
use crate::device;
use crate::png::{image_grid, save_rgb_png};
use anyhow::{Context, Result};
use ebgan_models::rng::{stream as stream_rng, Stream};
use std::path::{Path, PathBuf};
use tch::Device;

/// What both picture commands take: the checkpoint, the noise seed, the PNG, the device.
#[derive(clap::Args)]
pub struct Picture {
    checkpoint: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
}

/// A grid of samples from a convolutional run's checkpoint.
#[derive(clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    picture: Picture,
    #[arg(long, default_value_t = 64)]
    n: i64,
}

/// Latent interpolations from a convolutional run's checkpoint: each row walks linearly
/// between two random latents.
#[derive(clap::Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    picture: Picture,
    #[arg(long, default_value_t = 8)]
    rows: i64,
    #[arg(long, default_value_t = 10)]
    steps: i64,
}

impl SampleArgs {
    pub fn run(&self) -> Result<()> {
        let p = &self.picture;
        sample(
            &p.checkpoint,
            self.n,
            p.seed,
            &p.out,
            device::parse(&p.device)?,
        )?;
        eprintln!("wrote {}", p.out.display());
        Ok(())
    }
}

impl InterpolateArgs {
    pub fn run(&self) -> Result<()> {
        let p = &self.picture;
        let device = device::parse(&p.device)?;
        interpolate(&p.checkpoint, self.rows, self.steps, p.seed, &p.out, device)?;
        eprintln!("wrote {}", p.out.display());
        Ok(())
    }
}

/// The generator of a checkpoint, for `ebgan sample` and `ebgan interpolate`.
pub fn from_checkpoint(path: &Path, device: Device) -> Result<(ConvGan, RunConfig)> {
    let ck = checkpoint::load(path)?;
    let meta = conv_meta(&ck)?;
    let gan = ConvGan::new(&meta.config, meta.channels, device);
    ck.restore("g", &gan.g_vs.variables())?;
    Ok((gan, meta.config))
}

/// A convolutional run's config and data shape from its checkpoint's header (or, in one
/// written before the header, its own entries).
fn conv_meta(ck: &checkpoint::Loaded) -> Result<conv::Meta> {
    let unreadable = || {
        format!(
            "checkpoint {}: not a convolutional run's",
            ck.path.display()
        )
    };
    if let Some(meta) =
        super::train_loop::trainer_meta::<conv::Meta>(ck).with_context(unreadable)?
    {
        return Ok(meta);
    }
    Ok(conv::Meta {
        config: serde_json::from_str(ck.meta("config")?).with_context(unreadable)?,
        channels: ck.meta("channels")?.parse().with_context(unreadable)?,
        images: 0,
    })
}

/// `ebgan sample`: `n` samples of a checkpoint's G as a PNG grid.
pub fn sample(path: &Path, n: i64, seed: u64, out: &Path, device: Device) -> Result<()> {
    anyhow::ensure!(n >= 1, "--n {n}: expected at least 1 sample");
    let (gan, _) = from_checkpoint(path, device)?;
    let latent = Latent::draw(
        &gan.spec,
        n,
        &mut stream_rng(seed, Stream::Sample, 3),
        device,
    );
    let cols = (n as f64).sqrt().ceil() as u32;
    save_rgb_png(&image_grid(&gan.generate(&latent), cols), out)
}

/// `ebgan interpolate`: `rows` latent interpolations of `cols` images each.
pub fn interpolate(
    path: &Path,
    rows: i64,
    cols: i64,
    seed: u64,
    out: &Path,
    device: Device,
) -> Result<()> {
    anyhow::ensure!(
        rows >= 1 && cols >= 2,
        "--rows {rows} --steps {cols}: expected at least 1 row of at least 2 steps"
    );
    let (gan, _) = from_checkpoint(path, device)?;
    let grid = interpolations(&gan, rows, cols, &mut stream_rng(seed, Stream::Sample, 4));
    save_rgb_png(&image_grid(&grid, cols as u32), out)
}
