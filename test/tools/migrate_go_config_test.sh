#!/bin/bash
# Runs migrate_go_config_test.py with Debian's python3, which has python3-yaml
# (tools/setup installs it), from the runfiles root.
set -euo pipefail
exec /usr/bin/python3 test/tools/migrate_go_config_test.py
