#!/bin/bash
# Runs browser_test.py with Debian's python3, which has python3-websockets; the test drives
# Debian's chromium (tools/setup installs both, and libnss3-tools for certutil).
set -euo pipefail
exec /usr/bin/python3 test/integration/browser_test.py
