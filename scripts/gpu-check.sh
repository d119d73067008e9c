#!/usr/bin/env bash
# GPU checks for a machine that has torch 2.11.0 (+cu130) but no Rust toolchain.
# Build here first:   scripts/with-libtorch cargo build --release && mkdir -p .gpu && cp target/release/cdw .gpu/
# Then on the GPU machine (device tool: carry .gpu):   bash scripts/gpu-check.sh .gpu/cdw
# Writes everything it measures to ${OUT:-/tmp/gpu-check}.
set -uo pipefail
bin=${1:-.gpu/cdw}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
torch_lib=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

log "cdw info"
"$bin" info 2>&1 | tee -a "$out/summary.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/summary.txt"

# A short ResNet34 training at 224 px on the built-in dataset (SPEC reference settings: batch 128).
log "train shapes ResNet34 224px batch 128, 2 epochs of 1024 images"
( while sleep 2; do nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader; done ) > "$out/gpu_samples.csv" &
sampler=$!
timeout 300 "$bin" train --dataset shapes --records "$out/records" --json \
  --set device=cuda --set backbone=ResNet34 --set image_size=224 --set batch_size=128 \
  --set epochs=2 --set shapes_images=1024 --set workers=14 > "$out/train_r34.jsonl" 2> "$out/train_r34.err"
echo "exit $?" | tee -a "$out/summary.txt"
kill $sampler 2>/dev/null
grep '"event":"epoch"' "$out/train_r34.jsonl" | tee -a "$out/summary.txt"
log "peak GPU memory used (MiB) and utilisation samples"
sort -t, -k1 -n "$out/gpu_samples.csv" | tail -1 | tee -a "$out/summary.txt"
