//! Robustness to hyper-parameters: what a family scores when one tries k of its settings at
//! random (budget.png), the distribution of its runs' I' (ecdf.png), the share of its runs near
//! its best, and where its default setting falls. A family's runs are the grid's settings of
//! it; diverged runs count, at [`DIVERGED_I_PRIME`]; finished runs without a score are left out
//! ([`super::outcomes`]). Families are those present in the rows, in [`Family`]'s order.

use super::fmt3;
use super::gan_setting::GanSetting;
use super::is_outcome;
use crate::config::{Family, RunConfig};
use crate::results::RunRecord;
use crate::results::Status;
use anyhow::Result;
use serde_json::{Map, Value};
use std::fmt::Write;

mod figures;
pub use figures::{budget_figure, ecdf_figure};

/// The I' a diverged run enters with: the floor of I' = E_x KL(p(y|x) || p(y)), a mutual
/// information and so >= 0 (a collapsed generator scores about 0 too).
pub const DIVERGED_I_PRIME: f64 = 0.0;

/// How close to its family's best I' a run must be to count as near it.
pub const NEAR_BEST: f64 = 0.1;

/// Config fields that repeat a setting rather than change it: runs differing only in these are
/// one setting.
const REPLICATE_FIELDS: [&str; 1] = ["seed"];

/// The runs of one distribution: a family, or a GAN optimiser setting.
pub struct Group<'a> {
    pub label: String,
    /// Its scored or diverged rows.
    pub rows: Vec<&'a RunRecord>,
    /// Their I' ascending, diverged runs at [`DIVERGED_I_PRIME`].
    pub scores: Vec<f64>,
    pub diverged: usize,
}

impl<'a> Group<'a> {
    pub fn new(label: String, rows: impl IntoIterator<Item = &'a RunRecord>) -> Self {
        let rows: Vec<&RunRecord> = rows.into_iter().filter(|r| is_outcome(r)).collect();
        let mut scores: Vec<f64> = rows
            .iter()
            .map(|r| r.i_prime.unwrap_or(DIVERGED_I_PRIME))
            .collect();
        scores.sort_by(f64::total_cmp);
        let diverged = rows.iter().filter(|r| r.i_prime.is_none()).count();
        Group {
            label,
            rows,
            scores,
            diverged,
        }
    }

    pub fn n(&self) -> usize {
        self.scores.len()
    }

    /// E[max I' of k runs drawn without replacement] for k = 1 ..= n.
    pub fn budget_curve(&self) -> Vec<f64> {
        (1..=self.n())
            .map(|k| expected_max(&self.scores, k))
            .collect()
    }
}

/// The families scored by I' here, in [`Family`]'s order: those with a scored run, and where
/// anything in the folder is scored, the non-ladder families whose runs all diverged.
pub fn scored_families(rows: &[RunRecord]) -> Vec<Family> {
    let any_scored = rows.iter().any(|r| r.i_prime.is_some());
    let mut f: Vec<Family> = rows
        .iter()
        .filter(|r| {
            r.i_prime.is_some()
                || (any_scored && r.status == Status::Diverged && !r.config.model.is_ladder())
        })
        .map(|r| r.family)
        .collect();
    f.sort();
    f.dedup();
    f
}

/// One group per family scored by I'.
pub fn family_groups(rows: &[RunRecord]) -> Vec<(Family, Group<'_>)> {
    scored_families(rows)
        .into_iter()
        .map(|f| {
            let g = Group::new(f.as_str().into(), rows.iter().filter(|r| r.family == f));
            (f, g)
        })
        .collect()
}

/// GAN's runs split by (lr, optimD, optimG) as Figure 3 splits them (lr descending); empty
/// where GAN has fewer than two settings.
pub fn gan_setting_groups(rows: &[RunRecord]) -> Vec<Group<'_>> {
    let gan: Vec<&RunRecord> = rows
        .iter()
        .filter(|r| r.family == Family::Gan && is_outcome(r))
        .collect();
    let settings = GanSetting::distinct(gan.iter().map(|r| &r.config));
    if settings.len() < 2 {
        return vec![];
    }
    settings
        .into_iter()
        .map(|s| {
            let label = format!("lr {} D {} G {}", s.lr, s.optim_d(), s.optim_g());
            let of = gan.iter().copied();
            Group::new(label, of.filter(|r| GanSetting::of(&r.config) == s))
        })
        .collect()
}

