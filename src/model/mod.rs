//! The CD network (SPEC 2.1): ResNet backbone, instance projector `g`, feature predictor `p`, and
//! the two contrastive losses (SPEC 2.3). Parameter names equal the reference PyTorch state_dict.

mod layers;
pub mod losses;
mod resnet;

use tch::nn;
use tch::Tensor;

pub use layers::{BatchNorm, Conv2d, Linear, ParamInit, BN_EPS, BN_MOMENTUM};
pub use resnet::ResNet;

use crate::config::{Backbone, Config, Method};

/// Architecture of a CD (or SimCLR) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSpec {
    pub backbone: Backbone,
    pub hidden_dim: i64,
    pub feature_num: i64,
    pub method: Method,
}

impl NetSpec {
    pub fn from_config(cfg: &Config) -> NetSpec {
        NetSpec {
            backbone: cfg.backbone,
            hidden_dim: cfg.hidden_dim,
            feature_num: cfg.feature_num,
            method: cfg.method,
        }
    }
}

/// `g`: Linear(rep, rep, no bias) -> BN -> ReLU -> Linear(rep, hidden, bias).
#[derive(Debug)]
struct InstanceProjector {
    fc1: Linear,
    bn: BatchNorm,
    fc2: Linear,
}

impl InstanceProjector {
    fn new(p: &nn::Path, init: &mut ParamInit, rep: i64, hidden: i64) -> InstanceProjector {
        InstanceProjector {
            fc1: Linear::new(&(p / "0"), init, rep, rep, false),
            bn: BatchNorm::new(&(p / "1"), rep),
            fc2: Linear::new(&(p / "3"), init, rep, hidden, true),
        }
    }

    fn forward_t(&self, h: &Tensor, train: bool) -> Tensor {
        self.fc2
            .forward(&self.bn.forward_t(&self.fc1.forward(h), train).relu())
    }
}

/// `p`: Linear(hidden, rep, no bias) -> BN -> ReLU -> Linear(rep, K, no bias) -> BN -> Sigmoid.
#[derive(Debug)]
struct FeaturePredictor {
    fc1: Linear,
    bn1: BatchNorm,
    fc2: Linear,
    bn2: BatchNorm,
}

impl FeaturePredictor {
    fn new(p: &nn::Path, init: &mut ParamInit, hidden: i64, rep: i64, k: i64) -> FeaturePredictor {
        FeaturePredictor {
            fc1: Linear::new(&(p / "0"), init, hidden, rep, false),
            bn1: BatchNorm::new(&(p / "1"), rep),
            fc2: Linear::new(&(p / "3"), init, rep, k, false),
            bn2: BatchNorm::new(&(p / "4"), k),
        }
    }

    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let y = self.bn1.forward_t(&self.fc1.forward(z), train).relu();
        self.bn2.forward_t(&self.fc2.forward(&y), train).sigmoid()
    }
}

/// What one forward pass gives: backbone output `h`, projection `z`, and (CD only) features `f`.
#[derive(Debug)]
pub struct Outputs {
    pub h: Tensor,
    pub z: Tensor,
    pub f: Option<Tensor>,
}

impl Outputs {
    /// The "final output" evaluated by k-means: `f` for CD, `z` for SimCLR (SPEC 2.3).
    pub fn final_output(&self) -> &Tensor {
        self.f.as_ref().unwrap_or(&self.z)
    }
}

/// The whole network, registered in a `VarStore` under the reference names
/// (`resnet.*`, `instance_projector.*`, `feature_predictor.*`).
#[derive(Debug)]
pub struct CdNet {
    pub spec: NetSpec,
    resnet: ResNet,
    projector: InstanceProjector,
    predictor: Option<FeaturePredictor>,
}

impl CdNet {
    /// Builds the network under `root`, initialised from `seed` as PyTorch initialises it.
    pub fn new(root: &nn::Path, spec: NetSpec, seed: u64) -> CdNet {
        let init = &mut ParamInit::new(seed);
        let rep = spec.backbone.rep_dim();
        let resnet = ResNet::new(&(root / "resnet"), init, spec.backbone);
        let projector =
            InstanceProjector::new(&(root / "instance_projector"), init, rep, spec.hidden_dim);
        // SimCLR is the same network up to z: it has no feature predictor at all, so no unused
        // parameters drift under weight decay.
        let predictor = (spec.method == Method::Cd).then(|| {
            FeaturePredictor::new(
                &(root / "feature_predictor"),
                init,
                spec.hidden_dim,
                rep,
                spec.feature_num,
            )
        });
        CdNet {
            spec,
            resnet,
            projector,
            predictor,
        }
    }

