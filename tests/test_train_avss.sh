#!/bin/bash
# test_train_avss.sh: C3N on AVSBench-semantic (issue 14): avs-train --subset avss and
# avs-predict on a tiny AVSS store (tests/avss_store.sh: synthetic S4/MS3 data converted; 64x64
# frames, random-init PVTv2-b0 features with flipped copies, head width 16, 9 classes):
#   - avs-features accepts the AVSS store; the run records T 10 and the class count;
#   - a few frozen training steps on cpu and on guard give identical checkpoints;
#   - the training loss decreases over a short run; val mIoU (official AVSS) recorded;
#   - stopped mid-epoch and resumed with another thread count == uninterrupted (bytes);
#   - avs-predict: <uid>_<i>.png class indices (i = k-1) for every real test second (padded
#     frames none), .logits with K channels (header byte 28), predictions rows, --color RGB in
#     the official palette; --record / finetune refused with the way to go.
set -u
. tests/lib.sh
need sqlite3 cmp od
. tests/media.sh
. tests/avss_store.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/a" --subset s4 --videos 6 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-synth" -q --media "$media" --out "$T/b" --subset s4 --videos 3 --seconds 10 --seed 5 --size 64x64 --fps 10
"$B/avs-synth" -q --media "$media" --out "$T/c" --subset ms3 --videos 4 --seconds 5 --seed 4 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/a" --avsbench "$T/b" --avsbench "$T/c" || fail "ingest"
avss_store "$T/st" || fail "AVSS conversion"
db=$T/st/avs.db
q() { sqlite3 "$db" "$1"; }
K=$(q "SELECT count(*) FROM classes WHERE dataset = 'avss'")
expect_eq "$K" 9 "9 classes"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --flip --set f; expect_eq "$?" 0 "avs-features on an AVSS store"
train() { "$B/avs-train" -q --root "$T/st" --subset avss --width 16 --batch 2 --lr 1e-3 --seed 7 "$@"; }
ckpt() { echo "$T/st/runs/$1/$2.safetensors"; }
epochs() { q "SELECT group_concat(printf('%.17g %.17g %.17g', train_loss, val_miou, val_fscore), ';') FROM
              (SELECT e.* FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = '$1' ORDER BY epoch)"; }

# cpu vs guard: a few frozen steps, the same bytes
train --run g1 --epochs 1 --max-steps 3; expect_eq "$?" 0 "3 steps on cpu"
train --run g2 --epochs 1 --max-steps 3 --device guard; expect_eq "$?" 0 "3 steps on guard"
cmp -s "$(ckpt g1 last)" "$(ckpt g2 last)"; expect_eq "$?" 0 "cpu == guard: identical checkpoint after 3 steps"

# a short run: loss decreases, val mIoU recorded, the run's config
train --run a --epochs 4; expect_eq "$?" 0 "run a (4 epochs)"
expect_eq "$(q "SELECT (SELECT train_loss FROM run_epochs WHERE run_id = r.id AND epoch = 4) <
                       (SELECT train_loss FROM run_epochs WHERE run_id = r.id AND epoch = 1) FROM runs r WHERE name = 'a'")" 1 "training loss decreases"
expect_eq "$(q "SELECT min(val_miou >= 0 AND val_miou <= 1 AND val_fscore >= 0) FROM run_epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'a'")" 1 "val mIoU and F recorded"
expect_eq "$(q "SELECT json_extract(config, '$.T') || ' ' || json_extract(config, '$.classes') || ' ' || json_extract(config, '$.subset') FROM runs WHERE name = 'a'")" "10 $K avss" "config: T 10, classes, subset"

# stopped mid-epoch 2 (6 train videos / batch 2 = 3 steps per epoch), resumed with -j 1
train --run d --epochs 4 --max-steps 4; expect_eq "$?" 0 "--max-steps 4"
"$B/avs-train" -q --root "$T/st" --run d --resume -j 1; expect_eq "$?" 0 "resume with -j 1"
cmp -s "$(ckpt a last)" "$(ckpt d last)"; expect_eq "$?" 0 "resumed == uninterrupted (last checkpoint bytes)"
cmp -s "$(ckpt a best)" "$(ckpt d best)"; expect_eq "$?" 0 "resumed == uninterrupted (best checkpoint bytes)"
expect_eq "$(epochs d)" "$(epochs a)" "resumed == uninterrupted (per-epoch numbers)"

# avs-predict
"$B/avs-predict" -q --root "$T/st" --run a; expect_eq "$?" 0 "predict"
pred=$T/st/runs/a/pred-avss-test
nsec=$(q "SELECT count(*) FROM seconds s JOIN videos v ON v.id = s.video_id WHERE v.subset = 'avss' AND v.split = 'test'")
expect_eq "$(find "$pred" -name '*.png' | wc -l)" "$nsec" "a PNG for every real test second"
expect_eq "$(find "$pred" -name '*.logits' | wc -l)" "$nsec" "a .logits for every real test second"
uid=$(q "SELECT uid FROM videos WHERE subset = 'avss' AND split = 'test' AND n_seconds = 5 ORDER BY uid LIMIT 1")
expect_eq "$(ls "$pred/$uid" | grep -c '\.png$') $(ls "$pred/$uid" | grep -c "^${uid}_0\.png\$") $(ls "$pred/$uid" | grep -c "^${uid}_5")" "5 1 0" "official naming <uid>_<i>.png, i = 0..4; no padded frames"
lg=$pred/$uid/${uid}_0.logits
expect_eq "$(od -A n -t u4 -j 16 -N 16 "$lg" | tr -s ' ')" " 64 64 1 $K" "logits header: 64x64 float32, byte 28 = K"
expect_eq "$(stat -c %s "$lg")" "$((32 + 4 * K * 64 * 64))" "logits file holds K maps"
expect_eq "$(q "SELECT count(*) FROM predictions p JOIN runs r ON r.id = p.run_id WHERE r.name = 'a'")" "$nsec" "predictions rows"
expect_eq "$(q "SELECT min(p.path LIKE '%_' || (p.k - 1) || '.png') FROM predictions p JOIN runs r ON r.id = p.run_id WHERE r.name = 'a'")" 1 "predictions row k names <uid>_<k-1>.png"
chk=$(/usr/bin/python3 - "$pred" "$K" <<'PY'
import glob, sys
from PIL import Image
ok = all(Image.open(p).mode == 'L' and max(Image.open(p).getdata()) < int(sys.argv[2])
         for p in glob.glob(sys.argv[1] + '/*/*.png'))
print('ok' if ok else 'bad')
PY
)
expect_eq "$chk" ok "8-bit class-index PNGs, every index < K"
"$B/avs-predict" -q --root "$T/st" --run a --color --out "$T/col"; expect_eq "$?" 0 "predict --color"
chk=$(/usr/bin/python3 - "$T/col" "$pred" <<'PY'
import glob, os, sys
from PIL import Image
def pal(j):
    c = [0, 0, 0]; i = 0
    while j >> (3 * i):
        for ch in range(3):
            c[ch] |= ((j >> (3 * i + ch)) & 1) << (7 - i)
        i += 1
    return tuple(c)
bad = 0
for p in glob.glob(sys.argv[1] + '/*/*.png'):
    rgb, idx = Image.open(p), Image.open(os.path.join(sys.argv[2], *p.split('/')[-2:]))
    bad += rgb.mode != 'RGB' or any(pal(i) != c for i, c in zip(idx.getdata(), rgb.getdata()))
print('ok' if bad == 0 else 'bad %d' % bad)
PY
)
expect_eq "$chk" ok "--color: the official palette colour of each class index"

# avs-eval --semantic reads all three forms at the store's size (64x64: NEAREST to 224) alike
ev() { local o; o=$("$B/avs-eval" --root "$T/st" --semantic --pred "$1" --split test) || return $?; echo "$o" | sed -n 3p; }
h_logits=$(ev "$pred"); expect_eq "$?" 0 "avs-eval --semantic on the .logits"
cp -r "$pred" "$T/idx"
find "$T/idx" -name '*.logits' -delete
case "$h_logits" in *avss-official*) n_checks=$((n_checks + 1));; *) fail "eval headline: $h_logits";; esac
expect_eq "$(ev "$T/idx")" "$h_logits" "class-index PNGs give the .logits' numbers"
expect_eq "$(ev "$T/col")" "$h_logits" "palette colour PNGs give the .logits' numbers"

# refused, with the way to go
out=$("$B/avs-predict" -q --root "$T/st" --run a --record --out "$T/r" 2>&1); expect_eq "$?" 3 "--record on an AVSS run: exit 3"
case "$out" in *"--semantic"*) n_checks=$((n_checks + 1));; *) fail "message names avs-eval --semantic: $out";; esac
out=$(train --run ft --mode finetune --epochs 1 2>&1); expect_eq "$?" 3 "finetune on AVSS: exit 3"
case "$out" in *"frozen"*) n_checks=$((n_checks + 1));; *) fail "message says frozen only: $out";; esac
finish
