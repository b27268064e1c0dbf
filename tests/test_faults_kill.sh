#!/bin/bash
# SIGKILL (issue 17, 3), the kill loops of test_ingest_resume.sh / test_features_merge.sh
# extended to avs-features and to avs-train's checkpoint writes: killed at several moments,
# then run again. After every kill: a whole index, no row naming a record past the end of the
# feature file, every indexed record equal to an uninterrupted run's, and (once one was
# written) a whole `last` checkpoint. Finished: the feature file's bytes, the entries, the
# checkpoints and the per-epoch numbers equal an uninterrupted run's.
set -u
. tests/lib.sh
need sqlite3 md5sum cmp od
. tests/media.sh
. tests/faults_lib.sh
make_reference

# kill_when EVENT DELAY CMD...: CMD in the background (no shell function: $! must be the
# program itself), watched until the shell function EVENT succeeds (it sees the program's pid
# in $pid; $T/started was touched just before the start, so newer mtimes are the program's),
# then killed -9 DELAY s later; 1 if it was still running then
kill_when() {
  local event=$1 delay=$2; shift 2
  touch "$T/started"; sleep 0.01
  "$@" >/dev/null 2>&1 & pid=$!
  while kill -0 "$pid" 2>/dev/null && ! "$event"; do :; done
  [ "$delay" = 0 ] || sleep "$delay"
  kill -9 "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null; return 1; }
  wait "$pid" 2>/dev/null; return 0
}

# A safetensors file is whole: 8-byte header length, a JSON header, and exactly the bytes its
# data_offsets name after it.
st_whole() {
  local f=$1 hl end
  hl=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
  [ -n "$hl" ] && [ "$hl" -gt 2 ] || return 1
  head -c $((8 + hl)) "$f" | tail -c "$hl" | head -c 1 | grep -q '{' || return 1
  end=$(head -c $((8 + hl)) "$f" | tail -c "$hl" | grep -o '"data_offsets":\[[0-9]*,[0-9]*\]' |
        sed 's/.*,\([0-9]*\)\]/\1/' | sort -n | tail -n 1)
  [ "$(stat -c %s "$f")" = $((8 + hl + ${end:-0})) ]
}

# Start-up (loading the encoder) varies by more than a video's work on a loaded machine, and
# a poll loop beside the run slows it, so the kills are timed from events rather than from a
# reference run's length: "opened", the run's first write to the feature file (its mtime is
# newer than the run's start), or "appended", the file has grown past its size at the run's
# start (a video's records are in), then DELAY s later. A killed run keeps the videos it
# committed and loses those in flight; the schedule below commits about three of the four
# videos in all (one row count per kill in the log), each kill at another point: in a video's
# encoding, between its records' write and their rows' commit, just after.
kills="opened:0.02 appended:0 opened:0 appended:0 opened:0.01"
size0=0
opened() { [ "$s/features/f.bin" -nt "$T/started" ]; }
appended() { sleep 0.002; [ "$(stat -c %s "$s/features/f.bin" 2>/dev/null || echo 0)" -gt "$size0" ]; }

# ---- avs-features ----
s=$T/feat; cp -a "$T/ref" "$s"
killed=0
for kill in $kills; do
  size0=$(stat -c %s "$s/features/f.bin" 2>/dev/null || echo 0)
  kill_when "${kill%:*}" "${kill#*:}" "${FEATURES[@]}" --root "$s" || killed=$((killed + 1))
  echo "features killed ($kill): $(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries") rows"
  check_consistent "$s" "features killed ($kill)" nofiles
  if [ -f "$s/features/f.bin" ]; then
    rb=$(od -An -t u8 -j 24 -N 8 "$s/features/f.bin" | tr -d ' '); sz=$(stat -c %s "$s/features/f.bin")
    expect_eq "$(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries WHERE offset + $rb > $sz")" 0 \
      "features killed ($kill): no row past the end of the file"
  fi
done
echo "features: killed $killed runs; rows after the last kill: $(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries")"
[ "$killed" -ge 4 ] || fail "too few features runs were killed mid-way ($killed)"
features "$s"; expect_eq $? 0 "features after the kills"
check_same "$s" "$T/ref-f" "features killed and re-run"

# ---- avs-train: killed at its checkpoint writes ----
# A run of 3 epochs lasts a fraction of a second, too short to aim at with delays on a loaded
# machine. The kills here follow events instead, on a run of 8 epochs (its own reference):
# each run is watched until it starts a checkpoint (a temp file in runs/a) or has just renamed
# one (last.safetensors newer than the run's start), then killed at once or a few ms later,
# so every kill lands in or just after a checkpoint write: in the write, before the rename,
# between the rename and the index update, or in the best checkpoint's write.
TRAIN+=(--epochs 8)
cp -a "$T/ref-f" "$T/ref-t8"; train "$T/ref-t8" || fail "reference training, 8 epochs"
s=$T/train; cp -a "$T/ref-f" "$s"
# the events: the run's own checkpoint temp file is there, or last.safetensors was renamed
# into place since its start
ckpt_write() { compgen -G "$s/runs/a/.*.tmp.$pid" >/dev/null; }
ckpt_renamed() { [ "$s/runs/a/last.safetensors" -nt "$T/started" ]; }
in_write=0
killed=0; whole=0
# the first run is killed once its first checkpoint (the initial state) is in place
for kill in renamed:0 write:0 renamed:0.003 write:0 renamed:0.01 write:0.001; do
  mode=ckpt_${kill%:*} delay=${kill#*:}
  if [ -n "$(sqlite3 "$s/avs.db" "SELECT 1 FROM runs WHERE name = 'a'")" ]; then
    kill_when "$mode" "$delay" "${TRAIN[@]}" --root "$s" --resume || killed=$((killed + 1))
  else
    kill_when "$mode" "$delay" "${TRAIN[@]}" --root "$s" || killed=$((killed + 1))
  fi
  ckpt_write && in_write=$((in_write + 1))   # the kill left the temp file behind
  expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "train killed ($kill): index integrity"
  if [ -f "$s/runs/a/last.safetensors" ]; then
    n_checks=$((n_checks + 1)); whole=$((whole + 1))
    st_whole "$s/runs/a/last.safetensors" || fail "train killed ($kill): last checkpoint not whole"
  fi
  [ ! -f "$s/runs/a/best.safetensors" ] || st_whole "$s/runs/a/best.safetensors" ||
    fail "train killed ($kill): best checkpoint not whole"
done
echo "train: killed $killed runs at a checkpoint ($in_write with the temp file still there); a whole last checkpoint after $whole kills"
[ "$killed" -ge 5 ] || fail "too few training runs were killed mid-way ($killed)"
[ "$whole" -ge 5 ] || fail "no checkpoint to check after most kills ($whole)"
st_whole "$T/ref-t/runs/a/last.safetensors"; expect_eq $? 0 "the whole-checkpoint check accepts a good file"
head -c 100000 "$T/ref-t/runs/a/last.safetensors" > "$T/cut.safetensors"
st_whole "$T/cut.safetensors"; expect_eq $? 1 "the whole-checkpoint check refuses a cut file"
train "$s" --resume; expect_eq $? 0 "train --resume after the kills"
check_same "$s" "$T/ref-t8" "training killed and resumed"
expect_eq "$(find "$s/runs/a" -name '*.tmp.*' | wc -l)" 0 "no checkpoint temp file left after the resumed run"
finish
