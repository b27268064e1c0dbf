#!/bin/bash
# test_cuda_train.sh: avs-train on the GPU (--device cuda) against the CPU, on a tiny synthetic
# store (64x64 frames, random-init PVTv2-b0 features, head width 16, batch 2):
#   - 20 frozen steps and 5 fine-tune steps: every recorded epoch's train loss on the GPU within
#     2% (relative) of the CPU's (fp32 on both; the GPU sums in other orders, and 20 Adam steps
#     amplify last-bit differences, so the rule is loose but catches any wrong primitive);
#   - stopped (--max-steps 7) and resumed on the GPU == uninterrupted on the GPU: identical
#     checkpoint bytes (the default mode is deterministic on one GPU model);
#   - 200 frozen steps hold no more device memory than 20 (the pool's high-water mark,
#     AVS_CUDA_MEMSTATS: no allocation grows with the step count);
#   - --precision tf32 trains and is recorded with the run's session.
# Without a GPU (or a CUDA build) it prints SKIP and exits 77. AVS_GPU_STORE=DIR uses a store
# made beforehand (make test-gpu packs one: the device machine has no media and no network).
set -u
. tests/lib.sh
B=$AVS_BIN; T=$AVS_TMP
probe=$("$B/avs-train" --device cuda --root "$T/none" --run probe 2>&1)
case $probe in
  *"no CUDA backend"*) echo "SKIP: this build has no CUDA backend (make CUDA=1)"; exit 77 ;;
  *"no CUDA device"*) echo "SKIP: no CUDA device ${probe#*no CUDA device found }"; exit 77 ;;
esac
need sqlite3 cmp awk
if [ -n "${AVS_GPU_STORE:-}" ]; then
  cp -r "$AVS_GPU_STORE" "$T/st"
else
  need ffprobe
  . tests/media.sh
  "$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 6 --seconds 5 --seed 5 --size 64x64 --fps 10
  "$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
  "$B/avs-features" -q --device cpu --root "$T/st" --random-init 2 --visual pvt_v2_b0 --flip --set f || fail "features"
fi
q() { sqlite3 "$T/st/avs.db" "$1"; }
train() { "$B/avs-train" -q --root "$T/st" --subset s4 --width 16 --batch 2 --lr 1e-3 --seed 7 "$@"; }
ckpt() { echo "$T/st/runs/$1/$2.safetensors"; }
losses() { q "SELECT group_concat(printf('%.9g', train_loss), ' ') FROM (SELECT e.* FROM run_epochs e
              JOIN runs r ON r.id = e.run_id WHERE r.name = '$1' ORDER BY epoch)"; }
# every loss of run $1 within 2% of run $2's, and as many of them
close() {
  n_checks=$((n_checks + 1))
  awk -v a="$(losses "$1")" -v b="$(losses "$2")" 'BEGIN { n = split(a, x, " "); m = split(b, y, " ");
      if (n != m || n == 0) exit 1; for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d;
      if (d > 0.02 * (y[i] < 0 ? -y[i] : y[i])) exit 1 } }' ||
    fail "$1 vs $2: losses '$(losses "$1")' vs '$(losses "$2")' differ by more than 2%"
}

for d in cpu cuda; do
  train --device $d --run fz-$d --epochs 20 --max-steps 20; expect_eq "$?" 0 "20 frozen steps --device $d"
  train --device $d --run ft-$d --mode finetune --epochs 5 --max-steps 5; expect_eq "$?" 0 "5 finetune steps --device $d"
done
close fz-cuda fz-cpu
close ft-cuda ft-cpu
expect_eq "$(q "SELECT s.device LIKE 'cuda:% fp32' FROM sessions s JOIN runs r ON r.id = s.run_id WHERE r.name = 'fz-cuda'")" 1 \
  "the session records cuda:N, the GPU and fp32"

# resume on the GPU: bit-exact
train --device cuda --run a --epochs 4; expect_eq "$?" 0 "uninterrupted on cuda"
train --device cuda --run b --epochs 4 --max-steps 7; expect_eq "$?" 0 "stopped after 7 steps"
"$B/avs-train" -q --root "$T/st" --run b --resume; expect_eq "$?" 0 "resumed"
cmp -s "$(ckpt a last)" "$(ckpt b last)"; expect_eq "$?" 0 "stopped + resumed == uninterrupted on cuda (checkpoint bytes)"
train --device cuda --run c --epochs 4; cmp -s "$(ckpt a last)" "$(ckpt c last)"
expect_eq "$?" 0 "the same run twice on cuda: identical checkpoint bytes"

# no device memory growth with the step count
high() { sed -n 's/.*pool reserved [0-9]* bytes, high \([0-9]*\) bytes.*/\1/p' "$1"; }
AVS_CUDA_MEMSTATS=1 train --device cuda --run m20 --epochs 1000 --max-steps 20 2> "$T/m20.err"
AVS_CUDA_MEMSTATS=1 train --device cuda --run m200 --epochs 1000 --max-steps 200 2> "$T/m200.err"
h20=$(high "$T/m20.err"); h200=$(high "$T/m200.err")
[ -n "$h20" ] && [ -n "$h200" ] || fail "no memory line: $(cat "$T/m20.err" "$T/m200.err")"
n_checks=$((n_checks + 1))
[ -n "$h20" ] && [ -n "$h200" ] && [ "$h200" -le "$h20" ] || fail "200 steps hold $h200 bytes, 20 steps $h20"

# tf32: runs, recorded
train --device cuda --precision tf32 --run t --epochs 2; expect_eq "$?" 0 "tf32 training"
expect_eq "$(q "SELECT s.device LIKE '% tf32' FROM sessions s JOIN runs r ON r.id = s.run_id WHERE r.name = 't'")" 1 \
  "the session records tf32"
finish
