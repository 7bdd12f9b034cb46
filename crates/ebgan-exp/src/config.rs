//! Experiment files: typed TOML, every default in one place, lists expand as a cartesian product.
//!
//! ```toml
//! name = "grid-mnist"
//! [common]            # applies to every grid below
//! epochs = 25
//! [[grid]]            # any field may be a single value or a list
//! model = "ebgan"
//! size_g = [400, 800]
//! ```
//! Unknown keys and wrong types are errors naming the file, line and key.

use anyhow::{bail, Context, Result};
use ebgan_core::{Energy, MarginSchedule, OptimKind};
use serde::de::{self, DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Auto-encoder discriminator with the margin loss (EBGAN; EBGAN-PT when pulling_away > 0).
    Ebgan,
    /// Logistic discriminator with the non-saturating generator loss.
    Gan,
    /// Bottom-layer-cost ladder network, semi-supervised (paper §4.2).
    Ladder,
    /// The ladder network as EBGAN's discriminator, its bottom-layer cost the energy.
    #[serde(rename = "ebgan-ln")]
    EbganLn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Mlp,
    Dcgan,
    Imagenet,
}

impl Network {
    pub fn is_conv(self) -> bool {
        self != Network::Mlp
    }

    /// The name experiment files use.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mlp => "mlp",
            Network::Dcgan => "dcgan",
            Network::Imagenet => "imagenet",
        }
    }
}

/// What an experiment trains on (experiment-level `dataset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Mnist,
    /// MNIST digits padded to 64x64 (18 pixels each side): the convolutional models' stand-in.
    Mnist64,
    /// Aligned CelebA: `img_align_celeba/` (+ `list_eval_partition.txt`).
    Celeba,
    /// LSUN (bedroom): LSUN's LMDB release or a folder of images.
    Lsun,
    /// ImageNet-style class folders (`train/<wnid>/*.JPEG`).
    Imagenet,
}

impl Dataset {
    /// Environment variable that overrides the data location.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Dataset::Mnist | Dataset::Mnist64 => None,
            Dataset::Celeba => Some("EBGAN_CELEBA"),
            Dataset::Lsun => Some("EBGAN_LSUN"),
            Dataset::Imagenet => Some("EBGAN_IMAGENET"),
        }
    }

    pub fn is_mnist(self) -> bool {
        matches!(self, Dataset::Mnist | Dataset::Mnist64)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dataset::Mnist => "mnist",
            Dataset::Mnist64 => "mnist64",
            Dataset::Celeba => "celeba",
            Dataset::Lsun => "lsun",
            Dataset::Imagenet => "imagenet",
        })
    }
}

