#!/bin/bash
# avs-features merge and --rebuild (DESIGN §8), random-init b0 on 4 clips of 2 s, --flip:
# - cluster shards: `avs-ingest --shard i/2` into two stores, avs-features on each, then
#   `avs-ingest merge` + `avs-features merge` equal one run on one store: the same entries
#   (uid, k, flipped, CC, CC-V) and the same record bytes; so do `avs-features --shard i/2` on two
#   copies of one store; a merge run again copies nothing; merges killed with -9 and run again
#   end in the same set, no row past the file's end;
# - errors: another configuration under the set name, a source without the set, a video the
#   destination does not have (exit 2, named), the destination itself as a source;
# - --rebuild: a set with a stale cache version is refused with a message naming --rebuild, and
#   rebuilt gives the same file bytes; --rebuild with other options is refused.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3 md5sum
F="$AVS_BIN/avs-features"; I="$AVS_BIN/avs-ingest"
d=$AVS_TMP/in; mkdir -p "$d"
for i in 1 2 3 4; do
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=320x240:rate=25,hue=h=$((i * 50))" \
    -f lavfi -i "sine=frequency=$((300 + 90 * i)):sample_rate=22050" -t 2 -c:v libx264 \
    -pix_fmt yuv420p -c:a aac -shortest "$d/clip$i.mp4" || fail "fixture clip $i"
done
feat() { "$F" -q -j 2 --random-init 1 --flip --set s "$@"; }
"$I" -q -j 2 --size 64x64 --root "$AVS_TMP/base" "$d" || fail "ingest"
cp -a "$AVS_TMP/base" "$AVS_TMP/ref"
feat --root "$AVS_TMP/ref"; expect_eq $? 0 "single run"

# entries and record bytes of set s in a store, one line per record, sorted
records() {
  local r=$1 path rb
  path=$(sqlite3 "$r/avs.db" "SELECT path FROM feature_sets WHERE name = 's'")
  # record size: 64-byte header, u64 record_bytes at byte 24; the fields without the record's
  # trailing checksum, which is seeded with its offset (features/cache.h)
  rb=$(( $(od -An -t u8 -j 24 -N 8 "$r/$path" | tr -d ' ') - 8 ))
  sqlite3 -separator ' ' "$r/avs.db" "SELECT v.uid, e.k, e.flipped, e.target, e.target_v, e.offset
      FROM feature_entries e JOIN videos v ON v.id = e.video_id JOIN feature_sets s ON s.id = e.set_id
      WHERE s.name = 's' ORDER BY v.uid, e.k, e.flipped" |
  while read -r uid k fl t tv off; do
    echo "$uid $k $fl $t $tv $(tail -c +$((off + 1)) "$r/$path" | head -c "$rb" | md5sum | cut -c1-32)"
  done
}
ref=$(records "$AVS_TMP/ref")
expect_eq "$(echo "$ref" | wc -l)" 16 "reference: 4 videos x 2 s x 2 flips"
past_end() {  # rows naming a record past the end of the file
  local r=$1 path size rb
  path=$(sqlite3 "$r/avs.db" "SELECT path FROM feature_sets WHERE name = 's'")
  [ -n "$path" ] && [ -s "$r/$path" ] || { sqlite3 "$r/avs.db" "SELECT count(*) FROM feature_entries"; return; }
  size=$(stat -c %s "$r/$path"); rb=$(od -An -t u8 -j 24 -N 8 "$r/$path" | tr -d ' ')
  sqlite3 "$r/avs.db" "SELECT count(*) FROM feature_entries WHERE offset + $rb > $size"
}

# ---- shards by ingest: each shard its own store, features there, then both merges ----
for i in 0 1; do
  "$I" -q -j 2 --size 64x64 --root "$AVS_TMP/s$i" --shard $i/2 "$d" || fail "ingest shard $i"
  feat --root "$AVS_TMP/s$i"; expect_eq $? 0 "features on shard store $i"
