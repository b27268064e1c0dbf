#!/bin/bash
# test_synth_media.sh: avs-synth on the real media (scripts/fetch-media.sh; downloads ~210 MB
# of Debian packages once into the shared cache, then runs offline). SKIPs with the reason when
# the media cannot be fetched (no network), or when AVS_NO_FETCH=1 and they are not cached.
# Checks: every pinned category loads, clips and masks are written, S4 masks are neither empty
# nor full, output bytes do not depend on -j, and (when avs-ingest is built) the clips ingest.
set -u
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAILED: $2"; fail=1; fi; }
if [ -n "${AVS_NO_FETCH:-}" ]; then
  bash scripts/fetch-media.sh --verify -q > "$AVS_TMP/fetch.log" 2>&1 || { echo "SKIP: media not cached and AVS_NO_FETCH is set: $(tail -n 1 "$AVS_TMP/fetch.log")"; exit 77; }
else
  bash scripts/fetch-media.sh -q > "$AVS_TMP/fetch.log" 2>&1; rc=$?
  if [ $rc -eq 3 ]; then echo "SKIP: real media unavailable: $(tail -n 1 "$AVS_TMP/fetch.log")"; exit 77; fi
  check '[ $rc -eq 0 ]' "fetch-media.sh (exit $rc) $(tail -n 1 "$AVS_TMP/fetch.log")"
  [ $rc -eq 0 ] || exit 1
fi
media=$(bash scripts/fetch-media.sh --print-dir)
ncat=$(grep -vc '^category,' synth/categories.csv)

"$AVS_BIN/avs-synth" --media "$media" --out "$AVS_TMP/s4" --subset s4 --videos 3 --seconds 3 --all-masks --seed 4 -j 2 > "$AVS_TMP/s4.log" 2>&1
check '[ $? -eq 0 ] && grep -q "$ncat categories" "$AVS_TMP/s4.log"' "S4 from real media, all $ncat categories load ($(tail -n 1 "$AVS_TMP/s4.log"))"
"$AVS_BIN/avs-synth" --media "$media" --out "$AVS_TMP/ms3" --subset ms3 --videos 2 --seconds 3 --seed 4 -j 2 -q
check '[ $? -eq 0 ]' "MS3 from real media"
check '[ $(find "$AVS_TMP/s4" "$AVS_TMP/ms3" -name "*.mp4" | wc -l) -eq 5 ]' "5 clips"
check '[ $(find "$AVS_TMP/s4" -name "*.png" | wc -l) -eq 9 ] && [ $(find "$AVS_TMP/ms3" -name "*.png" | wc -l) -eq 6 ]' "every mask written"
if command -v ffmpeg > /dev/null; then
  for m in $(find "$AVS_TMP/s4/gt_masks" -name "*.png"); do
    avg=$(ffmpeg -hide_banner -nostats -i "$m" -vf "signalstats,metadata=print:key=lavfi.signalstats.YAVG" -f null - 2>&1 | sed -n 's/.*YAVG=//p' | head -n 1)
    check 'awk -v a="$avg" "BEGIN { exit !(a > 5 && a < 200) }"' "$(basename "$m"): object covers part of the frame (mean $avg)"
  done
fi
# Determinism on real media (photo content exercises more encoder paths than the fixtures).
"$AVS_BIN/avs-synth" --media "$media" --out "$AVS_TMP/d1" --subset s4 --videos 4 --seconds 3 --seed 1 -j 1 -q
"$AVS_BIN/avs-synth" --media "$media" --out "$AVS_TMP/d2" --subset s4 --videos 4 --seconds 3 --seed 1 -j 2 -q
check 'diff -r "$AVS_TMP/d1" "$AVS_TMP/d2" > /dev/null' "same seed, -j 1 vs -j 2: identical bytes, mp4 included"
if [ -x "$AVS_BIN/avs-ingest" ]; then
  "$AVS_BIN/avs-ingest" --root "$AVS_TMP/store" --avsbench "$AVS_TMP/s4" --avsbench "$AVS_TMP/ms3" -q
  check '[ $? -eq 0 ]' "avs-ingest of the real-media clips"
  check '[ "$(sqlite3 "$AVS_TMP/store/avs.db" "SELECT count(*) FROM v_videos WHERE status = '"'ok'"' AND has_audio = 1")" = 5 ]' "5 clips ingested with audio"
  check '[ "$(sqlite3 "$AVS_TMP/store/avs.db" "SELECT count(mask) FROM v_seconds")" = 15 ]' "15 masks in the store"
else
  echo "note: avs-ingest not built: ingest of real-media clips not checked"
fi
exit $fail
