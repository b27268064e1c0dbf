#!/bin/bash
# I/O errors (issue 17, 3): tests/shim/failwrite.so (LD_PRELOAD) makes a write, pwrite or fsync
# fail with EIO or ENOSPC mid-run, in the store's files, in the feature cache, in checkpoints
# and in SQLite's own write-ahead log. Each time: exit 3, a message naming the file ("I/O
# error" / "disk full"), no temp file, a whole index naming whole files; the same command
# without the fault then ends with an uninterrupted run's bytes and rows.
set -u
. tests/lib.sh
need sqlite3 md5sum cmp od ldd
. tests/media.sh
. tests/faults_lib.sh
shim=$(dirname "$B")/tests/shim/failwrite.so
[ -f "$shim" ] || { fail "no $shim: build it with make"; finish; exit 1; }
# A sanitized build wants its runtime first in the preload list (it then calls through ours).
asan=$(ldd "$B/avs-ingest" | awk '/libasan/ { print $3 }')
preload=${asan:+$asan:}$shim
# the reference steps count their writes on the files each case below makes fail
part_ingest=.tmp.; part_features=features/f.bin; part_train=safetensors.tmp.
ref_run() {
  local part_var=part_$1; shift
  AVS_FAIL_PATH=${!part_var} AVS_FAIL_COUNT=$T/count-${part_var#part_} LD_PRELOAD=$preload "$@"
}
make_reference
count() { cat "$T/count-$1" 2>/dev/null || echo 0; }

# faulty PATH_PART AT ERRNO CMD...: CMD with the AT-th counted write on a file whose path has
# PATH_PART failing with ERRNO, and every later one
faulty() {
  local part=$1 at=$2 e=$3; shift 3
  AVS_FAIL_PATH=$part AVS_FAIL_AT=$at AVS_FAIL_ERRNO=$e LD_PRELOAD=$preload "$@"
}
# expect_fault NAME RC ERRFILE WORDS FILE: exit 3 and a message with WORDS naming FILE
expect_fault() {
  expect_eq "$2" 3 "$1: exit status"
  grep -q "$4" "$3" || fail "$1: no '$4' in: $(cat "$3")"
  grep -q "$5" "$3" || fail "$1: the message does not name $5: $(cat "$3")"
  echo "$1: $(cat "$3")"
}

# ---- avs-ingest: the store's files (temp names), EIO at half the writes ----
s=$T/st
n=$(count ingest)
[ "$n" -gt 10 ] || fail "ingest makes only $n counted writes: the shim sees nothing"
faulty $part_ingest $((n / 2)) EIO ingest "$s" 2> "$T/e"; expect_fault "ingest, EIO on a frame/audio file" $? "$T/e" "I/O error" "$s/"
check_consistent "$s" "ingest after EIO"
ingest "$s"; expect_eq $? 0 "ingest re-run"
check_same "$s" "$T/ref" "ingest after EIO"
rm -rf "$s"

# ---- avs-ingest: SQLite's write-ahead log, ENOSPC then EIO (SQLITE_FULL, SQLITE_IOERR) ----
"$B/avs-ingest" -q --root "$s"; expect_eq $? 0 "an empty store (its migrations done)"
faulty avs.db-wal 3 ENOSPC ingest "$s" 2> "$T/e"; expect_fault "ingest, index full" $? "$T/e" "disk full" "$s/avs.db"
check_consistent "$s" "ingest after SQLITE_FULL"
faulty avs.db-wal 2 EIO ingest "$s" 2> "$T/e"; expect_fault "ingest, index I/O error" $? "$T/e" "I/O error" "$s/avs.db"
check_consistent "$s" "ingest after SQLITE_IOERR"
ingest "$s"; expect_eq $? 0 "ingest re-run after index errors"
check_same "$s" "$T/ref" "ingest after index errors"
rm -rf "$s"

# ---- avs-features: the feature cache (pwrite, fsync), EIO at half its calls ----
n=$(count features)
[ "$n" -gt 10 ] || fail "features makes only $n counted writes"
cp -a "$T/ref" "$s"
faulty $part_features $((n / 2)) EIO features "$s" 2> "$T/e"; expect_fault "features, EIO" $? "$T/e" "I/O error" "$s/features/f.bin"
check_consistent "$s" "features after EIO"
features "$s"; expect_eq $? 0 "features re-run"
check_same "$s" "$T/ref-f" "features after EIO"
rm -rf "$s"

# ---- avs-train: checkpoint files, EIO mid-way and on the last fsync ----
n=$(count train)
[ "$n" -gt 4 ] || fail "train makes only $n counted checkpoint writes"
for at in $((n / 2)) $n; do
  rm -rf "$s"; cp -a "$T/ref-f" "$s"
  AVS_FAIL_ONCE=1 faulty $part_train $at EIO train "$s" 2> "$T/e"
  expect_fault "train, EIO at checkpoint call $at of $n" $? "$T/e" "I/O error" "$s/runs/a/"
  expect_eq "$(find "$s" -name '*.tmp.*' | wc -l)" 0 "train: no temp checkpoint left"
  expect_eq "$(sqlite3 "$s/avs.db" "SELECT status FROM runs WHERE name = 'a'")" failed "train: run marked failed"
  train "$s" --resume; expect_eq $? 0 "train --resume after EIO (the kept last checkpoint is valid)"
  check_same "$s" "$T/ref-t" "train after EIO at call $at"
done
finish
