//! The semi-supervised runs epoch by epoch (`epochs.png`), from each ladder run's epochs.csv:
//! test (and validation) error, the real and fake energies' medians with the margin, and the
//! share of G's samples inside the margin, one line per run, LN grey and EBGAN-LN pink.

use super::figures::{draw_png, err};
use crate::results::{ResultsDir, RunRecord};
use crate::train::ladder::epochs::{self, EpochRow};
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A panel: its title, its top (None: the data's), and the series of a run's rows it draws.
type Panel = (&'static str, Option<f64>, Vec<fn(&EpochRow) -> Option<f64>>);

/// The figure, or None when no run here has an epochs.csv.
pub fn figure(res: &ResultsDir, rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let runs: Vec<(&RunRecord, Vec<EpochRow>)> = rows
        .iter()
        .filter(|r| r.config.model.is_ladder())
        .filter_map(|r| Some((r, epochs::read(&res.run_dir(&r.run_id)).ok()?)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    if runs.is_empty() {
        return Ok(None);
    }
    let panels: [Panel; 3] = [
        (
            "test error % (solid), validation error % (dashed)",
            None,
            vec![|e| Some(e.test_error), |e| e.validation_error],
        ),
        (
            "energy medians: real (solid), fake (dashed); margin (dotted)",
            None,
            vec![|e| Some(e.real_median), |e| e.fake_median, |e| e.margin],
        ),
        (
            "share of G's samples inside the margin (the hinge acts)",
            Some(1.0),
            vec![|e| e.hinge_active],
        ),
    ];
    let x_max = runs
        .iter()
        .flat_map(|(_, e)| e.iter().map(|r| r.epoch))
        .max()
        .unwrap_or(1) as f64;
    draw_png(out, (1500, 420), |root| {
        root.fill(&WHITE).map_err(err)?;
        for (area, (title, top, series)) in root.split_evenly((1, 3)).iter().zip(panels) {
            let hi = runs
                .iter()
                .flat_map(|(_, e)| e.iter().flat_map(|r| series.iter().filter_map(|f| f(r))))
                .filter(|v| v.is_finite())
                .fold(f64::MIN, f64::max);
            if hi == f64::MIN {
                continue;
            }
            // From 0: errors, energies and shares are all >= 0, and the margin reaches 0.
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 13))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.5..x_max + 0.5, 0.0..top.unwrap_or(hi * 1.08).max(1e-9))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(err)?;
            for (r, rows) in &runs {
                draw_run(&mut chart, r, rows, &series)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(out.to_path_buf()))
}

/// One run's series in its family's colour: solid, dashed, then dotted.
fn draw_run<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    run: &RunRecord,
    rows: &[EpochRow],
    series: &[fn(&EpochRow) -> Option<f64>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (r, g, b) = run.family.color();
    let color = RGBColor(r, g, b);
    for (i, f) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|e| Some((e.epoch as f64, f(e)?)))
            .filter(|p| p.1.is_finite())
            .collect();
        let style = color.stroke_width(2);
        match i {
            0 => {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(err)?;
            }
            _ => {
                let (dash, gap) = if i == 1 { (8, 5) } else { (2, 4) };
                chart
                    .draw_series(DashedLineSeries::new(points, dash, gap, style))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}
