//! The training batch loader: per epoch a seeded shuffle, the last incomplete batch dropped, and
//! two independently augmented views per image, prepared by worker threads ahead of the training
//! step.
//!
//! Every random draw is a function of (seed, epoch, batch index) alone, so the batches are the same
//! whatever the number of workers or their timing, and a resumed run sees the same data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::augment::Augment;
use super::ImageSet;

/// Two views of `batch_size` images: each `[B, 3, S, S]` f32 in [0, 1] on the CPU.
#[derive(Debug)]
pub struct Batch {
    pub index: usize,
    pub view1: Tensor,
    pub view2: Tensor,
    pub labels: Vec<i64>,
}

/// Produces the batches of each epoch.
#[derive(Debug, Clone)]
pub struct Loader {
    set: Arc<ImageSet>,
    augment: Augment,
    batch_size: usize,
    workers: usize,
    prefetch: usize,
    seed: u64,
}

impl Loader {
    /// `workers == 0` means one per available core.
    pub fn new(
        set: Arc<ImageSet>,
        augment: Augment,
        batch_size: usize,
        workers: usize,
        prefetch: usize,
        seed: u64,
    ) -> Loader {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        Loader {
            set,
            augment,
            batch_size,
            workers,
            prefetch: prefetch.max(1),
            seed,
        }
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.set.len() / self.batch_size
    }

    /// The image order of `epoch` (1-based), a seeded permutation.
    pub fn order(&self, epoch: i64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, epoch as u64, u64::MAX));
        order.shuffle(&mut rng);
        order
    }

    /// Builds batch `index` of an epoch whose image order is `order`. The views are rendered
    /// straight into the batch tensors' memory: no staging buffer, no copy.
    pub fn batch(&self, epoch: i64, order: &[usize], index: usize) -> Batch {
        let b = self.batch_size;
        let len = self.augment.view_len();
        let s = i64::from(self.augment.image_size);
        let shape = [b as i64, 3, s, s];
        let mut view1 = Tensor::empty(shape, (Kind::Float, Device::Cpu));
        let mut view2 = Tensor::empty(shape, (Kind::Float, Device::Cpu));
        advise_huge_pages(&view1);
        advise_huge_pages(&view2);
        let mut labels = Vec::with_capacity(b);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, epoch as u64, index as u64));
        let (v1, v2) = (values_mut(&mut view1), values_mut(&mut view2));
        let images = order[index * b..(index + 1) * b].iter();
        for ((&i, out1), out2) in images
            .zip(v1.chunks_exact_mut(len))
            .zip(v2.chunks_exact_mut(len))
        {
            // Every value of both views is written (the augmentation fills its whole output).
            let img = &self.set.images[i];
            self.augment.view(img, &mut rng, out1);
            self.augment.view(img, &mut rng, out2);
            labels.push(self.set.labels[i]);
        }
        Batch {
            index,
            view1,
            view2,
            labels,
        }
    }

    /// The batches of `epoch` from batch `start` on, in order, prepared in the background.
    pub fn epoch(&self, epoch: i64, start: usize) -> EpochBatches {
        let order = Arc::new(self.order(epoch));
        let steps = self.steps_per_epoch();
        let next = Arc::new(AtomicUsize::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(self.prefetch);
        let handles = (0..self.workers.min(steps.saturating_sub(start)).max(1))
            .map(|_| {
                let (loader, order, next, stop, tx) = (
                    self.clone(),
                    order.clone(),
                    next.clone(),
                    stop.clone(),
                    tx.clone(),
                );
                std::thread::spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= steps || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if tx.send(loader.batch(epoch, &order, i)).is_err() {
                        break;
                    }
                })
            })
            .collect();
        EpochBatches {
            rx,
            pending: BTreeMap::new(),
            next: start,
            steps,
            stop,
            handles,
        }
    }
}

