#!/usr/bin/env bash
# GPU checks for a machine that has torch 2.11.0 (+cu130) but no Rust toolchain.
# Build here first:   scripts/with-libtorch cargo build --release && mkdir -p .gpu && cp target/release/cdw .gpu/
# Then on the GPU machine (device tool: carry .gpu):   bash scripts/gpu-check.sh .gpu/cdw
# Writes everything it measures to ${OUT:-/tmp/gpu-check}.
# A dry run of the plumbing on a CPU machine, small:
#   DEVICE=cpu IMAGES=512 IMAGE_SIZE=32 BACKBONE=ResNet18 WORKERS=2 bash scripts/gpu-check.sh target/release/cdw
set -uo pipefail
device=${DEVICE:-cuda} images=${IMAGES:-60000} size=${IMAGE_SIZE:-224} backbone=${BACKBONE:-ResNet34}
workers=${WORKERS:-14}
bin=${1:-.gpu/cdw}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
torch_lib=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

log "cdw info"
"$bin" info 2>&1 | tee -a "$out/summary.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/summary.txt"

# One epoch of ResNet34 at 224 px, batch 128 (SPEC reference settings) on a CIFAR-10-sized workload
# (60,000 built-in 32x32 images), then the whole-set evaluation (evaluation_mode=all): issue 2's
# GPU training check and issue 4's "evaluation no longer than one training epoch" in one run.
log "train shapes $images images, $backbone ${size}px batch 128, 1 epoch, evaluation_mode=all, device $device"
( while sleep 2; do command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits; done ) > "$out/gpu_samples.csv" &
sampler=$!
timeout 480 "$bin" train --dataset shapes --records "$out/records" --checkpoints "$out/checkpoints" --json \
  --set device=$device --set backbone=$backbone --set image_size=$size --set batch_size=128 \
  --set epochs=1 --set shapes_images=$images --set evaluation_mode=all --set workers=$workers \
  > "$out/train_r34.jsonl" 2> "$out/train_r34.err"
echo "exit $?" | tee -a "$out/summary.txt"
kill $sampler 2>/dev/null
tail -3 "$out/train_r34.err" | tee -a "$out/summary.txt"
grep -E '"event":"(started|epoch|evaluation|finished|failed)"' "$out/train_r34.jsonl" | tee -a "$out/summary.txt"
log "peak GPU memory used (MiB), utilisation (%)"
sort -t, -k1 -n "$out/gpu_samples.csv" | tail -1 | tee -a "$out/summary.txt"