/// The expected maximum of `k` values drawn without replacement from `sorted` (ascending):
/// sum over i = k..n of s_(i) C(i-1, k-1) / C(n, k), the chance that s_(i) is the largest of
/// the draw. The weights by their ratio, from the top: w_n = k/n, w_(i-1) = w_i (i-k)/(i-1),
/// so none overflows whatever n (they underflow to 0 far below the top, where they are 0).
pub fn expected_max(sorted: &[f64], k: usize) -> f64 {
    let n = sorted.len();
    assert!(1 <= k && k <= n, "k = {k} of n = {n} runs");
    let mut w = k as f64 / n as f64;
    let mut sum = 0.0;
    for i in (k..=n).rev() {
        sum += w * sorted[i - 1];
        if i > k {
            w *= (i - k) as f64 / (i - 1) as f64;
        }
    }
    sum
}

/// The budgets tabulated: k = 1, 2, 4, ... up to the largest n, and each group's n.
pub fn budget_ks(ns: &[usize]) -> Vec<usize> {
    let max = ns.iter().copied().max().unwrap_or(0);
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| Some(k * 2))
        .take_while(|&k| k <= max)
        .collect();
    ks.extend(ns.iter().copied().filter(|&n| n > 0));
    ks.sort();
    ks.dedup();
    ks
}

/// The empirical CDF of ascending `sorted` (F(x) = share of values <= x) as a step path from
/// x = lo to x = hi.
pub fn ecdf_path(sorted: &[f64], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    let mut i = sorted.iter().take_while(|&&v| v <= lo).count();
    let mut path = vec![(lo, i as f64 / n)];
    while i < sorted.len() {
        let v = sorted[i];
        let j = i + sorted[i..].iter().take_while(|&&u| u == v).count();
        path.push((v, i as f64 / n));
        path.push((v, j as f64 / n));
        i = j;
    }
    if hi > path.last().unwrap().0 {
        path.push((hi, path.last().unwrap().1));
    }
    path
}

/// How many of `sorted` (ascending) lie within `delta` of its largest value.
pub fn count_near_best(sorted: &[f64], delta: f64) -> usize {
    match sorted.last() {
        Some(&best) => sorted.iter().filter(|&&s| best - s <= delta).count(),
        None => 0,
    }
}

/// Share of `sorted` strictly below `x`, values equal to `x` counting half (`x` itself among
/// them when it is one of the values).
pub fn percentile(sorted: &[f64], x: f64) -> f64 {
    let below = sorted.iter().filter(|&&s| s < x).count() as f64;
    let tied = sorted.iter().filter(|&&s| s == x).count() as f64;
    (below + 0.5 * tied) / sorted.len() as f64
}

/// Where a family's default setting ([`RunConfig::default`] on the fields its runs vary) falls.
#[derive(Debug, PartialEq)]
pub enum DefaultSetting {
    /// The runs vary no field (one setting, perhaps over seeds): nothing to place.
    Unvaried,
    /// The runs at the default: (run id, I' or None where it diverged, percentile).
    Found(Vec<(String, Option<f64>, f64)>),
    /// No run is at the default: the fields the nearest runs differ in, each with the default
    /// value and the values the runs take.
    Absent(Vec<(String, String, Vec<String>)>),
}

