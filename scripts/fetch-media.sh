#!/bin/bash
# fetch-media.sh: fetch the real media avs-synth composes clips from (photo cut-outs with alpha
# masks, their recorded sounds, background photos) out of Debian packages, into a cache, and
# verify every file against the sha256 pins in scripts/media.sha256.
#
#   scripts/fetch-media.sh              fetch what is missing, verify everything (idempotent)
#   scripts/fetch-media.sh --verify     only verify the cache (no network); exit 2 if not complete
#   scripts/fetch-media.sh --print-dir  print the cache folder and exit
#   scripts/fetch-media.sh --repin      maintainers: download the packages and rewrite the pins
# Options: --cache DIR (default $AVS_MEDIA, else ${XDG_CACHE_HOME:-~/.cache}/avs/media),
#          --pins FILE (default scripts/media.sha256), --quiet.
# Exit: 0 ok, 1 usage, 2 a cached or downloaded file does not match its pin (or is missing in
# --verify mode), 3 download failed (no network, stale apt lists).
#
# How: `apt-get download PKG` (no install; root not needed), then `dpkg-deb --fsys-tarfile |
# tar -x` of only the pinned members, each checked and moved into the cache atomically. Pins
# are per file, so a new package version whose files did not change still verifies.
# The cache layout is the one avs-synth reads (see synth/synth.h):
#   objects/<category>/<name>.png  sounds/<category>/<name>.<ext>  backgrounds/<name>.jpg
#   licences/<package>.copyright   categories.csv (copied from synth/categories.csv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
pins=$here/media.sha256
cache=${AVS_MEDIA:-${XDG_CACHE_HOME:-$HOME/.cache}/avs/media}
mode=fetch
quiet=0

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || { usage >&2; exit 1; }; cache=$2; shift ;;
    --pins) [ $# -ge 2 ] || { usage >&2; exit 1; }; pins=$2; shift ;;
    --verify) mode=verify ;;
    --repin) mode=repin ;;
    --print-dir) echo "$cache"; exit 0 ;;
    --quiet|-q) quiet=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-media.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done
say() { [ $quiet -eq 1 ] || echo "fetch-media: $*"; }
err() { echo "fetch-media: $*" >&2; }
[ -f "$pins" ] || { err "pin file $pins not found"; exit 1; }

# Pin lines: <sha256> <package> <member path in the .deb> <path in the cache>.
declare -a P_SHA P_PKG P_MEM P_DST
while read -r sha pkg mem dst rest; do
  case $sha in ''|'#'*) continue ;; esac
  if [ -z "$dst" ] || [ -n "$rest" ]; then err "$pins: bad line '$sha $pkg $mem $dst $rest'"; exit 1; fi
  P_SHA+=("$sha"); P_PKG+=("$pkg"); P_MEM+=("$mem"); P_DST+=("$dst")
