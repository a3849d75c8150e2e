"""Unit tests of tools/docs_snippets: a stale block is reported naming its
snippet, --update rewrites it, and every malformed tie is an error."""
import os
import tempfile
import unittest

from tools.docs_snippets import docs_snippets

SOURCE = """\
namespace x {
// [START outer]
  int a = 1;
  // [START inner]
  int b = 2;
  // [END inner]
// [END outer]
}
"""


def doc_with(body):
    return "# Doc\n\n<!-- snippet: src/a.cc#inner -->\n```cpp\n%s\n```\n" % body


class DocsSnippetsTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.root, "src"))
        self.write("src/a.cc", SOURCE)

    def write(self, path, text):
        with open(os.path.join(self.root, path), "w") as f:
            f.write(text)

    def read(self, path):
        with open(os.path.join(self.root, path)) as f:
            return f.read()

    def test_extract_drops_inner_markers_and_dedents(self):
        self.assertEqual(docs_snippets.extract(SOURCE, "a.cc#outer"), "int a = 1;\nint b = 2;")
        self.assertEqual(docs_snippets.extract(SOURCE, "a.cc#inner"), "int b = 2;")
        self.assertEqual(docs_snippets.extract('{"k": 1}\n', "a.json"), '{"k": 1}')

    def test_equal_block_passes(self):
        self.write("doc.md", doc_with("int b = 2;"))
        self.assertEqual(docs_snippets.check(self.root, "doc.md"), [])

    def test_stale_block_names_the_snippet_and_update_fixes_it(self):
        self.write("doc.md", doc_with("int b = 3;"))
        problems = docs_snippets.check(self.root, "doc.md")
        self.assertEqual(len(problems), 1)
        self.assertTrue(problems[0].startswith(
            "doc.md:4: snippet src/a.cc#inner differs from its source"), problems[0])
        self.assertIn("-int b = 3;\n+int b = 2;", problems[0])
        self.assertEqual(docs_snippets.update(self.root, "doc.md"), 1)
        self.assertEqual(self.read("doc.md"), doc_with("int b = 2;"))
        self.assertEqual(docs_snippets.check(self.root, "doc.md"), [])

    def test_missing_region_and_file(self):
        self.write("doc.md", doc_with("x").replace("#inner", "#nope"))
        self.assertIn("src/a.cc has no region 'nope'", docs_snippets.check(self.root, "doc.md")[0])
        self.write("doc.md", doc_with("x").replace("src/a.cc", "src/b.cc"))
        self.assertIn("src/b.cc: no such file", docs_snippets.check(self.root, "doc.md")[0])

    def test_unclosed_region(self):
        self.write("src/a.cc", "// [START r]\nint a;\n")
        self.write("doc.md", doc_with("int a;").replace("#inner", "#r"))
        self.assertIn("region 'r' has no [END r]", docs_snippets.check(self.root, "doc.md")[0])

    def test_code_block_must_be_tied_or_untied(self):
        self.write("doc.md", "```cpp\nint a;\n```\n\n```sh\nbazel test //...\n```\n")
        problems = docs_snippets.check(self.root, "doc.md")
        self.assertEqual(len(problems), 1)
        self.assertIn("doc.md:1: ```cpp block is not tied", problems[0])
        self.write("doc.md", "<!-- untied: a sketch -->\n```cpp\nint a;\n```\n")
        self.assertEqual(docs_snippets.check(self.root, "doc.md"), [])

    def test_marker_without_block(self):
        self.write("doc.md", "<!-- snippet: src/a.cc#inner -->\ntext\n")
        self.assertIn("is not followed by a ``` code block",
                      docs_snippets.check(self.root, "doc.md")[0])


if __name__ == "__main__":
    unittest.main()
