//! TensorBoard event files of a finished run, written from Rust: `tensorboard --logdir
//! results/NAME` shows every run of a grid (each run folder is a TensorBoard run) with its loss
//! log as scalars, its final scores, its sample sheets as images and, in the HParams
//! dashboard, its settings beside its scores.
//!
//! The format is TensorFlow's: a file of records, each `len: u64 | masked_crc32c(len): u32 |
//! data | masked_crc32c(data): u32` (little endian), the data an `Event` protobuf
//! (tensorboard/compat/proto/event.proto, summary.proto; the HParams plugin's
//! plugin_data.proto). The messages below carry only the fields written here, with the
//! field numbers of those files.

use super::{LossLog, RunRecord};
use crate::fsutil::write_atomic;
use anyhow::Result;
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    image: Option<Image>,
    #[prost(message, optional, tag = "8")]
    tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    /// 3: RGB.
    #[prost(int32, tag = "3")]
    colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

/// The HParams plugin's values carry an empty float tensor (its `NULL_TENSOR`).
#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    /// 1: DT_FLOAT.
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShape>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShape {}

#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// tensorboard.hparams.HParamsPluginData (version 0).
#[derive(Clone, PartialEq, Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(message, optional, tag = "3")]
    session_start_info: Option<SessionStartInfo>,
    #[prost(message, optional, tag = "4")]
    session_end_info: Option<SessionEndInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: BTreeMap<String, ProtoValue>,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

#[derive(Clone, PartialEq, Message)]
struct SessionEndInfo {
    /// 1: STATUS_SUCCESS, 2: STATUS_FAILURE.
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// google.protobuf.Value: a number, a string or a bool.
#[derive(Clone, PartialEq, Message)]
struct ProtoValue {
    #[prost(double, optional, tag = "2")]
    number_value: Option<f64>,
    #[prost(string, optional, tag = "3")]
    string_value: Option<String>,
    #[prost(bool, optional, tag = "4")]
    bool_value: Option<bool>,
}

/// TFRecord's checksum: CRC-32C, rotated and offset so that a CRC of data holding CRCs does not
/// degenerate.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One record: length, its checksum, the data, its checksum.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

fn scalar(tag: &str, v: f64) -> Value {
    Value {
        tag: tag.into(),
        simple_value: Some(v as f32),
        ..Default::default()
    }
}

/// A log row's statistics under TensorBoard tags (a family's own columns where it has them).
fn log_values(l: &LossLog) -> Vec<Value> {
    let mut v = vec![
        scalar("loss/d", l.loss_d),
        scalar("loss/g", l.loss_g),
        scalar("d/real", l.real),
        scalar("d/fake", l.fake),
    ];
    for (tag, value) in [
        ("d/margin", l.margin),
        ("began/k_t", l.k_t),
        ("began/m_global", l.m_global),
        ("wgan_gp/gradient_penalty", l.gradient_penalty),
    ] {
        v.extend(value.filter(|x| x.is_finite()).map(|x| scalar(tag, x)));
    }
    v
}

fn hparams_value(tag: &str, data: HParamsPluginData) -> Value {
    Value {
        tag: tag.into(),
        tensor: Some(TensorProto {
            dtype: 1,
            tensor_shape: Some(TensorShape {}),
        }),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "hparams".into(),
                content: data.encode_to_vec(),
            }),
        }),
        ..Default::default()
    }
}

/// The run's settings as the HParams dashboard's columns: every RunConfig field, and family.
fn hparams(record: &RunRecord) -> Result<BTreeMap<String, ProtoValue>> {
    let serde_json::Value::Object(fields) = serde_json::to_value(&record.config)? else {
        anyhow::bail!("a run config serialises to an object")
    };
    let mut out: BTreeMap<String, ProtoValue> = fields
        .into_iter()
        // Unset optional fields (`g_lr`) are left out.
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Number(n) => ProtoValue {
                    number_value: n.as_f64(),
                    ..Default::default()
                },
                serde_json::Value::Bool(b) => ProtoValue {
                    bool_value: Some(b),
                    ..Default::default()
                },
                serde_json::Value::String(s) => ProtoValue {
                    string_value: Some(s),
                    ..Default::default()
                },
                other => ProtoValue {
                    string_value: Some(other.to_string()),
                    ..Default::default()
                },
            };
            (k, value)
        })
        .collect();
    out.insert(
        "family".into(),
        ProtoValue {
            string_value: Some(record.family.to_string()),
            ..Default::default()
        },
    );
    Ok(out)
}

