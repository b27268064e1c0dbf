#!/bin/bash
# bench/ingest.sh: avs-ingest against the ffmpeg CLI peer (../shared/bench/ffmpeg_cli_peer.sh)
# on the same 8 generated 10-second 720p H.264 + AAC clips, 2 jobs each, in one run.
# Clips: x264 defaults (preset medium, CRF 23, B-frames) capped at 4 Mbit/s like YouTube's
# 720p, 30 fps, stereo 44.1 kHz AAC; cached in ${XDG_CACHE_HOME:-~/.cache}/avs/bench-clips.
# Wall time is the target; CPU time (user+sys) is printed too, as it is steadier on a busy
# machine.
# Prints both times (best of REPEAT runs, default 3) and the ratio. Target: ratio >= 2.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${AVS_BIN:-$here/build/bin}
peer=${PEER:-$here/../shared/bench/ffmpeg_cli_peer.sh}
jobs=${JOBS:-2}
repeat=${REPEAT:-3}
clips=${XDG_CACHE_HOME:-$HOME/.cache}/avs/bench-clips
[ -x "$bin/avs-ingest" ] || { echo "bench/ingest.sh: build first (make)"; exit 1; }
[ -f "$peer" ] || { echo "bench/ingest.sh: peer $peer not found"; exit 1; }
mkdir -p "$clips"
for i in 1 2 3 4 5 6 7 8; do
  f=$clips/clip$i.mp4
  [ -s "$f" ] && continue
  # Each clip differs: its own test pattern, moving noise, and a tone.
  ffmpeg -v error -nostdin -y -f lavfi -i "testsrc2=size=1280x720:rate=30,hue=h=$((i*40)),noise=alls=$((2+i)):allf=t" \
    -f lavfi -i "sine=frequency=$((200+i*50)):sample_rate=44100" -t 10 -ac 2 \
    -c:v libx264 -pix_fmt yuv420p -maxrate 4M -bufsize 8M -c:a aac -b:a 128k -shortest "$f.tmp.mp4"
  mv "$f.tmp.mp4" "$f"
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
best() { sort -n | head -1; }
# time_cmd CMD...: prints "wall cpu" seconds (cpu = user + sys of the command and children).
time_cmd() {
  /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" >/dev/null 2>&1 || true
  tail -1 "$work/time" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
}
peer_w=(); ours_w=(); peer_c=(); ours_c=()
for r in $(seq "$repeat"); do
  rm -rf "$work/peer" "$work/store"
  read -r w c < <(time_cmd bash "$peer" "$clips" "$work/peer" "$jobs"); peer_w+=("$w"); peer_c+=("$c")
  read -r w c < <(time_cmd "$bin/avs-ingest" -q --root "$work/store" -j "$jobs" "$clips"); ours_w+=("$w"); ours_c+=("$c")
done
p=$(printf '%s\n' "${peer_w[@]}" | best); o=$(printf '%s\n' "${ours_w[@]}" | best)
pc=$(printf '%s\n' "${peer_c[@]}" | best); oc=$(printf '%s\n' "${ours_c[@]}" | best)
n_ok=$(sqlite3 "$work/store/avs.db" "SELECT count(*) FROM v_videos WHERE status='ok' AND seconds=10")
[ "$n_ok" = 8 ] || { echo "bench/ingest.sh: avs-ingest produced $n_ok/8 complete videos"; exit 1; }
# Re-run on unchanged inputs: no decoding.
read -r rerun _ < <(time_cmd "$bin/avs-ingest" -q --root "$work/store" -j "$jobs" "$clips")
printf 'ingest bench: 8 clips x 10 s 720p H.264, %d jobs, best of %d\n' "$jobs" "$repeat"
printf '  peer (ffmpeg CLI)  wall %6.2f s  cpu %6.2f s\n' "$p" "$pc"
printf '  avs-ingest         wall %6.2f s  cpu %6.2f s\n' "$o" "$oc"
printf '  unchanged re-run   wall %6.3f s\n' "$rerun"
printf '  ratio peer/avs-ingest: wall %.2fx (target >= 2x), cpu %.2fx\n' "$(echo "$p / $o" | bc -l)" "$(echo "$pc / $oc" | bc -l)"
