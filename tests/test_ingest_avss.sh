#!/bin/bash
# AVSS (AVSBench-semantic) end to end: avs-synth --subset avss writes the release layout from
# the fixture media, avs-ingest --avsbench imports it; rows checked (classes in label2idx
# order, class masks only for labelled frames, paths, released copies byte-identical,
# unknown_pixels of a planted off-palette colour), audio seconds exact in length, re-ingest a
# no-op, a changed label redone, --shard + merge, and the masks cross-checked with PIL (tests/gen/avss_check.py).
set -u
. "$(dirname "$0")/lib.sh"
need sqlite3 cmp
media=tests/fixtures/synth/media
T=$AVS_TMP/avss; s=$AVS_TMP/store
"$AVS_BIN/avs-synth" --media $media --out "$T" --subset avss --videos 6 --size 64x48 --seed 3 \
  --avss-unknown 3 -q || fail "avs-synth --subset avss"
expect_eq "$(head -n 1 "$T/metadata.csv")" "vid,uid,s_min,s_sec,a_obj,split,label" "release header"
"$AVS_BIN/avs-ingest" --root "$s" --avsbench "$T" 2> "$AVS_TMP/err"; rc=$?
expect_eq "$rc" 0 "ingest exit status"
grep -q "labels_rgb/0.png: 3 pixels of colours not in the palette" "$AVS_TMP/err" || fail "unknown-colour warning: $(cat "$AVS_TMP/err")"
q() { sqlite3 "$s/avs.db" "$1"; }
expect_eq "$(q "SELECT group_concat(name, ',') FROM (SELECT name FROM classes WHERE dataset='avss' ORDER BY idx)")" \
  "background,blue_square,green_tri,red_disc" "classes in label2idx.json order"
expect_eq "$(q "SELECT count(*) FROM classes")" 4 "class rows"
# Every metadata row is a video with its set, split and frame count (v1s/v1m 5, v2 10).
while IFS=, read -r vid uid smin ssec aobj split label; do
  want=5; [ "$label" = v2 ] && want=10
  expect_eq "$(q "SELECT subset || ',' || avss_set || ',' || split || ',' || seconds || ',' || status FROM v_videos WHERE uid='$uid'")" \
    "avss,$label,$split,$want,ok" "$uid row"
  labels=$(ls "$T/$label/$uid/labels_rgb" | wc -l)
  expect_eq "$(q "SELECT count(*) FROM masks m JOIN videos v ON v.id = m.video_id WHERE uid='$uid' AND kind='class'")" "$labels" "$uid: one class mask per label"
  [ "$label,$split" = "v1s,train" ] && expect_eq "$labels" 1 "$uid: v1s train has only label 0"
  for i in 0 $((want - 1)); do
    k=$((i + 1))
    cmp -s "$T/$label/$uid/frames/$i.jpg" "$s/released/$uid/frames/$k.jpg" || fail "$uid frame $i: released copy differs"
  done
  expect_eq "$(q "SELECT released FROM seconds JOIN videos ON videos.id = video_id WHERE uid='$uid' AND k=$want")" \
    "released/$uid/frames/$want.jpg" "$uid: seconds.released"
  # category = the classes present, in index order
  expect_eq "$(q "SELECT ifnull(category, '') FROM videos WHERE uid='$uid'")" "$(tr '+' '\n' <<< "$aobj" | sort | paste -sd+)" "$uid category"
done < <(tail -n +2 "$T/metadata.csv")
first=$(sed -n 2p "$T/metadata.csv" | cut -d, -f2)
expect_eq "$(q "SELECT path || ',' || released || ',' || unknown_pixels FROM masks m JOIN videos v ON v.id = m.video_id WHERE uid='$first' AND k=1")" \
  "masks/$first/1.png,released/$first/masks/1.png,3" "planted unknown pixels counted"
expect_eq "$(q "SELECT sum(unknown_pixels) FROM masks")" 3 "no other unknown pixels"
expect_eq "$(q "SELECT count(*) FROM v_seconds WHERE mask_kind = 'binary'")" 0 "no binary masks"
expect_eq "$(q "SELECT DISTINCT width || 'x' || height || ',' || src_width || 'x' || src_height FROM videos")" "224x224,64x48" "model copy 224x224 of 64x48 frames"
expect_eq "$(q "SELECT count(*) FROM seconds WHERE flags != 8")" 0 "seconds flagged imported, with audio"
a=$(q "SELECT audio FROM seconds LIMIT 1")
expect_eq "$(stat -c %s "$s/$a")" 32044 "audio second: 16000 s16 samples"
# Unchanged tree: nothing redone, classes untouched.
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" --avsbench "$T")
case $out in *'"ingested":0,"unchanged":6'*) ;; *) fail "re-run did work: $out" ;; esac
# A changed label is noticed: that video alone is redone.
v2=$(grep ',v2$' "$T/metadata.csv" | head -n 1 | cut -d, -f2)
cp "$T/v1s/$first/labels_rgb/0.png" "$T/v2/$v2/labels_rgb/4.png"
touch -d '+1 min' "$T/v2/$v2/labels_rgb/4.png"
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" --avsbench "$T" 2>/dev/null)
case $out in *'"ingested":1,'*) ;; *) fail "changed label not redone: $out" ;; esac
expect_eq "$(q "SELECT unknown_pixels FROM masks m JOIN videos v ON v.id = m.video_id WHERE uid='$v2' AND k=5")" 3 "changed label re-imported"
# --shard + merge keeps the class table, the class masks and the released copies.
for i in 0 1; do "$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/sh$i" --shard $i/2 --avsbench "$T" 2>/dev/null; done
"$AVS_BIN/avs-ingest" -q merge --root "$AVS_TMP/merged" "$AVS_TMP/sh0" "$AVS_TMP/sh1"
mq() { sqlite3 "$AVS_TMP/merged/avs.db" "$1"; }
expect_eq "$(mq "SELECT count(*) FROM classes") $(mq "SELECT count(*) || ',' || count(released) || ',' || sum(kind = 'class') FROM masks")" \
  "$(q "SELECT count(*) FROM classes") $(q "SELECT count(*) || ',' || count(released) || ',' || sum(kind = 'class') FROM masks")" "merged shards: classes and masks"
diff -r "$s/released" "$AVS_TMP/merged/released" > /dev/null || fail "merged shards: released copies differ"
# PIL cross-check at the default size and at an odd one (downscaled, other aspect).
if /usr/bin/python3 tests/gen/avss_check.py "$s" "$T" > "$AVS_TMP/pil" 2>&1; then
  expect_eq ok ok "PIL cross-check 224x224"
  "$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/odd" --size 50x37 --avsbench "$T" 2>/dev/null
  /usr/bin/python3 tests/gen/avss_check.py "$AVS_TMP/odd" "$T" > "$AVS_TMP/pil" 2>&1
  expect_eq "$?" 0 "PIL cross-check 50x37: $(tail -n 3 "$AVS_TMP/pil")"
elif [ $? -eq 77 ]; then
  echo "SKIP (part): PIL cross-check: $(cat "$AVS_TMP/pil")"
else
  fail "PIL cross-check: $(tail -n 5 "$AVS_TMP/pil")"
fi
finish
