//! The small ConvNet whose class probabilities p(y|x) score MNIST samples (I', IS).

use tch::nn::{self, Module};
use tch::Tensor;

/// conv3x3(32) -> pool -> conv3x3(64) -> pool -> fc(128) -> fc(10), ReLU, dropout 0.25 / 0.5 in
/// training; inputs `[N, 784]` in [-1, 1].
pub struct Classifier {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Classifier {
    pub fn new(vs: &nn::Path) -> Self {
        let conv = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Classifier {
            conv1: nn::conv2d(vs / "conv1", 1, 32, 3, conv),
            conv2: nn::conv2d(vs / "conv2", 32, 64, 3, conv),
            fc1: nn::linear(vs / "fc1", 64 * 7 * 7, 128, Default::default()),
            fc2: nn::linear(vs / "fc2", 128, 10, Default::default()),
        }
    }

    /// The penultimate layer `[N, 128]` (after ReLU, before dropout): the features MNIST's FID
    /// compares.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let h = x.view([-1, 1, 28, 28]);
        let h = self.conv1.forward(&h).relu().max_pool2d_default(2);
        let h = self
            .conv2
            .forward(&h)
            .relu()
            .max_pool2d_default(2)
            .dropout(0.25, train);
        self.fc1.forward(&h.flatten(1, -1)).relu()
    }

    /// Logits `[N, 10]` of flat images `[N, 784]`; `train` turns dropout on.
    pub fn logits(&self, x: &Tensor, train: bool) -> Tensor {
        self.fc2
            .forward(&self.features(x, train).dropout(0.5, train))
    }

    /// Log-probabilities `[N, 10]` and features `[N, 128]`, in chunks without gradients.
    pub fn evaluate(&self, x: &Tensor, chunk: i64) -> (Tensor, Tensor) {
        tch::no_grad(|| {
            let n = x.size()[0];
            let (logp, feats): (Vec<Tensor>, Vec<Tensor>) = (0..n)
                .step_by(chunk as usize)
                .map(|s| {
                    let f = self.features(&x.narrow(0, s, chunk.min(n - s)), false);
                    (self.fc2.forward(&f).log_softmax(-1, tch::Kind::Float), f)
                })
                .unzip();
            (Tensor::cat(&logp, 0), Tensor::cat(&feats, 0))
        })
    }
}
