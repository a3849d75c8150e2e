"""gw_link_only: a C++ library's link inputs without its headers.

The runtime shell (//core: server, workers, admin, access log, main) must be
linkable by any workspace's gateway_binary, yet no filter may include its
headers. Bazel visibility alone cannot say "link, but do not compile
against": a public cc_library hands its headers (and its deps' headers) to
every dependant. gw_link_only re-exports only the linking half of a
cc_library's CcInfo, so the public target:

  * compiles nothing into a dependant: no header of the runtime, the config
    loader or their deps is visible (including one is an error);
  * links the whole closure whole-archive (every object, referenced or not):
    the gateway then carries every SDK symbol a plugin may resolve at
    dlopen (-rdynamic), not only those its compiled-in filters happen to
    use; and it carries main(), so a filter library that depended on it
    could not be linked into a test or a plugin of its own.
"""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

def _whole(ctx, cc_toolchain, features, lib):
    static = lib.static_library
    pic = lib.pic_static_library
    if static == None and pic == None:
        return lib  # a shared or interface library: linked as it is
    return cc_common.create_library_to_link(
        actions = ctx.actions,
        feature_configuration = features,
        cc_toolchain = cc_toolchain,
        static_library = static,
        pic_static_library = pic,
        alwayslink = True,
    )

def _gw_link_only_impl(ctx):
    cc_toolchain = find_cpp_toolchain(ctx)
    features = cc_common.configure_features(
        ctx = ctx,
        cc_toolchain = cc_toolchain,
        requested_features = ctx.features,
        unsupported_features = ctx.disabled_features,
    )
    inputs = []
    for dep in ctx.attr.deps:
        for li in dep[CcInfo].linking_context.linker_inputs.to_list():
            inputs.append(cc_common.create_linker_input(
                owner = li.owner,
                libraries = depset([_whole(ctx, cc_toolchain, features, l) for l in li.libraries]),
                user_link_flags = depset(li.user_link_flags),
                additional_inputs = depset(li.additional_inputs),
            ))
    linking_context = cc_common.create_linking_context(
        linker_inputs = depset(inputs),
    )
    return [CcInfo(linking_context = linking_context)]

gw_link_only = rule(
    implementation = _gw_link_only_impl,
    doc = "Re-exports `deps`' link inputs (whole-archive), without their headers.",
    attrs = {
        "deps": attr.label_list(providers = [CcInfo], mandatory = True),
        "_cc_toolchain": attr.label(
            default = Label("@bazel_tools//tools/cpp:current_cc_toolchain"),
        ),
    },
    fragments = ["cpp"],
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
)
