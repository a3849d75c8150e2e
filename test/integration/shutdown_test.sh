#!/bin/bash
# Runs shutdown_test.py with Debian's python3, which has python3-websockets
# (tools/setup installs it).
set -euo pipefail
exec /usr/bin/python3 test/integration/shutdown_test.py
