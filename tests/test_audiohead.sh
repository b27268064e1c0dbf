#!/bin/bash
# avs-audiohead (audiohead/audiohead.h) on fixtures that tests/gen/audiohead_fixtures.py writes
# with its own TFRecord + protobuf encoder:
#  - `read` lists every record (ids, times, labels, seconds) as written, packed and unpacked
#    scalars; a flipped data byte, a damaged length and a cut file -> exit 3 naming the file, the
#    record index and the CRC / length; a training run on such a file writes nothing
#  - metrics: per-class AP and AUC equal sklearn's algorithm (re-written in numpy) on tied scores
#  - 5 Adam steps from our initial weights, in our batch order, equal PyTorch's (float64) within
#    3x PyTorch float32's own error; the PCA fold is exact; same seed -> same bytes
#  - training learns (mAP on eval above the untrained head's) and `eval` reproduces train's mAP
#  - the attention head (--model attention, the default; Kong's FeatureLevelSingleAttention):
#    it learns (mAP clearly above the untrained network's), eval reproduces it, same seed -> same
#    bytes, official names + PCA in the file
#  - store path: a head trained on TFRecords (folded through the PCA) loads in avs-features with
#    --audio-head and its logits are head.weight . audio_emb + head.bias; an attention head loads
#    and its logits are the network's on the postprocessed embedding (PCA from the head file,
#    else the VGGish file, else an error); a head trained on the
#    set's own embeddings with a segment CSV; bad CSV rows named by file and line
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg
py=/usr/bin/python3
[ -x $py ] && $py -c 'import numpy, torch' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy and python3-torch (bash scripts/deps.sh --bench)"; exit 77; }
A="$AVS_BIN/avs-audiohead"; gen=$(cd "$(dirname "$0")/gen" && pwd)
cls="--classes $(cd "$(dirname "$0")/.." && pwd)/features/data/audioset_class_labels_indices.csv"
fx=$AVS_TMP/fx; T=$AVS_TMP
$py "$gen/audiohead_fixtures.py" "$fx" || { fail "fixtures"; finish; exit; }

# --- reader
"$A" read "$fx/train.tfrecord" > "$T/listing.txt"; expect_eq $? 0 "read train.tfrecord"
cmp -s "$T/listing.txt" "$fx/listing.txt" || fail "read: listing differs from what was written"
n_checks=$((n_checks + 1))
expect_eq "$("$A" read "$fx/eval.tfrecord" | wc -l)" 30 "read eval.tfrecord (unpacked scalars)"
bad() {  # file, words the message must hold
  local f=$1; shift
  "$A" read "$fx/$f" > /dev/null 2> "$T/err"; expect_eq $? 3 "read $f"
  for w in "$f" "$@"; do grep -q -- "$w" "$T/err" || fail "read $f: message lacks '$w': $(cat "$T/err")"; done
}
bad bad_crc.tfrecord "record 2" "data's CRC32C"
bad bad_len_crc.tfrecord "record 1" "length's CRC32C"
bad trunc.tfrecord "record 3" "past the end"
bad pca.safetensors "record 0"
bad garbage.tfrecord "record 1" "broken wire format"
bad short_emb.tfrecord "record 0" "not one 128-byte value"
"$A" train -q --train "$fx/bad_crc.tfrecord" --pca "$fx/pca.safetensors" --iters 1 --out "$T/x.st" 2> "$T/err"
expect_eq $? 3 "train on a damaged file"
expect_eq "$(ls "$T" | grep -c '^x\.st')" 0 "nothing written after a damaged file"
"$A" train -q --train "$fx/train.tfrecord" --iters 1 --out "$T/x.st" 2> "$T/err"
expect_eq $? 3 "TFRecord training without --pca"
grep -q -- "--pca" "$T/err" || fail "no --pca hint: $(cat "$T/err")"

# --- metrics against sklearn's algorithm
"$A" metrics --scores "$fx/scores.safetensors" > "$T/m.json"; expect_eq $? 0 "metrics"
$py - "$T/m.json" "$fx/scores_ref.json" <<'EOF' || fail "AP/AUC differ from the reference"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = 0
for key in ('ap', 'auc'):
    for j, (x, y) in enumerate(zip(a[key], b[key])):
        x = -1.0 if x is None else x
        if abs(x - y) > 1e-12: print('%s[%d]: %r vs %r' % (key, j, x, y)); bad += 1
