# tests/media.sh: sourced by tests that need the real media (scripts/fetch-media.sh): sets
# $media, or prints SKIP with the reason and exits 77 (no network and nothing cached, or
# AVS_NO_FETCH=1 with nothing cached).
if [ -n "${AVS_NO_FETCH:-}" ]; then
  bash scripts/fetch-media.sh --verify -q > "$AVS_TMP/fetch.log" 2>&1 ||
    { echo "SKIP: media not cached and AVS_NO_FETCH is set: $(tail -n 1 "$AVS_TMP/fetch.log")"; exit 77; }
else
  bash scripts/fetch-media.sh -q > "$AVS_TMP/fetch.log" 2>&1 ||
    { echo "SKIP: real media unavailable: $(tail -n 1 "$AVS_TMP/fetch.log")"; exit 77; }
fi
media=$(bash scripts/fetch-media.sh --print-dir)
