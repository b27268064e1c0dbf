#!/bin/bash
# AVSS bad inputs (docs/avss.md): a metadata row without its folder, a label whose size differs
# from its frame, label2idx.json files that are not a name -> index object with indices
# 0..n-1: each a failed video with a message naming the file and the fix, the rest ingested,
# exit 2. Also: a metadata.csv header without the column names (the release's positions).
set -u
. "$(dirname "$0")/lib.sh"
need sqlite3
media=tests/fixtures/synth/media
G=$AVS_TMP/good
"$AVS_BIN/avs-synth" --media $media --out "$G" --subset avss --videos 3 --size 32x32 --seed 5 -q || fail "synth"
"$AVS_BIN/avs-synth" --media $media --out "$AVS_TMP/small" --subset avss --videos 3 --size 16x16 --seed 5 -q || fail "synth small"
uid_of() { grep ",$1\$" "$2/metadata.csv" | head -n 1 | cut -d, -f2; }

# Tree A: a row without its folder, and a 16x16 label in a 32x32 clip.
A=$AVS_TMP/A; cp -r "$G" "$A"
echo "gone,gone,0,0,dog,test,v1m" >> "$A/metadata.csv"
m=$(uid_of v1m "$A")
cp "$AVS_TMP/small/v1m/$m/labels_rgb/2.png" "$A/v1m/$m/labels_rgb/2.png"
"$AVS_BIN/avs-ingest" --root "$AVS_TMP/sA" --avsbench "$A" 2> "$AVS_TMP/errA"; rc=$?
expect_eq "$rc" 2 "tree A: exit 2"
q() { sqlite3 "$AVS_TMP/$1/avs.db" "$2"; }
expect_eq "$(q sA "SELECT group_concat(status, ',') FROM (SELECT status FROM videos ORDER BY status)")" "failed,failed,ok,ok" "tree A: two failed, the rest ingested"
e=$(q sA "SELECT error FROM videos WHERE uid='gone'")
case $e in *"$A/v1m/gone: no such folder"*"extract the release's v1m archive"*) expect_eq 1 1 "";; *) fail "missing folder message: $e" ;; esac
e=$(q sA "SELECT error FROM videos WHERE uid='$m'")
case $e in *"labels_rgb/2.png: label is 16x16 but its frame is 32x32"*"re-extract"*) expect_eq 1 1 "";; *) fail "size mismatch message: $e" ;; esac
expect_eq "$(q sA "SELECT count(*) FROM seconds JOIN videos ON videos.id = video_id WHERE uid='$m'")" 0 "failed video: no rows"
[ -e "$AVS_TMP/sA/frames/$m" ] || [ -e "$AVS_TMP/sA/released/$m" ] && fail "failed video left files"
grep -q "failed:.*no such folder" "$AVS_TMP/errA" || fail "warning on stderr: $(cat "$AVS_TMP/errA")"
# Still failed and unchanged: not retried, still exit 2.
"$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/sA" --avsbench "$A" 2>/dev/null; expect_eq $? 2 "tree A again: exit 2"

# label2idx.json that is not a name -> index object: every row fails with the reason.
bad_classes() {  # bad_classes NAME JSON EXPECTED-SUBSTRING
  B=$AVS_TMP/$1; cp -r "$G" "$B"; printf '%s' "$2" > "$B/label2idx.json"
  "$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/s$1" --avsbench "$B" 2>/dev/null; rc=$?
  expect_eq "$rc" 2 "$1: exit 2"
  expect_eq "$(q "s$1" "SELECT count(*) || ',' || sum(status = 'failed') FROM videos")" "3,3" "$1: every video failed"
  expect_eq "$(q "s$1" "SELECT count(*) FROM classes")" 0 "$1: no class table"
  e=$(q "s$1" "SELECT error FROM videos LIMIT 1")
  case $e in *"$B/label2idx.json: "*"$3"*"expected one JSON object"*) expect_eq 1 1 "" ;; *) fail "$1 message: $e" ;; esac
}
bad_classes array '["background", "blue_square"]' "not a non-empty JSON object"
bad_classes gap '{"background": 0, "blue_square": 2}' "no class has index 1"
bad_classes dup '{"background": 0, "blue_square": 0}' "index 0 is given to both"
bad_classes str '{"background": 0, "blue_square": "1"}' "of another type"
bad_classes json '{"background": 0,' "not valid JSON"

# Header without the names: uid, split, label at the release's positions 1, 5, 6.
C=$AVS_TMP/C; cp -r "$G" "$C"
sed -i '1s/.*/a,b,c,d,e,f,g/' "$C/metadata.csv"
"$AVS_BIN/avs-ingest" -q --root "$AVS_TMP/sC" --avsbench "$C"; expect_eq $? 0 "positional header"
expect_eq "$(q sC "SELECT count(*) FROM videos WHERE status = 'ok' AND avss_set IS NOT NULL AND split IS NOT NULL")" 3 "positional columns read"
finish