/// The events of a finished run: its settings (HParams), every log window's statistics at its
/// step, its sample sheets (`images`: (step, PNG path)) and its final scores at its last step.
fn events(record: &RunRecord, log: &[LossLog], images: &[(u64, PathBuf)]) -> Result<Vec<Event>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let event = |step: u64, value: Vec<Value>| Event {
        wall_time: now,
        step: step as i64,
        summary: Some(Summary { value }),
        ..Default::default()
    };
    let mut out = vec![Event {
        wall_time: now,
        file_version: Some("brain.Event:2".into()),
        ..Default::default()
    }];
    out.push(event(
        0,
        vec![hparams_value(
            "_hparams_/session_start_info",
            HParamsPluginData {
                version: 0,
                session_start_info: Some(SessionStartInfo {
                    hparams: hparams(record)?,
                    start_time_secs: now - record.wall_s,
                }),
                session_end_info: None,
            },
        )],
    ));
    out.extend(log.iter().map(|l| event(l.step, log_values(l))));
    for (step, path) in images {
        // A sheet that cannot be read is left out; the run's own files are what count.
        let (Ok(png), Ok((width, height))) = (std::fs::read(path), image::image_dimensions(path))
        else {
            continue;
        };
        let tag = match path.parent().and_then(|p| p.file_name()) {
            Some(d) if d == "samples" => "samples/checkpoint",
            _ => "samples/final",
        };
        out.push(event(
            *step,
            vec![Value {
                tag: tag.into(),
                image: Some(Image {
                    height: height as i32,
                    width: width as i32,
                    colorspace: 3,
                    encoded_image_string: png,
                }),
                ..Default::default()
            }],
        ));
    }
    let last = log.last().map_or(0, |l| l.step);
    let scores: Vec<Value> = [
        ("score/i_prime", record.i_prime),
        ("score/inception_score", record.inception_score),
        ("score/fid", record.fid),
        ("score/inception_fid", record.inception_fid),
        ("score/inception_kid", record.inception_kid),
        ("score/test_error", record.test_error),
    ]
    .into_iter()
    .filter_map(|(tag, v)| v.filter(|x| x.is_finite()).map(|x| scalar(tag, x)))
    .collect();
    if !scores.is_empty() {
        out.push(event(last, scores));
    }
    out.push(event(
        last,
        vec![hparams_value(
            "_hparams_/session_end_info",
            HParamsPluginData {
                version: 0,
                session_start_info: None,
                session_end_info: Some(SessionEndInfo {
                    status: match record.status {
                        super::Status::Finished => 1,
                        super::Status::Diverged => 2,
                    },
                    end_time_secs: now,
                }),
            },
        )],
    ));
    Ok(out)
}

/// The run's sample sheets: `samples/step-N.png` (convolutional runs' checkpoints) at step N,
/// and `samples.png` at `last`.
pub fn sample_sheets(dir: &Path, last: u64) -> Vec<(u64, PathBuf)> {
    let mut sheets: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("samples"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".png")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    sheets.sort();
    let last_sheet = dir.join("samples.png");
    if last_sheet.is_file() {
        sheets.push((last, last_sheet));
    }
    sheets
}

/// The file name TensorBoard looks for (`*tfevents*`); one per run, written whole.
pub const FILE: &str = "events.out.tfevents.0.ebgan";

/// Writes run `record`'s event file into its folder `dir` (atomically, replacing an earlier one).
pub fn write_run(dir: &Path, record: &RunRecord, log: &[LossLog]) -> Result<PathBuf> {
    let last = log.last().map_or(0, |l| l.step);
    let images = sample_sheets(dir, last);
    let mut bytes = vec![];
    for e in events(record, log, &images)? {
        bytes.extend(record_bytes(&e));
    }
    let path = dir.join(FILE);
    write_atomic(&path, &bytes)?;
    Ok(path)
}

fn record_bytes(e: &Event) -> Vec<u8> {
    record(&e.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crcs_match_tensorflows() {
        // CRC-32C check value (RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa), then TFRecord's
        // mask: rotate right by 15, add 0xa282ead8.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        let want = 0x8a91_36aau32.rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(masked_crc(&[0u8; 32]), want);
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
    }
}
