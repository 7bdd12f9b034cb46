//! Table 2 of the paper: semi-supervised PI-MNIST test error, ours beside the paper's.

use super::epochs::RunEpochs;
use crate::config::Family;
use crate::results::RunRecord;
use crate::results::Status;
use crate::stats::mean_std;
use std::fmt::Write;

/// (labels, LN mean, LN std, EBGAN-LN mean, EBGAN-LN std), in %, 15 seeds (paper Table 2).
pub const PAPER: [(usize, f64, f64, f64, f64); 3] = [
    (100, 1.36, 0.21, 1.04, 0.12),
    (200, 1.24, 0.09, 0.99, 0.12),
    (1000, 1.04, 0.06, 0.89, 0.04),
];

fn cell(rows: &[RunRecord], keep: impl Fn(&RunRecord) -> bool, labels: usize) -> String {
    let v: Vec<f64> = rows
        .iter()
        .filter(|r| keep(r) && r.config.labels == labels)
        .filter_map(|r| r.test_error)
        .collect();
    if v.is_empty() {
        return "-".into();
    }
    let (m, s) = mean_std(&v);
    format!(
        "{m:.2} +- {s:.2} ({} seed{})",
        v.len(),
        if v.len() == 1 { "" } else { "s" }
    )
}

/// The markdown table, or None when no row is semi-supervised; `per_epoch`: the ladder runs'
/// epochs.csv rows.
pub fn table2(rows: &[RunRecord], name: &str, per_epoch: &[RunEpochs]) -> Option<String> {
    if !rows.iter().any(|r| r.config.model.is_ladder()) {
        return None;
    }
    let mut epochs: Vec<usize> = rows
        .iter()
        .filter(|r| r.config.model.is_ladder())
        .map(|r| r.config.epochs)
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    let mut s = String::new();
    writeln!(
        s,
        "# {name}: Table 2, permutation-invariant MNIST test error (%)\n"
    )
    .unwrap();
    writeln!(
        s,
        "Ours: mean +- std over the seeds finished (count in brackets), training epochs: {}.",
        epochs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    writeln!(
        s,
        "Paper: 15 seeds each. Written by `ebgan report` from runs*.csv.\n"
    )
    .unwrap();
    writeln!(s, "| model | 100 labels | 200 labels | 1000 labels |").unwrap();
    writeln!(s, "|---|---|---|---|").unwrap();
    // EBGAN-LN runs of several margins (a margin search) get a row per margin.
    let mut margins: Vec<f64> = rows
        .iter()
        .filter(|r| r.family == Family::EbganLn)
        .map(|r| r.config.margin)
        .collect();
    margins.sort_by(|a, b| a.partial_cmp(b).unwrap());
    margins.dedup();
    for (name, family) in [
        ("LN bottom-layer", Family::Ln),
        ("EBGAN-LN", Family::EbganLn),
    ] {
        let mut ours: Vec<(String, Vec<String>)> = vec![];
        let per_margin = family == Family::EbganLn && margins.len() > 1;
        for m in if per_margin {
            margins.clone()
        } else {
            vec![f64::NAN]
        } {
            let keep = |r: &RunRecord| r.family == family && (m.is_nan() || r.config.margin == m);
            let cells = [100, 200, 1000]
                .iter()
                .map(|&l| cell(rows, keep, l))
                .collect();
            let label = if per_margin {
                format!("{name} (m = {m})")
            } else {
                name.to_string()
            };
            ours.push((label, cells));
        }
        let theirs: Vec<String> = PAPER
            .iter()
            .map(|p| {
                let (mean, std) = if family == Family::Ln {
                    (p.1, p.2)
                } else {
                    (p.3, p.4)
                };
                format!("{mean:.2} +- {std:.2}")
            })
            .collect();
        for (label, cells) in &ours {
            writeln!(s, "| {label}, ours | {} |", cells.join(" | ")).unwrap();
        }
        writeln!(s, "| {name}, paper | {} |", theirs.join(" | ")).unwrap();
    }
    let diverged = rows
        .iter()
        .filter(|r| r.config.model.is_ladder() && r.status == Status::Diverged)
        .count();
    if diverged > 0 {
        writeln!(s, "\n{diverged} run(s) diverged and are not in the means.").unwrap();
    }
    s.extend(search(rows));
    s.extend(paired(rows));
    s.extend(by_epoch(per_epoch));
    Some(s)
}

/// The most epochs a run's row shows (evenly spaced, the last always among them).
const EPOCH_COLUMNS: usize = 10;

/// Each ladder run after each epoch (its epochs.csv): validation error, or test error without
/// a validation split, and for EBGAN-LN the share of G's samples inside the margin. None
/// without rows.
pub fn by_epoch(runs: &[RunEpochs]) -> Option<String> {
    let last = runs
        .iter()
        .flat_map(|(_, e)| e.iter().map(|r| r.epoch))
        .max()?;
    let every = last.div_ceil(EPOCH_COLUMNS);
    let shown: Vec<usize> = (1..=last)
        .filter(|e| e % every == 0 || *e == last)
        .collect();
    let validation = runs
        .iter()
        .any(|(_, e)| e.iter().any(|r| r.validation_error.is_some()));
    let mut s = String::new();
    writeln!(s, "\n## Epoch by epoch\n").unwrap();
    writeln!(
        s,
        "{} error % after each epoch; for EBGAN-LN, in brackets, the share of {} of G's samples \
         inside the margin at the epoch's last step (those the hinge acts on). From epochs.csv \
         (`run_id`, then each run's epochs.csv).\n",
        if validation {
            "Validation (test where no images are held out)"
        } else {
            "Test"
        },
        crate::train::ladder::epochs::SAMPLES
    )
    .unwrap();
    let head: Vec<String> = shown.iter().map(|e| e.to_string()).collect();
    writeln!(s, "| run | setting | seed | {} |", head.join(" | ")).unwrap();
    writeln!(s, "|---|---|---:|{}", "---:|".repeat(shown.len())).unwrap();
    // By labelled count, LN first, then setting and seed: a search's settings and a comparison's
    // pairs read down the table.
    let mut runs: Vec<&RunEpochs> = runs.iter().collect();
    runs.sort_by_cached_key(|(r, _)| {
        let family = [Family::Ln, Family::EbganLn]
            .iter()
            .position(|f| *f == r.family);
        (r.config.labels, family, setting(r), r.config.seed)
    });
    for (r, rows) in runs {
        let cells: Vec<String> = shown
            .iter()
            .map(|&e| match rows.iter().find(|row| row.epoch == e) {
                None => "-".into(),
                Some(row) => {
                    let error = row.validation_error.unwrap_or(row.test_error);
                    match row.hinge_active {
                        Some(h) => format!("{error:.2} ({:.1}%)", 100.0 * h),
                        None => format!("{error:.2}"),
                    }
                }
            })
            .collect();
        writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.run_id,
            setting(r),
            r.config.seed,
            cells.join(" | ")
        )
        .unwrap();
    }
    Some(s)
}

