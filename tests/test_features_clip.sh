#!/bin/bash
# avs_feat_clip (features/features.h) through `avs-features clip`: a feature set's encoders on a clip in memory give
# BIT-IDENTICAL values to the set's cache records (fp32, random-init b0; and resnet50 with
# panns_cnn14) for every second:
# audio_emb, stage1..4, gradcam1..4, gradcam_v1..4, targets, and the frames (normalised, equal
# to the record's network input). Two clips: 25 fps with AAC audio (3.4 s), 29.97 fps without
# audio (2.3 s). A set made with weight files (the small VGGish fixture) needs the same files:
# without them, with another file, or an unknown set -> exit 3 with a message naming the set,
# the file and the fix; with the right files -> identical values again.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy (bash scripts/deps.sh)"; exit 77; }
F="$AVS_BIN/avs-features"; py=/usr/bin/python3
gen=$(cd "$(dirname "$0")/gen" && pwd); fx=$(cd "$(dirname "$0")/fixtures/features" && pwd)
d=$AVS_TMP/in; s=$AVS_TMP/store; mkdir -p "$d/cat"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=320x240:rate=25" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 3.4 -c:v libx264 -pix_fmt yuv420p \
  -c:a aac -shortest "$d/cat/a.mp4" || fail "fixture clip a"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=200x150:rate=30000/1001" -t 2.3 \
  -c:v libx264 -pix_fmt yuv420p "$d/cat/b.mp4" || fail "fixture clip b"
"$AVS_BIN/avs-ingest" -q -j 2 --root "$s" "$d" || fail "ingest"
"$F" -q -j 2 --root "$s" --random-init 1 --set r; expect_eq $? 0 "avs-features random-init fp32"
small="--audio vggish=$fx/vggish_small.weights.safetensors --audio-head $fx/vggish_small.head.safetensors"
"$F" -q -j 2 --root "$s" --random-init 3 $small --set files; expect_eq $? 0 "avs-features with audio files"

same() {  # set uid clip [files...]: clip path == every record of the set for that video
  local set=$1 uid=$2 clip=$3 o=$AVS_TMP/cmp_$1_$2; shift 3; mkdir -p "$o"
  "$F" clip -q -j 2 --root "$s" --set "$set" --clip "$clip" --out "$o/clip.st" "$@" ||
    { fail "clip $set $uid"; return; }
  local n; n=$(sqlite3 "$s/avs.db" "SELECT n_seconds FROM videos WHERE uid = '$uid'")
  for k in $(seq 1 "$n"); do
    "$F" dump --root "$s" --set "$set" --video "$uid" --k "$k" --out "$o/d$k.st" || fail "dump $uid $k"
  done
  $py - "$o" "$n" <<EOF || fail "clip path differs from the records of $set/$uid"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
o, n = sys.argv[1], int(sys.argv[2])
c = m.load(o + '/clip.st'); bad = 0
names = ['audio_emb'] + ['%s%d' % (p, i) for p in ('stage', 'gradcam', 'gradcam_v') for i in range(1, 5)]
if c['stage1'].shape[0] != n: print('clip has %d seconds, the store %d' % (c['stage1'].shape[0], n)); sys.exit(1)
mean = np.array([0.485, 0.456, 0.406], np.float32); std = np.array([0.229, 0.224, 0.225], np.float32)
for k in range(n):
    d = m.load('%s/d%d.st' % (o, k + 1))
    for nm in names:
        a, b = c[nm][k], d[nm]
        if a.shape != b.shape or not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
            i = int(np.argmax(np.abs(a.astype(np.float64) - b)))
            print('second %d %s: %s vs %s, first differing %r vs %r' % (k + 1, nm, a.shape, b.shape, a.ravel()[i], b.ravel()[i])); bad += 1
    for nm in ('target', 'target_v'):
        if int(c[nm][k]) != int(d[nm][0]): print('second %d %s %d vs %d' % (k + 1, nm, c[nm][k], d[nm][0])); bad += 1
    img = ((c['frames'][k].astype(np.float32) / np.float32(255) - mean) / std).transpose(2, 0, 1)
    if not np.array_equal(img, d['image'][0]): print('second %d: frame differs from the store frame' % (k + 1)); bad += 1
print('%d seconds compared, %d differences' % (n, bad)); sys.exit(1 if bad else 0)
EOF
  n_checks=$((n_checks + 1))
}
same r a "$d/cat/a.mp4"
same r b "$d/cat/b.mp4"
same files a "$d/cat/a.mp4" $small
# the other encoders through the same clip path: ResNet-50 (visual), PANNs CNN14 (audio)
"$F" -q -j 2 --root "$s" --random-init 5 --visual resnet50 --audio panns_cnn14 --set rnpn
expect_eq $? 0 "avs-features random-init resnet50 + panns_cnn14"
same rnpn b "$d/cat/b.mp4"

# ---- errors ----
err() {  # want_rc pattern args...: exit status and the message
  local want=$1 pat=$2; shift 2
  "$F" "$@" 2> "$AVS_TMP/err"; local rc=$?
  expect_eq "$rc" "$want" "exit status of: $*"
  grep -q -- "$pat" "$AVS_TMP/err" || fail "message of '$*' lacks '$pat': $(cat "$AVS_TMP/err")"
}
o=$AVS_TMP/x.st
err 3 'feature set "files" was made with audio weights vggish_small.weights.safetensors: give that file (--audio vggish=FILE)' \
  clip --root "$s" --set files --clip "$d/cat/a.mp4" --out "$o"
err 3 'not the AudioSet head feature set "files" was made with' clip --root "$s" --set files \
  --clip "$d/cat/a.mp4" --out "$o" --audio vggish=$fx/vggish_small.weights.safetensors \
  --audio-head $fx/pvt_small.weights.safetensors
err 3 'no feature set "nope"' clip --root "$s" --set nope --clip "$d/cat/a.mp4" --out "$o"
err 3 "missing.mp4" clip --root "$s" --set r --clip "$AVS_TMP/missing.mp4" --out "$o"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=64x64:rate=25" -t 0.5 -c:v libx264 \
  -pix_fmt yuv420p "$AVS_TMP/short.mp4"
err 3 "shorter than one second" clip --root "$s" --set r --clip "$AVS_TMP/short.mp4" --out "$o"
err 1 "clip needs --set NAME --clip IN --out" clip --root "$s" --set r
[ -e "$o" ] && fail "a failed clip run left $o"
finish
