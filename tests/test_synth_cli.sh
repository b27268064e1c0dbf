#!/bin/bash
# test_synth_cli.sh: the avs-synth command line on the fixture media: usage errors (exit 1),
# missing media (exit 3, names the fix), the AVSBench folder layout, stream facts (ffprobe),
# --all-masks, and byte-identical output for the same seed with -j 1 and -j 2.
set -u
synth=$AVS_BIN/avs-synth
media=tests/fixtures/synth/media
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAILED: $2"; fail=1; fi; }
[ -x "$synth" ] || { echo "FAILED: $synth not built"; exit 1; }

"$synth" --help > "$AVS_TMP/help" 2>&1; rc=$?
check '[ $rc -eq 0 ] && grep -q -- "--subset s4|ms3" "$AVS_TMP/help"' "--help exits 0 and documents --subset"
check '"$synth" --version | grep -q "avs-synth "' "--version"
"$synth" >/dev/null 2>&1; check '[ $? -eq 1 ]' "no arguments: exit 1"
"$synth" --out "$AVS_TMP/x" --subset s5 --media $media >/dev/null 2>&1; check '[ $? -eq 1 ]' "bad --subset: exit 1"
"$synth" --out "$AVS_TMP/x" --subset s4 --size 63x48 --media $media >/dev/null 2>&1; check '[ $? -eq 1 ]' "odd --size: exit 1"
"$synth" --out "$AVS_TMP/x" --subset s4 --media "$AVS_TMP/nothing" 2> "$AVS_TMP/err" >/dev/null; rc=$?
check '[ $rc -eq 3 ] && grep -q "fetch-media.sh" "$AVS_TMP/err"' "missing media: exit 3 and says to run fetch-media.sh"

out=$AVS_TMP/s4
"$synth" --media $media --out "$out" --subset s4 --videos 3 --seconds 2 --size 64x48 --fps 25 --seed 3 -q
check '[ $? -eq 0 ]' "s4 run"
check '[ "$(head -n 1 "$out/s4_meta_data.csv" | cut -d, -f1-3)" = "name,category,split" ]' "S4 CSV header"
check '[ $(tail -n +2 "$out/s4_meta_data.csv" | wc -l) -eq 3 ]' "3 CSV rows"
check '[ $(find "$out/raw_videos" -name "*.mp4" | wc -l) -eq 3 ]' "3 mp4 under raw_videos/<split>/<category>/"
while IFS=, read -r name cat split fps secs rest; do
  v=$out/raw_videos/$split/$cat/$name.mp4
  check '[ -f "$v" ]' "$v exists"
  n=$(find "$out/gt_masks/$split/$cat/$name" -name "${name}_*.png" | wc -l)
  want=2; [ "$split" = train ] && want=1
  check '[ "$n" -eq $want ]' "$name ($split): $want masks, AVSBench S4 layout"
  if command -v ffprobe >/dev/null; then
    p=$(ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=codec_name,width,height,avg_frame_rate,nb_read_packets -of csv=p=0 "$v")
    check '[ "$p" = "h264,64,48,25/1,50" ]' "$name: h264 64x48 25 fps 50 frames ($p)"
    a=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate -of csv=p=0 "$v")
    check '[ "$a" = "aac,44100" ]' "$name: aac 44.1 kHz ($a)"
  fi
done < <(tail -n +2 "$out/s4_meta_data.csv")
check '[ "$(head -n 1 "$out/categories.csv")" = "category,imagenet_index,imagenet_name,audioset_index,audioset_name" ] && [ $(wc -l < "$out/categories.csv") -eq 4 ]' "categories.csv"
check '[ $(tail -n +2 "$out/s4_synth_seconds.csv" | wc -l) -eq 6 ]' "s4_synth_seconds.csv: one row per second"

"$synth" --media $media --out "$AVS_TMP/all" --subset s4 --videos 3 --seconds 2 --size 64x48 --all-masks -q
check '[ $(find "$AVS_TMP/all/gt_masks" -name "*.png" | wc -l) -eq 6 ]' "--all-masks: every second of every clip"

"$synth" --media $media --out "$AVS_TMP/m1" --subset ms3 --videos 3 --seconds 3 --size 64x48 --seed 9 -j 1 -q
"$synth" --media $media --out "$AVS_TMP/m2" --subset ms3 --videos 3 --seconds 3 --size 64x48 --seed 9 -j 2 -q
check 'diff -r "$AVS_TMP/m1" "$AVS_TMP/m2" >/dev/null' "same seed: identical bytes (masks, CSVs and mp4) with -j 1 and -j 2"
check '[ $(find "$AVS_TMP/m1/gt_masks" -mindepth 2 -maxdepth 2 -type d | wc -l) -eq 3 ] && [ $(find "$AVS_TMP/m1/gt_masks" -name "*.png" | wc -l) -eq 9 ]' "MS3 layout gt_masks/<split>/<uid>/ with every second"
"$synth" --media $media --out "$AVS_TMP/m3" --subset ms3 --videos 3 --seconds 3 --size 64x48 --seed 10 -q
check '! cmp -s "$AVS_TMP/m1/ms3_meta_data.csv" "$AVS_TMP/m3/ms3_meta_data.csv"' "another seed: other clips"
"$synth" --media $media --out "$AVS_TMP/m1" --subset ms3 --videos 3 --seconds 3 --size 64x48 --seed 9 -q
check 'diff -r "$AVS_TMP/m1" "$AVS_TMP/m2" >/dev/null && [ -z "$(find "$AVS_TMP/m1" -name "*.tmp*")" ]' "rewriting a folder in place: same result, no temp files left"
for i in 0 1; do "$synth" --media $media --out "$AVS_TMP/sh" --subset ms3 --videos 3 --seconds 3 --size 64x48 --seed 9 --shard $i/2 -q; done
check 'diff -r "$AVS_TMP/m1" "$AVS_TMP/sh" >/dev/null' "--shard 0/2 + 1/2 into one folder = the unsharded set"
exit $fail
