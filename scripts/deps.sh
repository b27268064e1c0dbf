#!/bin/bash
# deps.sh: install the Debian packages this project needs that are missing.
#   bash scripts/deps.sh           build + test dependencies
#   bash scripts/deps.sh --bench   also the peers used by bench/ (PyTorch, numpy)
#   bash scripts/deps.sh --browser also Chromium (report rendering test)
#   bash scripts/deps.sh --fuzz    also clang 14 with libFuzzer and OpenMP (bench/fuzz.sh)
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail
want=(pkg-config make gcc libavformat-dev libavcodec-dev libswscale-dev libswresample-dev
      libavutil-dev libsndfile1-dev libsqlite3-dev libpng-dev libcjson-dev libopenblas-dev libfftw3-dev libxxhash-dev libisal-dev libzip-dev
      ffmpeg sqlite3 ca-certificates python3-numpy   # numpy: reference checks in tests
      libopenmpi-dev openmpi-bin)                    # MPI ranks (avs-train, features, predict under mpirun)
for a in "$@"; do
  case $a in
    --bench) want+=(python3-torch python3-numpy python3-opencv time bc python3-torchvision) ;;
    --browser) want+=(chromium) ;;
    --fuzz) want+=(clang-14 libclang-rt-14-dev libomp-14-dev) ;;
    *) echo "deps.sh: unknown option $a (use --bench, --browser or --fuzz)" >&2; exit 1 ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
