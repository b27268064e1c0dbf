#!/bin/bash
# avs-features on a tiny store (3 clips of 2 s made with ffmpeg + avs-ingest), random-init b0:
# - every field of a record (and of its flipped copy) equals what avs-model computes from the same
#   inputs (the dump's "image" and "wave"): stage maps, logits, Grad-CAM for CC and CC-V, log-mel,
#   VGGish embedding and logits; CC-V is the top visual class; fp16 sets within half rounding;
# - a re-run is a no-op; kill -9 at several moments, then runs again: no finished video redone,
#   the end result equal to an uninterrupted run's; the index never names a record past the end;
# - --vectors stores S in the index; errors: missing weights, wrong shapes, no index, no ok
#   videos, usage, another configuration under the same set name; a video with a missing frame
#   fails alone (exit 2).
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy (bash scripts/deps.sh)"; exit 77; }
F="$AVS_BIN/avs-features"; M="$AVS_BIN/avs-model"; py=/usr/bin/python3
gen=$(cd "$(dirname "$0")/gen" && pwd); fx=$(cd "$(dirname "$0")/fixtures/features" && pwd)
d=$AVS_TMP/in; s=$AVS_TMP/store; mkdir -p "$d/cat" "$d/dog"
for i in 1 2 3; do
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=320x240:rate=25,hue=h=$((i * 60))" \
    -f lavfi -i "sine=frequency=$((300 + 100 * i)):sample_rate=44100" -t 2 -c:v libx264 \
    -pix_fmt yuv420p -c:a aac -shortest "$d/$([ $i = 1 ] && echo cat || echo dog)/clip$i.mp4" ||
    fail "fixture clip $i"
done
"$AVS_BIN/avs-ingest" -q -j 2 --root "$s" "$d" || fail "ingest"
q() { sqlite3 "$s/avs.db" "$1"; }
feat() { "$F" -q -j 2 --root "$s" --random-init 1 "$@"; }

# ---- a full run with flipped copies ----
t0=$(date +%s.%N); feat --flip --set ref; expect_eq $? 0 "first run"
dur=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')  # kills below land inside a run
expect_eq "$(q "SELECT count(*) FROM feature_entries e JOIN feature_sets s ON s.id = e.set_id WHERE s.name = 'ref'")" 12 "records: 3 videos x 2 s x 2 flips"
expect_eq "$(q "SELECT status, random_init FROM feature_sets WHERE name = 'ref'")" "complete|1" "set row"
q "SELECT config FROM feature_sets WHERE name = 'ref'" | grep -q '"weights":"random-init 1"' ||
  fail "config names the random init"

