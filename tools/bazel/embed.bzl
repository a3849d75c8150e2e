"""gw_embed_json: turns a JSON file into a header with a string constant."""

def gw_embed_json(name, src, var, namespace = "gw"):
    """Generates `<name>.h` declaring `inline constexpr std::string_view <var>`.

    Args:
      name: target name; the header is `<name>.h` in this package.
      src: the JSON file (e.g. a filter's schema.json).
      var: the C++ constant's name.
      namespace: the C++ namespace of the constant.
    """
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = [name + ".h"],
        cmd = ("(echo '// Generated from $(location %s). Do not edit.'; " +
               "echo '#pragma once'; echo '#include <string_view>'; " +
               "echo 'namespace %s {'; " +
               "echo 'inline constexpr std::string_view %s = R\"gwjson('; " +
               "cat $(location %s); echo ')gwjson\";'; echo '}') > $@") % (src, namespace, var, src),
    )
    native.cc_library(
        name = name,
        hdrs = [name + ".h"],
        visibility = ["//visibility:public"],
    )
