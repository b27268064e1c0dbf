#!/bin/bash
# test_finetune_tpavi_cli.sh: avs-train --model tpavi --mode finetune (AVSBench's baseline with
# its visual backbone trained, gradients routed from its neck into the encoder) end to end on a
# tiny synthetic store (3 videos of 5 s at 64x64, one per split; random-init PVTv2-b0
# features; head width 16, one video per step):
#   - a run stopped after its first step (--max-steps 1 of 2 epochs) records model TPAVI and
#     mode finetune, and its backbone file has non-zero Adam moments for every tensor of b0 but
#     the ImageNet head (which the stage maps do not reach): every backbone tensor got a
#     gradient at step 1 through the neck, so its weights left the initial ones;
#   - --resume finishes it: status done, every epoch's loss finite, the backbone weights of the
#     last step differ from those after step 1 (tests/gen/st_compare.py), and the checkpoint
#     and backbone files equal an uninterrupted run's byte for byte;
#   - avs-predict (store mode) runs the fine-tuned backbone + baseline head on every test second.
# The neck's input gradients themselves: tests/test_model_neck.c (finite differences) and
# tests/test_model_tpavi.sh (PyTorch); other encoders' fine-tune: test_finetune_swin_cli.sh.
set -u
. tests/lib.sh
need sqlite3 cmp
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || { echo "SKIP: needs /usr/bin/python3 with numpy"; exit 77; }
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 3 --seconds 5 --seed 3 --size 64x64 --fps 5
"$B/avs-ingest" -q -j 2 --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
"$B/avs-features" -q -j 2 --root "$T/st" --random-init 2 --visual pvt_v2_b0 --set f || fail "features"
q() { sqlite3 "$T/st/avs.db" "$1"; }
train() { "$B/avs-train" -q -j 2 --root "$T/st" --subset s4 --width 16 --batch 1 --epochs 2 --lr 1e-3 \
  --seed 7 --model tpavi --mode finetune "$@"; }

train --run a --max-steps 1 2> "$T/a.err"; expect_eq "$?" 0 "baseline finetune run stopped after one step"
expect_eq "$(q "SELECT status || ' ' || json_extract(config, '$.model') || ' ' || json_extract(config, '$.mode') FROM runs WHERE name = 'a'")" \
  "interrupted TPAVI finetune" "run records model TPAVI and mode finetune"
bb1=$T/st/runs/a/backbone-1.safetensors
head -c 20000 "$bb1" | grep -q '"format":"avs-pvt-finetune"' || fail "backbone-1 in format avs-pvt-finetune"
cp "$bb1" "$T/bb1.safetensors"
zero=$($py - "$T/bb1.safetensors" <<'EOF'
import sys
sys.path.insert(0, 'tests/gen')
import numpy as np
import st_compare
t = st_compare.load(sys.argv[1])
m = sorted(k for k in t if k.startswith('adam.m.'))
print(len(m), ' '.join(k for k in m if not np.abs(t[k]).any()))
EOF
)
expect_eq "$zero" "178 adam.m.head.bias adam.m.head.weight" \
  "step 1 gave every backbone tensor a gradient (non-zero Adam moments) but the ImageNet head's"

"$B/avs-train" -q -j 2 --root "$T/st" --run a --resume; expect_eq "$?" 0 "resume the baseline finetune run"
expect_eq "$(q "SELECT status FROM runs WHERE name = 'a'")" "done" "resumed run done"
expect_eq "$(q "SELECT count(*) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'a' AND typeof(e.train_loss) = 'real' AND abs(e.train_loss) < 1e30")" \
  "2" "both epochs have a finite loss"
bb2=$T/st/runs/a/backbone-2.safetensors
[ -f "$bb2" ] || fail "backbone-2.safetensors after the resumed step"
$py tests/gen/st_compare.py "$T/bb1.safetensors" "$bb2" --skip adam. > "$T/cmp.txt"
expect_eq "$?" 1 "backbone weights moved after step 1 ($(cat "$T/cmp.txt"))"

train --run b; expect_eq "$?" 0 "uninterrupted baseline finetune run"
for f in last.safetensors backbone-2.safetensors backbone_best.safetensors; do
  cmp -s "$T/st/runs/a/$f" "$T/st/runs/b/$f"; expect_eq "$?" 0 "resumed == uninterrupted: $f"
done

"$B/avs-predict" -q --root "$T/st" --run a --record > /dev/null; expect_eq "$?" 0 "predict the fine-tuned baseline run"
expect_eq "$(find "$T/st/runs/a/pred-s4-test" -name '*.logits' | wc -l)" \
  "$(q "SELECT count(*) FROM seconds s JOIN videos v ON v.id = s.video_id WHERE v.subset = 's4' AND v.split = 'test'")" \
  "every test second predicted"
finish