want = sum(v for v in b['ap'] if v >= 0) / sum(1 for v in b['ap'] if v >= 0)
if abs(a['map'] - want) > 1e-12 or a['classes_with_positives'] != 4: print('mAP', a['map'], want); bad += 1
print('metrics: %d classes compared, %d differences' % (len(b['ap']), bad)); sys.exit(1 if bad else 0)
EOF
n_checks=$((n_checks + 1))

# --- 5 steps against PyTorch, determinism
tr="--model linear --train $fx/train.tfrecord --pca $fx/pca.safetensors --seed 7 --batch 8 --lr 0.01 -q"
"$A" train $tr --iters 0 --out "$T/init.st"; expect_eq $? 0 "initial head"
"$A" train $tr --iters 5 --trace "$T/trace1" --out "$T/h1.st"; expect_eq $? 0 "5 steps"
$py "$gen/audiohead_ref.py" "$fx" "$T/init.st" "$T/trace1" "$T/h1.st" 0.01 || fail "PyTorch reference"
n_checks=$((n_checks + 1))
"$A" train $tr --iters 5 --trace "$T/trace2" --out "$T/h2.st"
cmp -s "$T/h1.st" "$T/h2.st" && cmp -s "$T/trace1" "$T/trace2" || fail "same seed, other bytes"
"$A" train $tr --iters 5 --seed 8 --out "$T/h3.st"
cmp -s "$T/h1.st" "$T/h3.st" && fail "another seed, same head"
n_checks=$((n_checks + 2))

# --- it learns; eval reproduces train's numbers
ev="--eval $fx/eval.tfrecord"
"$A" eval --head "$T/init.st" $ev --json > "$T/e0.json"; expect_eq $? 0 "eval of the initial head"
"$A" train --model linear --train "$fx/train.tfrecord" --pca "$fx/pca.safetensors" $ev --iters 120 \
  --batch 16 --json --out "$T/h.st" > "$T/t.json"; expect_eq $? 0 "120 steps"
"$A" eval --head "$T/h.st" $ev --json > "$T/e1.json"; expect_eq $? 0 "eval"
$py - "$T/e0.json" "$T/t.json" "$T/e1.json" <<'EOF' || fail "training did not learn, or eval differs"
import json, sys
e0, t, e1 = (json.load(open(p)) for p in sys.argv[1:4])
print('mAP untrained %.4f, trained %.4f (eval %.4f), %d classes with positives, mean AUC %.4f'
      % (e0['map'], t['map'], e1['map'], t['classes_with_positives'], t['mauc']))
ok = t['map'] > 0.7 and t['map'] > e0['map'] + 0.2 and t['map'] == e1['map'] and t['classes_with_positives'] == 6
sys.exit(0 if ok else 1)
EOF
n_checks=$((n_checks + 1))

# --- the attention head (Kong's FeatureLevelSingleAttention, the default model): it learns
#     (mAP well above the untrained network's), eval reproduces train's mAP, same seed -> same
#     bytes, the file holds the official names and the PCA
at="--train $fx/train.tfrecord --pca $fx/pca.safetensors $ev --batch 16 --hidden 64 --lr 0.005 --json"
"$A" train $at --iters 0 --out "$T/a0.st" > "$T/a0.json"; expect_eq $? 0 "untrained attention head"
"$A" train $at --iters 120 --out "$T/a1.st" > "$T/a1.json"; expect_eq $? 0 "attention: 120 steps"
"$A" train $at --iters 10 --out "$T/a2.st" > /dev/null; "$A" train $at --iters 10 --out "$T/a3.st" > /dev/null
cmp -s "$T/a2.st" "$T/a3.st" || fail "attention: same seed, other bytes"
"$A" eval --head "$T/a1.st" $ev --json > "$T/ae.json"; expect_eq $? 0 "eval of the attention head"
n_checks=$((n_checks + 1))
$py - "$T/a0.json" "$T/a1.json" "$T/ae.json" "$T/a1.st" <<EOF || fail "attention head: did not learn, eval differs, or file names"
import json, sys; sys.path.insert(0, '$gen'); import model_st as m
e0, t, e = (json.load(open(p)) for p in sys.argv[1:4])
print('attention head mAP: untrained %.4f, trained %.4f (eval %.4f), mean AUC %.4f'
      % (e0['map'], t['map'], e['map'], t['mauc']))
