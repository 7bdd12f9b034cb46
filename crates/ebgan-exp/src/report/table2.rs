//! Table 2 of the paper: semi-supervised PI-MNIST test error, ours beside the paper's.

use crate::config::Family;
use crate::results::RunRecord;
use crate::results::Status;
use std::fmt::Write;

/// (labels, LN mean, LN std, EBGAN-LN mean, EBGAN-LN std), in %, 15 seeds (paper Table 2).
pub const PAPER: [(usize, f64, f64, f64, f64); 3] = [
    (100, 1.36, 0.21, 1.04, 0.12),
    (200, 1.24, 0.09, 0.99, 0.12),
    (1000, 1.04, 0.06, 0.89, 0.04),
];

/// Mean and sample standard deviation (n - 1; 0 for one value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

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

/// The markdown table, or None when no row is semi-supervised.
pub fn table2(rows: &[RunRecord], name: &str) -> Option<String> {
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
    Some(s)
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
        let t = table2(&search, "s").unwrap();
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
        let t = table2(&seeds, "s").unwrap();
        assert!(
            t.contains("| EBGAN-LN, ours | 5.00 +- 1.41 (2 seeds) |"),
            "{t}"
        );
    }

    #[test]
    fn mean_and_sample_std_by_hand() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        let (m, s) = mean_std(&[1.0, 1.5]);
        assert_eq!(m, 1.25);
        assert!((s - 0.125f64.sqrt()).abs() < 1e-15);
        assert_eq!(mean_std(&[0.9]), (0.9, 0.0));
    }
}
