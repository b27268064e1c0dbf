#!/bin/bash
# tests/test_features_tool.sh: the features' `avs-model run` subcommands from the outside:
# `run logmel` on the committed numpy fixtures (both policies, padding with --examples),
# and its errors (missing tensor, short wave, bad policy); `run c3im` on the PyTorch fixture
# (at 0.1/0.1 and three of its --alpha/--beta pairs) and on a full-size random case
# (1000 x 527, when Debian's torch is there); `run labelsim` on the real class lists with
# random vectors against an independent numpy implementation;
# `run vggish` on the reduced-width PyTorch fixture, logmel -> vggish chained; `run pvt_v2_b0`
# on a fresh full-size random b0 at 224x224 against PyTorch (float64), stage maps, logits and
# Grad-CAM weights (--target), when torch is there.
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

$M bench logmel --steps 1 | grep -q '^logmel_seconds=' || fail "bench logmel"

# c3im: committed fixture, then full size fresh from torch
$M run c3im --inputs $F/c3im.safetensors --out "$AVS_TMP/c3im.safetensors"
$py - "$AVS_TMP/c3im.safetensors" $F/c3im.safetensors <<'PY' || fail "c3im fixture"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
g = model_st.load(sys.argv[1]); r = model_st.load(sys.argv[2])
assert (g['target'] == r['target']).all() and (g['target_v'] == r['target_v']).all(), (g, r)
assert np.allclose(g['wmax'], r['wmax'], rtol=1e-5, atol=1e-6)
PY
# the exponents: three (alpha, beta) pairs of the fixture through --alpha/--beta
for k in 0 2 5; do
  ab=$($py -c "import sys; sys.path.insert(0, 'tests/gen'); import model_st; a = model_st.load('$F/c3im.safetensors')['ab'][$k]; print('%r %r' % (float(a[0]), float(a[1])))")
  $M run c3im --inputs $F/c3im.safetensors --out "$AVS_TMP/c3im_ab.safetensors" --alpha ${ab% *} --beta ${ab#* } || fail "c3im --alpha/--beta $ab"
  $py - "$AVS_TMP/c3im_ab.safetensors" $F/c3im.safetensors $k <<'PY' || fail "c3im at $ab"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
g = model_st.load(sys.argv[1]); r = model_st.load(sys.argv[2]); k = int(sys.argv[3])
assert (g['target'] == r['targets'][k]).all() and (g['target_v'] == r['target_v']).all(), (g, r['targets'][k])
assert np.allclose(g['wmax'], r['wmaxes'][k], rtol=1e-5, atol=1e-7)
PY
done
if $py -c 'import torch' 2>/dev/null; then
  $py - "$AVS_TMP/big.safetensors" <<'PY'
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np, features_c3im as c
rng = np.random.default_rng(11)
vl = (rng.standard_normal((6, 1000)) * 4).astype(np.float32); al = (rng.standard_normal((6, 527)) * 4).astype(np.float32)
sim = rng.uniform(-0.2, 0.95, (1000, 527)).astype(np.float32)
t, tv, wm = c.c3im(vl, al, sim)
model_st.save(sys.argv[1], {'vlogits': vl, 'alogits': al, 'sim': sim})
np.save(sys.argv[1] + '.npy', np.stack([t, tv]))
PY
  $M run c3im --inputs "$AVS_TMP/big.safetensors" --out "$AVS_TMP/bigout.safetensors"
  $py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
g = model_st.load('$AVS_TMP/bigout.safetensors'); r = np.load('$AVS_TMP/big.safetensors.npy')
assert (g['target'] == r[0]).all() and (g['target_v'] == r[1]).all(), (g, r)
print('c3im 1000x527: targets', list(r[0]))" || fail "c3im full size"
else
  echo "note: no torch in /usr/bin/python3: full-size c3im case not run"
fi
$py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
z = lambda *s: np.zeros(s, np.float32)
model_st.save('$AVS_TMP/mis.safetensors', {'vlogits': z(2, 5), 'alogits': z(3, 4), 'sim': z(5, 4)})"
expect 3 "matching N" $M run c3im --inputs "$AVS_TMP/mis.safetensors" --out "$AVS_TMP/o.safetensors"
expect 3 'missing tensor "vlogits"' $M run c3im --inputs $F/logmel_real.safetensors --out "$AVS_TMP/o.safetensors"

# ccam: numpy formula of DESIGN §6 (normalised weights, channel then spatial sigmoid gates)
$py - "$AVS_TMP" <<'PY'
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
rng = np.random.default_rng(8); x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
w = rng.standard_normal((2, 5)).astype(np.float32); w[1] = 0  # zero weights: the 1e-12 floor
model_st.save(sys.argv[1] + '/ccam.safetensors', {'x': x, 'weights': w})
sg = lambda v: 1 / (1 + np.exp(-v))
wn = w / np.maximum(np.linalg.norm(w.astype(np.float64), axis=1, keepdims=True), 1e-12)
x1 = x * sg(wn)[:, :, None, None]; out = x1 * sg(x1.mean(1, keepdims=True))
np.save(sys.argv[1] + '/ccam.npy', out)
PY
$M run ccam --inputs "$AVS_TMP/ccam.safetensors" --out "$AVS_TMP/ccam.out.safetensors"
$py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
g = model_st.load('$AVS_TMP/ccam.out.safetensors')['out']; r = np.load('$AVS_TMP/ccam.npy')
assert g.shape == r.shape and np.allclose(g, r, rtol=1e-5, atol=1e-6), np.abs(g - r).max()" || fail "ccam"
expect 3 'missing tensor "x"' $M run ccam --inputs $F/c3im.safetensors --out "$AVS_TMP/o.safetensors"
$py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
model_st.save('$AVS_TMP/ccbad.safetensors', {'x': np.zeros((2, 5, 3, 4), np.float32), 'weights': np.zeros((2, 4), np.float32)})"
expect 3 "matching N and C" $M run ccam --inputs "$AVS_TMP/ccbad.safetensors" --out "$AVS_TMP/o.safetensors"

# labelsim: random vectors for most tokens of the real class lists, numpy reference
$py - "$AVS_TMP" <<'PY'
import sys, re, numpy as np
d = sys.argv[1]; rng = np.random.default_rng(5)
vis = [l.rstrip('\n') for l in open('features/data/imagenet1k_classes.txt', encoding='utf-8') if l.strip()]
import csv
aud = [r['display_name'] for r in csv.DictReader(open('features/data/audioset_class_labels_indices.csv', encoding='utf-8'))]
tok = lambda s: re.findall(rb'[A-Za-z0-9\x80-\xff]+|[^\s]', s.encode())
vocab = sorted({t.lower() for l in vis + aud for t in tok(l)})
keep = [w for w in vocab if rng.random() < 0.7] + [b'Dog']
vec = {w: rng.standard_normal(7) for w in keep}
with open(d + '/v.txt', 'wb') as f:
    for w in keep: f.write(w + b' ' + b' '.join(b'%.6f' % x for x in vec[w]) + b'\n')
vec = {w: np.array([float(b'%.6f' % x) for x in v]) for w, v in vec.items()}
def lv(l):
    t = tok(l); s = np.zeros(7)
    for x in t:
        v = vec.get(x, vec.get(x.lower()))
        if v is not None: s += v
    return s / max(len(t), 1)
def key(l): return b' '.join(x.lower() for x in tok(l))
A = np.array([lv(l) for l in vis]); B = np.array([lv(l) for l in aud])
na = np.linalg.norm(A, axis=1, keepdims=True); nb = np.linalg.norm(B, axis=1, keepdims=True)
A = np.where(na > 0, A / np.where(na > 0, na, 1), 0); B = np.where(nb > 0, B / np.where(nb > 0, nb, 1), 0)
S = A @ B.T
kv = [key(l) for l in vis]; ka = [key(l) for l in aud]
for i in range(len(vis)):
    for j in range(len(aud)):
        if kv[i] and kv[i] == ka[j]: S[i, j] = 1.0
np.save(d + '/S.npy', S.astype(np.float32))
PY
$M run labelsim --vectors "$AVS_TMP/v.txt" --out "$AVS_TMP/S.safetensors" -j 2 --db "$AVS_TMP/avs.db"
$py - "$AVS_TMP" <<'PY' || fail "labelsim vs numpy"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
d = sys.argv[1]; g = model_st.load(d + '/S.safetensors')['sim']; r = np.load(d + '/S.npy')
assert g.shape == (1000, 527), g.shape
err = float(np.abs(g - r).max()); print('labelsim 1000x527 max abs err', err, 'ones', int((g == 1).sum()))
assert err < 1e-5 and (g == 1).sum() == (r == 1).sum() and (r == 1).sum() > 0
assert model_st.metadata(d + '/S.safetensors')['vectors_format'] == 'glove-text'
import sqlite3
row = sqlite3.connect(d + '/avs.db').execute('SELECT vectors, rows, cols, data FROM label_similarity').fetchall()
assert len(row) == 1 and row[0][:3] == ('v.txt', 1000, 527), row[0][:3]
assert (np.frombuffer(row[0][3], '<f4').reshape(1000, 527) == g).all()
PY
expect 3 "cannot open word vectors" $M run labelsim --vectors "$AVS_TMP/none.txt" --out "$AVS_TMP/o.safetensors"
expect 1 "needs --vectors" $M run labelsim --out "$AVS_TMP/o.safetensors"

# vggish: fixture through the tool, with and without the head; chained after run logmel
V=$F/vggish_small
$M run vggish --weights $V.weights.safetensors --head $V.head.safetensors --inputs $V.io.safetensors \
   --out "$AVS_TMP/vg.safetensors" -j 2
$M run vggish --weights $V.weights.safetensors --inputs $V.io.safetensors --out "$AVS_TMP/vg0.safetensors"
$M run vggish --weights $V.weights.safetensors --inputs "$AVS_TMP/real.stream.safetensors" --out "$AVS_TMP/vg1.safetensors"
$py - "$AVS_TMP" $V.io.safetensors <<'PY' || fail "vggish vs PyTorch"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
d = sys.argv[1]; r = model_st.load(sys.argv[2]); g = model_st.load(d + '/vg.safetensors')
for k in ('embedding', 'logits'):
    assert g[k].shape == r[k].shape, (k, g[k].shape)
    assert np.allclose(g[k], r[k], rtol=1e-4, atol=1e-5), (k, np.abs(g[k] - r[k]).max())
g0 = model_st.load(d + '/vg0.safetensors'); assert list(g0) == ['embedding'] and (g0['embedding'] == g['embedding']).all()
g1 = model_st.load(d + '/vg1.safetensors')['embedding']; assert np.allclose(g1[0], r['embedding'][2], rtol=1e-4, atol=1e-5)
print('vggish ok')
PY
$py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
model_st.save('$AVS_TMP/ex.safetensors', {'examples': np.zeros((2, 96, 32), np.float32)})"
expect 3 "must be \[N,96,64\]" $M run vggish --weights $V.weights.safetensors --inputs "$AVS_TMP/ex.safetensors" --out "$AVS_TMP/o.safetensors"
expect 3 'missing tensor "head.weight"' $M run vggish --weights $V.weights.safetensors --head $V.io.safetensors --inputs $V.io.safetensors --out "$AVS_TMP/o.safetensors"

# pvt: full-size b0, fresh from torch
if $py -c 'import torch' 2>/dev/null; then
  $py tests/gen/features_pvt.py b0 "$AVS_TMP/b0.w.safetensors" "$AVS_TMP/b0.in.safetensors" "$AVS_TMP/b0.ref.safetensors"
  $M run pvt_v2_b0 --weights "$AVS_TMP/b0.w.safetensors" --inputs "$AVS_TMP/b0.in.safetensors" --out "$AVS_TMP/b0.out.safetensors" -j 2 \
     --target "$AVS_TMP/b0.in.safetensors.target"
  $py tests/gen/model_compare.py "$AVS_TMP/b0.out.safetensors" "$AVS_TMP/b0.ref.safetensors" || fail "pvt_v2_b0 differs from PyTorch"
  $M run pvt_v2_b0 --weights "$AVS_TMP/b0.w.safetensors" --inputs "$AVS_TMP/b0.in.safetensors" --out "$AVS_TMP/b0.g.safetensors" -j 2 \
     --grad-out "$AVS_TMP/b0.in.safetensors.dout"
  $py tests/gen/model_compare.py "$AVS_TMP/b0.g.safetensors" "$AVS_TMP/b0.ref.safetensors.grads" || fail "pvt_v2_b0 parameter gradients differ from PyTorch"
  expect 3 'patch_embed1.proj.weight" has shape \[32,3,7,7\], the model needs \[64,3,7,7\]' $M run pvt_v2_b2 --weights "$AVS_TMP/b0.w.safetensors" --inputs "$AVS_TMP/b0.in.safetensors" --out "$AVS_TMP/o.safetensors"
  $M bench pvt_v2_b0 --weights "$AVS_TMP/b0.w.safetensors" --size 64 --steps 1 | grep -q '^fwd_seconds=.* gradcam_seconds=' || fail "bench pvt_v2_b0"
  $py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
model_st.save('$AVS_TMP/badt.safetensors', {'target': np.array([1000], np.int64)})"
  expect 3 "is not a class index" $M run pvt_v2_b0 --weights "$AVS_TMP/b0.w.safetensors" --inputs "$AVS_TMP/b0.in.safetensors" --target "$AVS_TMP/badt.safetensors" --out "$AVS_TMP/o.safetensors"
else
  echo "note: no torch in /usr/bin/python3: full-size pvt_v2_b0 case not run"
fi
expect 1 "variants are pvt_v2_b0" $M run pvt_v2_b9 --weights $F/pvt_small.weights.safetensors --inputs $F/pvt_small.io.safetensors --out "$AVS_TMP/o.safetensors"
$py -c "
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
model_st.save('$AVS_TMP/img.safetensors', {'image': np.zeros((1, 3, 50, 64), np.float32)})"
expect 3 'must be \[N,3,H,W\]' $M run pvt_v2_b0 --weights $F/pvt_small.weights.safetensors --inputs "$AVS_TMP/img.safetensors" --out "$AVS_TMP/o.safetensors"
expect 3 'the model needs \[32,3,7,7\]' $M run pvt_v2_b0 --weights $F/pvt_small.weights.safetensors --inputs $F/pvt_small.io.safetensors --out "$AVS_TMP/o.safetensors"

# --random-init: deterministic, official shapes
$M run vggish --random-init 4 --inputs "$AVS_TMP/pad.safetensors" --out "$AVS_TMP/rv1.safetensors"
$M run vggish --random-init 4 --inputs "$AVS_TMP/pad.safetensors" --out "$AVS_TMP/rv2.safetensors"
$M run pvt_v2_b0 --random-init 4 --inputs $F/pvt_small.io.safetensors --out "$AVS_TMP/rp.safetensors"
$M bench pvt_v2_b0 --random-init 1 --size 64 --steps 1 | grep -q '^fwd_seconds=' || fail "bench --random-init"
$py - "$AVS_TMP" <<'PY' || fail "random init"
import sys; sys.path.insert(0, 'tests/gen'); import model_st, numpy as np
d = sys.argv[1]; a = model_st.load(d + '/rv1.safetensors'); b = model_st.load(d + '/rv2.safetensors')
assert a['embedding'].shape == (5, 128) and a['logits'].shape == (5, 527)
assert (a['embedding'] == b['embedding']).all() and (a['embedding'] >= 0).all() and np.isfinite(a['logits']).all()
p = model_st.load(d + '/rp.safetensors')
assert p['stage1'].shape == (2, 32, 16, 16) and p['stage4'].shape == (2, 256, 2, 2) and p['logits'].shape == (2, 1000)
PY
echo "test_features_tool: ok"
