//! Host transfers per step of each trainer, counted through the one training loop
//! (`ebgan bench` prints them): host-to-device uploads and device-to-host reads on an ordinary
//! step and at a log window's boundary. The counts are the code path's, the same on every
//! device (ebgan_core::transfers); sizes here are small, since only the counts are reported.

use crate::config::{Dataset, Model, Network, RunConfig};
use crate::data::image_set::ImageSet;
use crate::data::mnist::{Mnist, PIXELS};
use crate::scoring::Scorer;
use crate::train::stop::Stop;
use crate::train::{conv, ladder, mlp};
use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::time::Duration;
use tch::Device;

/// Each step's (uploads, reads), from the progress callback after every step.
#[derive(Default)]
struct PerStep {
    last: Option<ebgan_core::Transfers>,
    steps: Vec<(u64, u64, u64)>,
}

impl PerStep {
    fn after(&mut self, step: u64) {
        let now = ebgan_core::transfers();
        if let Some(last) = self.last {
            self.steps
                .push((step, now.uploads - last.uploads, now.reads - last.reads));
        }
        self.last = Some(now);
    }

    /// A table row: uploads and reads on ordinary steps (min-max), and at boundaries.
    fn row(&self, trainer: &str, per_epoch: u64) -> String {
        let (mut ordinary, mut boundary) = (vec![], vec![]);
        for &(step, up, read) in &self.steps {
            match step.is_multiple_of(per_epoch) || step.is_multiple_of(100) {
                true => boundary.push((up, read)),
                false => ordinary.push((up, read)),
            }
        }
        let span = |v: &[(u64, u64)], f: fn(&(u64, u64)) -> u64| {
            let (lo, hi) = (v.iter().map(f).min(), v.iter().map(f).max());
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
                (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
                _ => "-".into(),
            }
        };
        format!(
            "| {trainer} | {} | {} | {} | {} |",
            span(&ordinary, |t| t.0),
            span(&ordinary, |t| t.1),
            span(&boundary, |t| t.0),
            span(&boundary, |t| t.1),
        )
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

/// The markdown table of transfers per step for an MLP cohort (EBGAN, with and without
/// dropout), a 64x64-style convolutional run (EBGAN-PT, 16x16 here) and an EBGAN-LN run.
pub fn table(device: Device) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "Host transfers per step, counted through the training loop (10 steps an epoch; a log window closes at each epoch's end):\n")?;
    writeln!(out, "| trainer | uploads, ordinary step | reads, ordinary step | uploads, window boundary | reads, window boundary |")?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    let mut counts = PerStep::default();
    each_trainer(device, 2, &mut |trainer, step| match (trainer, step) {
        (Some(name), _) => {
            writeln!(out, "{}", counts.row(name, 10)).expect("a String takes writes");
            counts = PerStep::default();
        }
        (None, step) => counts.after(step),
    })?;
    Ok(out)
}

/// The three trainers of the benches, each trained `epochs` epochs of 10 steps from fresh on
/// `device`: an MLP cohort (K = 2, one member with dropout: Table 1), a 64x64-style
/// convolutional run (EBGAN-PT, 16x16 here) and an EBGAN-LN run. `after` sees (None, steps
/// done) after every step, and (Some(trainer), 0) after each trainer's last.
pub(crate) fn each_trainer(
    device: Device,
    epochs: usize,
    after: &mut dyn FnMut(Option<&str>, u64),
) -> Result<()> {
    let root = tempfile::tempdir()?;
    let stop = Stop::never();
    let members: Vec<RunConfig> = [(1, true), (2, false)]
        .map(|(seed, dropout_d)| RunConfig {
            n_layer_g: 2,
            size_g: 400,
            n_layer_d: 2,
            size_d: 128,
            dropout_d,
            train_images: 640,
            epochs,
            score_samples: 64,
            seed,
            ..Default::default()
        })
        .to_vec();
    let images = mlp::DeviceImages::new(&bytes(640 * PIXELS, 1), 640, device);
    let dirs: Vec<_> = (0..2)
        .map(|i| root.path().join(format!("mlp-{i}")))
        .collect();
    dirs.iter().try_for_each(std::fs::create_dir_all)?;
    let ids: Vec<String> = members.iter().map(RunConfig::run_id).collect();
    let run = mlp::CohortRun {
        members: &members,
        ids: &ids,
        dirs: &dirs,
        data: &images,
        scorer: &Scorer::untrained(device),
        stop: &stop,
        checkpoint_every: Duration::MAX,
    };
    mlp::train_cohort(&run, &mut |s, _| after(None, s))?;
    after(Some("MLP cohort, K = 2 (Table 1)"), 0);

    let c = RunConfig {
        model: Model::Ebgan,
        network: Network::Dcgan,
        image_size: 16,
        g_base: 4,
        ae_base: 4,
        d_base: 4,
        batch_size: 4,
        pulling_away: 0.1,
        epochs,
        sample_every: 1000,
        ..Default::default()
    };
    let data = ImageSet::from_bytes(
        &bytes(40 * 16 * 16 * 3, 2),
        40,
        16,
        3,
        Dataset::Celeba,
        device,
    );
    let dir = root.path().join("conv");
    let run = conv::ConvRun {
        config: &c,
        id: "conv",
        data: &data,
        dir: &dir,
        scorer: None,
        fid: None,
        stop: &stop,
        checkpoint_every: Duration::MAX,
    };
    conv::train_run(&run, device, &mut |s, _| after(None, s))?;
    after(Some("convolutional run (EBGAN-PT)"), 0);

    let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
    let mnist = Mnist {
        train_images: bytes(200 * PIXELS, 3),
        train_labels: labels.clone(),
        test_images: bytes(200 * PIXELS, 4),
        test_labels: labels,
    };
    let c = RunConfig {
        model: Model::EbganLn,
        labels: 20,
        batch_size: 20,
        train_images: 200,
        n_layer_g: 2,
        size_g: 64,
        epochs,
        ..Default::default()
    };
    let dir = root.path().join("ladder");
    std::fs::create_dir_all(&dir)?;
    let run = ladder::LadderRun {
        config: &c,
        id: "ladder",
        mnist: &mnist,
        dir: &dir,
        stop: &stop,
        checkpoint_every: Duration::MAX,
    };
    ladder::train_run(&run, device, &mut |s, _| after(None, s))?;
    after(Some("ladder run (EBGAN-LN)"), 0);
    Ok(())
}
