#!/bin/sh
# embed.sh NAME FILE: print a C file defining `const char NAME[]` with FILE's bytes.
set -e
echo "/* generated from $2 by scripts/embed.sh; do not edit */"
echo "extern const char $1[];"
echo "const char $1[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$2"
echo ";"