/// Exact two-sided sign-flip test of paired differences `d`: the share of the 2^n patterns of
/// signs whose |mean| is at least the observed one (with n pairs, no p below 2 / 2^n exists).
pub fn sign_flip_p(d: &[f64]) -> f64 {
    let observed = d.iter().sum::<f64>().abs();
    let n = d.len();
    let at_least = (0..1u64 << n)
        .filter(|signs| {
            let sum: f64 = (0..n)
                .map(|i| if signs >> i & 1 == 1 { -d[i] } else { d[i] })
                .sum();
            // A relative slack for the rounding of sums in another order.
            sum.abs() >= observed * (1.0 - 1e-12)
        })
        .count();
    at_least as f64 / (1u64 << n) as f64
}

/// A ladder run's settings but its seed: what a search varies.
fn setting(r: &RunRecord) -> String {
    let c = &r.config;
    let mut s = format!("lambda_0 {}", c.lambda_0);
    if r.family == Family::EbganLn {
        let g = c.g_optim_hyper();
        write!(s, ", m {}, G lr {}, G beta1 {}", c.margin, g.lr, g.beta1).unwrap();
    }
    write!(s, ", {} labels, {} epochs", c.labels, c.epochs).unwrap();
    s
}

/// The search (a family's runs of several settings at one labelled count): each setting's mean
/// validation error (the selection criterion) and test error, best first. None when no family
/// has two settings at any labelled count (a comparison whose settings, such as lambda_0, only
/// follow the labelled count is no search).
pub fn search(rows: &[RunRecord]) -> Option<String> {
    let ladder: Vec<&RunRecord> = rows
        .iter()
        .filter(|r| r.config.model.is_ladder() && r.test_error.is_some())
        .collect();
    let mut s = String::new();
    for family in [Family::Ln, Family::EbganLn] {
        let mut groups: std::collections::BTreeMap<String, Vec<&RunRecord>> = Default::default();
        let mut per_labels: std::collections::BTreeMap<usize, std::collections::BTreeSet<String>> =
            Default::default();
        for r in ladder.iter().filter(|r| r.family == family) {
            groups.entry(setting(r)).or_default().push(r);
            per_labels
                .entry(r.config.labels)
                .or_default()
                .insert(setting(r));
        }
        // The labelled counts at which this family tried several settings.
        let searched: std::collections::BTreeSet<usize> = per_labels
            .iter()
            .filter(|(_, settings)| settings.len() >= 2)
            .map(|(&labels, _)| labels)
            .collect();
        groups.retain(|_, runs| searched.contains(&runs[0].config.labels));
        if groups.is_empty() {
            continue;
        }
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| mean_std(&v).0);
        let mut table: Vec<(String, usize, Option<f64>, f64)> = groups
            .into_iter()
            .map(|(k, runs)| {
                let val = mean(runs.iter().filter_map(|r| r.validation_error).collect());
                let test = mean(runs.iter().filter_map(|r| r.test_error).collect()).unwrap();
                (k, runs.len(), val, test)
            })
            .collect();
        // Selection reads the validation error; without one, the table is only sorted by test.
        table.sort_by(|a, b| {
            let key = |t: &(String, usize, Option<f64>, f64)| t.2.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b)).then(a.3.total_cmp(&b.3))
        });
        writeln!(s, "\n## Search: {}\n", family.label()).unwrap();
        writeln!(s, "| setting | runs | validation error % | test error % |").unwrap();
        writeln!(s, "|---|---:|---:|---:|").unwrap();
        for (i, (k, n, val, test)) in table.iter().enumerate() {
            let chosen = if i == 0 && val.is_some() {
                " (selected)"
            } else {
                ""
            };
            let val = val.map_or("-".into(), |v| format!("{v:.2}"));
            writeln!(s, "| {k}{chosen} | {n} | {val} | {test:.2} |").unwrap();
        }
    }
    (!s.is_empty()).then(|| {
        format!("{s}\nSelected: the lowest mean validation error (images held out of training, never the test set).\n")
    })
}

