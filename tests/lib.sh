# tests/lib.sh: helpers for shell tests (sourced). Every check counts; finish exits 1 if any failed.
n_checks=0; n_failed=0
fail() { n_failed=$((n_failed + 1)); echo "FAIL: $*" >&2; }
expect_eq() { n_checks=$((n_checks + 1)); [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }
need() { for t in "$@"; do command -v "$t" >/dev/null || { echo "SKIP: needs $t (bash scripts/deps.sh installs it)"; exit 77; }; done; }
finish() {
  echo "$(basename "$0"): $n_checks checks, $n_failed failed"
  [ "$n_checks" -gt 0 ] || { echo "no checks ran"; exit 1; }
  [ "$n_failed" -eq 0 ]
}
