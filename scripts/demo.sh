#!/bin/bash
# demo.sh: the demo pipeline (called by `make demo` after deps and build).
#   1. fetch the real media (scripts/fetch-media.sh: Debian packages, sha256-pinned, cached)
#   2. avs-synth: an S4 set (40 clips) and an MS3 set (20 clips) in demo/synth/{s4,ms3}
#   3. avs-ingest both into the demo store demo/avsdata/ (index demo/avsdata/avs.db)
#   4. print what the store holds
#   5. avs-features: a random-init PVTv2-b0 + VGGish feature set of the store (fp16)
#   6. evaluate two trivial baselines (all background, a centre box) on the test split with
#      avs-eval and write the HTML report demo/report.html with avs-report (C3N joins them
#      once avs-train / avs-predict exist)
# Re-running is cheap: the media are cached, the sets are only re-made when their options
# change (demo/synth/*/.params), and ingest and avs-features skip finished videos.
# Environment: AVS_BUILD (build folder, default build), DEMO_DIR (default demo), AVS_MEDIA.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AVS_BUILD:-build}/bin
demo=${DEMO_DIR:-demo}
store=$demo/avsdata
S4_ARGS=(--subset s4 --videos 40 --seconds 5 --seed 1)
MS3_ARGS=(--subset ms3 --videos 20 --seconds 5 --seed 2)
t0=$(date +%s)

echo "== demo 1/6: media"
rc=0
bash scripts/fetch-media.sh || rc=$?
if [ $rc -ne 0 ]; then
  echo "demo: the media could not be fetched (see the message above; exit $rc)." >&2
  [ $rc -eq 3 ] && echo "demo: the demo needs network access to deb.debian.org once; after that it runs offline." >&2
  exit 1
fi

echo "== demo 2/6: avs-synth"
[ -x "$bin/avs-synth" ] || { echo "demo: $bin/avs-synth missing: run make" >&2; exit 1; }
synth() { # synth DIR ARGS...: (re)make DIR unless it was made with the same options
  local dir=$1; shift
  local params="$* $(sha256sum "$bin/avs-synth" | cut -c1-16)"
  if [ -f "$dir/.params" ] && [ "$(cat "$dir/.params")" = "$params" ]; then
    echo "demo: $dir is up to date"
    return
  fi
  rm -rf "$dir"
  "$bin/avs-synth" --out "$dir" "$@"
  echo "$params" > "$dir/.params"
}
synth "$demo/synth/s4" "${S4_ARGS[@]}"
synth "$demo/synth/ms3" "${MS3_ARGS[@]}"

echo "== demo 3/6: avs-ingest"
if [ ! -x "$bin/avs-ingest" ]; then
  echo "demo: $bin/avs-ingest is missing (not built yet): the clips are in $demo/synth, no store made"
  exit 0
fi
rc=0
"$bin/avs-ingest" --root "$store" --avsbench "$demo/synth/s4" --avsbench "$demo/synth/ms3" || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then echo "demo: avs-ingest failed (exit $rc)" >&2; exit 1; fi
[ $rc -eq 2 ] && echo "demo: some clips failed to ingest (listed in the store: v_videos.status = 'failed')"

echo "== demo 4/6: the store"
db=$store/avs.db
echo "store: $(cd "$store" && pwd)  (index: $db)"
sqlite3 -header -column "$db" \
  "SELECT subset, split, count(*) AS videos, sum(seconds) AS seconds,
          sum(status = 'failed') AS failed
   FROM v_videos GROUP BY subset, split ORDER BY subset, split;"
echo
sqlite3 "$db" "SELECT 'frames: ' || count(frame) || ', audio seconds: ' || count(audio) ||
                      ', ground-truth masks: ' || count(mask) FROM v_seconds;"
sqlite3 "$db" "SELECT 'categories (' || count(DISTINCT category) || '): ' ||
                      group_concat(DISTINCT category) FROM (SELECT category FROM v_videos
                      WHERE subset = 's4' ORDER BY category);"
echo "example: sqlite3 $db \"SELECT * FROM v_seconds LIMIT 5\""

echo "== demo 5/6: avs-features, random-init PVTv2-b0 + VGGish (no downloaded weights)"
if [ -x "$bin/avs-features" ]; then
  # ~35 s on 2 cores for the 300 demo seconds; a re-run finds every video done.
  "$bin/avs-features" -q --root "$store" --random-init 1 --visual pvt_v2_b0 --fp16 --set demo-b0-random1
  "$bin/avs-features" --root "$store" show --set demo-b0-random1
else
  echo "demo: $bin/avs-features is missing (not built yet): no feature set made"
fi

echo "== demo 6/6: baselines, avs-eval, avs-report"
base=$demo/baselines
rm -rf "$base"; mkdir -p "$base"
# Two 224x224 probability maps: all background, and a centred box of half the width/height.
ffmpeg -v error -nostdin -y -f lavfi -i color=c=black:size=224x224 -frames:v 1 -pix_fmt gray "$base/empty.png"
ffmpeg -v error -nostdin -y -f lavfi -i "color=c=black:size=224x224,drawbox=x=56:y=56:w=112:h=112:c=white:t=fill" \
  -frames:v 1 -pix_fmt gray "$base/centre.png"
sqlite3 -separator ' ' "$db" "SELECT s.uid, s.k FROM v_seconds s JOIN v_videos v ON v.uid = s.uid
                               WHERE v.split = 'test' AND s.mask IS NOT NULL" |
while read -r uid k; do
  for b in empty centre; do mkdir -p "$base/$b/$uid"; ln -f "$base/$b.png" "$base/$b/$uid/$k.png"; done
done
sqlite3 "$db" "DELETE FROM metrics WHERE method LIKE 'baseline: %'"
for subset in s4 ms3; do
  "$bin/avs-eval" -q --root "$store" --pred "$base/empty" --split test --subset "$subset" \
    --record "baseline: all background" >/dev/null
  "$bin/avs-eval" -q --root "$store" --pred "$base/centre" --split test --subset "$subset" \
    --record "baseline: centre box" >/dev/null
done
sqlite3 -header -column "$db" "SELECT method, subset, printf('%.4f', miou) AS mIoU,
                                      printf('%.4f', fscore) AS F, frames
                               FROM metrics ORDER BY subset, method"
"$bin/avs-report" -q leaderboard --root "$store" -o "$demo/report.html"
echo "report: $(cd "$demo" && pwd)/report.html (self-contained; open it in any browser)"
echo "demo: done in $(( $(date +%s) - t0 )) s"
