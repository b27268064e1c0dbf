#!/bin/bash
# bench/cache_verify.sh: the cost of verifying a feature cache when a run opens it
# (bench/cache_verify.c), on a demo-sized cache (scripts/demo.sh: 160 S4/MS3 clips x 5 s and
# 36 AVSS clips at 128x128, fp16: about 1,000 records) and on a large synthetic one (224x224 fp32,
# the layout of a full-size PVTv2-b0 set; RECORDS, default 2,500, about 4 GB).
#   bash bench/cache_verify.sh [RECORDS] [DIR]      (build the library first: make B=build)
set -eu
records=${1:-2500}; dir=${2:-}
B=${AVS_BUILD:-build}
[ -f "$B/libavs.a" ] || { echo "cache_verify.sh: no $B/libavs.a: run make first (or set AVS_BUILD)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dir=${dir:-$tmp}
# compile and link flags as the Makefile builds $B/libavs.a (MPI, CUDA, sanitizers)
cc $(make -s --no-print-directory print-cflags) bench/cache_verify.c \
   "$B/libavs.a" $(make -s --no-print-directory print-ldlibs) -o "$tmp/cache_verify"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "demo:  $("$tmp/cache_verify" "$dir" 128 1000 f16)"
echo "large: $("$tmp/cache_verify" "$dir" 224 "$records" f32)"