impl Model {
    /// Semi-supervised models, trained one run at a time by train::ladder.
    pub fn is_ladder(self) -> bool {
        matches!(self, Model::Ladder | Model::EbganLn)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Model::Ebgan => "ebgan",
            Model::Gan => "gan",
            Model::Ladder => "ladder",
            Model::EbganLn => "ebgan-ln",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginDecay {
    /// m(t) = margin throughout.
    None,
    /// margin until `margin_decay_start`, then linear to `margin_floor` at `margin_decay_end`
    /// (both fractions of the run's steps).
    Linear,
}

/// Defines [`RunConfig`] (one run, with its defaults) and [`GridSpec`] (the same fields, each
/// optional and either one value or a list) from one field list.
macro_rules! run_config {
    ($( $(#[$attr:meta])* $field:ident : $ty:ty = $default:expr ),* $(,)?) => {
        /// Everything that defines one run. Its canonical form hashes to the run id.
        /// (`default`: rows of a runs.csv written before a field existed still parse.)
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RunConfig { $( $(#[$attr])* pub $field: $ty, )* }

        impl Default for RunConfig {
            fn default() -> Self { RunConfig { $( $field: $default, )* } }
        }

        /// A grid table: any [`RunConfig`] field, as one value or a list of values.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct GridSpec { $( $(#[$attr])* #[serde(default)] pub $field: Option<OneOrMany<$ty>>, )* }

        impl GridSpec {
            /// `self` with every field that `over` sets replaced by `over`'s.
            fn overlay(&self, over: &GridSpec) -> GridSpec {
                GridSpec { $( $field: over.$field.clone().or_else(|| self.$field.clone()), )* }
            }

            /// The cartesian product of the listed values, fields in declaration order (the last
            /// field varies fastest).
            fn expand(&self) -> Vec<RunConfig> {
                let mut runs = vec![RunConfig::default()];
                $(
                    if let Some(values) = &self.$field {
                        runs = runs
                            .into_iter()
                            .flat_map(|r| values.0.iter().map(move |v| RunConfig { $field: v.clone(), ..r.clone() }))
                            .collect();
                    }
                )*
                runs
            }
        }
    };
}

run_config! {
    /// "ebgan" or "gan".
    model: Model = Model::Ebgan,
    /// "mlp" (Table 1 networks, MNIST), "dcgan" (paper §4.3, 64x64) or "imagenet" (§4.4:
    /// the generator with noise planes). With "ebgan" D is the convolutional auto-encoder, with
    /// "gan" DCGAN's discriminator.
    network: Network = Network::Mlp,
    /// Convolutional networks: image side (a power of two >= 16).
    image_size: i64 = 64,
    /// Convolutional widths: G's last hidden layer, the auto-encoder's first, DCGAN D's first.
    g_base: i64 = 64,
    ae_base: i64 = 64,
    d_base: i64 = 64,
    /// ImageNet generator: noise channels concatenated before every upsampling.
    noise_planes: i64 = 4,
    /// LSUN's augmented variant (paper §4.3): images cached at 1.5x image_size and cropped at a
    /// random position each time they are drawn.
    random_crop: bool = false,
    /// Train for exactly this many steps (0: `epochs` passes over the data).
    steps: u64 = 0,
    /// Convolutional runs: fixed-noise sample grid every N steps, checkpoint every N steps.
    sample_every: u64 = 500,
    checkpoint_every: u64 = 500,
    /// Table 1 nLayerG: linear layers in G.
    #[serde(alias = "nLayerG")]
    n_layer_g: usize = 5,
    /// Table 1 sizeG: width of G's hidden layers.
    #[serde(alias = "sizeG")]
    size_g: i64 = 1600,
    /// Table 1 nLayerD: linear layers in D (auto-encoder: encoder layers + one decoder layer).
    #[serde(alias = "nLayerD")]
    n_layer_d: usize = 2,
    /// Table 1 sizeD: width of D's hidden layers (the code size of the auto-encoder).
    #[serde(alias = "sizeD")]
    size_d: i64 = 1024,
    /// Table 1 dropoutD.
    #[serde(alias = "dropoutD")]
    dropout_d: bool = false,
    /// Dropout probability where dropout_d is on.
    dropout_p: f64 = 0.5,
    /// Table 1 optimD.
    #[serde(alias = "optimD")]
    optim_d: OptimKind = OptimKind::Adam,
    /// Table 1 optimG.
    #[serde(alias = "optimG")]
    optim_g: OptimKind = OptimKind::Adam,
    /// Table 1 lr, for both D and G.
    lr: f64 = 0.001,
    /// Adam betas (DCGAN's 0.5, 0.999) and eps.
    beta1: f64 = 0.5,
    beta2: f64 = 0.999,
    adam_eps: f64 = 1e-8,
    /// SGD momentum (0: plain SGD).
    sgd_momentum: f64 = 0.0,
    /// Margin m of the EBGAN discriminator loss (Table 1: 10).
    margin: f64 = 10.0,
    margin_decay: MarginDecay = MarginDecay::None,
    margin_floor: f64 = 0.0,
    margin_decay_start: f64 = 0.0,
    margin_decay_end: f64 = 1.0,
    /// Weight of the pulling-away term in G's loss (EBGAN-PT: 0.1; 0 = plain EBGAN).
    pulling_away: f64 = 0.0,
    /// Reconstruction energy: "l2" (paper), "sse" or "mse".
    energy: Energy = Energy::L2,
    /// Batch norm after hidden layers (not on D's input layer).
    batch_norm: bool = true,
    /// Weight init std of G and D (biases start at 0).
    init_std_g: f64 = 0.02,
    init_std_d: f64 = 0.002,
    z_dim: i64 = 100,
    batch_size: i64 = 64,
    /// Semi-supervised MNIST (model = "ladder" | "ebgan-ln"): labelled training images,
    /// balanced over the classes and drawn by seed.
    labels: usize = 100,
    /// Weight of the ladder's bottom-layer reconstruction cost (per-pixel mean).
    lambda_0: f64 = 1000.0,
    /// The ladder's denoising combinator: "gauss" or "sig".
    combinator: ebgan_models::ladder::Combinator = ebgan_models::ladder::Combinator::Gauss,
    /// Std of the Gaussian noise of the ladder's corrupted path.
    ladder_noise: f64 = 0.3,
    /// Fraction of training after which the learning rate decays linearly to 0 (1 = never).
    lr_decay_start: f64 = 1.0,
    /// Passes over the training images. The paper does not say; see docs/decisions.md.
    epochs: usize = 25,
    /// Use the first N training images (60000 = all).
    train_images: usize = 60000,
    /// Generated samples scored per run.
    score_samples: usize = 10000,
    seed: u64 = 0,
}

impl RunConfig {
    /// Optimizer steps in one epoch: every image once, the last batch topped up from the start
    /// of the same permutation (938 for MNIST at batch 64).
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch_over(self.train_images)
    }

    pub fn total_steps(&self) -> u64 {
        self.total_steps_over(self.train_images)
    }

    /// Steps per epoch on `images` training images (image runs count them in their data set).
    pub fn steps_per_epoch_over(&self, images: usize) -> u64 {
        (images as u64).div_ceil(self.batch_size as u64)
    }

    /// `steps` when set, else `epochs` epochs of `images` training images.
    pub fn total_steps_over(&self, images: usize) -> u64 {
        if self.steps > 0 {
            self.steps
        } else {
            self.steps_per_epoch_over(images) * self.epochs as u64
        }
    }

    /// Convolutional network shapes of this run on `channels`-channel images.
    pub fn conv_spec(&self, channels: i64) -> ebgan_models::dcgan::ConvSpec {
        ebgan_models::dcgan::ConvSpec {
            arch: match self.network {
                Network::Imagenet => ebgan_models::dcgan::ConvArch::Imagenet,
                _ => ebgan_models::dcgan::ConvArch::Dcgan,
            },
            image_size: self.image_size,
            channels,
            z_dim: self.z_dim,
            g_base: self.g_base,
            ae_base: self.ae_base,
            d_base: self.d_base,
            noise_planes: self.noise_planes,
        }
    }

    pub fn margin_schedule(&self) -> MarginSchedule {
        self.margin_schedule_over(self.total_steps())
    }

    /// m(t) over a run of `total` steps (image runs count steps from their data set's size).
    pub fn margin_schedule_over(&self, total: u64) -> MarginSchedule {
        match self.margin_decay {
            MarginDecay::None => MarginSchedule::Constant(self.margin),
            MarginDecay::Linear => MarginSchedule::from_fractions(
                self.margin,
                self.margin_floor,
                self.margin_decay_start,
                self.margin_decay_end,
                total,
            ),
        }
    }

    /// "gan", "ebgan" or "ebgan-pt": the families the paper compares.
    pub fn family(&self) -> &'static str {
        match (self.model, self.pulling_away > 0.0) {
            (Model::Ladder, _) => "ln",
            (Model::EbganLn, _) => "ebgan-ln",
            (Model::Gan, _) => "gan",
            (Model::Ebgan, false) => "ebgan",
            (Model::Ebgan, true) => "ebgan-pt",
        }
    }

    /// Canonical form: the fields that differ from [`RunConfig::default`], as JSON with sorted
    /// keys. Adding a field (at a default that keeps the old behaviour) leaves every existing run
    /// id unchanged; for the same reason a default must never change meaning.
    pub fn canonical(&self) -> String {
        let fields = |c: &RunConfig| match serde_json::to_value(c)
            .expect("a run config always serialises")
        {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a struct serialises to an object"),
        };
        let defaults = fields(&RunConfig::default());
        let differing: std::collections::BTreeMap<String, serde_json::Value> = fields(self)
            .into_iter()
            .filter(|(k, v)| defaults.get(k) != Some(v))
            .collect();
        serde_json::to_string(&differing).expect("JSON values serialise")
    }

    /// Stable id: a hash of the canonical resolved config (seed included), so editing another
    /// grid of the file leaves finished runs finished.
    pub fn run_id(&self) -> String {
        let canonical = self.canonical();
        let digest = Sha256::digest(canonical.as_bytes());
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.family())
    }

    fn validate_for(&self, dataset: Dataset) -> Result<(), String> {
        let conv = self.network.is_conv();
        let checks: [(bool, String); 6] = [
            (
                conv || dataset == Dataset::Mnist,
                format!("network = \"mlp\" (the default) trains on dataset = \"mnist\"; for dataset = \"{dataset}\" set network = \"dcgan\" or \"imagenet\""),
            ),
            (
                !conv || (dataset != Dataset::Mnist && !self.model.is_ladder()),
                "convolutional networks train on image datasets: dataset = \"mnist64\", \"celeba\", \"lsun\" or \"imagenet\", with model \"ebgan\" or \"gan\"".into(),
            ),
            (
                !conv || (self.image_size >= 16 && (self.image_size as u64).is_power_of_two()),
                "image_size must be a power of two >= 16".into(),
            ),
            (
                dataset != Dataset::Mnist64 || self.image_size == 64,
                "dataset = \"mnist64\" is 64x64: image_size must be 64".into(),
            ),
            (
                dataset != Dataset::Mnist64 || !self.random_crop,
                "random_crop is for LSUN-style data cached at 1.5x; dataset = \"mnist64\" has no margin to crop from".into(),
            ),
            (
                self.g_base > 0
                    && self.ae_base > 0
                    && self.d_base > 0
                    && self.noise_planes >= 0
                    && self.sample_every >= 1
                    && self.checkpoint_every >= 1,
                "g_base, ae_base, d_base, sample_every, checkpoint_every must be > 0 and noise_planes >= 0".into(),
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(msg.clone());
        }
        self.validate()
    }

    fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 11] = [
            (
                !self.model.is_ladder()
                    || (self.labels >= 10
                        && self.labels.is_multiple_of(10)
                        && self.labels <= 60000),
                "labels must be a multiple of 10 in [10, 60000] (equal count per class)",
            ),
            (self.n_layer_g >= 2, "n_layer_g must be >= 2"),
            (self.n_layer_d >= 2, "n_layer_d must be >= 2"),
            (
                self.size_g > 0 && self.size_d > 0 && self.z_dim > 0,
                "sizes must be > 0",
            ),
            (
                self.batch_size >= 2,
                "batch_size must be >= 2 (batch norm and the pulling-away term need 2)",
            ),
            (self.lr > 0.0, "lr must be > 0"),
            (
                (0.0..1.0).contains(&self.dropout_p),
                "dropout_p must be in [0, 1)",
            ),
            (self.epochs >= 1, "epochs must be >= 1"),
            (
                self.train_images >= self.batch_size as usize && self.train_images <= 60000,
                "train_images must be in [batch_size, 60000]",
            ),
            (self.score_samples >= 1, "score_samples must be >= 1"),
            (
                self.margin_decay_start <= self.margin_decay_end && self.margin >= 0.0,
                "margin must be >= 0 and margin_decay_start <= margin_decay_end",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }
}

/// A value or a list of values of one field.
#[derive(Clone, Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        macro_rules! one {
            ($name:ident, $t:ty) => {
                fn $name<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
                    T::deserialize(v.into_deserializer()).map(|x| OneOrMany(vec![x]))
                }
            };
        }
        impl<'de, T: DeserializeOwned> de::Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            one!(visit_bool, bool);
            one!(visit_i64, i64);
            one!(visit_u64, u64);
            one!(visit_f64, f64);
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|x| OneOrMany(vec![x]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = vec![];
                while let Some(x) = seq.next_element::<T>()? {
                    out.push(x);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("an empty list expands to no runs"));
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_dataset")]
    dataset: Dataset,
    /// Where the dataset lives (relative to the working directory); the dataset's environment
    /// variable (EBGAN_CELEBA, EBGAN_LSUN, EBGAN_IMAGENET) overrides it; default <data>/<dataset>.
    data_root: Option<String>,
    /// ImageNet: a file of WordNet ids (one per line) restricting training to those classes.
    wnids: Option<String>,
    #[serde(default)]
    common: GridSpec,
    grid: Vec<GridSpec>,
    #[serde(default)]
    slurm: crate::slurm::SlurmSettings,
}

fn default_dataset() -> Dataset {
    Dataset::Mnist
}

/// One planned run.
#[derive(Clone, Debug)]
pub struct Run {
    pub id: String,
    pub config: RunConfig,
}

#[derive(Clone, Debug)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub dataset: Dataset,
    pub data_root: Option<String>,
    pub wnids: Option<String>,
    /// Folder of the experiment file (relative paths that are not found from the working
    /// directory are looked up there).
    pub dir: std::path::PathBuf,
    pub runs: Vec<Run>,
    pub slurm: crate::slurm::SlurmSettings,
}

impl Experiment {
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read experiment file {}", path.display()))?;
        let mut e = Self::parse(&text, &path.display().to_string())?;
        e.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(e)
    }

    /// Parses experiment text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Experiment> {
        let file: ExperimentFile =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if file.wnids.is_some() && file.dataset != Dataset::Imagenet {
            bail!("{origin}: wnids is only for dataset = \"imagenet\"");
        }
        if file.name.is_empty() || file.name.contains(['/', '\\']) || file.name.starts_with('.') {
            bail!(
                "{origin}: name = {:?} must be a plain folder name",
                file.name
            );
        }
        if file.grid.is_empty() {
            bail!("{origin}: no [[grid]] table: an experiment needs at least one");
        }
        let mut runs = vec![];
        let mut seen = std::collections::HashSet::new();
        for (g, spec) in file.grid.iter().enumerate() {
            for config in file.common.overlay(spec).expand() {
                config.validate_for(file.dataset).map_err(|e| {
                    anyhow::anyhow!(
                        "{origin}: grid {} (the [[grid]] table number {}): {e}",
                        g,
                        g + 1
                    )
                })?;
                let id = config.run_id();
                // Two grids listing the same run would train it twice.
                if seen.insert(id.clone()) {
                    runs.push(Run { id, config });
                }
            }
        }
        Ok(Experiment {
            name: file.name,
            description: file.description,
            dataset: file.dataset,
            data_root: file.data_root,
            wnids: file.wnids,
            dir: std::path::PathBuf::from("."),
            runs,
            slurm: file.slurm,
        })
    }