fn fields(c: &RunConfig) -> Map<String, Value> {
    match serde_json::to_value(c).expect("a run config serialises") {
        Value::Object(m) => m,
        _ => unreachable!("a struct serialises to an object"),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The fields `g`'s runs vary (replicate fields aside), and where the default setting falls.
pub fn default_setting(g: &Group) -> (Vec<String>, DefaultSetting) {
    let default = fields(&RunConfig::default());
    let configs: Vec<Map<String, Value>> = g.rows.iter().map(|r| fields(&r.config)).collect();
    let varied: Vec<String> = default
        .keys()
        .filter(|k| !REPLICATE_FIELDS.contains(&k.as_str()))
        .filter(|k| configs.iter().any(|c| c[*k] != configs[0][*k]))
        .cloned()
        .collect();
    if varied.is_empty() {
        return (varied, DefaultSetting::Unvaried);
    }
    let differing: Vec<Vec<&String>> = configs
        .iter()
        .map(|c| varied.iter().filter(|k| c[*k] != default[*k]).collect())
        .collect();
    let found: Vec<(String, Option<f64>, f64)> = g
        .rows
        .iter()
        .zip(&differing)
        .filter(|(_, d)| d.is_empty())
        .map(|(r, _)| {
            let x = r.i_prime.unwrap_or(DIVERGED_I_PRIME);
            (r.run_id.clone(), r.i_prime, percentile(&g.scores, x))
        })
        .collect();
    if !found.is_empty() {
        return (varied, DefaultSetting::Found(found));
    }
    let fewest = differing.iter().map(|d| d.len()).min().unwrap_or(0);
    let mut named: Vec<&String> = differing
        .iter()
        .filter(|d| d.len() == fewest)
        .flatten()
        .copied()
        .collect();
    named.sort();
    named.dedup();
    let absent = named
        .into_iter()
        .map(|k| {
            let mut values: Vec<&Value> = configs.iter().map(|c| &c[k]).collect();
            values.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => show(a).cmp(&show(b)),
            });
            values.dedup();
            (
                k.clone(),
                show(&default[k]),
                values.into_iter().map(show).collect(),
            )
        })
        .collect();
    (varied, DefaultSetting::Absent(absent))
}

/// summary.md's robustness section: expected best I' against budget, the share near the best,
/// and the default settings.
pub fn write_tables(s: &mut String, rows: &[RunRecord]) -> Result<()> {
    let fams: Vec<Group> = family_groups(rows).into_iter().map(|(_, g)| g).collect();
    if fams.is_empty() {
        return Ok(());
    }
    writeln!(s, "\n## Robustness to hyper-parameters\n")?;
    writeln!(s, "A family's runs are the grid's settings of it. Diverged runs count, at I' = {DIVERGED_I_PRIME} (the floor of I' = E_x KL(p(y|x) || p(y)), which is >= 0); finished runs without a score are left out.\n")?;
    writeln!(
        s,
        "### Expected best I' of k runs drawn at random without replacement (budget.png)\n"
    )?;
    writeln!(s, "Exact, from the sorted scores: E[max of k] = sum_i s_(i) C(i-1, k-1) / C(n, k). At k = 1 the mean, at k = n the best.\n")?;
    let heads: Vec<String> = fams
        .iter()
        .map(|g| format!("{} (n = {})", g.label, g.n()))
        .collect();
    writeln!(s, "| k | {} |", heads.join(" | "))?;
    writeln!(s, "|---:|{}|", vec!["---:"; fams.len()].join("|"))?;
    for k in budget_ks(&fams.iter().map(Group::n).collect::<Vec<_>>()) {
        let cells: Vec<String> = fams.iter().map(|g| budget_cell(g, k)).collect();
        writeln!(s, "| {k} | {} |", cells.join(" | "))?;
    }
    let settings = gan_setting_groups(rows);
    if !settings.is_empty() {
        writeln!(s, "\nGAN by optimiser setting (Figure 3's split):\n")?;
        let ks = budget_ks(&settings.iter().map(Group::n).collect::<Vec<_>>());
        let heads: Vec<String> = ks.iter().map(|k| format!("k = {k}")).collect();
        writeln!(s, "| setting | runs | diverged | {} |", heads.join(" | "))?;
        writeln!(s, "|---|---:|---:|{}|", vec!["---:"; ks.len()].join("|"))?;
        for g in &settings {
            let cells: Vec<String> = ks.iter().map(|&k| budget_cell(g, k)).collect();
            writeln!(
                s,
                "| {} | {} | {} | {} |",
                g.label,
                g.n(),
                g.diverged,
                cells.join(" | ")
            )?;
        }
    }
    writeln!(
        s,
        "\n### Runs within {NEAR_BEST} of their family's best I'\n"
    )?;
    writeln!(
        s,
        "| family | runs | diverged | best I' | within {NEAR_BEST} of best | % of runs |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|")?;
    for g in &fams {
        let (label, n, div) = (&g.label, g.n(), g.diverged);
        if div == n {
            writeln!(s, "| {label} | {n} | {div} | every run diverged | - | - |")?;
            continue;
        }
        let near = count_near_best(&g.scores, NEAR_BEST);
        let best = fmt3(*g.scores.last().unwrap());
        let share = 100.0 * near as f64 / n as f64;
        writeln!(
            s,
            "| {label} | {n} | {div} | {best} | {near} | {share:.1} |"
        )?;
    }
    default_table(s, &fams)
}

