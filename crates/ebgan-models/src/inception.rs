//! The FID-Inception network exactly as pytorch-fid runs it (`InceptionV3(output_blocks=[3],
//! resize_input=True, normalize_input=True, use_fid_inception=True)`): pool3 features
//! `[N, 2048]`, with the 2015-12-05 TF-ported weights that pytorch-fid and torch-fidelity use.
//!
//! Variable names are those of torchvision's `Inception3` state dict, which is how pytorch-fid's
//! weight file `pt_inception-2015-12-05-6726825d.pth` names them (converted to safetensors; its
//! `fc.*` are unused by pool3 and ignored): 94 conv + batch-norm units, 470 tensors, e.g.
//! `Conv2d_1a_3x3.conv.weight`, `Mixed_7c.branch3x3dbl_3b.bn.running_var`. Easy to get wrong
//! (each changes the features by 0.4% to 40%, parity/FID_INCEPTION_NOTES.md): 2x - 1 after the
//! resize, batch-norm eps 1e-3, average pools that exclude the padding, Mixed_7c's max pool.
//! Checked against pytorch-fid's own classes with random weights by `ebgan parity`.
//!
//! Eval mode only: every batch norm uses its running statistics.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// conv (no bias) -> BatchNorm2d(eps = 0.001, running stats) -> ReLU.
#[derive(Debug)]
struct BasicConv2d {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl BasicConv2d {
    /// `kernel`, `padding` as [h, w]; one stride for both axes.
    fn new(
        p: nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: [i64; 2],
        stride: i64,
        padding: [i64; 2],
    ) -> Self {
        let cfg = nn::ConvConfigND::<[i64; 2]> {
            stride: [stride, stride],
            padding,
            bias: false,
            ..Default::default()
        };
        let bn_cfg = nn::BatchNormConfig {
            eps: 1e-3,
            ..Default::default()
        };
        BasicConv2d {
            conv: nn::conv(&p / "conv", c_in, c_out, kernel, cfg),
            bn: nn::batch_norm2d(&p / "bn", c_out, bn_cfg),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), false).relu()
    }
}

/// k x k conv, stride 1, no padding.
fn conv(p: &nn::Path, name: &str, c_in: i64, c_out: i64, k: i64) -> BasicConv2d {
    BasicConv2d::new(p / name, c_in, c_out, [k, k], 1, [0, 0])
}

/// k x k conv, stride 1, padding k / 2 ("same").
fn conv_same(p: &nn::Path, name: &str, c_in: i64, c_out: i64, k: i64) -> BasicConv2d {
    BasicConv2d::new(p / name, c_in, c_out, [k, k], 1, [k / 2, k / 2])
}

/// k x k conv, stride 2, no padding.
fn conv_s2(p: &nn::Path, name: &str, c_in: i64, c_out: i64, k: i64) -> BasicConv2d {
    BasicConv2d::new(p / name, c_in, c_out, [k, k], 2, [0, 0])
}

/// 1 x n conv ("same" along the width).
fn conv_1xn(p: &nn::Path, name: &str, c_in: i64, c_out: i64, n: i64) -> BasicConv2d {
    BasicConv2d::new(p / name, c_in, c_out, [1, n], 1, [0, n / 2])
}

/// n x 1 conv ("same" along the height).
fn conv_nx1(p: &nn::Path, name: &str, c_in: i64, c_out: i64, n: i64) -> BasicConv2d {
    BasicConv2d::new(p / name, c_in, c_out, [n, 1], 1, [n / 2, 0])
}

/// 3x3 / stride 1 / pad 1 average pool that divides by the number of NON-padded cells
/// (count_include_pad = false: TensorFlow's behaviour, pytorch-fid's "Patch").
fn avg_pool_3x3_same(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
}

