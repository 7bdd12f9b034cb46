//! `ebgan report`: figures and tables from a results folder alone (runs*.csv, run folders,
//! classifier.json); never trains.

mod epochs;
pub mod figures;
mod gan_setting;
pub mod html;
mod robustness;
mod summary;
mod table2;
pub mod verdict;

use crate::config::{Experiment, Family};
use crate::results::{LossLog, Status};
use crate::results::{ResultsDir, RunRecord};
use crate::scoring::ClassifierInfo;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The comparison families in the order the paper shows them.
pub const FAMILIES: [Family; 6] = Family::GENERATIVE;

/// `ebgan report`: redraw a results folder's figures and tables from its results alone.
#[derive(clap::Args)]
pub struct ReportArgs {
    dir: std::path::PathBuf,
}

impl ReportArgs {
    pub fn run(&self) -> Result<()> {
        write(&self.dir)?;
        eprintln!("report: {}", self.dir.join("summary.md").display());
        Ok(())
    }
}

/// Every figure and table of the results folder `dir`.
pub fn write(dir: &Path) -> Result<()> {
    let res = ResultsDir::new(dir.to_path_buf());
    if res.csv_files()?.is_empty() {
        bail!("{}: no runs*.csv here: not a results folder of `ebgan run`, or no run has finished yet", dir.display());
    }
    // Rows of runs the experiment file no longer plans (an edited grid) stay in runs.csv but out
    // of the figures.
    let mut rows = res.rows()?;
    let mut stale = 0;
    if let Ok(exp) = Experiment::load(&dir.join("experiment.toml")) {
        let planned: std::collections::HashSet<String> =
            exp.runs.into_iter().map(|r| r.id).collect();
        let before = rows.len();
        rows.retain(|r| planned.contains(&r.run_id));
        stale = before - rows.len();
    }
    let classifier: Option<ClassifierInfo> = std::fs::read_to_string(dir.join("classifier.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    figures::register_font();
    let mut made = vec![];
    // Table 1 figures are of the MLP grid; convolutional runs get their own sheet and table.
    let mlp: Vec<RunRecord> = rows
        .iter()
        .filter(|r| !r.config.network.is_conv())
        .cloned()
        .collect();
    made.extend(figures::figure2(&mlp, &dir.join("fig2.png"))?);
    made.extend(figures::figure3(&mlp, &dir.join("fig3.png"))?);
    // Robustness to hyper-parameters: every run scored by I', whatever its network.
    made.extend(robustness::budget_figure(&rows, &dir.join("budget.png"))?);
    made.extend(robustness::ecdf_figure(&rows, &dir.join("ecdf.png"))?);
    made.extend(figures::best_samples(&res, &mlp, &dir.join("fig4.png"))?);
    made.extend(figures::margin_sweep(&res, &mlp, &dir.join("fig9.png"))?);
    made.extend(figures::conv_side_by_side(
        &res,
        &rows,
        &dir.join("samples-side-by-side.png"),
    )?);
    // Latent interpolations of the runs that sheet shows.
    let conv: Vec<RunRecord> = rows
        .iter()
        .filter(|r| r.config.network.is_conv())
        .cloned()
        .collect();
    for family in FAMILIES {
        if let Some(r) = representative(&conv, family) {
            let from = res.run_dir(&r.run_id).join("interpolations.png");
            let to = dir.join(format!("interpolations-{family}.png"));
            if from.is_file() {
                crate::fsutil::write_atomic(&to, &std::fs::read(&from)?)?;
                made.push(to);
            }
        }
    }
    for family in FAMILIES {
        if let Some(best) = representative(&rows, family) {
            if let Ok(log) = res.read_losses(&best.run_id) {
                made.extend(figures::loss_curves(
                    &log,
                    &best.run_id,
                    &dir.join(format!("curves-{family}.png")),
                )?);
            }
        }
    }
    let ladder_epochs = epochs::gather(&res, &rows)?;
    if !ladder_epochs.is_empty() {
        epochs::write_all(
            &dir.join(crate::train::ladder::epochs::EPOCHS),
            &ladder_epochs,
        )?;
    }
    if let Some(t) = table2::table2(
        &rows,
        &dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        &ladder_epochs,
    ) {
        crate::fsutil::write_atomic(&dir.join("table2.md"), t.as_bytes())?;
        made.extend(epochs::figure(&ladder_epochs, &dir.join("epochs.png"))?);
        if let Some(best) = best_ladder_samples(&res, &rows, &dir.join("samples-ebgan-ln.png"))? {
            made.push(best);
        }
    }
    let kept = kept_figures(dir, &made)?;
    summary::write(dir, &rows, stale, classifier.as_ref(), &made, &kept)?;
    made.extend(kept);
    browser(dir, &res, &rows, &made)
}

/// The figures of `dir` this report did not draw (their per-run files, samples or losses, are
/// not in the folder, e.g. a committed reference whose run folders are not committed): kept as
/// they are, and named as kept in the summary rather than dropped from it.
fn kept_figures(dir: &Path, made: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut kept = figures_in(dir)?;
    kept.retain(|p| !made.contains(p));
    Ok(kept)
}

/// The figures (PNGs) at the top of results folder `dir`, sorted.
fn figures_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut figures: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    figures.sort();
    Ok(figures)
}

/// The results browser: a page for every run whose folder is here, then the folder's index.
fn browser(dir: &Path, res: &ResultsDir, rows: &[RunRecord], figures: &[PathBuf]) -> Result<()> {
    for r in rows {
        if let Ok(log) = res.read_losses(&r.run_id) {
            html::write_run_page(res, r, &log)?;
        }
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
    html::write_index(dir, &name.unwrap_or_default(), rows, figures)?;
    Ok(())
}

/// A committed run's own figures and page: a convolutional run's curves.png (MLP runs have
/// their family's best in curves-<family>.png), then its page in the results browser.
pub fn run_figures(res: &ResultsDir, record: &RunRecord, log: &[LossLog]) -> Result<()> {
    if record.config.network.is_conv() {
        let out = res.run_dir(&record.run_id).join("curves.png");
        figures::loss_curves(log, &record.run_id, &out)?;
    }
    html::write_run_page(res, record, log)?;
    Ok(())
}

/// Redraws only the results browser's index over every row committed so far (a grid in
/// progress; its figures are those the folder has).
pub fn refresh_index(dir: &Path) -> Result<()> {
    let res = ResultsDir::new(dir.to_path_buf());
    let rows = res.rows()?;
    let figures = figures_in(dir)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
    html::write_index(dir, &name.unwrap_or_default(), &rows, &figures)?;
    Ok(())
}

/// EBGAN-LN's generated samples: the run with the lowest test error.
fn best_ladder_samples(
    res: &ResultsDir,
    rows: &[RunRecord],
    out: &Path,
) -> Result<Option<std::path::PathBuf>> {
    let best = rows
        .iter()
        .filter(|r| r.family == Family::EbganLn && r.test_error.is_some())
        .min_by(|a, b| a.test_error.partial_cmp(&b.test_error).unwrap());
    match best {
        Some(r) if res.run_dir(&r.run_id).join("samples.png").is_file() => {
            let sheet = std::fs::read(res.run_dir(&r.run_id).join("samples.png"))?;
            crate::fsutil::write_atomic(out, &sheet)?;
            Ok(Some(out.to_path_buf()))
        }
        _ => Ok(None),
    }
}

/// The distinct margins of the EBGAN rows, ascending.
pub fn ebgan_margins(rows: &[RunRecord]) -> Vec<f64> {
    let mut m: Vec<f64> = rows
        .iter()
        .filter(|r| r.config.model == crate::config::Model::Ebgan)
        .map(|r| r.config.margin)
        .collect();
    m.sort_by(|a, b| a.partial_cmp(b).unwrap());
    m.dedup();
    m
}

/// Finished rows, their I' values.
pub fn i_primes<'a>(rows: impl IntoIterator<Item = &'a RunRecord>) -> Vec<f64> {
    rows.into_iter().filter_map(|r| r.i_prime).collect()
}

/// Every scored or diverged row: its I', or None where the run diverged (the paper's "% of
/// runs" counts those too). Finished rows without a score (unscored data) are left out.
pub fn outcomes<'a>(rows: impl IntoIterator<Item = &'a RunRecord>) -> Vec<Option<f64>> {
    rows.into_iter()
        .filter(|r| is_outcome(r))
        .map(|r| r.i_prime)
        .collect()
}

