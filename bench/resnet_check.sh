#!/bin/bash
# bench/resnet_check.sh: the real torchvision resnet50() (width 64, 1000 classes; random weights
# and BatchNorm statistics, seed SEED) against `avs-model run resnet50` on one 64x64 image:
# stage maps, logits and Grad-CAM weights within max(1e-4, 3 x PyTorch float32's distance from
# float64). Too heavy for the suite (a 100 MB weights file); run by hand:
#   bash bench/resnet_check.sh [SEED]     (needs Debian's torch/torchvision and a build in build/)
set -eu
seed=${1:-5}
B=${AVS_BUILD:-build}
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
/usr/bin/python3 tests/gen/model_resnet.py full "$d/full" "$seed"
"$B/bin/avs-model" run resnet50 -q --weights "$d/full.weights.safetensors" --inputs "$d/full.io.safetensors" \
  --out "$d/out.safetensors"
/usr/bin/python3 tests/gen/model_resnet.py compare "$d/out.safetensors" "$d/full.io.safetensors"
