//! torchvision-style ResNet without its final `fc` (SPEC 2.1): the CD backbone producing `h`.

use tch::nn;
use tch::Tensor;

use super::layers::{BatchNorm, Conv2d, ParamInit};
use crate::config::Backbone;

#[derive(Debug)]
struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

impl Downsample {
    fn new(p: &nn::Path, init: &mut ParamInit, c_in: i64, c_out: i64, stride: i64) -> Downsample {
        Downsample {
            conv: Conv2d::new(&(p / "0"), init, c_in, c_out, 1, stride, 0),
            bn: BatchNorm::new(&(p / "1"), c_out),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), train)
    }
}

/// A residual block: BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3 with the stride, 1x1 x4).
#[derive(Debug)]
struct Block {
    convs: Vec<(Conv2d, BatchNorm)>,
    downsample: Option<Downsample>,
}

impl Block {
    fn basic(p: &nn::Path, init: &mut ParamInit, c_in: i64, planes: i64, stride: i64) -> Block {
        let convs = vec![
            (
                Conv2d::new(&(p / "conv1"), init, c_in, planes, 3, stride, 1),
                BatchNorm::new(&(p / "bn1"), planes),
            ),
            (
                Conv2d::new(&(p / "conv2"), init, planes, planes, 3, 1, 1),
                BatchNorm::new(&(p / "bn2"), planes),
            ),
        ];
        let downsample = (stride != 1 || c_in != planes)
            .then(|| Downsample::new(&(p / "downsample"), init, c_in, planes, stride));
        Block { convs, downsample }
    }

    fn bottleneck(
        p: &nn::Path,
        init: &mut ParamInit,
        c_in: i64,
        planes: i64,
        stride: i64,
    ) -> Block {
        let out = planes * 4;
        let convs = vec![
            (
                Conv2d::new(&(p / "conv1"), init, c_in, planes, 1, 1, 0),
                BatchNorm::new(&(p / "bn1"), planes),
            ),
            (
                Conv2d::new(&(p / "conv2"), init, planes, planes, 3, stride, 1),
                BatchNorm::new(&(p / "bn2"), planes),
            ),
            (
                Conv2d::new(&(p / "conv3"), init, planes, out, 1, 1, 0),
                BatchNorm::new(&(p / "bn3"), out),
            ),
        ];
        let downsample = (stride != 1 || c_in != out)
            .then(|| Downsample::new(&(p / "downsample"), init, c_in, out, stride));
        Block { convs, downsample }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            y = bn.forward_t(&conv.forward(&y), train);
            if i != last {
                y = y.relu();
            }
        }
        let identity = match &self.downsample {
            Some(d) => d.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (y + identity).relu()
    }
}

/// The backbone: stem, four stages, global average pool, flatten.
#[derive(Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    stages: Vec<Vec<Block>>,
}

impl ResNet {
    /// Builds `backbone` under `p` (the reference puts it under `resnet`).
    pub fn new(p: &nn::Path, init: &mut ParamInit, backbone: Backbone) -> ResNet {
        let (bottleneck, depths) = match backbone {
            Backbone::ResNet18 => (false, [2, 2, 2, 2]),
            Backbone::ResNet34 => (false, [3, 4, 6, 3]),
            Backbone::ResNet50 => (true, [3, 4, 6, 3]),
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let conv1 = Conv2d::new(&(p / "conv1"), init, 3, 64, 7, 2, 3);
        let bn1 = BatchNorm::new(&(p / "bn1"), 64);
        let mut c_in = 64;
        let mut stages = Vec::new();
        for (s, (&depth, planes)) in depths.iter().zip([64i64, 128, 256, 512]).enumerate() {
            let layer = p / format!("layer{}", s + 1);
            let mut blocks = Vec::new();
            for i in 0..depth {
                let stride = if i == 0 && s > 0 { 2 } else { 1 };
                let bp = &layer / i;
                blocks.push(if bottleneck {
                    Block::bottleneck(&bp, init, c_in, planes, stride)
                } else {
                    Block::basic(&bp, init, c_in, planes, stride)
                });
                c_in = planes * expansion;
            }
            stages.push(blocks);
        }
        ResNet { conv1, bn1, stages }
    }

    /// `x`: [B, 3, H, W] in [0, 1]. Returns `h`: [B, rep_dim].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = self
            .bn1
            .forward_t(&self.conv1.forward(x), train)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for stage in &self.stages {
            for block in stage {
                y = block.forward_t(&y, train);
            }
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}
