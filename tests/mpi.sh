# tests/mpi.sh: mpirun for the tests of data-parallel programs (sourced after tests/lib.sh).
# SKIP (exit 77) when the build has no MPI or mpirun is missing; as root, OpenMPI's consent
# variables; 1 OpenMP thread per rank, no core binding (2 ranks may share this machine's cores).
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (bash scripts/deps.sh installs openmpi-bin)"; exit 77; }
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers often forbid CMA (ptrace)
# Under AddressSanitizer the ranks run without leak detection: OpenMPI's runtime keeps memory
# past MPI_Finalize in plugins it has unloaded (no module name left to suppress); a program
# alone never starts MPI and keeps the full check.
mpi() {
  local n=$1; shift
  mpirun -np "$n" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 \
    -x ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$@"
}
# The pid of rank $2 of the job started by process $1 (mpirun, or a subshell running it): the
# descendant whose environment has OMPI_COMM_WORLD_RANK=$2.
mpi_rank_pid() {
  local p c
  for p in $(for c in $(pgrep -P "$1"); do echo "$c"; pgrep -P "$c"; done); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return 0; }
  done
  return 1
}
# SKIP (exit 77) unless program $1 is built with MPI and mpirun starts 2 ranks of it here.
mpi_need() {
  local probe
  ldd "$1" 2>/dev/null | grep -q libmpi || { echo "SKIP: this build has no MPI (bash scripts/deps.sh, then make; or make MPI=1)"; exit 77; }
  probe=$(mpi 2 "$1" --version 2>&1) || { echo "SKIP: mpirun cannot start 2 ranks here: $probe" | head -5; exit 77; }
}
