#!/bin/bash
# test_train.sh: avs-train and avs-predict end to end on a tiny synthetic store (64x64 frames,
# random-init PVTv2-b0 features with flipped copies, head width 16):
#   - same seed, same data: byte-identical checkpoints and identical per-epoch numbers, also
#     with another thread count;
#   - stopped mid-epoch (--max-steps) and resumed with another thread count == uninterrupted
#     (checkpoint bytes, losses), frozen and finetune;
#   - SIGINT at an arbitrary moment: exit 130, status 'interrupted', resume == uninterrupted;
#   - the recorded run (config, switches, code version, run_epochs), best/last files;
#   - errors: existing run without --resume, unknown run, unknown set, old cache version,
#     other options on --resume, a subset without masks;
#   - avs-predict: AVSBench-layout PNG + .logits for every test second, predictions rows,
#     --record equals avs-eval on the same folder; --clip writes a playable mp4 with the input's
#     frame count and duration, and overlay PNGs.
set -u
. tests/lib.sh
need ffprobe sqlite3 cmp
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 10 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-synth" -q --media "$media" --out "$T/ms3" --subset ms3 --videos 6 --seconds 5 --seed 4 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" --avsbench "$T/ms3" || fail "ingest"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --flip --set f || fail "features"
db=$T/st/avs.db
q() { sqlite3 "$db" "$1"; }
train() { "$B/avs-train" -q --root "$T/st" --subset s4 --width 16 --batch 2 --epochs 3 --lr 1e-3 --seed 7 "$@"; }
ckpt() { echo "$T/st/runs/$1/$2.safetensors"; }
epochs() { q "SELECT group_concat(printf('%.17g %.17g %.17g', train_loss, val_miou, val_fscore), ';') FROM
              (SELECT e.* FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = '$1' ORDER BY epoch)"; }

# reference run, and the same with one thread
train --run a; expect_eq "$?" 0 "run a"
train --run b -j 1; expect_eq "$?" 0 "run b (-j 1)"
cmp -s "$(ckpt a last)" "$(ckpt b last)"; expect_eq "$?" 0 "same seed, -j 2 vs -j 1: identical last checkpoint"
cmp -s "$(ckpt a best)" "$(ckpt b best)"; expect_eq "$?" 0 "identical best checkpoint"
expect_eq "$(epochs b)" "$(epochs a)" "identical per-epoch loss and val numbers"
expect_eq "$(q "SELECT count(*) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'a'")" 3 "3 epochs recorded"
expect_eq "$(q "SELECT status FROM runs WHERE name = 'a'")" done "run a done"
expect_eq "$(q "SELECT json_extract(config, '$.switches') || ' ' || json_extract(config, '$.backbone') || ' ' || json_extract(config, '$.mode') FROM runs WHERE name = 'a'")" "AF,CC pvt_v2_b0 frozen" "config records switches, backbone, mode"
expect_eq "$(q "SELECT code_version LIKE 'avs %' FROM runs WHERE name = 'a'")" 1 "code version recorded"
expect_eq "$(q "SELECT min(frames_per_s > 0 AND seconds > 0 AND train_loss > 0) FROM run_epochs")" 1 "timing and loss recorded"
# the same data ingested again (one worker: another row order) trains to the same bytes
"$B/avs-ingest" -q -j 1 --root "$T/st2" --size 64x64 --avsbench "$T/ms3" --avsbench "$T/s4" || fail "ingest 2"
"$B/avs-features" -q -j 1 --root "$T/st2" --random-init 2 --visual pvt_v2_b0 --flip --set f || fail "features 2"
"$B/avs-train" -q --root "$T/st2" --subset s4 --width 16 --batch 2 --epochs 3 --lr 1e-3 --seed 7 --run a
cmp -s "$(ckpt a last)" "$T/st2/runs/a/last.safetensors"; expect_eq "$?" 0 "another store of the same data: identical run"
train --run c --seed 8 >/dev/null; cmp -s "$(ckpt a last)" "$(ckpt c last)"
[ $? -ne 0 ] || fail "another seed gives another model"
n_checks=$((n_checks + 1))

# stopped after 5 steps (mid-epoch 2: 7 train videos / batch 2 = 4 steps per epoch), resumed
train --run d --max-steps 5; expect_eq "$?" 0 "--max-steps exits 0"
expect_eq "$(q "SELECT status FROM runs WHERE name = 'd'")" interrupted "status interrupted"
expect_eq "$(q "SELECT count(*) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'd'")" 1 "1 epoch done before the stop"
"$B/avs-train" -q --root "$T/st" --run d --resume -j 1; expect_eq "$?" 0 "resume d with another thread count (-j 1)"
cmp -s "$(ckpt a last)" "$(ckpt d last)"; expect_eq "$?" 0 "resumed mid-epoch == uninterrupted (last checkpoint bytes)"
cmp -s "$(ckpt a best)" "$(ckpt d best)"; expect_eq "$?" 0 "resumed == uninterrupted (best checkpoint bytes)"
expect_eq "$(epochs d)" "$(epochs a)" "resumed == uninterrupted (per-epoch numbers)"
"$B/avs-train" -q --root "$T/st" --run d --resume; expect_eq "$?" 0 "resuming a finished run is a no-op"
cmp -s "$(ckpt a last)" "$(ckpt d last)"; expect_eq "$?" 0 "... and changes nothing"

# SIGINT at some moment of a longer run, resume, compare with the uninterrupted run
train --run e --epochs 25 >/dev/null; expect_eq "$?" 0 "run e (25 epochs)"
"$B/avs-train" -q --root "$T/st" --subset s4 --width 16 --batch 2 --epochs 25 --lr 1e-3 --seed 7 --run f & pid=$!
for _ in $(seq 400); do
  [ "$(q "SELECT count(*) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'f'" 2>/dev/null)" -ge 2 ] && break
  sleep 0.05
done
kill -INT $pid; wait $pid; rc=$?
expect_eq "$rc" 130 "SIGINT: exit 130"
if [ "$(q "SELECT status FROM runs WHERE name = 'f'")" = interrupted ]; then
  n_checks=$((n_checks + 1))
  "$B/avs-train" -q --root "$T/st" --run f --resume; expect_eq "$?" 0 "resume f"
else
  echo "note: run f finished before the signal arrived (slow machine?)"
fi
cmp -s "$(ckpt e last)" "$(ckpt f last)"; expect_eq "$?" 0 "SIGINT + resume == uninterrupted (checkpoint bytes)"
expect_eq "$(epochs f)" "$(epochs e)" "SIGINT + resume == uninterrupted (per-epoch numbers)"

# finetune mode: the backbone trained too; stopped + resumed == uninterrupted, files included
train --run ft1 --mode finetune --epochs 2; expect_eq "$?" 0 "finetune run"
train --run ft2 --mode finetune --epochs 2 --max-steps 3; expect_eq "$?" 0 "finetune run stopped"
"$B/avs-train" -q --root "$T/st" --run ft2 --resume -j 1; expect_eq "$?" 0 "finetune resume with -j 1"
for f in last best backbone_best backbone-8; do
  cmp -s "$(ckpt ft1 $f)" "$(ckpt ft2 $f)"; expect_eq "$?" 0 "finetune resumed == uninterrupted: $f.safetensors"
done
expect_eq "$(ls "$T/st/runs/ft2" | grep -c '^backbone-')" 1 "older backbone steps removed"
cmp -s "$(ckpt a last)" "$(ckpt ft1 last)"; [ $? -ne 0 ] || fail "finetune differs from frozen"
"$B/avs-predict" -q --root "$T/st" --run ft1 --record > /dev/null; expect_eq "$?" 0 "predict a finetuned run"
expect_eq "$(find "$T/st/runs/ft1/pred-s4-test" -name '*.logits' | wc -l)" "$(q "SELECT count(*) FROM seconds s JOIN videos v ON v.id = s.video_id WHERE v.subset = 's4' AND v.split = 'test'")" "finetuned run: every test second"

# errors
out=$(train --run a 2>&1); expect_eq "$?" 3 "existing run without --resume: exit 3"
case "$out" in *"--resume"*) n_checks=$((n_checks + 1));; *) fail "message names --resume: $out";; esac
out=$("$B/avs-train" -q --root "$T/st" --run nosuch --resume 2>&1); expect_eq "$?" 3 "unknown run: exit 3"
out=$(train --run g --features nosuch 2>&1); expect_eq "$?" 3 "unknown feature set: exit 3"
case "$out" in *"avs-features"*) n_checks=$((n_checks + 1));; *) fail "message says how to make the set: $out";; esac
out=$("$B/avs-train" -q --root "$T/st" --run d --resume --lr 5e-4 2>&1); expect_eq "$?" 3 "--resume with another --lr: exit 3"
case "$out" in *"--lr"*) n_checks=$((n_checks + 1));; *) fail "message names --lr: $out";; esac
cp -r "$T/st" "$T/old"; sqlite3 "$T/old/avs.db" "UPDATE feature_sets SET version = 0"
out=$("$B/avs-train" -q --root "$T/old" --run h --subset s4 --epochs 1 2>&1); expect_eq "$?" 3 "old cache version: exit 3"
case "$out" in *"version 0"*"avs-features --rebuild"*) n_checks=$((n_checks + 1));; *) fail "message names the version and the fix: $out";; esac
sqlite3 "$T/old/avs.db" "UPDATE feature_sets SET version = 2; DELETE FROM masks WHERE video_id IN (SELECT id FROM videos WHERE subset = 'ms3')"
out=$("$B/avs-train" -q --root "$T/old" --run h --subset ms3 --epochs 1 2>&1); expect_eq "$?" 3 "subset without masks: exit 3"
case "$out" in *"masks"*) n_checks=$((n_checks + 1));; *) fail "message says masks are missing: $out";; esac
out=$("$B/avs-train" -q --root "$T/st" --run x --switches AF,XY 2>&1); expect_eq "$?" 1 "bad --switches: exit 1"
cp -r "$T/st" "$T/re"; sqlite3 "$T/re/avs.db" "UPDATE feature_sets SET config = replace(config, 'random-init 2', 'random-init 3')"
out=$("$B/avs-train" -q --root "$T/re" --run d --resume 2>&1); expect_eq "$?" 3 "set remade by other encoders: resume refused"
case "$out" in *"other encoders"*) n_checks=$((n_checks + 1));; *) fail "message says the encoders differ: $out";; esac
out=$("$B/avs-predict" -q --root "$T/re" --run a 2>&1); expect_eq "$?" 3 "set remade by other encoders: predict refused"
expect_eq "$(q "SELECT code_version LIKE 'avs % (%)' FROM runs WHERE name = 'a'")" 1 "code version names the source revision"

