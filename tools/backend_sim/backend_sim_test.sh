#!/bin/bash
# Runs backend_sim_test.py against the built backend_sim (both are runfiles of this sh_test).
set -euo pipefail
dir="tools/backend_sim"
exec python3 "$dir/backend_sim_test.py" "$dir/backend_sim"
