#!/bin/bash
# test_names.sh: no write escapes the store (README "Names and confinement"). Every writer is
# tried with hostile names (../../../tmp/x, absolute paths, control characters, very long
# names, '.', '..', names with '/') from a CSV, file names and the command line, and with
# symbolic links planted inside the store that point outside it (frames/<uid>, audio/,
# features/, runs/<run>, a prediction folder). A canary folder around the store, holding the
# links' targets, is listed before and after: nothing may appear or change in it. Each refusal
# must exit with the documented status and a message naming the file/row and the fix.
set -u
. tests/lib.sh
need ffmpeg sqlite3
B=$AVS_BIN; T=$AVS_TMP
C=$T/canary; S=$C/a/b/st          # ../../../tmp/x from S/frames/<uid> lands in $C/a/tmp/x
mkdir -p "$C/outside" "$S"; echo keep > "$C/outside/keep"
echo stale > "$C/outside/old.png.tmp.1"  # ingest sweeps such names in its folders: never here
listing() { find "$C" -path "$C/a/b" -prune -o -printf '%p %y %s %T@\n' | sort; }
before=$(listing)
canary_ok() { expect_eq "$(listing)" "$before" "$1: nothing written outside the store"; }
has() { case $1 in *"$2"*) n_checks=$((n_checks + 1)) ;; *) fail "$3: '$2' not in: $1" ;; esac; }
q() { sqlite3 "$S/avs.db" "$1"; }

# ---- avs-ingest --avsbench: hostile rows fail alone, recorded with their reason -------------
A=$T/AVSBench
"$B/avs-synth" -q --media tests/fixtures/synth/media --out "$A" --subset s4 --videos 4 \
  --seconds 5 --size 64x64 --fps 10 --seed 3 || fail "synth"
frames() {  # frames NAME: released frames of S4 row NAME (split train, category blue_square)
  local p="$A/visual_frames/train/blue_square/$1/$1"; mkdir -p "$(dirname "$p")"
  ffmpeg -v error -nostdin -y -f lavfi -i testsrc2=size=64x64:rate=1 -frames:v 2 "${p//\%/%%}_%d.png" ||
    fail "frames of $1"
}
frames "sub/clip"; frames "sub%2Fclip"; frames "p50%"
long=$(printf 'L%.0s' $(seq 200))
{ printf 'sub/clip,blue_square,train\nsub%%2Fclip,blue_square,train\np50%%,blue_square,train\n'
  printf '../../../tmp/x,blue_square,train\n/abs/x,blue_square,train\n.,blue_square,train\n'
  printf '..,blue_square,train\n"nl\nname",blue_square,train\n"tab\tname",blue_square,train\n'
  printf '%s,blue_square,train\nokcat,../../../tmp/c,train\noksplit,blue_square,../x\n' "$long"
} >> "$A/s4_meta_data.csv"
"$B/avs-ingest" -q --root "$S" --size 64x64 --avsbench "$A" 2> "$T/err"; rc=$?
expect_eq "$rc" 2 "avsbench: hostile rows failed, the rest done"
canary_ok "avs-ingest --avsbench"
expect_eq "$(q "SELECT count(*) FROM videos WHERE status = 'ok' AND subset = 's4'")" 7 "4 synth clips + 2 slashed names + p50% ingested"
expect_eq "$(q "SELECT uid || '|' || name FROM v_videos WHERE name LIKE 'sub%' ORDER BY uid")" \
  "sub%252Fclip|sub%2Fclip
sub%2Fclip|sub/clip" "names with '/' and '%' mapped to distinct safe uids, originals kept"
[ -f "$S/frames/sub%2Fclip/2.png" ] && [ -f "$S/frames/sub%252Fclip/2.png" ] || fail "files of mapped uids"
n_checks=$((n_checks + 1))
expect_eq "$(q "SELECT count(*) FROM videos WHERE status = 'failed' AND uid LIKE 'refused-%'")" 9 "9 refused rows recorded as failed"
for n in '../../../tmp/x' '/abs/x' '.' '..' "$long" okcat oksplit; do
  e=$(q "SELECT error FROM videos WHERE name = '$n'")
  has "$e" "s4_meta_data.csv row" "refused '$n' names the CSV row"
  has "$e" "fix" "refused '$n' says the fix"
done
has "$(q "SELECT error FROM videos WHERE name = '../../../tmp/x'")" "'..' component" "why ../../../tmp/x"
has "$(q "SELECT error FROM videos WHERE name = '/abs/x'")" "absolute path" "why /abs/x"
has "$(q "SELECT error FROM videos WHERE name = '$long'")" "longer than 128" "why the long name"
has "$(q "SELECT error FROM videos WHERE name = 'okcat'")" "category '../../../tmp/c'" "why the category"
has "$(q "SELECT error FROM videos WHERE name = 'oksplit'")" "split '../x'" "why the split"
has "$(q "SELECT group_concat(error) FROM videos WHERE name LIKE 'nl%' OR name LIKE 'tab%'")" "control character" "why control characters"
[ -e "$C/a/tmp" ] && fail "a store file escaped to $C/a/tmp"