/// Whether a row enters [`outcomes`]: scored, or diverged.
pub fn is_outcome(r: &RunRecord) -> bool {
    r.i_prime.is_some() || r.status == Status::Diverged
}

/// The run shown for a family: the best by I', or (unscored image sets) the first finished.
pub fn representative(rows: &[RunRecord], family: Family) -> Option<&RunRecord> {
    best_of(rows, |r| r.family == family).or_else(|| {
        rows.iter()
            .find(|r| r.family == family && r.status == Status::Finished)
    })
}

/// The finished row with the highest I' among those matching `keep`.
pub fn best_of(rows: &[RunRecord], keep: impl Fn(&RunRecord) -> bool) -> Option<&RunRecord> {
    rows.iter()
        .filter(|r| keep(r) && r.i_prime.is_some())
        .max_by(|a, b| a.i_prime.partial_cmp(&b.i_prime).unwrap())
}

/// A score to 3 decimals; "-" where it is not finite.
pub fn fmt3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "-".into()
    }
}

pub use crate::stats::quantile;

/// Percent of `values` in each of `bins` equal-width bins over [lo, hi); values at or past hi
/// go to the last bin.
pub fn histogram_percent(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    for &v in values {
        let i = (((v - lo) / (hi - lo)) * bins as f64)
            .floor()
            .clamp(0.0, (bins - 1) as f64) as usize;
        counts[i] += 1;
    }
    counts
        .iter()
        .map(|&c| {
            if values.is_empty() {
                0.0
            } else {
                100.0 * c as f64 / values.len() as f64
            }
        })
        .collect()
}

