//! A results folder against a reference (`ebgan compare A B`, and the end of `ebgan run`): row by
//! row, whether final losses and scores are the same bits; per family, the I' quartiles beside
//! the reference's, each difference judged against the reference's noise floor.
//!
//! The noise floor (`noise-floor.csv` in the reference folder, written by
//! scripts/seed_spread.py) is, per family and quartile, the range (max - min) of that quartile
//! over at least five seed offsets of the same experiment trained on one machine: how far new
//! draws of the same runs move it. A difference inside it says nothing about a machine or a
//! change; one outside it is worth a look.

use super::quantile;
use crate::config::Family;
use crate::results::{ResultsDir, RunRecord};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The reference folder's noise floor.
pub const NOISE_FLOOR: &str = "noise-floor.csv";
/// Seed offsets a noise floor needs before a verdict uses it.
pub const MIN_OFFSETS: usize = 5;

/// `ebgan compare A B`: folder A (e.g. runs/grid-mnist-quick) against reference B (e.g.
/// results/grid-mnist-quick). Exits 1 when a run in both differs in a final loss or score.
#[derive(clap::Args)]
pub struct CompareArgs {
    a: PathBuf,
    b: PathBuf,
}

impl CompareArgs {
    pub fn run(&self) -> Result<()> {
        let v = compare(&self.a, &self.b)?;
        print!("{}", v.text);
        anyhow::ensure!(
            v.differing == 0,
            "{} of {} runs in both folders differ in a final loss or score",
            v.differing,
            v.in_both
        );
        Ok(())
    }
}

/// What a comparison found, and its text (markdown).
pub struct Verdict {
    pub in_both: usize,
    pub differing: usize,
    pub text: String,
}

/// The result columns that must be the same bits for a run to count as reproduced.
fn outcome(r: &RunRecord) -> Vec<(&'static str, String)> {
    let f = |v: Option<f64>| v.map(|x| format!("{:?}", x.to_bits())).unwrap_or_default();
    vec![
        ("status", format!("{:?}", r.status)),
        ("epochs_done", r.epochs_done.to_string()),
        ("diverged_step", format!("{:?}", r.diverged_step)),
        ("final_loss_d", f(r.final_loss_d)),
        ("final_loss_g", f(r.final_loss_g)),
        ("i_prime", f(r.i_prime)),
        ("i_prime_printed", f(r.i_prime_printed)),
        ("inception_score", f(r.inception_score)),
        ("fid", f(r.fid)),
        ("inception_fid", f(r.inception_fid)),
        ("inception_kid", f(r.inception_kid)),
        ("test_error", f(r.test_error)),
        ("validation_error", f(r.validation_error)),
    ]
}

/// Compares results folder `a` with reference folder `b`.
pub fn compare(a: &Path, b: &Path) -> Result<Verdict> {
    let rows_of = |d: &Path| -> Result<Vec<RunRecord>> {
        let res = ResultsDir::new(d.to_path_buf());
        anyhow::ensure!(
            !res.csv_files()?.is_empty(),
            "{}: no runs*.csv here: not a results folder of `ebgan run`",
            d.display()
        );
        res.rows()
    };
    let (rows_a, rows_b) = (rows_of(a)?, rows_of(b)?);
    let by_id: BTreeMap<&str, &RunRecord> = rows_b.iter().map(|r| (r.run_id.as_str(), r)).collect();
    let mut s = String::new();
    writeln!(
        s,
        "## {} against the reference {}\n",
        a.display(),
        b.display()
    )?;
    let (mut in_both, mut equal, mut columns) = (0, 0, BTreeMap::<&str, usize>::new());
    for r in &rows_a {
        let Some(other) = by_id.get(r.run_id.as_str()) else {
            continue;
        };
        in_both += 1;
        let differ: Vec<&str> = outcome(r)
            .into_iter()
            .zip(outcome(other))
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, _)| x.0)
            .collect();
        if differ.is_empty() {
            equal += 1;
        }
        for c in differ {
            *columns.entry(c).or_default() += 1;
        }
    }
    writeln!(
        s,
        "Runs: {} here, {} in the reference, {in_both} in both; **{equal} of {in_both} bit-equal** in status, final losses and scores.",
        rows_a.len(),
        rows_b.len()
    )?;
    if !columns.is_empty() {
        let list: Vec<String> = columns.iter().map(|(c, n)| format!("{c} in {n}")).collect();
        writeln!(s, "Differing: {}.", list.join(", "))?;
    }
    provenance(&mut s, &rows_a, &rows_b)?;
    quartiles(&mut s, &rows_a, &rows_b, b)?;
    Ok(Verdict {
        in_both,
        differing: in_both - equal,
        text: s,
    })
}

