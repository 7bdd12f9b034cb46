//! Order statistics shared by the trainers' logs and the reports (beside the flow, so that
//! neither imports the other).

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

#[cfg(test)]
mod tests {
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
