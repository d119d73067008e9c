#!/usr/bin/env python3
"""Times scikit-learn's KMeans(n_clusters=10, n_init=10) on the data `cargo bench --bench kmeans`
wrote, for the side-by-side numbers in BENCHMARKS.md.

Usage: python scripts/bench_kmeans_sklearn.py [DATA_DIR]   (default: $TMPDIR/cdw-bench-kmeans)
"""
import os
import sys
import tempfile
import time

import numpy as np
from sklearn.cluster import KMeans

data_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "cdw-bench-kmeans")
print(f"scikit-learn KMeans(n_clusters=10, n_init=10), {os.cpu_count()} cores")
for n, d in [(60000, 512), (13000, 128)]:
    path = os.path.join(data_dir, f"kmeans_{n}x{d}.npy")
    x = np.load(path)
    assert x.dtype == np.float32 and x.shape == (n, d), (x.dtype, x.shape)
    start = time.perf_counter()
    km = KMeans(n_clusters=10, n_init=10, random_state=0).fit(x)
    secs = time.perf_counter() - start
    print(f"{n} x {d}: {secs:.2f} s for 10 restarts (inertia {km.inertia_:.1f}, kept restart ran {km.n_iter_} iterations)")
