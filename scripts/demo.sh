#!/bin/bash
# demo.sh: the whole pipeline on the built-in synthetic set (called by `make demo` after deps and
# build). About 3 minutes on 2 cores (2m40s measured from scratch before step 7c, which adds three
# MS3 trainings like step 7's and three feature sets of the 200 MS3 seconds: about a minute more by
# that share), plus a one-time ~210 MB media download.
#   1. fetch the real media (scripts/fetch-media.sh: Debian packages, sha256-pinned, cached)
#   2. avs-synth: an S4 set (120 clips) and an MS3 set (40 clips), 5 s each at 128x128, and an
#      AVSS set (36 clips in the AVSBench-semantic layout: v1s, v1m 5 s, v2 10 s)
#   3. avs-ingest both into the demo store demo/avsdata/ (index demo/avsdata/avs.db)
#   4. print what the store holds
#   5. avs-features: a random-init PVTv2-b0 + VGGish feature set of the store (fp16)
#   6. avs-train: C3N on S4 (switches AF,CC), then avs-predict --record on the test split
#   7. the ablation: C3N on MS3 with each switch setting (AF,CC / AF,CC-V / AF / CC / none)
#  7c. Table III on MS3: the C3IM exponents alpha x beta in {0.1, 0.3} (AF,CC): a feature set
#      of the MS3 videos per pair (avs-features --subset ms3 --alpha A --beta B), a run on each
#      (0.1/0.1 is step 7's AF,CC run), the grid by avs-report ablation --rows alpha --cols beta
#  7d. Table I on MS3: AVSBench's TPAVI baseline (--model tpavi) on the b0 and ResNet-50 features,
#      C3N on each backbone (PVTv2-b0, ResNet-50, Swin-T with 4x4 windows) x audio encoder
#      (VGGish, PANNs CNN14): random-init sets of the MS3 videos; avs-report ablation backbone x
#      audio and backbone x model
#  7b. C3N on AVSS (K classes) when the store holds AVSS videos, avs-predict (+ avs-eval --semantic)
#   8. two trivial baselines (all background, a centre box) through avs-eval
#   9. avs-predict --clip: one test clip with its predicted masks drawn on, demo/overlay.mp4
#  10. avs-report: demo/report.html (leaderboard, per class, ablation, alpha x beta, examples)
# The encoders are random-initialised (no downloaded weights): the numbers show the pipeline
# working and C3N learning the synthetic task, not the paper's results. With real AVSBench data
# and official weights, see README "Training and prediction".
# Re-running is cheap: the media are cached, the sets are only re-made when their options
# change (demo/synth/*/.params), ingest and avs-features skip finished videos, finished runs
# are resumed (a no-op). A store of an older demo layout is replaced (demo/avsdata/.demo).
# Environment: AVS_BUILD (build folder, default build), DEMO_DIR (default demo), AVS_MEDIA.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AVS_BUILD:-build}/bin
demo=${DEMO_DIR:-demo}
store=$demo/avsdata
SIZE=128
S4_ARGS=(--subset s4 --videos 120 --seconds 5 --seed 1 --size ${SIZE}x${SIZE})
MS3_ARGS=(--subset ms3 --videos 40 --seconds 5 --seed 2 --size ${SIZE}x${SIZE})
AVSS_ARGS=(--subset avss --videos 36 --seed 3 --size ${SIZE}x${SIZE})
SET=demo-b0-random1-$SIZE
TRAIN=(--width 32 --batch 4 --lr 1e-3)
DEMO_LAYOUT=4   # 4: feature cache v2 (checksums), runs with model and C3IM exponents recorded
t0=$(date +%s)

echo "== demo 1/10: media"
rc=0
bash scripts/fetch-media.sh || rc=$?
if [ $rc -ne 0 ]; then
  echo "demo: the media could not be fetched (see the message above; exit $rc)." >&2
  [ $rc -eq 3 ] && echo "demo: the demo needs network access to deb.debian.org once; after that it runs offline." >&2
  exit 1
