#!/bin/bash
# tools/convert_checkpoint.py: a PyTorch PVTv2-b0 checkpoint saved the way official ones are
# (torch.save of a dict holding the state_dict, DataParallel "module." names, fp16 copy too)
# converts 1:1: same names (prefix stripped on request), identical values, and avs-model runs
# the converted weights to the same logits as PyTorch. Needs Debian's torch, else SKIP.
set -u
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no torch (bash scripts/deps.sh --bench)"; exit 77; }
T=$AVS_TMP
$py - "$T" <<'PY' || fail "making the checkpoint"
import sys, torch, numpy as np
sys.path.insert(0, 'tests/gen')
import features_pvt, model_st
t = sys.argv[1]
m = features_pvt.make(features_pvt.VARIANTS['b0'], 5)
sd = m.state_dict()
torch.save({'epoch': 3, 'state_dict': {'module.' + k: v for k, v in sd.items()}}, f'{t}/ckpt.pth')
torch.save({k: v.half() for k, v in sd.items()}, f'{t}/half.pth')
x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
model_st.save(f'{t}/in.safetensors', {'image': x})
with torch.no_grad():
    _, logits = m(torch.from_numpy(x))
np.save(f'{t}/logits.npy', logits.numpy())
np.save(f'{t}/names.npy', np.array(sorted(sd.keys())))
PY
$py tools/convert_checkpoint.py "$T/ckpt.pth" "$T/raw.safetensors" > /dev/null || fail "convert (names as is)"
$py tools/convert_checkpoint.py --strip-prefix module. "$T/ckpt.pth" "$T/w.safetensors" || fail "convert"
$py tools/convert_checkpoint.py "$T/half.pth" "$T/half.safetensors" > /dev/null || fail "convert fp16"
$py - "$T" <<'PY' || fail "converted tensors differ"
import sys, numpy as np, torch
sys.path.insert(0, 'tests/gen')
import model_st
t = sys.argv[1]
names = list(np.load(f'{t}/names.npy'))
sd = torch.load(f'{t}/ckpt.pth')['state_dict']
raw, w = model_st.load(f'{t}/raw.safetensors'), model_st.load(f'{t}/w.safetensors')
assert sorted(raw) == sorted('module.' + n for n in names), 'names must be unchanged by default'
assert sorted(w) == names, 'names after --strip-prefix'
for n in names:
    assert np.array_equal(w[n], sd['module.' + n].numpy()), n
meta = model_st.metadata(f'{t}/w.safetensors')
assert meta['source'] == 'ckpt.pth' and len(meta['source_sha256']) == 64, meta
print(len(names), 'tensors identical; metadata', meta['parameters'], 'parameters')
PY
# The C side reads the converted files: fp32, and fp16 widened on load.
"$AVS_BIN/avs-model" run pvt_v2_b0 --weights "$T/w.safetensors" --inputs "$T/in.safetensors" --out "$T/out.safetensors" -j 2 \
  || fail "avs-model run on the converted weights"
"$AVS_BIN/avs-model" run pvt_v2_b0 --weights "$T/half.safetensors" --inputs "$T/in.safetensors" --out "$T/outh.safetensors" -j 2 \
  || fail "avs-model run on fp16 weights"
$py - "$T" <<'PY' || fail "logits of the converted weights differ from PyTorch"
import sys, numpy as np
sys.path.insert(0, 'tests/gen')
import model_st
t = sys.argv[1]
ref = np.load(f'{t}/logits.npy')
for f, tol in (('out', 1e-4), ('outh', 5e-2)):
    got = model_st.load(f'{t}/{f}.safetensors')['logits']
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    print(f, 'rel L2', rel)
    assert rel <= tol, (f, rel)
PY
# Errors name the file.
echo "not a checkpoint" > "$T/bad.pth"
$py tools/convert_checkpoint.py "$T/bad.pth" "$T/x.safetensors" 2> "$T/e"; expect_eq $? 1 "bad input exit"
grep -q "bad.pth" "$T/e" || fail "error does not name the file: $(cat "$T/e")"
[ ! -e "$T/x.safetensors" ] || fail "output written for a bad input"
expect_eq "$(ls "$T" | grep -c '\.tmp\.')" 0 "no temp files"
finish
