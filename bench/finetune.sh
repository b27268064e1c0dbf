#!/bin/bash
# bench/finetune.sh: one `avs-train --mode finetune` step (PVTv2-b0 random init + the
# official-width C3N head AF,CC, 1 video x 5 frames) at 128x128 and 224x224, split into
#   batch  frames + jitter, backbone forward, C3IM, Grad-CAM pass   (train/finetune.c)
#   head   CCAM + head forward, loss, backward to the stage maps, head Adam
#   back   backbone forward + full backward from dstage, backbone Adam
# (median of STEPS steps after a warm-up), against bench/peers/finetune_peer.py: the same step as
# PyTorch code would do it (one forward serving C3IM, Grad-CAM by autograd and the backward),
# same threads, same run.
#   bash bench/finetune.sh [STEPS] [THREADS]      (build the library first: make B=build)
set -eu
steps=${1:-3}; threads=${2:-2}
B=${AVS_BUILD:-build}
[ -f "$B/libavs.a" ] || { echo "finetune.sh: no $B/libavs.a: run make first (or set AVS_BUILD)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# compile and link flags as the Makefile builds $B/libavs.a (MPI, CUDA, sanitizers)
cc $(make -s --no-print-directory print-cflags) bench/finetune_step.c \
   "$B/libavs.a" $(make -s --no-print-directory print-ldlibs) -o "$tmp/finetune_step"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
[ -x "$B/bin/avs-model" ] && { . bench/peer_blas.sh; peer_blas "$B/bin/avs-model"; }
py=/usr/bin/python3
peer=0; $py -c 'import torch, torchvision' 2>/dev/null && peer=1 ||
  echo "finetune.sh: no PyTorch peer (needs Debian's torch and torchvision: bash scripts/deps.sh --bench)"
for side in 128 224; do
  mkdir -p "$tmp/s$side"
  ours=$("$tmp/finetune_step" "$tmp/s$side" "$side" "$steps" "$threads")
  echo "avs:   $ours"
  [ $peer = 1 ] || continue
  theirs=$(GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-30000} $py bench/peers/finetune_peer.py --size "$side" --steps "$steps" --threads "$threads")
  echo "torch: $theirs"
  awk -v a="$(echo "$ours" | tr ' ' '\n' | sed -n 's/^step_s=//p')" \
      -v t="$(echo "$theirs" | tr ' ' '\n' | sed -n 's/^torch_step_s=//p')" -v s="$side" \
      'BEGIN { printf "side %d: speedup (torch step / avs step) = %.2fx (no target)\n", s, t / a }'
done
