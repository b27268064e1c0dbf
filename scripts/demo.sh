#!/bin/bash
# demo.sh: the demo pipeline (called by `make demo` after deps and build).
set -euo pipefail
echo "demo: nothing yet"