/// Percent of ALL runs in each I' bin (see [`histogram_percent`]) and percent diverged (None).
pub fn shares_of_runs(runs: &[Option<f64>], lo: f64, hi: f64, bins: usize) -> (Vec<f64>, f64) {
    let scored: Vec<f64> = runs.iter().flatten().copied().collect();
    let total = runs.len().max(1) as f64;
    let of_scored = scored.len() as f64 / total;
    let shares = histogram_percent(&scored, lo, hi, bins)
        .into_iter()
        .map(|p| p * of_scored)
        .collect();
    (shares, 100.0 * (runs.len() - scored.len()) as f64 / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_a_report_did_not_draw_are_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["fig2.png", "fig4.png", "curves-gan.png", "summary.md"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let kept = kept_figures(dir.path(), &[dir.path().join("fig2.png")]).unwrap();
        let names: Vec<_> = kept
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["curves-gan.png", "fig4.png"]);
    }

    #[test]
    fn diverged_runs_count_in_the_denominator() {
        // 4 runs, 1 diverged: the 3 scored ones are 25% each, not 33%.
        let (bins, diverged) =
            shares_of_runs(&[Some(0.1), None, Some(0.6), Some(0.9)], 0.0, 2.0, 4);
        assert_eq!(bins, [25.0, 50.0, 0.0, 0.0]);
        assert_eq!(diverged, 25.0);
        assert_eq!(shares_of_runs(&[], 0.0, 1.0, 2), (vec![0.0, 0.0], 0.0));
    }

    #[test]
    fn quantiles_by_hand() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.75), 3.25);
    }

    #[test]
    fn histogram_shares_by_hand() {
        // 4 values over [0, 2) in 4 bins: 0.1 -> bin 0, 0.6 and 0.9 -> bin 1, 2.7 -> last bin.
        let h = histogram_percent(&[0.1, 0.6, 0.9, 2.7], 0.0, 2.0, 4);
        assert_eq!(h, [25.0, 50.0, 0.0, 25.0]);
    }
}