    /// Shard `index` of `count`: every `count`-th run of the plan, starting at `index`.
    /// Shards are disjoint, their union is the plan, and they balance expensive shapes.
    pub fn shard(&self, shard: Shard) -> Vec<Run> {
        self.runs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// `I/N`: shard I (0-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    #[cfg(test)]
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_GRIDS: &str = r#"
        name = "t"
        [common]
        epochs = 1
        [[grid]]
        model = "ebgan"
        nLayerG = [2, 3]
        size_g = [400, 800]
        [[grid]]
        model = "gan"
        optim_d = ["adam", "sgd"]
        lr = [0.01, 0.001, 0.0001]
    "#;

    #[test]
    fn lists_expand_as_a_cartesian_product_per_grid() {
        let e = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        assert_eq!(e.runs.len(), 4 + 6);
        assert!(e.runs.iter().all(|r| r.config.epochs == 1));
        let gans: Vec<_> = e
            .runs
            .iter()
            .filter(|r| r.config.model == Model::Gan)
            .collect();
        assert_eq!(gans.len(), 6);
        // Later fields vary fastest: lr within optim_d.
        assert_eq!(
            (gans[0].config.optim_d, gans[0].config.lr),
            (OptimKind::Adam, 0.01)
        );
        assert_eq!(
            (gans[1].config.optim_d, gans[1].config.lr),
            (OptimKind::Adam, 0.001)
        );
        assert_eq!(gans[3].config.optim_d, OptimKind::Sgd);
        // Unset fields keep the defaults.
        assert_eq!(gans[0].config.margin, 10.0);
    }

    #[test]
    fn run_ids_are_stable_and_distinct() {
        let a = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let b = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let ids: Vec<_> = a.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, b.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids[0].starts_with("ebgan-") && ids[9].starts_with("gan-"));
        // Editing the GAN grid leaves the EBGAN runs' ids alone.
        let edited =
            Experiment::parse(&TWO_GRIDS.replace("[0.01, 0.001, 0.0001]", "0.5"), "t.toml")
                .unwrap();
        assert_eq!(
            edited.runs[..4].iter().map(|r| &r.id).collect::<Vec<_>>(),
            ids[..4].iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_canonical_form_lists_only_fields_off_their_defaults() {
        assert_eq!(RunConfig::default().canonical(), "{}");
        let c = RunConfig {
            margin: 5.0,
            model: Model::Gan,
            seed: 3,
            ..Default::default()
        };
        assert_eq!(c.canonical(), r#"{"margin":5.0,"model":"gan","seed":3}"#);
        let hex: String = Sha256::digest(br#"{"margin":5.0,"model":"gan","seed":3}"#)
            .iter()
            .take(5)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(c.run_id(), format!("gan-{hex}"));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "name = \"t\"\n[[grid]]\nmodel = \"gan\"\nsize_gg = 3\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("size_gg"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_expectation() {
        let text = "name = \"t\"\n[[grid]]\nlr = [0.1, \"fast\"]\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("fast") || err.contains("f64"), "{err}");
        let text = "name = \"t\"\n[[grid]]\nmodel = \"wgan\"\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("wgan"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected_with_the_grid() {
        let text = "name = \"t\"\n[[grid]]\nn_layer_g = [2, 1]\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(
            err.contains("n_layer_g must be >= 2") && err.contains("bad.toml"),
            "{err}"
        );
    }

    #[test]
    fn every_shipped_experiment_file_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let exp = Experiment::load(&p).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(!exp.runs.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 12, "{n} experiment files");
        // Figure 9 on CPU: the eight margins of the sweep, one run each.
        let sweep = Experiment::load(&dir.join("margin-sweep-quick.toml")).unwrap();
        let margins: Vec<f64> = sweep.runs.iter().map(|r| r.config.margin).collect();
        assert_eq!(margins, [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]);
    }

    #[test]
    fn margin_schedule_over_a_runs_real_length() {
        // Image runs count steps from their data set: the decay's end points follow `total`.
        let c = RunConfig {
            margin: 20.0,
            margin_decay: MarginDecay::Linear,
            margin_floor: 0.0,
            margin_decay_start: 0.5,
            margin_decay_end: 1.0,
            ..Default::default()
        };
        let s = c.margin_schedule_over(1000);
        assert_eq!(
            (
                s.margin_at(0),
                s.margin_at(500),
                s.margin_at(750),
                s.margin_at(1000)
            ),
            (20.0, 20.0, 10.0, 0.0)
        );
        let constant = RunConfig {
            margin: 20.0,
            ..Default::default()
        }
        .margin_schedule_over(1000);
        assert_eq!(constant.margin_at(999), 20.0);
    }

    #[test]
    fn image_datasets_need_convolutional_networks_and_say_so() {
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"celeba\"\n[[grid]]\nmodel = \"ebgan\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("c.toml") && err.contains("network = \"dcgan\""),
            "{err}"
        );
        let err = Experiment::parse("name = \"t\"\n[[grid]]\nnetwork = \"dcgan\"\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mnist64"), "{err}");
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"lsun\"\n[[grid]]\nnetwork = \"dcgan\"\nimage_size = 48\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("power of two"), "{err}");
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"lsun\"\nwnids = \"x.txt\"\n[[grid]]\nnetwork = \"dcgan\"\n",
            "w.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("wnids"), "{err}");
        let err = Experiment::parse("name = \"t\"\ndataset = \"faces\"\n[[grid]]\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.toml") && err.contains("celeba"), "{err}");
        // Every shipped image experiment parses and plans EBGAN-PT, EBGAN and the DCGAN comparison.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        for f in [
            "celeba",
            "lsun",
            "lsun-augmented",
            "imagenet128",
            "imagenet256",
            "mnist64",
        ] {
            let e = Experiment::load(&dir.join(format!("{f}.toml"))).unwrap();
            let mut fams: Vec<&str> = e.runs.iter().map(|r| r.config.family()).collect();
            fams.sort();
            assert_eq!(fams, ["ebgan", "ebgan-pt", "gan"], "{f}");
            assert!(e.runs.iter().all(|r| r.config.network.is_conv()), "{f}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_plan() {
        let e = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let mut all: Vec<String> = (0..3)
            .flat_map(|i| e.shard(Shard { index: i, count: 3 }))
            .map(|r| r.id)
            .collect();
        assert_eq!(all.len(), e.runs.len());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), e.runs.len());
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    }

    #[test]
    fn margin_schedule_from_config() {
        let c = RunConfig {
            margin_decay: MarginDecay::Linear,
            margin: 4.0,
            margin_floor: 0.0,
            margin_decay_start: 0.5,
            margin_decay_end: 1.0,
            epochs: 1,
            train_images: 640,
            batch_size: 64,
            ..Default::default()
        };
        assert_eq!(c.total_steps(), 10);
        let s = c.margin_schedule();
        assert_eq!((s.margin_at(5), s.margin_at(10)), (4.0, 0.0));
    }
}