/// 3x3 / stride 2 / no padding max pool (between stages, and in Mixed_6a / Mixed_7a).
fn max_pool_3x3_s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// FIDInceptionA (Mixed_5b/5c/5d): 64 + 64 + 96 + pool_features channels out.
#[derive(Debug)]
struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(p: nn::Path, c_in: i64, pool_features: i64) -> Self {
        InceptionA {
            branch1x1: conv(&p, "branch1x1", c_in, 64, 1),
            branch5x5_1: conv(&p, "branch5x5_1", c_in, 48, 1),
            branch5x5_2: conv_same(&p, "branch5x5_2", 48, 64, 5),
            branch3x3dbl_1: conv(&p, "branch3x3dbl_1", c_in, 64, 1),
            branch3x3dbl_2: conv_same(&p, "branch3x3dbl_2", 64, 96, 3),
            branch3x3dbl_3: conv_same(&p, "branch3x3dbl_3", 96, 96, 3),
            branch_pool: conv(&p, "branch_pool", c_in, pool_features, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b5 = self.branch5x5_2.forward(&self.branch5x5_1.forward(x));
        let b3 = self.branch3x3dbl_1.forward(x);
        let b3 = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&b3));
        let bp = self.branch_pool.forward(&avg_pool_3x3_same(x));
        Tensor::cat(&[b1, b5, b3, bp], 1)
    }
}

/// InceptionB (Mixed_6a, torchvision's, unpatched): 288 -> 384 + 96 + 288 = 768, 35 -> 17.
#[derive(Debug)]
struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(p: nn::Path, c_in: i64) -> Self {
        InceptionB {
            branch3x3: conv_s2(&p, "branch3x3", c_in, 384, 3),
            branch3x3dbl_1: conv(&p, "branch3x3dbl_1", c_in, 64, 1),
            branch3x3dbl_2: conv_same(&p, "branch3x3dbl_2", 64, 96, 3),
            branch3x3dbl_3: conv_s2(&p, "branch3x3dbl_3", 96, 96, 3),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b3 = self.branch3x3.forward(x);
        let bd = self.branch3x3dbl_1.forward(x);
        let bd = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&bd));
        let bp = max_pool_3x3_s2(x);
        Tensor::cat(&[b3, bd, bp], 1)
    }
}

