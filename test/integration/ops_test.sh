#!/bin/bash
# Runs ops_test.py (manifests, alert rules, dashboard vs. the real gateway) with
# Debian's python3, which has python3-yaml (tools/setup installs it).
set -euo pipefail
exec /usr/bin/python3 test/integration/ops_test.py