# ---- every field against avs-model on the dumped inputs ----
check_record() {  # set uid k flipped [atol_rel]: dump, recompute with avs-model, compare
  local o=$AVS_TMP/chk; mkdir -p "$o"
  "$F" dump --root "$s" --set "$1" --video "$2" --k "$3" $([ "$4" = 1 ] && echo --flipped) \
    --out "$o/d.st" || { fail "dump $*"; return; }
  "$M" run pvt_v2_b0 --random-init 1 -j 2 --inputs "$o/d.st" --target "$o/d.st" --out "$o/p.st" ||
    fail "avs-model pvt (CC)"
  $py -c "import sys; sys.path.insert(0, '$gen'); import model_st as m
d = m.load('$o/d.st'); m.save('$o/tv.st', {'target': d['target_v'].copy()})" || fail "target_v file"
  "$M" run pvt_v2_b0 --random-init 1 -j 2 --inputs "$o/d.st" --target "$o/tv.st" --out "$o/pv.st" ||
    fail "avs-model pvt (CC-V)"
  "$M" run logmel --inputs "$o/d.st" --examples 2 --out "$o/lm.st" || fail "avs-model logmel"
  "$M" run vggish --random-init 1 --inputs "$o/lm.st" --out "$o/vg.st" || fail "avs-model vggish"
  $py - "$o" "$3" "${5:-0}" <<EOF || fail "record $* differs from avs-model"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
o, k, h = sys.argv[1], int(sys.argv[2]) - 1, float(sys.argv[3])
d, p, pv = m.load(o + '/d.st'), m.load(o + '/p.st'), m.load(o + '/pv.st')
lm, vg = m.load(o + '/lm.st'), m.load(o + '/vg.st')
pairs = [('stage%d' % i, p['stage%d' % i][0]) for i in range(1, 5)]
pairs += [('gradcam%d' % i, p['gradcam%d' % i][0]) for i in range(1, 5)]
pairs += [('gradcam_v%d' % i, pv['gradcam%d' % i][0]) for i in range(1, 5)]
pairs += [('vlogits', p['logits'][0]), ('logmel', lm['examples'][k]),
          ('audio_emb', vg['embedding'][k]), ('audio_logits', vg['logits'][k])]
bad = 0
for name, ref in pairs:
    got = d[name].astype(np.float64); ref = ref.astype(np.float64)
    tol = 1e-5 * np.abs(ref).max() + 1e-7 + h * np.abs(ref)   # h: fp16 rounding bound
    err = np.abs(got - ref) - tol
    if got.shape != ref.shape or err.max() > 0:
        i = int(np.argmax(err)); bad += 1
        print('%s: shape %s vs %s, worst |%g - %g|' % (name, got.shape, ref.shape,
              got.ravel()[i], ref.ravel()[i]))
tv = int(d['target_v'][0])
if tv != int(np.argmax(d['vlogits'])):
    print('target_v %d is not the top visual class %d' % (tv, np.argmax(d['vlogits']))); bad += 1
sys.exit(1 if bad else 0)
EOF
  n_checks=$((n_checks + 1))
}
check_record ref clip2 2 0
check_record ref clip1 1 1
feat --fp16 --set half >/dev/null; expect_eq $? 0 "fp16 run"
check_record half clip3 2 0 0.00049  # 2^-11

# ---- re-run is a no-op ----
size0=$(stat -c %s "$s/features/ref.bin"); rows0=$(q "SELECT * FROM feature_entries ORDER BY 1,2,3,4" | md5sum)
out=$(feat --flip --set ref --json); expect_eq $? 0 "re-run"
echo "$out" | grep -q '"done": 0, "unchanged": 3' || fail "re-run did work: $out"
expect_eq "$(stat -c %s "$s/features/ref.bin")" "$size0" "re-run: cache file unchanged"
expect_eq "$(q "SELECT * FROM feature_entries ORDER BY 1,2,3,4" | md5sum)" "$rows0" "re-run: rows unchanged"

