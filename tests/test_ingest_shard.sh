#!/bin/bash
# Cluster sharding (DESIGN §8): two shards (--shard 0/2, 1/2) into their own stores, then
# `avs-ingest merge` into one store equals a single run; merging again changes nothing; a merge
# killed mid-way and run again ends in the same store; a uid clash is reported, not merged.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3 md5sum
d=$AVS_TMP/in; mkdir -p "$d/x" "$d/y"
for i in 1 2 3 4 5; do
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=320x180:rate=25,hue=h=$((i * 60))" \
    -f lavfi -i "sine=frequency=$((200 + 50 * i)):sample_rate=22050" -t $((1 + i % 3)) \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$d/$([ $i -le 2 ] && echo x || echo y)/c$i.mp4" || fail "fixture"
done
echo "not a clip" > "$d/y/bad.mp4"
run() { "$AVS_BIN/avs-ingest" -q "$@"; }
run --root "$AVS_TMP/ref" "$d"; expect_eq $? 2 "single run (one bad input)"
run --root "$AVS_TMP/s0" --shard 0/2 "$d"
run --root "$AVS_TMP/s1" --shard 1/2 "$d"
n0=$(sqlite3 "$AVS_TMP/s0/avs.db" "SELECT count(*) FROM videos"); n1=$(sqlite3 "$AVS_TMP/s1/avs.db" "SELECT count(*) FROM videos")
expect_eq "$((n0 + n1))" 6 "shards split the inputs"
[ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] || fail "a shard is empty ($n0, $n1)"
dump() {
  sqlite3 "$1/avs.db" "SELECT uid, category, status, seconds, has_audio, ifnull(error, '') FROM v_videos ORDER BY uid;
                       SELECT uid, k, frame, audio, mask FROM v_seconds ORDER BY uid, k;
                       SELECT uid, k, flags FROM seconds JOIN videos ON videos.id = video_id ORDER BY uid, k"
}
files() { (cd "$1" && find frames audio masks -type f 2>/dev/null | sort | xargs -r md5sum); }
run merge --root "$AVS_TMP/m" "$AVS_TMP/s0" "$AVS_TMP/s1"; expect_eq $? 2 "merge exit (the bad input stays failed)"
expect_eq "$(dump "$AVS_TMP/m")" "$(dump "$AVS_TMP/ref")" "merged index equals a single run"
expect_eq "$(files "$AVS_TMP/m")" "$(files "$AVS_TMP/ref")" "merged files equal a single run"
out=$(run --json merge --root "$AVS_TMP/m" "$AVS_TMP/s0" "$AVS_TMP/s1")
case $out in *'"merged":0,"unchanged":6'*) ;; *) fail "second merge did work: $out" ;; esac
# Killed merges, then one to the end.
killed=0
for delay in 0.005 0.01 0.02 0.04; do
  "$AVS_BIN/avs-ingest" -q merge --root "$AVS_TMP/k" "$AVS_TMP/s0" "$AVS_TMP/s1" & pid=$!
  sleep $delay; kill -9 $pid 2>/dev/null && killed=$((killed + 1)); wait $pid 2>/dev/null
done
echo "killed $killed merges"
run merge --root "$AVS_TMP/k" "$AVS_TMP/s0" "$AVS_TMP/s1"
expect_eq "$(dump "$AVS_TMP/k")" "$(dump "$AVS_TMP/ref")" "index after killed merges"
expect_eq "$(files "$AVS_TMP/k")" "$(files "$AVS_TMP/ref")" "files after killed merges"
expect_eq "$(find "$AVS_TMP/k" -name '*.tmp.*' | wc -l)" 0 "no temp files after killed merges"
# A clash: another store holding uid c1 from a different source.
mkdir -p "$AVS_TMP/other"; cp "$d/x/c1.mp4" "$AVS_TMP/other/c1.mp4"
run --root "$AVS_TMP/s2" "$AVS_TMP/other"
run merge --root "$AVS_TMP/m" "$AVS_TMP/s2" 2> "$AVS_TMP/e"; expect_eq $? 2 "clash exit status"
expect_eq "$(sqlite3 "$AVS_TMP/m/avs.db" "SELECT source FROM videos WHERE uid='c1'")" "$d/x/c1.mp4" "clash did not replace c1"
run merge --root "$AVS_TMP/m" "$AVS_TMP/nowhere" 2> "$AVS_TMP/e"; expect_eq $? 3 "missing shard store"
grep -q "no index" "$AVS_TMP/e" || fail "missing shard message: $(cat "$AVS_TMP/e")"
finish
