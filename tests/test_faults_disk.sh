#!/bin/bash
# Disk full (issue 17, 3): avs-ingest, avs-features, avs-train (checkpoints), avs-predict,
# avs-eval --record and avs-report on a store in a
# small tmpfs (mounted here; needs root, else SKIP) that a filler file leaves too little room:
# each exits 3 with a "disk full" error naming a path in the store, leaves no temp file, a
# whole index (integrity_check) whose every row names a whole file equal to an uninterrupted
# run's; once the filler is gone the same command finishes with the same bytes and rows as an
# uninterrupted run (the checkpoints too, after --resume).
set -u
. tests/lib.sh
need sqlite3 md5sum cmp od
. tests/media.sh
. tests/faults_lib.sh
mnt=$T/mnt; mkdir -p "$mnt"
mount -t tmpfs -o size=24m tmpfs "$mnt" 2> "$T/mount.err" ||
  { echo "SKIP: cannot mount a tmpfs (root needed): $(cat "$T/mount.err")"; exit 77; }
trap 'cd /; umount "$mnt" 2>/dev/null || umount -l "$mnt"' EXIT
make_reference

# fill(ROOM): a filler file leaves about ROOM KiB free in the tmpfs
fill() {
  local avail
  rm -f "$mnt/filler"
  avail=$(df --output=avail -k "$mnt" | tail -n 1)
  [ "$avail" -gt "$1" ] || { fail "tmpfs too small: $avail KiB free, want more than $1"; return; }
  head -c $(((avail - $1) * 1024)) /dev/zero > "$mnt/filler"
}
kib() { du -sk --apparent-size "$@" | awk '{ s += $1 } END { print s }'; }
# expect_full NAME RC ERRFILE: exit 3 and a disk full message naming the tmpfs
expect_full() {
  expect_eq "$2" 3 "$1: exit status on a full disk"
  grep -q "disk full" "$3" || fail "$1: no 'disk full' in: $(cat "$3")"
  grep -q "$mnt" "$3" || fail "$1: the message names no path in the store: $(cat "$3")"
  ! grep -q "/proc/self/fd" "$3" || fail "$1: the message shows a descriptor path: $(cat "$3")"
}

# ---- avs-ingest: room for about half of the store's files ----
s=$mnt/st
fill $(($(kib "$T/ref/frames" "$T/ref/audio" "$T/ref/masks") / 2))
ingest "$s" 2> "$T/e"; expect_full ingest $? "$T/e"
echo "ingest stopped: $(cat "$T/e")"
n=$(sqlite3 "$s/avs.db" "SELECT count(*) FROM videos" 2>/dev/null || echo 0)
[ "$n" -lt 4 ] || fail "ingest: the disk filled up only after every video ($n rows): the test did not test"
check_consistent "$s" ingest
rm -f "$mnt/filler"
ingest "$s"; expect_eq $? 0 "ingest after space was freed"
check_same "$s" "$T/ref" "ingest after a full disk"
rm -rf "$s"

# ---- avs-features: room for about half of the feature file ----
cp -a "$T/ref" "$s"
fill $(($(kib "$T/ref-f/features/f.bin") / 2))
features "$s" 2> "$T/e"; expect_full features $? "$T/e"
echo "features stopped: $(cat "$T/e")"
n=$(sqlite3 "$s/avs.db" "SELECT count(*) FROM feature_entries")
[ "$n" -lt 20 ] || fail "features: the disk filled up only after every record ($n rows)"
check_consistent "$s" features
if [ -f "$s/features/f.bin" ]; then   # no record past the last indexed one (no partial record)
  rb=$(od -An -t u8 -j 24 -N 8 "$s/features/f.bin" | tr -d ' ')
  do=$(od -An -t u8 -j 32 -N 8 "$s/features/f.bin" | tr -d ' ')
  expect_eq "$(stat -c %s "$s/features/f.bin")" $((do + n * rb)) "features: file holds exactly the indexed records"
fi
rm -f "$mnt/filler"
features "$s"; expect_eq $? 0 "features after space was freed"
check_same "$s" "$T/ref-f" "features after a full disk"
rm -rf "$s"

# ---- avs-train: no room for the first checkpoint (written before the first step) ----
cp -a "$T/ref-f" "$s"
last=$(kib "$T/ref-t/runs/a/last.safetensors"); fill $((last / 3))
train "$s" 2> "$T/e"; expect_full "train, first checkpoint" $? "$T/e"
expect_eq "$(sqlite3 "$s/avs.db" "SELECT status FROM runs WHERE name = 'a'")" failed "train: a run whose first checkpoint failed is marked failed"
sqlite3 "$s/avs.db" "SELECT error FROM runs WHERE name = 'a'" | grep -q "disk full" || fail "train: runs.error says why"
rm -f "$mnt/filler"
train "$s" --resume; expect_eq $? 0 "train --resume of a run that never saved a checkpoint"
check_same "$s" "$T/ref-t" "train after a full disk at the first checkpoint"
mv "$s/features" "$s/features.away"
train "$s" --resume 2> /dev/null && fail "train --resume without its feature cache succeeded"
expect_eq "$(sqlite3 "$s/avs.db" "SELECT status FROM runs WHERE name = 'a'")" done "a failed --resume leaves a finished run 'done'"
mv "$s/features.away" "$s/features"
rm -rf "$s"

