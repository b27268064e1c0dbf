#!/bin/bash
# test_backend_guard_pipeline.sh: the programs on the guard backend (backend/guard.c: device
# memory the host cannot touch outside the backend's ops) give the same bytes as on the CPU
# backend, on a tiny synthetic store (64x64 frames, random-init PVTv2-b0, head width 16):
#   - avs-features on the store's clips: the feature cache and its index rows;
#   - avs-train --mode frozen (switches AF,CC, none, AF,CC-V) and --mode finetune, a few steps:
#     checkpoint files; a run's session records the device and its settings;
#   - avs-predict store mode: every PNG and .logits file, a session row with the device; clip
#     mode: the overlay frames.
# A layer that read or wrote tensor memory on the host, or gave a primitive a host buffer,
# crashes under the guard instead.
set -u
. tests/lib.sh
need sqlite3 cmp
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 6 --seconds 5 --seed 5 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/cpu" --size 64x64 --avsbench "$T/s4" || fail "ingest"
cp -r "$T/cpu" "$T/guard"
for d in cpu guard; do
  "$B/avs-features" -q --device $d --root "$T/$d" --random-init 2 --visual pvt_v2_b0 --flip --set f
  expect_eq "$?" 0 "avs-features --device $d"
done
cmp -s "$T/cpu/features/f.bin" "$T/guard/features/f.bin"; expect_eq "$?" 0 "avs-features: identical feature cache"
rows() { sqlite3 "$T/$1/avs.db" "SELECT group_concat(video_id || ':' || k || ':' || flipped || ':' || offset || ':' || target || ':' || target_v, ' ') FROM (SELECT * FROM feature_entries ORDER BY 1, 2, 3, 4)"; }
expect_eq "$(rows guard)" "$(rows cpu)" "avs-features: identical index rows (offsets, C3IM targets)"
expect_eq "$(sqlite3 "$T/guard/avs.db" "SELECT device FROM sessions WHERE program = 'avs-features'")" guard "the session records the device"
# both trainings on the CPU store (same data, same features); runs differ by name only
train() { "$B/avs-train" -q --root "$T/cpu" --subset s4 --width 16 --batch 2 --lr 1e-3 --seed 7 "$@"; }
ckpt() { echo "$T/cpu/runs/$1/$2.safetensors"; }
for d in cpu guard; do
  train --device $d --run fz-$d --epochs 2; expect_eq "$?" 0 "frozen training --device $d"
  train --device $d --run ft-$d --mode finetune --epochs 1 --max-steps 2; expect_eq "$?" 0 "finetune --device $d"
done
for f in last best; do
  cmp -s "$(ckpt fz-cpu $f)" "$(ckpt fz-guard $f)"; expect_eq "$?" 0 "frozen: identical $f checkpoint"
done
# the other layer paths: no audio/consensus at all, and CC-V weights
for sw in none AF,CC-V; do
  for d in cpu guard; do train --device $d --run "sw-$sw-$d" --switches "$sw" --epochs 1 || fail "--switches $sw --device $d"; done
  cmp -s "$(ckpt "sw-$sw-cpu" last)" "$(ckpt "sw-$sw-guard" last)"; expect_eq "$?" 0 "frozen --switches $sw: identical checkpoint"
done
# a setting that changes the bits is recorded with the run (docs/backend.md, Numerics)
AVS_CONV=exact-bwd train --device guard --run xb --epochs 1 || fail "AVS_CONV=exact-bwd"
expect_eq "$(sqlite3 "$T/cpu/avs.db" "SELECT s.device FROM sessions s JOIN runs r ON r.id = s.run_id WHERE r.name = 'xb'")" \
  "guard conv=exact-bwd" "the session records the conv setting"
cmp -s "$(ckpt ft-cpu last)" "$(ckpt ft-guard last)"; expect_eq "$?" 0 "finetune: identical head checkpoint"
for f in "$T/cpu/runs/ft-cpu"/backbone-*.safetensors; do
  cmp -s "$f" "$T/cpu/runs/ft-guard/$(basename "$f")"; expect_eq "$?" 0 "finetune: identical $(basename "$f")"
done
for d in cpu guard; do
  "$B/avs-predict" -q --device $d --root "$T/cpu" --run fz-cpu --out "$T/pred-$d" >/dev/null
  expect_eq "$?" 0 "avs-predict store mode --device $d"
done
expect_eq "$(find "$T/pred-guard" -type f | wc -l)" "$(find "$T/pred-cpu" -type f | wc -l)" "predict: same files"
expect_eq "$(sqlite3 "$T/cpu/avs.db" "SELECT group_concat(s.device, ' ') FROM (SELECT * FROM sessions ORDER BY id) s
  JOIN runs r ON r.id = s.run_id WHERE s.program = 'avs-predict' AND r.name = 'fz-cpu'")" "cpu guard" \
  "avs-predict: a session per prediction, with the run and the device"
[ "$(find "$T/pred-cpu" -name '*.logits' | wc -l)" -gt 0 ] || fail "predict wrote no .logits"
diff -r -q "$T/pred-cpu" "$T/pred-guard" >/dev/null; expect_eq "$?" 0 "predict store mode: identical PNGs and .logits"
clip=$(find "$T/s4/raw_videos/test" -name '*.mp4' | head -n 1)
for d in cpu guard; do
  "$B/avs-predict" -q --device $d --root "$T/cpu" --run ft-cpu --checkpoint last --clip "$clip" -o "$T/$d.mp4" --frames "$T/ov-$d"
  expect_eq "$?" 0 "avs-predict clip mode (finetuned) --device $d"
done
diff -r -q "$T/ov-cpu" "$T/ov-guard" >/dev/null; expect_eq "$?" 0 "predict clip mode: identical overlay frames"
finish
