#!/bin/bash
# run.sh TEST...: run each test binary or script, print PASS/FAIL/SKIP per test and a final
# line "N passed, M failed, K skipped". A test skips by exiting 77 after printing "SKIP: why".
# Environment for tests: AVS_BIN (programs), AVS_TMP (a fresh scratch folder per test).
set -u
build=${AVS_BUILD:-build}
export AVS_BIN=$PWD/$build/bin
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0; fail=0; skip=0; failed=()
logdir=$PWD/$build/test-logs; mkdir -p "$logdir"
for t in "$@"; do
  name=$(basename "$t"); name=${name%.sh}
  export AVS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/avs-$name.XXXXXX")
  start=$(date +%s.%N)
  case $t in
    *.sh) bash "$t" >"$logdir/$name.log" 2>&1 ;;
    *) "$t" >"$logdir/$name.log" 2>&1 ;;
  esac
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  if [ $rc -eq 0 ]; then pass=$((pass+1)); echo "PASS $name (${secs}s)"; rm -rf "$AVS_TMP"
  elif [ $rc -eq 77 ]; then skip=$((skip+1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$logdir/$name.log" | sed 's/^SKIP:* *//')"; rm -rf "$AVS_TMP"
  else fail=$((fail+1)); failed+=("$name"); echo "FAIL $name (exit $rc, ${secs}s), last lines of $logdir/$name.log:"; tail -n 25 "$logdir/$name.log" | sed 's/^/    /'; fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
