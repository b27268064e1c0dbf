#!/bin/bash
# test_train_avmatch.sh: AVSBench's MS3 audio-visual matching loss in avs-train --model tpavi
# (model/c3n_avmatch.c; its gradients are checked against PyTorch in test_model_tpavi.sh) on a
# tiny synthetic MS3 store (4 videos of 5 s at 64x64, random-init PVTv2-b0 features, width 16):
#   - a new MS3 baseline run takes lambda 0.5 (the official script's) and records it
#     ("av_match", and the loss line says so); --av-match 0 turns it off (BCE alone) and the
#     recorded train loss differs;
#   - --resume reads lambda back: a run stopped after one step and resumed ends with the epoch
#     row of the uninterrupted run, and a run recorded without "av_match" (written before the
#     option) resumes without the loss (its row equals the --av-match 0 run's);
#   - refused with reasons: --av-match with C3N, on S4, and a resume with another lambda.
set -u
. tests/lib.sh
need sqlite3
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/ms3" --subset ms3 --videos 4 --seconds 5 --seed 4 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/ms3" || fail "ingest"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --set f || fail "features"
q() { sqlite3 "$T/st/avs.db" "$1"; }
train() { "$B/avs-train" -q --root "$T/st" --model tpavi --subset ms3 --width 16 --batch 2 --epochs 1 --lr 1e-3 --seed 7 "$@"; }
row() { q "SELECT printf('%.17g %.17g', train_loss, val_miou) FROM run_epochs JOIN runs ON runs.id = run_id WHERE name = '$1'"; }

train --run a; expect_eq "$?" 0 "MS3 baseline run (default matching loss)"
expect_eq "$(q "SELECT json_extract(config, '$.av_match') FROM runs WHERE name = 'a'")" 0.5 "lambda 0.5 recorded"
q "SELECT json_extract(config, '$.loss') FROM runs WHERE name = 'a'" | grep -q "^bce on every frame + 0.5 x audio-visual matching" ||
  fail "the loss line names the matching loss: $(q "SELECT json_extract(config, '$.loss') FROM runs WHERE name = 'a'")"
train --run b --av-match 0; expect_eq "$?" 0 "MS3 baseline run with --av-match 0"
expect_eq "$(q "SELECT json_extract(config, '$.av_match') || ' ' || json_extract(config, '$.loss') FROM runs WHERE name = 'b'")" \
  "0 bce on every frame" "--av-match 0: BCE alone, recorded"
echo "epoch rows (train loss, val mIoU): a $(row a); b $(row b)"
[ "$(row a)" != "$(row b)" ] || fail "the matching loss changes the recorded train loss ($(row a))"

# resume reads lambda back: stopped after a step, resumed, the same epoch as run a
train --run c --max-steps 1; expect_eq "$?" 0 "run c stopped after one step"
train --run c --resume; expect_eq "$?" 0 "run c resumed"
expect_eq "$(row c)" "$(row a)" "resumed run c ends as the uninterrupted run a"
# a run recorded before the option (no "av_match"): resumed without the loss, as it started
train --run d --av-match 0 --max-steps 1; expect_eq "$?" 0 "run d stopped after one step"
q "UPDATE runs SET config = json_remove(config, '$.av_match') WHERE name = 'd'"
"$B/avs-train" -q --root "$T/st" --run d --resume; expect_eq "$?" 0 "run d (no recorded av_match) resumed"
expect_eq "$(row d)" "$(row b)" "a run without a recorded av_match resumes with BCE alone"

out=$(train --run e --av-match 0.2 --model c3n 2>&1); expect_eq "$?" 1 "--av-match with --model c3n refused"
echo "$out" | grep -q "C3N trains with BCE + Dice" || fail "c3n message: $out"
out=$(train --run e --av-match 0.5 --subset s4 2>&1); expect_eq "$?" 3 "--av-match on S4 refused"
echo "$out" | grep -q "MS3 only" || fail "s4 message: $out"
out=$(train --run a --resume --av-match 0.2 2>&1); expect_eq "$?" 3 "resume with another --av-match refused"
echo "$out" | grep -q -- "--av-match 0.2 differs from the run's recorded 0.5" || fail "resume message: $out"
finish