# ---- a store of an older version (the name itself was the uid, '%' not encoded): a video
# decoded again keeps its uid and its files' place (no duplicate under 50%25) --------------
S5=$C/a/b/st5; q5() { sqlite3 "$S5/avs.db" "$1"; }
"$B/avs-ingest" -q --root "$S5" --size 64x64 --avsbench "$A" 2> /dev/null
q5 "UPDATE videos SET uid = 'p50%', name = NULL WHERE uid = 'p50%25';
    UPDATE seconds SET frame = replace(frame, 'frames/p50%25/', 'frames/p50%/'),
                       audio = replace(audio, 'audio/p50%25/', 'audio/p50%/');
    UPDATE masks SET path = replace(path, 'masks/p50%25/', 'masks/p50%/')"
for d in frames audio masks; do [ ! -d "$S5/$d/p50%25" ] || mv "$S5/$d/p50%25" "$S5/$d/p50%"; done
"$B/avs-ingest" --root "$S5" --size 48x48 --avsbench "$A" 2> "$T/err"   # all decoded again
has "$(cat "$T/err")" " 0 unchanged" "every video of the older store decoded again"
expect_eq "$(q5 "SELECT group_concat(uid || '|' || ifnull(name, '-') || '|' || status) FROM videos WHERE uid LIKE 'p50%'")" \
  "p50%|-|ok" "the older store's uid kept"
[ -f "$S5/frames/p50%/1.png" ] && [ ! -e "$S5/frames/p50%25" ] || fail "the files stay under frames/p50%"
n_checks=$((n_checks + 1))
canary_ok "avs-ingest of an older store"

# ---- avs-ingest of clip folders: file names mapped or refused -------------------------------
clip=$(find "$A/raw_videos" -name '*.mp4' | head -n 1)
mkdir -p "$T/clips"; cp "$clip" "$T/clips/-dash.mp4"; cp "$clip" "$T/clips/50%.mp4"
cp "$clip" "$T/clips/$(printf 'nl\nname.mp4')"
cp "$clip" "$T/clips/$(printf 'caf\xe9.mp4')"   # a Latin-1 file name: not UTF-8
"$B/avs-ingest" -q --root "$S" --size 64x64 --category clips "$T/clips" 2> "$T/err"; rc=$?
expect_eq "$rc" 2 "clip folder with a newline in a file name: failed alone"
expect_eq "$(q "SELECT group_concat(uid || '|' || name, ' ') FROM (SELECT * FROM videos WHERE status = 'ok' AND category = 'clips' ORDER BY uid)")" \
  "$(printf '%%2Ddash|-dash 50%%25|50%% caf%%E9|caf\xe9')" "leading '-', '%' and a byte of no UTF-8 character encoded"
has "$(q "SELECT error FROM videos WHERE category = 'clips' AND status = 'failed'")" "control character" "newline file name refused"
expect_eq "$(q "SELECT count(*) FROM videos WHERE status = 'failed' AND uid LIKE 'refused-%'")" 10 "the CSV's refused rows kept beside the refused file name"
"$B/avs-ingest" -q --root "$S" --category "$(printf 'a\nb')" "$T/clips" 2> "$T/err"; rc=$?
expect_eq "$rc" 1 "--category with a newline: usage error"
has "$(cat "$T/err")" "--category 'a\\x0Ab'" "the message names the option"
lat=$T/$(printf 'caf\xe9s'); mkdir -p "$lat"; cp "$clip" "$lat/one.mp4"   # a Latin-1 folder
"$B/avs-ingest" -q --root "$S" --size 64x64 "$lat" 2> "$T/err"
expect_eq "$(q "SELECT category FROM videos WHERE source LIKE '%/one.mp4'")" 'caf%E9s' "a Latin-1 folder's name as the category, in UTF-8"
for bad in 'a/b' '-x' '..'; do   # categories name prediction folders
  "$B/avs-ingest" -q --root "$S" --category "$bad" "$T/clips" 2> "$T/err"; rc=$?
  expect_eq "$rc" 1 "--category '$bad': usage error"
done
canary_ok "avs-ingest clip folders"

# ---- links planted inside stores -------------------------------------------------------------
mkdir -p "$T/one"; cp "$clip" "$T/one/evil.mp4"
S2=$C/a/b/st2; mkdir -p "$S2/frames"; ln -s "$C/outside" "$S2/frames/evil"
"$B/avs-ingest" -q --root "$S2" --size 64x64 "$T/one" 2> "$T/err"; rc=$?
expect_eq "$rc" 2 "frames/<uid> -> outside: that video fails"
has "$(sqlite3 "$S2/avs.db" "SELECT error FROM videos WHERE uid = 'evil'")" "frames/evil is a symbolic link inside the store" "the reason names the link"
S3=$C/a/b/st3; mkdir -p "$S3"; ln -s "$C/outside" "$S3/audio"
"$B/avs-ingest" -q --root "$S3" --size 64x64 "$T/one" 2> "$T/err"; rc=$?
expect_eq "$rc" 2 "audio -> outside: the video fails"
has "$(sqlite3 "$S3/avs.db" "SELECT error FROM videos WHERE uid = 'evil'")" "audio is a symbolic link" "the reason names audio/"
S4=$C/a/b/st4; mkdir -p "$S4"; ln -s "$C/outside/evil.db" "$S4/avs.db"
"$B/avs-ingest" -q --root "$S4" --size 64x64 "$T/one" 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "avs.db -> outside: the store is refused"
has "$(cat "$T/err")" "is a symbolic link" "the error names the linked index"
has "$(cat "$T/err")" "--db" "the error says how to name a real index"
canary_ok "avs-ingest into stores with planted links"

