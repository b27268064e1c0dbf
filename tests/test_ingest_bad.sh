#!/bin/bash
# Bad inputs never stop the run and are never silent: each is recorded as failed with the
# decoder's own message; a clip without audio is ok with has_audio = 0; odd names work;
# the exit status is 2 (some inputs failed); a second avs-ingest on a busy store says so.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3
d=$AVS_TMP/in; s=$AVS_TMP/store; mkdir -p "$d/ünï cödé"
gen() { ffmpeg -v error -nostdin -y "$@" || fail "ffmpeg could not make a fixture: $*"; }
gen -f lavfi -i testsrc2=size=160x120:rate=25 -f lavfi -i sine=sample_rate=44100 -t 3 -c:v libx264 \
    -pix_fmt yuv420p -c:a aac -shortest "$d/ünï cödé/good clip.mp4"
gen -f lavfi -i testsrc2=size=160x120:rate=25 -t 2 -c:v libx264 -pix_fmt yuv420p "$d/silent.mp4"
gen -f lavfi -i sine=sample_rate=44100 -t 2 -c:a aac "$d/audio only.mp4"
: > "$d/empty.mp4"
echo "this is not a video" > "$d/text.mp4"
head -c 200000 /dev/urandom > "$d/random.mkv"
head -c 3000 "$d/ünï cödé/good clip.mp4" > "$d/truncated.mp4"
# corrupted: the clip with a stretch of its media data overwritten
cp "$d/ünï cödé/good clip.mp4" "$d/corrupt.mp4"
size=$(stat -c %s "$d/corrupt.mp4")
dd if=/dev/urandom of="$d/corrupt.mp4" bs=1 seek=$((size / 3)) count=4000 conv=notrunc status=none

"$AVS_BIN/avs-ingest" -q -j 2 --root "$s" "$d" 2> "$AVS_TMP/err"
rc=$?
expect_eq "$rc" 2 "exit status with some failed inputs"
q() { sqlite3 "$s/avs.db" "$1"; }
expect_eq "$(q "SELECT count(*) FROM v_videos")" 8 "every input has a row"
expect_eq "$(q "SELECT status || ',' || has_audio || ',' || seconds FROM v_videos WHERE uid='good clip'")" "ok,1,3" "good clip"
expect_eq "$(q "SELECT category FROM v_videos WHERE uid='good clip'")" "ünï cödé" "category = folder name (unicode)"
expect_eq "$(q "SELECT status || ',' || has_audio || ',' || seconds FROM v_videos WHERE uid='silent'")" "ok,0,2" "no audio stream: ok, has_audio 0"
expect_eq "$(q "SELECT count(*) FROM seconds JOIN videos ON videos.id = video_id WHERE uid='silent' AND flags & 2")" 2 "silent seconds flagged"
for u in "audio only" empty text random truncated; do
  expect_eq "$(q "SELECT status FROM v_videos WHERE uid='$u'")" failed "$u is failed"
  err=$(q "SELECT error FROM v_videos WHERE uid='$u'")
  [ -n "$err" ] || fail "$u: no error message recorded"
  case $err in *"$d"*) ;; *) fail "$u: error does not name the file: $err" ;; esac
  echo "$u: $err"
done
case $(q "SELECT error FROM v_videos WHERE uid='audio only'") in *"no video stream"*) ;; *) fail "audio-only reason" ;; esac
case $(q "SELECT error FROM v_videos WHERE uid='empty'") in *"Invalid data"*|*"End of file"*) ;; *) fail "empty: decoder message missing" ;; esac
case $(q "SELECT error FROM v_videos WHERE uid='truncated'") in *moov*|*"Invalid data"*) ;; *) fail "truncated: decoder message missing" ;; esac
# The corrupted clip is readable: ok, with its decode errors counted (or failed with a reason).
st=$(q "SELECT status || ',' || decode_errors || ',' || n_seconds FROM videos WHERE uid='corrupt'")
echo "corrupt: $st"
case $st in ok,*,3|failed,*) ;; *) fail "corrupt clip: $st" ;; esac
expect_eq "$(q "SELECT count(*) FROM v_seconds WHERE uid IN ('empty','text','random','truncated','audio only')")" 0 "no seconds for failed inputs"
[ -z "$(find "$s" -name '*.tmp.*')" ] || fail "temp files left behind"
[ -f "$s/frames/good clip/3.png" ] && [ -f "$s/audio/good clip/3.wav" ] || fail "files of the good clip"
grep -q "failed" "$AVS_TMP/err" && fail "-q must keep warnings quiet" || true

# Unchanged inputs: nothing decoded, failed ones not retried; exit stays 2.
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" "$d"); rc=$?
expect_eq "$rc" 2 "re-run exit status"
case $out in *'"ingested":0,"unchanged":8'*) ;; *) fail "re-run did work: $out" ;; esac

# A store held by another writer is reported busy (exit 3), and nothing is touched.
exec 9> "$s/.avs-ingest.lock"; flock -n 9 || fail "cannot take the lock for the test"
"$AVS_BIN/avs-ingest" -q --root "$s" "$d" 2> "$AVS_TMP/busy"; rc=$?
exec 9>&-
expect_eq "$rc" 3 "busy store exit status"
grep -q "busy" "$AVS_TMP/busy" || fail "busy message: $(cat "$AVS_TMP/busy")"

# Usage errors exit 1 and say what to do.
"$AVS_BIN/avs-ingest" --size 12 "$d" 2>/dev/null; expect_eq $? 1 "bad --size"
"$AVS_BIN/avs-ingest" --root "$s" "$AVS_TMP/nope" 2>"$AVS_TMP/e"; expect_eq $? 1 "missing input"
grep -q nope "$AVS_TMP/e" || fail "missing input not named"
finish