# --json summary
js=$(train --run js --epochs 1 --json)
case "$js" in '{"run": "js", "status": "done", "epochs_done": 1, "epochs": 1, "best_epoch": 1'*) n_checks=$((n_checks + 1));; *) fail "--json summary: $js";; esac

# other switches and MS3 train
"$B/avs-train" -q --root "$T/st" --run m1 --subset ms3 --switches none --width 16 --batch 2 --epochs 1; expect_eq "$?" 0 "MS3, switches none"
"$B/avs-train" -q --root "$T/st" --run m2 --subset ms3 --switches AF,CC-V --width 16 --batch 2 --epochs 1; expect_eq "$?" 0 "MS3, switches AF,CC-V"
"$B/avs-train" -q --root "$T/st" --run m3 --subset ms3 --switches CC --width 16 --batch 2 --epochs 1; expect_eq "$?" 0 "MS3, switches CC (no audio)"
expect_eq "$(q "SELECT group_concat(json_extract(config, '$.switches'), ' ') FROM runs WHERE name LIKE 'm%' ORDER BY name")" "none AF,CC-V CC" "switches recorded"

# avs-predict, store mode
"$B/avs-predict" -q --root "$T/st" --run a --record > /dev/null; expect_eq "$?" 0 "predict --record"
pred=$T/st/runs/a/pred-s4-test
nsec=$(q "SELECT count(*) FROM seconds s JOIN videos v ON v.id = s.video_id WHERE v.subset = 's4' AND v.split = 'test'")
expect_eq "$(find "$pred" -name '*.png' | wc -l)" "$nsec" "a PNG for every test second"
expect_eq "$(find "$pred" -name '*.logits' | wc -l)" "$nsec" "a .logits for every test second"
expect_eq "$(q "SELECT count(*) FROM predictions p JOIN runs r ON r.id = p.run_id WHERE r.name = 'a'")" "$nsec" "predictions rows"
rec=$(q "SELECT printf('%.6f %.6f', miou, fscore) FROM metrics WHERE method = 'a'")
"$B/avs-eval" -q --root "$T/st" --pred "$pred" --split test --subset s4 --record check > /dev/null
expect_eq "$(q "SELECT printf('%.6f %.6f', miou, fscore) FROM metrics WHERE method = 'check'")" "$rec" "recorded metrics == avs-eval on the folder"
expect_eq "$(q "SELECT run_id IS NOT NULL FROM metrics WHERE method = 'a'")" 1 "metrics linked to the run"