done < "$pins"
n=${#P_SHA[@]}
[ "$n" -gt 0 ] || { err "$pins holds no pins"; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # one fetch at a time per cache (the demo and tests may race)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/avs-fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Download one package into $tmp/deb/ and extract the given members into $tmp/x/<pkg>/.
download() {
  local pkg=$1; shift
  mkdir -p "$tmp/deb" "$tmp/x/$pkg"
  local opts=()
  [ "$(id -u)" -eq 0 ] && opts+=(-o APT::Sandbox::User=root)
  say "downloading Debian package $pkg (apt-get download)"
  local ok=0
  (cd "$tmp/deb" && apt-get download -q "${opts[@]}" "$pkg") >"$tmp/apt.log" 2>&1 && ok=1
  # A fresh machine (no package lists) or stale lists (404): as root, update once and retry.
  local lists
  lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' 2>/dev/null | head -n 1)
  if [ $ok -eq 0 ] && [ "$(id -u)" -eq 0 ] &&
     { [ -z "$lists" ] || grep -q '404' "$tmp/apt.log"; }; then
    say "apt package lists are missing or stale: running apt-get update (as root)"
    apt-get update -qq >>"$tmp/apt.log" 2>&1 &&
      (cd "$tmp/deb" && apt-get download -q "${opts[@]}" "$pkg") >"$tmp/apt.log" 2>&1 && ok=1
  fi
  if [ $ok -eq 0 ]; then
    local net='resolv|could not connect|connection|unreachable|timed out'
    if grep -qiE "$net" "$tmp/apt.log"; then
      err "no network: could not download $pkg ($(grep -m1 -iE "$net" "$tmp/apt.log")); the media cannot be fetched on this machine"
    elif grep -qiE 'unable to locate|no installation candidate|404' "$tmp/apt.log"; then
      err "apt cannot find package $pkg: the package lists are missing or stale; run as root: apt-get update  (then run this script again)"
    else
      err "apt-get download $pkg failed: $(tail -n 2 "$tmp/apt.log" | tr '\n' ' ')"
    fi
    exit 3
  fi
  local deb
  deb=$(ls "$tmp/deb/${pkg}"_*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || { err "apt-get download $pkg produced no .deb"; exit 3; }
  local ver
  ver=$(dpkg-deb -f "$deb" Version)
  local pinned
  pinned=$(awk -v p="$pkg" '$1=="#" && $2=="package" && $3==p {print $4}' "$pins")
  if [ -n "$pinned" ] && [ "$pinned" != "$ver" ]; then
    say "note: $pkg is version $ver, pins were made from $pinned (files are checked one by one)"
  fi
  echo "$ver" > "$tmp/x/$pkg.version"
  printf './%s\n' "$@" > "$tmp/members"
  if ! dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x/$pkg" -T "$tmp/members" 2>"$tmp/tar.log"; then
    err "$pkg $ver lacks pinned files: $(head -n 3 "$tmp/tar.log" | tr '\n' ' ') -- the package changed; update scripts/media.sha256 (--repin) and the file list"
    exit 2
  fi
  rm -f "$deb"
}

packages() { printf '%s\n' "${P_PKG[@]}" | awk '!seen[$0]++'; }
members_of() { local i; for ((i = 0; i < n; i++)); do [ "${P_PKG[$i]}" = "$1" ] && echo "${P_MEM[$i]}"; done; }

if [ $mode = repin ]; then
  for pkg in $(packages); do mapfile -t mem < <(members_of "$pkg"); download "$pkg" "${mem[@]}"; done
  out=$tmp/pins.new
  {
    sed -n '/^#/p' "$pins" | grep -v '^# package '
    for pkg in $(packages); do echo "# package $pkg $(cat "$tmp/x/$pkg.version")"; done
    for ((i = 0; i < n; i++)); do
      echo "$(sha_of "$tmp/x/${P_PKG[$i]}/${P_MEM[$i]}") ${P_PKG[$i]} ${P_MEM[$i]} ${P_DST[$i]}"
    done
  } > "$out"
  cp "$out" "$pins"
  say "rewrote $pins ($n pins)"
  exit 0
fi

# Verify what is cached; collect what is missing by package.
bad=0
declare -A need
for ((i = 0; i < n; i++)); do
  f=$cache/${P_DST[$i]}
  if [ ! -f "$f" ]; then
    if [ $mode = verify ]; then err "missing: $f (run scripts/fetch-media.sh)"; bad=1; fi
    need[${P_PKG[$i]}]=1
  elif [ "$(sha_of "$f")" != "${P_SHA[$i]}" ]; then
    err "corrupted cache file $f: sha256 $(sha_of "$f") but pinned ${P_SHA[$i]} (${P_PKG[$i]}:${P_MEM[$i]}); fix: rm '$f' && scripts/fetch-media.sh"
    bad=1
  fi
done
if [ $mode = verify ]; then
  [ $bad -eq 0 ] && say "ok: $n pinned files verified in $cache"
  exit $((bad ? 2 : 0))
fi
[ $bad -eq 0 ] || exit 2

for pkg in "${!need[@]}"; do
  mapfile -t mem < <(members_of "$pkg")
  download "$pkg" "${mem[@]}"
  for ((i = 0; i < n; i++)); do
    [ "${P_PKG[$i]}" = "$pkg" ] || continue
    src=$tmp/x/$pkg/${P_MEM[$i]}; dst=$cache/${P_DST[$i]}
    [ -f "$dst" ] && continue
    got=$(sha_of "$src")
    if [ "$got" != "${P_SHA[$i]}" ]; then
      err "$pkg $(cat "$tmp/x/$pkg.version"): ${P_MEM[$i]} has sha256 $got, pinned ${P_SHA[$i]}: the package's file changed; check it, then run scripts/fetch-media.sh --repin"
      exit 2
    fi
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst.tmp.$$" && mv "$dst.tmp.$$" "$dst"
  done
  rm -rf "${tmp:?}/x/$pkg"
done

# The category table travels with the media (avs-synth reads it from the cache).
if [ -f "$repo/synth/categories.csv" ]; then
  cp "$repo/synth/categories.csv" "$cache/categories.csv.tmp.$$" && mv "$cache/categories.csv.tmp.$$" "$cache/categories.csv"
fi
say "ok: $n pinned files in $cache ($(ls "$cache/objects" | wc -l) categories, $(ls "$cache/backgrounds" | wc -l) backgrounds)"
