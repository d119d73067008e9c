#!/usr/bin/env python3
"""The two-view training pipeline of SPEC 2.8 in torchvision, measured as `cdw bench data` measures
cdw's: images/s (each image gives two views) through a DataLoader.

    RandomResizedCrop(size) -> RandomHorizontalFlip() -> RandomApply([ColorJitter(0.8s, 0.8s,
    0.8s, 0.2s)], p=0.8) -> RandomGrayscale(0.2) [-> RandomApply([GaussianBlur(23)], p=0.5)]
    -> ToTensor()   (no normalisation), applied twice per image.

Sources (the same as cdw's):
  cifar  32x32 RGB images of uniform random pixels, held in memory as PIL images;
  jpeg   the image folder that `cdw bench data --jpeg-dir DIR` writes (500 JPEGs, 500x375).
For the folder three things are measured: decoding alone (PIL open + convert to RGB, in the
DataLoader's workers), augmentation of images decoded beforehand and held in memory (what cdw
does: it decodes once), and torchvision's ImageFolder path, which decodes in every epoch.

Timing: batches are taken in one epoch; the first `workers` batches (the first wave, which
includes starting the worker processes) are a warm-up, and images/s is measured from the arrival
of the last warm-up batch to the arrival of the last batch. cpu_images_per_sec divides all images
(warm-up included) by the CPU time of this process and its worker processes together, a figure
less sensitive to other load on the machine.

    .venv/bin/python scripts/bench_data_torchvision.py --jpeg-dir /tmp/cdw-bench-jpeg [--json]
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms


def augmentation(size, s, blur):
    ops = [
        transforms.RandomResizedCrop(size),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
    ]
    if blur:
        ops.append(transforms.RandomApply([transforms.GaussianBlur(23, (0.1, 2.0))], p=0.5))
    ops.append(transforms.ToTensor())
    return transforms.Compose(ops)


class TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img):
        return self.transform(img), self.transform(img)


class InMemory(Dataset):
    """`length` items over decoded PIL images (repeated when there are fewer)."""

    def __init__(self, images, length, transform):
        self.images, self.length, self.transform = images, length, transform

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        v1, v2 = self.transform(self.images[i % len(self.images)])
        return v1, v2, 0


class Files(Dataset):
    """`length` items over image files, decoded on every access (as ImageFolder does)."""

    def __init__(self, folder, length, transform):
        self.folder, self.length, self.transform = folder, length, transform

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        img, label = self.folder[i % len(self.folder)]
        if self.transform is None:
            # Decoding alone: hand back something tiny so transfer costs nothing.
            img.load()
            return label
        v1, v2 = self.transform(img)
        return v1, v2, label


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(dataset, batch_size, workers, seed, warmup):
    """Takes every batch of one epoch; returns (images/s after warm-up, images/cpu-s, wall s)."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    arrivals = []
    it = iter(loader)
    for _ in it:
        arrivals.append(time.perf_counter())
    del it  # joins the workers, so their CPU time is counted as children's
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    n = len(arrivals)
    if n > warmup:
        steady = (n - warmup) * batch_size / (arrivals[-1] - arrivals[warmup - 1] if warmup else arrivals[-1] - t0)
    else:
        steady = n * batch_size / (arrivals[-1] - t0)
    return steady, n * batch_size / cpu if cpu > 0 else float("nan"), wall


def measure_decode(folder, workers):
    """Decodes every file of the folder once in the DataLoader's workers: (images/s, wall s)."""
    loader = DataLoader(Files(folder, len(folder), None), batch_size=16, num_workers=workers)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    wall = time.perf_counter() - t0
    return len(folder) / wall, wall


