#!/bin/bash
# test_corrupt.sh: silent corruption is caught (README "Reliability"), end to end on a tiny
# synthetic store (64x64 frames, random-init PVTv2-b0 features, head width 16):
#   - 200 flipped bytes in the feature cache's records: avs-train refuses (exit 3) naming the
#     file, the video and second and `avs-features --rebuild --set f`; no run row, no checkpoint;
#     avs-predict on the damaged store refuses the same way;
#   - a flipped byte in the cache's field table: refused (header checksum);
#   - a NaN planted in a record with its checksum recomputed (only the NaN scan can see it):
#     refused naming the tensor;
#   - a flipped byte in a checkpoint's tensor data, or an edited config in its header:
#     --resume and avs-predict refuse naming the file;
#   - a huge learning rate: training stops at the first NaN/Inf loss or gradient with exit 3,
#     naming the epoch, step and loss; status 'failed' with that reason in runs.error; the last
#     checkpoint is the last good one, unchanged, and loads (a resume reaches the same step).
# Byte surgery goes through python3 (the fixture tool); the checksum is recomputed with
# libxxhash through ctypes.
set -u
. tests/lib.sh
need sqlite3 cmp python3
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 8 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
"$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0 --set f || fail "features"
train() { root=$1; shift; "$B/avs-train" -q --root "$root" --subset s4 --width 16 --batch 2 --seed 7 "$@"; }
runs() { sqlite3 "$1/avs.db" "SELECT count(*) FROM runs WHERE name = '$2'"; }
has() { n_checks=$((n_checks + 1)); case "$1" in *"$2"*) ;; *) fail "$3: no '$2' in: $1" ;; esac; }
lacks() { n_checks=$((n_checks + 1)); case "$1" in *"$2"*) fail "$3: '$2' in: $1" ;; esac; }

train "$T/st" --run good --epochs 1 --lr 1e-3; expect_eq "$?" 0 "a run on the sound cache"
train "$T/st" --run half --epochs 1 --lr 1e-3 --max-steps 2; expect_eq "$?" 0 "a run stopped after 2 steps"

# -- 200 flipped bytes in the cache's records
cp -r "$T/st" "$T/flip"
python3 - "$T/flip/features/f.bin" <<'EOF' || fail "flip bytes"
import random, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
data = struct.unpack_from('<Q', b, 32)[0]
rng = random.Random(17)
for i in rng.sample(range(data, len(b)), 200):
    b[i] ^= 1 << rng.randrange(8)
open(p, 'wb').write(b)
EOF
out=$(train "$T/flip" --run x --epochs 1 2>&1); expect_eq "$?" 3 "flipped cache: avs-train exit 3"
has "$out" "features/f.bin" "names the file"
has "$out" "checksum" "says the checksum failed"
has "$out" "second " "names the second"
has "$out" "avs-features --rebuild --set f" "names the fix"
uid=$(sqlite3 "$T/st/avs.db" "SELECT uid FROM videos ORDER BY uid" | while read -r u; do
  case "$out" in *"video $u second"*) echo "$u"; break ;; esac; done)
[ -n "$uid" ] || fail "names a video of the store: $out"; n_checks=$((n_checks + 1))
expect_eq "$(runs "$T/flip" x)" 0 "nothing trained: no run row"
expect_eq "$(ls "$T/flip/runs/x/"*.safetensors 2>/dev/null | wc -l)" 0 "nothing trained: no checkpoint"
out=$("$B/avs-predict" -q --root "$T/flip" --run good --out "$T/pred" 2>&1); expect_eq "$?" 3 "flipped cache: avs-predict exit 3"
has "$out" "checksum" "avs-predict says the checksum failed"
has "$out" "second " "avs-predict names the second"

# -- a flipped byte in the field table
cp -r "$T/st" "$T/head"
python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[64 + 2] ^= 4; open(p, "wb").write(b)' \
  "$T/head/features/f.bin"
out=$(train "$T/head" --run x --epochs 1 2>&1); expect_eq "$?" 3 "damaged header: exit 3"
has "$out" "header checksum mismatch" "names the header"
has "$out" "avs-features --rebuild --set f" "header: names the fix"

# -- a NaN in stage2 of a record, its checksum recomputed: only the NaN scan sees it
cp -r "$T/st" "$T/nan"
read -r nuid noff <<<"$(sqlite3 -separator ' ' "$T/st/avs.db" "SELECT v.uid, e.offset FROM feature_entries e
  JOIN videos v ON v.id = e.video_id WHERE v.split = 'train' AND e.k = 3 ORDER BY v.uid LIMIT 1")"
