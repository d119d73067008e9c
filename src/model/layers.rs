//! Conv, linear and batch-norm layers with PyTorch's initialisation and state_dict names.
//!
//! tch's own `nn` layers initialise differently from PyTorch and its batch norm has no
//! `num_batches_tracked` buffer; weights must move both ways with the reference PyTorch code, so
//! these layers register exactly the tensors a PyTorch module has, under the same names.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// Draws initial weights from a seeded generator of this project's own, so the same seed gives
/// the same network on any device and whatever else uses libtorch's global generator meanwhile.
#[derive(Debug)]
pub struct ParamInit {
    rng: ChaCha8Rng,
}

impl ParamInit {
    pub fn new(seed: u64) -> ParamInit {
        ParamInit {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Normal(0, stdev) values (Box-Muller).
    fn normal(&mut self, dims: &[i64], stdev: f64) -> Tensor {
        let n: i64 = dims.iter().product();
        let mut v = Vec::with_capacity(n as usize);
        while v.len() < n as usize {
            let u1: f64 = 1.0 - self.rng.gen::<f64>();
            let u2: f64 = self.rng.gen();
            let r = (-2.0 * u1.ln()).sqrt() * stdev;
            let t = std::f64::consts::TAU * u2;
            v.push((r * t.cos()) as f32);
            v.push((r * t.sin()) as f32);
        }
        v.truncate(n as usize);
        Tensor::from_slice(&v).reshape(dims)
    }

    /// Uniform(-bound, bound) values.
    fn uniform(&mut self, dims: &[i64], bound: f64) -> Tensor {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| self.rng.gen_range(-bound..bound) as f32)
            .collect();
        Tensor::from_slice(&v).reshape(dims)
    }
}

/// `nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)` with Kaiming-normal (fan_out, ReLU)
/// weights, as torchvision's ResNet initialises them.
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    pub fn new(
        p: &nn::Path,
        init: &mut ParamInit,
        c_in: i64,
        c_out: i64,
        k: i64,
        stride: i64,
        padding: i64,
    ) -> Conv2d {
        let fan_out = (c_out * k * k) as f64;
        let stdev = (2.0 / fan_out).sqrt();
        let weight = p.var_copy("weight", &init.normal(&[c_out, c_in, k, k], stdev));
        Conv2d {
            weight,
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            None::<Tensor>,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// `nn.Linear(c_in, c_out, bias)`: weight and bias uniform in ±1/sqrt(c_in).
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(p: &nn::Path, init: &mut ParamInit, c_in: i64, c_out: i64, bias: bool) -> Linear {
        let bound = 1.0 / (c_in as f64).sqrt();
        let weight = p.var_copy("weight", &init.uniform(&[c_out, c_in], bound));
        let bias = bias.then(|| p.var_copy("bias", &init.uniform(&[c_out], bound)));
        Linear { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.BatchNorm1d/2d(c)`: eps 1e-5, momentum 0.1, affine, tracking running statistics, with the
/// `num_batches_tracked` counter PyTorch keeps in its state_dict.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm {
    pub fn new(p: &nn::Path, c: i64) -> BatchNorm {
        let weight = p.var("weight", &[c], Init::Const(1.0));
        let bias = p.var("bias", &[c], Init::Const(0.0));
        let running_mean = p.zeros_no_train("running_mean", &[c]);
        let running_var = p.ones_no_train("running_var", &[c]);
        let num_batches_tracked = p.add(
            "num_batches_tracked",
            Tensor::zeros([], (Kind::Int64, p.device())),
            false,
        );
        BatchNorm {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
        }
    }

    /// Batch statistics (and a running-statistics update) when `train`, running statistics otherwise.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if train {
            tch::no_grad(|| {
                let _ = self.num_batches_tracked.shallow_clone().f_add_scalar_(1);
            });
        }
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }
}