fn budget_cell(g: &Group, k: usize) -> String {
    if k <= g.n() {
        fmt3(expected_max(&g.scores, k))
    } else {
        "-".into()
    }
}

/// Each family's default setting and where it falls among the family's runs.
fn default_table(s: &mut String, fams: &[Group]) -> Result<()> {
    writeln!(
        s,
        "\n### The default setting in each family's distribution\n"
    )?;
    writeln!(s, "The default is `RunConfig::default()` on the fields the family's runs vary (seeds aside). Percentile: % of the family's runs scoring strictly below it, ties (itself included) counting half.\n")?;
    writeln!(
        s,
        "| family | varied fields | default setting | I' | percentile |"
    )?;
    writeln!(s, "|---|---|---|---:|---:|")?;
    for g in fams {
        let (varied, at) = default_setting(g);
        let varied = if varied.is_empty() {
            "-".into()
        } else {
            varied.join(", ")
        };
        match at {
            DefaultSetting::Unvaried => writeln!(
                s,
                "| {} | {varied} | one setting: nothing to place | - | - |",
                g.label
            )?,
            DefaultSetting::Found(runs) => {
                for (id, i, p) in runs {
                    let i = i
                        .map(fmt3)
                        .unwrap_or_else(|| format!("diverged ({DIVERGED_I_PRIME})"));
                    writeln!(
                        s,
                        "| {} | {varied} | run {id} | {i} | {:.1} |",
                        g.label,
                        100.0 * p
                    )?;
                }
            }
            DefaultSetting::Absent(diffs) => {
                let d: Vec<String> = diffs
                    .iter()
                    .map(|(k, def, grid)| format!("{k} = {def} (grid: {})", grid.join(", ")))
                    .collect();
                writeln!(
                    s,
                    "| {} | {varied} | not in this grid; the nearest runs differ in {} | - | - |",
                    g.label,
                    d.join("; ")
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Model;
    use crate::results::ResultColumns;

    /// A GAN or EBGAN row; `None` is a diverged run.
    fn row(config: RunConfig, i_prime: Option<f64>) -> RunRecord {
        let status = match i_prime {
            Some(_) => Status::Finished,
            None => Status::Diverged,
        };
        let mut result = ResultColumns::new(config.run_id(), config.family(), status);
        result.i_prime = i_prime;
        RunRecord { result, config }
    }

    /// The same row finished without a score.
    fn unscored(mut r: RunRecord) -> RunRecord {
        r.result.i_prime = None;
        r.result.status = Status::Finished;
        r
    }

    fn gan(n_layer_g: usize, lr: f64) -> RunConfig {
        RunConfig {
            model: Model::Gan,
            n_layer_g,
            lr,
            ..Default::default()
        }
    }

    #[test]
    fn expected_max_by_hand() {
        let s = [1.0, 2.0, 3.0];
        // k = 1: the mean; k = 2: pairs {1,2} {1,3} {2,3} have maxes 2, 3, 3; k = 3: the max.
        assert!((expected_max(&s, 1) - 2.0).abs() < 1e-15);
        assert!((expected_max(&s, 2) - 8.0 / 3.0).abs() < 1e-15);
        assert_eq!(expected_max(&s, 3), 3.0);
        // A tie: pairs of [0, 0, 1] are {0,0} {0,1} {0,1}: maxes 0, 1, 1.
        assert!((expected_max(&[0.0, 0.0, 1.0], 2) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(expected_max(&[0.7], 1), 0.7);
    }

    #[test]
    fn expected_max_matches_every_subset_of_eight() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut s: Vec<f64> = (0..8).map(|_| rng.random::<f64>() * 2.3).collect();
        s[5] = s[2]; // a tie
        s[0] = 0.0; // a diverged run
        let mut sum = [0.0f64; 9];
        let mut count = [0usize; 9];
        for mask in 1u32..256 {
            let draw = (0..8).filter(|i| mask & (1 << i) != 0);
            let max = draw.clone().map(|i| s[i]).fold(f64::MIN, f64::max);
            let k = draw.count();
            sum[k] += max;
            count[k] += 1;
        }
        s.sort_by(f64::total_cmp);
        for k in 1..=8 {
            let brute = sum[k] / count[k] as f64;
            assert!((expected_max(&s, k) - brute).abs() < 1e-12, "k = {k}");
        }
    }

    #[test]
    fn expected_max_stays_exact_at_the_full_grid_size() {
        // Scores 1, 2, ..., n: sum_i i C(i-1, k-1) = k C(n+1, k+1) (hockey stick), so
        // E[max of k] = k (n + 1) / (k + 1).
        let n = 6144;
        let s: Vec<f64> = (1..=n).map(|i| i as f64).collect();
        for k in [1, 2, 3, 100, 3000, 6143, 6144] {
            let want = k as f64 * (n + 1) as f64 / (k + 1) as f64;
            let got = expected_max(&s, k);
            assert!(
                ((got - want) / want).abs() < 1e-10,
                "k = {k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn budgets_are_powers_of_two_and_each_group_size() {
        assert_eq!(budget_ks(&[48, 12, 12]), [1, 2, 4, 8, 12, 16, 32, 48]);
        assert_eq!(budget_ks(&[1]), [1]);
        assert_eq!(budget_ks(&[4, 0]), [1, 2, 4]);
        assert!(budget_ks(&[]).is_empty());
    }

    #[test]
    fn ecdf_starts_at_the_diverged_share() {
        // Two diverged runs (at 0) of four: F(0) = 1/2, then steps of 1/4 at 1 and 2.
        let p = ecdf_path(&[0.0, 0.0, 1.0, 2.0], 0.0, 3.0);
        assert_eq!(
            p,
            [
                (0.0, 0.5),
                (1.0, 0.5),
                (1.0, 0.75),
                (2.0, 0.75),
                (2.0, 1.0),
                (3.0, 1.0)
            ]
        );
        // A tie makes one step of two runs; nothing at the floor starts the curve at 0.
        let p = ecdf_path(&[0.5, 0.5], 0.0, 1.0);
        assert_eq!(p, [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn share_near_the_best_counts_diverged_runs() {
        // best 1.5; 1.25 is exactly 0.25 below it and counts; 0 (diverged) does not: 3 of 4.
        assert_eq!(count_near_best(&[0.0, 1.25, 1.4, 1.5], 0.25), 3);
        assert_eq!(count_near_best(&[0.0, 0.5, 1.0, 2.0], 0.1), 1);
        assert_eq!(count_near_best(&[], 0.1), 0);
    }

    #[test]
    fn percentile_counts_ties_half() {
        let s = [0.0, 0.0, 1.0, 2.0, 2.0, 3.0];
        assert_eq!(percentile(&s, 2.0), 4.0 / 6.0); // 3 below, 2 tied
        assert_eq!(percentile(&s, 0.0), 1.0 / 6.0); // 0 below, 2 tied
        assert_eq!(percentile(&s, 3.0), 5.5 / 6.0);
        assert_eq!(percentile(&[1.0], 1.0), 0.5);
    }

    #[test]
    fn the_default_setting_found_among_the_runs() {
        let rows = [
            row(gan(5, 0.001), Some(1.0)), // the default on n_layer_g and lr
            row(gan(3, 0.001), Some(0.5)),
            row(gan(5, 0.01), None),
            row(gan(3, 0.01), Some(2.0)),
        ];
        let g = Group::new("gan".into(), &rows);
        // Scores 0 (diverged), 0.5, 1, 2: two below 1, itself tied: 2.5 / 4.
        let want = DefaultSetting::Found(vec![(rows[0].run_id.clone(), Some(1.0), 0.625)]);
        assert_eq!(
            default_setting(&g),
            (vec!["lr".into(), "n_layer_g".into()], want)
        );
    }

    #[test]
    fn seeds_are_one_setting_and_an_absent_default_names_the_nearest_fields() {
        let seeds: Vec<RunRecord> = (0..3)
            .map(|seed| {
                row(
                    RunConfig {
                        seed,
                        ..Default::default()
                    },
                    Some(1.0),
                )
            })
            .collect();
        let g = Group::new("ebgan".into(), &seeds);
        assert_eq!(default_setting(&g), (vec![], DefaultSetting::Unvaried));
        // Grid nLayerG {2, 3} x nLayerD {2, 3}; the default is nLayerG 5, nLayerD 2: the runs
        // at nLayerD 2 are nearest, differing in nLayerG alone.
        let mut rows = vec![];
        for n_layer_g in [2, 3] {
            for n_layer_d in [2, 3] {
                let c = RunConfig {
                    n_layer_g,
                    n_layer_d,
                    ..Default::default()
                };
                rows.push(row(c, Some(1.0)));
            }
        }
        let g = Group::new("ebgan".into(), &rows);
        let want = DefaultSetting::Absent(vec![(
            "n_layer_g".into(),
            "5".into(),
            vec!["2".into(), "3".into()],
        )]);
        let varied = vec!["n_layer_d".to_string(), "n_layer_g".to_string()];
        assert_eq!(default_setting(&g), (varied, want));
    }

    #[test]
    fn the_full_table_1_grid_holds_each_family_default_once() {
        // Table 1 varies nLayerG, sizeG, nLayerD, sizeD and dropoutD (and GAN's lr, optimD,
        // optimG); the defaults 5, 1600, 2, 1024, false (adam, adam, 0.001) are grid values.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/grid-mnist.toml");
        let plan = crate::config::Experiment::load(&path).unwrap().runs;
        let rows: Vec<RunRecord> = plan.into_iter().map(|r| row(r.config, Some(1.0))).collect();
        let shapes = ["dropout_d", "n_layer_d", "n_layer_g", "size_d", "size_g"];
        for (family, g) in family_groups(&rows) {
            let (varied, at) = default_setting(&g);
            let mut want: Vec<&str> = shapes.to_vec();
            if family == Family::Gan {
                want.extend(["lr", "optim_d", "optim_g"]);
                want.sort();
            }
            assert_eq!(varied, want, "{family}");
            let DefaultSetting::Found(runs) = at else {
                panic!("{family}: {at:?}")
            };
            assert_eq!(runs.len(), 1, "{family}");
            let c = &rows.iter().find(|r| r.run_id == runs[0].0).unwrap().config;
            assert_eq!(
                (c.n_layer_g, c.size_g, c.n_layer_d, c.size_d),
                (5, 1600, 2, 1024)
            );
            assert!(!c.dropout_d && c.lr == 0.001, "{family}");
            // Every run scores 1: the default ties with all of them, itself included.
            assert_eq!(runs[0].2, 0.5);
        }
    }

    #[test]
    fn families_in_the_enum_order_with_their_diverged_runs() {
        let ladder = RunConfig {
            model: Model::Ladder,
            ..Default::default()
        };
        let rows = [
            row(RunConfig::default(), Some(1.0)),
            row(gan(5, 0.001), None), // GAN's only run diverged: GAN is still a family here
            row(ladder.clone(), None), // a ladder run is never scored by I'
            unscored(row(ladder, Some(0.0))),
        ];
        assert_eq!(scored_families(&rows), [Family::Gan, Family::Ebgan]);
        // Nothing scored at all (an unscored image set): no family.
        assert!(scored_families(&rows[1..2]).is_empty());
    }

    /// GAN: one diverged run at lr 0.01, one at I' 1 at lr 0.001; EBGAN: three seeds at 1, 2, 3.
    fn small_grid() -> Vec<RunRecord> {
        let mut rows = vec![row(gan(5, 0.01), None), row(gan(5, 0.001), Some(1.0))];
        for (seed, i) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
            rows.push(row(
                RunConfig {
                    seed,
                    ..Default::default()
                },
                Some(i),
            ));
        }
        rows
    }

    #[test]
    fn summary_tables_by_hand() {
        let rows = small_grid();
        let mut s = String::new();
        write_tables(&mut s, &rows).unwrap();
        let has = |line: &str| assert!(s.contains(line), "no {line:?} in\n{s}");
        // Budget: GAN [0, 1] has mean 0.5 and max 1; EBGAN [1, 2, 3] has 2, 8/3, 3.
        has("| k | gan (n = 2) | ebgan (n = 3) |\n");
        has("| 1 | 0.500 | 2.000 |\n| 2 | 1.000 | 2.667 |\n| 3 | - | 3.000 |\n");
        has("| lr 0.01 D adam G adam | 1 | 1 | 0.000 |\n| lr 0.001 D adam G adam | 1 | 0 | 1.000 |\n");
        // Near the best: GAN's diverged run is not within 0.1 of 1; of EBGAN only 3 is.
        has("| gan | 2 | 1 | 1.000 | 1 | 50.0 |\n");
        has("| ebgan | 3 | 0 | 3.000 | 1 | 33.3 |\n");
        // GAN's default lr 0.001 run scores 1 over [0, 1]: (1 + 1/2) / 2 = 75%.
        has(&format!(
            "| gan | lr | run {} | 1.000 | 75.0 |\n",
            rows[1].run_id
        ));
        has("| ebgan | - | one setting: nothing to place | - | - |\n");
    }

    #[test]
    fn a_family_whose_runs_all_diverged_scores_the_floor() {
        let rows = [
            row(RunConfig::default(), Some(1.0)),
            row(gan(5, 0.001), None),
            row(gan(3, 0.001), None),
        ];
        let mut s = String::new();
        write_tables(&mut s, &rows).unwrap();
        let has = |line: &str| assert!(s.contains(line), "no {line:?} in\n{s}");
        has("| k | gan (n = 2) | ebgan (n = 1) |\n|---:|---:|---:|\n| 1 | 0.000 | 1.000 |\n| 2 | 0.000 | - |\n");
        has("| gan | 2 | 2 | every run diverged | - | - |\n");
        // The default nLayerG 5 diverged: at the floor, tied with the other run: 50%.
        has(&format!(
            "| gan | n_layer_g | run {} | diverged (0) | 50.0 |\n",
            rows[1].run_id
        ));
    }

    #[test]
    fn figures_are_drawn_where_runs_are_scored() {
        super::super::figures::register_font();
        let dir = tempfile::tempdir().unwrap();
        let rows = small_grid();
        let budget = dir.path().join("budget.png");
        assert_eq!(budget_figure(&rows, &budget).unwrap(), Some(budget.clone()));
        let ecdf = dir.path().join("ecdf.png");
        assert_eq!(ecdf_figure(&rows, &ecdf).unwrap(), Some(ecdf.clone()));
        assert_eq!(
            image::open(&budget).unwrap().to_rgb8().dimensions(),
            (1700, 560)
        );
        assert_eq!(ecdf_figure(&rows[..1], &ecdf).unwrap(), None);
    }
}