python3 - "$T/nan/features/f.bin" "$noff" <<'EOF' || fail "plant a NaN"
import ctypes, struct, sys
p, off = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, 'rb').read())
dtype, nf = struct.unpack_from('<II', b, 12); rb = struct.unpack_from('<Q', b, 24)[0]
pos, esz = 0, 2 if dtype else 4
for i in range(nf):
    name = bytes(b[64 + 64 * i:64 + 64 * i + 40]).split(b'\0')[0]
    nd = struct.unpack_from('<I', b, 64 + 64 * i + 40)[0]
    n = 1
    for s in struct.unpack_from('<4I', b, 64 + 64 * i + 44)[:nd]: n *= s
    if name == b'stage2': break
    pos += n * esz
at = off + pos + 5 * esz
b[at:at + esz] = b'\x00\x7e' if dtype else struct.pack('<f', float('nan'))
x = ctypes.CDLL('libxxhash.so.0'); x.XXH3_64bits_withSeed.restype = ctypes.c_uint64
x.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
rec = bytes(b[off:off + rb - 8])
struct.pack_into('<Q', b, off + rb - 8, x.XXH3_64bits_withSeed(rec, len(rec), off))
open(p, 'wb').write(b)
EOF
out=$(train "$T/nan" --run x --epochs 1 2>&1); expect_eq "$?" 3 "NaN in a record: exit 3"
has "$out" "tensor stage2 has a NaN/Inf at element 5" "names the tensor and element"
has "$out" "video $nuid second 3" "names the video and second"
lacks "$out" "checksum" "the checksum held (only the NaN scan caught it)"
expect_eq "$(runs "$T/nan" x)" 0 "NaN record: nothing trained"

# -- checkpoints: a flipped data byte (resume), an edited header (predict)
last=$T/st/runs/half/last.safetensors
cp "$last" "$T/last.keep"
python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-100] ^= 0x10; open(p, "wb").write(b)' "$last"
out=$("$B/avs-train" -q --root "$T/st" --run half --resume 2>&1); expect_eq "$?" 3 "flipped checkpoint: --resume exit 3"
has "$out" "$last: checkpoint damaged" "names the checkpoint"
cp "$T/last.keep" "$last"
"$B/avs-train" -q --root "$T/st" --run half --resume; expect_eq "$?" 0 "the intact checkpoint resumes"
best=$T/st/runs/good/best.safetensors
python3 - "$best" <<'EOF' || fail "edit the config"
import sys
p = sys.argv[1]; b = open(p, 'rb').read(); old = b'\\"seed\\":7'
assert old in b, 'no seed 7 in the config'
open(p, 'wb').write(b.replace(old, b'\\"seed\\":3', 1))
EOF
out=$("$B/avs-predict" -q --root "$T/st" --run good --out "$T/pred2" 2>&1); expect_eq "$?" 3 "edited checkpoint header: avs-predict exit 3"
has "$out" "$best: checkpoint damaged" "avs-predict names the checkpoint"

# -- divergence: a learning rate of 1e30 makes the loss NaN/Inf within a few steps
out=$(train "$T/st" --run nan --epochs 1 --lr 1e30 2>&1); expect_eq "$?" 3 "diverged: exit 3"
has "$out" "training diverged at epoch 1 step" "names the epoch and step"
has "$out" "is NaN/Inf (loss" "names the loss"
has "$out" "runs/nan/last.safetensors (optimiser step 0) is kept" "names the kept checkpoint"
expect_eq "$(sqlite3 "$T/st/avs.db" "SELECT status, error LIKE 'training diverged at epoch 1 step %' FROM runs WHERE name = 'nan'")" \
  "failed|1" "status failed, runs.error says why"
cp "$T/st/runs/nan/last.safetensors" "$T/nan.keep"
out2=$("$B/avs-train" -q --root "$T/st" --run nan --resume 2>&1); expect_eq "$?" 3 "resume: loads, diverges again"
expect_eq "${out2#*avs-train: }" "${out#*avs-train: }" "the same step and loss again"
cmp -s "$T/nan.keep" "$T/st/runs/nan/last.safetensors"; expect_eq "$?" 0 "the last good checkpoint is unchanged"
finish