fi

echo "== demo 2/10: avs-synth"
[ -x "$bin/avs-synth" ] || { echo "demo: $bin/avs-synth missing: run make" >&2; exit 1; }
synth() { # synth DIR ARGS...: (re)make DIR unless it was made with the same options
  local dir=$1; shift
  local params="$* $(sha256sum "$bin/avs-synth" | cut -c1-16)"
  if [ -f "$dir/.params" ] && [ "$(cat "$dir/.params")" = "$params" ]; then
    echo "demo: $dir is up to date"
    return
  fi
  rm -rf "$dir"
  "$bin/avs-synth" --out "$dir" "$@"
  echo "$params" > "$dir/.params"
}
synth "$demo/synth/s4" "${S4_ARGS[@]}"
synth "$demo/synth/ms3" "${MS3_ARGS[@]}"
synth "$demo/synth/avss" "${AVSS_ARGS[@]}"

echo "== demo 3/10: avs-ingest"
if [ ! -x "$bin/avs-ingest" ]; then
  echo "demo: $bin/avs-ingest is missing (not built yet): the clips are in $demo/synth, no store made"
  exit 0
fi
if [ -d "$store" ] && [ "$(cat "$store/.demo" 2>/dev/null)" != "$DEMO_LAYOUT" ]; then
  echo "demo: replacing $store (made by an older version of the demo)"
  rm -rf "$store"
fi
mkdir -p "$store" && echo "$DEMO_LAYOUT" > "$store/.demo"
rc=0
"$bin/avs-ingest" --root "$store" --size ${SIZE}x${SIZE} --avsbench "$demo/synth/s4" --avsbench "$demo/synth/ms3" \
  --avsbench "$demo/synth/avss" || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then echo "demo: avs-ingest failed (exit $rc)" >&2; exit 1; fi
[ $rc -eq 2 ] && echo "demo: some clips failed to ingest (listed in the store: v_videos.status = 'failed')"

echo "== demo 4/10: the store"
db=$store/avs.db
echo "store: $(cd "$store" && pwd)  (index: $db)"
sqlite3 -header -column "$db" \
  "SELECT subset, split, count(*) AS videos, sum(seconds) AS seconds,
          sum(status = 'failed') AS failed
   FROM v_videos GROUP BY subset, split ORDER BY subset, split;"
echo
sqlite3 "$db" "SELECT 'frames: ' || count(frame) || ', audio seconds: ' || count(audio) ||
                      ', ground-truth masks: ' || count(mask) FROM v_seconds;"
sqlite3 "$db" "SELECT 'categories (' || count(DISTINCT category) || '): ' ||
                      group_concat(DISTINCT category) FROM (SELECT category FROM v_videos
                      WHERE subset = 's4' ORDER BY category);"
echo "example: sqlite3 $db \"SELECT * FROM v_seconds LIMIT 5\""

echo "== demo 5/10: avs-features, random-init PVTv2-b0 + VGGish (no downloaded weights)"
"$bin/avs-features" -q --root "$store" --random-init 1 --visual pvt_v2_b0 --fp16 --set "$SET"
"$bin/avs-features" --root "$store" show --set "$SET"

# train RUN ARGS...: a new run, or the existing one resumed (finished runs: nothing to do);
# on feature set $FEAT (default $SET)
train() {
  local run=$1; shift
  if [ -n "$(sqlite3 "$db" "SELECT 1 FROM runs WHERE name = '$run'")" ]; then
    "$bin/avs-train" -q --root "$store" --run "$run" --resume
  else
    "$bin/avs-train" --root "$store" --run "$run" --features "${FEAT:-$SET}" "${TRAIN[@]}" "$@"
  fi
  sqlite3 "$db" "DELETE FROM metrics WHERE method = '$run'"
  "$bin/avs-predict" --root "$store" --run "$run" --record
}

