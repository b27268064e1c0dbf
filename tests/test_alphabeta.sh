#!/bin/bash
# test_alphabeta.sh: the C3IM exponents --alpha/--beta (the paper's Table III) from the outside,
# on a tiny synthetic MS3 store (64x64, random-init PVTv2-b0 features):
#   - bad values (0, negative, nan, inf, not a number) for avs-features, avs-train,
#     avs-predict and avs-model: usage error (exit 1) naming the flag, nothing written;
#   - avs-features --alpha/--beta: recorded in the set's config ("c3im") and default set name,
#     absent from a default set's config; the set's targets differ from the default set's and
#     equal those of its encoders rebuilt from the config (avs-features clip);
#   - a set name reused with other exponents is refused;
#   - avs-train / avs-predict asking for other exponents than the set's: refused with a message
#     naming both, no run row, no run folder; asking for the set's (or nothing): the run config
#     records them;
#   - avs-report ablation --rows alpha --cols beta on the runs (each format names them).
set -u
. tests/lib.sh
need sqlite3
. tests/media.sh
B=$AVS_BIN; T=$AVS_TMP
"$B/avs-synth" -q --media "$media" --out "$T/ms3" --subset ms3 --videos 4 --seconds 5 --seed 4 --size 64x64 --fps 10
"$B/avs-ingest" -q --root "$T/st" --size 64x64 --avsbench "$T/ms3" || fail "ingest"
db=$T/st/avs.db
q() { sqlite3 "$db" "$1"; }
expect_rc() { # expect_rc RC NEEDLE CMD...
  local want=$1 needle=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  expect_eq "$rc" "$want" "exit of $*"
  case "$out" in *"$needle"*) n_checks=$((n_checks + 1)) ;; *) fail "message of $* lacks '$needle': $out" ;; esac
}
F=("$B/avs-features" -q --root "$T/st" --random-init 2 --visual pvt_v2_b0)

# bad values: usage errors naming the flag, before anything is written
for v in 0 -0.1 nan inf abc ""; do
  expect_rc 1 "--alpha $v" "${F[@]}" --alpha "$v"
  expect_rc 1 "--beta $v" "${F[@]}" --beta "$v"
done
expect_eq "$(q 'SELECT count(*) FROM feature_sets')" 0 "no feature set row after the refusals"
expect_eq "$(ls "$T/st/features" 2>/dev/null | wc -l)" 0 "no feature file after the refusals"

"${F[@]}" --set f || fail "default set"
"${F[@]}" --alpha 0.05 --beta 3 || fail "set with alpha 0.05, beta 3"
ab=pvt_v2_b0-vggish-random2-a0.05-b3
expect_eq "$(q "SELECT count(*) FROM feature_sets WHERE name = '$ab'")" 1 "default name carries -a0.05-b3"
expect_eq "$(q "SELECT json_extract(config, '$.c3im.alpha') || ' ' || json_extract(config, '$.c3im.beta') FROM feature_sets WHERE name = '$ab'")" \
  "0.05 3" "the set's config records alpha and beta"
expect_eq "$(q "SELECT json_type(config, '$.c3im') IS NULL FROM feature_sets WHERE name = 'f'")" 1 \
  "a default set's config has no c3im entry (0.1/0.1, as before the option)"
"${F[@]}" --alpha 0.05 --beta 3 >/dev/null 2>&1; expect_eq "$?" 0 "the same options again: a no-op"
expect_rc 3 "another configuration" "${F[@]}" --set f --beta 0.2

# the exponents move the consensus class: CC targets of the two sets differ, CC-V ones do not
targets() { # targets SET FIELD: the field of every record of the first test video, joined
  local uid; uid=$(q "SELECT uid FROM videos WHERE split = 'test' ORDER BY uid LIMIT 1")
  for k in 1 2 3 4 5; do
    "$B/avs-features" -q --root "$T/st" dump --set "$1" --video "$uid" --k $k --out "$T/d$k.safetensors" || return 1
  done
  /usr/bin/python3 -c "import sys; sys.path.insert(0, 'tests/gen'); import model_st
print(' '.join(str(int(model_st.load('$T/d%d.safetensors' % k)['$2'][0])) for k in range(1, 6)) + ' ')"
}
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  t_def=$(targets f target); t_ab=$(targets $ab target)
  [ "$t_def" != "$t_ab" ] && n_checks=$((n_checks + 1)) || fail "alpha 0.05 beta 3 gave the default targets ($t_def)"
  expect_eq "$(targets $ab target_v)" "$(targets f target_v)" "CC-V does not depend on the exponents"
  # the set's encoders rebuilt from its config (avs-predict's clip path) give the set's targets
  uid=$(q "SELECT uid FROM videos WHERE split = 'test' ORDER BY uid LIMIT 1")
  clip=$(find "$T/ms3" -name "$uid*.mp4" | head -n 1)
  "$B/avs-features" -q --root "$T/st" clip --set $ab --clip "$clip" --out "$T/c.safetensors" || fail "clip"
  expect_eq "$(/usr/bin/python3 -c "import sys; sys.path.insert(0, 'tests/gen'); import model_st; print(' '.join(str(int(x)) for x in model_st.load('$T/c.safetensors')['target']) + ' ')")" \
    "$t_ab" "clip mode rebuilds the exponents from the set's config"
