#!/usr/bin/env bash
# test/tools/new_filter_test.sh [BAZEL_ARGS...] — the scaffold end to end:
# tools/new_filter refuses bad names (nothing written), then generates
#   * a frames-layer filter with --plugin into a temp package
#     (test/tools/scaffold_tmp_PID), and
#   * a bytes-layer built-in (filters/NAME, test/filters/NAME, docs/...),
# and each builds, passes its tests (with the plugin's check) and runs its
# benchmark. Everything generated is removed on exit, pass or fail.
#
# Runs bazel itself, so it is not a bazel test (nested bazel in a test's
# sandbox is fragile): tools/test runs it after `bazel test //...`, with the
# same extra arguments (--config=asan ...). Also checks the visibility
# rules the macros rely on: a built-in filter cannot depend on another
# (//filters:NAME) nor include the runtime shell through //core:runtime.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp="test/tools/scaffold_tmp_$$"
frames="scaffold_frames_$$"
bytes="scaffold_bytes_$$"
probe="filters/scaffold_probe_$$"
cleanup() {
  rm -rf "$tmp" "$probe" "filters/$bytes" "test/filters/$bytes" "docs/filters/$bytes.md"
}
trap cleanup EXIT
fail=0
check() {  # check WHAT COMMAND...: runs it, reports
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
refuses() {  # refuses WANT ARGS...: tools/new_filter ARGS exits 2 saying WANT
  local out
  out=$(tools/new_filter "${@:2}" 2>&1)
  [ $? -eq 2 ] && grep -qF "$1" <<<"$out" || { echo "tools/new_filter ${*:2}: got: $out"; return 1; }
}

check "refuses an uppercase name" refuses "is not a lowercase identifier" BadName --dir "$tmp"
check "refuses a leading digit" refuses "is not a lowercase identifier" 9lives --dir "$tmp"
check "refuses a built-in's name" refuses "there is a built-in filter filters/framing" framing
check "refuses an existing directory" refuses "already exists" fresh_name --dir tools
check "refuses a directory outside any workspace" refuses "not inside a Bazel workspace" \
  fresh_name --dir /proc/nowhere
check "wrote nothing when refusing" test ! -e "$tmp"

check "generates a frames filter with a plugin" tools/new_filter "$frames" --plugin --dir "$tmp"
check "generates a bytes built-in" tools/new_filter "$bytes" --layer bytes
check "builds and passes" bazel test "$@" "//$tmp:all" "//test/filters/$bytes:all"
check "the plugin is built" test -f "$(bazel info "$@" bazel-bin 2>/dev/null)/$tmp/$frames.so"
for bench in "//$tmp:${frames}_bench" "//test/filters/$bytes:${bytes}_bench"; do
  out=$(bazel run -c opt "$@" "$bench" -- --benchmark_min_time=0.01 2>/dev/null)
  check "$bench runs, 0 allocs/op" grep -qE "_Frame .*allocs/op=0\b" <<<"$out"
done

# Visibility: one built-in filter may not depend on another, nor see the
# runtime's headers through //core:runtime.
mkdir -p "$probe"
cat >"$probe/BUILD.bazel" <<'BUILD'
cc_library(name = "other_filter", deps = ["//filters:framing"])
cc_library(name = "runtime_headers", srcs = ["uses_server.cc"], deps = ["//core:runtime"])
BUILD
echo '#include "core/server.h"' >"$probe/uses_server.cc"
out=$(bazel build "$@" "//$probe:other_filter" 2>&1)
check "a filter cannot depend on another filter" grep -q "is not visible from target" <<<"$out"
out=$(bazel build "$@" "//$probe:runtime_headers" 2>&1)
check "a filter sees no runtime header through //core:runtime" \
  grep -q "core/server.h: No such file" <<<"$out"

exit $fail
