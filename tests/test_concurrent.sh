#!/bin/bash
# Concurrent users of one store (issue 17, 4), with real processes:
# - writers of different kinds at once: avs-ingest re-ingesting clips over and over (another
#   --size each pass: every video's rows replaced in one transaction), avs-features computing
#   a second feature set, avs-train training a second run; meanwhile, in a loop, readers:
#   avs-eval, avs-report, avs-predict (which also records its predictions) and a check that
#   every video in the index has all its seconds (whole videos or none); and an sqlite3 shell
#   that holds the index's write lock for a moment, again and again. Every process exits
#   0, no message mentions a locked or busy database, and the readers' results equal the ones
#   made before the writers started;
# - two writers of the same kind (ingest, features on one set, train on one run): the second
#   exits 3 naming the first's program and pid.
set -u
. tests/lib.sh
need ffmpeg sqlite3 cmp diff
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP; st=$T/st
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 4 --seconds 5 --seed 3 \
  --size 64x64 --fps 10 || fail "synth"
mkdir -p "$T/clips/extra"
for i in 1 2 3 4 5 6; do
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=160x120:rate=10,hue=h=$((i * 50))" \
    -f lavfi -i "sine=frequency=$((300 + 40 * i)):sample_rate=16000" -t 3 -c:v libx264 \
    -pix_fmt yuv420p -c:a aac -shortest "$T/clips/extra/c$i.mp4" || fail "clip $i"
done
"$B/avs-ingest" -q -j 2 --root "$st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
clips() { "$B/avs-ingest" -q -j 1 --root "$st" --split extra --size "$1" "$T/clips"; }
clips 64x64 || fail "ingest clips"
feat() { "$B/avs-features" -q -j 1 --root "$st" --random-init 2 --visual pvt_v2_b0 "$@"; }
for sp in train val test; do feat --set f --split $sp || fail "features of the $sp split"; done
train() { "$B/avs-train" -q -j 1 --root "$st" --features f --subset s4 --width 16 --batch 2 --lr 1e-3 --seed 7 "$@"; }
train --run a --epochs 2 || fail "train a"
"$B/avs-predict" -q -j 1 --root "$st" --run a --out "$T/pred-ref" --record || fail "predict"
evaljson() { "$B/avs-eval" -q --root "$st" --pred "$T/pred-ref" --json - | grep -v '"seconds"'; }
evaljson > "$T/eval-ref.json" || fail "eval"
whole_videos() {  # ok videos whose seconds rows are not all there
  sqlite3 -cmd ".timeout 30000" "$st/avs.db" "SELECT count(*) FROM videos v WHERE v.status = 'ok' AND
    v.n_seconds != (SELECT count(*) FROM seconds s WHERE s.video_id = v.id)"
}

# ---- writers of three kinds, readers in a loop ----
( for p in 1 2 3 4 5 6; do
    clips $([ $((p % 2)) = 1 ] && echo 32x32 || echo 64x64) 2>> "$T/w-ingest.err"; echo "$?" >> "$T/w-ingest.rc"
  done ) & w1=$!
( feat --set g --split train 2> "$T/w-feat.err"; echo "$?" > "$T/w-feat.rc" ) & w2=$!
( train --run b --epochs 4 2> "$T/w-train.err"; echo "$?" > "$T/w-train.rc" ) & w3=$!
# and another user of the index (an sqlite3 shell) who holds its write lock for ~0.1 s at a
# time: every program must wait for it (busy timeout), none may fail with "database is locked"
( while kill -0 $w1 2>/dev/null || kill -0 $w2 2>/dev/null || kill -0 $w3 2>/dev/null; do
    sqlite3 -cmd ".timeout 30000" "$st/avs.db" "BEGIN IMMEDIATE; WITH RECURSIVE c(x) AS (SELECT 1
      UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT count(*) FROM c; COMMIT;" > /dev/null
    sleep 0.1
  done ) & w4=$!
rounds=0
while kill -0 $w1 2>/dev/null || kill -0 $w2 2>/dev/null || kill -0 $w3 2>/dev/null || [ $rounds -lt 3 ]; do
  rounds=$((rounds + 1))
  expect_eq "$(whole_videos)" 0 "round $rounds: every indexed video has all its seconds"
  evaljson > "$T/eval.json" 2>> "$T/r.err"; expect_eq $? 0 "round $rounds: avs-eval"
  expect_eq "$(diff "$T/eval-ref.json" "$T/eval.json" | head -n 4)" "" "round $rounds: avs-eval's result"
  "$B/avs-report" leaderboard -q --root "$st" -o "$T/board.html" 2>> "$T/r.err"
  expect_eq $? 0 "round $rounds: avs-report"
  rm -rf "$T/pred"
  "$B/avs-predict" -q -j 1 --root "$st" --run a --out "$T/pred" 2>> "$T/r.err"
  expect_eq $? 0 "round $rounds: avs-predict"
  expect_eq "$(diff -r "$T/pred-ref" "$T/pred" 2>&1 | head -n 2)" "" "round $rounds: avs-predict's output"
