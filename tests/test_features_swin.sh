#!/bin/bash
# avs-features with a Swin visual encoder (random-init swin_t on a 1-second clip at 224x224):
# - the set's config records the encoder; the records' stage maps have Swin's channels and
#   sides (96..768, 56..7) and equal what `avs-model run swin_t` computes from the dumped frame
#   (stage maps, logits, Grad-CAM for CC and CC-V);
# - errors: a store whose frames do not fit the windows (64x64: sides must be multiples of 224
#   for window 7), an unknown encoder (the message lists the Swin variants).
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy (bash scripts/deps.sh)"; exit 77; }
F="$AVS_BIN/avs-features"; M="$AVS_BIN/avs-model"; py=/usr/bin/python3
gen=$(cd "$(dirname "$0")/gen" && pwd)
d=$AVS_TMP/in; s=$AVS_TMP/store; mkdir -p "$d/cat"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=320x240:rate=25" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 1 -c:v libx264 -pix_fmt yuv420p \
  -c:a aac -shortest "$d/cat/clip.mp4" || fail "fixture clip"
"$AVS_BIN/avs-ingest" -q -j 2 --root "$s" "$d" || fail "ingest"
q() { sqlite3 "$s/avs.db" "$1"; }

"$F" -q -j 2 --root "$s" --random-init 3 --visual swin_t --set sw; expect_eq $? 0 "features swin_t"
expect_eq "$(q "SELECT json_extract(config, '$.visual.name') || ' ' || json_extract(config, '$.visual.weights') || ' ' || status FROM feature_sets WHERE name = 'sw'")" \
  "swin_t random-init 3 complete" "config records the encoder"
uid=$(q "SELECT uid FROM videos LIMIT 1")
o=$AVS_TMP/chk; mkdir -p "$o"
"$F" dump --root "$s" --set sw --video "$uid" --k 1 --out "$o/d.st" || fail "dump"
"$M" run swin_t --random-init 3 -j 2 --inputs "$o/d.st" --target "$o/d.st" --out "$o/p.st" ||
  fail "avs-model swin_t (CC)"
$py -c "import sys; sys.path.insert(0, '$gen'); import model_st as m
d = m.load('$o/d.st'); m.save('$o/tv.st', {'target': d['target_v'].copy()})" || fail "target_v file"
"$M" run swin_t --random-init 3 -j 2 --inputs "$o/d.st" --target "$o/tv.st" --out "$o/pv.st" ||
  fail "avs-model swin_t (CC-V)"
$py - "$o" <<EOF || fail "the record differs from avs-model run swin_t"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
o = sys.argv[1]
d, p, pv = m.load(o + '/d.st'), m.load(o + '/p.st'), m.load(o + '/pv.st')
shapes = [d['stage%d' % i].shape[-3:] for i in range(1, 5)]
assert shapes == [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)], shapes
pairs = [('stage%d' % i, p['stage%d' % i][0]) for i in range(1, 5)]
pairs += [('gradcam%d' % i, p['gradcam%d' % i][0]) for i in range(1, 5)]
pairs += [('gradcam_v%d' % i, pv['gradcam%d' % i][0]) for i in range(1, 5)]
pairs += [('vlogits', p['logits'][0])]
bad = 0
for name, ref in pairs:
    got = d[name].reshape(ref.shape)
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    if err > 1e-6:
        print('%s: max rel err %.3g' % (name, err)); bad += 1
sys.exit(bad)
EOF

# ---- errors ----
s2=$AVS_TMP/small
"$AVS_BIN/avs-ingest" -q --root "$s2" --size 64x64 "$d" || fail "ingest 64x64"
out=$("$F" -q --root "$s2" --random-init 1 --visual swin_b --set x 2>&1); rc=$?
expect_eq "$rc" 3 "swin_b on 64x64 frames fails"
echo "$out" | grep -q "multiples of 224" || fail "size message: $out"
expect_eq "$(sqlite3 "$s2/avs.db" "SELECT count(*) FROM feature_sets")" 0 "nothing recorded"
out=$("$F" -q --root "$s" --random-init 1 --visual swin_x --set y 2>&1)
echo "$out" | grep -q "swin_b" || fail "unknown encoder message lists the Swin variants: $out"
finish
