//! The semi-supervised runs epoch by epoch. Every ladder run's epochs.csv is gathered into the
//! folder's own `epochs.csv` (a `run_id` column, then the run's rows), which is committed beside
//! runs.csv and read back for runs whose folders are absent (a reference in a fresh clone).
//! `epochs.png` draws them: test (and validation) error, the real and fake energies' medians
//! with the margin, and the share of G's samples inside the margin, one line per run, LN grey
//! and EBGAN-LN pink.

use super::figures::{draw_png, err};
use crate::results::{ResultsDir, RunRecord};
use crate::train::ladder::epochs::{self, EpochRow, EPOCHS};
use anyhow::{anyhow, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A ladder run's rows, in the order of `rows`.
pub type RunEpochs<'a> = (&'a RunRecord, Vec<EpochRow>);

/// Every ladder run's epochs.csv rows: from its folder where it has one, else from the folder's
/// gathered epochs.csv. Runs with neither are left out.
pub fn gather<'a>(res: &ResultsDir, rows: &'a [RunRecord]) -> Result<Vec<RunEpochs<'a>>> {
    let gathered = res.root.join(EPOCHS);
    let mut committed = match gathered.is_file() {
        true => read_all(&gathered)?,
        false => BTreeMap::new(),
    };
    Ok(rows
        .iter()
        .filter(|r| r.config.model.is_ladder())
        .filter_map(|r| {
            let own = epochs::read(&res.run_dir(&r.run_id)).ok();
            Some((r, own.or_else(|| committed.remove(&r.run_id))?))
        })
        .filter(|(_, e)| !e.is_empty())
        .collect())
}

/// Writes `runs` as one CSV at `path`: `run_id`, then the columns of a run's epochs.csv.
pub fn write_all(path: &Path, runs: &[RunEpochs]) -> Result<()> {
    // The rows through the run's own serializer, then each record prefixed with its run id.
    let mut rows = csv::Writer::from_writer(vec![]);
    let mut ids = vec![];
    for (r, epochs) in runs {
        for e in epochs {
            rows.serialize(e)?;
            ids.push(r.run_id.as_str());
        }
    }
    let rows = rows.into_inner()?;
    let mut rows = csv::Reader::from_reader(rows.as_slice());
    let mut out = csv::Writer::from_writer(vec![]);
    out.write_record(std::iter::once("run_id").chain(rows.headers()?.iter()))?;
    for (record, id) in rows.records().zip(ids) {
        out.write_record(std::iter::once(id).chain(record?.iter()))?;
    }
    crate::fsutil::write_atomic(path, &out.into_inner()?)
}

/// Reads a gathered epochs.csv: each run id's rows, in file order.
pub fn read_all(path: &Path) -> Result<BTreeMap<String, Vec<EpochRow>>> {
    let at = |line: usize| format!("{} line {line}", path.display());
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r.headers().with_context(|| at(1))?.clone();
    if headers.get(0) != Some("run_id") {
        return Err(anyhow!("{}: the first column is not `run_id`", at(1)));
    }
    let columns: csv::StringRecord = headers.iter().skip(1).collect();
    let mut runs: BTreeMap<String, Vec<EpochRow>> = BTreeMap::new();
    for (i, record) in r.records().enumerate() {
        let record = record.with_context(|| at(i + 2))?;
        let row: csv::StringRecord = record.iter().skip(1).collect();
        let row: EpochRow = row
            .deserialize(Some(&columns))
            .map_err(|e| anyhow!("{}: {e}", at(i + 2)))?;
        runs.entry(record[0].to_string()).or_default().push(row);
    }
    Ok(runs)
}

/// A panel: its title, its top (None: the data's), and the series of a run's rows it draws.
type Panel = (&'static str, Option<f64>, Vec<fn(&EpochRow) -> Option<f64>>);

/// The figure, or None when no run here has epochs.
pub fn figure(runs: &[RunEpochs], out: &Path) -> Result<Option<PathBuf>> {
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
            for (r, rows) in runs {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Model, RunConfig};
    use crate::results::{ResultColumns, Status};

    fn record(model: Model, seed: u64) -> RunRecord {
        let config = RunConfig {
            model,
            seed,
            ..Default::default()
        };
        let result = ResultColumns::new(config.run_id(), config.family(), Status::Finished);
        RunRecord { result, config }
    }

    pub(crate) fn epoch(epoch: usize, error: f64, hinge: Option<f64>) -> EpochRow {
        EpochRow {
            epoch,
            step: 10 * epoch as u64,
            test_error: error + 0.5,
            validation_error: Some(error),
            margin: hinge.map(|_| 0.01),
            real_q10: 0.1,
            real_median: 0.2,
            real_q90: 0.3,
            real_mean: 0.25,
            fake_q10: hinge.map(|_| 0.05),
            fake_median: hinge.map(|_| 0.06),
            fake_q90: hinge.map(|_| 0.07),
            fake_mean: hinge.map(|_| 0.065),
            hinge_active: hinge,
        }
    }

    #[test]
    fn the_gathered_file_reads_back_and_stands_in_for_absent_run_folders() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [record(Model::Ladder, 0), record(Model::EbganLn, 0)];
        let ln = vec![epoch(1, 9.0, None), epoch(2, 7.5, None)];
        let eb = vec![epoch(1, 12.0, Some(0.04)), epoch(2, 8.25, Some(0.0))];
        let path = dir.path().join(EPOCHS);
        write_all(&path, &[(&rows[0], ln.clone()), (&rows[1], eb.clone())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("run_id,epoch,step,test_error,validation_error,margin,"));
        let back = read_all(&path).unwrap();
        assert_eq!((&back[&rows[0].run_id], &back[&rows[1].run_id]), (&ln, &eb));
        // LN's folder has its own epochs.csv (it wins); EBGAN-LN's folder is absent.
        let own = dir.path().join(&rows[0].run_id);
        std::fs::create_dir(&own).unwrap();
        let mut w = csv::Writer::from_path(own.join(EPOCHS)).unwrap();
        w.serialize(epoch(1, 1.0, None)).unwrap();
        drop(w);
        let res = ResultsDir::new(dir.path().to_path_buf());
        let got = gather(&res, &rows).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].1.len(), got[0].1[0].validation_error),
            (1, Some(1.0))
        );
        assert_eq!(got[1].1, eb);
    }

    #[test]
    fn a_bad_gathered_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EPOCHS);
        std::fs::write(&path, "epoch,step\n1,2\n").unwrap();
        let e = read_all(&path).unwrap_err().to_string();
        assert!(
            e.contains("epochs.csv line 1") && e.contains("run_id"),
            "{e}"
        );
        let rows = [record(Model::Ladder, 0)];
        write_all(
            &path,
            &[(&rows[0], vec![epoch(1, 9.0, None), epoch(2, 8.0, None)])],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(",2,20,", ",two,20,");
        std::fs::write(&path, text).unwrap();
        let e = format!("{:#}", read_all(&path).unwrap_err());
        assert!(e.contains("epochs.csv line 3"), "{e}");
    }
}
