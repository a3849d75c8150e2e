#!/bin/bash
# Runs a docs/ops test script (default ops_test.py: manifests, alert rules,
# dashboard vs. the real gateway; the BUILD target's args may name another)
# with Debian's python3, which has python3-yaml (tools/setup installs it).
set -euo pipefail
exec /usr/bin/python3 "${1:-test/integration/ops_test.py}"
