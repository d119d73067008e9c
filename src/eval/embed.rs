//! Embeddings of the evaluation set: every image through the eval transform (SPEC 2.6) and the
//! network in eval mode, batched on the training device. Worker threads prepare the next batches
//! while the device runs the current one.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use tch::{Device, Tensor};

use crate::data::augment::eval_view;
use crate::data::ImageSet;
use crate::model::CdNet;

use super::EvalError;

/// Network outputs for a list of images, row `i` belonging to `indices[i]` of the set.
#[derive(Debug)]
pub struct Embeddings {
    /// Backbone output `h`, N x rep_dim, on the device of the pass.
    pub h: Tensor,
    /// Final output: `f` for CD, `z` for SimCLR, N x dim, on the device of the pass.
    pub f: Tensor,
    pub labels: Vec<i64>,
    pub indices: Vec<usize>,
}

/// How to run the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedSettings {
    pub image_size: u32,
    pub batch_size: usize,
    /// Threads preparing images; 0 = one per core.
    pub workers: usize,
    pub device: Device,
}

/// Runs the images at `indices` of `set` through `net` in eval mode. `progress(done, total)` is
/// called after each batch with the number of images done; when it breaks, the pass stops there
/// with [`EvalError::Interrupted`].
pub fn embed(
    net: &CdNet,
    set: &ImageSet,
    indices: &[usize],
    settings: EmbedSettings,
    progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<Embeddings, EvalError> {
    let _guard = tch::no_grad_guard();
    let size = settings.image_size as usize;
    let per_image = 3 * size * size;
    let batch = settings.batch_size.max(1);
    let batches = indices.len().div_ceil(batch);
    let workers = match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(batches)
    .max(1);
    let next = AtomicUsize::new(0);
    let mut h_parts = Vec::with_capacity(batches);
    let mut f_parts = Vec::with_capacity(batches);
    std::thread::scope(|scope| -> Result<(), EvalError> {
        let (tx, rx) = sync_channel::<(usize, Vec<f32>)>(2);
        for _ in 0..workers {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let b = next.fetch_add(1, Ordering::SeqCst);
                if b >= batches {
                    break;
                }
                let rows = &indices[b * batch..((b + 1) * batch).min(indices.len())];
                let mut data = vec![0f32; rows.len() * per_image];
                for (out, &i) in data.chunks_exact_mut(per_image).zip(rows) {
                    eval_view(&set.images[i], settings.image_size, out);
                }
                // The receiver is gone only when the pass failed; stop quietly then.
                if tx.send((b, data)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut done = 0;
        for expected in 0..batches {
            let data = loop {
                if let Some(d) = pending.remove(&expected) {
                    break d;
                }
                let (b, d) = rx.recv().expect("a worker panicked while preparing images");
                pending.insert(b, d);
            };
            let rows = (data.len() / per_image) as i64;
            let x = Tensor::f_from_slice(&data)?
                .f_reshape([rows, 3, size as i64, size as i64])?
                .f_to_device(settings.device)?;
            let out = net.forward_t(&x, false);
            f_parts.push(out.final_output().shallow_clone());
            h_parts.push(out.h);
            done += rows as usize;
            if progress(done, indices.len()).is_break() {
                // Dropping the receiver on return stops the workers at their next batch.
                return Err(EvalError::Interrupted);
            }
        }
        Ok(())
    })?;
    let empty = |dim: i64| Tensor::zeros([0, dim], (tch::Kind::Float, settings.device));
    let h = if h_parts.is_empty() {
        empty(net.spec.backbone.rep_dim())
    } else {
        Tensor::f_cat(&h_parts, 0)?
    };
    let f = if f_parts.is_empty() {
        empty(0)
    } else {
        Tensor::f_cat(&f_parts, 0)?
    };
    Ok(Embeddings {
        h,
        f,
        labels: indices.iter().map(|&i| set.labels[i]).collect(),
        indices: indices.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backbone, Method};
    use crate::data::shapes;
    use crate::model::NetSpec;
    use tch::{nn, Kind};

    fn tiny_net(vs: &nn::VarStore, method: Method) -> CdNet {
        CdNet::new(
            &vs.root(),
            NetSpec {
                backbone: Backbone::ResNet18,
                hidden_dim: 16,
                feature_num: 8,
                method,
            },
            0,
        )
    }

    #[test]
    fn batched_pass_equals_one_image_at_a_time_in_order() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = tiny_net(&vs, Method::Cd);
        let (set, _) = shapes::generate(12, 32, 1);
        let indices = [7usize, 0, 3, 11, 5];
        let settings = EmbedSettings {
            image_size: 32,
            batch_size: 2,
            workers: 3,
            device: Device::Cpu,
        };
        let mut seen = Vec::new();
        let e = embed(&net, &set, &indices, settings, &mut |d, t| {
            seen.push((d, t));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, [(2, 5), (4, 5), (5, 5)]);
        assert_eq!(e.h.size(), [5, 512]);
        assert_eq!(e.f.size(), [5, 8]);
        assert_eq!(
            e.labels,
            indices.iter().map(|&i| set.labels[i]).collect::<Vec<_>>()
        );
        // Eval mode: each row is independent of its batch mates.
        let mut buf = vec![0f32; 3 * 32 * 32];
        eval_view(&set.images[11], 32, &mut buf);
        let x = Tensor::from_slice(&buf).reshape([1, 3, 32, 32]);
        let alone = tch::no_grad(|| net.forward_t(&x, false));
        let diff = (alone.h - e.h.get(3)).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
        let f = alone.f.unwrap();
        assert!((f - e.f.get(3)).abs().max().double_value(&[]) < 1e-5);
        assert!(!e.h.requires_grad());
        // The pass left the BatchNorm statistics alone.
        let nbt = vs.variables()["resnet.bn1.num_batches_tracked"].int64_value(&[]);
        assert_eq!(nbt, 0);
    }

    #[test]
    fn simclr_final_output_is_z_and_empty_input_gives_empty_tensors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = tiny_net(&vs, Method::Simclr);
        let (set, _) = shapes::generate(4, 32, 1);
        let settings = EmbedSettings {
            image_size: 32,
            batch_size: 8,
            workers: 0,
            device: Device::Cpu,
        };
        let e = embed(&net, &set, &[0, 1, 2, 3], settings, &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(e.f.size(), [4, 16]);
        assert_eq!(e.f.kind(), Kind::Float);
        let e = embed(&net, &set, &[], settings, &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(e.h.size(), [0, 512]);
    }

    #[test]
    fn a_break_from_progress_stops_the_pass_after_that_batch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = tiny_net(&vs, Method::Cd);
        let (set, _) = shapes::generate(40, 32, 1);
        let settings = EmbedSettings {
            image_size: 32,
            batch_size: 4,
            workers: 2,
            device: Device::Cpu,
        };
        let indices: Vec<usize> = (0..40).collect();
        let mut seen = Vec::new();
        let err = embed(&net, &set, &indices, settings, &mut |d, _| {
            seen.push(d);
            if d >= 8 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, EvalError::Interrupted), "{err}");
        assert_eq!(seen, [4, 8]);
    }
}