def default_batches(size):
    # The same defaults as `cdw bench data`.
    return 16 * 8 if size <= 64 else 16


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, action="append", help="output size (repeatable; default 224 and 32 for cifar, 224 for jpeg)")
    p.add_argument("--source", choices=["cifar", "jpeg"], action="append", help="input (repeatable; default both)")
    p.add_argument("--workers", type=int, action="append", help="DataLoader workers (repeatable; default 1 and the core count)")
    p.add_argument("--batches", type=int, help="measured batches after warm-up (default 16; 128 for sizes <= 64)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--jpeg-dir", default="/tmp/cdw-bench-jpeg", help="image folder written by `cdw bench data --jpeg-dir DIR`")
    p.add_argument("--s", type=float, default=1.0, help="colour-jitter strength")
    p.add_argument("--blur", action="store_true", help="add the Gaussian blur (p=0.5)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a = p.parse_args()

    cores = os.cpu_count() or 1
    sources = a.source or ["cifar", "jpeg"]
    workers = a.workers or sorted({1, cores})
    load_start = load_average()
    results, decode = [], []
    torch.set_num_threads(1)
    if not a.json:
        print(f"torchvision {__import__('torchvision').__version__} data pipeline: two views per image through a DataLoader (prefetch_factor 4), s {a.s}, blur {'on' if a.blur else 'off'}")
        print(f"{cores} cores; load average at start {' '.join(f'{x:.2f}' for x in load_start)}")
        print(f"{'source':<24} {'size':>5} {'workers':>8} {'batch':>6} {'batches':>8} {'images/s':>10} {'views/s':>10} {'images/cpu-s':>13}", flush=True)

    for source in sources:
        sizes = a.image_size or ([224, 32] if source == "cifar" else [224])
        if source == "jpeg":
            if not os.path.isdir(a.jpeg_dir):
                sys.exit(f"error: {a.jpeg_dir} does not exist: run `cdw bench data --source jpeg --jpeg-dir {a.jpeg_dir}` first")
            folder = datasets.ImageFolder(a.jpeg_dir)
            files = len(folder)
            for w in workers:
                rate, wall = measure_decode(folder, w)
                decode.append({"workers": w, "images": files, "seconds": round(wall, 3), "images_per_sec": round(rate, 1)})
                if not a.json:
                    print(f"decode  jpeg folder, {w} workers: {files} images in {wall:.2f} s, {rate:.1f} images/s", flush=True)
            # Decoded once, kept in memory (as cdw keeps them).
            decoded = [Image.open(path).convert("RGB") for path, _ in folder.samples]
        for size in sizes:
            batches = a.batches or default_batches(size)
            transform = TwoViews(augmentation(size, a.s, a.blur))
            for w in workers:
                warmup = w
                length = (warmup + batches) * a.batch_size
                if source == "cifar":
                    rng = np.random.default_rng(a.seed)
                    pixels = rng.integers(0, 256, size=(length, 32, 32, 3), dtype=np.uint8)
                    images = [Image.fromarray(x) for x in pixels]
                    cases = [("cifar", InMemory(images, length, transform))]
                else:
                    cases = [("jpeg", InMemory(decoded, length, transform)),
                             ("jpeg-decode-every-epoch", Files(folder, length, transform))]
                for name, ds in cases:
                    rate, cpu_rate, wall = measure(ds, a.batch_size, w, a.seed, warmup)
                    results.append({
                        "source": name, "image_size": size, "workers": w, "batch_size": a.batch_size,
                        "batches": batches, "warmup_batches": warmup,
                        "images_per_sec": round(rate, 1), "views_per_sec": round(2 * rate, 1),
                        "cpu_images_per_sec": round(cpu_rate, 1), "seconds": round(wall, 3),
                    })
                    if not a.json:
                        r = results[-1]
                        print(f"{name:<24} {size:>5} {w:>8} {a.batch_size:>6} {batches:>8} {r['images_per_sec']:>10.1f} {r['views_per_sec']:>10.1f} {r['cpu_images_per_sec']:>13.1f}", flush=True)

    report = {
        "bench": "data", "pipeline": "torchvision", "torch": torch.__version__,
        "torchvision": __import__("torchvision").__version__, "pillow": Image.__version__,
        "cores": cores, "load_average_start": load_start, "load_average_end": load_average(),
        "blur": a.blur, "s": a.s, "results": results, "decode": decode,
    }
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"load average at end {' '.join(f'{x:.2f}' for x in report['load_average_end'])}")


if __name__ == "__main__":
    main()
