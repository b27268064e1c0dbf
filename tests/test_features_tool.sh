#!/bin/bash
# tests/test_features_tool.sh: the features' `avs-model run` subcommands from the outside:
# `run logmel` on the committed numpy fixtures (both policies, padding with --examples),
# and its errors (missing tensor, short wave, bad policy).
set -eu
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no numpy (apt-get install python3-numpy)"; exit 77; }
F=tests/fixtures/features
M=$AVS_BIN/avs-model
fail() { echo "FAIL: $*"; exit 1; }

for c in tones real; do
  for p in stream second; do
    $M run logmel --inputs $F/logmel_$c.safetensors --policy $p --out "$AVS_TMP/$c.$p.safetensors"
    $py - "$AVS_TMP/$c.$p.safetensors" $F/logmel_$c.safetensors $p <<'PY' || fail "logmel $c $p"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
got = model_st.load(sys.argv[1])['examples']; ref = model_st.load(sys.argv[2])[sys.argv[3]]
assert got.shape == ref.shape, (got.shape, ref.shape)
err = float(np.abs(got - ref).max()); print(sys.argv[3], got.shape, 'max abs err', err)
assert err <= 1e-4, err
assert model_st.metadata(sys.argv[1])['policy'] == sys.argv[3]
PY
  done
done

# --examples 5 on a 2-example wave repeats the last
$M run logmel --inputs $F/logmel_tones.safetensors --examples 5 --out "$AVS_TMP/pad.safetensors"
$py - "$AVS_TMP/pad.safetensors" <<'PY' || fail "padding"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
e = model_st.load(sys.argv[1])['examples']
assert e.shape == (5, 96, 64) and (e[2] == e[1]).all() and (e[4] == e[1]).all() and not (e[0] == e[1]).all()
PY

# errors: exit 3 naming the file/tensor; usage: exit 1
$py - "$AVS_TMP" <<'PY'
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
model_st.save(sys.argv[1] + '/short.safetensors', {'wave': np.zeros(1000, np.float32)})
model_st.save(sys.argv[1] + '/noname.safetensors', {'audio': np.zeros(20000, np.float32)})
PY
expect() {  # expect RC NEEDLE CMD...
  local want=$1 needle=$2; shift 2
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ $rc -eq $want ] || fail "exit $rc, expected $want: $* -> $out"
  echo "$out" | grep -q -- "$needle" || fail "message lacks '$needle': $out"
}
expect 3 "1000 samples" $M run logmel --inputs "$AVS_TMP/short.safetensors" --out "$AVS_TMP/o.safetensors"
expect 3 'missing tensor "wave"' $M run logmel --inputs "$AVS_TMP/noname.safetensors" --out "$AVS_TMP/o.safetensors"
expect 1 "policy" $M run logmel --inputs $F/logmel_real.safetensors --policy hourly --out "$AVS_TMP/o.safetensors"
echo "test_features_tool: ok"
