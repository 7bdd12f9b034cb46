//! Sample-quality scores from a classifier's log-probabilities log p(y|x), and the Frechet
//! distance.
//!
//! paper.md §3: `i_prime` := E_x KL(p(y|x) || p(y)) (= log IS; bounded by ln C, which fits the
//! paper's 0..1.9 histogram axis); `i_prime_printed` := (E_x KL(p(y) || p(y|x)))^2, the formula as
//! printed; `inception_score` := exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub i_prime: f64,
    pub i_prime_printed: f64,
    pub inception_score: f64,
    /// Frechet distance between the classifier features of the samples and of the real test
    /// set, where the scorer knows the latter.
    #[serde(default)]
    pub fid: Option<f64>,
}

/// Scores of log-probabilities `log p(y|x)` `[N, C]` (a log-softmax), in f64 throughout: no
/// probability is clamped, so a confident wrong class costs what the classifier says.
pub fn scores(log_probs: &Tensor) -> Scores {
    let log_yx = log_probs.to_kind(Kind::Double);
    let n = log_yx.size()[0] as f64;
    let p_yx = log_yx.exp();
    // log p(y) = log mean_x p(y|x), stable in log space.
    let log_y = log_yx.logsumexp([0i64].as_slice(), true) - n.ln();
    let p_y = log_y.exp();
    // p log(p / q) with 0 log 0 = 0 (a one-hot row has log 0 = -inf elsewhere).
    let kl_terms = |p: &Tensor, log_p: &Tensor, log_q: &Tensor| {
        (p * (log_p - log_q)).where_self(&p.gt(0.0), &p.zeros_like())
    };
    let kl_yx_y = kl_terms(&p_yx, &log_yx, &log_y)
        .sum_dim_intlist(1, false, None)
        .mean(None);
    let kl_y_yx = kl_terms(&p_y.expand_as(&p_yx), &log_y.expand_as(&log_yx), &log_yx)
        .sum_dim_intlist(1, false, None)
        .mean(None);
    let i_prime = f64::try_from(kl_yx_y).unwrap();
    let printed = f64::try_from(kl_y_yx).unwrap();
    Scores {
        i_prime,
        i_prime_printed: printed * printed,
        inception_score: i_prime.exp(),
        fid: None,
    }
}

/// Mean `[F]` and covariance `[F, F]` (unbiased) of features `[N, F]`, in f64.
pub fn feature_stats(features: &Tensor) -> (Tensor, Tensor) {
    let f = features.to_kind(Kind::Double);
    let n = f.size()[0];
    let mu = f.mean_dim(0, false, None);
    let c = &f - &mu;
    let cov = c.transpose(0, 1).mm(&c) / (n - 1) as f64;
    (mu, cov)
}

/// Frechet distance between N(mu1, s1) and N(mu2, s2):
/// |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^{1/2}).
pub fn frechet_distance(mu1: &Tensor, s1: &Tensor, mu2: &Tensor, s2: &Tensor) -> f64 {
    let (mu1, s1, mu2, s2) = (
        mu1.to_kind(Kind::Double),
        s1.to_kind(Kind::Double),
        mu2.to_kind(Kind::Double),
        s2.to_kind(Kind::Double),
    );
    // tr sqrt(s1 s2) = sum sqrt(eig(sqrt(s1) s2 sqrt(s1))), a symmetric PSD product.
    let (eval1, evec1) = s1.linalg_eigh("L");
    let sqrt1 = (&evec1 * eval1.clamp_min(0.0).sqrt().unsqueeze(0)).mm(&evec1.transpose(0, 1));
    let m = sqrt1.mm(&s2).mm(&sqrt1);
    let m = (&m + m.transpose(0, 1)) / 2.0;
    let (eval_m, _) = m.linalg_eigh("L");
    let tr_sqrt = f64::try_from(eval_m.clamp_min(0.0).sqrt().sum(None)).unwrap();
    let diff = f64::try_from((&mu1 - &mu2).square().sum(None)).unwrap();
    let tr = |s: &Tensor| f64::try_from(s.trace()).unwrap();
    diff + tr(&s1) + tr(&s2) - 2.0 * tr_sqrt
}

