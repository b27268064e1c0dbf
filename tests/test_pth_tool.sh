#!/bin/bash
# tests/test_pth_tool.sh: a tool takes a PyTorch checkpoint directly. The C3N head fixture's
# weights (official parameter names) saved by torch as an official checkpoint would hold them
# ({'epoch', 'model': {'module.' + name: tensor}}, tests/gen/pth_fixtures.py) give
# `avs-model run c3n_head` the same output bytes as the safetensors fixture they came from,
# and as the same .pth converted by tools/convert_checkpoint.py (where Debian's torch is);
# refused checkpoints stop the tool with exit 3 and the reader's message, nothing written; a
# checkpoint of another architecture names its first misfit, how many more and which.
set -u
. "$(dirname "$0")/lib.sh"
F=tests/fixtures/model P=tests/fixtures/pth M=$AVS_BIN/avs-model T=$AVS_TMP
run() { # run WEIGHTS OUT: the forward pass
  "$M" run c3n_head --weights "$1" --inputs $F/head_eval.inputs.safetensors --out "$2" -j 2
}
run $F/head_eval.weights.safetensors "$T/st.safetensors" || fail "avs-model on the safetensors fixture"
run $P/head_eval.pth "$T/pth.safetensors" || fail "avs-model on the .pth"
cmp -s "$T/st.safetensors" "$T/pth.safetensors"; expect_eq $? 0 ".pth output identical to the safetensors fixture's"

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 tools/convert_checkpoint.py --strip-prefix module. $P/head_eval.pth "$T/conv.safetensors" >/dev/null \
    || fail "convert_checkpoint.py"
  run "$T/conv.safetensors" "$T/conv_out.safetensors" || fail "avs-model on the converted file"
  cmp -s "$T/conv_out.safetensors" "$T/pth.safetensors"; expect_eq $? 0 ".pth output identical to the converted file's"
else
  echo "note: /usr/bin/python3 has no torch: the comparison with convert_checkpoint.py is skipped"
fi

refused() { # refused FILE WORDS
  out=$("$M" run c3n_head --weights "$1" --inputs $F/head_eval.inputs.safetensors --out "$T/r.safetensors" 2>&1)
  expect_eq $? 3 "exit status for $1"
  case $out in *"$2"*) ;; *) fail "$1: message lacks '$2': $out" ;; esac
  [ ! -e "$T/r.safetensors" ] || fail "$1: output written"
}
refused $P/os_system.pth "refused the global posix.system"
refused $P/legacy.pth "re-save it once with a current PyTorch"
refused $P/truncated.pth "truncated.pth: not a readable zip archive"
refused $P/dtypes.pth 'dtypes.pth: missing tensor "conv1.conv.weight"'
# another architecture's checkpoint: the first misfit, then how many more and which
out=$("$M" run pvt_v2_b0 --weights $P/nested_model.pth --inputs tests/fixtures/features/pvt_small.io.safetensors \
      --out "$T/r.safetensors" 2>&1)
expect_eq $? 3 "exit status for another architecture"
case $out in *'unknown tensor "0.weight"'*'(and 8 more tensors that do not fit this PVTv2 variant: "0.bias", "1.weight", "1.bias", ...)'*) ;;
  *) fail "another architecture: message lacks the count and names: $out" ;; esac
finish
