#!/bin/bash
# avs-ingest --avsbench on a small generated tree laid out like the AVSBench release:
#   Single-source/s4_meta_data.csv + s4_data/{visual_frames,gt_masks,audio_wav,raw_videos}
#   Multi-sources/ms3_meta_data.csv + ms3_data/{visual_frames,gt_masks,audio_wav}
# Released frames and masks are imported byte for byte; a video with only a raw clip is
# decoded; a CSV row without data is recorded as failed with a reason.
set -u
. "$(dirname "$0")/lib.sh"
need ffmpeg sqlite3 cmp
R=$AVS_TMP/AVSBench; s=$AVS_TMP/store
S4=$R/Single-source/s4_data; M=$R/Multi-sources/ms3_data
png_seq() {  # png_seq DIR PREFIX N [pal8]: N frames DIR/PREFIX<k>.png
  mkdir -p "$1"
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=224x224:rate=1" -frames:v "$3" \
    ${4:+-pix_fmt $4} "$1/$2%d.png" || fail "png fixture $1"
}
mask_seq() {  # mask_seq DIR PREFIX FIRST LAST [pix_fmt]
  mkdir -p "$1"
  for k in $(seq "$3" "$4"); do
    ffmpeg -v error -nostdin -y -f lavfi -i "color=c=black:size=224x224,drawbox=x=$((k * 20)):y=40:w=80:h=90:c=white:t=fill" \
      -frames:v 1 -pix_fmt "${5:-gray}" "$1/$2$k.png" || fail "mask fixture"
  done
}
wav() { mkdir -p "$(dirname "$1")"; ffmpeg -v error -nostdin -y -f lavfi -i "sine=frequency=$2:sample_rate=16000" -t 5 -ac 1 "$1"; }

mkdir -p "$R/Single-source" "$R/Multi-sources"
# S4: official columns by position (name, start, category, split) but with other names for
# the first two, so the category/split columns are found by name.
printf 'vid,s_sec,category,split\ndogA,0,dog_barking,train\nviolinB,1,playing_violin,test\nrawC,0,dog_barking,val\nmissingD,0,dog_barking,test\n' \
  > "$R/Single-source/s4_meta_data.csv"
png_seq "$S4/visual_frames/train/dog_barking/dogA" dogA_ 5
mask_seq "$S4/gt_masks/train/dog_barking/dogA" dogA_ 1 1
wav "$S4/audio_wav/train/dog_barking/dogA.wav" 500
png_seq "$S4/visual_frames/test/playing_violin/violinB" violinB_ 5
mask_seq "$S4/gt_masks/test/playing_violin/violinB" violinB_ 1 5
wav "$S4/audio_wav/test/playing_violin/violinB.wav" 700
mkdir -p "$S4/raw_videos/val/dog_barking"
ffmpeg -v error -nostdin -y -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=sample_rate=44100 -t 5 \
  -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$S4/raw_videos/val/dog_barking/rawC.mp4"
mask_seq "$S4/gt_masks/val/dog_barking/rawC" rawC_ 1 5
# MS3: name + split columns only; frames <name>.mp4_<k>.png; palette masks; a quoted name.
printf 'video_id,split,extra\n"multiE",test,"x, y"\n' > "$R/Multi-sources/ms3_meta_data.csv"
png_seq "$M/visual_frames/multiE" multiE.mp4_ 5
mask_seq "$M/gt_masks/test/multiE" multiE_ 1 5 pal8
wav "$M/audio_wav/test/multiE.wav" 900

"$AVS_BIN/avs-ingest" -q --root "$s" --avsbench "$R"; rc=$?
expect_eq "$rc" 2 "exit status (missingD has no data)"
q() { sqlite3 "$s/avs.db" "$1"; }
expect_eq "$(q "SELECT uid || ',' || subset || ',' || ifnull(split,'') || ',' || ifnull(category,'') || ',' || status || ',' || seconds FROM v_videos ORDER BY uid" | tr '\n' ' ')" \
  "dogA,s4,train,dog_barking,ok,5 missingD,s4,test,dog_barking,failed,0 multiE,ms3,test,,ok,5 rawC,s4,val,dog_barking,ok,5 violinB,s4,test,playing_violin,ok,5 " "videos"