# --import: a head trained elsewhere (here: run a's best) evaluates like the run itself
"$B/avs-train" -q --root "$T/st" --run imp --subset s4 --width 16 --import "$(ckpt a best)"; expect_eq "$?" 0 "--import"
"$B/avs-predict" -q --root "$T/st" --run imp --record > /dev/null; expect_eq "$?" 0 "predict an imported run"
expect_eq "$(q "SELECT printf('%.9f %.9f', miou, fscore) FROM metrics WHERE method = 'imp'")" "$(q "SELECT printf('%.9f %.9f', miou, fscore) FROM metrics WHERE method = 'a'")" "imported run == the run it came from"
expect_eq "$(q "SELECT status || ' ' || json_extract(config, '$.mode') || ' ' || json_extract(config, '$.imported.file') FROM runs WHERE name = 'imp'")" "imported imported best.safetensors" "import recorded"
out=$("$B/avs-train" -q --root "$T/st" --run imp2 --subset s4 --width 32 --import "$(ckpt a best)" 2>&1); expect_eq "$?" 3 "--import with another width: exit 3"
case "$out" in *"conv1."*"needs"*) n_checks=$((n_checks + 1));; *) fail "message names the tensor and shapes: $out";; esac

# avs-predict, clip mode
clip=$(find "$T/s4/raw_videos/test" -name '*.mp4' | head -n 1)
"$B/avs-predict" -q --root "$T/st" --run a --clip "$clip" -o "$T/out.mp4" --frames "$T/ov"; expect_eq "$?" 0 "predict --clip"
probe() { ffprobe -v error -count_frames -select_streams "$2" -show_entries stream=nb_read_frames,duration -of csv=p=0 "$1"; }
expect_eq "$(probe "$T/out.mp4" v)" "$(probe "$clip" v)" "output video: same frame count and duration"
expect_eq "$(probe "$T/out.mp4" a | cut -d, -f1)" "$(probe "$clip" a | cut -d, -f1)" "audio kept (same duration)"
expect_eq "$(ls "$T/ov" | wc -l)" 5 "5 overlay PNGs"
out=$("$B/avs-predict" -q --root "$T/st" --run a --clip "$T/nosuch.mp4" -o "$T/o2.mp4" 2>&1); expect_eq "$?" 3 "missing clip: exit 3"
finish
