#!/usr/bin/env python3
"""tools/docs_snippets — keeps the code blocks of a Markdown doc equal to the
regions of real source files they quote.

  tools/docs_snippets/docs_snippets.py --check  [DOC ...]   exit 1 naming every stale block
  tools/docs_snippets/docs_snippets.py --update [DOC ...]   rewrite the blocks from the sources

DOC defaults to docs/writing-a-filter.md; paths are relative to the
workspace root (--root, default: the repository this script is in).
//test/docs:writing_a_filter_snippets_test runs the check in the test suite.

In the doc, a block is tied to a region by the line right before its fence:

  <!-- snippet: plugins/example/msg_filter.cc#on_frame -->
  ```cpp
  ...
  ```

`PATH#REGION` quotes the lines strictly between the line containing
`[START REGION]` and the line containing `[END REGION]` in PATH (any comment
syntax: `// [START on_frame]`, `# [START library]`); `PATH` alone quotes the
whole file (for files without comments, such as JSON). Marker lines of other
regions inside a region are left out, and the region's common indentation is
removed. A code block in a code language (cpp, python, json, starlark) must
be tied, or say why not on the line before its fence:

  <!-- untied: a sketch of an API, not a file of this repository -->

Limits: fences are ``` at the start of a line; a region's name is unique in
its file.
"""
import argparse
import difflib
import os
import re
import sys
import textwrap

DEFAULT_DOCS = ["docs/writing-a-filter.md"]
# Fenced blocks in these languages are code and must be tied or untied.
CODE_LANGS = {"cpp", "c++", "cc", "python", "py", "json", "starlark", "bzl"}
SNIPPET_RE = re.compile(r"^<!--\s*snippet:\s*(\S+?)\s*-->\s*$")
UNTIED_RE = re.compile(r"^<!--\s*untied:\s*(.+?)\s*-->\s*$")
MARKER_RE = re.compile(r"\[(START|END) ([A-Za-z0-9_.-]+)\]")
FENCE_RE = re.compile(r"^```(\S*)\s*$")


class SnippetError(Exception):
    """A doc or source problem, with the message to show."""


class Block:
    """One fenced code block of a doc: 0-based line numbers of its opening
    and closing fences, its language, its body and what it is tied to."""

    def __init__(self, open_line, close_line, lang, body, source, untied):
        self.open_line = open_line
        self.close_line = close_line
        self.lang = lang
        self.body = body
        self.source = source  # "path#region", "path", or None
        self.untied = untied  # the reason given, or None


def parse_doc(lines, doc_name):
    """Returns the fenced blocks of `lines` (a doc's lines without newlines).
    Raises SnippetError for a snippet marker not followed by a fence or an
    unclosed fence."""
    blocks = []
    i = 0
    while i < len(lines):
        marker = SNIPPET_RE.match(lines[i])
        if marker and not (i + 1 < len(lines) and FENCE_RE.match(lines[i + 1])):
            raise SnippetError("%s:%d: snippet %s is not followed by a ``` code block"
                               % (doc_name, i + 1, marker.group(1)))
        fence = FENCE_RE.match(lines[i])
        if not fence:
            i += 1
            continue
        close = i + 1
        while close < len(lines) and lines[close].rstrip() != "```":
            close += 1
        if close == len(lines):
            raise SnippetError("%s:%d: code block is never closed" % (doc_name, i + 1))
        prev = lines[i - 1] if i > 0 else ""
        tied = SNIPPET_RE.match(prev)
        untied = UNTIED_RE.match(prev)
        blocks.append(Block(i, close, fence.group(1), "\n".join(lines[i + 1:close]),
                            tied.group(1) if tied else None,
                            untied.group(1) if untied else None))
        i = close + 1
    return blocks


