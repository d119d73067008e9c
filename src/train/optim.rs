//! Adam with L2 weight decay, cosine annealing and global-norm clipping (SPEC 2.4), with the
//! optimiser state held in tensors this project owns, so a checkpoint carries it and a resumed run
//! continues the same optimisation.

use tch::{Kind, Tensor};

pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;

/// Adam as `torch.optim.Adam` computes it: `weight_decay` is added to the gradient (L2), not
/// decoupled (AdamW).
#[derive(Debug)]
pub struct Adam {
    pub lr: f64,
    pub weight_decay: f64,
    /// Number of steps taken (PyTorch's per-parameter `step`, equal for all parameters here).
    pub step: i64,
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Optimises the trainable tensors `params` (named, for checkpoints), in a fixed order.
    pub fn new(params: Vec<(String, Tensor)>, lr: f64, weight_decay: f64) -> Adam {
        let (names, params): (Vec<_>, Vec<_>) = params.into_iter().unzip();
        let exp_avg = params.iter().map(|p| p.zeros_like().detach()).collect();
        let exp_avg_sq = params.iter().map(|p| p.zeros_like().detach()).collect();
        Adam {
            lr,
            weight_decay,
            step: 0,
            names,
            params,
            exp_avg,
            exp_avg_sq,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Scales all gradients so their global L2 norm is at most `max_norm` (as
    /// `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| p.grad())
                .filter(|g| g.defined())
                .collect();
            if grads.is_empty() {
                return 0.0;
            }
            let squares: Vec<Tensor> = grads
                .iter()
                .map(|g| g.to_kind(Kind::Double).square().sum(None))
                .collect();
            let total = Tensor::stack(&squares, 0)
                .sum(None)
                .sqrt()
                .double_value(&[]);
            let coef = (max_norm / (total + 1e-6)).min(1.0);
            if coef < 1.0 {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(coef);
                }
            }
            total
        })
    }

    /// One Adam step over every parameter that has a gradient.
    pub fn step(&mut self) {
        self.step += 1;
        let t = self.step as f64;
        let bias1 = 1.0 - BETA1.powf(t);
        let bias2 = 1.0 - BETA2.powf(t);
        let step_size = self.lr / bias1;
        tch::no_grad(|| {
            for ((p, m), v) in self
                .params
                .iter()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay == 0.0 {
                    g
                } else {
                    &g + p * self.weight_decay
                };
                let _ = m.g_mul_scalar_(BETA1).g_add_(&(&g * (1.0 - BETA1)));
                let _ = v.g_mul_scalar_(BETA2).g_add_(&(g.square() * (1.0 - BETA2)));
                let denom = v.sqrt() / bias2.sqrt() + EPS;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(m.shallow_clone() / denom * step_size));
            }
        });
    }

    /// The optimiser state as named tensors: `exp_avg.<param>`, `exp_avg_sq.<param>`, and `step`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len() + 1);
        for (n, m) in self.names.iter().zip(&self.exp_avg) {
            out.push((format!("exp_avg.{n}"), m.shallow_clone()));
        }
        for (n, v) in self.names.iter().zip(&self.exp_avg_sq) {
            out.push((format!("exp_avg_sq.{n}"), v.shallow_clone()));
        }
        out.push(("step".into(), Tensor::from(self.step)));
        out
    }

    /// Restores a state written by [`Adam::state`]. Every parameter's moments must be present
    /// with the parameter's shape.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        let find = |key: &str| state.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        let step = find("step").ok_or("optimiser state has no `step`")?;
        for (i, name) in self.names.iter().enumerate() {
            for (prefix, dst) in [
                ("exp_avg", &mut self.exp_avg[i]),
                ("exp_avg_sq", &mut self.exp_avg_sq[i]),
            ] {
                let key = format!("{prefix}.{name}");
                let src = find(&key).ok_or_else(|| format!("optimiser state has no `{key}`"))?;
                if src.size() != dst.size() {
                    return Err(format!(
                        "optimiser state `{key}` has shape {:?}, expected {:?}",
                        src.size(),
                        dst.size()
                    ));
                }
                tch::no_grad(|| dst.copy_(src));
            }
        }
        self.step = step.int64_value(&[]);
        Ok(())
    }
}

/// Learning rate of `epoch` (0-based) under cosine annealing from `base` to 0 over `epochs`
/// epochs, as `CosineAnnealingLR(T_max=epochs, eta_min=0)` stepped once per epoch.
pub fn cosine_lr(base: f64, epoch: i64, epochs: i64) -> f64 {
    base * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs as f64).cos()) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam on f(x) = sum(c * x^2) for several steps, against the closed-form update written out
    /// with plain f64 arithmetic.
    #[test]
    fn adam_steps_equal_the_closed_form_update() {
        let c = [1.0f64, -2.0, 0.5];
        let x0 = [0.3f64, -1.2, 2.0];
        let (lr, wd) = (0.01, 0.05);
        let x = Tensor::from_slice(&x0).set_requires_grad(true);
        let coef = Tensor::from_slice(&c);
        let mut adam = Adam::new(vec![("x".into(), x.shallow_clone())], lr, wd);

        let mut want = x0;
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for t in 1..=5 {
            adam.zero_grad();
            (&coef * x.square()).sum(None).backward();
            adam.step();
            for i in 0..3 {
                let g = 2.0 * c[i] * want[i] + wd * want[i];
                m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                let mhat = m[i] / (1.0 - BETA1.powi(t));
                let vhat = v[i] / (1.0 - BETA2.powi(t));
                want[i] -= lr * mhat / (vhat.sqrt() + EPS);
            }
            let got: Vec<f64> = Vec::try_from(&x.detach()).unwrap();
            for i in 0..3 {
                assert!(
                    (got[i] - want[i]).abs() < 1e-12,
                    "step {t} x[{i}]: {} vs {}",
                    got[i],
                    want[i]
                );
            }
        }
        assert_eq!(adam.step, 5);
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let x = Tensor::from_slice(&[3.0f64, 4.0]).set_requires_grad(true);
        let mut adam = Adam::new(vec![("x".into(), x.shallow_clone())], 0.1, 0.0);
        (x.shallow_clone() * Tensor::from_slice(&[3.0f64, 4.0]))
            .sum(None)
            .backward();
        let norm = adam.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-12);
        let g: Vec<f64> = Vec::try_from(&x.grad()).unwrap();
        assert!(
            (g[0] - 3.0 / (5.0 + 1e-6)).abs() < 1e-12 && (g[1] - 4.0 / (5.0 + 1e-6)).abs() < 1e-12
        );
    }

    #[test]
    fn state_round_trips() {
        let x = Tensor::from_slice(&[1.0f64, 2.0]).set_requires_grad(true);
        let mut a = Adam::new(vec![("x".into(), x.shallow_clone())], 0.1, 0.0);
        x.square().sum(None).backward();
        a.step();
        let y = Tensor::from_slice(&[0.0f64, 0.0]).set_requires_grad(true);
        let mut b = Adam::new(vec![("x".into(), y)], 0.1, 0.0);
        b.load_state(&a.state()).unwrap();
        assert_eq!(b.step, 1);
        assert!(b.state()[0].1.allclose(&a.state()[0].1, 0.0, 0.0, false));
    }

    #[test]
    fn cosine_schedule_endpoints() {
        assert_eq!(cosine_lr(0.1, 0, 10), 0.1);
        assert!((cosine_lr(0.1, 5, 10) - 0.05).abs() < 1e-15);
        assert!(cosine_lr(0.1, 10, 10).abs() < 1e-15);
    }
}
