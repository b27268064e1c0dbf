#!/bin/bash
# fuzz.sh: build the libFuzzer targets of bench/fuzz/ and run each for a while.
#   bash bench/fuzz.sh [-t SECONDS] [target...]     default: every target, 120 s each
#   bash bench/fuzz.sh -l                            list the targets
#
# Each target bench/fuzz/fuzz_<name>.c feeds its input through the readers the programs use
# (bench/fuzz/fuzz.h). The library is compiled by clang with -fsanitize=fuzzer-no-link,address,
# undefined into build-fuzz/ (make B=build-fuzz CC=clang ...; the usual build/ is untouched),
# each target linked with -fsanitize=fuzzer,address,undefined into build-fuzz/fuzz/.
# Targets run one at a time (-jobs=1): the seeds bench/fuzz/corpus/<name>/ (read only) plus
# the growing corpus build-fuzz/corpus/<name>/; an input that crashes, leaks, trips UBSan or
# runs over 10 s (-timeout=10) stops the target and is kept in build-fuzz/crashes/<name>/.
# Ends with a table: executions, corpus size and crashes per target; exit 1 if any crashed.
# A crash is fixed in its parser and its input added to tests/fuzz_regress/<name>/, which
# tests/test_fuzz_regress.c replays in `make test`.
#
# Under `make bench` (MAKELEVEL set) without -t it runs 10 s per target: a smoke run that
# proves the targets build and start; the real run is `bash bench/fuzz.sh`.
# Needs clang and its libFuzzer runtime: bash scripts/deps.sh --fuzz (FUZZ_CC=clang-NN picks
# another clang; without one it prints SKIP and exits 77, 0 under make).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-fuzz
secs=120
[ -n "${MAKELEVEL:-}" ] && secs=10
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "fuzz.sh: -t needs a number of seconds" >&2; exit 1; }
        secs=$2; shift 2 ;;
    -l) ls bench/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||'; exit 0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (use -t SECONDS, -l, or target names)" >&2; exit 1 ;;
    *) [ -f "bench/fuzz/fuzz_$1.c" ] || { echo "fuzz.sh: no target $1 (bash bench/fuzz.sh -l lists them)" >&2; exit 1; }
       targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(ls bench/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null || ! "$CC" -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
  echo "SKIP: no $CC with its libFuzzer runtime: bash scripts/deps.sh --fuzz"
  [ -n "${MAKELEVEL:-}" ] && exit 0 || exit 77
fi
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

echo "fuzz: building the library with $CC into $B/ (log: $B/build.log)"
mkdir -p $B/fuzz
if ! nice make -j2 B=$B CC="$CC" SANITIZE=fuzzer-no-link,address,undefined \
     CFLAGS="-Wno-pass-failed" $B/libavs.a >$B/build.log 2>&1; then
  tail -n 20 $B/build.log; echo "fuzz.sh: the library did not build (see $B/build.log)" >&2; exit 1
fi
pkgs=$(sed -n 's/^PKGS := //p' Makefile)
for t in "${targets[@]}"; do
  src=bench/fuzz/fuzz_$t.c bin=$B/fuzz/fuzz_$t
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ bench/fuzz/fuzz.h -nt "$bin" ] || [ $B/libavs.a -nt "$bin" ]; then
    # shellcheck disable=SC2046
    "$CC" -std=c11 -D_GNU_SOURCE -DAVS_FUZZ_LIBFUZZER -I. $(pkg-config --cflags $pkgs) $FLAGS \
      -fsanitize=fuzzer "$src" $B/libavs.a $(pkg-config --libs $pkgs) -fopenmp -lpthread -lm -o "$bin"
  fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rows=() status=0
# The targets' scratch files (bench/fuzz/fuzz.h); a crashing target leaves its folder: removed here.
shm=/dev/shm; [ -w $shm ] || shm=${TMPDIR:-/tmp}
export AVS_FUZZ_TMP=$(mktemp -d "$shm/avs-fuzz.XXXXXX")
trap 'rm -rf "$AVS_FUZZ_TMP"' EXIT
for t in "${targets[@]}"; do
  seeds=$PWD/bench/fuzz/corpus/$t corpus=$PWD/$B/corpus/$t crashes=$PWD/$B/crashes/$t
  work=$PWD/$B/run/$t
  mkdir -p "$corpus" "$crashes" "$work"
  [ -d "$seeds" ] || seeds=
  echo "fuzz: $t for ${secs}s (log: $work/fuzz-0.log)"
  before=$(ls "$crashes" | wc -l)
  # -jobs=1: one fuzzing process, its output in fuzz-0.log; stops at the first bad input.
  (cd "$work" && rm -f fuzz-0.log &&
   "$OLDPWD/$B/fuzz/fuzz_$t" -jobs=1 -workers=1 -max_total_time="$secs" -timeout=10 \
     -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
     -artifact_prefix="$crashes/" "$corpus" $seeds >/dev/null 2>&1) || true
  log=$work/fuzz-0.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  found=$(( $(ls "$crashes" | wc -l) - before ))
  if [ "$found" -gt 0 ]; then
    status=1
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|ALARM' "$log" | sed "s/^/  $t: /" || true
    ls -t "$crashes" | head -n "$found" | sed "s|^|  $t: input kept: $crashes/|"
  fi
  rows+=("$(printf '%-14s %12s %8s %8s' "$t" "${execs:-?}" "$(ls "$corpus" | wc -l)" "$found")")
done
echo
printf '%-14s %12s %8s %8s   (%ss each, %s)\n' target executions corpus crashes "$secs" "$(date -u +%FT%TZ)"
printf '%s\n' "${rows[@]}"
exit $status
