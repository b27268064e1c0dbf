#!/bin/bash
# test_mpi_features.sh: avs-features and avs-predict (store mode) under mpirun (2 CPU ranks,
# 1 thread each) against 1 process on a tiny synthetic store (64x64, random-init PVTv2-b0):
#   - avs-features: the set's file byte for byte, its feature_entries rows and its feature_sets
#     row equal to 1 process's; the session records world size 2, comm mpi, "cpu, cpu";
#   - avs-predict --record on a trained run: every PNG and .logits byte for byte, the
#     predictions rows and the recorded metrics equal to 1 process's; its session row names
#     the run and records the ranks;
#   - a rank killed (SIGKILL) while avs-features runs (rank 1 held with SIGSTOP once the first
#     video is committed, so the job cannot end before the kill): mpirun ends the job, rank 0 says why, the index is intact with
#     whole videos only, and the same command again finishes the set: file and rows equal to
#     1 process's;
#   - what cannot run as ranks is refused, naming why: avs-features show and --shard,
#     avs-predict --clip.
set -u
. tests/lib.sh
. tests/mpi.sh
need sqlite3 pgrep
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
mpi_need "$B/avs-features"
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 6 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/base" --size 64x64 --avsbench "$T/s4" || fail "ingest"
for d in one two kill; do cp -r "$T/base" "$T/$d"; done
feat=(-q -j 1 --random-init 2 --visual pvt_v2_b0 --flip --set f)
q() { sqlite3 "$T/$1/avs.db" "$2"; }
rows() { q "$1" "SELECT v.uid, e.k, e.flipped, e.offset, e.target, e.target_v FROM feature_entries e
                 JOIN videos v ON v.id = e.video_id ORDER BY v.uid, e.flipped, e.k"; }
setrow() { q "$1" "SELECT name, path, config, version, status, random_init FROM feature_sets"; }
same_set() { # store $1's set f == store one's
  cmp -s "$T/$1/features/f.bin" "$T/one/features/f.bin"; expect_eq "$?" 0 "$2: features/f.bin byte-identical"
  expect_eq "$(rows "$1" | md5sum)" "$(rows one | md5sum)" "$2: feature_entries rows identical"
  expect_eq "$(setrow "$1")" "$(setrow one)" "$2: feature_sets row identical"
}

"$B/avs-features" "${feat[@]}" --root "$T/one"; expect_eq "$?" 0 "features, 1 process"
mpi 2 "$B/avs-features" "${feat[@]}" --root "$T/two"; expect_eq "$?" 0 "features, 2 ranks"
expect_eq "$(rows one | wc -l)" 60 "1 process: 6 videos x 5 s x 2 (flip) rows"
same_set two "2 ranks"
expect_eq "$(q two "SELECT world_size || ' ' || ranks_per_node || ' ' || comm || ' ' || devices FROM sessions
                   WHERE program = 'avs-features'")" "2 2 mpi cpu, cpu" "features session records the ranks"

# avs-predict: one trained run, predicted in two copies of the store
"$B/avs-train" -q -j 1 --root "$T/one" --subset s4 --width 16 --batch 4 --epochs 1 --lr 1e-3 --seed 7 --run r \
  || fail "train"
cp -r "$T/one" "$T/p1"; cp -r "$T/one" "$T/p2"
pred=(-q -j 1 --run r --split train --record --json)
j1=$("$B/avs-predict" "${pred[@]}" --root "$T/p1"); expect_eq "$?" 0 "predict, 1 process"
j2=$(mpi 2 "$B/avs-predict" "${pred[@]}" --root "$T/p2"); expect_eq "$?" 0 "predict, 2 ranks"
expect_eq "${j2//p2/p1}" "$j1" "predict: the same summary (videos, seconds, mIoU, F)"
dir=runs/r/pred-s4-train
expect_eq "$(find "$T/p1/$dir" -name '*.png' | wc -l)" 20 "predict: 4 train videos x 5 PNGs"
diff -r "$T/p1/$dir" "$T/p2/$dir" > /dev/null
expect_eq "$?" 0 "predict: every PNG and .logits byte-identical"
prow() { q "$1" "SELECT v.uid, p.k, p.path FROM predictions p JOIN videos v ON v.id = p.video_id ORDER BY v.uid, p.k"; }
expect_eq "$(prow p2)" "$(prow p1)" "predict: predictions rows identical"
mrow() { q "$1" "SELECT method, miou, fscore, frames FROM metrics ORDER BY id"; }
expect_eq "$(mrow p2)" "$(mrow p1)" "predict: recorded metrics identical"
psession() { q "$1" "SELECT world_size || ' ' || comm || ' ' || devices FROM sessions s JOIN runs r ON r.id = s.run_id
                     WHERE s.program = 'avs-predict' AND r.name = 'r'"; }
expect_eq "$(psession p1)" "1 none cpu" "predict session, 1 process: the run, its device"
expect_eq "$(psession p2)" "2 mpi cpu, cpu" "predict session, 2 ranks: world size, comm, both devices"

# a rank killed mid-run, once the first video is committed; rank 1 is held (SIGSTOP) at once,
# so the job cannot finish before the kill (rank 0 waits for rank 1's next video)
mpi 2 "$B/avs-features" "${feat[@]}" --root "$T/kill" > "$T/kill.out" 2>&1 &
mp=$!
for _ in $(seq 600); do
  [ "$(q kill "SELECT count(*) FROM feature_entries" 2>/dev/null)" -ge 10 ] 2>/dev/null && break
  kill -0 "$mp" 2>/dev/null || break
  sleep 0.02
done
r1=$(mpi_rank_pid "$mp" 1) || { fail "no rank 1 under $mp"; r1=$mp; }
kill -STOP "$r1"
kill -9 "$r1"
wait "$mp"; rc=$?
[ "$rc" -ne 0 ]; expect_eq "$?" 0 "the job ends with an error when a rank dies (exit $rc)"
grep -q "rank 0 of 2: stopped by signal 15 from the launcher: another rank ended" "$T/kill.out"
expect_eq "$?" 0 "rank 0 says why it stops"
grep -q "rank 1 .*exited on signal 9" "$T/kill.out"; expect_eq "$?" 0 "mpirun names the dead rank"
expect_eq "$(q kill "PRAGMA integrity_check")" ok "the index is intact after the kill"
n=$(q kill "SELECT count(*) FROM feature_entries")
[ "$n" -ge 10 ] && [ "$n" -lt 60 ] && [ $((n % 10)) -eq 0 ]
expect_eq "$?" 0 "whole videos committed before the kill, not all ($n rows)"
mpi 2 "$B/avs-features" "${feat[@]}" --root "$T/kill"; expect_eq "$?" 0 "the same command again finishes the set"
same_set kill "killed, run again"

out=$(mpi 2 "$B/avs-features" --root "$T/two" show 2>&1)
echo "$out" | grep -qF "started as 2 ranks: show, dump and clip read one store"; expect_eq "$?" 0 "features show under mpirun refused"
out=$(mpi 2 "$B/avs-features" "${feat[@]}" --root "$T/two" --shard 0/2 2>&1)
echo "$out" | grep -qF -- "--shard i/N with ranks: the ranks already share the videos out"; expect_eq "$?" 0 "--shard under mpirun refused"
out=$(mpi 2 "$B/avs-predict" --root "$T/p2" --run r --clip x.mp4 -o y.mp4 2>&1)
echo "$out" | grep -qF -- "--clip predicts one clip in one process"; expect_eq "$?" 0 "predict --clip under mpirun refused"
finish
