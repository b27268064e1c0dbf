#!/bin/bash
# Crash safety and idempotence: kill -9 avs-ingest at many moments, check after each kill that
# every indexed second's files exist and equal an uninterrupted run's, then finish and compare
# the whole store with that run. Then: an unchanged re-run decodes nothing; a touched file
# is not redone; a replaced file is redone and its stale files removed.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3 md5sum
d=$AVS_TMP/in; ref=$AVS_TMP/ref; s=$AVS_TMP/store; mkdir -p "$d/a" "$d/b"
for i in 1 2 3 4 5 6; do
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=640x360:rate=30,hue=h=$((i * 50))" \
    -f lavfi -i "sine=frequency=$((300 + 40 * i)):sample_rate=44100" -t $((2 + i % 3)) \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$d/$([ $i -le 3 ] && echo a || echo b)/clip$i.mp4" \
    || fail "fixture $i"
done
ingest() { "$AVS_BIN/avs-ingest" -q -j 2 "$@" "$d"; }
ingest --root "$ref" || fail "reference run"
dump() {  # rows that must match between stores (no timestamps, no absolute store paths)
  sqlite3 "$1/avs.db" "SELECT uid, category, status, seconds, has_audio FROM v_videos ORDER BY uid;
                       SELECT uid, k, frame, audio, mask FROM v_seconds ORDER BY uid, k;
                       SELECT uid, k, flags FROM seconds JOIN videos ON videos.id = video_id ORDER BY uid, k"
}
files() { (cd "$1" && find frames audio masks -type f 2>/dev/null | sort | xargs -r md5sum); }
files "$ref" > "$AVS_TMP/ref.md5"
[ "$(wc -l < "$AVS_TMP/ref.md5")" -gt 20 ] || fail "reference store too small"

kills=0
for delay in 0.01 0.03 0.06 0.1 0.15 0.2 0.3 0.45; do
  "$AVS_BIN/avs-ingest" -q -j 1 --root "$s" "$d" & pid=$!
  sleep "$delay"; kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); wait "$pid" 2>/dev/null
  # Invariant: every indexed file exists and is complete (equal to the reference's).
  if [ -f "$s/avs.db" ]; then
    sqlite3 "$s/avs.db" "SELECT frame FROM v_seconds UNION ALL SELECT audio FROM v_seconds" > "$AVS_TMP/indexed" 2>/dev/null || true
    while read -r f; do
      want=$(grep " $f\$" "$AVS_TMP/ref.md5" | cut -d' ' -f1)
      got=$(md5sum < "$s/$f" 2>/dev/null | cut -d' ' -f1)
      [ -n "$want" ] && [ "$want" = "$got" ] || { fail "after kill at ${delay}s: indexed $f missing or incomplete"; break; }
    done < "$AVS_TMP/indexed"
  fi
done
echo "killed $kills runs mid-way"
[ "$kills" -ge 3 ] || fail "too few runs were killed mid-way ($kills): the test did not test"
ingest --root "$s" || fail "resumed run"
expect_eq "$(dump "$s")" "$(dump "$ref")" "index after kills + resume equals an uninterrupted run"
expect_eq "$(files "$s")" "$(cat "$AVS_TMP/ref.md5")" "files after kills + resume"
expect_eq "$(find "$s" -name '*.tmp.*' | wc -l)" 0 "no temp files left"

# Unchanged inputs: no decoding.
t0=$(date +%s.%N); out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" "$d"); t1=$(date +%s.%N)
case $out in *'"ingested":0,"unchanged":6'*) ;; *) fail "re-run did work: $out" ;; esac
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 2) }' || fail "unchanged re-run took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
# Touched (mtime only): hashed, found equal, not redone.
touch "$d/a/clip1.mp4"
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" "$d")
case $out in *'"ingested":0,"unchanged":6'*) ;; *) fail "touched file was redone: $out" ;; esac
# Replaced by other content (shorter): redone, stale seconds removed.
before=$(md5sum < "$s/frames/clip2/1.png")
ffmpeg -v error -nostdin -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -c:v libx264 -pix_fmt yuv420p "$d/a/clip2.mp4"
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" "$d")
case $out in *'"ingested":1,"unchanged":5'*) ;; *) fail "replaced file not redone: $out" ;; esac
expect_eq "$(sqlite3 "$s/avs.db" "SELECT seconds || ',' || has_audio FROM v_videos WHERE uid='clip2'")" "2,0" "replaced clip2 rows"
[ "$before" != "$(md5sum < "$s/frames/clip2/1.png")" ] || fail "clip2 frame 1 not rewritten"
expect_eq "$(ls "$s/frames/clip2" | sort | tr '\n' ' ')" "1.png 2.png " "stale frames of clip2 removed"
expect_eq "$(ls "$s/audio/clip2" | sort | tr '\n' ' ')" "1.wav 2.wav " "stale audio of clip2 removed"
# Other options (size) redo everything.
out=$("$AVS_BIN/avs-ingest" -q --json --size 112x112 --root "$s" "$d")
case $out in *'"ingested":6'*) ;; *) fail "--size change not redone: $out" ;; esac
finish
