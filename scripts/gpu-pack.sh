#!/bin/bash
# scripts/gpu-pack.sh DEST [BUILD]: what `make test-gpu` runs on a GPU machine, packed for the
# device machine (no Debian libraries, no media, no network; the device tool carries at most
# 64 MiB a call, the working tree included) as DEST.tar.xz (git-ignored), which unpacks to DEST/:
#   bin/, lib/, env.sh   avs-model, avs-train and the sqlite3 shell with every library they need
#                        (scripts/carry.sh; OpenBLAS alone is 36 MB, hence the compression)
#   tests/               the GPU op tests, stripped: test_cuda_ops and the op tests that run on
#                        every registered backend (cuda included where a GPU is present)
#   store/               a tiny store made here (synthetic S4 clips at 64x64, random-init
#                        PVTv2-b0 features) for tests/test_cuda_train.sh (AVS_GPU_STORE)
# On the device: bash scripts/gpu-run.sh DEST (README, "Running on a GPU").
set -euo pipefail
dest=${1:?usage: gpu-pack.sh DEST [BUILD]}; b=${2:-build-cuda}
tests="test_cuda_ops test_cuda_nccl test_backend_blas test_backend_ce test_backend_head test_backend_memops
       test_backend_ops test_backend_tapconv test_backend_tokens test_model_head"
rm -rf "$dest" "$dest.tar.xz"
bash scripts/carry.sh "$dest" "$b/bin/avs-model" "$b/bin/avs-train" "$(command -v sqlite3)" > /dev/null
mkdir -p "$dest/tests"
for t in $tests; do
  [ -x "$b/tests/$t" ] && bash scripts/carry.sh "$dest" "$b/tests/$t" > /dev/null && mv "$dest/bin/$t" "$dest/tests/"
done
strip "$dest"/bin/avs-* "$dest"/tests/* 2>/dev/null || true
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
AVS_TMP=$tmp . tests/media.sh
"$b/bin/avs-synth" -q --media "$media" --out "$tmp/s4" --subset s4 --videos 6 --seconds 5 --seed 5 --size 64x64 --fps 10
"$b/bin/avs-ingest" -q --root "$dest/store" --size 64x64 --avsbench "$tmp/s4"
"$b/bin/avs-features" -q --device cpu --root "$dest/store" --random-init 2 --visual pvt_v2_b0 --flip --set f
tar -cf - "$dest" | xz -3 -T2 > "$dest.tar.xz"
du -sh "$dest" "$dest.tar.xz" | awk '{print "packed " $1 " in " $2}'
echo "(the device tool carries at most 64 MiB a call, working tree included: carry [\"$dest.tar.xz\"])"
