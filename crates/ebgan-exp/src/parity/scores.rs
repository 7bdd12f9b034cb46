//! Parity case of the sample scores: I', the printed I' and IS from log-probabilities with a
//! few confidently wrong rows (where a clamp would cap the printed variant), and the Frechet
//! distance of two correlated feature sets. Reference: parity/scores.py (numpy, pytorch-fid's
//! scipy-based Frechet distance).

use super::Export;
use ebgan_core::score::{feature_stats, frechet_distance, scores};
use ebgan_models::rng::{normal, stream, Stream};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub fn export(device: Device) -> Export {
    let mut rng = stream(11, Stream::Sample, 0);
    // Logits up to +-60: log p of a wrong class reaches about -120, far below ln 1e-12.
    let logits = normal(&mut rng, &[400, 10], device) * 20.0;
    let log_probs = logits.log_softmax(-1, Kind::Float);
    let mix = normal(&mut rng, &[32, 32], device) * 0.3;
    let a = normal(&mut rng, &[600, 32], device).mm(&mix) + 1.0;
    let b = normal(&mut rng, &[500, 32], device).mm(&(&mix * 1.2)) + 0.7;
    let s = scores(&log_probs);
    let (ma, ca) = feature_stats(&a);
    let (mb, cb) = feature_stats(&b);
    let fid = frechet_distance(&ma, &ca, &mb, &cb);
    let one = |v: f64| Tensor::from_slice(&[v]);
    let ours = BTreeMap::from([
        ("score/i_prime".to_string(), one(s.i_prime)),
        ("score/i_prime_printed".to_string(), one(s.i_prime_printed)),
        ("score/inception_score".to_string(), one(s.inception_score)),
        ("score/fid".to_string(), one(fid)),
    ]);
    Export {
        name: "scores".to_string(),
        script: "scores.py",
        settings: serde_json::json!({}),
        inputs: vec![
            ("log_probs".to_string(), log_probs),
            ("features_a".to_string(), a),
            ("features_b".to_string(), b),
        ],
        ours,
        unchecked: vec![],
        exercised: vec![],
        // The covariance of 600 feature rows.
        longest_sum: 600,
        steps: 1,
    }
}
