#!/bin/bash
# test_mpi_train.sh: avs-train under mpirun (2 CPU ranks, 1 thread each) against 1 process
# with the same global batch, on a tiny synthetic store (64x64, random-init PVTv2-b0 features,
# head width 16, global batch 4 = 2 ranks x 2 videos, 1 step per epoch):
#   - frozen, 3 epochs: every step's loss within 1e-6 (relative) of the 1-process run; final
#     weights: ||A-B||/||B|| <= 1e-3 and at most 0.1% of the elements beyond 1e-5 + 1e-3|b|
#     (Adam moves an element whose gradient is float noise by +-lr: tests/gen/st_compare.py);
#     W_z.0.bias and the BN running means are left out: W_z.0.bias feeds a BatchNorm in
#     training, so its gradient is 0 in exact arithmetic and float noise in both runs (Adam
#     turns it into +-lr steps), and the running means carry it. A 1-process run with half the
#     batch (what ranks without the gradient average would train) fails the same check;
#   - the session row: world size 2, ranks per node 2, comm mpi, devices "cpu, cpu";
#   - stopped after 2 steps on 2 ranks, resumed on 1 process: the 1-process result;
#   - finetune (backbone trained too), 1 epoch: losses and weights as above;
#   - a rank killed (SIGKILL) mid-run: mpirun ends the job, rank 0 says why, the last
#     checkpoint loads and the run resumes on 1 process;
#   - --batch 3 on 2 ranks: refused, naming the rule. (avs-features and avs-predict under
#     mpirun: tests/test_mpi_features.sh.)
set -u
. tests/lib.sh
. tests/mpi.sh
need sqlite3 pgrep
[ -x /usr/bin/python3 ] || { echo "SKIP: needs /usr/bin/python3 with numpy"; exit 77; }
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
mpi_need "$B/avs-train"
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 6 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --flip --set f || fail "features"
db=$T/st/avs.db
q() { sqlite3 "$db" "$1"; }
args=(-q -j 1 --root "$T/st" --subset s4 --width 16 --batch 4 --lr 1e-3 --seed 7)
ckpt() { echo "$T/st/runs/$1/last.safetensors"; }
losses() { q "SELECT group_concat(printf('%.9g', train_loss), ' ') FROM (SELECT e.* FROM run_epochs e
              JOIN runs r ON r.id = e.run_id WHERE r.name = '$1' ORDER BY epoch)"; }
# every loss of run $1 within 1e-6 (relative) of run $2's
same_losses() {
  awk -v a="$(losses "$1")" -v b="$(losses "$2")" 'BEGIN { n = split(a, x, " "); m = split(b, y, " ");
    if (n != m || n == 0) exit 1; for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d;
    if (d > 1e-6 * (y[i] < 0 ? -y[i] : y[i])) exit 1 } }'
}
weights() {
  /usr/bin/python3 tests/gen/st_compare.py "$(ckpt "$1")" "$(ckpt "$2")" --atol 1e-5 --rtol 1e-3 \
    --max-frac 1e-3 --max-rel 1e-3 --skip adam. --skip W_z.0.bias --skip running_mean
}

"$B/avs-train" "${args[@]}" --epochs 3 --run one; expect_eq "$?" 0 "1 process"
mpi 2 "$B/avs-train" "${args[@]}" --epochs 3 --run two; expect_eq "$?" 0 "2 ranks"
same_losses two one; expect_eq "$?" 0 "2 ranks: every step's loss == 1 process ($(losses two) vs $(losses one))"
weights two one; expect_eq "$?" 0 "2 ranks: final weights == 1 process"
"$B/avs-train" -q -j 1 --root "$T/st" --subset s4 --width 16 --batch 2 --lr 1e-3 --seed 7 --epochs 3 --run half
weights half one >/dev/null; expect_eq "$?" 1 "the weight check fails a run with half the batch"
expect_eq "$(q "SELECT world_size || ' ' || ranks_per_node || ' ' || comm || ' ' || devices FROM sessions s
               JOIN runs r ON r.id = s.run_id WHERE r.name = 'two'")" "2 2 mpi cpu, cpu" "session records the ranks"
expect_eq "$(q "SELECT world_size || ' ' || comm FROM sessions s JOIN runs r ON r.id = s.run_id WHERE r.name = 'one'")" \
  "1 none" "1 process recorded as such"

mpi 2 "$B/avs-train" "${args[@]}" --epochs 3 --run three --max-steps 2 2>/dev/null; expect_eq "$?" 0 "2 ranks, stopped"
"$B/avs-train" -q -j 1 --root "$T/st" --run three --resume; expect_eq "$?" 0 "resumed on 1 process"
same_losses three one; expect_eq "$?" 0 "2 ranks -> 1 process: losses == 1 process"
weights three one; expect_eq "$?" 0 "2 ranks -> 1 process: weights == 1 process"

"$B/avs-train" "${args[@]}" --epochs 1 --mode finetune --run ft1; expect_eq "$?" 0 "finetune, 1 process"
mpi 2 "$B/avs-train" "${args[@]}" --epochs 1 --mode finetune --run ft2; expect_eq "$?" 0 "finetune, 2 ranks"
same_losses ft2 ft1; expect_eq "$?" 0 "finetune: losses == 1 process ($(losses ft2) vs $(losses ft1))"
weights ft2 ft1; expect_eq "$?" 0 "finetune: head weights == 1 process"
bb() { ls "$T/st/runs/$1"/backbone-*.safetensors; }
/usr/bin/python3 tests/gen/st_compare.py "$(bb ft2)" "$(bb ft1)" --atol 1e-5 --rtol 1e-3 --max-frac 1e-3 \
  --max-rel 1e-3 --skip adam.; expect_eq "$?" 0 "finetune: backbone weights == 1 process"

# a rank killed: after 2 epochs are recorded, so a checkpoint exists
mpi 2 "$B/avs-train" "${args[@]}" --epochs 100000 --run kill > "$T/kill.out" 2>&1 &
mp=$!
for _ in $(seq 600); do
  [ "$(q "SELECT count(*) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'kill'" 2>/dev/null)" -ge 2 ] 2>/dev/null && break
  sleep 0.05
done
r1=$(mpi_rank_pid "$mp" 1) || { fail "no rank 1 under $mp"; pkill -P "$mp"; r1=$mp; }
kill -9 "$r1"
wait "$mp"; rc=$?
[ "$rc" -ne 0 ]; expect_eq "$?" 0 "the job ends with an error when a rank dies (exit $rc)"
grep -q "rank 0 of 2: stopped by signal 15 from the launcher: another rank ended" "$T/kill.out"
expect_eq "$?" 0 "rank 0 says why it stops"
grep -q "rank 1 .*exited on signal 9" "$T/kill.out"; expect_eq "$?" 0 "mpirun names the dead rank"
"$B/avs-train" -q -j 1 --root "$T/st" --run kill --resume --max-steps 1 2>/dev/null
expect_eq "$?" 0 "the last checkpoint is valid: the run resumes on 1 process"

out=$(mpi 2 "$B/avs-train" "${args[@]}" --batch 3 --epochs 1 --run odd 2>&1)
echo "$out" | grep -qF -- "--batch 3 (the global batch) must be a multiple of the 2 ranks"
expect_eq "$?" 0 "--batch 3 on 2 ranks refused"
finish
