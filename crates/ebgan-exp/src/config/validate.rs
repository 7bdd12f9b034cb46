//! Checks of a resolved run config that its types cannot express.

use super::kinds::Dataset;
use super::run_config::RunConfig;

impl RunConfig {
    pub(super) fn validate_for(&self, dataset: Dataset) -> Result<(), String> {
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
