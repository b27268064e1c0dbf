#!/bin/bash
# test_features_panns.sh: avs-features with PANNs CNN14 as the audio encoder, end to end on a
# tiny synthetic S4 store (64x64 frames, random-init PVTv2-b0, the reduced-width Cnn14_16k of
# tests/fixtures/model/panns_small.*):
#   - the set's config records the audio encoder (name, file, hash) and the `second` windows;
#     the record layout: logmel [101,64], audio_emb [32] (the CNN14 embedding), audio_logits
#     [527] (clipwise_output, probabilities);
#   - a record's log-mel, embedding and clipwise output equal the float64 PyTorch re-statement
#     of the official code (tests/gen/model_panns.py) on the dumped wave's second k alone;
#   - avs-train --mode frozen on the set (TPAVI takes the 32-wide embedding) runs and records it;
#   - avs-features clip and avs-predict --clip (the in-memory path) reopen the set's encoders;
#   - --random-init with `--audio panns_cnn14` alone: full-width random CNN14, embedding 2048;
#   - errors: --audio-head with PANNs, --policy with PANNs, an unknown --audio name, reopening
#     the set with another file than it was made with.
set -u
. tests/lib.sh
need sqlite3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-torch (bash scripts/deps.sh)"; exit 77; }
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP; py=/usr/bin/python3
W=tests/fixtures/model/panns_small.weights.safetensors
"$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 4 --seconds 5 --seed 3 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/s4" || fail "ingest"
q() { sqlite3 "$T/st/avs.db" "$1"; }
F() { "$B/avs-features" -q --root "$T/st" "$@"; }
expect_grep() { n_checks=$((n_checks + 1)); echo "$1" | grep -q "$2" || fail "$3: $1"; }

F --random-init 2 --visual pvt_v2_b0 --audio "panns_cnn14=$W" --set pn; expect_eq $? 0 "features with PANNs"
cfg=$(q "SELECT config FROM feature_sets WHERE name = 'pn'")
echo "$cfg" | grep -q '"audio":{"name":"panns_cnn14","weights":"panns_small.weights.safetensors","weights_hash":"' ||
  fail "config records the audio encoder: $cfg"
echo "$cfg" | grep -q '"logmel_policy":"second"' || fail "PANNs sets record the second windows: $cfg"
expect_eq "$(q "SELECT count(*) FROM feature_entries e JOIN feature_sets s ON s.id = e.set_id WHERE s.name = 'pn'")" 20 "4 videos x 5 s"

# ---- a record against the PyTorch re-statement (float64) ----
uid=$(q "SELECT uid FROM videos ORDER BY uid LIMIT 1 OFFSET 1")
"$B/avs-features" dump --root "$T/st" --set pn --video "$uid" --k 2 --out "$T/d.st" || fail "dump"
$py - "$T/d.st" "$W" <<'EOF' || fail "record differs from the PyTorch reference"
import sys; sys.path.insert(0, 'tests/gen')
import numpy as np, torch, model_st as st, model_panns as mp
d, w = st.load(sys.argv[1]), st.load(sys.argv[2])
k = 1  # --k 2
wave = torch.tensor(d['wave'][16000 * k:16000 * (k + 1)][None].astype(np.float64))
fe = mp.FrontEnd(mp.mel_filters(), mp.hann_periodic(), torch.float64).eval()
net = mp.Cnn14Net().double().eval()
net.load_state_dict({n: torch.tensor(np.array(v)) for n, v in w.items() if n != 'logmel_extractor.melW'})
with torch.no_grad():
    lm = fe(wave)
    e, c = net(lm.float().double())
checks = [('logmel', d['logmel'].reshape(-1), lm.numpy().reshape(-1)),
          ('audio_emb', d['audio_emb'].reshape(-1), e.numpy().reshape(-1)),
          ('audio_logits', d['audio_logits'].reshape(-1), c.numpy().reshape(-1))]
bad = 0
for name, ours, ref in checks:
    dd = np.abs(ours.astype(np.float64) - ref).max()
    print(f'{name:13s} {ours.shape} max |ours - float64 PyTorch| {dd:.3g}')
    bad += ours.shape != ref.shape or dd > 1e-4
sys.exit(1 if bad else 0)
EOF

# ---- frozen training on the set ----
"$B/avs-train" -q --root "$T/st" --features pn --subset s4 --width 16 --batch 2 --epochs 2 --lr 1e-3 \
  --seed 7 --run p1; expect_eq $? 0 "avs-train frozen on a PANNs set"
expect_eq "$(q "SELECT status FROM runs WHERE name = 'p1'")" done "run p1 done"
[ -s "$T/st/runs/p1/last.safetensors" ] || fail "run p1 has a checkpoint"
$py -c "import sys; sys.path.insert(0, 'tests/gen'); import model_st as st
t = st.load('$T/st/runs/p1/last.safetensors'); a = [v.shape for n, v in t.items() if 'align_channel.weight' in n]
sys.exit(0 if a and all(s[1] == 32 for s in a) else 1)" || fail "TPAVI's align_channel takes the 32-wide CNN14 embedding"

# ---- a clip in memory through the set's encoders (what avs-predict --clip runs) ----
clip=$(find "$T/s4/raw_videos" -name '*.mp4' | head -n 1)
"$B/avs-features" clip --root "$T/st" --set pn --audio "panns_cnn14=$W" --clip "$clip" --out "$T/c.st"
expect_eq $? 0 "avs-features clip on a PANNs set"
$py -c "import sys; sys.path.insert(0, 'tests/gen'); import model_st as st
c = st.load('$T/c.st'); sys.exit(0 if c['audio_emb'].shape == (5, 32) else 1)" || fail "clip: audio_emb [5,32]"

"$B/avs-predict" -q --root "$T/st" --run p1 --clip "$clip" --audio "$W" -o "$T/p1.mp4" --frames "$T/ov"
expect_eq $? 0 "avs-predict --clip with the PANNs run"
expect_eq "$(ls "$T/ov" | wc -l)" 5 "5 overlay PNGs"

# ---- full-width random CNN14 ----
F --random-init 5 --visual pvt_v2_b0 --audio panns_cnn14 --set full --split test; expect_eq $? 0 "random-init PANNs"
q "SELECT config FROM feature_sets WHERE name = 'full'" | grep -q '"audio":{"name":"panns_cnn14","weights":"random-init 5"}' ||
  fail "random-init PANNs recorded"
"$B/avs-features" show --root "$T/st" --set full | grep -q 'audio_emb' || fail "show lists the fields"

# ---- errors ----
out=$(F --random-init 2 --visual pvt_v2_b0 --audio "panns_cnn14=$W" --audio-head "$W" --set e1 2>&1)
expect_eq $? 3 "--audio-head with PANNs: exit 3"; expect_grep "$out" "own AudioSet head" "message"
out=$(F --random-init 2 --visual pvt_v2_b0 --audio "panns_cnn14=$W" --policy stream --set e2 2>&1)
expect_eq $? 1 "--policy with PANNs: usage"; expect_grep "$out" "each second alone" "message"
out=$(F --random-init 2 --audio "beats=$W" --set e3 2>&1)
expect_eq $? 1 "unknown audio encoder: usage"; expect_grep "$out" "panns_cnn14" "message names the choices"
out=$("$B/avs-features" clip --root "$T/st" --set pn --audio "panns_cnn14=tests/fixtures/features/vggish_small.weights.safetensors" \
  --clip "$clip" --out "$T/c2.st" 2>&1)
[ $? -ne 0 ] || fail "reopening the set with another file is refused"
expect_grep "$out" "panns_cnn14=FILE" "the message names the option"
finish
