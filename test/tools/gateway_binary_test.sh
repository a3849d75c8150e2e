#!/usr/bin/env bash
# Checks gateway_binary (tools/bazel/gateway.bzl): exactly the listed filters
# are compiled in, and a gateway with no filter still exports the SDK's
# symbols a plugin resolves at dlopen (ParseContext's helpers, which only
# filters call, so a plain static link would drop them).
set -euo pipefail
dir=test/tools
fail=0

got=$("$dir/two_filter_gateway" --list-filters | tr '\n' ' ')
[ "$got" = "framing tcp_proxy " ] || { echo "two_filter_gateway --list-filters: '$got', want 'framing tcp_proxy '"; fail=1; }

got=$("$dir/bare_gateway" --list-filters | tr '\n' ' ')
[ -z "${got// }" ] || { echo "bare_gateway --list-filters: '$got', want nothing"; fail=1; }

syms=$(nm -D --defined-only "$dir/bare_gateway")
for sym in _ZN2gw14FilterRegistry3getEv ParseContext8duration ParseContext7cluster ParseContext4size; do
  grep -q "$sym" <<<"$syms" || { echo "bare_gateway does not export $sym"; fail=1; }
done
exit $fail
