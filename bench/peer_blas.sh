# bench/peer_blas.sh: sourced by the bench scripts. Debian's torch and numpy call the same
# OpenBLAS as our programs. On a CPU model that OpenBLAS 0.3.21 does not know it falls back to
# its SSE3 "Prescott" kernels; our programs then ask for the AVX-512 or AVX2 set
# (avs_ops_tune_process), so the peer is given the same kernels here: a ratio compares like
# with like. A user's OPENBLAS_CORETYPE is kept for both sides.
#   peer_blas AVS_MODEL_BINARY
peer_blas() {
  [ -n "${OPENBLAS_CORETYPE:-}" ] && return 0
  local core
  core=$("$1" bench sgemm --size 64 -j 1 2>/dev/null | tr ' ' '\n' | sed -n 's/^blas_core=//p')
  [ -n "$core" ] || return 0
  export OPENBLAS_CORETYPE=$core
  echo "OpenBLAS kernels for both sides: $core"
}
