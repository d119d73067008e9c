//! The CD losses of SPEC 2.3: the instance-level NT-Xent on projections `z`, and the feature-level
//! loss (NT-Xent over feature heads minus the normalised entropy of the sigmoid outputs).

use tch::{Kind, Tensor};

/// NT-Xent over `2N` rows where row `a`'s positive is row `(a + N) mod 2N` and its negatives are the
/// other `2N - 2` rows: the mean over rows of the cross-entropy against the positive, on cosine
/// similarities divided by `temperature`.
pub fn nt_xent(rows: &Tensor, temperature: f64) -> Tensor {
    let n2 = rows.size()[0];
    assert!(
        n2 % 2 == 0 && n2 >= 4,
        "nt_xent needs an even number of rows >= 4, got {n2}"
    );
    let n = n2 / 2;
    let device = rows.device();
    let norms = rows.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
    let unit = rows / norms;
    let sim = unit.matmul(&unit.tr()) / temperature;
    // A row's own similarity is no candidate class.
    let eye = Tensor::eye(n2, (Kind::Bool, device));
    let logits = sim.masked_fill(&eye, f64::NEG_INFINITY);
    let pos_index = (Tensor::arange(n2, (Kind::Int64, device)) + n).remainder(n2);
    let positives = sim.gather(1, &pos_index.unsqueeze(1), false).squeeze_dim(1);
    (logits.logsumexp([1], false) - positives).mean(None)
}

/// Instance loss: NT-Xent of `[z1; z2]`.
pub fn instance_loss(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    nt_xent(&Tensor::cat(&[z1, z2], 0), temperature)
}

/// Mean binary entropy, in bits, of the feature activations of both views: `H(p) / ln 2` averaged
/// over all entries, `H(p) = -p ln(p + 1e-12) - (1 - p) ln(1 - p + 1e-12)`.
pub fn normalized_entropy(f1: &Tensor, f2: &Tensor) -> Tensor {
    let p = Tensor::cat(&[f1, f2], 0);
    let q = p.ones_like() - &p;
    let h = -(&p * (&p + 1e-12).log()) - (&q * (&q + 1e-12).log());
    (h / std::f64::consts::LN_2).mean(None)
}

/// The parts of the feature loss, kept apart so both can be reported.
#[derive(Debug)]
pub struct FeatureLoss {
    /// NT-Xent over the `2K` rows of `[f1^T; f2^T]`.
    pub contrastive: Tensor,
    pub normalized_entropy: Tensor,
    /// `contrastive - normalized_entropy`.
    pub total: Tensor,
}

pub fn feature_loss(f1: &Tensor, f2: &Tensor, temperature: f64) -> FeatureLoss {
    let rows = Tensor::cat(&[f1.tr(), f2.tr()], 0);
    let contrastive = nt_xent(&rows, temperature);
    let normalized_entropy = normalized_entropy(f1, f2);
    let total = &contrastive - &normalized_entropy;
    FeatureLoss {
        contrastive,
        normalized_entropy,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use tch::Device;

    #[derive(Deserialize)]
    struct Case {
        instance_temperature: f64,
        feature_temperature: f64,
        z1: Vec<Vec<f64>>,
        z2: Vec<Vec<f64>>,
        f1: Vec<Vec<f64>>,
        f2: Vec<Vec<f64>>,
        instance_loss: f64,
        feature_loss: f64,
        normalized_entropy: f64,
        feature_contrastive: f64,
        grad_z1_row0: Vec<f64>,
        grad_f1_row0: Vec<f64>,
    }

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }

    fn tensor(rows: &[Vec<f64>]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat)
            .reshape([rows.len() as i64, rows[0].len() as i64])
            .to_device(Device::Cpu)
            .set_requires_grad(true)
    }

    fn assert_close(got: f64, want: f64, what: &str) {
        let rel = (got - want).abs() / want.abs().max(1e-300);
        assert!(
            rel <= 1e-9 || (got - want).abs() <= 1e-12,
            "{what}: got {got:.17}, want {want:.17}"
        );
    }

    #[test]
    fn losses_and_gradients_equal_the_reference_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/reference/cd_losses.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/fixtures/reference/cd_losses.json");
        let fixture: Fixture = serde_json::from_str(&text).unwrap();
        assert!(!fixture.cases.is_empty());
        for (i, c) in fixture.cases.iter().enumerate() {
            let (z1, z2, f1, f2) = (tensor(&c.z1), tensor(&c.z2), tensor(&c.f1), tensor(&c.f2));
            let inst = instance_loss(&z1, &z2, c.instance_temperature);
            let feat = feature_loss(&f1, &f2, c.feature_temperature);
            assert_eq!(inst.kind(), Kind::Double);
            assert_close(
                inst.double_value(&[]),
                c.instance_loss,
                &format!("case {i} instance_loss"),
            );
            assert_close(
                feat.total.double_value(&[]),
                c.feature_loss,
                &format!("case {i} feature_loss"),
            );
            assert_close(
                feat.normalized_entropy.double_value(&[]),
                c.normalized_entropy,
                &format!("case {i} normalized_entropy"),
            );
            assert_close(
                feat.contrastive.double_value(&[]),
                c.feature_contrastive,
                &format!("case {i} feature_contrastive"),
            );
            (inst + feat.total).backward();
            let gz: Vec<f64> = Vec::try_from(z1.grad().get(0)).unwrap();
            let gf: Vec<f64> = Vec::try_from(f1.grad().get(0)).unwrap();
            for (j, (g, w)) in gz.iter().zip(&c.grad_z1_row0).enumerate() {
                assert_close(*g, *w, &format!("case {i} grad_z1[0][{j}]"));
            }
            for (j, (g, w)) in gf.iter().zip(&c.grad_f1_row0).enumerate() {
                assert_close(*g, *w, &format!("case {i} grad_f1[0][{j}]"));
            }
            assert_eq!(gz.len(), c.grad_z1_row0.len());
            assert_eq!(gf.len(), c.grad_f1_row0.len());
        }
    }

    #[test]
    fn identical_views_with_orthogonal_rows_give_a_low_instance_loss() {
        // Two rows per view, orthogonal: positives have cosine 1, negatives 0 or -1.
        let z = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0]).reshape([2, 2]);
        let loss = instance_loss(&z, &z, 0.5).double_value(&[]);
        // Row 0: positive exp(2), negatives exp(0) (row 1) and exp(0) (row 3).
        let want = -2.0 + (2f64.exp() + 2.0).ln();
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
    }
}