echo "== demo 6/10: avs-train C3N on S4 (frozen random-init b0 features, AF,CC), avs-predict"
train c3n-s4 --subset s4 --switches AF,CC --epochs 5
echo "== demo 7/10: ablation on MS3: AF,CC / AF,CC-V / AF / CC / none"
for sw in AF,CC AF,CC-V AF CC none; do
  run=c3n-ms3-$(echo "$sw" | tr 'A-Z,' 'a-z_')
  train "$run" --subset ms3 --switches "$sw" --epochs 10 --batch 2
done

# Table III (the C3IM exponents): C3IM's Pv = softmax(visual)^alpha, Pa = softmax(audio)^beta
# (official 0.1/0.1). Each pair needs its own feature set (the consensus targets and their
# Grad-CAM weights change), here of the MS3 videos only; the 0.1/0.1 cell is c3n-ms3-af_cc.
echo "== demo 7c/10: Table III on MS3: C3IM exponents alpha x beta in {0.1, 0.3} (AF,CC)"
t7c=$(date +%s)
for a in 0.1 0.3; do
  for b in 0.1 0.3; do
    [ "$a" = 0.1 ] && [ "$b" = 0.1 ] && continue
    ab_set=$SET-ms3-a$a-b$b
    "$bin/avs-features" -q --root "$store" --random-init 1 --visual pvt_v2_b0 --fp16 --subset ms3 \
      --alpha $a --beta $b --set "$ab_set"
    FEAT=$ab_set train "c3n-ms3-a$a-b$b" --subset ms3 --switches AF,CC --epochs 10 --batch 2 --alpha $a --beta $b
  done
done
"$bin/avs-report" ablation --root "$store" --rows alpha --cols beta --subset ms3 --where switches=AF,CC \
  --format markdown -o -
echo "demo: Table III grid in $(( $(date +%s) - t7c )) s"

# Table I's other rows: AVSBench's TPAVI baseline (avs-train --model tpavi: no C3IM/CCAM, BCE)
# and C3N with each backbone x audio encoder: PVTv2-b0 (step 5's features), ResNet-50 and
# Swin-T with 4x4 windows (swin_t_w4: Swin's 7x7 windows need 224x224 frames, the demo's are
# 128x128) x VGGish and PANNs CNN14, random-init at full width, one feature set of the MS3
# videos per pair; laid out backbone x audio (C3N) and backbone x method (VGGish).
echo "== demo 7d/10: Table I on MS3: TPAVI baseline and C3N; PVTv2-b0, ResNet-50, Swin-T x VGGish, PANNs"
t7d=$(date +%s)
FEAT=$SET train tpavi-ms3 --subset ms3 --model tpavi --epochs 10 --batch 2
for vis in pvt_v2_b0 resnet50 swin_t_w4; do
  for aud in vggish panns_cnn14; do
    [ $vis = pvt_v2_b0 ] && [ $aud = vggish ] && continue   # step 5's set, run c3n-ms3-af_cc
    fs=$vis-$aud-ms3
    "$bin/avs-features" -q --root "$store" --random-init 1 --visual $vis --audio $aud --fp16 \
      --subset ms3 --set "$fs"
    FEAT=$fs train "c3n-ms3-$vis-$aud" --subset ms3 --switches AF,CC --epochs 10 --batch 2
  done
done
FEAT=resnet50-vggish-ms3 train tpavi-ms3-resnet50 --subset ms3 --model tpavi --epochs 10 --batch 2
"$bin/avs-report" ablation --root "$store" --rows backbone --cols audio --subset ms3 \
  --where model=C3N --where switches=AF,CC --where alpha=0.1 --where beta=0.1 --format markdown -o -
"$bin/avs-report" ablation --root "$store" --rows backbone --cols model --subset ms3 \
  --where audio=vggish --where alpha=0.1 --where beta=0.1 --format markdown -o -
echo "demo: Table I rows in $(( $(date +%s) - t7d )) s"

