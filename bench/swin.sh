#!/bin/bash
# bench/swin.sh: full-size Swin checks that are too slow for `make test`:
#   1. swin_b (or another variant) on random weights, one SIDE x SIDE image: our stage maps,
#      logits and Grad-CAM (`avs-model run`) against torchvision's swin renamed to the official
#      names in float64 (tests/gen/model_swin.py full), judged by max(1e-4, 3x) PyTorch float32's
#      own relative L2 distance; wall time of both sides (the Python side includes its float64
#      and float32 runs, so only ours is a timing);
#   2. a frozen avs-train run on a swin_b feature set (avs-synth S4 store at 224x224): the C3N
#      head takes the set's 128/256/512/1024 channels and trains.
#   bash bench/swin.sh [VARIANT] [SIDE] [THREADS] [all|model|train]   (build first: make)
set -eu
variant=${1:-swin_b}; side=${2:-224}; threads=${3:-2}; what=${4:-all}
bin=${AVS_BIN:-${AVS_BUILD:-build}/bin}
py=/usr/bin/python3
export OMP_NUM_THREADS=$threads
$py -c 'import torch, torchvision, numpy' 2>/dev/null || { echo "swin.sh: needs Debian's torch, torchvision and numpy: bash scripts/deps.sh --bench"; exit 1; }
[ -x "$bin/avs-model" ] || { echo "swin.sh: no $bin/avs-model: run make first (or set AVS_BIN)"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1 /proc/loadavg)"
status=0
if [ "$what" != train ]; then
  t0=$(date +%s.%N)
  $py tests/gen/model_swin.py full "$T/f." "$side" "$variant"
  t1=$(date +%s.%N)
  "$bin/avs-model" run "$variant" -j "$threads" --weights "$T/f.weights.safetensors" \
    --inputs "$T/f.io.safetensors" --target "$T/f.io.safetensors" --out "$T/o.st"
  t2=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "time: torchvision (float64 + float32, fwd + Grad-CAM) %.1f s; avs-model run (load + fwd + Grad-CAM, float32) %.1f s\n", b - a, c - b }'
  $py - "$T" <<'EOF' || status=1
import sys; sys.path.insert(0, 'tests/gen'); import numpy as np, model_st as m
T = sys.argv[1]
io, o = m.load(T + '/f.io.safetensors'), m.load(T + '/o.st')
bad = 0
for k in ['stage%d' % i for i in range(1, 5)] + ['logits'] + ['gradcam%d' % i for i in range(1, 5)]:
    ref, t32, got = io[k].astype(np.float64), io['t32.' + k], o[k]
    rel = lambda a: np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-300)
    ours, torch = rel(got), rel(t32)
    ok = ours <= max(1e-4, 3 * torch)
    bad += not ok
    print('%-9s rel L2 %.3g (PyTorch float32 %.3g)  %s' % (k, ours, torch, 'ok' if ok else 'NOT ok'))
sys.exit(bad)
EOF
fi
if [ "$what" != model ]; then
  media=$(bash scripts/fetch-media.sh --print-dir 2>/dev/null) && bash scripts/fetch-media.sh -q >/dev/null 2>&1 ||
    { echo "swin.sh: train part needs the media (scripts/fetch-media.sh)"; exit 1; }
  "$bin/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 4 --seconds 5 --seed 3 --size 224x224 --fps 10
  "$bin/avs-ingest" -q --root "$T/st" --avsbench "$T/s4"
  t0=$(date +%s.%N)
  "$bin/avs-features" -q -j "$threads" --root "$T/st" --random-init 2 --visual swin_b --set sb
  t1=$(date +%s.%N)
  "$bin/avs-train" -q -j "$threads" --root "$T/st" --subset s4 --features sb --run r --width 16 \
    --batch 1 --epochs 1 --seed 7
  t2=$(date +%s.%N)
  sqlite3 "$T/st/avs.db" "SELECT 'frames: ' || count(*) FROM feature_entries"
  sqlite3 "$T/st/avs.db" "SELECT 'run: ' || status || ', backbone ' || json_extract(config, '$.backbone') || ', train loss ' || (SELECT printf('%.4f', train_loss) FROM run_epochs WHERE run_id = runs.id) FROM runs WHERE name = 'r'"
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "time: avs-features swin_b %.1f s, avs-train frozen 1 epoch %.1f s\n", b - a, c - b }'
  [ "$(sqlite3 "$T/st/avs.db" "SELECT status FROM runs WHERE name = 'r'")" = done ] || status=1
fi
exit $status
