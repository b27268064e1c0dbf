#!/bin/bash
# bench/gpu.sh: the CUDA backend against PyTorch on the same GPU, in one run, at each precision
# (issue 13's targets; PyTorch: bench/peers/gpu_peer.py, eager, cuDNN benchmark mode on):
#   head      C3N head training step, 4 videos x 5 frames, width 256 (PVTv2-b5 stage shapes at
#             224): fp32, tf32, bf16     target: >= 2x faster, peak memory <= 25% of PyTorch's
#   finetune  PVTv2-b5 + Grad-CAM + CCAM + head step, 4 videos: fp32, tf32   target >= 1.5x
#   pvt       PVTv2-b5 forward, batch 64 (feature extraction): fp32, tf32    target >= 1.0x
#   recipe    the S4 recipe (17.3k fine-tune steps) projected from the tf32 step: target < 30 min
#   bash bench/gpu.sh [STEPS]      (programs from AVS_BIN, default build-cuda/bin: make CUDA=1)
# Our side: avs-model bench (step_seconds / fwd_seconds; device memory: the pool's high-water
# mark, AVS_CUDA_MEMSTATS). Without a GPU (or a CUDA build) it prints SKIP and exits 0.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${AVS_BIN:-$here/build-cuda/bin}
py=${AVS_PY:-python3}
steps=${1:-10}
[ -x "$bin/avs-model" ] || { echo "SKIP: bench/gpu.sh: no $bin/avs-model (build with make CUDA=1, or set AVS_BIN)"; exit 0; }
probe=$("$bin/avs-model" --device cuda bench sgemm --size 64 2>&1 >/dev/null)
case $probe in
  *"no CUDA"*) echo "SKIP: bench/gpu.sh: ${probe#avs-model: }"; exit 0 ;;
esac
echo "gpu: ${probe#*device }"
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
high_mb() { sed -n 's/.*high \([0-9]*\) bytes.*/\1/p' "$1" | awk '{ printf "%.0f", $1 / 1048576 }'; }
peer() { $py "$here/bench/peers/gpu_peer.py" "$@" 2>&1 | tail -n 1; }
# ratio NAME OURS THEIRS TARGET: one line with both times, the speedup and the verdict
ratio() {
  awk -v n="$1" -v a="$2" -v t="$3" -v g="$4" 'BEGIN {
    if (a == "" || t == "" || a <= 0) { printf "%-18s ours %s s, torch %s s: no ratio (a side did not run)\n", n, a, t; exit }
    printf "%-18s ours %.4f s, torch %.4f s: %.2fx   target >= %sx   %s\n", n, a, t, t / a, g, (t / a >= g ? "met" : "NOT met") }'
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "== head train step, 4 videos x 5 frames, width 256"
for p in fp32 tf32 bf16; do
  ours=$(AVS_CUDA_MEMSTATS=1 "$bin/avs-model" -q --device cuda --precision $p bench c3n_head --videos 4 --steps "$steps" 2> "$tmp/head-$p.err")
  theirs=$(peer head --precision $p --steps "$steps")
  echo "  avs $p:   ${ours:-$(tail -n 1 "$tmp/head-$p.err")}"
  echo "  torch $p: $theirs"
  ratio "head $p" "$(get "$ours" step_seconds)" "$(get "$theirs" step_seconds)" 2
  mo=$(high_mb "$tmp/head-$p.err"); mt=$(get "$theirs" peak_mb)
  [ -n "$mo" ] && [ -n "$mt" ] && awk -v a="$mo" -v t="$mt" -v p=$p 'BEGIN {
    printf "head %s memory     ours %d MB (pool high-water), torch %d MB: %.0f%%   target <= 25%%   %s\n", p, a, t, 100 * a / t, (a <= 0.25 * t ? "met" : "NOT met") }'
done

echo "== fine-tune step, PVTv2-b5 + Grad-CAM + CCAM + head, 4 videos"
for p in fp32 tf32; do
  theirs=$(peer finetune --precision $p --steps 3)
  echo "  torch $p: $theirs"
  echo "  avs $p:   not measured: avs-model has no fine-tune step bench yet (avs-train --mode finetune runs it)"
  [ $p = tf32 ] && awk -v t="$(get "$theirs" step_seconds)" 'BEGIN { if (t != "")
    printf "recipe (tf32)      torch projected %.0f min for 17.3k steps; ours: not measured   target < 30 min\n", t * 17300 / 60 }'
done

echo "== PVTv2-b5 forward, batch 64"
for p in fp32 tf32; do
  ours=$("$bin/avs-model" -q --device cuda --precision $p bench pvt_v2_b5 --random-init 1 --batch 64 --steps 3 2>&1 | tail -n 1)
  theirs=$(peer pvt --precision $p --batch 64 --steps "$steps")
  echo "  avs $p:   $ours"
  echo "  torch $p: $theirs"
  ratio "pvt b5 x64 $p" "$(get "$ours" fwd_seconds)" "$(get "$theirs" step_seconds)" 1.0
done
