#!/bin/bash
# bench/eval.sh [VIDEOS]: avs-eval against the Python/PyTorch peer (bench/peers/eval_peer.py,
# the official AVSBench metric code on the CPU) on the same S4-sized test set: VIDEOS (default
# 740) videos x 5 frames of 224x224 (740 -> 3700 frames, the S4 test split), 20-frame groups
# as the official test.sh, JOBS (default 2) threads each. End to end: both load the PNGs.
# The set is generated once into ${XDG_CACHE_HOME:-~/.cache}/avs/bench-eval-<VIDEOS>.
# Prints both times, the ratio (target >= 30) and checks that the numbers agree to 1e-6.
# Then the AVSS case (AVSS_VIDEOS, default 100 videos x 10 frames; bench/peers/avss_peer.py);
# ONLY=avss runs that alone.
# The peer needs about a second per frame on this 2-core machine (255 thresholds x a dozen
# torch ops per frame), i.e. about an hour for 3700 frames; PEER_VIDEOS=N runs it on the first
# N videos only and extrapolates its time linearly (its cost is per frame; the output says
# so), and the numbers are then compared on those N videos.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${AVS_BIN:-$here/build/bin}
py=/usr/bin/python3
videos=${1:-740}
jobs=${JOBS:-2}
peer_videos=${PEER_VIDEOS:-$videos}
data=${XDG_CACHE_HOME:-$HOME/.cache}/avs/bench-eval-$videos
[ -x "$bin/avs-eval" ] || { echo "bench/eval.sh: build first (make)"; exit 1; }
$py -c 'import torch, PIL, numpy' 2>/dev/null || { echo "bench/eval.sh: needs python3-torch (bash scripts/deps.sh --bench)"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
get() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '\$.$2')"; }
# ONLY=avss runs the AVSS case alone
if [ "${ONLY:-}" != avss ]; then
if [ ! -f "$data/.done" ]; then
  echo "generating $videos videos x 5 frames into $data ..."
  rm -rf "$data"; mkdir -p "$data"
  $py "$here/bench/peers/eval_peer.py" make "$data" "$videos"
  touch "$data/.done"
