#!/bin/bash
# test_finetune_swin_cli.sh: avs-train --mode finetune on a Swin set end to end (3 synthetic videos
# at 224x224, random-init swin_t features, one video per split):
#   - the run trains the Swin backbone: backbone_*.safetensors in format avs-swin-finetune with
#     Swin's official names;
#   (resume bit-exactness: tests/test_finetune_swin.c at the backbone's level, test_train.sh for
#   the run's machinery, which is the same for every encoder; kept out here for time)
#   - avs-predict (store mode) runs with the fine-tuned backbone: every test second predicted.
set -u
. tests/lib.sh
need sqlite3 cmp
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 3 --seconds 5 --seed 3 --size 224x224 --fps 5
"$B/avs-ingest" -q --root "$T/st" --size 224x224 --avsbench "$T/s4" || fail "ingest"
"$B/avs-features" -q -j 2 --root "$T/st" --random-init 2 --visual swin_t --set sw || fail "features"
q() { sqlite3 "$T/st/avs.db" "$1"; }
train() { "$B/avs-train" -q -j 2 --root "$T/st" --subset s4 --width 16 --batch 1 --epochs 1 --lr 1e-3 --seed 7 --mode finetune "$@"; }
train --run a; expect_eq "$?" 0 "finetune run on a swin_t set"
expect_eq "$(q "SELECT json_extract(config, '$.mode') || ' ' || json_extract(config, '$.backbone') FROM runs WHERE name = 'a'")" \
  "finetune swin_t" "run records mode and backbone"
bb=$T/st/runs/a/backbone_best.safetensors
head -c 20000 "$bb" | grep -q '"format":"avs-swin-finetune"' || fail "backbone format avs-swin-finetune"
head -c 20000 "$bb" | grep -q 'layers.2.blocks.5.attn.relative_position_bias_table' || fail "official Swin names in the backbone file"
"$B/avs-predict" -q --root "$T/st" --run a --record > /dev/null; expect_eq "$?" 0 "predict a fine-tuned Swin run"
expect_eq "$(find "$T/st/runs/a/pred-s4-test" -name '*.logits' | wc -l)" "$(q "SELECT count(*) FROM seconds s JOIN videos v ON v.id = s.video_id WHERE v.subset = 's4' AND v.split = 'test'")" "every test second predicted"
finish
