//! A run's family with the settings only it reads, as a type: [`Settings`], tagged by model,
//! each variant holding its family file's settings type. The flat record (`config::RunConfig`)
//! is what files write and run ids hash; these are read from it by field name.

use super::{began, ebgan, ladder, magan, wgan_gp, Model};
use serde::{de::DeserializeOwned, Serialize};

/// A run's flat fields by name, as experiment files and the run id's canonical JSON spell them.
pub type Flat = serde_json::Map<String, serde_json::Value>;

/// A settings type read by field name from a run's flat fields (a whole run config: every field
/// there, so a name the record lacks is a bug, found by the tests that plan every model).
pub fn read<T: DeserializeOwned>(flat: &Flat) -> T {
    serde_json::from_value(serde_json::Value::Object(flat.clone()))
        .expect("settings name fields of the run config (tests: every model and network)")
}

/// A struct's fields by name (settings, or a whole run config).
pub fn write(s: &impl Serialize) -> Flat {
    match serde_json::to_value(s).expect("settings serialise") {
        serde_json::Value::Object(m) => m,
        other => unreachable!("a struct serialises to an object, not {other}"),
    }
}

/// A run's family with the settings only it reads: the tagged form of the flat record's family
/// fields. Each family's settings type names its fields as the flat record does, so the fields
/// a family owns are the fields its type holds: any other family's field set on its run is an
/// error (config::validate finds them by writing a run's settings back).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Settings {
    Ebgan(ebgan::Settings),
    Gan,
    Ladder(ladder::Settings),
    EbganLn(ladder::Settings, ladder::Generator),
    Began(began::Settings),
    Magan(magan::Settings),
    WganGp(wgan_gp::Settings),
}

/// The most steps a run may plan: step counts stay far from wrapping a u64.
pub const MAX_STEPS: u64 = 1_000_000_000_000;

/// What a family's checks read of the run's common fields.
#[derive(Clone, Copy, Debug)]
pub struct Common {
    pub steps: u64,
    pub steps_per_epoch: u64,
    pub batch_size: i64,
    pub train_images: usize,
}

impl Settings {
    /// `model`'s settings, read from a run's flat fields (a whole run config: every field).
    pub fn of(model: Model, flat: &Flat) -> Settings {
        match model {
            Model::Ebgan => Settings::Ebgan(read(flat)),
            Model::Gan => Settings::Gan,
            Model::Ladder => Settings::Ladder(read(flat)),
            Model::EbganLn => Settings::EbganLn(read(flat), read(flat)),
            Model::Began => Settings::Began(read(flat)),
            Model::Magan => Settings::Magan(read(flat)),
            Model::WganGp => Settings::WganGp(read(flat)),
        }
    }

    /// The flat fields these settings hold, by name: what the family owns.
    pub fn flat(&self) -> Flat {
        match self {
            Settings::Ebgan(s) => write(s),
            Settings::Gan => Flat::new(),
            Settings::Ladder(s) => write(s),
            Settings::EbganLn(s, g) => write(s).into_iter().chain(write(g)).collect(),
            Settings::Began(s) => write(s),
            Settings::Magan(s) => write(s),
            Settings::WganGp(s) => write(s),
        }
    }

    pub fn model(&self) -> Model {
        match self {
            Settings::Ebgan(_) => Model::Ebgan,
            Settings::Gan => Model::Gan,
            Settings::Ladder(_) => Model::Ladder,
            Settings::EbganLn(..) => Model::EbganLn,
            Settings::Began(_) => Model::Began,
            Settings::Magan(_) => Model::Magan,
            Settings::WganGp(_) => Model::WganGp,
        }
    }

    /// The checks of the family's own settings.
    pub fn validate(&self, run: &Common) -> Result<(), Invalid> {
        match self {
            Settings::Ebgan(s) => ebgan::validate(s),
            Settings::Gan => Ok(()),
            Settings::Ladder(s) => ladder::validate(s, run),
            Settings::EbganLn(s, g) => {
                ladder::validate(s, run)?;
                ladder::validate_generator(g)
            }
            Settings::Began(s) => began::validate(s),
            Settings::Magan(s) => magan::validate(s, run),
            Settings::WganGp(s) => wgan_gp::validate(s),
        }
    }

    /// A ladder run's settings, with EBGAN-LN's G's; None for the image families.
    pub fn ladder(&self) -> Option<(ladder::Settings, Option<ladder::Generator>)> {
        match self {
            Settings::Ladder(s) => Some((*s, None)),
            Settings::EbganLn(s, g) => Some((*s, Some(*g))),
            Settings::Ebgan(_)
            | Settings::Gan
            | Settings::Began(_)
            | Settings::Magan(_)
            | Settings::WganGp(_) => None,
        }
    }

    /// Epochs that train D alone before the adversarial ones (MAGAN's pretraining).
    pub fn pretrain_epochs(&self) -> u64 {
        match self {
            Settings::Magan(s) => s.pretrain_epochs as u64,
            Settings::Ebgan(_)
            | Settings::Gan
            | Settings::Ladder(_)
            | Settings::EbganLn(..)
            | Settings::Began(_)
            | Settings::WganGp(_) => 0,
        }
    }
}

/// A value a run's settings cannot have, naming the field (as spelled in `RunConfig`) so that
/// the experiment file's error can point at its line.
#[derive(Debug)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

/// Ok when `ok`, else an [`Invalid`] for `key`.
pub fn check(ok: bool, key: &str, message: impl Into<String>) -> Result<(), Invalid> {
    match ok {
        true => Ok(()),
        false => Err(Invalid {
            key: key.into(),
            message: message.into(),
        }),
    }
}
