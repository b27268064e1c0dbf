#!/bin/bash
# bench/pvt.sh: the feature encoders against their peers, both sides in the same run:
#   PVTv2 b0 and b2 (random full-size weights, one 224x224 image): forward, and forward +
#     Grad-CAM backward per frame: `avs-model bench pvt_v2_bX` vs PyTorch CPU
#     (tests/gen/features_pvt.py bench: parameters frozen, graph cut after the stage-1 blocks,
#     so autograd does the same work as the C code);
#   log-mel of 60 s of audio: `avs-model bench logmel` vs the numpy reference
#     (tests/gen/features_logmel.py bench).
# Each side prints the fastest of STEPS runs after a warm-up; both get THREADS threads and the
# same libgomp spin setting.
#   bash bench/pvt.sh [STEPS] [THREADS] [all|pvt|logmel]   (build first: make B=build, or set AVS_BIN)
# Targets (issue 6): forward + Grad-CAM >= 1.5x faster than PyTorch for b0 and b2; log-mel
# >= 20x faster than numpy. Each line says "met" or "NOT met".
set -eu
steps=${1:-5}; threads=${2:-2}; what=${3:-all}
case $what in all|pvt|logmel) ;; *) echo "pvt.sh: third argument is all, pvt or logmel"; exit 1 ;; esac
bin=${AVS_BIN:-${AVS_BUILD:-build}/bin}
py=/usr/bin/python3
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-30000} OMP_NUM_THREADS=$threads
$py -c 'import torch, numpy' 2>/dev/null || { echo "pvt.sh: needs Debian's torch and numpy: bash scripts/deps.sh --bench"; exit 1; }
[ -x "$bin/avs-model" ] || { echo "pvt.sh: no $bin/avs-model: run make first (or set AVS_BIN)"; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1 /proc/loadavg)"
. bench/peer_blas.sh; peer_blas "$bin/avs-model"
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
status=0
for v in b0 b2; do
  [ "$what" = logmel ] && break
  ours=$("$bin/avs-model" bench pvt_v2_$v --random-init 1 --steps "$steps" -j "$threads")
  theirs=$($py tests/gen/features_pvt.py bench $v "$threads")
  echo "pvt_v2_$v avs:   $ours"
  echo "pvt_v2_$v torch: $theirs"
  awk -v v=$v -v af="$(get "$ours" fwd_seconds)" -v ag="$(get "$ours" gradcam_seconds)" \
      -v tf="$(get "$theirs" torch_fwd_seconds)" -v tg="$(get "$theirs" torch_gradcam_seconds)" 'BEGIN {
    printf "pvt_v2_%s forward: avs %.1f ms, torch %.1f ms, %.2fx (no target)\n", v, 1e3 * af, 1e3 * tf, tf / af
    printf "pvt_v2_%s forward + Grad-CAM: avs %.1f ms, torch %.1f ms, %.2fx   target >= 1.5x   %s\n",
           v, 1e3 * ag, 1e3 * tg, tg / ag, (tg / ag >= 1.5 ? "met" : "NOT met")
    exit !(tg / ag >= 1.5) }' || status=1
done
[ "$what" = pvt ] && exit $status
# both sides: the fastest of ~20 runs (numpy's after a warm-up run), whatever STEPS says: a run
# is 2-60 ms, and on a shared VM the fastest of 5 moved 2.5x between invocations
ours=$("$bin/avs-model" bench logmel --steps 21 -j "$threads")
theirs=$($py tests/gen/features_logmel.py bench 20)
echo "logmel avs:   $ours"
echo "logmel numpy: $theirs"
awk -v a="$(get "$ours" logmel_seconds)" -v t="$(get "$theirs" numpy_logmel_seconds)" 'BEGIN {
  printf "log-mel, 60 s of audio: avs %.1f ms, numpy %.1f ms, %.1fx   target >= 20x   %s\n",
         1e3 * a, 1e3 * t, t / a, (t / a >= 20 ? "met" : "NOT met")
  exit !(t / a >= 20) }' || status=1
exit $status
