"""Macros for filters, plugins and gateway binaries, for any workspace.

Load them from this repository as `//tools/bazel:gateway.bzl`, or from a
studio's workspace as `@game_gateway//tools/bazel:gateway.bzl` (after
gateway_deps(), tools/bazel/deps.bzl). Built-in filters and plugins use the
same macros; docs/tools.md shows a whole package.

  gateway_filter(name = "msg_guard", srcs = ["msg_guard.cc"], hdrs = ["msg_guard.h"],
                 schema = "schema.json", schema_namespace = "studio")
  gateway_plugin(name = "msg_guard.so", filter = ":msg_guard", version = "1.2.0")
  gateway_binary(name = "gateway", filters = ["@game_gateway//filters/framing", ":msg_guard"])
"""

load(":embed.bzl", "gw_embed_json")

# Labels of this repository, resolved relative to this file (so they name
# @game_gateway//... when loaded from another workspace).
_SDK = str(Label("//core/sdk"))
_SDK_HEADERS = str(Label("//core/sdk:headers"))
_RUNTIME = str(Label("//core:runtime"))
_PLUGIN_CHECK = str(Label("//tools/bazel:plugin_check.sh"))

def _camel(name):
    return "".join([p[:1].upper() + p[1:] for p in name.split("_")])

def gateway_filter(
        name,
        srcs,
        hdrs = [],
        schema = None,
        schema_var = None,
        schema_namespace = None,
        deps = [],
        plugin_deps = None,
        visibility = None,
        **kwargs):
    """A filter: its library (registered when linked) and embedded schema.

    Defines:
      <name>: cc_library (alwayslink: its GW_REGISTER_FILTER runs in any
        binary that links it) on `deps` + the SDK (//core/sdk), for
        gateway_binary and tests;
      <name>_schema: `schema` as the header `<name>_schema.h` declaring
        `inline constexpr std::string_view <schema_var>` in
        `<schema_namespace>` (gw_embed_json);
      <name>_plugin_lib: the same sources against the SDK's headers only
        (//core/sdk:headers) on `plugin_deps`, for gateway_plugin. Tagged
        manual: built only when a plugin uses it.

    Args:
      name: the filter's target name (by convention its JSON name).
      srcs: the .cc files (one of them writes GW_REGISTER_FILTER).
      hdrs: its headers.
      schema: the JSON Schema file of the filter's config, or None.
      schema_var: the schema constant's name; default k<Name>Schema
        (tcp_proxy -> kTcpProxySchema).
      schema_namespace: the constant's namespace; default gw::<name>.
      deps: what else the filter uses: //core/redis:redis_client, @system
        libraries; never another filter, never //core.
      plugin_deps: deps for the plugin build; default `deps`. A dep that
        carries SDK code (//core/redis:redis_client does) would put a second
        copy of the SDK into the plugin: gateway_plugin's check test refuses
        that, so give a headers-only replacement here.
      visibility: of the three targets.
      **kwargs: passed to both cc_library rules (copts, defines, ...).
    """
    libdeps = []
    if schema:
        gw_embed_json(
            name = name + "_schema",
            src = schema,
            var = schema_var or ("k" + _camel(name) + "Schema"),
            namespace = schema_namespace or ("gw::" + name),
        )
        libdeps.append(":" + name + "_schema")
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        alwayslink = True,
        deps = deps + libdeps + [_SDK],
        visibility = visibility,
        **kwargs
    )
    native.cc_library(
        name = name + "_plugin_lib",
        srcs = srcs,
        hdrs = hdrs,
        alwayslink = True,
        deps = (deps if plugin_deps == None else plugin_deps) + libdeps + [_SDK_HEADERS],
        tags = ["manual"],
        visibility = visibility,
        **kwargs
    )

def gateway_plugin(name, filter, plugin_name = None, version = "0.0.0", visibility = None):
    """A plugin: a shared object of one gateway_filter, loaded by "plugins".

    Built from the filter's sources against the SDK's headers only: the SDK's
    code comes from the gateway binary (linked -rdynamic) at dlopen time, so
    the plugin shares its registry and metrics and carries no second copy.

    Defines:
      <name>: the shared object (cc_binary, linkshared); `name` ends in .so;
      <name>_manifest.cc: generated, the plugin's manifest,
        `GW_PLUGIN("<plugin_name>", "<version>");` (core/sdk/plugin.h);
      <stem>_plugin_test (stem: name without .so): checks the object exports
        gw_plugin_manifest and defines none of the SDK's symbols.

    Args:
      name: the file name, e.g. "msg_guard.so".
      filter: the gateway_filter target (":msg_guard").
      plugin_name: the manifest name, the plugin's identity across reloads;
        default: the filter target's name.
      version: the plugin's own version.
      visibility: of the shared object.
    """
    if not name.endswith(".so"):
        fail("gateway_plugin: name %r must end in .so (it is the file name)" % name)
    stem = name[:-len(".so")]
    if not plugin_name:
        plugin_name = filter.split(":")[-1] if ":" in filter else filter.split("/")[-1]
    native.genrule(
        name = stem + "_manifest",
        outs = [stem + "_manifest.cc"],
        cmd = ("(echo '// Generated by gateway_plugin (tools/bazel/gateway.bzl). Do not edit.'; " +
               "echo '#include \"core/sdk/plugin.h\"'; " +
               "echo 'GW_PLUGIN(\"%s\", \"%s\");') > $@") % (plugin_name, version),
    )
    native.cc_binary(
        name = name,
        srcs = [":" + stem + "_manifest.cc"],
        linkshared = True,
        deps = [filter + "_plugin_lib", _SDK_HEADERS],
        visibility = visibility,
    )
    native.sh_test(
        name = stem + "_plugin_test",
        srcs = [_PLUGIN_CHECK],
        args = ["$(location :%s)" % name],
        data = [":" + name],
        size = "small",
    )

def gateway_binary(name, filters = [], plugins = [], visibility = None, **kwargs):
    """A gateway with exactly `filters` compiled in.

    The runtime (//core:runtime: server, workers, admin, main, the whole
    SDK) plus each listed gateway_filter library; linked -rdynamic so that
    plugins resolve the SDK from the binary, and with -ldl.

    Args:
      name: the binary's name.
      filters: gateway_filter targets to compile in (their registration
        runs at start). //filters:builtin is all the built-ins.
      plugins: gateway_plugin shared objects built with the binary, in its
        runfiles (a config loads them by path in "plugins").
      visibility: of the binary.
      **kwargs: passed to cc_binary.
    """
    native.cc_binary(
        name = name,
        deps = [_RUNTIME] + filters,
        data = plugins,
        linkopts = [
            "-ldl",
            "-rdynamic",
        ],
        visibility = visibility,
        **kwargs
    )

# The default visibility of every built-in filter package: filters never
# depend on each other, so only the all-built-ins library (//filters), the
# tests and the tools see a built-in's targets.
BUILTIN_FILTER_VISIBILITY = [
    str(Label("//filters:__pkg__")),
    str(Label("//test:__subpackages__")),
    str(Label("//tools:__subpackages__")),
]
