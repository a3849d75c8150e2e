#!/bin/bash
# plugins/example/gateway.json, the config docs/writing-a-filter.md shows for
# the plugin build, passes the real gateway's --check-config (which loads
# the plugin it names, relative to the working directory: the runfiles root).
set -euo pipefail
out=$(core/gateway --check-config plugins/example/gateway.json 2>&1) || {
  echo "gateway --check-config plugins/example/gateway.json failed:" >&2
  echo "$out" >&2
  exit 1
}
echo "$out"
