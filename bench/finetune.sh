#!/bin/bash
# bench/finetune.sh: one `avs-train --mode finetune` step (PVTv2-b0 random init + the
# official-width C3N head AF,CC, 1 video x 5 frames) at 128x128 and 224x224, split into
#   batch  frames + jitter, backbone forward, C3IM, Grad-CAM pass   (train/finetune.c)
#   head   CCAM + head forward, loss, backward to the stage maps, head Adam
#   back   backbone forward + full backward from dstage, backbone Adam
# (median of STEPS steps after a warm-up). No PyTorch peer yet.
#   bash bench/finetune.sh [STEPS] [THREADS]      (build the library first: make B=build)
set -eu
steps=${1:-3}; threads=${2:-2}
B=${AVS_BUILD:-build}
[ -f "$B/libavs.a" ] || { echo "finetune.sh: no $B/libavs.a: run make first (or set AVS_BUILD)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pkgs="libavformat libavcodec libswscale libswresample libavutil sndfile sqlite3 libpng libcjson openblas fftw3"
cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -I. $(pkg-config --cflags $pkgs) bench/finetune_step.c \
   "$B/libavs.a" $(pkg-config --libs $pkgs) -fopenmp -lpthread -lm -o "$tmp/finetune_step"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for side in 128 224; do
  mkdir -p "$tmp/s$side"
  "$tmp/finetune_step" "$tmp/s$side" "$side" "$steps" "$threads"
done