else
  echo "note: no numpy in /usr/bin/python3: target comparisons not run"
fi

# avs-train: the set's exponents or nothing; others refused before anything is written
TR=("$B/avs-train" -q --root "$T/st" --subset ms3 --width 8 --batch 2 --epochs 1 --lr 1e-3)
expect_rc 1 "--alpha 0" "${TR[@]}" --run bad --features $ab --alpha 0
expect_rc 1 "--beta nan" "${TR[@]}" --run bad --features $ab --beta nan
expect_rc 3 "alpha 0.05, beta 3" "${TR[@]}" --run bad --features $ab --alpha 0.1
expect_rc 3 "avs-features --alpha 0.1 --beta 0.3" "${TR[@]}" --run bad --features f --beta 0.3
expect_eq "$(q "SELECT count(*) FROM runs")" 0 "no run row after the refusals"
[ ! -e "$T/st/runs/bad" ] && n_checks=$((n_checks + 1)) || fail "a refused run left runs/bad"
"${TR[@]}" --run r-ab --features $ab --alpha 0.05 --beta 3 || fail "train with the set's exponents"
"${TR[@]}" --run r-def --features f || fail "train on the default set"
expect_eq "$(q "SELECT json_extract(config, '$.c3im.alpha') || ' ' || json_extract(config, '$.c3im.beta') || ' ' || json_extract(config, '$.feature_config.c3im.beta') FROM runs WHERE name = 'r-ab'")" \
  "0.05 3 3" "run config records the exponents (and the set's config)"
expect_eq "$(q "SELECT json_extract(config, '$.c3im.alpha') || ' ' || json_extract(config, '$.c3im.beta') FROM runs WHERE name = 'r-def'")" \
  "0.1 0.1" "run on a default set records 0.1/0.1"

# avs-predict: the same rule
expect_rc 1 "--beta -1" "$B/avs-predict" -q --root "$T/st" --run r-ab --beta -1
expect_rc 3 "alpha 0.05, beta 3" "$B/avs-predict" -q --root "$T/st" --run r-ab --alpha 0.2
expect_eq "$(q "SELECT count(*) FROM predictions")" 0 "no predictions after the refusal"
"$B/avs-predict" -q --root "$T/st" --run r-ab --alpha 0.05 --record || fail "predict r-ab"
"$B/avs-predict" -q --root "$T/st" --run r-def --record || fail "predict r-def"

# avs-model run c3im refuses bad exponents too
expect_rc 1 "--alpha -1" "$B/avs-model" run c3im --inputs tests/fixtures/features/c3im.safetensors --out "$T/o.safetensors" --alpha -1

# the grid on these runs, every format
for fmt in markdown latex html csv; do
  "$B/avs-report" -q ablation --root "$T/st" --rows alpha --cols beta --format $fmt -o "$T/g.$fmt" || fail "grid $fmt"
done
grep -q '| alpha \\ beta | 0.1 | 3 |' "$T/g.markdown" && n_checks=$((n_checks + 1)) || fail "markdown header: $(cat "$T/g.markdown")"
grep -q '^| 0.05 | - | [0-9.]* |$' "$T/g.markdown" && n_checks=$((n_checks + 1)) || fail "markdown 0.05 row: $(cat "$T/g.markdown")"
grep -q '^\$\\alpha\$ \\textbackslash{} \$\\beta\$ & 0.1 & 3 \\\\$' "$T/g.latex" && n_checks=$((n_checks + 1)) || fail "latex header: $(cat "$T/g.latex")"
grep -q '<th>0.1</th><td>[0-9.]*</td><td>&ndash;</td></tr>' "$T/g.html" && n_checks=$((n_checks + 1)) || fail "html 0.1 row: $(cat "$T/g.html")"
expect_rc 1 "--rows NAME --cols NAME" "$B/avs-report" ablation --root "$T/st" --rows alpha -o -
expect_rc 1 "--pick" "$B/avs-report" ablation --root "$T/st" --rows alpha --cols beta --pick most -o -
finish
