//! Statistics shared by the trainers' logs and the reports (beside the flow, so that neither
//! imports the other): order statistics, and Student's t for the paired comparisons.

/// The q-quantile (0..1) of `sorted` by linear interpolation between order statistics; NaN when
/// empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

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

/// Student's t quantile 0.975 for `df` = 1..=30 degrees of freedom (scipy.stats.t.ppf(0.975,
/// df), to 6 decimals).
const T975: [f64; 30] = [
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
    2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
    2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
    2.048407, 2.045230, 2.042272,
];

/// Student's t quantile 0.975 with `df` >= 1 degrees of freedom: the table to 30, then the
/// Cornish-Fisher expansion in 1/df around the normal quantile (within 1e-4 of scipy's there).
pub fn t975(df: usize) -> f64 {
    assert!(df >= 1, "t975 needs a degree of freedom");
    if df <= T975.len() {
        return T975[df - 1];
    }
    let (z, n) = (1.959963984540054f64, df as f64);
    z + (z.powi(3) + z) / (4.0 * n)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
}

/// The 95% confidence interval of the mean of `d` (Student's t, n - 1 degrees of freedom); None
/// for fewer than two values.
pub fn mean_ci95(d: &[f64]) -> Option<(f64, f64)> {
    let n = d.len();
    if n < 2 {
        return None;
    }
    let (mean, std) = mean_std(d);
    let half = t975(n - 1) * std / (n as f64).sqrt();
    Some((mean - half, mean + half))
}

#[cfg(test)]
mod tests {
    use super::mean_std;

    #[test]
    fn mean_and_sample_std_by_hand() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        let (m, s) = mean_std(&[1.0, 1.5]);
        assert_eq!(m, 1.25);
        assert!((s - 0.125f64.sqrt()).abs() < 1e-15);
        assert_eq!(mean_std(&[0.9]), (0.9, 0.0));
    }
    #[test]
    fn a_paired_interval_by_hand() {
        // (1, 2, 3): mean 2, s = 1, half-width t(0.975, 2) / sqrt(3) = 4.302653 / 1.7320508 =
        // 2.4841377 (scipy: -0.48413771, 4.48413771).
        let (lo, hi) = super::mean_ci95(&[1.0, 2.0, 3.0]).unwrap();
        assert!(
            (lo + 0.48413771).abs() < 1e-6 && (hi - 4.48413771).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert_eq!(super::mean_ci95(&[1.0]), None);
        // Past the table: scipy's t.ppf(0.975, 31) = 2.0395134, t.ppf(0.975, 100) = 1.9839715.
        assert!((super::t975(31) - 2.0395134).abs() < 1e-4);
        assert!((super::t975(100) - 1.9839715).abs() < 1e-5);
        assert_eq!(super::t975(30), 2.042272);
    }

    #[test]
    fn quartiles_interpolate_between_order_statistics() {
        // Positions q * (n - 1) over 1, 2, 4, 8: 0.75 -> 1.75, 1.5 -> 3, 2.25 -> 5.
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(super::quantile(&v, 0.25), 1.75);
        assert_eq!(super::quantile(&v, 0.5), 3.0);
        assert_eq!(super::quantile(&v, 0.75), 5.0);
        assert!(super::quantile(&[], 0.5).is_nan());
    }
}
