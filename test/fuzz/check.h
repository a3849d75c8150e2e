// test/fuzz/check.h — the invariant check of the fuzz targets.
//
// Defines FUZZ_CHECK(cond, ...): when `cond` is false, prints the message
// (printf-style) with the file and line to stderr and aborts, which libFuzzer
// reports as a crash (and saves the input) and the replay tests as a
// failure. Works the same under gcc and clang, with or without sanitizers.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
                   #cond);                                                      \
      std::fprintf(stderr, __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                               \
      std::abort();                                                             \
    }                                                                           \
  } while (0)
