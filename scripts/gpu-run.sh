#!/bin/bash
# scripts/gpu-run.sh DEST: on a machine with a GPU, from the pack scripts/gpu-pack.sh made
# (DEST, or DEST.tar.xz unpacked here): every GPU op test, tests/test_cuda_train.sh and
# bench/gpu.sh. make test-gpu runs pack and this; README, "Running on a GPU".
# Test logs go to DEST/test-logs, and to $OUT/test-logs when the device tool gives $OUT.
# Exit status: the tests' (the benchmark reports, it does not fail).
set -u
dest=${1:-.gpu}
# unpack (Python's tarfile where the machine has no xz)
if [ ! -f "$dest/env.sh" ] && [ -f "$dest.tar.xz" ]; then
  if command -v xz >/dev/null; then xz -dc "$dest.tar.xz" | tar -xf -
  else python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall()" "$dest.tar.xz"; fi
fi
[ -f "$dest/env.sh" ] || { echo "gpu-run.sh: no pack in $dest: run make test-gpu-pack first"; exit 1; }
. "$dest/env.sh"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export AVS_GPU_STORE=$PWD/$dest/store
start=$(date +%s)
AVS_BUILD=$dest bash tests/run.sh "$dest"/tests/test_* tests/test_cuda_train.sh
rc=$?
echo "tests: $(( $(date +%s) - start )) s"
AVS_BIN=$PWD/$dest/bin bash bench/gpu.sh 5
echo "total: $(( $(date +%s) - start )) s"
[ -n "${OUT:-}" ] && cp -r "$dest/test-logs" "$OUT/" 2>/dev/null
exit $rc