names = set(m.load(sys.argv[4]))
want = {'emb.bn0.weight', 'emb.conv1.weight', 'emb.conv3.weight', 'emb.bn3.running_var',
        'attention.att.weight', 'attention.cla.bias', 'bn_attention.running_mean',
        'fc_final.weight', 'fc_final.bias', 'pca_eigen_vectors', 'pca_means'}
ok = t['map'] > 0.8 and t['map'] > e0['map'] + 0.3 and t['map'] == e['map'] and want <= names
sys.exit(0 if ok else 1)
EOF
n_checks=$((n_checks + 1))

# --- the store: the head loads in avs-features; training from the set's embeddings
mkdir -p "$T/in/cat"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=160x120:rate=25" -f lavfi \
  -i "sine=frequency=440:sample_rate=16000" -t 3.2 -c:v libx264 -pix_fmt yuv420p -c:a aac \
  -shortest "$T/in/cat/a.mp4" || fail "clip a"
ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=160x120:rate=25" -f lavfi \
  -i "anoisesrc=d=5:c=pink:r=16000" -t 4.1 -c:v libx264 -pix_fmt yuv420p -c:a aac \
  -shortest "$T/in/cat/b.mp4" || fail "clip b"
"$AVS_BIN/avs-ingest" -q -j 2 --size 64x64 --root "$T/s" "$T/in"; expect_eq $? 0 "ingest"
"$AVS_BIN/avs-features" -q -j 2 --root "$T/s" --random-init 3 --set t \
  --audio "vggish=$fx/vggish128.safetensors" --audio-head "$T/h.st"; expect_eq $? 0 "avs-features --audio-head (trained head)"
"$AVS_BIN/avs-features" dump --root "$T/s" --set t --video b --k 3 --out "$T/d.st"; expect_eq $? 0 "dump"
$py - "$T/d.st" "$T/h.st" <<EOF || fail "avs-features logits are not the trained head's"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
d, h = m.load(sys.argv[1]), m.load(sys.argv[2])
want = h['head.weight'].astype(np.float64) @ d['audio_emb'] + h['head.bias']
err = np.abs(d['audio_logits'] - want).max() / np.abs(want).max()
print('audio_logits vs head(audio_emb): %.3g relative' % err); sys.exit(0 if err < 1e-5 else 1)
EOF
n_checks=$((n_checks + 1))
# the attention head in avs-features, as C3N runs it: each second's embedding postprocessed with
# the head file's PCA, then the network alone on it (eval statistics); the PCA may come from the
# VGGish file instead; neither -> an error naming both files
"$AVS_BIN/avs-features" -q -j 2 --root "$T/s" --random-init 3 --set ta \
  --audio "vggish=$fx/vggish128.safetensors" --audio-head "$T/a1.st"; expect_eq $? 0 "avs-features --audio-head (attention head)"
"$AVS_BIN/avs-features" dump --root "$T/s" --set ta --video b --k 3 --out "$T/da.st"; expect_eq $? 0 "dump (attention)"
$py - "$T/da.st" "$T/a1.st" "$fx/vggish128.safetensors" "$fx/pca.safetensors" "$T" <<EOF || fail "avs-features logits are not the attention head's"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
d, h = m.load(sys.argv[1]), {k: v.astype(np.float64) for k, v in m.load(sys.argv[2]).items()}
s = h['pca_eigen_vectors'] @ (d['audio_emb'].astype(np.float64) - h['pca_means'].reshape(-1))
u = (np.clip(s, -2, 2) + 2) * 255 / 4
near = np.abs(u - np.floor(u) - 0.5) < 1e-3  # a rounding boundary: float32 may round either way
x = (np.round(u) - 128) / 128
def bn(v, p): return (v - h[p + '.running_mean']) / np.sqrt(h[p + '.running_var'] + 1e-5) * h[p + '.weight'] + h[p + '.bias']
a = bn(x, 'emb.bn0')
for l in (1, 2, 3): a = np.maximum(bn(h['emb.conv%d.weight' % l][:, :, 0, 0] @ a, 'emb.bn%d' % l), 0)
b = h['attention.cla.weight'][:, :, 0, 0] @ a + h['attention.cla.bias']  # one step: attention weight 1
b = np.maximum(bn(b, 'bn_attention'), 0)
want = h['fc_final.weight'] @ b + h['fc_final.bias']
err = np.abs(d['audio_logits'] - want).max() / np.abs(want).max()
print('audio_logits vs FeatureLevelSingleAttention(postprocess(audio_emb)): %.3g relative (%d values at a rounding boundary)' % (err, near.sum()))
# files for the PCA fallback: the head without its PCA, the VGGish weights with it
head = m.load(sys.argv[2]); pca = m.load(sys.argv[4])
m.save(sys.argv[5] + '/a_nopca.st', {k: v for k, v in head.items() if not k.startswith('pca_')})
vg = m.load(sys.argv[3]); vg.update(pca); m.save(sys.argv[5] + '/vggish_pca.st', vg)
sys.exit(0 if near.any() or err < 1e-4 else 1)
EOF
n_checks=$((n_checks + 1))
"$AVS_BIN/avs-features" -q -j 2 --root "$T/s" --random-init 3 --set tb \
  --audio "vggish=$T/vggish_pca.st" --audio-head "$T/a_nopca.st"; expect_eq $? 0 "attention head, PCA from the VGGish file"
