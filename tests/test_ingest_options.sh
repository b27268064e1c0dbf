#!/bin/bash
# avs-ingest options: --keep-size frames are byte-identical (as RGB) to the ffmpeg CLI's frame
# at the chosen index; --seconds caps; --frame-at timestamp picks the first frame at or after
# (k-1) + 15/16 s; --size resizes; --category/--split label; --db puts the index elsewhere.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3 md5sum
c=$AVS_TMP/clip.mp4
ffmpeg -v error -nostdin -y -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=sample_rate=48000 -t 3 \
  -c:v libx264 -bf 3 -pix_fmt yuv420p -c:a aac -shortest "$c" || fail "fixture"
cli() { ffmpeg -v error -nostdin -i "$c" -vf "select=eq(n\\,$1)" -vsync vfr -frames:v 1 -f rawvideo -pix_fmt rgb24 - | md5sum | cut -d' ' -f1; }
ours() { ffmpeg -v error -nostdin -i "$1" -f rawvideo -pix_fmt rgb24 - | md5sum | cut -d' ' -f1; }
run() { "$AVS_BIN/avs-ingest" -q "$@"; }

run --root "$AVS_TMP/a" --keep-size "$c" || fail "keep-size run"
for k in 1 2 3; do expect_eq "$(ours "$AVS_TMP/a/frames/clip/$k.png")" "$(cli $(( (k - 1) * 30 + 28 )))" "keep-size frame $k = CLI frame"; done
expect_eq "$(sqlite3 "$AVS_TMP/a/avs.db" "SELECT width || 'x' || height || ',' || seconds FROM v_videos")" "320x240,3" "keep-size rows"

run --root "$AVS_TMP/b" --keep-size --seconds 2 --frame-at timestamp "$c" || fail "timestamp run"
expect_eq "$(sqlite3 "$AVS_TMP/b/avs.db" "SELECT seconds FROM v_videos")" 2 "--seconds 2"
expect_eq "$(ls "$AVS_TMP/b/frames/clip" | tr '\n' ' ')" "1.png 2.png " "two frames"
# first frame with t >= 0.9375 s at 30 fps is frame 29 (0.967 s); second: 1.9375 s -> frame 59
expect_eq "$(ours "$AVS_TMP/b/frames/clip/1.png")" "$(cli 29)" "timestamp rule, second 1"
expect_eq "$(ours "$AVS_TMP/b/frames/clip/2.png")" "$(cli 59)" "timestamp rule, second 2"

run --root "$AVS_TMP/c" --db "$AVS_TMP/elsewhere.db" --size 96x64 --category piano --split val "$c" || fail "size run"
expect_eq "$(sqlite3 "$AVS_TMP/elsewhere.db" "SELECT width || 'x' || height || ',' || category || ',' || split FROM v_videos")" \
  "96x64,piano,val" "--size, --category, --split, --db"
[ ! -e "$AVS_TMP/c/avs.db" ] || fail "--db ignored"
"$AVS_BIN/avs-ingest" --help | grep -q -- "--frame-at" || fail "--help"
"$AVS_BIN/avs-ingest" --version | grep -q "^avs-ingest " || fail "--version"
"$AVS_BIN/avs-ingest" --frame-at middle "$c" 2>/dev/null; expect_eq $? 1 "bad --frame-at"
finish
