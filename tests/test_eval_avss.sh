#!/bin/bash
# tests/test_eval_avss.sh: avs-eval --semantic (AVSS) and --protocol against the Python
# reference (tests/gen/avss_ref.py: the official AVSBench code re-implemented in torch) on a
# random case generated here: palette colour, class-index and 71-channel logits predictions,
# labels at other sizes, unknown colours, padded frames given and assumed; --padded skip; the
# store path; -j independence; bad inputs; the S4 protocols per-frame and pooled.
set -u
E=$AVS_BIN/avs-eval
T=$AVS_TMP
PY=/usr/bin/python3
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
$PY -c 'import torch, numpy, PIL' 2>/dev/null || { echo "SKIP: needs /usr/bin/python3 with torch, numpy, PIL (bash scripts/deps.sh --bench)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 shell not installed (bash scripts/deps.sh)"; exit 77; }

$PY tests/gen/avss_ref.py make "$T/c" 3 5 || { echo "FAIL: reference generator"; exit 1; }
C=$T/c
# compare OURS.json with expected.json[KEY] (all numbers within 1e-6)
cmp_ref() {
  $PY - "$1" "$C/expected.json" "$2" <<'PYEOF'
import json, sys
o, e, key = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
x, bad = e[key], []
def near(a, b, what):
    if abs(a - b) > 1e-6: bad.append(f"{what}: {a} vs {b}")
near(o["miou"], x["miou"], "mIoU"); near(o["fscore"], x["fscore"], "F")
for v in ("no-bg", "official-no-bg", "present", "pooled"):
    near(o["variants"][v]["miou"], x[v][0], v + " mIoU"); near(o["variants"][v]["fscore"], x[v][1], v + " F")
for c in o["classes"]:
    k = c["idx"]
    near(c["iou"], x["class_iou"][k], f"class {k} IoU"); near(c["fscore"], x["class_f"][k], f"class {k} F")
    near(c["frames"], x["class_frames"][k], f"class {k} frames")
for v, w in zip(o["videos"], x["videos"]):
    near(v["miou"], w[1], "video " + v["name"])
near(o["frames"], x["frames"], "frames")
print("\n".join(bad[:10]) if bad else "equal within 1e-6")
sys.exit(1 if bad else 0)
PYEOF
}
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }

$E -q -j2 --gt "$C/release" --pred "$C/pred" --json "$T/a.json" > "$T/a.txt"; rc=$?
[ $rc -eq 0 ] && ok "release tree detected as AVSS, exit 0" || bad "avss run rc=$rc"
cmp_ref "$T/a.json" official && ok "official protocol = reference" || bad "official numbers"
[ "$(jget "$T/a.json" '$.protocol')" = avss-official ] && ok "protocol avss-official" || bad "protocol name"
[ "$(jget "$T/a.json" '$.unknown_pixels')" = "$($PY -c "import json;print(json.load(open('$C/expected.json'))['unknown_pixels'])")" ] \
  && ok "unknown label pixels counted" || bad "unknown pixels"
[ "$(jget "$T/a.json" '$.padded_given')" -gt 0 ] && [ "$(jget "$T/a.json" '$.padded_assumed')" -gt 0 ] \
  && ok "padded given and assumed counted" || bad "padded counts"
grep -q "official-no-bg" "$T/a.txt" && grep -q "AVSBench #23" "$T/a.txt" && ok "variants labelled in text" || bad "text variants"
[ "$(jget "$T/a.json" '$.classes[5].name')" = cls_05 ] && ok "class names from label2idx.json" || bad "class names"
$E -q -j1 --gt "$C/release" --pred "$C/pred" --json "$T/a1.json" > /dev/null
cmp -s "$T/a.json" "$T/a1.json" && ok "-j1 and -j2 give identical JSON" || bad "-j dependence"
$E -q --gt "$C/release" --pred "$C/pred" --padded skip --json "$T/r.json" > /dev/null || bad "--padded skip run"
cmp_ref "$T/r.json" real && ok "--padded skip = reference on real frames" || bad "real-frames numbers"
[ "$(jget "$T/r.json" '$.protocol')" = avss-official-real-frames ] && ok "protocol avss-official-real-frames" || bad "real protocol"

# the store: class-index masks (255 = unknown), classes table, auto-detected subset avss
S=$T/store
$E -q --gt "$C/release" --pred "$C/pred" --root "$S" --record "m (ours)" > /dev/null || bad "record"
[ "$(sqlite3 "$S/avs.db" "SELECT protocol || '|' || subset || '|' || frames FROM metrics")" = "avss-official|avss|50" ] \
  && ok "metrics row with protocol" || bad "metrics row: $(sqlite3 "$S/avs.db" 'SELECT protocol, subset, frames FROM metrics')"
