#!/bin/bash
# scripts/carry.sh: pack programs built here so that they run on the GPU device machine, which
# has the NVIDIA driver, CUDA, cuDNN, cuBLAS and NCCL (as Python packages) but none of Debian's
# libraries (make test-gpu-pack uses it: README, "Running on a GPU").
#   usage: carry.sh DEST PROGRAM...   (run from the project root; DEST must be git-ignored)
# DEST/bin gets the programs, DEST/lib every shared library they need except glibc's own and
# the CUDA/NVIDIA ones; DEST/env.sh, sourced on the device, sets LD_LIBRARY_PATH to DEST/lib
# plus the device's nvidia/*/lib folders. Keep DEST under the device tool's 64 MiB limit.
set -euo pipefail
dest=$1; shift
mkdir -p "$dest/bin" "$dest/lib"
for p in "$@"; do
  cp -L "$p" "$dest/bin/"
  ldd "$p" | awk '$3 ~ /^\// {print $3}' | while read -r so; do
    case "$(basename "$so")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcudart*|libcudnn*|libcublas*|libnccl*|libnvrtc*|libnvJitLink*) ;;
      *) cp -Ln "$so" "$dest/lib/" ;;
    esac
  done
done
cat > "$dest/env.sh" <<'ENV'
# source on the device: libraries packed beside the programs, then the device's CUDA libraries
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sp=$(python3 -c "import site; print(site.getsitepackages()[0])" 2>/dev/null)
nv=$(find "$sp/nvidia" -type d -name lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$here/lib:${nv}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PATH="$here/bin:$PATH"
ENV
du -sh "$dest" | awk '{print "packed " $1 " in " $2}'
