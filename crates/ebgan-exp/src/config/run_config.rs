//! [`RunConfig`]: everything that defines one run, every default in one place, and what follows
//! from it (step counts, margin schedule, network specs, optimizer hyper-parameters, run id).

use super::grid::OneOrMany;
use super::kinds::{Family, MarginDecay, Model, Network};
use super::shape::Shape;
use crate::family;
use ebgan_core::{Energy, MarginSchedule, OptimHyper, OptimKind};
use ebgan_models::mlp::{MlpMember, MlpSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
            pub fn overlay(&self, over: &GridSpec) -> GridSpec {
                GridSpec { $( $field: over.$field.clone().or_else(|| self.$field.clone()), )* }
            }

            /// How many runs [`GridSpec::expand`] gives, computed without expanding (saturating).
            pub fn size(&self) -> u128 {
                let mut n: u128 = 1;
                $( if let Some(values) = &self.$field { n = n.saturating_mul(values.0.len() as u128); } )*
                n
            }

            /// The cartesian product of the listed values, fields in declaration order (the last
            /// field varies fastest).
            pub fn expand(&self) -> Vec<RunConfig> {
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
    /// "ebgan", "gan", "began", "magan", "wgan-gp" (crate::family), or the semi-supervised
    /// "ladder" and "ebgan-ln".
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
    /// Convolutional runs: fixed-noise sample grid every N steps.
    sample_every: u64 = 500,
    /// No longer read: every run checkpoints on one wall-time cadence (`ebgan run
    /// --checkpoint-minutes`), when stopped and (convolutional runs) at the end. Kept so that
    /// the experiment files that set it keep their run ids.
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
    /// BEGAN: eta of its energy, the per-pixel mean of |v - D(v)|^eta (BEGAN uses 1; 2 is the
    /// per-pixel MSE). BEGAN ignores `energy`.
    began_eta: f64 = 1.0,
    /// BEGAN: gamma, the equilibrium's target ratio L(G(z)) / L(x).
    began_gamma: f64 = 0.5,
    /// BEGAN: lambda_k, the step size of the control variable k_t.
    began_lambda_k: f64 = 0.001,
    /// MAGAN: epochs of pretraining D on real data alone, before the `epochs` adversarial ones.
    magan_pretrain_epochs: usize = 1,
    /// MAGAN: the margin rule compares strictly (`<`); false: `<=` (docs/decisions.md).
    magan_strict: bool = true,
    /// WGAN-GP: the gradient penalty's weight lambda (its paper: 10).
    wgan_lambda: f64 = 10.0,
    /// WGAN-GP: critic steps per G step (its paper: 5).
    wgan_n_critic: u64 = 5,
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
    /// EBGAN-LN: G's learning rate follows the ladder's decay (false: G keeps its lr throughout).
    g_lr_decay: bool = false,
    /// EBGAN-LN: G's Adam learning rate and beta1 (unset: the run's `lr` and `beta1`); G shares
    /// the run's beta2 and adam_eps.
    g_lr: Option<f64> = None,
    g_beta1: Option<f64> = None,
    /// EBGAN-LN: the weight of the hinge [m - E(G(z))]^+ in D's loss (unset: `lambda_0`, the
    /// weight of the bottom-layer cost the energy is made of).
    hinge_weight: Option<f64> = None,
    /// Semi-supervised MNIST: the last N of the `train_images` held out as a validation set,
    /// neither trained on nor labelled; its error is measured beside the test error (model
    /// selection reads it, never the test set's).
    validation: usize = 0,
    /// EBGAN-LN: the G step draws new noise (false: it regenerates the D step's fakes, as the
    /// MLP and convolutional trainers do).
    g_fresh_noise: bool = true,
    /// Passes over the training images. The paper does not say; see docs/decisions.md.
    epochs: usize = 25,
    /// Use the first N training images (60000 = all).
    train_images: usize = 60000,
    /// Generated samples scored per run.
    score_samples: usize = 10000,
    seed: u64 = 0,
}

impl RunConfig {
    /// Optimizer steps in one epoch: every image trained on once (the `train_images` less the
    /// `validation` ones held out), the last batch topped up from the start of the same
    /// permutation (938 for MNIST at batch 64).
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch_over(self.trained_images())
    }

    pub fn total_steps(&self) -> u64 {
        self.total_steps_over(self.trained_images())
    }

    /// The training images a run trains on: `train_images` less the held-out `validation`.
    pub fn trained_images(&self) -> usize {
        self.train_images.saturating_sub(self.validation)
    }

    /// Steps per epoch on `images` training images (image runs count them in their data set).
    pub fn steps_per_epoch_over(&self, images: usize) -> u64 {
        (images as u64).div_ceil(self.batch_size as u64)
    }

    /// MAGAN's pretraining of D before the adversarial steps (0 for every other model).
    pub fn pretrain_steps_over(&self, images: usize) -> u64 {
        self.steps_per_epoch_over(images)
            .saturating_mul(self.settings().pretrain_epochs())
    }

    /// Pretraining, then `steps` when set, else `epochs` epochs of `images` training images.
    pub fn total_steps_over(&self, images: usize) -> u64 {
        let adversarial = if self.steps > 0 {
            self.steps
        } else {
            // Saturating: plan-time validation keeps real counts far below (limits()).
            self.steps_per_epoch_over(images)
                .saturating_mul(self.epochs as u64)
        };
        self.pretrain_steps_over(images).saturating_add(adversarial)
    }

    /// Convolutional network shapes of this run on `channels`-channel images.
    pub fn conv_spec(&self, channels: i64) -> ebgan_models::dcgan::ConvSpec {
        ebgan_models::dcgan::ConvSpec {
            arch: self
                .shape()
                .conv_arch()
                .expect("convolutional shapes are asked of convolutional runs"),
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

    /// The family the paper compares this run in (EBGAN-PT: EBGAN with a PT weight > 0).
    pub fn family(&self) -> Family {
        Family::of(self.model, self.pulling_away)
    }

    /// Optimizer hyper-parameters of a `kind` optimizer of this run (D's or G's).
    pub fn optim_hyper(&self, kind: OptimKind) -> OptimHyper {
        OptimHyper {
            kind,
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            momentum: self.sgd_momentum,
        }
    }

    /// EBGAN-LN's weight of its hinge: `hinge_weight`, else `lambda_0`.
    pub fn hinge_weight(&self) -> f64 {
        self.hinge_weight.unwrap_or(self.lambda_0)
    }

    /// EBGAN-LN's generator's optimizer: the run's, with `g_lr` and `g_beta1` where set.
    pub fn g_optim_hyper(&self) -> OptimHyper {
        OptimHyper {
            lr: self.g_lr.unwrap_or(self.lr),
            beta1: self.g_beta1.unwrap_or(self.beta1),
            ..self.optim_hyper(self.optim_g)
        }
    }

    /// This run's own part of a Table 1 MLP cohort: dropout and init.
    pub fn mlp_member(&self) -> MlpMember {
        MlpMember {
            dropout_d: if self.dropout_d { self.dropout_p } else { 0.0 },
            init_std_g: self.init_std_g,
            init_std_d: self.init_std_d,
        }
    }

    /// Table 1 networks on `data_dim`-pixel images of a cohort whose first member is `self` (the
    /// shape fields are shared; `members` gives each its dropout and init).
    pub fn mlp_spec(&self, members: &[RunConfig], data_dim: i64) -> MlpSpec {
        MlpSpec {
            n_layer_g: self.n_layer_g,
            size_g: self.size_g,
            n_layer_d: self.n_layer_d,
            size_d: self.size_d,
            z_dim: self.z_dim,
            data_dim,
            batch_norm: self.batch_norm,
            d_batch_norm: self.model.d_kind().batch_norm(),
            members: members.iter().map(RunConfig::mlp_member).collect(),
        }
    }

    /// The run's family and its own settings, read from the flat fields.
    pub fn settings(&self) -> family::Settings {
        family::Settings::of(self.model, &self.fields())
    }

    /// The run's networks and the shape fields only they read.
    pub fn shape(&self) -> Shape {
        Shape::of(self.model, self.network, &self.fields())
    }

    /// The fields by name, as JSON values (the form the canonical JSON and the families'
    /// settings read).
    pub fn fields(&self) -> family::Flat {
        family::write(self)
    }

    /// Canonical form: the fields that differ from [`RunConfig::default`], as JSON with sorted
    /// keys. Adding a field (at a default that keeps the old behaviour) leaves every existing run
    /// id unchanged; for the same reason a default must never change meaning.
    pub fn canonical(&self) -> String {
        let defaults = RunConfig::default().fields();
        let differing: std::collections::BTreeMap<String, serde_json::Value> = self
            .fields()
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
}