done
"$I" -q merge --root "$AVS_TMP/m" "$AVS_TMP/s0" "$AVS_TMP/s1" || fail "avs-ingest merge"
cp -a "$AVS_TMP/m" "$AVS_TMP/m0"   # the merged store before its features (for the kill test)
t0=$(date +%s.%N)
out=$("$F" --json merge --root "$AVS_TMP/m" --set s "$AVS_TMP/s0" "$AVS_TMP/s1"); expect_eq $? 0 "merge"
dur=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')  # kills below land inside a merge
case $out in *'"videos": 4, "merged": 4, "unchanged": 0, "failed": 0, "records": 16'*) ;; *) fail "merge summary: $out" ;; esac
expect_eq "$(records "$AVS_TMP/m")" "$ref" "merged shards (by ingest) == one run"
expect_eq "$(sqlite3 "$AVS_TMP/m/avs.db" "SELECT status, random_init, version FROM feature_sets WHERE name = 's'")" \
  "complete|1|2" "merged set row"
expect_eq "$(sqlite3 "$AVS_TMP/m/avs.db" "SELECT config FROM feature_sets WHERE name = 's'")" \
  "$(sqlite3 "$AVS_TMP/ref/avs.db" "SELECT config FROM feature_sets WHERE name = 's'")" "merged set config"
size=$(stat -c %s "$AVS_TMP/m/features/s.bin")
out=$("$F" --json merge --root "$AVS_TMP/m" --set s "$AVS_TMP/s0" "$AVS_TMP/s1"); expect_eq $? 0 "merge again"
case $out in *'"merged": 0, "unchanged": 4'*) ;; *) fail "second merge did work: $out" ;; esac
expect_eq "$(stat -c %s "$AVS_TMP/m/features/s.bin")" "$size" "second merge appended nothing"

# ---- shards by avs-features --shard on copies of one store ----
for i in 0 1; do
  cp -a "$AVS_TMP/base" "$AVS_TMP/c$i"
  feat --root "$AVS_TMP/c$i" --shard $i/2; expect_eq $? 0 "features --shard $i/2"
done
[ "$(sqlite3 "$AVS_TMP/c0/avs.db" "SELECT count(*) FROM feature_entries")" -gt 0 ] || fail "shard 0 computed nothing"
[ "$(sqlite3 "$AVS_TMP/c0/avs.db" "SELECT status FROM feature_sets")" = building ] || fail "a shard's set should be building"
cp -a "$AVS_TMP/base" "$AVS_TMP/c"
"$F" -q merge --root "$AVS_TMP/c" --set s "$AVS_TMP/c0" "$AVS_TMP/c1"; expect_eq $? 0 "merge --shard sets"
expect_eq "$(records "$AVS_TMP/c")" "$ref" "merged --shard sets == one run"

# ---- killed merges, then one to the end ----
killed=0; rows=""
for frac in 0.3 0.4 0.5 0.55 0.6 0.65 0.7 0.75 0.8 0.85 0.9 0.95; do
  delay=$(awk -v d="$dur" -v f=$frac 'BEGIN { print d * f }')
  "$F" -q merge --root "$AVS_TMP/m0" --set s "$AVS_TMP/s0" "$AVS_TMP/s1" & pid=$!
  sleep $delay; kill -9 $pid 2>/dev/null && killed=$((killed + 1)); wait $pid 2>/dev/null
  rows="$rows $(sqlite3 "$AVS_TMP/m0/avs.db" "SELECT count(*) FROM feature_entries")"
  expect_eq "$(past_end "$AVS_TMP/m0")" 0 "no row past the end after a kill at $delay s"
done
echo "killed $killed merges (a full one took $dur s); rows in after each kill:$rows"
"$F" -q merge --root "$AVS_TMP/m0" --set s "$AVS_TMP/s0" "$AVS_TMP/s1"; expect_eq $? 0 "merge after kills"
expect_eq "$(records "$AVS_TMP/m0")" "$ref" "killed merges, then one: == one run"
expect_eq "$(find "$AVS_TMP/m0" -name '*.tmp.*' | wc -l)" 0 "no temp files"

# ---- errors ----
cp -a "$AVS_TMP/base" "$AVS_TMP/other"
"$F" -q -j 2 --random-init 2 --flip --set s --root "$AVS_TMP/other" --split nothing 2>/dev/null
sqlite3 "$AVS_TMP/other/avs.db" "SELECT count(*) FROM feature_sets WHERE name = 's'" | grep -q 1 ||
  fail "setup: a set s with another seed"