case $(q "SELECT error FROM v_videos WHERE uid='missingD'") in *missingD*raw_videos*) ;; *) fail "missingD reason: $(q "SELECT error FROM v_videos WHERE uid='missingD'")" ;; esac
expect_eq "$(q "SELECT count(*) FROM v_seconds WHERE mask IS NOT NULL")" 16 "masks indexed (1 + 5 + 5 + 5)"
expect_eq "$(q "SELECT group_concat(k) FROM v_seconds WHERE uid='dogA' AND mask IS NOT NULL")" 1 "S4 train: mask of frame 1 only"
# Imported byte for byte.
for k in 1 5; do
  cmp -s "$s/frames/dogA/$k.png" "$S4/visual_frames/train/dog_barking/dogA/dogA_$k.png" || fail "dogA frame $k not imported as is"
  cmp -s "$s/frames/multiE/$k.png" "$M/visual_frames/multiE/multiE.mp4_$k.png" || fail "multiE frame $k not imported as is"
  cmp -s "$s/masks/multiE/$k.png" "$M/gt_masks/test/multiE/multiE_$k.png" || fail "multiE mask $k"
  cmp -s "$s/masks/violinB/$k.png" "$S4/gt_masks/test/playing_violin/violinB/violinB_$k.png" || fail "violinB mask $k"
done
expect_eq "$(q "SELECT flags FROM seconds JOIN videos ON videos.id = video_id WHERE uid='dogA' AND k=2")" 8 "imported frames flagged"
# Audio seconds equal the released 16 kHz wav cut at 16000(k-1) (header of 44 bytes skipped).
ffmpeg -v error -nostdin -i "$S4/audio_wav/train/dog_barking/dogA.wav" -f s16le - > "$AVS_TMP/dogA.pcm"
for k in 1 3 5; do
  tail -c +45 "$s/audio/dogA/$k.wav" > "$AVS_TMP/sec.pcm"
  expect_eq "$(stat -c %s "$AVS_TMP/sec.pcm")" 32000 "dogA second $k has 16000 samples"
  cmp -s "$AVS_TMP/sec.pcm" <(tail -c +$(( (k - 1) * 32000 + 1 )) "$AVS_TMP/dogA.pcm" | head -c 32000) || fail "dogA audio second $k"
done
# The raw-only video was decoded: 224x224 frames from the clip, its masks imported.
expect_eq "$(q "SELECT width || 'x' || height || ',' || has_audio FROM v_videos WHERE uid='rawC'")" "224x224,1" "rawC decoded"
[ -f "$s/frames/rawC/5.png" ] && [ -f "$s/masks/rawC/5.png" ] || fail "rawC files"
# Unchanged: nothing redone.
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" --avsbench "$R")
case $out in *'"ingested":0,"unchanged":5'*) ;; *) fail "re-run did work: $out" ;; esac
# A changed mask is noticed and re-imported.
mask_seq "$S4/gt_masks/test/playing_violin/violinB" violinB_ 3 3 monob
touch -d '+1 min' "$S4/gt_masks/test/playing_violin/violinB/violinB_3.png"
out=$("$AVS_BIN/avs-ingest" -q --json --root "$s" --avsbench "$R")
case $out in *'"ingested":1,'*) ;; *) fail "changed mask not re-imported: $out" ;; esac
cmp -s "$s/masks/violinB/3.png" "$S4/gt_masks/test/playing_violin/violinB/violinB_3.png" || fail "violinB mask 3 not updated"
# Not an AVSBench folder: usage error that says what is expected.
"$AVS_BIN/avs-ingest" --root "$s" --avsbench "$AVS_TMP" 2> "$AVS_TMP/e"; expect_eq $? 1 "not AVSBench"
grep -q "s4_meta_data.csv" "$AVS_TMP/e" || fail "message: $(cat "$AVS_TMP/e")"
finish
