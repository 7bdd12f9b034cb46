//! Pulling-away term of EBGAN-PT, paper Eq. 14:
//! f_PT(S) = 1 / (N (N - 1)) * sum_{i != j} (S_i . S_j / (|S_i| |S_j|))^2
//! over the encoder codes S of a batch of GENERATED samples; used in the generator loss only.

use tch::Tensor;

/// The paper's PT weight.
pub const DEFAULT_WEIGHT: f64 = 0.1;

/// f_PT per member `[K]` of codes `[K, N, ...]` (each sample's code is flattened to one row).
pub fn pulling_away(codes: &Tensor) -> Tensor {
    let s = codes.flatten(2, -1);
    let n = s.size()[1];
    assert!(
        n >= 2,
        "the pulling-away term needs at least 2 samples per member, got {n}"
    );
    let norm = s
        .norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
        .clamp_min(1e-12);
    let unit = s / norm;
    let cos_sq = if unit.device().is_cuda() {
        unit.bmm(&unit.transpose(1, 2))
    } else {
        // Per member on the CPU: the batched kernel's sums depend on K and position.
        let grams: Vec<Tensor> = crate::member_wise::members(&unit)
            .iter()
            .map(|u| u.mm(&u.tr()))
            .collect();
        crate::member_wise::join(grams)
    }
    .square();
    let off_diagonal = cos_sq.sum_dim_intlist([1i64, 2].as_slice(), false, None)
        - cos_sq
            .diagonal(0, 1, 2)
            .sum_dim_intlist([-1i64].as_slice(), false, None);
    off_diagonal / (n * (n - 1)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(rows: &[f32], k: i64, n: i64, f: i64) -> Vec<f32> {
        Vec::<f32>::try_from(pulling_away(&Tensor::from_slice(rows).view([k, n, f]))).unwrap()
    }

    #[test]
    fn pt_of_a_small_matrix_by_hand() {
        // S = [(1,0), (0,1), (1,1)]: cosines 0 (1-2), 1/sqrt2 (1-3), 1/sqrt2 (2-3).
        // Squared: 0, 1/2, 1/2; both orders: sum = 2; N(N-1) = 6 -> f_PT = 1/3.
        let v = pt(&[1., 0., 0., 1., 1., 1.], 1, 3, 2);
        assert!((v[0] - 1.0 / 3.0).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn pt_squares_the_cosine() {
        // Opposite vectors have cosine -1: unsquared it would be -1, squared it is 1.
        let v = pt(&[1., 2., -1., -2.], 1, 2, 2);
        assert!((v[0] - 1.0).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn pt_is_invariant_to_scaling_a_row() {
        let a = pt(&[1., 0., 0., 1., 1., 1.], 1, 3, 2);
        let b = pt(&[7., 0., 0., 0.25, 3., 3.], 1, 3, 2);
        assert!((a[0] - b[0]).abs() < 1e-6);
    }

    #[test]
    fn pt_is_per_member_and_normalises_rows_not_columns() {
        // Member 0: orthogonal rows -> 0. Member 1: identical rows -> 1.
        // Member 2: rows (1,0), (1,1): cosine 1/sqrt2 -> 1/2. Normalising columns instead
        // would give rows (1/sqrt2, 0), (1/sqrt2, 1) with squared cosine 1/3.
        let v = pt(&[2., 0., 0., 1., 1., 1., 1., 1., 1., 0., 1., 1.], 3, 2, 2);
        assert!(v[0].abs() < 1e-6);
        assert!((v[1] - 1.0).abs() < 1e-6);
        assert!((v[2] - 0.5).abs() < 1e-6, "{v:?}");
    }
}
