//! PNG figures with plotters: Figure 2 and 3 histograms, best samples (Figure 4), the margin
//! sweep (Figure 9) and loss curves.

use super::gan_setting::GanSetting;
use super::{best_of, i_primes, outcomes, shares_of_runs, FAMILIES};
use crate::config::{Family, Model};
use crate::results::LossLog;
use crate::results::{ResultsDir, RunRecord};
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

pub fn register_font() {
    // Embedded so figures render the same on machines without system fonts.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
}

/// I' axis: [0, 2.4) in bins of 0.1; ln 10 = 2.30 bounds I' for 10 classes. Diverged runs get
/// a bar of their own to the right of it.
pub(super) const I_MAX: f64 = 2.4;
const BINS: usize = 24;
const DIVERGED_AT: f64 = I_MAX + 0.1;
const X_MAX: f64 = DIVERGED_AT + 0.2;

/// A family's colour in every figure (its family file's; no two families share one).
pub(super) fn family_color(family: Family) -> RGBColor {
    let (r, g, b) = family.color();
    RGBColor(r, g, b)
}

/// Draws a `size` PNG in memory, then writes it atomically: a killed report never leaves a
/// partial figure behind.
pub(super) fn draw_png(
    out: &Path,
    size: (u32, u32),
    draw: impl for<'b> FnOnce(&DrawingArea<BitMapBackend<'b>, Shift>) -> Result<()>,
) -> Result<()> {
    draw_png_over(image::RgbImage::new(size.0, size.1), out, draw)
}