# ---- avs-ingest merge: a shard's index is data too ---------------------------------------------
SH=$C/a/b/shard; "$B/avs-ingest" -q --root "$SH" --size 64x64 "$T/clips" 2> /dev/null
sqlite3 "$SH/avs.db" "UPDATE videos SET uid = '../../u' WHERE uid = '%2Ddash'"
"$B/avs-ingest" merge --root "$C/a/b/m1" "$SH" 2> "$T/err"; rc=$?
expect_eq "$rc" 2 "merge: a shard's hostile uid fails alone"
has "$(cat "$T/err")" "uid '../../u'" "the hostile uid named"
sqlite3 "$SH/avs.db" "UPDATE seconds SET frame = '../../m.png' WHERE k = 1"
"$B/avs-ingest" merge -q --root "$C/a/b/m2" "$SH" 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "merge: a shard's hostile file path refused"
has "$(cat "$T/err")" "'..' component" "the path's '..' named"
canary_ok "avs-ingest merge"

# ---- avs-features: set names and a features/ link ---------------------------------------------
feat() { "$B/avs-features" -q --root "$S" --random-init 2 --visual pvt_v2_b0 "$@"; }
for bad in '../x' '/tmp/x' '.' '..' 'a/b' "$(printf 'a\tb')" "$long"; do
  feat --set "$bad" 2> "$T/err"; rc=$?
  expect_eq "$rc" 1 "--set '$bad': usage error"
  has "$(cat "$T/err")" "--set '" "--set '$bad': the message names the option"
done
ln -s "$C/outside" "$S/features"
feat --set f 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "features -> outside: refused"
has "$(cat "$T/err")" "features is a symbolic link inside the store" "features link named"
rm "$S/features"; mkdir "$S/features"; ln -s "$C/outside/keep" "$S/features/f.bin"
feat --set f 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "features/<set>.bin -> outside file: refused"
has "$(cat "$T/err")" "f.bin is a symbolic link" "cache link named"
rm "$S/features/f.bin"
canary_ok "avs-features"
feat --set f || fail "avs-features on the real store"

# ---- avs-train: run names and runs/<run> links -------------------------------------------------
train() { "$B/avs-train" -q --root "$S" --subset s4 --width 8 --batch 2 --epochs 1 --lr 1e-3 --seed 7 "$@"; }
for bad in '../../x' '/tmp/x' '.' '..' 'a/b' '-x' "$(printf 'r\nr')" "$long" "$(printf 'r\xe9')"; do
  train --run "$bad" 2> "$T/err"; rc=$?
  expect_eq "$rc" 1 "--run '$bad': usage error"
  has "$(cat "$T/err")" "--run '" "--run '$bad': the message names the option"
done
mkdir -p "$S/runs"; ln -s "$C/outside" "$S/runs/evil"
train --run evil 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "runs/<run> -> outside: refused"
has "$(cat "$T/err")" "runs/evil is a symbolic link inside the store" "run link named"
expect_eq "$(q "SELECT count(*) FROM runs WHERE name = 'evil'")" 0 "no run recorded"
canary_ok "avs-train"
train --run r1 || fail "a real run"

# ---- avs-predict: run names, a prediction-folder link, hostile names in the index ------------
"$B/avs-predict" -q --root "$S" --run '../r1' 2> "$T/err"; rc=$?
expect_eq "$rc" 1 "predict --run ../r1: usage error"
ln -s "$C/outside" "$S/runs/r1/pred-s4-test"
"$B/avs-predict" -q --root "$S" --run r1 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "runs/r1/pred-s4-test -> outside: refused"
has "$(cat "$T/err")" "pred-s4-test is a symbolic link" "prediction link named"
rm "$S/runs/r1/pred-s4-test"
q "UPDATE videos SET category = '../../x' WHERE split = 'test' AND subset = 's4'"
"$B/avs-predict" -q --root "$S" --run r1 --out "$C/a/b/pred" 2> "$T/err"; rc=$?
expect_eq "$rc" 3 "a hostile category in the index: refused (it would land in $C/a/x)"
has "$(cat "$T/err")" "category in the index '../../x'" "the message names the category"
has "$(cat "$T/err")" "re-ingest" "and says the fix"
canary_ok "avs-predict"
finish
