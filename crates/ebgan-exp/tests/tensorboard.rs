//! TensorBoard event files as TensorBoard reads them: a tiny grid's runs (EBGAN, WGAN-GP, a
//! diverging GAN) written by `ebgan run`, read back by TensorBoard's own EventAccumulator
//! (parity/events.py, tensorboard 2.21 in the torch environment), checked against each run's
//! losses.csv and runs.csv row; then a flipped byte, which TensorBoard's CRC check refuses.

use std::path::{Path, PathBuf};

mod common;
use common::rows;
use ebgan_exp::results::{events, LossLog, Status};

const TINY: &str = r#"
name = "tb"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 2
score_samples = 128

[[grid]]
model = "ebgan"

[[grid]]
model = "wgan-gp"
wgan_n_critic = 2

[[grid]]
model = "gan"
optim_d = "sgd"
optim_g = "sgd"
lr = 1e12
"#;

/// What TensorBoard read from `path`.
fn read(path: &Path) -> serde_json::Value {
    let out = common::python("parity/events.py", &[path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn losses(dir: &Path) -> Vec<LossLog> {
    csv::Reader::from_path(dir.join("losses.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

fn series(tb: &serde_json::Value, tag: &str) -> Vec<(u64, f64)> {
    tb["scalars"][tag]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn tensorboard_reads_every_runs_scalars_images_and_settings_and_refuses_a_flipped_byte() {
    let (tmp, root) = common::train_grid(TINY, "tb");
    let rows = rows(&root.join("runs.csv"));
    assert_eq!(rows.len(), 3);
    let mut families = vec![];
    for row in &rows {
        let dir: PathBuf = root.join(&row.run_id);
        let tb = read(&dir.join(events::FILE));
        let log = losses(&dir);
        // Every log window at its step, as f32 (TensorBoard's simple_value).
        for (tag, of) in [
            ("loss/d", (|l: &LossLog| l.loss_d) as fn(&LossLog) -> f64),
            ("loss/g", |l| l.loss_g),
            ("d/real", |l| l.real),
            ("d/fake", |l| l.fake),
        ] {
            let want: Vec<(u64, f64)> = log.iter().map(|l| (l.step, of(l) as f32 as f64)).collect();
            assert_eq!(series(&tb, tag), want, "{} {tag}", row.run_id);
        }
        let penalty = series(&tb, "wgan_gp/gradient_penalty");
        assert_eq!(
            !penalty.is_empty(),
            row.config.model.to_string() == "wgan-gp"
        );
        // Final scores at the last step; the settings and the outcome in the HParams data.
        match row.i_prime {
            Some(i) => assert_eq!(series(&tb, "score/i_prime")[0].1, i as f32 as f64),
            None => assert!(series(&tb, "score/i_prime").is_empty()),
        }
        assert_eq!(tb["hparams"]["family"], row.family.to_string());
        assert_eq!(tb["hparams"]["lr"].as_f64(), Some(row.config.lr));
        assert_eq!(tb["hparams"]["model"], row.config.model.to_string());
        let want_status = match row.status {
            Status::Finished => 1,
            Status::Diverged => 2,
        };
        assert_eq!(tb["status"], want_status);
        // A finished run's final sample sheet (8 x 8 samples of 28 x 28, 1-pixel borders).
        if row.status == Status::Finished {
            assert_eq!(tb["images"]["samples/final"][0][1], 8 * 30 + 2);
        }
        families.push(row.family.to_string());
    }
    families.sort();
    assert_eq!(families, ["ebgan", "gan", "wgan-gp"]);

    // A flipped byte inside the second log window's record: TensorBoard's reader checks each
    // record's CRC and stops at the first that fails, so that window is dropped (with every
    // record after it) and nothing before it is lost or changed.
    let row = rows
        .iter()
        .find(|r| r.family.to_string() == "ebgan")
        .unwrap();
    let path = root.join(&row.run_id).join(events::FILE);
    let whole = read(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let (mut at, mut records) = (0usize, vec![]);
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        records.push(at);
        at += 8 + 4 + len + 4;
    }
    // Records: file version, settings, then one per log window.
    let second_window = records[3];
    bytes[second_window + 12 + 5] ^= 0x10;
    let flipped = tmp.path().join("flipped").join(events::FILE);
    std::fs::create_dir_all(flipped.parent().unwrap()).unwrap();
    std::fs::write(&flipped, &bytes).unwrap();
    let damaged = read(&flipped);
    let (all, kept) = (series(&whole, "loss/d"), series(&damaged, "loss/d"));
    assert!(all.len() >= 2, "{all:?}");
    assert_eq!(
        kept,
        all[..1],
        "the flipped record and those after it are dropped"
    );
    assert_eq!(
        damaged["hparams"]["family"], "ebgan",
        "records before it are kept"
    );
}
