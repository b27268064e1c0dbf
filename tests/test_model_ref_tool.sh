#!/bin/bash
# tests/test_model_ref_tool.sh: `avs-model run c3n_ref` (the reference C3N, model/c3n_ref.h)
# against PyTorch: the committed fixtures (eval and train mode, tests/gen/model_head.py's
# official modules in float64) and a case with the official widths (64,128,320,512, D 256,
# Ci 128) on 8x8 maps generated now (needs Debian's torch), relative L2 <= 1e-5 per tensor.
set -eu
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no numpy (apt-get install python3-numpy)"; exit 77; }
F=tests/fixtures/model
M=$AVS_BIN/avs-model
fail() { echo "FAIL: $*"; exit 1; }

for m in eval train; do
  t=; [ $m = train ] && t=--train
  $M run c3n_ref --weights $F/head_$m.weights.safetensors --inputs $F/head_$m.inputs.safetensors \
     --grad-out $F/head_$m.dout.safetensors --out "$AVS_TMP/$m.safetensors" $t -j 2
  $py tests/gen/model_compare.py "$AVS_TMP/$m.safetensors" $F/head_$m.expect.safetensors \
     || fail "$m fixture differs from PyTorch"
done
$M --help | grep -q 'avs-model run c3n_ref' || fail "--help"
set +e; $M run c3n_ref --weights x >/dev/null 2>&1; rc=$?; set -e
[ $rc -eq 1 ] || fail "usage error: exit $rc (want 1)"

if $py -c 'import torch' 2>/dev/null; then
  $py tests/gen/model_head.py --out "$AVS_TMP/off" --seed 3 --size 8 --official --N 1 --T 3 --train
  $M run c3n_ref --weights "$AVS_TMP/off.weights.safetensors" --inputs "$AVS_TMP/off.inputs.safetensors" \
     --grad-out "$AVS_TMP/off.dout.safetensors" --out "$AVS_TMP/off_out.safetensors" --train
  $py tests/gen/model_compare.py "$AVS_TMP/off_out.safetensors" "$AVS_TMP/off.expect.safetensors" \
    || fail "official widths case differs from PyTorch"
else
  echo "note: /usr/bin/python3 has no torch: the official-widths case not run (apt-get install python3-torch)"
fi
echo "test_model_ref_tool.sh: ok"
