//! Parity cases of the scoring path: generated-like MNIST samples through the shipped scoring
//! classifier (its weights exported) to I', the printed I', IS and MNIST FID against reference
//! images (crate::scoring::Scorer; reference parity/scoring.py), and KID of two feature sets
//! (crate::fid::distances) against torch-fidelity 0.4.0's (parity/kid.py).

use super::Export;
use crate::fid::distances;
use crate::scoring::Scorer;
use ebgan_models::rng::{normal, stream, Stream};
use std::collections::BTreeMap;
use tch::{Device, Tensor};

fn one(v: f64) -> Tensor {
    Tensor::from_slice(&[v])
}

/// Smooth blobs in [-1, 1] on a mostly dark background, `[n, 784]`: digit-like enough that the
/// classifier's probabilities spread over several classes.
fn blobs(
    rng: &mut rand_chacha::ChaCha8Rng,
    n: i64,
    gain: f64,
    offset: f64,
    device: Device,
) -> Tensor {
    let noise = normal(rng, &[n, 1, 28, 28], device);
    let smooth = noise.avg_pool2d([5, 5], [1, 1], [2, 2], false, true, None::<i64>);
    (smooth * gain - offset).tanh().view([n, 784])
}

pub fn classifier_export(device: Device) -> Export {
    let mut rng = stream(12, Stream::Sample, 0);
    // 1100 samples: two of the classifier's chunks of 1000.
    let samples = blobs(&mut rng, 1100, 10.0, 1.5, device);
    let reference = blobs(&mut rng, 600, 8.0, 1.0, device);
    let (scorer, weights) =
        Scorer::shipped(Some(&reference), device).expect("the shipped classifier loads");
    let s = scorer.scores(&samples);
    let ours = BTreeMap::from([
        ("score/i_prime".to_string(), one(s.i_prime)),
        ("score/i_prime_printed".to_string(), one(s.i_prime_printed)),
        ("score/inception_score".to_string(), one(s.inception_score)),
        (
            "score/fid".to_string(),
            one(s.fid.expect("reference statistics set")),
        ),
    ]);
    let mut inputs = vec![
        ("samples".to_string(), samples),
        ("reference".to_string(), reference),
    ];
    inputs.extend(
        weights
            .into_iter()
            .map(|(n, t)| (format!("classifier/{n}"), t)),
    );
    Export {
        name: "scoring-classifier".to_string(),
        script: "scoring.py",
        settings: serde_json::json!({}),
        inputs,
        ours,
        unchecked: vec![],
        exercised: vec![],
        // The classifier's fc1 fan-in (64 x 7 x 7) beside FID's covariance over 1100 samples.
        longest_sum: 64 * 7 * 7,
        steps: 1,
    }
}

/// KID over equal sets of 400: every subset of fid::distances (and of torch-fidelity) is then
/// the whole set in some order, so the estimates agree whatever the subset draws.
pub fn kid_export(device: Device) -> Export {
    let mut rng = stream(13, Stream::Sample, 0);
    let mix = normal(&mut rng, &[64, 64], device) * 0.2;
    let a = normal(&mut rng, &[400, 64], device).mm(&mix).relu();
    let b = (normal(&mut rng, &[400, 64], device).mm(&(&mix * 1.1)) + 0.05).relu();
    let d = distances(&a, &b, 5);
    Export {
        name: "kid".to_string(),
        script: "kid.py",
        settings: serde_json::json!({ "subsets": crate::fid::KID_SUBSETS }),
        inputs: vec![("features_a".to_string(), a), ("features_b".to_string(), b)],
        ours: BTreeMap::from([("score/kid".to_string(), one(d.kid))]),
        unchecked: vec![],
        exercised: vec![],
        // The mean over 400 x 400 kernel values.
        longest_sum: 400 * 400,
        steps: 1,
    }
}
