#!/bin/bash
# test_features_resnet.sh: ResNet-50 as the visual encoder of avs-features and frozen avs-train
# on a tiny synthetic store (4 videos of 5 s at 64x64):
#   - --random-init with --visual resnet50: the set records the encoder, its stage maps have
#     ResNet-50's 256/512/1024/2048 channels at 1/4..1/32 of the frame;
#   - --visual resnet50=W (the reduced torchvision fixture's weights): a record's stage maps,
#     logits and Grad-CAM weights equal torchvision's on the record's image (float64 reference,
#     within max(1e-4, 3 x PyTorch float32's own distance); tests/gen/model_resnet.py check),
#     and `avs-model run resnet50` on the fixture's images likewise;
#   - frozen avs-train on the resnet50 set (the C3N head takes the set's channels), the run
#     records backbone resnet50; finetune mode refused with the reason;
#   - avs-train --model tpavi (AVSBench's baseline) on it: recorded as model TPAVI with switches
#     AF and BCE, official parameter names in the checkpoint, avs-predict runs it; CCAM
#     switches with it and a resume with another --model refused;
#   - a checkpoint of another architecture refused, naming the tensor; nothing registered.
set -u
. tests/lib.sh
need sqlite3
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 4 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
q() { sqlite3 "$T/st/avs.db" "$1"; }
W=tests/fixtures/model/resnet_small.weights.safetensors

"$B/avs-features" -q -j 2 --root "$T/st" --random-init 2 --visual resnet50 --set rn
expect_eq "$?" 0 "avs-features --random-init 2 --visual resnet50"
expect_eq "$(q "SELECT json_extract(config, '$.visual.name') || ' ' || json_extract(config, '$.visual.weights') FROM feature_sets WHERE name = 'rn'")" \
  "resnet50 random-init 2" "set config records the encoder"
uid=$(q "SELECT uid FROM videos ORDER BY uid LIMIT 1")
"$B/avs-features" dump -q --root "$T/st" --set rn --video "$uid" --k 1 --out "$T/d.st" 2>/dev/null
shapes=$(head -c 4000 "$T/d.st" | grep -ao '"stage[1-4]":{"dtype":"F32","shape":\[[0-9,]*\]' | sed 's/.*shape"://' | tr '\n' ' ')
expect_eq "$shapes" "[256,16,16] [512,8,8] [1024,4,4] [2048,2,2] " "stage maps 256/512/1024/2048 at 1/4..1/32"

"$B/avs-features" -q -j 2 --root "$T/st" --random-init 2 --visual "resnet50=$W" --set small
expect_eq "$?" 0 "avs-features --visual resnet50=W"
expect_eq "$(q "SELECT length(json_extract(config, '$.visual.weights_hash')) FROM feature_sets WHERE name = 'small'")" 32 "weights hash recorded"
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  "$B/avs-features" dump -q --root "$T/st" --set small --video "$uid" --k 2 --out "$T/d2.st" 2>/dev/null
  /usr/bin/python3 tests/gen/model_resnet.py check "$W" "$T/d2.st" > "$T/check.log" 2>&1
  expect_eq "$?" 0 "record k=2 equals torchvision ($(tr '\n' ';' < "$T/check.log"))"
  "$B/avs-model" run resnet50 -q --weights "$W" --inputs tests/fixtures/model/resnet_small.io.safetensors --out "$T/m.st"
  expect_eq "$?" 0 "avs-model run resnet50"
  /usr/bin/python3 tests/gen/model_resnet.py compare "$T/m.st" tests/fixtures/model/resnet_small.io.safetensors > "$T/cmp.log" 2>&1
  expect_eq "$?" 0 "avs-model run resnet50 equals torchvision ($(tr '\n' ';' < "$T/cmp.log"))"
else
  echo "note: no torch/torchvision in /usr/bin/python3: record not checked against torchvision"
fi

train() { "$B/avs-train" -q --root "$T/st" --subset s4 --width 16 --batch 2 --epochs 1 --lr 1e-3 --seed 7 "$@"; }
train --features rn --run r1; expect_eq "$?" 0 "frozen avs-train on the resnet50 set"
expect_eq "$(q "SELECT status || ' ' || json_extract(config, '$.backbone') FROM runs WHERE name = 'r1'")" "done resnet50" "run records backbone resnet50"
train --features rn --run tp --model tpavi; expect_eq "$?" 0 "avs-train --model tpavi (AVSBench's baseline)"
expect_eq "$(q "SELECT status || ' ' || json_extract(config, '$.model') || ' ' || json_extract(config, '$.switches') || ' ' || json_extract(config, '$.loss') FROM runs WHERE name = 'tp'")" \
  "done TPAVI AF bce on frame 1" "the baseline run records model TPAVI, switches AF, BCE"
head -c 20000 "$T/st/runs/tp/best.safetensors" | grep -aq '"conv1.conv2d_list.3.weight".*"tpavi_b4.g.weight"\|"tpavi_b4.g.weight".*"conv1.conv2d_list.3.weight"' ||
  fail "the baseline checkpoint holds the official names (conv<s>.conv2d_list, tpavi_b<s>)"
"$B/avs-predict" -q --root "$T/st" --run tp --out "$T/pred" 2>/dev/null; expect_eq "$?" 0 "avs-predict on the baseline run"
expect_eq "$(find "$T/pred" -name '*.png' | wc -l | tr -d ' ')" 5 "a mask per test second"
out=$(train --features rn --run tp2 --model tpavi --switches AF,CC 2>&1); expect_eq "$?" 1 "--model tpavi with CCAM switches refused"
out=$(train --features rn --run tp --model c3n --resume 2>&1); expect_eq "$?" 3 "resume with another --model refused"
echo "$out" | grep -q -- "--model c3n differs" || fail "resume message: $out"
# fine-tuning the ResNet-50 backbone (BatchNorm on the running statistics; avs_resnet_bwd)
train --features rn --run r2 --mode finetune; expect_eq "$?" 0 "finetune on a resnet50 set"
expect_eq "$(q "SELECT json_extract(config, '$.mode') || ' ' || json_extract(config, '$.backbone') FROM runs WHERE name = 'r2'")" \
  "finetune resnet50" "the finetune run records mode and backbone"
bb=$T/st/runs/r2/backbone_best.safetensors
head -c 20000 "$bb" | grep -q '"format":"avs-resnet-finetune"' || fail "backbone format avs-resnet-finetune"
head -c 40000 "$bb" | grep -aq '"layer4.2.conv3.weight"' || fail "torchvision names in the backbone file"
"$B/avs-predict" -q --root "$T/st" --run r2 --out "$T/pred2" 2>/dev/null; expect_eq "$?" 0 "avs-predict on the fine-tuned resnet50 run"
expect_eq "$(find "$T/pred2" -name '*.png' | wc -l | tr -d ' ')" 5 "a mask per test second (fine-tuned resnet50)"

out=$("$B/avs-features" -q --root "$T/st" --random-init 2 --visual resnet50=tests/fixtures/features/pvt_small.weights.safetensors --set bad 2>&1); rc=$?
expect_eq "$rc" 3 "a PVTv2 checkpoint as resnet50 refused"
echo "$out" | grep -q 'conv1.weight' || fail "message names the tensor: $out"
expect_eq "$(q "SELECT count(*) FROM feature_sets WHERE name = 'bad'")" 0 "nothing registered"
finish