/// [`draw_png`] on top of `canvas`.
fn draw_png_over(
    canvas: image::RgbImage,
    out: &Path,
    draw: impl for<'b> FnOnce(&DrawingArea<BitMapBackend<'b>, Shift>) -> Result<()>,
) -> Result<()> {
    let size = canvas.dimensions();
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf).expect("buffer size is w * h * 3");
    crate::png::save_rgb_png(&img, out)
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// One histogram panel: percent of ALL of a family's runs per I' bin, one bar per family side
/// by side in each bin, and the percent that diverged (`None`) as a bar of its own.
fn histogram_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(String, RGBColor, Vec<Option<f64>>)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // (bin shares, diverged share), both in % of the family's runs.
    let shares: Vec<(Vec<f64>, f64)> = series
        .iter()
        .map(|(_, _, v)| shares_of_runs(v, 0.0, I_MAX, BINS))
        .collect();
    let top = shares
        .iter()
        .flat_map(|(b, d)| b.iter().chain(std::iter::once(d)))
        .cloned()
        .fold(10.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..X_MAX, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("I'  (right: diverged)")
        .y_desc("% of runs")
        .x_label_formatter(&|x| {
            if *x > I_MAX {
                String::new()
            } else {
                format!("{x:.1}")
            }
        })
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    let width = I_MAX / BINS as f64;
    let bar = width / series.len().max(1) as f64;
    for (s, ((name, color, values), (bins, diverged))) in series.iter().zip(&shares).enumerate() {
        let div_x = DIVERGED_AT + s as f64 * bar;
        let bars = bins
            .iter()
            .enumerate()
            .map(|(i, &p)| (i as f64 * width + s as f64 * bar, p))
            .chain(std::iter::once((div_x, *diverged)));
        let n_div = values.iter().filter(|v| v.is_none()).count();
        chart
            .draw_series(
                bars.map(|(x0, p)| {
                    Rectangle::new([(x0, 0.0), (x0 + bar * 0.9, p)], color.filled())
                }),
            )
            .map_err(err)?
            .label(format!("{name} ({} runs, {n_div} diverged)", values.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(Text::new(
            "div.",
            (DIVERGED_AT, top * 0.97),
            ("sans-serif", 12),
        )))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn family_series<'a>(
    rows: impl Iterator<Item = &'a RunRecord> + Clone,
) -> Vec<(String, RGBColor, Vec<Option<f64>>)> {
    FAMILIES
        .iter()
        .filter_map(|f| {
            let v = outcomes(rows.clone().filter(|r| r.family == *f));
            (!v.is_empty()).then(|| (f.as_str().to_uppercase(), family_color(*f), v))
        })
        .collect()
}

/// Figure 2: (a) all runs, (b) nLayerG <= 4 and nLayerD <= 4, (c) both <= 3.
pub fn figure2(rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    if i_primes(rows).is_empty() {
        return Ok(None);
    }
    draw_png(out, (1500, 450), |root| {
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((1, 3));
        let limits = [
            ("(a) all runs", usize::MAX),
            ("(b) nLayerG <= 4, nLayerD <= 4", 4),
            ("(c) nLayerG <= 3, nLayerD <= 3", 3),
        ];
        for (area, (title, max)) in panels.iter().zip(limits) {
            let keep = rows
                .iter()
                .filter(move |r| r.config.n_layer_g <= max && r.config.n_layer_d <= max);
            histogram_panel(area, title, &family_series(keep))?;
        }
        Ok(())
    })?;
    Ok(Some(out.to_path_buf()))
}

/// Figure 3: GAN runs split by (lr, optimD, optimG), each against all EBGAN runs.
pub fn figure3(rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let settings = GanSetting::distinct(
        rows.iter()
            .filter(|r| r.family == Family::Gan)
            .map(|r| &r.config),
    );
    let ebgan = outcomes(rows.iter().filter(|r| r.family == Family::Ebgan));
    if settings.len() < 2 || ebgan.is_empty() {
        return Ok(None);
    }
    let cols = 4.min(settings.len());
    let nrows = settings.len().div_ceil(cols);
    draw_png(out, (420 * cols as u32, 320 * nrows as u32), |root| {
        root.fill(&WHITE).map_err(err)?;
        for (area, setting) in root.split_evenly((nrows, cols)).iter().zip(&settings) {
            let gan = outcomes(
                rows.iter()
                    .filter(|r| r.family == Family::Gan && GanSetting::of(&r.config) == *setting),
            );
            let series = vec![
                ("GAN".to_string(), family_color(Family::Gan), gan),
                (
                    "EBGAN".to_string(),
                    family_color(Family::Ebgan),
                    ebgan.clone(),
                ),
            ];
            histogram_panel(area, &setting.to_string(), &series)?;
        }
        Ok(())
    })?;
    Ok(Some(out.to_path_buf()))
}

/// Side-by-side sample sheets with captions.
fn sheet_row(sheets: &[(String, PathBuf)], out: &Path) -> Result<Option<PathBuf>> {
    let images: Vec<(String, image::RgbImage)> = sheets
        .iter()
        .filter_map(|(caption, p)| image::open(p).ok().map(|i| (caption.clone(), i.to_rgb8())))
        .collect();
    if images.is_empty() {
        return Ok(None);
    }
    let caption_h = 40u32;
    let pad = 10u32;
    let w: u32 = images.iter().map(|(_, i)| i.width() + pad).sum::<u32>() + pad;
    let h = images.iter().map(|(_, i)| i.height()).max().unwrap() + caption_h + pad;
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let mut x = pad;
    let mut labels = vec![];
    for (caption, img) in &images {
        image::imageops::overlay(&mut canvas, img, x as i64, caption_h as i64);
        labels.push((caption.clone(), x));
        x += img.width() + pad;
    }
    draw_png_over(canvas, out, |root| {
        for (caption, x) in &labels {
            root.draw(&Text::new(
                caption.clone(),
                (*x as i32, 12),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Some(out.to_path_buf()))
}

/// Figure 4: samples of the best run of each family.
pub fn best_samples(res: &ResultsDir, rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let sheets: Vec<(String, PathBuf)> = FAMILIES
        .iter()
        .filter_map(|f| best_of(rows, |r| r.family == *f))
        .map(|r| {
            (
                format!(
                    "best {}: I' {:.2}",
                    r.family.as_str().to_uppercase(),
                    r.i_prime.unwrap()
                ),
                res.run_dir(&r.run_id).join("samples.png"),
            )
        })
        .collect();
    sheet_row(&sheets, out)
}

/// Paper Figures 5-8 style: final fixed-noise samples of DCGAN, EBGAN and EBGAN-PT side by side
/// (convolutional runs; one run per family, the best by I' where samples are scored).
pub fn conv_side_by_side(
    res: &ResultsDir,
    rows: &[RunRecord],
    out: &Path,
) -> Result<Option<PathBuf>> {
    let conv: Vec<RunRecord> = rows
        .iter()
        .filter(|r| r.config.network.is_conv())
        .cloned()
        .collect();
    let sheets: Vec<(String, PathBuf)> = FAMILIES
        .iter()
        .filter_map(|f| super::representative(&conv, *f))
        .map(|r| {
            let name = r.family.conv_label();
            let score = r
                .i_prime
                .map(|v| format!(", I' {v:.2}"))
                .unwrap_or_default();
            (
                format!("{name} ({}{score})", r.run_id),
                res.run_dir(&r.run_id).join("samples.png"),
            )
        })
        .collect();
    sheet_row(&sheets, out)
}

/// Figure 9: when EBGAN runs differ in margin, samples of the best run per margin.
pub fn margin_sweep(res: &ResultsDir, rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let margins = super::ebgan_margins(rows);
    if margins.len() < 2 {
        return Ok(None);
    }
    let sheets: Vec<(String, PathBuf)> = margins
        .iter()
        .map(|&m| {
            match best_of(rows, |r| {
                r.config.model == Model::Ebgan && r.config.margin == m
            }) {
                Some(r) => (
                    format!("m = {m}: I' {:.2}", r.i_prime.unwrap()),
                    res.run_dir(&r.run_id).join("samples.png"),
                ),
                None => (format!("m = {m}: diverged"), PathBuf::new()),
            }
        })
        .collect();
    sheet_row(&sheets, out)
}

/// Loss curves of one run's log: D and G loss, and real/fake energy (or D(x)) against the
/// margin.
pub fn loss_curves(rows: &[LossLog], title: &str, out: &Path) -> Result<Option<PathBuf>> {
    register_font(); // runs draw curves before (or without) any report
    if rows.is_empty() {
        return Ok(None);
    }
    // BEGAN's runs get a third panel, k_t and M_global; WGAN-GP's its gradient penalty.
    let began = rows.iter().any(|r| r.k_t.is_some());
    let wgan_gp = rows.iter().any(|r| r.gradient_penalty.is_some());
    let panes = if began || wgan_gp { 3 } else { 2 };
    draw_png(out, (500 * panes as u32, 400), |root| {
        root.fill(&WHITE).map_err(err)?;
        let halves = root.split_evenly((1, panes));
        let x_max = rows.iter().map(|r| r.epoch).fold(0.0, f64::max) * 1.02;
        // (title, [(loss-log field, label, colour)]).
        type Panel<'a> = (&'a str, Vec<(fn(&LossLog) -> f64, &'a str, RGBColor)>);
        let mut panels: Vec<Panel> = vec![
            (
                "losses",
                vec![
                    (|l| l.loss_d, "loss D", RGBColor(214, 39, 40)),
                    (|l| l.loss_g, "loss G", RGBColor(31, 119, 180)),
                ],
            ),
            (
                "real / fake (energy or D(x)) and margin",
                vec![
                    (|l| l.real, "real", RGBColor(44, 160, 44)),
                    (|l| l.fake, "fake", RGBColor(255, 127, 14)),
                    (
                        |l| l.margin.unwrap_or(f64::NAN),
                        "margin",
                        RGBColor(100, 100, 100),
                    ),
                ],
            ),
        ];
        if began {
            panels.push((
                "BEGAN's k_t and M_global",
                vec![
                    (
                        |l| l.k_t.unwrap_or(f64::NAN),
                        "k_t",
                        RGBColor(148, 103, 189),
                    ),
                    (
                        |l| l.m_global.unwrap_or(f64::NAN),
                        "M_global",
                        RGBColor(140, 86, 75),
                    ),
                ],
            ));
        }
        if wgan_gp {
            panels.push((
                "WGAN-GP's gradient penalty",
                vec![(
                    |l| l.gradient_penalty.unwrap_or(f64::NAN),
                    "(||grad D(x_hat)|| - 1)^2",
                    RGBColor(140, 86, 75),
                )],
            ));
        }
        for (area, (name, cols)) in halves.iter().zip(panels) {
            let vals: Vec<f64> = rows
                .iter()
                .flat_map(|r| cols.iter().map(move |(f, _, _)| f(r)))
                .filter(|v| v.is_finite())
                .collect();
            let (lo, hi) = vals
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let span = (hi - lo).max(1e-6);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{title}: {name}"), ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..x_max, (lo - 0.05 * span)..(hi + 0.05 * span))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(err)?;
            for (f, label, color) in cols {
                chart
                    .draw_series(LineSeries::new(
                        rows.iter()
                            .map(|r| (r.epoch, f(r)))
                            .filter(|p| p.1.is_finite()),
                        color.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Some(out.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn began_loss_curves_get_a_third_panel() {
        let row = |k_t: Option<f64>| LossLog {
            step: 100,
            epoch: 0.5,
            loss_d: 1.0,
            loss_g: 0.5,
            real: 1.0,
            fake: 0.4,
            margin: k_t.is_none().then_some(10.0),
            k_t,
            m_global: k_t.map(|_| 1.1),
            gradient_penalty: None,
        };
        let dir = tempfile::tempdir().unwrap();
        for (k_t, width) in [(None, 1000), (Some(0.01), 1500)] {
            let out = dir.path().join("curves.png");
            let rows = [
                row(k_t),
                LossLog {
                    step: 200,
                    epoch: 1.0,
                    ..row(k_t)
                },
            ];
            loss_curves(&rows, "run", &out).unwrap().unwrap();
            assert_eq!(image::open(&out).unwrap().width(), width, "k_t {k_t:?}");
        }
    }
}
