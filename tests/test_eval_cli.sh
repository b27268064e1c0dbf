#!/bin/bash
# tests/test_eval_cli.sh: avs-eval as a program: exit codes, JSON numbers against the golden
# file (official algorithm, tests/gen/eval_golden.py), missing and bad frames, --record.
set -u
FIX=$PWD/tests/fixtures/eval
E=$AVS_BIN/avs-eval
T=$AVS_TMP
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 shell not installed (bash scripts/deps.sh)"; exit 77; }
# json_extract through the sqlite3 shell: jget FILE PATH
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6) }'; }

$E --help | grep -q -- '--group-frames' && ok "help" || bad "help"
$E --version | grep -q '^avs-eval ' && ok "version" || bad "version"
$E --gt "$FIX/s4/gt" >/dev/null 2>&1; [ $? -eq 1 ] && ok "no --pred is a usage error" || bad "usage exit"
$E --gt "$FIX/s4/gt" --pred "$FIX/s4/pred" --shard 0/2 >/dev/null 2>&1; [ $? -eq 1 ] && ok "--shard refused" || bad "--shard"
$E --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --switches XX --record m >/dev/null 2>&1
[ $? -eq 1 ] && ok "unknown switch refused" || bad "unknown switch"

for g in video 5 20; do
  opt=""; [ $g != video ] && opt="--group-frames $g"
  $E -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" $opt --json "$T/s4_$g.json" > "$T/s4_$g.txt"
  [ $? -eq 0 ] || bad "s4 run $g"
  for k in miou fscore dataset_iou; do
    got=$(jget "$T/s4_$g.json" "\$.$k"); want=$(jget "$FIX/golden.json" "\$.s4.\"$g\".$k")
    near "$got" "$want" && ok "s4 $g $k $got" || bad "s4 $g $k: got $got want $want"
  done
  grep -q "grouping: " "$T/s4_$g.txt" && ok "text states the grouping" || bad "grouping line"
done
[ "$(jget "$T/s4_video.json" '$.group_frames')" = "" ] && ok "group_frames null per video" || bad "group_frames"
[ "$(jget "$T/s4_20.json" '$.group_frames')" = "20" ] && ok "group_frames 20" || bad "group_frames 20"
[ "$(jget "$T/s4_video.json" '$.per_class.dog.frames')" = "8" ] && ok "per_class.dog.frames" || bad "per_class"
got=$(jget "$T/s4_20.json" '$.per_class.guitar.fscore'); want=$(jget "$FIX/golden.json" '$.s4_class.guitar."20".fscore')
near "$got" "$want" && ok "per-class F, 20-frame groups" || bad "per-class F: $got vs $want"

# MS3: palette GT, 0-based predictions, JSON to stdout
$E -q --pred "$FIX/ms3/pred" --gt "$FIX/ms3/gt" --json - > "$T/ms3.out" || bad "ms3 run"
cp "$T/ms3.out" "$T/ms3.json"
head -c1 "$T/ms3.json" | grep -q '{' && ok "--json - prints only JSON" || bad "--json - output"
got=$(jget "$T/ms3.json" '$.fscore'); want=$(jget "$FIX/golden.json" '$.ms3.video.fscore')
near "$got" "$want" && ok "ms3 F" || bad "ms3 F: $got vs $want"
[ "$(jget "$T/ms3.json" '$.subset')" = ms3 ] && ok "ms3 detected" || bad "ms3 subset"

# missing predictions: listed by name, exit 3; --allow-missing counts them
cp -r "$FIX/s4/pred" "$T/pred"
rm "$T/pred/dog/dog_a/dog_a_2.png" "$T/pred/guitar/guitar_a/guitar_a_5.logits"
$E --pred "$T/pred" --gt "$FIX/s4/gt" > /dev/null 2> "$T/miss.err"; rc=$?
[ $rc -eq 3 ] && ok "missing -> exit 3" || bad "missing exit $rc"
grep -q "dog_a_2.png" "$T/miss.err" && grep -q "guitar_a_5" "$T/miss.err" && ok "missing frames named" \
  || { bad "missing names"; cat "$T/miss.err"; }
$E -q --pred "$T/pred" --gt "$FIX/s4/gt" --allow-missing --json "$T/m.json" > "$T/m.txt"; rc=$?
[ $rc -eq 0 ] && [ "$(jget "$T/m.json" '$.missing_frames')" = 2 ] && grep -q "MISSING" "$T/m.txt" \
  && ok "--allow-missing" || bad "--allow-missing rc=$rc"

# an unreadable PNG: exit 2, named, others evaluated, nothing recorded
cp -r "$FIX/s4/pred" "$T/pred2"
echo "garbage" > "$T/pred2/dog/dog_b/dog_b_1.png"
$E --pred "$T/pred2" --gt "$FIX/s4/gt" --root "$T/store" --record broken > "$T/b.txt" 2> "$T/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "dog_b_1.png" "$T/b.err" && grep -q "32 frames" "$T/b.txt" \
  && ok "bad PNG -> exit 2, named, rest evaluated" || { bad "bad PNG rc=$rc"; cat "$T/b.err"; }
[ ! -f "$T/store/avs.db" ] || [ "$(sqlite3 "$T/store/avs.db" "SELECT count(*) FROM metrics")" = 0 ] \
  && ok "failed run not recorded" || bad "failed run recorded"

# --record into the store
$E -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --root "$T/store" --record "C3N (ours)" \
   --switches AF,CC --backbone pvt_v2_b5+vggish --group-frames 20 > /dev/null || bad "record run"
