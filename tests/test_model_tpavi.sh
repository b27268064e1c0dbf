#!/bin/bash
# test_model_tpavi.sh: the AVSBench baseline's head (model/c3n_head.h cfg.avsbench:
# Classifier_Module necks, TPAVI as tpavi_b<s>, the same decoder) against a PyTorch re-statement
# of the official module (tests/gen/model_c3n_ref.py Classifier, model_head.py --avsbench), in
# train mode: logits and the gradient of every parameter, of x1..x4 and of the audio, from
# float64 on float32 weights; a small case within 1e-5 (model_compare.py) and a wider one by
# float32's own spread alone (--strict, default convolutions as in test_model_tool.sh). The
# same two cases again with AVSBench's MS3 audio-visual matching loss (--av-match 0.5: the
# gradients of sum(logits * dout) + 0.5 * the loss, and its value av_match; model/c3n_avmatch.c
# against model_c3n_ref.av_match). The reference C3N refuses baseline weights with the reason.
set -u
. tests/lib.sh
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no torch (apt-get install python3-torch)"; exit 77; }
M="$AVS_BIN/avs-model"; T=$AVS_TMP
seed=${AVS_FRESH_SEED:-1}
run_case() { # name, matching loss lambda (0: off), extra generator options...
  local n=$1 lam=$2; shift 2
  local avm=(); [ "$lam" = 0 ] || avm=(--av-match "$lam")
  $py tests/gen/model_head.py --out "$T/$n" --seed $seed --avsbench --train "${avm[@]}" "$@" > /dev/null
  $M run c3n_head --weights "$T/$n.weights.safetensors" --inputs "$T/$n.inputs.safetensors" \
     --grad-out "$T/$n.dout.safetensors" --out "$T/${n}_out.safetensors" --train "${avm[@]}" 2>/dev/null
  expect_eq "$?" 0 "avs-model run c3n_head on the $n baseline case"
}
small=(--size 8 --chans 3,5,7,9 --N 1 --T 3)
wide=(--size 8 --chans 16,32,48,64 --D 64 --Ci 32 --A 16 --O1 32 --O2 8 --N 2 --T 3)
run_case small 0 "${small[@]}"
$py tests/gen/model_compare.py "$T/small_out.safetensors" "$T/small.expect.safetensors" > "$T/small.cmp"
expect_eq "$?" 0 "small baseline case within 1e-5 of PyTorch ($(tail -n 1 "$T/small.cmp"))"
head -c 20000 "$T/small_out.safetensors" | grep -aq '"grad.conv4.conv2d_list.3.weight"' ||
  fail "the neck's gradients are among the compared tensors"
run_case wide 0 "${wide[@]}"
$py tests/gen/model_compare.py --strict "$T/wide_out.safetensors" "$T/wide.expect.safetensors" > "$T/wide.cmp"
expect_eq "$?" 0 "wide baseline case by float32's spread ($(tail -n 1 "$T/wide.cmp"))"
run_case small_avm 0.5 "${small[@]}"
$py tests/gen/model_compare.py "$T/small_avm_out.safetensors" "$T/small_avm.expect.safetensors" > "$T/small_avm.cmp"
expect_eq "$?" 0 "small case with the matching loss within 1e-5 of PyTorch ($(tail -n 1 "$T/small_avm.cmp"))"
$py -c 'import sys; sys.path.insert(0, "tests/gen"); import model_st as st
sys.exit("av_match" not in st.load(sys.argv[1]))' "$T/small_avm.expect.safetensors" ||
  fail "the matching loss's value is among the compared tensors"
# the matching loss moves the gradients: the case without it is no match for these
$py tests/gen/model_compare.py "$T/small_out.safetensors" "$T/small_avm.expect.safetensors" > /dev/null 2>&1
expect_eq "$?" 1 "gradients without the matching loss differ from those with it"
run_case wide_avm 0.5 "${wide[@]}"
$py tests/gen/model_compare.py --strict "$T/wide_avm_out.safetensors" "$T/wide_avm.expect.safetensors" > "$T/wide_avm.cmp"
expect_eq "$?" 0 "wide case with the matching loss by float32's spread ($(tail -n 1 "$T/wide_avm.cmp"))"
out=$($M run c3n_head --weights "$T/small.weights.safetensors" --inputs "$T/small.inputs.safetensors" \
      --out "$T/r.st" --av-match 0.5 2>&1)
expect_eq "$?" 3 "--av-match without --grad-out is refused"
echo "$out" | grep -q "needs AVSBench baseline weights and --grad-out" || fail "--av-match message: $out"
out=$($M run c3n_ref --weights "$T/small.weights.safetensors" --inputs "$T/small.inputs.safetensors" --out "$T/r.st" 2>&1)
expect_eq "$?" 3 "c3n_ref refuses baseline weights"
echo "$out" | grep -q "AVSBench baseline" || fail "c3n_ref message: $out"
finish