/// EBGAN-LN against LN seed by seed, at each labelled count where each family ran one setting:
/// the mean difference of test error and the exact sign-flip test. None when nothing pairs.
pub fn paired(rows: &[RunRecord]) -> Option<String> {
    let mut s = String::new();
    for labels in [100, 200, 1000] {
        let of = |family: Family| -> Option<std::collections::BTreeMap<u64, f64>> {
            let runs: Vec<&RunRecord> = rows
                .iter()
                .filter(|r| r.family == family && r.config.labels == labels)
                .filter(|r| r.test_error.is_some())
                .collect();
            let settings: std::collections::BTreeSet<String> =
                runs.iter().map(|r| setting(r)).collect();
            (settings.len() == 1).then(|| {
                runs.iter()
                    .map(|r| (r.config.seed, r.test_error.unwrap()))
                    .collect()
            })
        };
        let (Some(ln), Some(eb)) = (of(Family::Ln), of(Family::EbganLn)) else {
            continue;
        };
        let pairs: Vec<(u64, f64, f64)> = ln
            .iter()
            .filter_map(|(seed, &l)| eb.get(seed).map(|&e| (*seed, l, e)))
            .collect();
        if pairs.len() < 2 {
            continue;
        }
        if s.is_empty() {
            writeln!(s, "\n## Paired by seed (test error %, EBGAN-LN - LN)\n").unwrap();
            writeln!(s, "| labels | seeds | LN mean | EBGAN-LN mean | mean difference +- std | 95% interval (t) | EBGAN-LN lower in | sign-flip p (two-sided, exact) |").unwrap();
            writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
        }
        let d: Vec<f64> = pairs.iter().map(|p| p.2 - p.1).collect();
        let (dm, ds) = mean_std(&d);
        let lm = mean_std(&pairs.iter().map(|p| p.1).collect::<Vec<_>>()).0;
        let em = mean_std(&pairs.iter().map(|p| p.2).collect::<Vec<_>>()).0;
        let lower = d.iter().filter(|&&x| x < 0.0).count();
        let (lo, hi) = crate::stats::mean_ci95(&d).expect("at least two pairs");
        writeln!(
            s,
            "| {labels} | {} | {lm:.2} | {em:.2} | {dm:+.2} +- {ds:.2} | [{lo:+.2}, {hi:+.2}] | {lower} of {} | {:.3} |",
            pairs.len(),
            pairs.len(),
            sign_flip_p(&d)
        )
        .unwrap();
    }
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: crate::config::Model, margin: f64, seed: u64, error: f64) -> RunRecord {
        let config = crate::config::RunConfig {
            model,
            margin,
            seed,
            labels: 100,
            ..Default::default()
        };
        let mut result =
            crate::results::ResultColumns::new(config.run_id(), config.family(), Status::Finished);
        result.test_error = Some(error);
        RunRecord { result, config }
    }

    #[test]
    fn a_margin_search_gets_a_row_per_margin_and_one_margin_a_single_row() {
        use crate::config::Model;
        let search = [
            row(Model::EbganLn, 0.01, 0, 9.0),
            row(Model::EbganLn, 0.1, 0, 40.0),
        ];
        let t = table2(&search, "s", &[]).unwrap();
        assert!(
            t.contains("| EBGAN-LN (m = 0.01), ours | 9.00 +- 0.00 (1 seed) |"),
            "{t}"
        );
        assert!(
            t.contains("| EBGAN-LN (m = 0.1), ours | 40.00 +- 0.00 (1 seed) |"),
            "{t}"
        );
        let seeds = [
            row(Model::EbganLn, 0.01, 0, 4.0),
            row(Model::EbganLn, 0.01, 1, 6.0),
        ];
        let t = table2(&seeds, "s", &[]).unwrap();
        assert!(
            t.contains("| EBGAN-LN, ours | 5.00 +- 1.41 (2 seeds) |"),
            "{t}"
        );
    }

    #[test]
    fn sign_flip_p_by_hand() {
        // (1, 2, 3): sums over the 8 sign patterns are +-6, +-4, +-2, +-0 (twice each of the
        // last): |sum| >= 6 in 2 of 8.
        assert_eq!(sign_flip_p(&[1.0, 2.0, 3.0]), 0.25);
        // (1, -1): observed 0; every pattern is at least that.
        assert_eq!(sign_flip_p(&[1.0, -1.0]), 1.0);
        // (1, 1, 1, 5): |sum| reaches 8 only with every sign kept or every sign flipped.
        assert_eq!(sign_flip_p(&[1.0, 1.0, 1.0, 5.0]), 0.125);
    }

    #[test]
    fn a_search_is_sorted_by_validation_error_and_pairs_match_seeds() {
        use crate::config::Model;
        let with_val = |mut r: RunRecord, v: f64| {
            r.result.validation_error = Some(v);
            r
        };
        let rows = [
            with_val(row(Model::EbganLn, 0.01, 0, 5.0), 6.0),
            with_val(row(Model::EbganLn, 0.001, 0, 9.0), 4.0),
        ];
        let t = search(&rows).unwrap();
        let at = |needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle} in {t}"));
        assert!(at("m 0.001, G lr 0.001, G beta1 0.5, 100 labels, 25 epochs (selected) | 1 | 4.00 | 9.00") < at("m 0.01,"));
        let rows = [
            row(Model::Ladder, 0.0, 0, 3.0),
            row(Model::Ladder, 0.0, 1, 4.0),
            row(Model::Ladder, 0.0, 2, 3.5),
            row(Model::EbganLn, 0.01, 0, 5.0),
            row(Model::EbganLn, 0.01, 1, 5.0),
            row(Model::EbganLn, 0.01, 2, 6.5),
        ];
        // Differences 2, 1, 3: mean 2, std 1; all 3 positive: p = 2 / 8.
        let t = paired(&rows).unwrap();
        assert!(
            t.contains(
                "| 100 | 3 | 3.50 | 5.50 | +2.00 +- 1.00 | [-0.48, +4.48] | 0 of 3 | 0.250 |"
            ),
            "{t}"
        );
    }

    #[test]
    fn settings_that_only_follow_the_labelled_count_are_no_search() {
        use crate::config::Model;
        let at = |labels: usize, lambda_0: f64, test: f64| {
            let mut r = row(Model::Ladder, 0.0, 0, test);
            r.config.labels = labels;
            r.config.lambda_0 = lambda_0;
            r
        };
        // Table 2's own file: lambda_0 set per labelled count, one setting at each.
        let mut rows = vec![
            at(100, 5000.0, 11.0),
            at(200, 3000.0, 8.0),
            at(1000, 2000.0, 4.0),
        ];
        assert_eq!(search(&rows), None);
        // A second setting at 100 labels is a search there, and only there.
        rows.push(at(100, 1000.0, 12.0));
        let t = search(&rows).unwrap();
        assert!(
            t.contains("lambda_0 5000, 100 labels") && t.contains("lambda_0 1000, 100 labels"),
            "{t}"
        );
        assert!(
            !t.contains("200 labels") && !t.contains("1000 labels"),
            "{t}"
        );
    }

    #[test]
    fn each_run_epoch_by_epoch_with_the_hinges_share() {
        use crate::config::Model;
        use crate::train::ladder::epochs::EpochRow;
        let at = |epoch: usize, error: f64, hinge: Option<f64>| EpochRow {
            epoch,
            step: 10 * epoch as u64,
            test_error: error + 1.0,
            validation_error: Some(error),
            margin: hinge.map(|_| 0.01),
            real_q10: 0.1,
            real_median: 0.2,
            real_q90: 0.3,
            real_mean: 0.2,
            fake_q10: None,
            fake_median: None,
            fake_q90: None,
            fake_mean: None,
            hinge_active: hinge,
        };
        let (ln, eb) = (
            row(Model::Ladder, 0.0, 3, 4.0),
            row(Model::EbganLn, 0.01, 3, 5.0),
        );
        let runs = [
            (&eb, vec![at(1, 12.0, Some(0.0413)), at(2, 8.0, Some(0.0))]),
            (&ln, vec![at(1, 9.0, None), at(2, 7.125, None)]),
        ];
        let t = by_epoch(&runs).unwrap();
        assert!(
            t.contains("Validation (test where no images are held out) error %"),
            "{t}"
        );
        assert!(t.contains("| run | setting | seed | 1 | 2 |"), "{t}");
        let ln_row = format!(
            "| {} | lambda_0 1000, 100 labels, 25 epochs | 3 | 9.00 | 7.12 |",
            ln.run_id
        );
        assert!(t.contains(&ln_row), "{t}");
        assert!(t.contains("| 3 | 12.00 (4.1%) | 8.00 (0.0%) |"), "{t}");
        assert!(t.find(&ln_row) < t.find("12.00 (4.1%)"), "LN first: {t}");
        // 25 epochs show every third and the last: 3, 6, .., 24, 25.
        let long: Vec<EpochRow> = (1..=25).map(|e| at(e, 1.0, None)).collect();
        let t = by_epoch(&[(&ln, long)]).unwrap();
        assert!(
            t.contains("| run | setting | seed | 3 | 6 | 9 | 12 | 15 | 18 | 21 | 24 | 25 |"),
            "{t}"
        );
        assert_eq!(by_epoch(&[]), None);
    }
}