fi
# warm the page cache once so that neither side pays for the first read
cat "$data"/gt/test/*/*/*.png "$data"/pred/*/*/*.png > /dev/null
s=$(date +%s.%N)
"$bin/avs-eval" -q -j "$jobs" --pred "$data/pred" --gt "$data/gt" --group-frames 20 --json "$work/ours.json" > /dev/null
e=$(date +%s.%N)
ours=$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')
# the peer's share: the first peer_videos videos (category, video order as avs-eval's)
if [ "$peer_videos" -lt "$videos" ]; then
  mkdir -p "$work/sub/gt/test" "$work/sub/pred"
  (cd "$data/gt/test" && ls -d */* | sort | head -n "$peer_videos") > "$work/list"
  n=0
  while read -r v; do
    mkdir -p "$work/sub/gt/test/${v%/*}" "$work/sub/pred/${v%/*}"
    ln -s "$data/gt/test/$v" "$work/sub/gt/test/$v"; ln -s "$data/pred/$v" "$work/sub/pred/$v"
  done < "$work/list"
  pdata=$work/sub
else
  pdata=$data
fi
s=$(date +%s.%N)
JOBS=$jobs $py "$here/bench/peers/eval_peer.py" eval "$pdata/gt/test" "$pdata/pred" 20 > "$work/peer.json"
e=$(date +%s.%N)
peer=$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')
"$bin/avs-eval" -q -j "$jobs" --pred "$pdata/pred" --gt "$pdata/gt" --group-frames 20 --json "$work/ours_sub.json" > /dev/null
nf=$(get "$work/ours.json" frames); pf=$(get "$work/peer.json" frames)
# extrapolate only the per-frame part: the peer's start-up (imports) is paid once
inner=$(get "$work/peer.json" seconds)
peer_full=$(awk -v p="$peer" -v i="$inner" -v n="$nf" -v f="$pf" 'BEGIN { print (p - i) + i * n / f }')
printf 'eval bench: %d frames of 224x224, groups of 20, %d threads each\n' "$nf" "$jobs"
printf '  avs-eval        %8.2f s   mIoU %.6f  F %.6f   (%d frames)\n' "$ours" "$(get "$work/ours.json" miou)" "$(get "$work/ours.json" fscore)" "$nf"
printf '  python peer     %8.2f s   mIoU %.6f  F %.6f   (%d frames)\n' "$peer" "$(get "$work/peer.json" miou)" "$(get "$work/peer.json" fscore)" "$pf"
if [ "$pf" != "$nf" ]; then
  printf '  peer, %d frames %8.2f s   (extrapolated: start-up + per-frame time of %d frames)\n' "$nf" "$peer_full" "$pf"
fi
printf '  speed ratio     %8.1fx  (target >= 30x)\n' "$(awk -v p="$peer_full" -v o="$ours" 'BEGIN { print p / o }')"
for k in miou fscore; do
  awk -v a="$(get "$work/ours_sub.json" $k)" -v b="$(get "$work/peer.json" $k)" \
    'BEGIN { d = a - b; if (d < 0) d = -d; if (d > 1e-6) { print "MISMATCH '$k': " a " vs " b; exit 1 } }'
done
echo "  numbers agree to 1e-6 on the peer's $pf frames"
fi

# ---- AVSS: AVSS_VIDEOS (default 100) v2 videos x 10 frames = 1000 frames, 71 classes: colour
# labels at 320x180 and colour predictions (official save_color_mask layout), both sides end to
# end from the PNGs; the peer runs the official loader and metric (bench/peers/avss_peer.py).
avss_videos=${AVSS_VIDEOS:-100}
adata=${XDG_CACHE_HOME:-$HOME/.cache}/avs/bench-avss-$avss_videos
if [ ! -f "$adata/.done" ]; then
  echo "generating $avss_videos AVSS videos x 10 frames into $adata ..."
  rm -rf "$adata"; mkdir -p "$adata"
  $py "$here/bench/peers/avss_peer.py" make "$adata" "$avss_videos"
  touch "$adata/.done"
fi
cat "$adata"/release/v2/*/labels_rgb/*.png "$adata"/pred/*/*.png > /dev/null
s=$(date +%s.%N)
"$bin/avs-eval" -q -j "$jobs" --gt "$adata/release" --pred "$adata/pred" --json "$work/avss.json" > /dev/null
e=$(date +%s.%N)
aours=$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')
s=$(date +%s.%N)
JOBS=$jobs $py "$here/bench/peers/avss_peer.py" eval "$adata" "$adata/pred" > "$work/avss_peer.json"
e=$(date +%s.%N)
apeer=$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')
printf 'AVSS bench: %d frames, 71 classes, labels 320x180, %d threads each\n' "$(get "$work/avss.json" frames)" "$jobs"
printf '  avs-eval        %8.2f s   mIoU %.6f  F %.6f\n' "$aours" "$(get "$work/avss.json" miou)" "$(get "$work/avss.json" fscore)"
printf '  python peer     %8.2f s   mIoU %.6f  F %.6f\n' "$apeer" "$(get "$work/avss_peer.json" miou)" "$(get "$work/avss_peer.json" fscore)"
printf '  speed ratio     %8.1fx  (target >= 30x)\n' "$(awk -v p="$apeer" -v o="$aours" 'BEGIN { print p / o }')"
for k in miou fscore; do
  awk -v a="$(get "$work/avss.json" $k)" -v b="$(get "$work/avss_peer.json" $k)" \
    'BEGIN { d = a - b; if (d < 0) d = -d; if (d > 1e-6) { print "MISMATCH '$k': " a " vs " b; exit 1 } }'
done
echo "  numbers agree to 1e-6"