/// Unbiased squared MMD between feature sets `x` `[M, D]` and `y` `[N, D]` under the cubic
/// polynomial kernel k(a, b) = (a.b / D + 1)^3: KID's estimate on one pair of subsets
/// (Binkowski et al. 2018; torch-fidelity's kernel). In f64.
pub fn mmd2_polynomial(x: &Tensor, y: &Tensor) -> f64 {
    let (x, y) = (x.to_kind(Kind::Double), y.to_kind(Kind::Double));
    let d = x.size()[1] as f64;
    let (m, n) = (x.size()[0] as f64, y.size()[0] as f64);
    let k = |a: &Tensor, b: &Tensor| (a.mm(&b.transpose(0, 1)) / d + 1.0).pow_tensor_scalar(3);
    let off_diagonal = |t: &Tensor| f64::try_from(t.sum(None) - t.trace()).unwrap();
    let kxx = off_diagonal(&k(&x, &x)) / (m * (m - 1.0));
    let kyy = off_diagonal(&k(&y, &y)) / (n * (n - 1.0));
    let kxy = f64::try_from(k(&x, &y).sum(None)).unwrap() / (m * n);
    kxx + kyy - 2.0 * kxy
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log-probabilities of probability rows (exact zeros become -inf, as log-softmax never
    /// gives but the formulas must bear).
    fn probs(rows: &[f64], c: i64) -> Tensor {
        Tensor::from_slice(rows).view([-1, c]).log()
    }

    #[test]
    fn perfect_confident_balanced_samples_reach_log_c() {
        // One-hot over 4 classes, balanced: KL(p(y|x) || p(y)) = ln 4 for every x.
        let p = probs(
            &[
                1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
            ],
            4,
        );
        let s = scores(&p);
        assert!((s.i_prime - 4f64.ln()).abs() < 1e-9);
        assert!((s.inception_score - 4.0).abs() < 1e-8);
    }

    #[test]
    fn collapsed_or_uninformative_samples_score_zero() {
        let collapsed = scores(&probs(&[0., 1., 0., 1.], 2));
        assert!(collapsed.i_prime.abs() < 1e-9);
        assert!(collapsed.i_prime_printed.abs() < 1e-9);
        let uniform = scores(&probs(&[0.5, 0.5, 0.5, 0.5], 2));
        assert!(uniform.i_prime.abs() < 1e-12);
        assert!((uniform.inception_score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn scores_of_a_hand_computed_pair() {
        // x1: (3/4, 1/4), x2: (1/4, 3/4) -> p(y) = (1/2, 1/2).
        // KL(p(y|x)||p(y)) = 3/4 ln(3/2) + 1/4 ln(1/2) for both rows.
        // KL(p(y)||p(y|x)) = 1/2 ln(2/3) + 1/2 ln 2 for both rows; printed = its square.
        let s = scores(&probs(&[0.75, 0.25, 0.25, 0.75], 2));
        let kl = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
        let rev = 0.5 * (2.0f64 / 3.0).ln() + 0.5 * 2f64.ln();
        assert!((s.i_prime - kl).abs() < 1e-12);
        assert!((s.inception_score - kl.exp()).abs() < 1e-12);
        assert!((s.i_prime_printed - rev * rev).abs() < 1e-12);
    }

    #[test]
    fn a_confident_wrong_class_is_not_capped() {
        // Two samples, 2 classes: x1 says class 0 with log p(1|x1) = -40, x2 the reverse.
        // p(y) = (1/2, 1/2) up to e^-40; KL(p(y) || p(y|x)) = 1/2 (ln 1/2 - 0) + 1/2 (ln 1/2 + 40)
        // = 20 - ln 2 for both. A clamp of p at 1e-12 would cap the -40 at ln 1e-12 = -27.6.
        let l = Tensor::from_slice(&[0.0f64, -40.0, -40.0, 0.0]).view([2, 2]);
        let s = scores(&l);
        let rev = 20.0 - 2f64.ln();
        assert!(
            (s.i_prime_printed - rev * rev).abs() < 1e-9,
            "{}",
            s.i_prime_printed
        );
        assert!((s.i_prime - 2f64.ln()).abs() < 1e-9, "{}", s.i_prime);
        // f32 log-softmax input is taken to f64 before any exp.
        let s32 = scores(&l.to_kind(Kind::Float));
        assert!((s32.i_prime_printed - rev * rev).abs() < 1e-6);
    }

    #[test]
    fn frechet_distance_of_diagonal_gaussians() {
        // Diagonal covariances commute: FD = |dmu|^2 + sum (sqrt a - sqrt b)^2.
        let mu1 = Tensor::from_slice(&[0f64, 0.]);
        let mu2 = Tensor::from_slice(&[3f64, 4.]);
        let s1 = Tensor::from_slice(&[4f64, 0., 0., 9.]).view([2, 2]);
        let s2 = Tensor::from_slice(&[1f64, 0., 0., 16.]).view([2, 2]);
        let fd = frechet_distance(&mu1, &s1, &mu2, &s2);
        assert!((fd - (25.0 + 1.0 + 1.0)).abs() < 1e-9, "{fd}");
        assert!(frechet_distance(&mu1, &s1, &mu1, &s1).abs() < 1e-9);
    }

    #[test]
    fn mmd2_of_two_pairs_by_hand() {
        // D = 1, k(a, b) = (ab + 1)^3; x = {0, 1}, y = {1, 2}.
        // xx: k(0,1) = 1 twice / 2 = 1; yy: k(1,2) = 27 twice / 2 = 27;
        // xy: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, 2 * 37 / 4 = 18.5.
        let x = Tensor::from_slice(&[0f64, 1.]).view([2, 1]);
        let y = Tensor::from_slice(&[1f64, 2.]).view([2, 1]);
        assert!((mmd2_polynomial(&x, &y) - 9.5).abs() < 1e-12);
    }

    #[test]
    fn feature_stats_by_hand() {
        let f = Tensor::from_slice(&[1f64, 2., 3., 6.]).view([2, 2]);
        let (mu, cov) = feature_stats(&f);
        assert_eq!(Vec::<f64>::try_from(mu).unwrap(), [2.0, 4.0]);
        // deviations (-1,-2), (1,2); unbiased with n-1 = 1
        assert_eq!(
            Vec::<f64>::try_from(cov.flatten(0, -1)).unwrap(),
            [2.0, 4.0, 4.0, 8.0]
        );
    }
}
