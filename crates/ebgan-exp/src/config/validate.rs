//! Checks of a resolved run config that its types cannot express. Each names the key it is
//! about, so the experiment file's error can point at that key's line.

use super::kinds::{Dataset, Model};
use super::run_config::RunConfig;
use super::shape::Shape;
pub use crate::family::Invalid;
use crate::family::{self, check};

/// `[lo, hi)` for a probability-like field.
fn unit_interval(v: f64) -> bool {
    (0.0..1.0).contains(&v)
}

impl RunConfig {
    pub(super) fn validate_for(&self, dataset: Dataset) -> Result<(), Invalid> {
        self.finite()?;
        self.limits()?;
        self.fits(dataset)?;
        self.validate()?;
        self.validate_family()
    }

    /// Every number finite: an inf or NaN would train, then write a row no reader accepts.
    fn finite(&self) -> Result<(), Invalid> {
        let fields = self.fields();
        // serde_json writes a non-finite f64 as null; the optional fields are null when unset.
        let optional = [
            ("g_lr", self.g_lr),
            ("g_beta1", self.g_beta1),
            ("hinge_weight", self.hinge_weight),
        ];
        let unset = |key: &str| optional.iter().any(|(k, v)| *k == key && v.is_none());
        match fields.iter().find(|(k, v)| v.is_null() && !unset(k)) {
            Some((key, _)) => check(false, key, format!("{key} must be a finite number")),
            None => Ok(()),
        }
    }

    /// Sizes and counts within what any machine can train, and step counts that fit a u64: a
    /// width of 10^10 would abort the process allocating its weights (taking the grid with it),
    /// and epochs x steps per epoch could wrap into a run that "finishes" after 4 steps.
    fn limits(&self) -> Result<(), Invalid> {
        const WIDTH: i64 = 1 << 20;
        for (key, v) in [
            ("size_g", self.size_g),
            ("size_d", self.size_d),
            ("z_dim", self.z_dim),
            ("batch_size", self.batch_size),
            ("image_size", self.image_size),
            ("g_base", self.g_base),
            ("ae_base", self.ae_base),
            ("d_base", self.d_base),
            ("noise_planes", self.noise_planes),
        ] {
            check(
                v <= WIDTH,
                key,
                format!("{key} = {v} is over {WIDTH}: no network of that width fits in memory"),
            )?;
        }
        for (key, v) in [("n_layer_g", self.n_layer_g), ("n_layer_d", self.n_layer_d)] {
            check(v <= 1024, key, format!("{key} = {v} is over 1024 layers"))?;
        }
        check(
            self.score_samples <= 1 << 24,
            "score_samples",
            format!("score_samples = {} is over {}", self.score_samples, 1 << 24),
        )?;
        const STEPS: u64 = family::MAX_STEPS;
        let per_epoch = self.checked_steps_per_epoch();
        let steps = |epochs: usize| per_epoch.checked_mul(epochs as u64).filter(|&s| s <= STEPS);
        check(
            self.steps <= STEPS,
            "steps",
            format!("steps = {} is over 10^12", self.steps),
        )?;
        check(
            steps(self.epochs).is_some(),
            "epochs",
            format!(
                "epochs = {} of {per_epoch} steps each is over 10^12 steps",
                self.epochs
            ),
        )
    }

    /// Steps per epoch before the checks: a batch size of 0 counts as 1.
    fn checked_steps_per_epoch(&self) -> u64 {
        (self.train_images as u64).div_ceil(self.batch_size.max(1) as u64)
    }

    /// The network and the dataset belong together.
    fn fits(&self, dataset: Dataset) -> Result<(), Invalid> {
        let conv = self.network.is_conv();
        check(
            conv || dataset == Dataset::Mnist,
            "network",
            format!("network = \"mlp\" (the default) trains on dataset = \"mnist\"; for dataset = \"{dataset}\" set network = \"dcgan\" or \"imagenet\""),
        )?;
        check(
            !conv || (dataset != Dataset::Mnist && !self.model.is_ladder()),
            "network",
            "convolutional networks train on image datasets: dataset = \"mnist64\", \"celeba\", \"lsun\" or \"imagenet\", with a model other than the semi-supervised \"ladder\" and \"ebgan-ln\"",
        )?;
        check(
            !conv || (self.image_size >= 16 && (self.image_size as u64).is_power_of_two()),
            "image_size",
            "image_size must be a power of two >= 16",
        )?;
        check(
            dataset != Dataset::Mnist64 || self.image_size == 64,
            "image_size",
            "dataset = \"mnist64\" is 64x64: image_size must be 64",
        )?;
        check(
            dataset != Dataset::Mnist64 || !self.random_crop,
            "random_crop",
            "random_crop is for LSUN-style data cached at 1.5x; dataset = \"mnist64\" has no margin to crop from",
        )?;
        for (key, v) in [
            ("g_base", self.g_base),
            ("ae_base", self.ae_base),
            ("d_base", self.d_base),
        ] {
            check(v > 0, key, format!("{key} must be > 0"))?;
        }
        check(
            self.noise_planes >= 0,
            "noise_planes",
            "noise_planes must be >= 0",
        )?;
        check(
            self.sample_every >= 1,
            "sample_every",
            "sample_every must be > 0",
        )?;
        check(
            self.checkpoint_every >= 1,
            "checkpoint_every",
            "checkpoint_every must be > 0",
        )
    }

