#!/bin/bash
# bench/panns_official.sh: tests/gen/model_panns.py's re-statement of PANNs Cnn14_16k (the
# reference test_model_panns checks our C code against) against the official code at the
# official widths: panns-inference's models.py (qiuqiangkong's Cnn14), torchlibrosa, librosa,
# in a venv over Debian's torch (pinned versions; PyPI needed the first time); then our C front
# end + CNN14 (bench/panns_full.c) on the official weights (random, full width, 81M parameters)
# against the float64 re-statement, the official float32's distance from it as the yardstick.
# Too slow and too networked for `make test` (the venv is ~600 MB; the check ~1-2 min).
#   bash bench/panns_official.sh [VENV]      (default /tmp/pannsvenv; exit 77 = SKIP)
set -u
venv=${1:-/tmp/pannsvenv}
cd "$(dirname "$0")/.."
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import panns_inference.models, librosa' 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv" &&
    "$venv/bin/pip" install -q panns-inference==0.1.1 torchlibrosa==0.1.0 librosa==0.10.2.post1 \
      numpy==1.24.2 scipy==1.11.4 matplotlib==3.7.5 contourpy==1.1.1 ||
    { echo "SKIP: could not make the venv $venv (PyPI reachable? Debian's python3-venv and torch?)"; exit 77; }
fi
B=${AVS_BUILD:-build}
[ -f "$B/libavs.a" ] || { echo "panns_official.sh: no $B/libavs.a: run make first (or set AVS_BUILD)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# compile and link flags as the Makefile builds $B/libavs.a (MPI, CUDA, sanitizers)
cc $(make -s --no-print-directory print-cflags) bench/panns_full.c \
   "$B/libavs.a" $(make -s --no-print-directory print-ldlibs) -o "$tmp/panns_full" || exit 1
"$venv/bin/python" tests/gen/model_panns_official.py --write "$tmp" || exit 1
"$tmp/panns_full" "$tmp/w.safetensors" "$tmp/io.safetensors" "$tmp/ours.safetensors" || exit 1
exec "$venv/bin/python" tests/gen/model_panns_official.py --compare "$tmp"
