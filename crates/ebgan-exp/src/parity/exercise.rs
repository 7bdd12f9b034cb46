//! Terms of an update that stay untested unless a case's draws reach them: each case lists its
//! [`Exercise`]s and asserts, on our run, that it reached them before comparing.

use std::collections::BTreeMap;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Exercise {
    /// BEGAN's k_t strictly inside (0, 1) in some D step (k_t's term in L_D is live).
    KInside,
    /// k_t clipped at 1 in some D step.
    KClipsAtOne,
    /// MAGAN's rule moves the strict member's (member 0's) margin after an adversarial epoch.
    StrictMarginUpdate,
    /// Every member's scheduled margin strictly between its start and its floor in some step.
    MarginDecaying,
    /// WGAN-GP: every member's gradient penalty away from 0 in every step (its term in the
    /// critic's loss is live), and G updated on some steps and not on others.
    PenaltyAndCriticTurns,
}

/// Whether our run reached each exercise, from its answers `out/k/<t>` (k_t after step t) and
/// `out/margin/<t>` (the margin of step t, or MAGAN's after step t), `[members]` each;
/// `pretrain`: MAGAN's D-only steps.
pub fn exercised(
    exercises: &[Exercise],
    members: usize,
    steps: usize,
    pretrain: usize,
    ours: &BTreeMap<String, Tensor>,
) -> Vec<(String, bool)> {
    let series = |name: &str, member: usize| -> Vec<f64> {
        (0..steps)
            .filter_map(|t| ours.get(&format!("out/{name}/{t}")))
            .map(|v| v.double_value(&[member as i64]))
            .collect()
    };
    // k after step t is the k of step t + 1's D loss.
    let k_used: Vec<f64> = (0..members)
        .flat_map(|m| {
            let k = series("k", m);
            k[..k.len().saturating_sub(1)].to_vec()
        })
        .collect();
    exercises
        .iter()
        .map(|e| match e {
            Exercise::KInside => (
                "k_t strictly between 0 and 1 in some D step".to_string(),
                k_used.iter().any(|&k| k > 0.0 && k < 1.0),
            ),
            Exercise::KClipsAtOne => (
                "k_t clipped at 1 in some D step".to_string(),
                k_used.contains(&1.0),
            ),
            Exercise::StrictMarginUpdate => {
                let m = series("margin", 0);
                (
                    "a margin update of the strict member after an adversarial epoch".to_string(),
                    pretrain > 0
                        && m.len() > pretrain
                        && m[pretrain..].iter().any(|&v| v != m[pretrain - 1]),
                )
            }
            Exercise::PenaltyAndCriticTurns => (
                "a non-zero gradient penalty in every step, G updated on some steps only"
                    .to_string(),
                (0..members).all(|j| series("penalty", j).iter().all(|&p| p > 1e-3)) && {
                    let turns = series("g_turn", 0);
                    turns.contains(&1.0) && turns.contains(&0.0)
                },
            ),
            Exercise::MarginDecaying => (
                "every member's margin strictly inside its decay in some step".to_string(),
                (0..members).all(|j| {
                    let m = series("margin", j);
                    let (first, last) = (m[0], m[m.len() - 1]);
                    m.iter()
                        .any(|&v| v < first.max(last) && v > first.min(last))
                }),
            ),
        })
        .collect()
}