"$AVS_BIN/avs-features" dump --root "$T/s" --set tb --video b --k 3 --out "$T/db.st"
$py - "$T/da.st" "$T/db.st" <<EOF || fail "PCA from the VGGish file: other logits"
import sys; sys.path.insert(0, '$gen'); import numpy as np, model_st as m
a, b = m.load(sys.argv[1]), m.load(sys.argv[2]); sys.exit(0 if np.array_equal(a['audio_logits'], b['audio_logits']) else 1)
EOF
n_checks=$((n_checks + 1))
"$AVS_BIN/avs-features" -q -j 2 --root "$T/s" --random-init 3 --set tc \
  --audio "vggish=$fx/vggish128.safetensors" --audio-head "$T/a_nopca.st" 2> "$T/err"
expect_eq $? 3 "attention head without any PCA"
for w in a_nopca.st vggish128.safetensors pca_eigen_vectors; do
  grep -q "$w" "$T/err" || fail "no PCA: message lacks '$w': $(cat "$T/err")"
done
cat > "$T/seg.csv" <<'EOF'
# Segments csv created for the test
# YTID, start_seconds, end_seconds, positive_labels
a, 0.000, 3.000, "/m/09x0r"
b, 0.000, 2.000, "/m/05zppz,/m/07rwj3x"
b, 2.000, 4.000, "/m/07rwj3x"
nosuchvideo, 0.000, 10.000, "/m/09x0r"
EOF
st="--root $T/s --set t $cls"
"$A" train $st --labels "$T/seg.csv" --iters 1 --out "$T/y.st" 2> "$T/err"
expect_eq $? 3 "the attention head on raw store embeddings (no --pca)"
grep -q -- "--pca" "$T/err" || fail "attention without --pca: no hint: $(cat "$T/err")"
"$A" train $st --model linear --labels "$T/seg.csv" --eval-labels "$T/seg.csv" --iters 30 --batch 4 \
  --json --out "$T/hs.st" > "$T/s.json" 2> "$T/err"; expect_eq $? 0 "train from the store"
grep -q '"train_clips":3' "$T/s.json" || fail "store clips: $(cat "$T/s.json")"
grep -q "1 rows name no second" "$T/err" || fail "unmatched CSV row not reported"
"$A" train $st --labels "$T/seg.csv" --train "$fx/train.tfrecord" --pca "$fx/pca.safetensors" \
  --hidden 16 --iters 3 --batch 4 --json --out "$T/hm.st" > "$T/m2.json" 2>/dev/null
expect_eq $? 0 "store + TFRecords with --pca (attention head)"
grep -q '"train_clips":63' "$T/m2.json" || fail "mixed clips: $(cat "$T/m2.json")"
printf 'a, 0, 3, "/m/09x0r,/m/nonsense"\n' > "$T/bad.csv"
"$A" train $st --labels "$T/bad.csv" --iters 1 --out "$T/y.st" 2> "$T/err"; expect_eq $? 3 "bad label"
grep -q "bad.csv: line 1: label \"/m/nonsense\"" "$T/err" || fail "bad label message: $(cat "$T/err")"
"$A" train $st --labels "$T/seg.csv" --train "$fx/train.tfrecord" --iters 1 --out "$T/y.st" 2> "$T/err"
expect_eq $? 3 "raw store + TFRecords without --pca"
finish
