#!/usr/bin/env bash
# tools/bazel/plugin_check.sh PLUGIN.so — the check gateway_plugin adds as
# <stem>_plugin_test: the shared object exports gw_plugin_manifest (GW_PLUGIN)
# and defines none of the SDK's own symbols (the registry, the stats
# registry), which must come from the gateway binary at dlopen: a second
# copy would give the plugin its own registry, and its filters would never
# reach the gateway.
set -euo pipefail
so="$1"
defined=$(nm -D --defined-only "$so")
fail=0
if ! grep -qE ' T gw_plugin_manifest$' <<<"$defined"; then
  echo "$so: does not export gw_plugin_manifest (write GW_PLUGIN(name, version) once)" >&2
  fail=1
fi
for sym in _ZN2gw14FilterRegistry3getEv _ZN2gw5stats13StatsRegistry3getEv; do
  if grep -qE " [TtWw] $sym\$" <<<"$defined"; then
    echo "$so: defines $(c++filt "$sym"): a second copy of the SDK is linked in" \
         "(a dep carries //core/sdk's code; give gateway_filter a headers-only plugin_deps)" >&2
    fail=1
  fi
done
exit $fail