row=$(sqlite3 "$T/store/avs.db" "SELECT method, split, group_frames, frames,
      json_extract(details, '\$.switches.AF'), json_extract(details, '\$.switches.\"CC-V\"'),
      json_extract(details, '\$.backbone') FROM metrics")
[ "$row" = "C3N (ours)|test|20|33|1|0|pvt_v2_b5+vggish" ] && ok "recorded row" || bad "recorded row: $row"

# DB mode: ground truth from the store index (rows written with SQL), store-layout predictions
S=$T/dbstore
sqlite3 "$T/store/avs.db" "SELECT 1" > /dev/null && cp "$T/store/avs.db" "$S.db" && mkdir -p "$S" && mv "$S.db" "$S/avs.db"
sqlite3 "$S/avs.db" "DELETE FROM metrics; INSERT INTO videos (uid, source, category, subset, split, status)
  VALUES ('-0Ab_cd', '/src/a.mp4', NULL, 'ms3', 'test', 'ok'), ('zz9', '/src/b.mp4', NULL, 'ms3', 'test', 'ok'),
         ('other', '/src/c.mp4', 'x', 's4', 'test', 'ok')"
for v in -0Ab_cd zz9; do
  mkdir -p "$S/masks/$v" "$T/dbpred/$v"
  for k in 1 2 3 4 5; do
    cp -- "$FIX/ms3/gt/test/$v/${v}_$k.png" "$S/masks/$v/$k.png"
    cp -- "$FIX/ms3/pred/$v/${v}_$((k-1)).png" "$T/dbpred/$v/$k.png"
    sqlite3 "$S/avs.db" "INSERT INTO masks (video_id, k, path) VALUES ((SELECT id FROM videos WHERE uid = '$v'), $k, 'masks/$v/$k.png')"
  done
done
$E -q --root "$S" --pred "$T/dbpred" --subset ms3 --json "$T/db.json" > /dev/null || bad "db mode run"
got=$(jget "$T/db.json" '$.fscore'); want=$(jget "$FIX/golden.json" '$.ms3.video.fscore')
near "$got" "$want" && [ "$(jget "$T/db.json" '$.frames')" = 10 ] && ok "DB mode" || bad "DB mode: $got vs $want"
$E -q --db "$S/avs.db" --pred "$T/dbpred" --subset s4 > /dev/null 2> "$T/dbs4.err"; rc=$?
[ $rc -eq 3 ] && grep -q "no ground-truth masks" "$T/dbs4.err" && ok "DB without masks: clear error" \
  || bad "DB s4 rc=$rc"

# --meta orders and restricts the videos as the official CSV does
printf 'name,category,split\npiano_b,piano,test\ndog_a,dog,test\n' > "$T/meta.csv"
$E -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --meta "$T/meta.csv" --json "$T/meta.json" > "$T/meta.txt" 2>&1
[ "$(jget "$T/meta.json" '$.frames')" = 10 ] && [ "$(jget "$T/meta.json" '$.per_video[0].video')" = piano_b ] \
  && ok "--meta" || bad "--meta"

# names that are not UTF-8 (a Latin-1 category and video folder): the JSON stays UTF-8, each
# such byte written %XX
lat=$(printf 'dog_\xe9'); cat1=$(printf 'd\xf6g')
mkdir -p "$T/l1"; cp -r "$FIX/s4/gt" "$FIX/s4/pred" "$T/l1/"
for base in "$T/l1/gt/test" "$T/l1/pred"; do
  mv "$base/dog" "$base/$cat1"; mv "$base/$cat1/dog_a" "$base/$cat1/$lat"
  for f in "$base/$cat1/$lat"/dog_a_*; do mv "$f" "$base/$cat1/$lat/$lat${f##*/dog_a}"; done
done
$E -q --pred "$T/l1/pred" --gt "$T/l1/gt" --json "$T/l1.json" > /dev/null || bad "Latin-1 names: run"
/usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8", errors="strict"))' \
  "$T/l1.json" && ok "Latin-1 names: the JSON is UTF-8" || bad "Latin-1 names: JSON not UTF-8"
[ "$(jget "$T/l1.json" '$.per_class."d%F6g".frames')" = 8 ] && ok "Latin-1 class key encoded" || bad "class key"
[ "$(sqlite3 :memory: "SELECT count(*) FROM json_each(json_extract(readfile('$T/l1.json'), '\$.per_video')) \
     WHERE json_extract(value, '\$.video') = 'dog_%E9'")" = 1 ] && ok "Latin-1 video name encoded" || bad "video name"
# a literal "d%F6g" class folder beside the Latin-1 one: two keys, none repeated
for base in "$T/l1/gt/test" "$T/l1/pred"; do cp -r "$base/$cat1" "$base/d%F6g"; done
$E -q --pred "$T/l1/pred" --gt "$T/l1/gt" --json "$T/l2.json" > /dev/null || bad "two spellings: run"
[ "$(sqlite3 :memory: "SELECT count(DISTINCT key) FROM json_each(json_extract(readfile('$T/l2.json'), '\$.per_class')) \
     WHERE key LIKE 'd%F6g%'")" = 2 ] && ok "one text form, two distinct class keys" || bad "class keys repeat"
$E -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --root "$T/store" --record "$(printf 'C3N \xe9')" 2> "$T/l1.err"; rc=$?
[ $rc -eq 1 ] && grep -q "record 'C3N \\\\xE9'.*not valid UTF-8" "$T/l1.err" && ok "--record not UTF-8: usage error" \
  || bad "--record not UTF-8: exit $rc: $(cat "$T/l1.err")"

exit $fail