def extract(text, source):
    """Returns the quoted text of `source` ("path#region" or "path") from the
    file's `text`. Raises SnippetError if the region is missing, unclosed or
    repeated."""
    path, _, region = source.partition("#")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    if not region:
        start, end = -1, len(lines)
    else:
        starts = [i for i, l in enumerate(lines) if "[START %s]" % region in l]
        ends = [i for i, l in enumerate(lines) if "[END %s]" % region in l]
        if not starts:
            raise SnippetError("%s has no region '%s' (a line with [START %s])"
                               % (path, region, region))
        if len(starts) > 1 or len(ends) > 1:
            raise SnippetError("%s: region '%s' is marked more than once" % (path, region))
        if not ends or ends[0] < starts[0]:
            raise SnippetError("%s: region '%s' has no [END %s] after its start"
                               % (path, region, region))
        start, end = starts[0], ends[0]
    body = [l for l in lines[start + 1:end] if not MARKER_RE.search(l)]
    return textwrap.dedent("\n".join(body)).strip("\n")


def read_source(root, source):
    path = source.partition("#")[0]
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise SnippetError("%s: no such file under %s (a test must list it in its data)"
                           % (path, root))
    with open(full, encoding="utf-8") as f:
        return extract(f.read(), source)


def check(root, doc, skip_prefixes=()):
    """Returns the problems of `doc` (a path relative to `root`): blocks
    that differ from their regions (with a diff), code blocks neither tied
    nor untied, missing files or regions. Empty when all is well. Blocks
    whose source path starts with one of `skip_prefixes` are not checked
    (a Bazel test cannot see the nested workspaces .bazelignore hides;
    tools/test checks those on the real tree)."""
    with open(os.path.join(root, doc), encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        blocks = parse_doc(lines, doc)
    except SnippetError as e:
        return [str(e)]
    problems = []
    for b in blocks:
        where = "%s:%d" % (doc, b.open_line + 1)
        if b.source is None:
            if b.lang in CODE_LANGS and b.untied is None:
                problems.append("%s: ```%s block is not tied to a source: put "
                                "<!-- snippet: PATH#REGION --> before it (or "
                                "<!-- untied: REASON -->)" % (where, b.lang))
            continue
        if b.source.startswith(tuple(skip_prefixes)):
            continue
        try:
            want = read_source(root, b.source)
        except SnippetError as e:
            problems.append("%s: snippet %s: %s" % (where, b.source, e))
            continue
        if b.body != want:
            diff = "\n".join(difflib.unified_diff(
                b.body.split("\n"), want.split("\n"), "doc", b.source, lineterm=""))
            problems.append("%s: snippet %s differs from its source; run "
                            "tools/docs_snippets/docs_snippets.py --update\n%s"
                            % (where, b.source, diff))
    return problems


def update(root, doc):
    """Rewrites the tied blocks of `doc` from their sources. Returns the
    number of blocks changed. Raises SnippetError as check() reports."""
    full = os.path.join(root, doc)
    with open(full, encoding="utf-8") as f:
        lines = f.read().split("\n")
    changed = 0
    # Last block first, so earlier line numbers stay valid.
    for b in reversed(parse_doc(lines, doc)):
        if b.source is None:
            continue
        want = read_source(root, b.source)
        if b.body != want:
            lines[b.open_line + 1:b.close_line] = want.split("\n")
            changed += 1
    if changed:
        with open(full, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    return changed


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 naming every stale block")
    mode.add_argument("--update", action="store_true", help="rewrite blocks from their sources")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__)))), help="workspace root (default: this repository)")
    parser.add_argument("docs", nargs="*", default=DEFAULT_DOCS)
    args = parser.parse_args(argv)
    failed = False
    for doc in args.docs:
        if args.check:
            problems = check(args.root, doc)
            for p in problems:
                print(p, file=sys.stderr)
            failed = failed or bool(problems)
        else:
            try:
                n = update(args.root, doc)
            except SnippetError as e:
                print(e, file=sys.stderr)
                failed = True
                continue
            print("%s: %d block(s) updated" % (doc, n))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
