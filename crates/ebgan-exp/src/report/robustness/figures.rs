//! budget.png and ecdf.png: the figures of [`super`]'s robustness measures.

use super::{ecdf_path, family_groups, gan_setting_groups, Group, DIVERGED_I_PRIME};
use crate::config::Family;
use crate::report::figures::{draw_png, err, family_color, I_MAX};
use crate::results::RunRecord;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Colours for series drawn apart from `taken`: a tab20-like palette, skipping those taken.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// `count` colours, none in `taken` while the palette lasts.
fn fresh_colors(taken: &[RGBColor], count: usize) -> Vec<RGBColor> {
    let free: Vec<RGBColor> = PALETTE
        .iter()
        .copied()
        .filter(|c| !taken.contains(c))
        .collect();
    (0..count).map(|i| free[i % free.len()]).collect()
}

/// Each family's figure colour (distinct by construction: `Family::color`).
fn family_colors(families: &[Family]) -> Vec<RGBColor> {
    families.iter().map(|f| family_color(*f)).collect()
}

/// A figure series: legend label, colour, line width, points.
type Series = (String, RGBColor, u32, Vec<(f64, f64)>);

/// A legend in a column of its own beside a chart, so that it never hides a curve.
fn legend_column<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, series: &[Series]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (i, (label, color, width, _)) in series.iter().enumerate() {
        let y = 50 + 18 * i as i32;
        area.draw(&PathElement::new(
            vec![(4, y), (28, y)],
            color.stroke_width(*width),
        ))
        .map_err(err)?;
        area.draw(&Text::new(
            label.clone(),
            (34, y - 7),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A chart's axes: labels, x range (log or linear), y from 0 to `y_max`, and whether each
/// curve ends in a dot (at k = n on budget.png: a one-run group is a point).
struct Axes<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    x: (f64, f64),
    log_x: bool,
    y_max: f64,
    end_dots: bool,
}

/// A chart of `series` with a legend to its right.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    axes: &Axes,
    series: &[Series],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (plot, legend) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 250);
    let mut b = ChartBuilder::on(&plot);
    b.caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(35)
        .y_label_area_size(45);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart.map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(axes.x_desc)
                .y_desc(axes.y_desc)
                .x_label_formatter(&|v| {
                    if axes.log_x {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.1}")
                    }
                })
                .light_line_style(RGBColor(240, 240, 240))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(err)?;
            for (_, color, width, pts) in series {
                let style = color.stroke_width(*width);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))
                    .map_err(err)?;
                if axes.end_dots {
                    let end = *pts.last().unwrap();
                    let dot = Circle::new(end, *width + 1, color.filled());
                    chart.draw_series(std::iter::once(dot)).map_err(err)?;
                }
            }
        }};
    }
    let (x0, x1) = axes.x;
    if axes.log_x {
        draw!(b.build_cartesian_2d((x0..x1).log_scale(), 0.0..axes.y_max));
    } else {
        draw!(b.build_cartesian_2d(x0..x1, 0.0..axes.y_max));
    }
    legend_column(&legend, series)
}

/// budget.png: expected best I' of k runs against k, per family, and (second panel) per GAN
/// optimiser setting beside the families.
pub fn budget_figure(rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let fams = family_groups(rows);
    if fams.is_empty() {
        return Ok(None);
    }
    let colors = family_colors(&fams.iter().map(|f| f.0).collect::<Vec<_>>());
    let curve = |g: &Group| -> Vec<(f64, f64)> {
        g.budget_curve()
            .into_iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, e))
            .collect()
    };
    let family_series: Vec<Series> = fams
        .iter()
        .zip(&colors)
        .map(|((f, g), c)| {
            (
                format!("{} (n = {})", f.as_str().to_uppercase(), g.n()),
                *c,
                4,
                curve(g),
            )
        })
        .collect();
    let settings = gan_setting_groups(rows);
    let setting_series: Vec<Series> = settings
        .iter()
        .zip(fresh_colors(&colors, settings.len()))
        .map(|(g, c)| (format!("GAN {} (n = {})", g.label, g.n()), c, 2, curve(g)))
        .collect();
    let n_max = fams.iter().map(|f| f.1.n()).max().unwrap_or(1).max(2) as f64;
    let axes = Axes {
        x_desc: "k: runs drawn (log scale)",
        y_desc: "expected best I'",
        x: (1.0, n_max),
        log_x: true,
        y_max: I_MAX,
        end_dots: true,
    };
    let width = if settings.is_empty() { 850 } else { 1700 };
    draw_png(out, (width, 560), |root| {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&format!("Expected best I' of k runs drawn at random without replacement (diverged runs count, at I' = {DIVERGED_I_PRIME})"), ("sans-serif", 17)).map_err(err)?;
        if settings.is_empty() {
            return panel(&root, "per family", &axes, &family_series);
        }
        let halves = root.split_evenly((1, 2));
        panel(&halves[0], "(a) per family", &axes, &family_series)?;
        let both: Vec<Series> = family_series
            .iter()
            .chain(&setting_series)
            .cloned()
            .collect();
        panel(
            &halves[1],
            "(b) GAN per optimiser setting (thin), families (thick)",
            &axes,
            &both,
        )
    })?;
    Ok(Some(out.to_path_buf()))
}

/// ecdf.png: each family's empirical CDF of I' over all its runs, diverged runs at
/// [`DIVERGED_I_PRIME`] (so a curve starts at its diverged share).
pub fn ecdf_figure(rows: &[RunRecord], out: &Path) -> Result<Option<PathBuf>> {
    let fams = family_groups(rows);
    if fams.is_empty() {
        return Ok(None);
    }
    let colors = family_colors(&fams.iter().map(|f| f.0).collect::<Vec<_>>());
    let series: Vec<Series> = fams
        .iter()
        .zip(&colors)
        .map(|((f, g), c)| {
            let label = format!(
                "{}: {} runs, {} diverged",
                f.as_str().to_uppercase(),
                g.n(),
                g.diverged
            );
            (label, *c, 3, ecdf_path(&g.scores, DIVERGED_I_PRIME, I_MAX))
        })
        .collect();
    draw_png(out, (1000, 560), |root| {
        root.fill(&WHITE).map_err(err)?;
        let title = format!("Empirical CDF of I' per family (diverged runs at I' = {DIVERGED_I_PRIME}: a curve starts at their share)");
        let root = root.titled(&title, ("sans-serif", 16)).map_err(err)?;
        let axes = Axes {
            x_desc: "I'",
            y_desc: "share of runs with I' <= x",
            x: (DIVERGED_I_PRIME, I_MAX),
            log_x: false,
            y_max: 1.0,
            end_dots: false,
        };
        panel(&root, "", &axes, &series)
    })?;
    Ok(Some(out.to_path_buf()))
}
