"""gateway_deps(): the external repositories a gateway workspace needs, offline.

One call from a WORKSPACE file (this repository's own, or a studio's that
uses this one as `@game_gateway`) defines:

  * `@system`: Debian's libraries under /usr as cc_library targets
    (tools/bazel/system/system.BUILD; tools/setup installs the packages);
  * `@rules_cc`: a shim re-exporting Bazel's native C++ rules (Bazel's own
    tools load it; the real repository would be downloaded);
  * `@remote_coverage_tools`: the two empty filegroups `bazel test` looks up;
  * `@rules_java`: Debian's copy in /usr/share/bazel/rules/java.

The shims are written by a repository rule rather than pointed at with
local_repository, so that an outside workspace needs no path into this
repository. A repository a workspace already defines is left alone (so a
workspace can bring its own rules_cc, say).

    local_repository(name = "game_gateway", path = "/path/to/gateway")
    load("@game_gateway//tools/bazel:deps.bzl", "gateway_deps")
    gateway_deps()
"""

def _shim_repository_impl(ctx):
    for path, content in ctx.attr.files.items():
        ctx.file(path, content, executable = False)

# A repository made of the files given inline ({"path": "content"}).
_shim_repository = repository_rule(
    implementation = _shim_repository_impl,
    attrs = {"files": attr.string_dict(mandatory = True)},
    local = True,
)

_RULES_CC_DEFS = '''"""Re-exports Bazel's native C++ rules; stands in for rules_cc offline."""

cc_binary = native.cc_binary
cc_library = native.cc_library
cc_test = native.cc_test
cc_import = native.cc_import
cc_proto_library = native.cc_proto_library
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
objc_library = native.objc_library
'''

_RULES_CC_BUILD = '''package(default_visibility = ["//visibility:public"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
)
'''

_COVERAGE_BUILD = '''package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")
'''

def gateway_deps(system_path = "/usr", rules_java_path = "/usr/share/bazel/rules/java"):
    """Defines @system, @rules_cc, @remote_coverage_tools and @rules_java.

    Call it from WORKSPACE, after the local_repository of game_gateway.

    Args:
      system_path: where the Debian libraries' include/ and lib/ are.
      rules_java_path: the rules_java Bazel's Debian package ships.
    """
    existing = native.existing_rules()
    if "system" not in existing:
        native.new_local_repository(
            name = "system",
            path = system_path,
            build_file = str(Label("//tools/bazel/system:system.BUILD")),
        )
    if "rules_cc" not in existing:
        _shim_repository(
            name = "rules_cc",
            files = {
                "WORKSPACE": 'workspace(name = "rules_cc")\n',
                "BUILD": "",
                "cc/BUILD": _RULES_CC_BUILD,
                "cc/defs.bzl": _RULES_CC_DEFS,
            },
        )
    if "remote_coverage_tools" not in existing:
        _shim_repository(
            name = "remote_coverage_tools",
            files = {
                "WORKSPACE": 'workspace(name = "remote_coverage_tools")\n',
                "BUILD": _COVERAGE_BUILD,
            },
        )
    if "rules_java" not in existing:
        native.local_repository(name = "rules_java", path = rules_java_path)