done
wait $w1 $w2 $w3 $w4
echo "$rounds reader rounds while the writers ran"
expect_eq "$(sort -u "$T/w-ingest.rc" | tr '\n' ' ')" "0 " "every avs-ingest pass"
expect_eq "$(cat "$T/w-feat.rc")" 0 "avs-features beside the others"
expect_eq "$(cat "$T/w-train.rc")" 0 "avs-train beside the others"
cat "$T"/w-*.err "$T/r.err"
expect_eq "$(cat "$T"/w-*.err "$T/r.err" | grep -ci 'locked\|busy')" 0 "no locked/busy error anywhere"
expect_eq "$(whole_videos)" 0 "every video whole at the end"
expect_eq "$(sqlite3 "$st/avs.db" "PRAGMA integrity_check")" ok "index integrity"
expect_eq "$(sqlite3 "$st/avs.db" "SELECT status FROM runs WHERE name = 'b'")" done "run b done"
expect_eq "$(sqlite3 "$st/avs.db" "SELECT count(*) FROM feature_entries e JOIN feature_sets s ON s.id = e.set_id
  WHERE s.name = 'g'")" 10 "set g: 2 train videos x 5 s"

# ---- two writers of the same kind: the second names the first ----
# The first is stopped (SIGSTOP) once it holds its lock, so that it still holds it, whatever
# the machine's speed, when the second starts; then it goes on and is ended.
# held LOCKFILE PID: wait (at most 20 s) until the process PID holds LOCKFILE, then stop it
held() {
  for _ in $(seq 2000); do
    [ "$(cut -d' ' -f1 "$1" 2>/dev/null)" = "$2" ] && { kill -STOP "$2"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}
second() {  # second NAME LOCKFILE PID CMD...: CMD refused with exit 3, naming PID's program
  local name=$1 lock=$2 pid=$3 prog; shift 3
  prog=$(basename "$1")
  if held "$lock" "$pid"; then
    [ "$name" != train ] || [ -z "$(sqlite3 "$st/avs.db" "SELECT 1 FROM runs WHERE name = 'c'")" ] ||
      set -- "$@" --resume   # the first has recorded the run already
    "$@" 2> "$T/second.err"; expect_eq $? 3 "$name: a second writer exits 3"
    grep -q "$prog (pid $pid)" "$T/second.err" || fail "$name: the message does not name $prog (pid $pid): $(cat "$T/second.err")"
    echo "$name: $(cat "$T/second.err")"
  else
    fail "$name: the first writer never held $lock (or ended first)"
  fi
  kill -CONT "$pid" 2>/dev/null; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
"$B/avs-ingest" -q -j 1 --root "$st" --split extra --size 48x48 "$T/clips" &
second ingest "$st/.avs-ingest.lock" $! "$B/avs-ingest" -q --root "$st" "$T/clips"
"$B/avs-features" -q -j 1 --root "$st" --random-init 2 --set h &
second features "$st/features/.h.lock" $! "$B/avs-features" -q --root "$st" --random-init 2 --set h
"$B/avs-train" -q -j 1 --root "$st" --features f --subset s4 --width 16 --run c --epochs 50 &
second train "$st/runs/c/.lock" $! "$B/avs-train" -q --root "$st" --features f --subset s4 --width 16 --run c --epochs 50
# ---- avs-predict reading a feature set that avs-features extends meanwhile ----
# predict --split train: 2WtnGDiy2jJ, then rU4rce0stzf (by uid). The latter's entries are
# removed, predict is held (its first output's temp file is a FIFO nobody reads) after it has
# mapped the cache, avs-features computes them again (appended past predict's mapping), and
# predict goes on: it must read them as they are now.
"$B/avs-predict" -q -j 1 --root "$st" --run a --split train --out "$T/ptrain-ref" || fail "predict train"
sqlite3 "$st/avs.db" "DELETE FROM feature_entries WHERE video_id = (SELECT id FROM videos WHERE uid = 'rU4rce0stzf')
                      AND set_id = (SELECT id FROM feature_sets WHERE name = 'f')"
d=$T/ptrain/owl/2WtnGDiy2jJ; mkdir -p "$d"
sh -c 'mkfifo "$1/.2WtnGDiy2jJ_1.png.tmp.$$" && shift && exec "$@"' sh "$d" \
  "$B/avs-predict" -q -j 1 --root "$st" --run a --split train --out "$T/ptrain" 2> "$T/p.err" & pid=$!
for _ in $(seq 500); do grep -q "features/f.bin" "/proc/$pid/maps" 2>/dev/null && break; sleep 0.02; done
grep -q "features/f.bin" "/proc/$pid/maps" || fail "avs-predict never mapped the feature cache"
feat --set f --split train; expect_eq $? 0 "features for the removed entries, predict waiting"
cat "$d/.2WtnGDiy2jJ_1.png.tmp.$pid" > /dev/null
wait $pid; expect_eq $? 0 "avs-predict over records appended after it mapped the cache"
[ ! -s "$T/p.err" ] || cat "$T/p.err"
expect_eq "$(diff -r "$T/ptrain-ref/cow" "$T/ptrain/cow" 2>&1 | head -n 2)" "" "the appended records' predictions"

expect_eq "$(sqlite3 "$st/avs.db" "PRAGMA integrity_check")" ok "index integrity at the end"
finish
