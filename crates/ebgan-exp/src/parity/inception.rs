//! Parity of the FID-Inception network (ebgan_models::inception) with pytorch-fid's own classes:
//! parity/fid_inception.py builds pytorch-fid's InceptionV3 with seeded random weights (the real
//! ones cannot be downloaded here), exports them with its inputs and pool3 features, and the
//! Frechet distance of two feature sets by pytorch-fid's scipy `sqrtm` formula.

use super::Check;
use anyhow::{bail, Context, Result};
use ebgan_core::score::{feature_stats, frechet_distance};
use ebgan_models::inception::FidInception;
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// Features within this of the reference's largest magnitude (f32 reordering).
pub const TOLERANCE_FEATURES: f64 = 1e-4;
/// The Frechet distance and feature statistics in f64.
pub const TOLERANCE_FRECHET: f64 = 1e-8;

fn relative(ours: &Tensor, theirs: &Tensor) -> Result<f64> {
    let (a, b) = (
        ours.to_kind(Kind::Double).to_device(Device::Cpu),
        theirs.to_kind(Kind::Double).to_device(Device::Cpu),
    );
    if a.size() != b.size() {
        bail!("shapes {:?} and {:?}", a.size(), b.size());
    }
    let scale = f64::try_from(b.abs().max())?.max(1e-30);
    Ok(f64::try_from((&a - &b).abs().max())? / scale)
}

/// Runs the reference into `out`/inception and compares our network and Frechet distance.
pub fn check(out: &Path, python: &Path, device: Device) -> Result<Vec<Check>> {
    let dir = out.join("inception");
    let script = super::scripts_dir().join("fid_inception.py");
    let mut command = std::process::Command::new(python);
    command.arg(&script).arg("--out").arg(&dir);
    super::run_reference(&mut command, &format!("{}", script.display()))?;
    let file = dir.join("inception.safetensors");
    let mut vs = nn::VarStore::new(device);
    let net = FidInception::new(&vs.root());
    vs.load(&file)
        .with_context(|| format!("{}: not pytorch-fid's Inception tensors", file.display()))?;
    let refs: HashMap<String, Tensor> = Tensor::read_safetensors(&file)?.into_iter().collect();
    let get = |k: &str| -> Result<Tensor> {
        Ok(refs
            .get(k)
            .with_context(|| format!("{}: no `{k}`", file.display()))?
            .to_device(device))
    };
    let centred = |t: &Tensor| t - t.mean_dim(0, true, None::<Kind>);
    let mut worst = (0.0f64, String::new());
    let mut note = |err: f64, key: &str| {
        if err > worst.0 || worst.1.is_empty() {
            worst = (err, key.to_string());
        }
    };
    for (input, features) in [("input", "features"), ("input_b", "features_b")] {
        let ours = net.features(&get(input)?);
        let theirs = get(features)?;
        note(relative(&ours, &theirs)?, features);
        // Much of a random-weight feature does not depend on the image: compare what does.
        let key = format!("{features} (centred)");
        note(relative(&centred(&ours), &centred(&theirs))?, &key);
    }
    // What `ebgan fid` reads from an image folder (PNG decoding, grey to RGB, one size per
    // image) against pytorch-fid's own loader on the same files.
    let folder: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("folder.safetensors"))?
        .into_iter()
        .collect();
    let inception = crate::fid::Inception::with_network(vs, net, device);
    let ours: Vec<Tensor> = crate::fid::folder_images(&dir.join("images"), usize::MAX)?
        .iter()
        .map(|x| inception.features(x))
        .collect();
    let theirs = folder
        .get("folder_features")
        .context("folder: no `folder_features`")?;
    note(relative(&Tensor::cat(&ours, 0), theirs)?, "folder_features");
    let mut checks = vec![Check {
        case: "fid-inception".into(),
        group: "features",
        tensors: 5,
        worst: worst.0,
        worst_key: worst.1,
        tolerance: TOLERANCE_FEATURES,
    }];

    let fr: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("frechet.safetensors"))?
        .into_iter()
        .collect();
    let f =
        |k: &str| -> Result<&Tensor> { fr.get(k).with_context(|| format!("frechet: no `{k}`")) };
    let (mu1, s1) = feature_stats(f("act1")?);
    let (mu2, s2) = feature_stats(f("act2")?);
    let fid = frechet_distance(&mu1, &s1, &mu2, &s2);
    let theirs = f64::try_from(f("fid")?.get(0))?;
    let stats = [
        relative(&mu1, f("mu1")?)?,
        relative(&s1, f("sigma1")?)?,
        relative(&mu2, f("mu2")?)?,
        relative(&s2, f("sigma2")?)?,
    ]
    .into_iter()
    .fold(0.0, f64::max);
    let fid_err = (fid - theirs).abs() / theirs.abs().max(1e-30);
    let (err, key) = if fid_err >= stats {
        (fid_err, format!("fid {fid:.6} vs {theirs:.6}"))
    } else {
        (stats, "mean / covariance".to_string())
    };
    checks.push(Check {
        case: "fid-inception".into(),
        group: "frechet",
        tensors: 5,
        worst: err,
        worst_key: key,
        tolerance: TOLERANCE_FRECHET,
    });
    Ok(checks)
}