# AVSS (AVSBench-semantic, issue 14): a tiny C3N run with the K-class output (cross-entropy,
# T 10: v1 clips padded with zero features), avs-predict (<uid>_<i>.png class indices and
# K-channel .logits), avs-eval --semantic (the official AVSS metric and its labelled variants).
n_avss=$(sqlite3 "$db" "SELECT count(*) FROM videos WHERE subset = 'avss' AND status = 'ok'")
echo "== demo 7b/10: C3N on AVSS ($n_avss videos, T 10, cross-entropy over the classes)"
if [ -n "$(sqlite3 "$db" "SELECT 1 FROM runs WHERE name = 'c3n-avss'")" ]; then
  "$bin/avs-train" -q --root "$store" --run c3n-avss --resume
else
  "$bin/avs-train" --root "$store" --run c3n-avss --features "$SET" "${TRAIN[@]}" --subset avss --epochs 8 --batch 2
fi
rm -rf "$demo/pred-avss"
"$bin/avs-predict" -q --root "$store" --run c3n-avss --out "$demo/pred-avss"
sqlite3 "$db" "DELETE FROM metrics WHERE method = 'c3n-avss'"
"$bin/avs-eval" --root "$store" --semantic --pred "$demo/pred-avss" --split test --record c3n-avss | head -n 12

echo "== demo 8/10: baselines through avs-eval"
base=$demo/baselines
rm -rf "$base"; mkdir -p "$base"
# Two probability maps at the store's size: all background, and a centred box of half the
# width/height.
ffmpeg -v error -nostdin -y -f lavfi -i color=c=black:size=${SIZE}x${SIZE} -frames:v 1 -pix_fmt gray "$base/empty.png"
ffmpeg -v error -nostdin -y -f lavfi -i "color=c=black:size=${SIZE}x${SIZE},drawbox=x=$((SIZE/4)):y=$((SIZE/4)):w=$((SIZE/2)):h=$((SIZE/2)):c=white:t=fill" \
  -frames:v 1 -pix_fmt gray "$base/centre.png"
sqlite3 -separator ' ' "$db" "SELECT s.uid, s.k FROM v_seconds s JOIN v_videos v ON v.uid = s.uid
                               WHERE v.split = 'test' AND s.mask IS NOT NULL" |
while read -r uid k; do
  for b in empty centre; do mkdir -p "$base/$b/$uid"; ln -f "$base/$b.png" "$base/$b/$uid/$k.png"; done
done
sqlite3 "$db" "DELETE FROM metrics WHERE method LIKE 'baseline: %'"
for subset in s4 ms3; do
  "$bin/avs-eval" -q --root "$store" --pred "$base/empty" --split test --subset "$subset" \
    --record "baseline: all background" >/dev/null
  "$bin/avs-eval" -q --root "$store" --pred "$base/centre" --split test --subset "$subset" \
    --record "baseline: centre box" >/dev/null
done
sqlite3 -header -column "$db" "SELECT method, subset, printf('%.4f', miou) AS mIoU,
                                      printf('%.4f', fscore) AS F, frames
                               FROM metrics ORDER BY subset, miou DESC"

echo "== demo 9/10: avs-predict --clip (any clip, end to end) with the S4 run"
clip=$(find "$demo/synth/s4/raw_videos/test" -name '*.mp4' | sort | head -n 1)
rm -rf "$demo/overlay"
"$bin/avs-predict" -q --root "$store" --run c3n-s4 --clip "$clip" -o "$demo/overlay.mp4" --frames "$demo/overlay"
echo "overlay video: $demo/overlay.mp4 (from $clip), stills: $demo/overlay/<k>.png"

echo "== demo 10/10: avs-report"
"$bin/avs-report" -q leaderboard --root "$store" -o "$demo/report.html"
"$bin/avs-report" ablation --root "$store" --format markdown -o -
echo "report: $(cd "$demo" && pwd)/report.html (self-contained; open it in any browser)"
echo "demo: done in $(( $(date +%s) - t0 )) s"
