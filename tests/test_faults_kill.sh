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
# the reference steps are timed: a whole run's length, for the kill points
ref_run() {
  local step=$1 t0 rc; shift
  t0=$(date +%s.%N); "$@"; rc=$?
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }' > "$T/time-$step"
  return $rc
}
make_reference

# kill_after DELAY PROGRAM ARGS...: PROGRAM in the background (no shell function: $! must
# be the program itself), killed with -9 after DELAY s; 1 if it was still running
kill_after() {
  local delay=$1 pid; shift
  "$@" 2>/dev/null & pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null; return 1; }
  wait "$pid" 2>/dev/null; return 0
}
secs() { local t0; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
at() { awk -v d="$1" -v f="$2" 'BEGIN { print d * f }'; }

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

# Each kill lands at start-up + a share of one whole run's work. A killed run keeps the videos
# it committed (a quarter of the work each) and loses the one in flight: the shares below
# commit about two videos in all, and every run is killed, in another video each time.
shares="0.3 0.1 0.35 0.15 0.2"

# ---- avs-features ----
s=$T/feat; cp -a "$T/ref" "$s"
up=$(secs features "$T/ref-f")   # a finished set: start-up only
full=$(cat "$T/time-features")
killed=0
for sh in $shares; do
  kill_after "$(awk -v u="$up" -v f="$full" -v s="$sh" 'BEGIN { print u + (f - u) * s }')" "${FEATURES[@]}" --root "$s" ||
    killed=$((killed + 1))
  check_consistent "$s" "features killed (share $sh)" nofiles
  if [ -f "$s/features/f.bin" ]; then
    rb=$(od -An -t u8 -j 24 -N 8 "$s/features/f.bin" | tr -d ' '); sz=$(stat -c %s "$s/features/f.bin")
    expect_eq "$(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries WHERE offset + $rb > $sz")" 0 \
      "features killed (share $sh): no row past the end of the file"
  fi
done
echo "features: killed $killed runs (a whole one: $full s, start-up $up s); rows after the last kill: $(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries")"
[ "$killed" -ge 3 ] || fail "too few features runs were killed mid-way ($killed)"
features "$s"; expect_eq $? 0 "features after the kills"
check_same "$s" "$T/ref-f" "features killed and re-run"

# ---- avs-train: each time --resume (or a new start when the run has no row yet) ----
s=$T/train; cp -a "$T/ref-f" "$s"
up=$(secs train "$T/ref-t" --resume)   # a finished run: start-up only
full=$(cat "$T/time-train")
killed=0; whole=0
for sh in 0.03 0.08 0.05 0.1 0.06; do   # an epoch is about a third of the run
  delay=$(awk -v u="$up" -v f="$full" -v s="$sh" 'BEGIN { print u + (f - u) * s }')
  if [ -n "$(sqlite3 "$s/avs.db" "SELECT 1 FROM runs WHERE name = 'a'")" ]; then
    kill_after "$delay" "${TRAIN[@]}" --root "$s" --resume || killed=$((killed + 1))
  else
    kill_after "$delay" "${TRAIN[@]}" --root "$s" || killed=$((killed + 1))
  fi
  expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "train killed (share $sh): index integrity"
  if [ -f "$s/runs/a/last.safetensors" ]; then
    n_checks=$((n_checks + 1)); whole=$((whole + 1))
    st_whole "$s/runs/a/last.safetensors" || fail "train killed (share $sh): last checkpoint not whole"
  fi
  [ ! -f "$s/runs/a/best.safetensors" ] || st_whole "$s/runs/a/best.safetensors" ||
    fail "train killed (share $sh): best checkpoint not whole"
done
echo "train: killed $killed runs (a whole one: $full s, start-up $up s); a whole last checkpoint after $whole kills"
[ "$killed" -ge 3 ] || fail "too few training runs were killed mid-way ($killed)"
[ "$whole" -ge 3 ] || fail "no checkpoint to check after most kills ($whole)"
st_whole "$T/ref-t/runs/a/last.safetensors"; expect_eq $? 0 "the whole-checkpoint check accepts a good file"
head -c 100000 "$T/ref-t/runs/a/last.safetensors" > "$T/cut.safetensors"
st_whole "$T/cut.safetensors"; expect_eq $? 1 "the whole-checkpoint check refuses a cut file"
train "$s" --resume; expect_eq $? 0 "train --resume after the kills"
check_same "$s" "$T/ref-t" "training killed and resumed"
finish