/// Where each side was trained (machine, MKL path, classifier): bits can only match where these do.
fn provenance(s: &mut String, a: &[RunRecord], b: &[RunRecord]) -> Result<()> {
    let set = |rows: &[RunRecord], f: fn(&RunRecord) -> &str| {
        let v: std::collections::BTreeSet<&str> = rows.iter().map(f).collect();
        v.into_iter()
            .map(|x| if x.is_empty() { "not recorded" } else { x })
            .collect::<Vec<_>>()
            .join("; ")
    };
    for (what, f) in [
        (
            "machine",
            (|r: &RunRecord| r.machine.as_str()) as fn(&RunRecord) -> &str,
        ),
        ("MKL path", |r| r.mkl_path.as_str()),
        ("device", |r| r.device.as_str()),
        ("classifier", |r| r.classifier.as_str()),
    ] {
        writeln!(s, "- {what}: here {}; reference {}", set(a, f), set(b, f))?;
    }
    Ok(())
}

/// One row of a noise floor: the range of a family's quartile over seed offsets.
struct Floor {
    offsets: usize,
    spread: f64,
}

/// The reference's noise floor, keyed by (family, quartile); empty without the file.
fn read_floor(dir: &Path) -> Result<BTreeMap<(String, String), Floor>> {
    let path = dir.join(NOISE_FLOOR);
    let mut out = BTreeMap::new();
    if !path.is_file() {
        return Ok(out);
    }
    let mut rdr =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for (i, rec) in rdr.deserialize::<BTreeMap<String, String>>().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}: line {line}", path.display()))?;
        let get = |k: &str| {
            rec.get(k)
                .cloned()
                .with_context(|| format!("{}: line {line}: no `{k}` column", path.display()))
        };
        let num = |k: &str| -> Result<f64> {
            get(k)?.parse().with_context(|| {
                format!("{}: line {line}: column {k}: not a number", path.display())
            })
        };
        out.insert(
            (get("family")?, get("quartile")?),
            Floor {
                offsets: num("offsets")? as usize,
                spread: num("spread")?,
            },
        );
    }
    Ok(out)
}

const QUARTILES: [(&str, f64); 3] = [("q1", 0.25), ("median", 0.5), ("q3", 0.75)];

