#!/usr/bin/env bash
# The workbench's idle cost while it follows a live training: CPU of the `cdw` UI process (from
# /proc over SECONDS, default 60) and the bytes it writes to its terminal per minute, with the
# dashboard of a shapes training open in tmux at 80x24. Prints the training's step rate too (the
# goal assumes about two steps a second). Usage: scripts/bench_tui_idle.sh [SECONDS] [CDW]
# Needs tmux and a built cdw (default target/release/cdw).
set -euo pipefail
secs="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cdw="${2:-$root/target/release/cdw}"
work=$(mktemp -d "${TMPDIR:-/tmp}/cdw-idle.XXXXXX")
sock="cdw-idle-$$"
train_pid=""
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$train_pid" ] && kill -INT "$train_pid" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# A training that steps about twice a second on a small CPU (batch 16 at 32 px, ResNet18);
# its steps per second are measured and printed below.
"$cdw" train --dataset shapes --records "$work/records" --checkpoints "$work/checkpoints" \
  --set shapes_images=4096 --set batch_size=16 --set epochs=1000 --set image_size=32 \
  --set evaluation_mode=none --set workers=1 --set device=cpu \
  >"$work/train.log" 2>&1 &
train_pid=$!
run="$work/records/shapes/bs16_lr0.0003_ResNet18"
for _ in $(seq 1 600); do
  [ -s "$run/events.jsonl" ] && grep -q '"event":"step"' "$run/events.jsonl" && break
  sleep 0.2
done

tmux -L "$sock" new-session -d -s idle -x 80 -y 24 \
  "exec $cdw --records $work/records --checkpoints $work/checkpoints"
tmux -L "$sock" pipe-pane -o -t idle "cat >> $work/tty.bytes"
sleep 2
tmux -L "$sock" send-keys -t idle Enter   # open the run's dashboard
sleep 3
ui_pid=$(tmux -L "$sock" display -p -t idle '#{pane_pid}')
steps_before=$(grep -c '"event":"step"' "$run/events.jsonl")
bytes_before=$(stat -c %s "$work/tty.bytes")
cpu_before=$(cpu_ticks "$ui_pid")
t0=$(date +%s.%N)
sleep "$secs"
t1=$(date +%s.%N)
cpu_after=$(cpu_ticks "$ui_pid")
bytes_after=$(stat -c %s "$work/tty.bytes")
steps_after=$(grep -c '"event":"step"' "$run/events.jsonl")
tmux -L "$sock" capture-pane -p -t idle > "$work/screen.txt"
awk -v c0="$cpu_before" -v c1="$cpu_after" -v hz="$ticks" -v t0="$t0" -v t1="$t1" \
    -v b0="$bytes_before" -v b1="$bytes_after" -v s0="$steps_before" -v s1="$steps_after" 'BEGIN {
  wall = t1 - t0
  printf "followed for %.1f s: the training made %.2f steps/s\n", wall, (s1 - s0) / wall
  printf "UI CPU: %.2f%% of a core\n", 100 * (c1 - c0) / hz / wall
  printf "terminal output: %.1f KB/min\n", (b1 - b0) / 1000 / (wall / 60)
}'
echo "the screen at the end:"
cat "$work/screen.txt"