/// FIDInceptionC (Mixed_6b..6e): 768 -> 192 * 4 = 768, with c7 = channels_7x7.
#[derive(Debug)]
struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(p: nn::Path, c_in: i64, c7: i64) -> Self {
        InceptionC {
            branch1x1: conv(&p, "branch1x1", c_in, 192, 1),
            branch7x7_1: conv(&p, "branch7x7_1", c_in, c7, 1),
            branch7x7_2: conv_1xn(&p, "branch7x7_2", c7, c7, 7),
            branch7x7_3: conv_nx1(&p, "branch7x7_3", c7, 192, 7),
            branch7x7dbl_1: conv(&p, "branch7x7dbl_1", c_in, c7, 1),
            branch7x7dbl_2: conv_nx1(&p, "branch7x7dbl_2", c7, c7, 7),
            branch7x7dbl_3: conv_1xn(&p, "branch7x7dbl_3", c7, c7, 7),
            branch7x7dbl_4: conv_nx1(&p, "branch7x7dbl_4", c7, c7, 7),
            branch7x7dbl_5: conv_1xn(&p, "branch7x7dbl_5", c7, 192, 7),
            branch_pool: conv(&p, "branch_pool", c_in, 192, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b7 = self.branch7x7_1.forward(x);
        let b7 = self.branch7x7_3.forward(&self.branch7x7_2.forward(&b7));
        let mut bd = self.branch7x7dbl_1.forward(x);
        for c in [
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            bd = c.forward(&bd);
        }
        let bp = self.branch_pool.forward(&avg_pool_3x3_same(x));
        Tensor::cat(&[b1, b7, bd, bp], 1)
    }
}

/// InceptionD (Mixed_7a, torchvision's, unpatched): 768 -> 320 + 192 + 768 = 1280, 17 -> 8.
#[derive(Debug)]
struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(p: nn::Path, c_in: i64) -> Self {
        InceptionD {
            branch3x3_1: conv(&p, "branch3x3_1", c_in, 192, 1),
            branch3x3_2: conv_s2(&p, "branch3x3_2", 192, 320, 3),
            branch7x7x3_1: conv(&p, "branch7x7x3_1", c_in, 192, 1),
            branch7x7x3_2: conv_1xn(&p, "branch7x7x3_2", 192, 192, 7),
            branch7x7x3_3: conv_nx1(&p, "branch7x7x3_3", 192, 192, 7),
            branch7x7x3_4: conv_s2(&p, "branch7x7x3_4", 192, 192, 3),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b3 = self.branch3x3_2.forward(&self.branch3x3_1.forward(x));
        let b7 = self.branch7x7x3_1.forward(x);
        let b7 = self.branch7x7x3_3.forward(&self.branch7x7x3_2.forward(&b7));
        let b7 = self.branch7x7x3_4.forward(&b7);
        let bp = max_pool_3x3_s2(x);
        Tensor::cat(&[b3, b7, bp], 1)
    }
}

/// The pool branch of an E block: FIDInceptionE_1 (Mixed_7b) averages (count_include_pad =
/// false), FIDInceptionE_2 (Mixed_7c) takes a 3x3 / stride 1 / pad 1 MAX.
#[derive(Debug, Clone, Copy)]
enum EPool {
    Avg,
    Max,
}

/// FIDInceptionE_1 / _2 (Mixed_7b, Mixed_7c): -> 320 + (384 + 384) + (384 + 384) + 192 = 2048.
#[derive(Debug)]
struct InceptionE {
    pool: EPool,
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(p: nn::Path, c_in: i64, pool: EPool) -> Self {
        InceptionE {
            pool,
            branch1x1: conv(&p, "branch1x1", c_in, 320, 1),
            branch3x3_1: conv(&p, "branch3x3_1", c_in, 384, 1),
            branch3x3_2a: conv_1xn(&p, "branch3x3_2a", 384, 384, 3),
            branch3x3_2b: conv_nx1(&p, "branch3x3_2b", 384, 384, 3),
            branch3x3dbl_1: conv(&p, "branch3x3dbl_1", c_in, 448, 1),
            branch3x3dbl_2: conv_same(&p, "branch3x3dbl_2", 448, 384, 3),
            branch3x3dbl_3a: conv_1xn(&p, "branch3x3dbl_3a", 384, 384, 3),
            branch3x3dbl_3b: conv_nx1(&p, "branch3x3dbl_3b", 384, 384, 3),
            branch_pool: conv(&p, "branch_pool", c_in, 192, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b3 = self.branch3x3_1.forward(x);
        let b3 = Tensor::cat(
            &[
                self.branch3x3_2a.forward(&b3),
                self.branch3x3_2b.forward(&b3),
            ],
            1,
        );
        let bd = self.branch3x3dbl_1.forward(x);
        let bd = self.branch3x3dbl_2.forward(&bd);
        let bd = Tensor::cat(
            &[
                self.branch3x3dbl_3a.forward(&bd),
                self.branch3x3dbl_3b.forward(&bd),
            ],
            1,
        );
        let pooled = match self.pool {
            EPool::Avg => avg_pool_3x3_same(x),
            EPool::Max => x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false),
        };
        let bp = self.branch_pool.forward(&pooled);
        Tensor::cat(&[b1, b3, bd, bp], 1)
    }
}

/// pytorch-fid's FID Inception v3 up to pool3.
#[derive(Debug)]
pub struct FidInception {
    conv2d_1a_3x3: BasicConv2d,
    conv2d_2a_3x3: BasicConv2d,
    conv2d_2b_3x3: BasicConv2d,
    conv2d_3b_1x1: BasicConv2d,
    conv2d_4a_3x3: BasicConv2d,
    mixed_5b: InceptionA,
    mixed_5c: InceptionA,
    mixed_5d: InceptionA,
    mixed_6a: InceptionB,
    mixed_6b: InceptionC,
    mixed_6c: InceptionC,
    mixed_6d: InceptionC,
    mixed_6e: InceptionC,
    mixed_7a: InceptionD,
    mixed_7b: InceptionE,
    mixed_7c: InceptionE,
}

impl FidInception {
    /// Pool3 feature width.
    pub const DIM: i64 = 2048;

    /// Creates the 470 variables under `p` (the var store's root for the plain key names).
    /// Load weights afterwards with `VarStore::load(".../inception.safetensors")`; to run in
    /// f64, call `vs.double()` AFTER loading (load converts each variable to the file's kind).
    pub fn new(p: &nn::Path) -> Self {
        FidInception {
            conv2d_1a_3x3: BasicConv2d::new(p / "Conv2d_1a_3x3", 3, 32, [3, 3], 2, [0, 0]),
            conv2d_2a_3x3: conv(p, "Conv2d_2a_3x3", 32, 32, 3),
            conv2d_2b_3x3: conv_same(p, "Conv2d_2b_3x3", 32, 64, 3),
            conv2d_3b_1x1: conv(p, "Conv2d_3b_1x1", 64, 80, 1),
            conv2d_4a_3x3: conv(p, "Conv2d_4a_3x3", 80, 192, 3),
            mixed_5b: InceptionA::new(p / "Mixed_5b", 192, 32),
            mixed_5c: InceptionA::new(p / "Mixed_5c", 256, 64),
            mixed_5d: InceptionA::new(p / "Mixed_5d", 288, 64),
            mixed_6a: InceptionB::new(p / "Mixed_6a", 288),
            mixed_6b: InceptionC::new(p / "Mixed_6b", 768, 128),
            mixed_6c: InceptionC::new(p / "Mixed_6c", 768, 160),
            mixed_6d: InceptionC::new(p / "Mixed_6d", 768, 160),
            mixed_6e: InceptionC::new(p / "Mixed_6e", 768, 192),
            mixed_7a: InceptionD::new(p / "Mixed_7a", 768),
            mixed_7b: InceptionE::new(p / "Mixed_7b", 1280, EPool::Avg),
            mixed_7c: InceptionE::new(p / "Mixed_7c", 2048, EPool::Max),
        }
    }

    /// [N, 3, H, W] in [0, 1] -> [N, 3, 299, 299] in [-1, 1]: bilinear, align_corners = false,
    /// no antialiasing, output size given (no scale factors), ALWAYS applied (identity at 299).
    pub fn preprocess(images: &Tensor) -> Tensor {
        let x = images.upsample_bilinear2d([299, 299], false, None::<f64>, None::<f64>);
        x * 2.0 - 1.0
    }

    /// pytorch-fid block 0: -> [N, 64, 73, 73].
    pub fn block0(&self, x: &Tensor) -> Tensor {
        let x = self.conv2d_1a_3x3.forward(x); // 32 x 149 x 149
        let x = self.conv2d_2a_3x3.forward(&x); // 32 x 147 x 147
        let x = self.conv2d_2b_3x3.forward(&x); // 64 x 147 x 147
        max_pool_3x3_s2(&x) // 64 x 73 x 73
    }

    /// pytorch-fid block 1: -> [N, 192, 35, 35].
    pub fn block1(&self, x: &Tensor) -> Tensor {
        let x = self.conv2d_3b_1x1.forward(x); // 80 x 73 x 73
        let x = self.conv2d_4a_3x3.forward(&x); // 192 x 71 x 71
        max_pool_3x3_s2(&x) // 192 x 35 x 35
    }

    /// pytorch-fid block 2: -> [N, 768, 17, 17].
    pub fn block2(&self, x: &Tensor) -> Tensor {
        let x = self.mixed_5b.forward(x); // 256 x 35 x 35
        let x = self.mixed_5c.forward(&x); // 288
        let x = self.mixed_5d.forward(&x); // 288
        let x = self.mixed_6a.forward(&x); // 768 x 17 x 17
        let x = self.mixed_6b.forward(&x);
        let x = self.mixed_6c.forward(&x);
        let x = self.mixed_6d.forward(&x);
        self.mixed_6e.forward(&x) // 768 x 17 x 17
    }

    /// pytorch-fid block 3: -> [N, 2048, 1, 1].
    pub fn block3(&self, x: &Tensor) -> Tensor {
        let x = self.mixed_7a.forward(x); // 1280 x 8 x 8
        let x = self.mixed_7b.forward(&x); // 2048 x 8 x 8
        let x = self.mixed_7c.forward(&x); // 2048 x 8 x 8
        x.adaptive_avg_pool2d([1, 1])
    }

    /// Pool3 features [N, 2048] of images [N, 3, H, W] in [0, 1] (same kind and device as the
    /// variables). No gradients are recorded.
    pub fn features(&self, images: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = Self::preprocess(images);
            let x = self.block0(&x);
            let x = self.block1(&x);
            let x = self.block2(&x);
            self.block3(&x).flatten(1, -1)
        })
    }

    /// `features` over `images` in chunks of `chunk` (bounded memory at 299 x 299).
    pub fn features_chunked(&self, images: &Tensor, chunk: i64) -> Tensor {
        let n = images.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(chunk as usize)
            .map(|s| self.features(&images.narrow(0, s, chunk.min(n - s))))
            .collect();
        Tensor::cat(&parts, 0)
    }
}