    /// One view-batch `x` [B, 3, H, W] in [0, 1].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Outputs {
        let h = self.resnet.forward_t(x, train);
        let z = self.projector.forward_t(&h, train);
        let f = self.predictor.as_ref().map(|p| p.forward_t(&z, train));
        Outputs { h, z, f }
    }
}

/// Number of trainable scalar parameters in `vs`.
pub fn trainable_parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn build(backbone: Backbone, k: i64) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = CdNet::new(
            &vs.root(),
            NetSpec {
                backbone,
                hidden_dim: 128,
                feature_num: k,
                method: Method::Cd,
            },
            0,
        );
        vs
    }

    #[test]
    fn parameter_counts_equal_the_reference_table() {
        // SPEC 2.1: trainable parameters and state_dict entries of the reference network.
        let table = [
            (Backbone::ResNet18, 128, 11_637_696, 140),
            (Backbone::ResNet18, 256, 11_703_488, 140),
            (Backbone::ResNet34, 128, 21_745_856, 236),
            (Backbone::ResNet34, 256, 21_811_648, 236),
            (Backbone::ResNet50, 128, 28_497_344, 338),
            (Backbone::ResNet50, 256, 28_759_744, 338),
        ];
        for (backbone, k, params, entries) in table {
            let vs = build(backbone, k);
            assert_eq!(trainable_parameter_count(&vs), params, "{backbone:?} K={k}");
            assert_eq!(
                vs.variables().len(),
                entries,
                "{backbone:?} K={k} state_dict entries"
            );
        }
    }

    #[test]
    fn names_shapes_and_kinds_equal_the_reference_state_dict() {
        // tests/fixtures/state_dict/*.txt come from scripts/reference_names.py (torchvision).
        for backbone in Backbone::ALL {
            let path = format!(
                "{}/tests/fixtures/state_dict/{}.txt",
                env!("CARGO_MANIFEST_DIR"),
                backbone.name()
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let mut want: Vec<String> = text.lines().map(str::to_string).collect();
            want.sort();
            let vs = build(backbone, 128);
            let mut got: Vec<String> = vs
                .variables()
                .iter()
                .map(|(name, t)| {
                    let kind = match t.kind() {
                        Kind::Float => "float32",
                        Kind::Int64 => "int64",
                        other => panic!("unexpected kind {other:?} for {name}"),
                    };
                    format!("{name} {:?} {kind}", t.size())
                })
                .collect();
            got.sort();
            assert_eq!(got, want, "{backbone:?}");
        }
    }

    #[test]
    fn output_shapes_and_ranges() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CdNet::new(
            &vs.root(),
            NetSpec {
                backbone: Backbone::ResNet18,
                hidden_dim: 16,
                feature_num: 8,
                method: Method::Cd,
            },
            0,
        );
        let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let out = net.forward_t(&x, true);
        assert_eq!(out.h.size(), [4, 512]);
        assert_eq!(out.z.size(), [4, 16]);
        let f = out.f.unwrap();
        assert_eq!(f.size(), [4, 8]);
        assert!(f.min().double_value(&[]) > 0.0 && f.max().double_value(&[]) < 1.0);
        let nbt = vs.variables()["resnet.bn1.num_batches_tracked"].int64_value(&[]);
        assert_eq!(nbt, 1);
    }

    #[test]
    fn simclr_has_no_feature_predictor() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CdNet::new(
            &vs.root(),
            NetSpec {
                backbone: Backbone::ResNet18,
                hidden_dim: 128,
                feature_num: 128,
                method: Method::Simclr,
            },
            0,
        );
        assert!(!vs
            .variables()
            .keys()
            .any(|k| k.starts_with("feature_predictor")));
        assert_eq!(trainable_parameter_count(&vs), 11_637_696 - 132_352);
        let out = net.forward_t(
            &Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(out.final_output().size(), [2, 128]);
    }
}
