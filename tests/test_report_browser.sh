#!/bin/bash
# tests/test_report_browser.sh: the leaderboard rendered by headless Chromium (Debian package
# chromium, installed by `bash scripts/deps.sh --browser`), offline, looks like a page: the
# screenshot has dark text, coloured charts/thumbnails and is far from a blank page.
# SKIP when Chromium or ffmpeg (pixel statistics) is absent.
set -u
FIX=$PWD/tests/fixtures/eval
T=$AVS_TMP
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "SKIP: chromium not installed (bash scripts/deps.sh --browser)"; exit 77; }
command -v ffmpeg >/dev/null || { echo "SKIP: ffmpeg not installed (bash scripts/deps.sh)"; exit 77; }
fail=0
bad() { echo "FAIL: $1"; fail=1; }

"$AVS_BIN/avs-eval" -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --root "$T/store" \
  --record "C3N" --switches AF,CC-V,CC --backbone pvt_v2_b5+vggish > /dev/null || bad "record 1"
"$AVS_BIN/avs-eval" -q --pred "$FIX/s4/pred" --gt "$FIX/s4/gt" --root "$T/store" \
  --record "<script>alert(1)</script>" --group-frames 20 > /dev/null || bad "record 2"
"$AVS_BIN/avs-eval" -q --pred "$FIX/ms3/pred" --gt "$FIX/ms3/gt" --root "$T/store" \
  --record "C3N" > /dev/null || bad "record 3"
"$AVS_BIN/avs-report" leaderboard --root "$T/store" -o "$T/board.html" || bad "leaderboard"
grep -q '<script>alert' "$T/board.html" && bad "unescaped method name in the HTML"

shoot() { # shoot HTML PNG: offline (no proxy, no network), 1280x1800
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --disable-extensions --proxy-server=127.0.0.1:9 \
    --user-data-dir="$T/profile" --window-size=1280,1800 --screenshot="$2" "file://$1" \
    > "$T/chromium.log" 2>&1
}
echo '<!DOCTYPE html><html><body></body></html>' > "$T/blank.html"
shoot "$T/board.html" "$T/board.png" || { cat "$T/chromium.log"; bad "chromium failed on the report"; }
shoot "$T/blank.html" "$T/blank.png" || bad "chromium failed on a blank page"
[ -s "$T/board.png" ] && [ -s "$T/blank.png" ] || { echo "no screenshot"; exit 1; }
stats() { ffmpeg -v error -i "$1" -vf "signalstats,metadata=print:file=-" -f null - 2>/dev/null; }
get() { stats "$1" | sed -n "s/.*signalstats\.$2=//p" | head -1; }
ymin=$(get "$T/board.png" YMIN); yavg=$(get "$T/board.png" YAVG); sat=$(get "$T/board.png" SATMAX)
bsize=$(stat -c %s "$T/blank.png"); size=$(stat -c %s "$T/board.png")
echo "screenshot: $size bytes (blank page $bsize), YMIN $ymin, YAVG $yavg, SATMAX $sat"
awk -v y="$ymin" 'BEGIN { exit !(y < 100) }' || bad "no dark text in the screenshot (YMIN $ymin)"
awk -v y="$yavg" 'BEGIN { exit !(y < 232 && y > 120) }' || bad "page blank or black (YAVG $yavg)"
awk -v s="$sat" 'BEGIN { exit !(s > 30) }' || bad "no colour (charts, thumbnails) (SATMAX $sat)"
[ "$size" -gt $((5 * bsize)) ] || bad "screenshot barely differs from a blank page"
exit $fail
