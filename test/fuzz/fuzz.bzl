"""gw_fuzz_target: one libFuzzer target, built two ways (docs/fuzzing.md).

  NAME_lib     cc_library with the target's LLVMFuzzerTestOneInput.
  NAME_replay  cc_test (gcc, the normal suite; also under --config=asan):
               runs every file of corpus/NAME and regressions/NAME through
               LLVMFuzzerTestOneInput (replay_main.cc), so each seed and each
               crash reproducer is a regression test.
  NAME         cc_binary, the fuzzer itself: libFuzzer's main, linked only
               under --config=fuzz (clang-14, tools/fuzz); tagged manual so
               `bazel build //...` with gcc never links it.
"""

def gw_fuzz_target(name, srcs, deps = [], size = "small"):
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )
    inputs = native.glob(["corpus/%s/**" % name, "regressions/%s/**" % name])
    native.cc_test(
        name = name + "_replay",
        size = size,
        srcs = ["replay_main.cc"],
        args = [
            "test/fuzz/corpus/" + name,
            "test/fuzz/regressions/" + name,
        ],
        data = inputs,
        deps = [":" + name + "_lib"],
    )
    native.cc_binary(
        name = name,
        testonly = True,
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual"],
        deps = [":" + name + "_lib"],
    )
