#!/bin/bash
# test_synth_fetch.sh: scripts/fetch-media.sh and its pins, without network:
#   - scripts/media.sha256 is well formed and covers every category of synth/categories.csv
#     with at least one cut-out and one sound;
#   - synth/categories.csv names the same classes as the rows of features/data/ it points at;
#   - on a fake cache with fake pins: --verify passes; a corrupted file fails with exit 2
#     naming the file and the fix (in --verify and in fetch mode); a missing file of a package
#     apt does not know fails with exit 3 and says what to do; no network (a refused proxy
#     through APT_CONFIG) fails with exit 3 saying so.
set -u
fetch=scripts/fetch-media.sh
pins=scripts/media.sha256
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAILED: $2"; fail=1; fi; }

bad=$(grep -v '^#' "$pins" | grep -v '^$' | awk 'NF != 4 || length($1) != 64 || $1 !~ /^[0-9a-f]+$/' | wc -l)
check '[ "$bad" -eq 0 ]' "$pins: every pin is <sha256> <package> <member> <cache path>"
dups=$(grep -v '^#' "$pins" | awk 'NF == 4 {print $4}' | sort | uniq -d | wc -l)
check '[ "$dups" -eq 0 ]' "cache paths are unique"
for p in $(grep -v '^#' "$pins" | awk 'NF == 4 {print $2}' | sort -u); do
  check 'grep -q "^# package $p " "$pins"' "package $p has its version recorded"
done

re='^([a-z_]+),([0-9]+),("([^"]*)"|([^,"]*)),([0-9]+),("([^"]*)"|([^,"]*))$'
n=0
while IFS= read -r line; do
  [ "$line" = "category,imagenet_index,imagenet_name,audioset_index,audioset_name" ] && continue
  n=$((n + 1))
  if [[ $line =~ $re ]]; then
    cat=${BASH_REMATCH[1]}; ii=${BASH_REMATCH[2]}; in=${BASH_REMATCH[4]}${BASH_REMATCH[5]}
    ai=${BASH_REMATCH[6]}; an=${BASH_REMATCH[8]}${BASH_REMATCH[9]}
    want_in=$(sed -n "$((ii + 1))p" features/data/imagenet1k_classes.txt)
    want_an=$(awk -F, -v i="$ai" 'NR > 1 && $1 == i' features/data/audioset_class_labels_indices.csv | sed 's/^[^,]*,[^,]*,//; s/^"//; s/"$//')
    check '[ "$in" = "$want_in" ]' "$cat: ImageNet $ii is '$want_in'"
    check '[ "$an" = "$want_an" ]' "$cat: AudioSet $ai is '$want_an'"
    check 'grep -q " objects/$cat/[^ ]*\.png$" "$pins" && grep -q " sounds/$cat/" "$pins"' "$cat: pinned cut-out and sound"
  else
    check false "synth/categories.csv: cannot parse '$line'"
  fi
done < synth/categories.csv
check '[ $n -ge 15 ]' "at least 15 categories ($n)"
for c in $(grep -v '^#' "$pins" | awk 'NF == 4 && $4 ~ /^(objects|sounds)\// {split($4, a, "/"); print a[2]}' | sort -u); do
  check 'grep -q "^$c," synth/categories.csv' "pinned category $c is in synth/categories.csv"
done

# A fake cache: two files pinned to a package apt does not have.
cache=$AVS_TMP/cache; fpins=$AVS_TMP/pins
mkdir -p "$cache/objects/a" "$cache/sounds/a"
echo "cut-out" > "$cache/objects/a/x.png"; echo "sound" > "$cache/sounds/a/x.wav"
{
  echo "# package avs-no-such-package-for-tests 1.0"
  echo "$(sha256sum < "$cache/objects/a/x.png" | cut -d' ' -f1) avs-no-such-package-for-tests usr/x.png objects/a/x.png"
  echo "$(sha256sum < "$cache/sounds/a/x.wav" | cut -d' ' -f1) avs-no-such-package-for-tests usr/x.wav sounds/a/x.wav"
} > "$fpins"
bash $fetch --cache "$cache" --pins "$fpins" --verify > "$AVS_TMP/out" 2>&1
check '[ $? -eq 0 ] && grep -q "2 pinned files verified" "$AVS_TMP/out"' "--verify: intact cache passes"
bash $fetch --cache "$cache" --pins "$fpins" > "$AVS_TMP/out" 2>&1
check '[ $? -eq 0 ]' "fetch mode with a complete cache: nothing to download, exit 0"
echo "tampered" >> "$cache/sounds/a/x.wav"
bash $fetch --cache "$cache" --pins "$fpins" --verify > "$AVS_TMP/out" 2>&1; rc=$?
check '[ $rc -eq 2 ] && grep -q "corrupted cache file $cache/sounds/a/x.wav" "$AVS_TMP/out" && grep -q "rm " "$AVS_TMP/out"' "--verify: corrupted file -> exit 2, named, with the fix (rc $rc)"
bash $fetch --cache "$cache" --pins "$fpins" > "$AVS_TMP/out" 2>&1; rc=$?
check '[ $rc -eq 2 ] && grep -q "corrupted" "$AVS_TMP/out"' "fetch mode refuses a corrupted cache (rc $rc)"
rm "$cache/sounds/a/x.wav" "$cache/objects/a/x.png"
bash $fetch --cache "$cache" --pins "$fpins" --verify > "$AVS_TMP/out" 2>&1; rc=$?
check '[ $rc -eq 2 ] && grep -q "missing: $cache/objects/a/x.png" "$AVS_TMP/out"' "--verify: missing file -> exit 2 (rc $rc)"
bash $fetch --cache "$cache" --pins "$fpins" > "$AVS_TMP/out" 2>&1; rc=$?
check '[ $rc -eq 3 ] && grep -qE "apt cannot find package|no network" "$AVS_TMP/out"' "unknown package -> exit 3 with what to do (rc $rc: $(tail -n 1 "$AVS_TMP/out"))"
# No network, simulated with a proxy that refuses connections: exit 3 and says so (nothing downloaded).
printf 'Acquire::http::Proxy "http://127.0.0.1:9";\nAcquire::Retries "0";\n' > "$AVS_TMP/apt.conf"
printf '# package sonic-pi-samples 3.2.2~repack-8\n%s sonic-pi-samples usr/share/doc/sonic-pi-samples/copyright licences/x\n' \
  "$(printf '0%.0s' $(seq 64))" > "$AVS_TMP/pins2"
APT_CONFIG=$AVS_TMP/apt.conf bash $fetch --cache "$AVS_TMP/c2" --pins "$AVS_TMP/pins2" > "$AVS_TMP/out" 2>&1; rc=$?
check '[ $rc -eq 3 ] && grep -q "no network" "$AVS_TMP/out"' "no network -> exit 3, says so (rc $rc: $(tail -n 1 "$AVS_TMP/out"))"
bash $fetch --bogus > /dev/null 2>&1
check '[ $? -eq 1 ]' "unknown option: exit 1"
exit $fail