# ---- kill -9 (each run resumes the one killed before), then resume to the end ----
kills=0
for frac in 0.2 0.4 0.6 0.75 0.9; do
  delay=$(awk -v d="$dur" -v f="$frac" 'BEGIN { printf "%.2f", d * f }')
  "$F" -q -j 2 --root "$s" --random-init 1 --flip --set killed & pid=$!
  sleep "$delay"; kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); wait "$pid" 2>/dev/null
  # The index never names a record past the end of the file.
  size=$(stat -c %s "$s/features/killed.bin" 2>/dev/null || echo 0)
  past=$(q "SELECT count(*) FROM feature_entries e JOIN feature_sets s ON s.id = e.set_id
            WHERE s.name = 'killed' AND e.offset + 1 > $size")
  expect_eq "$past" 0 "after kill at ${delay}s: records past the end of the file"
  before=$(q "SELECT count(DISTINCT video_id) FROM feature_entries e JOIN feature_sets s ON
              s.id = e.set_id WHERE s.name = 'killed'")
  echo "kill at ${delay}s: $before videos done"
  [ "$before" -ge 1 ] && [ "$before" -lt 3 ] && break  # leave a partly done set for the resume
done
[ "$kills" -ge 1 ] || fail "no run was killed (all finished first)"
out=$("$F" -q -j 2 --root "$s" --random-init 1 --flip --set killed --json); expect_eq $? 0 "resume"
echo "$out" | grep -q "\"unchanged\": ${before:-0}," || fail "resume redid finished videos ($before done): $out"
same=$(q "SELECT count(*) FROM feature_entries a JOIN feature_sets sa ON sa.id = a.set_id AND sa.name = 'killed'
          JOIN feature_sets sb ON sb.name = 'ref' JOIN feature_entries b ON b.set_id = sb.id AND
          b.video_id = a.video_id AND b.k = a.k AND b.flipped = a.flipped AND b.target = a.target
          AND b.target_v = a.target_v")
expect_eq "$same" 12 "resumed set: same entries and targets as the uninterrupted one"
for v in clip1 clip2 clip3; do
  "$F" dump --root "$s" --set ref --video $v --k 2 --flipped --out "$AVS_TMP/a.st" &&
  "$F" dump --root "$s" --set killed --video $v --k 2 --flipped --out "$AVS_TMP/b.st" || fail "dump $v"
  expect_eq "$(md5sum < "$AVS_TMP/a.st")" "$(md5sum < "$AVS_TMP/b.st")" "resumed record $v/2 flipped"
done

# ---- label similarity from word vectors ----
printf 'dog 0.1 0.2 0.3\ncat 0.3 0.1 0.0\nmusic 0.0 1.0 0.5\n' > "$AVS_TMP/vec.txt"
feat --vectors "$AVS_TMP/vec.txt" --set withvec; expect_eq $? 0 "run with --vectors"
expect_eq "$(q "SELECT vectors, rows, cols FROM label_similarity")" "vec.txt|1000|527" "S stored"
q "SELECT config FROM feature_sets WHERE name = 'withvec'" | grep -q '"vectors":"vec.txt","vectors_hash":"[0-9a-f]\{32\}"' ||
  fail "config names the vector file and its hash"

# ---- errors ----
err() {  # want_rc pattern args...: exit status and the message
  local want=$1 pat=$2; shift 2
  "$F" "$@" 2> "$AVS_TMP/err"; local rc=$?
  expect_eq "$rc" "$want" "exit status of: $*"
  grep -q -- "$pat" "$AVS_TMP/err" || fail "message of '$*' lacks '$pat': $(cat "$AVS_TMP/err")"
}
err 3 "nope.safetensors" --root "$s" --visual pvt_v2_b0=$AVS_TMP/nope.safetensors --random-init 1
err 3 "wrong shapes: the class lists give S 1000 x 527" --root "$s" --random-init 1 \
  --audio vggish=$fx/vggish_small.weights.safetensors --audio-head $fx/vggish_small.head.safetensors \
  --vectors "$AVS_TMP/vec.txt" --set small
err 3 "stage1_dim\|patch_embed\|block1" --root "$s" --random-init 1 \
  --visual pvt_v2_b0=$fx/pvt_small.weights.safetensors --set smallpvt
err 3 "no store index" --root "$AVS_TMP/nowhere" --random-init 1
mkdir -p "$AVS_TMP/bad"; echo "not a video" > "$AVS_TMP/bad/x.mp4"
"$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/badstore" "$AVS_TMP/bad" 2>/dev/null
err 3 "no ok videos" --root "$AVS_TMP/badstore" --random-init 1
err 1 "missing --visual" --root "$s"
err 3 "another configuration" --root "$s" --random-init 2 --set ref
err 1 "expected stream or second" --root "$s" --random-init 1 --policy nope
# ---- a video that cannot be read fails alone (exit 2, named), the rest is done ----
rm "$s/frames/clip3/1.png"
"$F" -j 2 --root "$s" --random-init 1 --set partial 2> "$AVS_TMP/err"; expect_eq $? 2 "exit status with a missing frame"
grep -q "clip3.*frames/clip3/1.png" "$AVS_TMP/err" || fail "message names the video and the file: $(cat "$AVS_TMP/err")"
expect_eq "$(q "SELECT count(DISTINCT video_id) || ' ' || s.status FROM feature_entries e JOIN feature_sets s ON s.id = e.set_id WHERE s.name = 'partial'")" "2 building" "other videos done, set not complete"
finish
