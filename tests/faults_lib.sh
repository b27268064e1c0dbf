# tests/faults_lib.sh: the fault tests' shared fixture and checks (sourced after lib.sh and
# media.sh). make_reference builds, on the ordinary disk, a small S4 store ($T/ref: 4 videos x
# 5 s at 64x64), its feature set f ($T/ref-f, random-init b0) and a 3-epoch run a ($T/ref-t);
# the checks compare a store that met a fault with those.
B=$AVS_BIN; T=$AVS_TMP
ingest() { "$B/avs-ingest" -q -j 2 --root "$1" --size 64x64 --avsbench "$T/s4"; }
# the commands as arrays too, for a test that must signal the program itself (not a subshell)
FEATURES=("$B/avs-features" -q -j 2 --random-init 2 --visual pvt_v2_b0 --set f)
TRAIN=("$B/avs-train" -q -j 2 --subset s4 --width 16 --batch 2 --epochs 3 --lr 1e-3 --seed 7 --run a)
features() { "${FEATURES[@]}" --root "$1"; }
train() { "${TRAIN[@]}" --root "$1" "${@:2}"; }

# ref_run STEP CMD...: one reference step (ingest, features, train); a test may redefine it
# (test_faults_eio.sh counts the step's writes there)
ref_run() { shift; "$@"; }
make_reference() {
  "$B/avs-synth" -q --media "$media" --out "$T/s4" --subset s4 --videos 4 --seconds 5 --seed 3 \
    --size 64x64 --fps 10 || fail "synth"
  ref_run ingest ingest "$T/ref" || fail "reference ingest"
  cp -a "$T/ref" "$T/ref-f"; ref_run features features "$T/ref-f" || fail "reference features"
  cp -a "$T/ref-f" "$T/ref-t"; ref_run train train "$T/ref-t" || fail "reference training"
  store_files "$T/ref" > "$T/ref.md5"
  feature_records "$T/ref-f" > "$T/ref.rec"
}

# md5 and name of every store file (frames, audio, masks), sorted
store_files() { (cd "$1" && find frames audio masks -type f 2>/dev/null | sort | xargs -r md5sum); }
# the index rows that must equal an uninterrupted run's
store_rows() {
  sqlite3 "$1/avs.db" "SELECT uid, category, status, seconds, has_audio FROM v_videos ORDER BY uid;
                       SELECT uid, k, frame, audio, mask FROM v_seconds ORDER BY uid, k"
}
# one line per feature record of set f: uid k flipped target target_v md5(record bytes)
feature_records() {
  local r=$1 path rb
  path=$(sqlite3 "$r/avs.db" "SELECT path FROM feature_sets WHERE name = 'f'")
  [ -n "$path" ] || return 0
  rb=$(od -An -t u8 -j 24 -N 8 "$r/$path" | tr -d ' ')   # record size: u64 at byte 24
  sqlite3 -separator ' ' "$r/avs.db" "SELECT v.uid, e.k, e.flipped, e.target, e.target_v, e.offset
      FROM feature_entries e JOIN videos v ON v.id = e.video_id ORDER BY v.uid, e.k, e.flipped" |
  while read -r uid k fl t tv off; do
    echo "$uid $k $fl $t $tv $(tail -c +$((off + 1)) "$r/$path" | head -c "$rb" | md5sum | cut -c1-32)"
  done
}

run_epochs() {
  sqlite3 "$1/avs.db" "SELECT e.epoch, printf('%.17g %.17g', e.train_loss, e.val_miou) FROM run_epochs e
                       JOIN runs r ON r.id = e.run_id WHERE r.name = 'a' ORDER BY e.epoch" 2>/dev/null
}

# check_consistent STORE WHAT [nofiles]: after a fault, the index is whole, no temp file is
# left, every indexed frame/audio/mask is there and equal to the reference's (not with
# nofiles), and every feature record the index names is the reference's for that second.
check_consistent() {
  local s=$1 what=$2 f want got
  [ -f "$s/avs.db" ] || return 0
  expect_eq "$(sqlite3 "$s/avs.db" "PRAGMA integrity_check")" ok "$what: index integrity"
  expect_eq "$(find "$s" -name '*.tmp.*' | wc -l)" 0 "$what: no temp file left"
  [ "${3:-}" = nofiles ] && : > "$T/indexed" ||
  sqlite3 "$s/avs.db" "SELECT frame FROM v_seconds UNION ALL SELECT audio FROM v_seconds
                       UNION ALL SELECT mask FROM v_seconds WHERE mask IS NOT NULL" > "$T/indexed"
  n_checks=$((n_checks + 1))
  while read -r f; do
    want=$(grep " $f\$" "$T/ref.md5" | cut -d' ' -f1)
    got=$(md5sum < "$s/$f" 2>/dev/null | cut -d' ' -f1)
    [ -n "$want" ] && [ "$want" = "$got" ] || { fail "$what: indexed $f missing or not whole"; break; }
  done < "$T/indexed"
  if [ -n "$(sqlite3 "$s/avs.db" "SELECT path FROM feature_sets WHERE name = 'f'")" ]; then
    feature_records "$s" > "$T/got.rec"
    n_checks=$((n_checks + 1))
    grep -vxFf "$T/ref.rec" "$T/got.rec" > "$T/bad.rec"
    [ ! -s "$T/bad.rec" ] || fail "$what: feature records unlike the reference's: $(head -n 2 "$T/bad.rec")"
  fi
}

# the named stores' index, files, features and checkpoints equal the reference's
check_same() {
  local s=$1 ref=$2 what=$3
  expect_eq "$(store_rows "$s")" "$(store_rows "$ref")" "$what: index rows == an uninterrupted run's"
  expect_eq "$(store_files "$s")" "$(store_files "$ref")" "$what: files == an uninterrupted run's"
  if [ -f "$ref/features/f.bin" ]; then
    cmp -s "$s/features/f.bin" "$ref/features/f.bin"; expect_eq $? 0 "$what: feature file bytes"
    expect_eq "$(feature_records "$s")" "$(feature_records "$ref")" "$what: feature entries"
  fi
  expect_eq "$(run_epochs "$s")" "$(run_epochs "$ref")" "$what: per-epoch numbers"
  for c in last best; do
    [ -f "$ref/runs/a/$c.safetensors" ] || continue
    cmp -s "$s/runs/a/$c.safetensors" "$ref/runs/a/$c.safetensors"
    expect_eq $? 0 "$what: $c checkpoint bytes"
  done
}
