"""docs/writing-a-filter.md: every code block equals the region of the file
it quotes, and every code block is tied to one (or says why not). On a
failure the message names the snippet and shows the diff; fix it with
tools/docs_snippets/docs_snippets.py --update."""
import os
import unittest

from tools.docs_snippets import docs_snippets


class WritingAFilterSnippetsTest(unittest.TestCase):
    def test_blocks_equal_their_sources(self):
        # Bazel runs the test in the runfiles root: the workspace's layout.
        root = os.getcwd()
        # plugins/out_of_tree is a nested workspace (.bazelignore): Bazel
        # cannot list its files as data, so tools/test checks those blocks
        # on the real tree (docs_snippets.py --check).
        problems = docs_snippets.check(root, "docs/writing-a-filter.md",
                                       skip_prefixes=("plugins/out_of_tree/",))
        if problems:
            self.fail("\n\n".join(problems))

    def test_the_doc_quotes_the_example(self):
        # A doc whose blocks were all untied would pass the check above.
        with open("docs/writing-a-filter.md", encoding="utf-8") as f:
            lines = f.read().split("\n")
        tied = [b for b in docs_snippets.parse_doc(lines, "doc") if b.source]
        self.assertGreaterEqual(len(tied), 15)


if __name__ == "__main__":
    unittest.main()
