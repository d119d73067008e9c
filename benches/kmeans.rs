//! Times k-means (k = 10, 10 restarts, scikit-learn's defaults) on random float vectors of the
//! sizes of CIFAR-10's backbone output (60,000 x 512) and ImageNet-10's final output
//! (13,000 x 128). The data is also written as `.npy` so `scripts/bench_kmeans_sklearn.py` times
//! scikit-learn on exactly the same numbers.
//!
//! Run: `scripts/with-libtorch cargo bench --bench kmeans [-- DATA_DIR]`

use std::path::PathBuf;
use std::time::Instant;

use cdw::eval::kmeans::{kmeans, KMeansParams};
use cdw::eval::npy::write_npy;
use tch::{Device, Kind, Tensor};

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(
            || std::env::temp_dir().join("cdw-bench-kmeans"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&dir).expect("create the data folder");
    let device = Device::cuda_if_available();
    println!(
        "k-means, k = 10, n_init = 10, max_iter = 300, tol = 1e-4; device {device:?}, {} threads",
        tch::get_num_threads()
    );
    for (n, d) in [(60_000i64, 512i64), (13_000, 128)] {
        tch::manual_seed(0);
        let x = Tensor::rand([n, d], (Kind::Float, Device::Cpu));
        let path = dir.join(format!("kmeans_{n}x{d}.npy"));
        let flat: Vec<f32> = Vec::try_from(x.flatten(0, 1)).expect("tensor to vec");
        write_npy(&path, &[n as usize, d as usize], &flat).expect("write the data");
        let x = x.to_device(device);
        let start = Instant::now();
        let r = kmeans(&x, &KMeansParams::new(10, 0), &mut |_, _| {}).expect("k-means");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{n} x {d}: {secs:.2} s for 10 restarts (inertia {:.1}, kept restart ran {} iterations); data {}",
            r.inertia,
            r.iterations,
            path.display()
        );
    }
}