"$F" merge --root "$AVS_TMP/m" --set s "$AVS_TMP/other" 2> "$AVS_TMP/e"; expect_eq $? 3 "another configuration"
grep -q "another configuration" "$AVS_TMP/e" || fail "config message: $(cat "$AVS_TMP/e")"
"$F" merge --root "$AVS_TMP/m" --set nope "$AVS_TMP/s0" 2> "$AVS_TMP/e"; expect_eq $? 3 "no such set in the source"
grep -q 'no feature set "nope"' "$AVS_TMP/e" || fail "missing set message: $(cat "$AVS_TMP/e")"
"$F" merge --root "$AVS_TMP/m" --set s "$AVS_TMP/m" 2> "$AVS_TMP/e"; expect_eq $? 3 "destination as source"
"$F" merge --root "$AVS_TMP/m" --set s "$AVS_TMP/nowhere" 2> "$AVS_TMP/e"; expect_eq $? 3 "missing source store"
grep -q "no index" "$AVS_TMP/e" || fail "missing store message: $(cat "$AVS_TMP/e")"
"$F" merge --root "$AVS_TMP/m" 2>/dev/null; expect_eq $? 1 "merge without --set"
cp -a "$AVS_TMP/s1" "$AVS_TMP/only1"; rm -f "$AVS_TMP/only1/features/s.bin"
sqlite3 "$AVS_TMP/only1/avs.db" "DELETE FROM feature_sets"
"$F" merge --root "$AVS_TMP/only1" --set s "$AVS_TMP/s0" "$AVS_TMP/s1" 2> "$AVS_TMP/e"
expect_eq $? 2 "videos the destination lacks"
expect_eq "$(grep -c "is not in the destination store" "$AVS_TMP/e")" \
  "$(sqlite3 "$AVS_TMP/s0/avs.db" "SELECT count(*) FROM videos")" "each missing video named"
expect_eq "$(sqlite3 "$AVS_TMP/only1/avs.db" "SELECT count(*) FROM feature_entries")" \
  "$(sqlite3 "$AVS_TMP/s1/avs.db" "SELECT count(*) FROM feature_entries")" "the videos it has merged"

# ---- --rebuild ----
r=$AVS_TMP/ref; sum=$(md5sum < "$r/features/s.bin")
sqlite3 "$r/avs.db" "UPDATE feature_sets SET version = 0 WHERE name = 's'"
printf '\000' | dd of="$r/features/s.bin" bs=1 seek=8 conv=notrunc status=none   # header: v0
feat --root "$r" 2> "$AVS_TMP/e"; expect_eq $? 3 "a stale set is refused"
grep -q "need v2: run avs-features --rebuild --set s" "$AVS_TMP/e" || fail "stale message: $(cat "$AVS_TMP/e")"
"$F" dump --root "$r" --set s --video clip1 --k 1 --out "$AVS_TMP/x.st" 2> "$AVS_TMP/e"
grep -q -- "--rebuild" "$AVS_TMP/e" || fail "reader's stale message: $(cat "$AVS_TMP/e")"
"$F" -q -j 2 --random-init 2 --flip --set s --root "$r" --rebuild 2> "$AVS_TMP/e"
expect_eq $? 3 "--rebuild with other options"
grep -q "another configuration" "$AVS_TMP/e" || fail "rebuild config message: $(cat "$AVS_TMP/e")"
feat --root "$r" --rebuild; expect_eq $? 0 "--rebuild"
expect_eq "$(sqlite3 "$r/avs.db" "SELECT version, status FROM feature_sets WHERE name = 's'")" "2|complete" "rebuilt row"
expect_eq "$(md5sum < "$r/features/s.bin")" "$sum" "rebuilt file == the original run's"
expect_eq "$(records "$r")" "$ref" "rebuilt entries"
"$F" dump --root "$r" --set s --video clip1 --k 2 --flipped --out "$AVS_TMP/x.st"; expect_eq $? 0 "rebuilt set is readable"
finish