# ---- avs-train: room for the first checkpoints, not for the second `last` ----
cp -a "$T/ref-f" "$s"
last=$(kib "$T/ref-t/runs/a/last.safetensors"); best=$(kib "$T/ref-t/runs/a/best.safetensors")
fill $((last + best + last / 3))
train "$s" 2> "$T/e"; expect_full train $? "$T/e"
echo "train stopped: $(cat "$T/e")"
expect_eq "$(find "$s" -name '*.tmp.*' | wc -l)" 0 "train: no temp checkpoint left"
expect_eq "$(sqlite3 "$s/avs.db" "SELECT status FROM runs WHERE name = 'a'")" failed "train: run marked failed"
[ -f "$s/runs/a/last.safetensors" ] || fail "train: no last checkpoint kept"
expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "train: index integrity"
rm -f "$mnt/filler"
train "$s" --resume; expect_eq $? 0 "train --resume after space was freed (the kept checkpoint is valid)"
check_same "$s" "$T/ref-t" "train after a full disk"
rm -rf "$s"

# ---- avs-predict: room for about half of the predictions ----
predict() { "$B/avs-predict" -q -j 2 --root "$1" --run a "${@:2}"; }
pred_files() { (cd "$1/runs/a/pred-s4-test" 2>/dev/null && find . -type f | sort | xargs -r md5sum); }
pred_rows() { sqlite3 "$1/avs.db" "SELECT v.uid, p.k, p.path FROM predictions p JOIN videos v ON v.id = p.video_id ORDER BY v.uid, p.k"; }
cp -a "$T/ref-t" "$T/ref-p"; predict "$T/ref-p" || fail "reference predictions"
cp -a "$T/ref-t" "$s"
# room: the index's shared-memory file (32 KiB) and the session row, then about half the files
fill $((48 + $(kib "$T/ref-p/runs/a/pred-s4-test") / 2))
predict "$s" 2> "$T/e"; expect_full predict $? "$T/e"
echo "predict stopped: $(cat "$T/e")"
expect_eq "$(find "$s" -name '*.tmp.*' | wc -l)" 0 "predict: no temp file left"
expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "predict: index integrity"
# the split's one test video stopped at its second second: rows are recorded per whole video
expect_eq "$(sqlite3 "$s/avs.db" "SELECT count(*) FROM predictions")" 0 "predict: no row for the video cut by the full disk"
n_checks=$((n_checks + 1))
sqlite3 "$s/avs.db" "SELECT path FROM predictions" | while read -r f; do
  [ -f "$s/$f" ] && cmp -s "$s/$f" "$T/ref-p/$f" || { echo "bad"; break; }
done | grep -q bad && fail "predict: a predictions row names a missing or partial file"
rm -f "$mnt/filler"
predict "$s"; expect_eq $? 0 "predict after space was freed"
expect_eq "$(pred_files "$s")" "$(pred_files "$T/ref-p")" "predict after a full disk: files == an uninterrupted run's"
expect_eq "$(pred_rows "$s")" "$(pred_rows "$T/ref-p")" "predict after a full disk: rows == an uninterrupted run's"

# ---- avs-eval --record and avs-report with no room left: nothing half-written ----
fill 0
"$B/avs-eval" -q --root "$s" --pred "$s/runs/a/pred-s4-test" --record m 2> "$T/e"; rc=$?
expect_eq "$rc" 3 "eval --record on a full disk: exit status"
echo "eval --record stopped: $(cat "$T/e")"
grep -q "disk full" "$T/e" || fail "eval --record: the message does not say the disk is full: $(cat "$T/e")"
"$B/avs-report" -q leaderboard --root "$s" -o "$mnt/board.html" 2> "$T/e"; expect_full report $? "$T/e"
[ -e "$mnt/board.html" ] && fail "report: a partial page was left"
expect_eq "$(find "$mnt" -name '*.tmp.*' | wc -l)" 0 "report: no temp file left"
rm -f "$mnt/filler"
expect_eq "$(sqlite3 "$s/avs.db" "SELECT count(*) FROM metrics")" 0 "eval --record: no row recorded"
expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "eval --record: index integrity"
"$B/avs-eval" -q --root "$s" --pred "$s/runs/a/pred-s4-test" --record m > /dev/null; expect_eq $? 0 "eval --record after space was freed"
"$B/avs-report" -q leaderboard --root "$s" -o "$mnt/board.html"; expect_eq $? 0 "report after space was freed"
finish
