//! A ladder run's look at itself after every epoch (`epochs.csv` in its folder): test and
//! validation error, the energies of real images and, for EBGAN-LN, of G's samples (quantiles
//! and mean), and the share of those samples inside the margin, where the hinge acts. Its
//! corruption noise and G's noise come from the run's Sample stream (a sub-stream per epoch),
//! so looking changes nothing in training.

use super::data::{errors, LadderData};
use super::LadderNets;
use crate::stats::quantile;
use anyhow::Result;
use ebgan_models::rng::{MemberRng, Stream};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Kind, Tensor};

/// Real images and G samples whose energies an epoch's row summarises.
pub const SAMPLES: i64 = 1000;

/// One epoch's row of epochs.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub step: u64,
    /// In %, clean path under the training images' population statistics.
    #[serde(deserialize_with = "nan_if_null")]
    pub test_error: f64,
    pub validation_error: Option<f64>,
    /// The margin of the epoch's last step (EBGAN-LN's hinge; LN has none).
    pub margin: Option<f64>,
    // A diverged run's energies are NaN, which a checkpoint's JSON header holds as null.
    #[serde(deserialize_with = "nan_if_null")]
    pub real_q10: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub real_median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub real_q90: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub real_mean: f64,
    pub fake_q10: Option<f64>,
    pub fake_median: Option<f64>,
    pub fake_q90: Option<f64>,
    pub fake_mean: Option<f64>,
    /// Share of G's samples with energy below the margin (their hinge term is non-zero).
    pub hinge_active: Option<f64>,
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// (q10, median, q90, mean) of `v`.
fn summary(v: &[f64]) -> [f64; 4] {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    [
        quantile(&v, 0.1),
        quantile(&v, 0.5),
        quantile(&v, 0.9),
        mean,
    ]
}

/// The row of `epoch` (1-based), after `step` steps at margin `margin` (None: LN, which has no
/// hinge): one read from the device.
pub(super) fn measure(
    nets: &LadderNets,
    data: &LadderData,
    seed: u64,
    (epoch, step, margin): (usize, u64, Option<f64>),
) -> Result<EpochRow> {
    let device = data.train_x.device();
    let mut rng = MemberRng::new(&[seed], Stream::Sample, device);
    rng.at(epoch as u64);
    let n = SAMPLES.min(data.train_x.size()[0]);
    let (errors, energies) = tch::no_grad(|| {
        let mut e = vec![nets.net.energy(&data.train_x.narrow(0, 0, n), &mut rng)];
        if let Some(g) = &nets.generator {
            let x = g.forward(&rng.normal(&[SAMPLES, g.z_dim], 1.0));
            e.push(nets.net.energy(&x, &mut rng));
        }
        (errors(&nets.net, data), Tensor::cat(&e, 0))
    });
    let k = errors.size()[0] as usize;
    let all = ebgan_core::read::<f64>(&Tensor::cat(&[errors, energies.to_kind(Kind::Double)], 0))?;
    let errors = &all[..k];
    let (real, fake) = all[k..].split_at(n as usize);
    let [real_q10, real_median, real_q90, real_mean] = summary(real);
    let fake_summary = (!fake.is_empty()).then(|| summary(fake));
    let hinge_active = margin
        .filter(|_| !fake.is_empty())
        .map(|m| fake.iter().filter(|&&e| e < m).count() as f64 / fake.len() as f64);
    let f = |i: usize| fake_summary.map(|s| s[i]);
    Ok(EpochRow {
        epoch,
        step,
        test_error: errors[0],
        validation_error: errors.get(1).copied(),
        margin,
        real_q10,
        real_median,
        real_q90,
        real_mean,
        fake_q10: f(0),
        fake_median: f(1),
        fake_q90: f(2),
        fake_mean: f(3),
        hinge_active,
    })
}

/// Writes `rows` as `dir`/epochs.csv, whole and atomically (a resumed run writes them again).
pub(super) fn write(dir: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    crate::fsutil::write_atomic(&dir.join(EPOCHS), &w.into_inner()?)
}

/// Reads a run's epochs.csv (the report's curves).
pub fn read(dir: &Path) -> Result<Vec<EpochRow>> {
    let path = dir.join(EPOCHS);
    let mut r = csv::Reader::from_path(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| anyhow::anyhow!("{} row {}: {e}", path.display(), i + 2)))
        .collect()
}

pub const EPOCHS: &str = "epochs.csv";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diverged_runs_row_survives_a_checkpoints_json() {
        let row = EpochRow {
            epoch: 3,
            step: 30,
            test_error: f64::NAN,
            validation_error: None,
            margin: Some(0.01),
            real_q10: f64::NAN,
            real_median: f64::INFINITY,
            real_q90: 1.0,
            real_mean: f64::NAN,
            fake_q10: None,
            fake_median: None,
            fake_q90: None,
            fake_mean: None,
            hinge_active: Some(0.5),
        };
        let back: EpochRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.test_error.is_nan() && back.real_median.is_nan());
        assert_eq!(
            (back.real_q90, back.margin, back.step),
            (1.0, Some(0.01), 30)
        );
    }

    #[test]
    fn quantiles_and_mean_by_hand() {
        // 0..=10: q10 at position 1, the median at 5, q90 at 9; mean 5.
        let v: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(summary(&v), [1.0, 5.0, 9.0, 5.0]);
    }
}
