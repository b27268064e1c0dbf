#!/bin/bash
# bench/ranks.sh: ranks on this machine: 1 process x 2 threads against 2 MPI ranks x 1 thread
# (mpirun), on a synthetic store.
#   training (frozen mode, the same global batch): steps/s of each (from run_epochs.frames_per_s,
#     epochs after the first), the ratio (target >= 90%) and the communication share of the
#     2-rank run (time inside MPI_Allreduce: gradients, SyncBN statistics, loss; rank 0, as
#     avs-train reports it);
#   features (avs-features, random-init PVTv2-b0, --flip): videos/s of each, wall clock of the
#     whole command (mpirun's start included), and whether the two sets are byte-identical.
#   bash bench/ranks.sh            SIZE=128 WIDTH=128 BATCH=4 EPOCHS=4 VIDEOS=12 to change
set -eu
B=${AVS_BUILD:-build}/bin
size=${SIZE:-128}; width=${WIDTH:-128}; batch=${BATCH:-4}; epochs=${EPOCHS:-4}; videos=${VIDEOS:-12}
command -v mpirun >/dev/null || { echo "ranks.sh: no mpirun (bash scripts/deps.sh)"; exit 1; }
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
AVS_TMP=$T . tests/media.sh
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos "$videos" --seconds 5 --seed 3 --size ${size}x$size --fps 10
"$B/avs-ingest" -q --root "$T/st" --size ${size}x$size --avsbench "$T/s4"
cp -r "$T/st" "$T/f1"; cp -r "$T/st" "$T/f2"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --set f
feat=(-q --random-init 2 --visual pvt_v2_b0 --flip --set g)
t0=$(date +%s.%N)
"$B/avs-features" -j 2 "${feat[@]}" --root "$T/f1"
t1=$(date +%s.%N)
mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$B/avs-features" -j 1 "${feat[@]}" --root "$T/f2"
t2=$(date +%s.%N)
args=(--root "$T/st" --subset s4 --width "$width" --batch "$batch" --epochs "$epochs" --lr 1e-4 --seed 7)
rate() { # steps/s of run $1 over epochs 2..
  sqlite3 "$T/st/avs.db" "SELECT printf('%.3f', avg(e.frames_per_s) / ($batch * 5)) FROM run_epochs e
                         JOIN runs r ON r.id = e.run_id WHERE r.name = '$1' AND e.epoch > 1"
}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); frames ${size}x$size, head width $width, global batch $batch"
"$B/avs-train" -q -j 2 "${args[@]}" --run one
out=$(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$B/avs-train" -j 1 "${args[@]}" --run two 2>/dev/null)
r1=$(rate one); r2=$(rate two)
echo "1 process x 2 threads: $r1 steps/s"
echo "2 ranks x 1 thread:    $r2 steps/s"
awk -v a="$r1" -v b="$r2" 'BEGIN { printf "ratio: %.1f%% of the single-process rate (target >= 90%%)\n", 100 * b / a }'
echo "$out" | grep '^ranks:' || true
awk -v n="$videos" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "features, 1 process x 2 threads: %.2f videos/s (%.1f s)\n", n / (b - a), b - a
  printf "features, 2 ranks x 1 thread:    %.2f videos/s (%.1f s, mpirun start included)\n", n / (c - b), c - b
  printf "features ratio: %.1f%% of the single-process rate\n", 100 * (b - a) / (c - b) }'
if cmp -s "$T/f1/features/g.bin" "$T/f2/features/g.bin"; then
  echo "features: the two sets are byte-identical"
else
  echo "features: the sets differ in bits (2 threads vs 1 thread per process: BLAS sums in other orders)"
fi