    fn validate(&self) -> Result<(), Invalid> {
        check(self.n_layer_g >= 2, "n_layer_g", "n_layer_g must be >= 2")?;
        check(self.n_layer_d >= 2, "n_layer_d", "n_layer_d must be >= 2")?;
        for (key, v) in [
            ("size_g", self.size_g),
            ("size_d", self.size_d),
            ("z_dim", self.z_dim),
        ] {
            check(v > 0, key, format!("sizes must be > 0: {key}"))?;
        }
        check(
            self.batch_size >= 2,
            "batch_size",
            "batch_size must be >= 2 (batch norm and the pulling-away term need 2)",
        )?;
        check(self.lr > 0.0, "lr", "lr must be > 0")?;
        check(
            unit_interval(self.beta1),
            "beta1",
            "beta1 must be in [0, 1)",
        )?;
        check(
            unit_interval(self.beta2),
            "beta2",
            "beta2 must be in [0, 1)",
        )?;
        check(self.adam_eps > 0.0, "adam_eps", "adam_eps must be > 0")?;
        check(
            unit_interval(self.sgd_momentum),
            "sgd_momentum",
            "sgd_momentum must be in [0, 1)",
        )?;
        check(
            unit_interval(self.dropout_p),
            "dropout_p",
            "dropout_p must be in [0, 1)",
        )?;
        check(self.epochs >= 1, "epochs", "epochs must be >= 1")?;
        check(
            self.train_images >= self.batch_size as usize && self.train_images <= 60000,
            "train_images",
            "train_images must be in [batch_size, 60000]",
        )?;
        check(
            self.score_samples >= 1,
            "score_samples",
            "score_samples must be >= 1",
        )?;
        check(self.margin >= 0.0, "margin", "margin must be >= 0")?;
        check(
            self.margin_floor >= 0.0 && self.margin_floor <= self.margin,
            "margin_floor",
            "margin_floor must be in [0, margin]",
        )?;
        for (key, v) in [
            ("margin_decay_start", self.margin_decay_start),
            ("margin_decay_end", self.margin_decay_end),
        ] {
            check(
                (0.0..=1.0).contains(&v),
                key,
                format!("{key} must be in [0, 1] (a fraction of the run's steps)"),
            )?;
        }
        check(
            self.margin_decay_start <= self.margin_decay_end,
            "margin_decay_start",
            "margin_decay_start must be <= margin_decay_end",
        )?;
        for (key, v) in [
            ("init_std_g", self.init_std_g),
            ("init_std_d", self.init_std_d),
        ] {
            check(v >= 0.0, key, format!("{key} must be >= 0"))?;
        }
        Ok(())
    }

    /// Each family's own settings (`crate::family`) and each network's shape fields
    /// (`super::shape`): set away from their defaults only on the runs whose settings type
    /// holds them, nothing the run's family computes for itself, and in range.
    fn validate_family(&self) -> Result<(), Invalid> {
        let (fields, defaults) = (self.fields(), RunConfig::default().fields());
        let settings = self.settings();
        let mut own = settings.flat();
        own.extend(self.shape().flat());
        for (key, value) in &fields {
            if defaults.get(key) == Some(value) || own.contains_key(key) {
                continue;
            }
            if let Some(why) = self.model.replaces(key) {
                return check(false, key, why);
            }
            let families = Model::ALL
                .into_iter()
                .filter(|&m| owned(m).contains_key(key))
                .map(Model::described);
            let shapes = Shape::all(&defaults)
                .into_iter()
                .filter(|s| s.flat().contains_key(key))
                .map(|s| s.described().to_string());
            let owners: Vec<String> = families.chain(shapes).collect();
            check(
                owners.is_empty(),
                key,
                format!("{key} is a setting of {} only", owners.join(" or ")),
            )?;
        }
        settings.validate(&family::Common {
            steps: self.steps,
            steps_per_epoch: self.checked_steps_per_epoch(),
            batch_size: self.batch_size,
            train_images: self.train_images,
        })
    }
}

/// The fields `model`'s settings type holds (at their defaults).
pub(super) fn owned(model: Model) -> family::Flat {
    RunConfig {
        model,
        ..RunConfig::default()
    }
    .settings()
    .flat()
}
