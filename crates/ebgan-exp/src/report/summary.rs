//! results/<experiment>/summary.md.

use super::gan_setting::GanSetting;
use super::{fmt3, i_primes, outcomes, quantile, shares_of_runs, FAMILIES};
use crate::config::{Family, Model};
use crate::fsutil::write_atomic;
use crate::results::{LossLog, Status};
use crate::results::{ResultsDir, RunRecord};
use crate::scoring::ClassifierInfo;
use anyhow::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// FID to 2 decimals; "-" where unknown.
fn fmt_fid(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

fn optim(k: ebgan_core::OptimKind) -> String {
    format!("{k:?}").to_lowercase()
}

/// A results folder's hand-written notes, appended to its summary.
pub const NOTES: &str = "notes.md";

/// results/<experiment>/summary.md: every table of the folder's rows, then its figures, then
/// the folder's notes.md if it has one.
pub fn write(
    dir: &Path,
    rows: &[RunRecord],
    stale: usize,
    classifier: Option<&ClassifierInfo>,
    figures: &[PathBuf],
    kept: &[PathBuf],
) -> Result<()> {
    let mut s = String::new();
    header(&mut s, dir, rows, stale, classifier)?;
    families(&mut s, rows)?;
    conv_runs(&mut s, &ResultsDir::new(dir.to_path_buf()), rows)?;
    shares(&mut s, rows)?;
    super::robustness::write_tables(&mut s, rows)?;
    // Table 1's columns describe the MLP runs; convolutional runs have their own table above.
    let mlp: Vec<RunRecord> = rows
        .iter()
        .filter(|r| !r.config.network.is_conv())
        .cloned()
        .collect();
    let rows = &mlp[..];
    best_runs(&mut s, rows)?;
    gan_settings(&mut s, rows)?;
    margins(&mut s, rows)?;
    if !figures.is_empty() {
        writeln!(s, "\n## Figures\n")?;
        for f in figures {
            let file = f.file_name().unwrap().to_string_lossy();
            writeln!(s, "![{file}]({file})\n")?;
        }
    }
    if !kept.is_empty() {
        writeln!(s, "\n## Figures kept from an earlier report\n")?;
        writeln!(s, "This folder lacks the run folders (samples, losses) to redraw these, so they are kept as an earlier report drew them, possibly from other rows.\n")?;
        for f in kept {
            let file = f.file_name().unwrap().to_string_lossy();
            writeln!(s, "![{file}]({file})\n")?;
        }
    }
    // What people found out about these results, written by hand beside them.
    if let Ok(notes) = std::fs::read_to_string(dir.join(NOTES)) {
        writeln!(
            s,
            "\n## Notes (from {NOTES}, written by hand)\n\n{}",
            notes.trim_end()
        )?;
    }
    write_atomic(&dir.join("summary.md"), s.as_bytes())
}

/// Title, provenance, and the scoring classifier.
fn header(
    s: &mut String,
    dir: &Path,
    rows: &[RunRecord],
    stale: usize,
    classifier: Option<&ClassifierInfo>,
) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    writeln!(s, "# {name}: summary\n")?;
    write!(
        s,
        "Written by `ebgan report` from {} rows of runs*.csv",
        rows.len()
    )?;
    if stale > 0 {
        write!(s, " ({stale} more rows are of runs that experiment.toml no longer plans, and are left out)")?;
    }
    writeln!(s, ".")?;
    let wall: f64 = rows
        .iter()
        .map(|r| r.wall_s / r.cohort_size.max(1) as f64)
        .sum();
    let machines = counted(rows.iter().map(|r| {
        let machine = if r.machine.is_empty() {
            "machine not recorded"
        } else {
            &r.machine
        };
        let threads = match r.threads {
            0 => String::new(),
            t => format!(", {t} libtorch thread(s) a run"),
        };
        let mkl = match r.mkl_path.as_str() {
            "" => String::new(),
            p => format!(", MKL's {} path", md_text(p)),
        };
        format!(
            "{}{mkl}, device {}{threads}",
            md_text(machine),
            md_text(&r.device)
        )
    }));
    writeln!(s, "Trained on: {machines}; training time summed over runs: {wall:.0} s (a cohort's time is split among its members).")?;
    let scored: Vec<&RunRecord> = rows.iter().filter(|r| r.i_prime.is_some()).collect();
    let hashes = counted(scored.iter().map(|r| match r.classifier.as_str() {
        "" => "classifier not recorded".to_string(),
        h => format!("classifier {h}"),
    }));
    if !scored.is_empty() {
        let kinds = scored
            .iter()
            .map(|r| r.classifier.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        match kinds.len() {
            1 => writeln!(s, "Scored under: {hashes}.")?,
            n => writeln!(s, "**Scored under {n} classifiers: {hashes}. Scores from different classifiers are not comparable; re-run the rows of all but one.**")?,
        }
    }
    writeln!(s, "I' = E_x KL(p(y|x) || p(y)) (= log IS; see docs/decisions.md); higher is better, at most ln 10 = 2.303. FID = Frechet distance between the scoring classifier's 128 penultimate features of a run's scored samples and of the 10,000 MNIST test images; lower is better (not comparable with Inception FIDs).\n")?;
    match classifier {
        Some(c) => writeln!(
            s,
            "Scoring classifier {}: test accuracy **{:.2}%** ({} epochs on {} images). Real MNIST test set: I' {:.3}, I' printed {:.1}, IS {:.2}.\n",
            match c.hash_prefix() { "" => "(no hash recorded)", h => h },
            c.test_accuracy * 100.0,
            c.epochs,
            c.train_images,
            c.test_scores.i_prime,
            c.test_scores.i_prime_printed,
            c.test_scores.inception_score
        )?,
        None => writeln!(s, "Scoring classifier: no classifier.json in this folder.\n")?,
    }

    Ok(())
}

/// "a (3 rows), b (1 row)": distinct values with their counts, most frequent first.
/// Recorded text (a machine's description) as plain markdown text: no markup, no table cells, one
/// line.
fn md_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn counted(values: impl Iterator<Item = String>) -> String {
    let mut n: std::collections::BTreeMap<String, usize> = Default::default();
    for v in values {
        *n.entry(v).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter()
        .map(|(k, c)| format!("{k} ({c} row{})", if *c == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs, divergences and I' quartiles per family.
fn families(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    writeln!(s, "## Runs per family\n")?;
    writeln!(s, "| family | runs | finished | diverged | I' q1 | I' median | I' q3 | I' max | FID median | FID min | epochs | mean wall s |")?;
    writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for f in FAMILIES.into_iter().chain(Family::SEMI_SUPERVISED) {
        let fam: Vec<&RunRecord> = rows.iter().filter(|r| r.family == f).collect();
        if fam.is_empty() {
            continue;
        }
        let mut v = i_primes(fam.iter().copied());
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut fid: Vec<f64> = fam.iter().filter_map(|r| r.fid).collect();
        fid.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let diverged = fam.iter().filter(|r| r.status == Status::Diverged).count();
        let epochs: Vec<String> = fam
            .iter()
            .map(|r| match r.config.steps {
                0 => r.config.epochs.to_string(),
                n => format!("{n} steps"),
            })
            .collect();
        let wall = fam
            .iter()
            .map(|r| r.wall_s / r.cohort_size.max(1) as f64)
            .sum::<f64>()
            / fam.len() as f64;
        writeln!(
            s,
            "| {f} | {} | {} | {diverged} | {} | {} | {} | {} | {} | {} | {} | {wall:.1} |",
            fam.len(),
            fam.iter().filter(|r| r.status == Status::Finished).count(),
            fmt3(quantile(&v, 0.25)),
            fmt3(quantile(&v, 0.5)),
            fmt3(quantile(&v, 0.75)),
            fmt3(v.last().copied().unwrap_or(f64::NAN)),
            fmt_fid(quantile(&fid, 0.5)),
            fmt_fid(fid.first().copied().unwrap_or(f64::NAN)),
            if epochs.iter().all(|e| *e == epochs[0]) {
                epochs[0].clone()
            } else {
                "mixed".into()
            },
        )?;
    }

    Ok(())
}

/// The convolutional runs, each with its last logged window.
fn conv_runs(s: &mut String, res: &ResultsDir, rows: &[RunRecord]) -> Result<()> {
    let conv: Vec<&RunRecord> = rows.iter().filter(|r| r.config.network.is_conv()).collect();
    if !conv.is_empty() {
        writeln!(s, "\n## Convolutional runs\n")?;
        writeln!(s, "Last logged window (100 steps) of each run; real / fake are mean energies (EBGAN) or D(x) (DCGAN). Samples, interpolations, curves and the checkpoint are in each run's folder; wall s counts the last process that trained the run (a resumed run counts from its resumption).\n")?;
        if conv.iter().all(|r| r.inception_fid.is_none()) {
            writeln!(s, "No FID or KID: no FID-Inception weights were given (`--inception`, `inception` in the experiment file or $EBGAN_INCEPTION; docs/decisions.md).\n")?;
        }
        writeln!(s, "| run | family | network | side | status | steps | loss D | loss G | real | fake | margin | I' | FID | KID | wall s |")?;
        writeln!(
            s,
            "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for r in conv {
            let last: Option<LossLog> = res
                .read_losses(&r.run_id)
                .ok()
                .and_then(|log| log.last().cloned());
            let cell = |f: fn(&LossLog) -> f64| {
                last.as_ref()
                    .map(|l| fmt3(f(l)))
                    .unwrap_or_else(|| "-".into())
            };
            let steps = last.as_ref().map(|l| l.step).unwrap_or(0);
            writeln!(
                s,
                "| {} | {} | {} | {} | {} | {steps} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                r.run_id,
                r.family,
                r.config.network.name(),
                r.config.image_size,
                r.status,
                cell(|l| l.loss_d),
                cell(|l| l.loss_g),
                cell(|l| l.real),
                cell(|l| l.fake),
                if r.config.model == Model::Gan {
                    "-".into()
                } else {
                    cell(|l| l.margin.unwrap_or(f64::NAN))
                },
                r.i_prime.map(fmt3).unwrap_or_else(|| "-".into()),
                fmt_fid(r.inception_fid.unwrap_or(f64::NAN)),
                r.inception_kid
                    .map(|k| format!("{k:.4}"))
                    .unwrap_or_else(|| "-".into()),
                r.wall_s,
            )?;
        }
    }

    Ok(())
}

/// The link to Table 2, and the share of runs per I' bin.
fn shares(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    if rows.iter().any(|r| r.config.model.is_ladder()) {
        writeln!(
            s,
            "\nSemi-supervised test errors beside the paper's: [table2.md](table2.md)."
        )?;
    }

    let present: Vec<Family> = FAMILIES
        .into_iter()
        .filter(|f| rows.iter().any(|r| r.family == *f && r.i_prime.is_some()))
        .collect();
    if !present.is_empty() {
        writeln!(
            s,
            "\n## Share of runs per I' bin (%; diverged runs counted)\n"
        )?;
        writeln!(
            s,
            "| I' | {} |",
            present
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        )?;
        writeln!(
            s,
            "|---|{}|",
            present.iter().map(|_| "---:").collect::<Vec<_>>().join("|")
        )?;
        let shares: Vec<(Vec<f64>, f64)> = present
            .iter()
            .map(|f| {
                shares_of_runs(
                    &outcomes(rows.iter().filter(|r| r.family == *f)),
                    0.0,
                    2.5,
                    5,
                )
            })
            .collect();
        for b in 0..5 {
            let label = if b == 4 {
                "2.0 and up".to_string()
            } else {
                format!("{:.1} - {:.1}", b as f64 * 0.5, (b + 1) as f64 * 0.5)
            };
            writeln!(
                s,
                "| {label} | {} |",
                shares
                    .iter()
                    .map(|v| format!("{:.1}", v.0[b]))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )?;
        }
        writeln!(
            s,
            "| diverged | {} |",
            shares
                .iter()
                .map(|v| format!("{:.1}", v.1))
                .collect::<Vec<_>>()
                .join(" | ")
        )?;
    }

    Ok(())
}

/// The best MLP run of each family with its Table 1 settings.
fn best_runs(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    if FAMILIES
        .iter()
        .any(|f| super::best_of(rows, |r| r.family == *f).is_some())
    {
        writeln!(s, "\n## Best run per family\n")?;
        writeln!(s, "| family | run | I' | IS | FID | nLayerG | sizeG | nLayerD | sizeD | dropoutD | optimD | optimG | lr | margin | PT |")?;
        writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|"
        )?;
        for f in FAMILIES {
            if let Some(r) = super::best_of(rows, |r| r.family == f) {
                let c = &r.config;
                writeln!(
                s,
                "| {f} | {} | {:.3} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.run_id,
                r.i_prime.unwrap(),
                r.inception_score.unwrap_or(f64::NAN),
                fmt_fid(r.fid.unwrap_or(f64::NAN)),
                c.n_layer_g,
                c.size_g,
                c.n_layer_d,
                c.size_d,
                c.dropout_d,
                optim(c.optim_d),
                optim(c.optim_g),
                c.lr,
                if c.model == Model::Ebgan {
                    c.margin.to_string()
                } else {
                    "-".into()
                },
                c.pulling_away
            )?;
            }
        }
    }

    Ok(())
}

/// GAN by optimiser setting (Figure 3's panels).
fn gan_settings(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    let settings = GanSetting::distinct(
        rows.iter()
            .filter(|r| r.family == Family::Gan)
            .map(|r| &r.config),
    );
    if settings.len() > 1 {
        writeln!(s, "\n## GAN by optimiser setting (Figure 3)\n")?;
        writeln!(s, "| lr | optimD | optimG | runs | diverged | I' median |")?;
        writeln!(s, "|---:|---|---|---:|---:|---:|")?;
        for setting in &settings {
            let sub: Vec<&RunRecord> = rows
                .iter()
                .filter(|r| r.family == Family::Gan && GanSetting::of(&r.config) == *setting)
                .collect();
            let mut v = i_primes(sub.iter().copied());
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let div = sub.iter().filter(|r| r.status == Status::Diverged).count();
            writeln!(
                s,
                "| {} | {} | {} | {} | {div} | {} |",
                setting.lr,
                setting.optim_d(),
                setting.optim_g(),
                sub.len(),
                fmt3(quantile(&v, 0.5))
            )?;
        }
    }

    Ok(())
}

/// EBGAN by margin (Figure 9).
fn margins(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    let margins = super::ebgan_margins(rows);
    if margins.len() > 1 {
        writeln!(s, "\n## EBGAN by margin (Figure 9)\n")?;
        writeln!(s, "| margin | runs | diverged | I' median | I' max |")?;
        writeln!(s, "|---:|---:|---:|---:|---:|")?;
        for m in margins {
            let sub: Vec<&RunRecord> = rows
                .iter()
                .filter(|r| r.config.model == Model::Ebgan && r.config.margin == m)
                .collect();
            let mut v = i_primes(sub.iter().copied());
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let div = sub.iter().filter(|r| r.status == Status::Diverged).count();
            writeln!(
                s,
                "| {m} | {} | {div} | {} | {} |",
                sub.len(),
                fmt3(quantile(&v, 0.5)),
                fmt3(v.last().copied().unwrap_or(f64::NAN))
            )?;
        }
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_is_one_line_of_plain_markdown() {
        assert_eq!(
            md_text("<script>x</script> | a\n| b | c |"),
            "&lt;script&gt;x&lt;/script&gt; \\| a \\| b \\| c \\|"
        );
    }

    #[test]
    fn hand_written_notes_close_the_summary_and_survive_a_redraw() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NOTES), "The collapse is the setting's.\n").unwrap();
        for _ in 0..2 {
            write(dir.path(), &[], 0, None, &[], &[]).unwrap();
            let s = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
            assert!(
                s.trim_end().ends_with("The collapse is the setting's."),
                "{s}"
            );
            assert_eq!(s.matches("## Notes").count(), 1);
        }
    }

    #[test]
    fn a_figure_this_report_could_not_draw_is_kept_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let (drawn, kept) = (dir.path().join("fig2.png"), dir.path().join("fig4.png"));
        write(dir.path(), &[], 0, None, &[drawn], &[kept]).unwrap();
        let s = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        let (figures, earlier) = s
            .split_once("## Figures kept from an earlier report")
            .unwrap();
        assert!(
            figures.contains("![fig2.png](fig2.png)") && !figures.contains("fig4"),
            "{s}"
        );
        assert!(earlier.contains("![fig4.png](fig4.png)"), "{s}");
    }
}