/// Iterator over an epoch's batches in index order.
pub struct EpochBatches {
    rx: Receiver<Batch>,
    pending: BTreeMap<usize, Batch>,
    next: usize,
    steps: usize,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.steps {
            return None;
        }
        loop {
            if let Some(b) = self.pending.remove(&self.next) {
                self.next += 1;
                return Some(b);
            }
            match self.rx.recv() {
                Ok(b) => {
                    self.pending.insert(b.index, b);
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock workers waiting on a full channel, then wait for them.
        while self.rx.try_recv().is_ok() {}
        for h in self.handles.drain(..) {
            while !h.is_finished() {
                while self.rx.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = h.join();
        }
    }
}

/// The values of a tensor just made by `Tensor::empty` on the CPU with kind `Float`, to be written
/// in place. Only for fresh tensors whose storage nothing else shares: holding `&mut` of the one
/// handle then keeps every other reader and writer out while the slice lives.
fn values_mut(t: &mut Tensor) -> &mut [f32] {
    assert!(
        t.kind() == Kind::Float && t.device() == Device::Cpu && t.is_contiguous(),
        "values_mut needs a contiguous f32 CPU tensor"
    );
    let n = t.numel();
    if n == 0 {
        return &mut [];
    }
    // SAFETY: the tensor is contiguous f32 on the CPU, so its data pointer addresses `n` aligned
    // f32 values, alive as long as the tensor, which outlives the borrow tied to `&mut t`. Its
    // storage is shared with nothing (see above). `empty` leaves the values as the allocator
    // gave them, but every bit pattern is a valid f32, and `batch` writes each value before
    // anything reads it.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr().cast::<f32>(), n) }
}

/// Asks the kernel to back the (not yet touched) memory of a large tensor with transparent huge
/// pages. A 224 px batch is 77 MB per view, freshly allocated for every batch: with 4 KiB pages
/// filling it costs ~19,000 page faults, a third of the pipeline's time at 224 px on a 2-core
/// machine. Only advice: where THP is off (or not Linux) nothing changes.
fn advise_huge_pages(t: &Tensor) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = t.numel() * t.kind().elt_size_in_bytes();
        if bytes < 2 * HUGE {
            return;
        }
        let start = t.data_ptr() as usize;
        let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the tensor's allocation; MADV_HUGEPAGE changes how
            // pages are backed, never their contents, and a failure is harmless.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = t;
}

/// A 64-bit mix of the seed and two counters (splitmix64 finaliser), for per-batch RNG streams.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shapes;

    fn loader(workers: usize) -> Loader {
        let (set, _) = shapes::generate(50, 16, 1);
        Loader::new(
            Arc::new(set),
            Augment {
                image_size: 16,
                s: 0.5,
                blur: false,
            },
            8,
            workers,
            2,
            9,
        )
    }

    #[test]
    fn drops_the_last_incomplete_batch() {
        let l = loader(2);
        assert_eq!(l.steps_per_epoch(), 6);
        let batches: Vec<Batch> = l.epoch(1, 0).collect();
        assert_eq!(batches.len(), 6);
        assert!(batches
            .iter()
            .enumerate()
            .all(|(i, b)| b.index == i && b.view1.size() == [8, 3, 16, 16]));
    }

    #[test]
    fn batches_do_not_depend_on_worker_count() {
        let a: Vec<Batch> = loader(1).epoch(2, 0).collect();
        let b: Vec<Batch> = loader(3).epoch(2, 0).collect();
        for (x, y) in a.iter().zip(&b) {
            assert!(x.view1.equal(&y.view1) && x.view2.equal(&y.view2));
            assert_eq!(x.labels, y.labels);
        }
        // Starting mid-epoch gives the same later batches (resume).
        let c: Vec<Batch> = loader(2).epoch(2, 4).collect();
        assert_eq!(c.len(), 2);
        assert!(c[0].view1.equal(&a[4].view1));
    }

    #[test]
    fn epochs_shuffle_differently_and_views_differ() {
        let l = loader(1);
        assert_ne!(l.order(1), l.order(2));
        let mut o = l.order(1);
        o.sort_unstable();
        assert_eq!(o, (0..50).collect::<Vec<_>>());
        let b = l.epoch(1, 0).next().unwrap();
        assert!(!b.view1.equal(&b.view2));
    }

    #[test]
    fn a_batch_holds_both_views_of_its_images_in_order() {
        let l = loader(1);
        let order = l.order(3);
        let batch = l.batch(3, &order, 2);
        assert_eq!(batch.view1.kind(), Kind::Float);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(9, 3, 2));
        let mut want = vec![0.0f32; l.augment.view_len()];
        for (j, &i) in order[16..24].iter().enumerate() {
            assert_eq!(batch.labels[j], l.set.labels[i]);
            for view in [&batch.view1, &batch.view2] {
                l.augment.view(&l.set.images[i], &mut rng, &mut want);
                let got = Vec::<f32>::try_from(view.get(j as i64).flatten(0, -1)).unwrap();
                assert_eq!(got, want, "image {j}");
            }
        }
    }

    #[test]
    fn large_batches_are_rendered_in_place_too() {
        // 2 x 64 x 3 x 128 x 128 f32 = 25 MB per view: past the huge-page advice threshold.
        let (set, _) = shapes::generate(64, 16, 2);
        let aug = Augment {
            image_size: 128,
            s: 1.0,
            blur: false,
        };
        let l = Loader::new(Arc::new(set), aug, 64, 1, 1, 4);
        let b = l.epoch(1, 0).next().unwrap();
        assert_eq!(b.view1.size(), [64, 3, 128, 128]);
        let (lo, hi) = (
            b.view2.min().double_value(&[]),
            b.view2.max().double_value(&[]),
        );
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && hi > lo);
    }

    #[test]
    fn dropping_mid_epoch_stops_workers() {
        let l = loader(2);
        let mut it = l.epoch(1, 0);
        let _ = it.next();
        drop(it); // must not hang
    }
}