/// Each family's I' quartiles here and in the reference, and whether the difference lies
/// inside the reference's noise floor.
fn quartiles(s: &mut String, a: &[RunRecord], b: &[RunRecord], reference: &Path) -> Result<()> {
    let scores = |rows: &[RunRecord], f: Family| {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|r| r.family == f)
            .filter_map(|r| r.i_prime)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let floor = read_floor(reference)?;
    let offsets = floor.values().map(|f| f.offsets).min().unwrap_or(0);
    let usable = offsets >= MIN_OFFSETS;
    writeln!(s, "\nI' quartiles per family (scored runs):\n")?;
    match (floor.is_empty(), usable) {
        (true, _) => writeln!(s, "No noise floor for this experiment ({} in the reference folder): the differences are not judged.\n", NOISE_FLOOR)?,
        (false, false) => writeln!(s, "The reference's noise floor comes from {offsets} seed offsets, fewer than {MIN_OFFSETS}: the differences are not judged.\n")?,
        (false, true) => writeln!(s, "Noise floor: the range (max - min) of each quartile over {offsets} seed offsets of this experiment on one machine ({NOISE_FLOOR}, scripts/seed_spread.py, results/seed-spread). A difference inside it (at the three decimals shown) is what new random draws give.\n")?,
    }
    writeln!(
        s,
        "| family | quartile | here | reference | difference | noise floor | verdict |"
    )?;
    writeln!(s, "|---|---|---:|---:|---:|---:|---|")?;
    for family in super::FAMILIES {
        let (x, y) = (scores(a, family), scores(b, family));
        if x.is_empty() || y.is_empty() {
            continue;
        }
        for (name, q) in QUARTILES {
            let (qa, qb) = (quantile(&x, q), quantile(&y, q));
            // Judged at the precision shown: a difference that rounds to 0.000 is 0.
            let d = if (qa - qb).abs() < 5e-4 { 0.0 } else { qa - qb };
            let (fl, verdict) = match floor.get(&(family.to_string(), name.to_string())) {
                Some(f) if usable => (
                    format!("{:.3}", f.spread),
                    if d.abs() <= f.spread {
                        "inside"
                    } else {
                        "**outside**"
                    },
                ),
                _ => ("-".into(), "-"),
            };
            writeln!(
                s,
                "| {family} | {name} | {qa:.3} | {qb:.3} | {d:+.3} | {fl} | {verdict} |"
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::results::{ResultColumns, Status};

    fn runs(family: Family, scores: &[f64]) -> Vec<RunRecord> {
        scores
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let config = RunConfig {
                    seed: k as u64,
                    ..Default::default()
                };
                let mut result = ResultColumns::new(config.run_id(), family, Status::Finished);
                result.i_prime = Some(v);
                RunRecord { result, config }
            })
            .collect()
    }

    fn row<'a>(text: &'a str, family: &str, quartile: &str) -> Vec<&'a str> {
        let start = format!("| {family} | {quartile} |");
        let line = text.lines().find(|l| l.starts_with(&start)).unwrap();
        line.split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn each_quartile_difference_is_judged_against_the_references_floor() {
        // Five scores: q1, median and q3 are the 2nd, 3rd and 4th (positions 1, 2, 3 of 0..4).
        let reference = runs(Family::Ebgan, &[1.0, 1.1, 1.2, 1.3, 1.4]);
        let here = runs(Family::Ebgan, &[1.1, 1.2, 1.3, 1.4, 1.5]);
        let dir = tempfile::tempdir().unwrap();
        let floor =
            "family,quartile,offsets,spread,sd\nebgan,q1,5,0.2,0.1\nebgan,median,5,0.05,0.02\n";
        std::fs::write(dir.path().join(NOISE_FLOOR), floor).unwrap();
        let mut s = String::new();
        quartiles(&mut s, &here, &reference, dir.path()).unwrap();
        assert!(s.contains("over 5 seed offsets"), "{s}");
        assert_eq!(
            row(&s, "ebgan", "q1"),
            ["ebgan", "q1", "1.200", "1.100", "+0.100", "0.200", "inside"]
        );
        assert_eq!(
            row(&s, "ebgan", "median"),
            [
                "ebgan",
                "median",
                "1.300",
                "1.200",
                "+0.100",
                "0.050",
                "**outside**"
            ]
        );
        // No floor for q3: shown, not judged.
        assert_eq!(row(&s, "ebgan", "q3")[5..], ["-", "-"]);

        // A floor from fewer than five offsets judges nothing.
        std::fs::write(dir.path().join(NOISE_FLOOR), floor.replace(",5,", ",3,")).unwrap();
        let mut s = String::new();
        quartiles(&mut s, &here, &reference, dir.path()).unwrap();
        assert!(s.contains("3 seed offsets, fewer than 5"), "{s}");
        assert_eq!(row(&s, "ebgan", "median")[5..], ["-", "-"]);

        // A malformed floor is an error naming the file, line and column.
        std::fs::write(
            dir.path().join(NOISE_FLOOR),
            "family,quartile,offsets,spread\nebgan,q1,5,wide\n",
        )
        .unwrap();
        let e = quartiles(&mut String::new(), &here, &reference, dir.path()).unwrap_err();
        assert!(
            format!("{e:#}").contains("noise-floor.csv: line 2: column spread"),
            "{e:#}"
        );
    }
}