tail -n +2 "$C/release/metadata.csv" | while IFS=, read -r n uid split aset; do
  w=$($PY -c "from PIL import Image; print(*Image.open('$C/store/masks/$uid/1.png').size)")
  sqlite3 "$S/avs.db" "INSERT INTO videos (uid, source, subset, split, status, avss_set, src_width, src_height)
    VALUES ('$uid', '/src/$uid', 'avss', 'test', 'ok', '$aset', ${w% *}, ${w#* })"
  for f in "$C/store/masks/$uid"/*.png; do
    k=$(basename "$f" .png)
    sqlite3 "$S/avs.db" "INSERT INTO masks (video_id, k, path, kind, released) VALUES
      ((SELECT id FROM videos WHERE uid = '$uid'), $k, 'x/$uid/$k.png', 'class', '$f')"
  done
done
for k in $(seq 0 70); do echo "INSERT INTO classes VALUES ('avss', $k, 'c$k');"; done | sqlite3 "$S/avs.db"
$E -q --root "$S" --pred "$C/pred" --json "$T/s.json" > /dev/null; rc=$?
[ $rc -eq 0 ] && cmp_ref "$T/s.json" official && ok "store masks = reference" || bad "store mode rc=$rc"
[ "$(jget "$T/s.json" '$.classes[3].name')" = c3 ] && ok "class names from the classes table" || bad "store names"

# bad inputs: class index >= 71, a missing real prediction, a label of another size
cp -r "$C/pred" "$T/p2"; cp -r "$C/release" "$T/rel2"
u0=$(sed -n 2p "$C/release/metadata.csv" | cut -d, -f2); s0=$(sed -n 2p "$C/release/metadata.csv" | cut -d, -f4)
u1=$(sed -n 3p "$C/release/metadata.csv" | cut -d, -f2)
rm -f "$T/p2/$u0/${u0}_1".*
$PY -c "from PIL import Image; Image.new('L', (224, 224), 80).save('$T/p2/$u1/${u1}_2.png')"
rm -f "$T/p2/$u1/${u1}_2.logits"
$PY -c "from PIL import Image; Image.new('RGB', (20, 10)).save('$T/rel2/$s0/$u0/labels_rgb/3.png')"
$E --gt "$T/rel2" --pred "$T/p2" --json "$T/b.json" > /dev/null 2> "$T/b.err"; rc=$?
[ $rc -eq 2 ] && ok "bad inputs -> exit 2" || bad "bad inputs rc=$rc"
grep -q "missing prediction.*${u0}_1.png" "$T/b.err" && ok "missing file named" || bad "missing not named"
grep -q "${u1}_2.png: class index 80" "$T/b.err" && ok "class index 80 named" || bad "index >= 71 not named"
grep -q "labels_rgb/3.png is 20x10 but its frame" "$T/b.err" && ok "label size mismatch named" || bad "size not named"
[ "$(jget "$T/b.json" '$.failed_frames')" = 3 ] && [ "$(jget "$T/b.json" '$.frames')" = 47 ] \
  && ok "the other frames evaluated" || bad "rest not evaluated"
cat "$T/b.err" | head -5

# S4/MS3 protocols against the reference on the S4 fixture
F=tests/fixtures/eval/s4
$E -q --gt "$F/gt" --pred "$F/pred" --all-protocols --json "$T/p.json" > "$T/p.txt" || bad "all-protocols run"
$PY tests/gen/avss_ref.py protocols "$F/gt/test" "$F/pred" > "$T/pref.json"
for p in per-frame pooled; do
  for k in miou fscore; do
    got=$(jget "$T/p.json" "\$.per_class" >/dev/null; $PY -c "
import json; o=json.load(open('$T/p.json'))
print([n['value'] for n in o['numbers'] if n['protocol']=='$p' and n['name']==('mIoU' if '$k'=='miou' else 'F')][0])")
    want=$(jget "$T/pref.json" "\$.\"$p\".$k")
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6) }' \
      && ok "s4 $p $k $got" || bad "s4 $p $k: $got vs $want"
  done
done
grep -q "per-frame" "$T/p.txt" && grep -q "pooled" "$T/p.txt" && ok "protocols side by side" || bad "side by side"
$E -q --gt "$F/gt" --pred "$F/pred" --all-protocols --root "$T/st2" --record r > /dev/null || bad "record all"
[ "$(sqlite3 "$T/st2/avs.db" "SELECT group_concat(protocol) FROM (SELECT protocol FROM metrics ORDER BY id)")" = "official,per-frame,pooled" ] \
  && ok "one metrics row per protocol" || bad "rows per protocol"
exit $fail
