import os
import re
import sqlite3
import ssl
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import sample  # noqa: E402


class MeanTests(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(sample.mean([1, 2, 3, 4]), 2.5)

    def test_empty(self):
        with self.assertRaises(ValueError):
            sample.mean([])


class InterpreterTests(unittest.TestCase):
    def test_runs_on_a_relocpy_interpreter(self):
        root = os.environ["SAMPLE_EXPECT_ROOT"]
        self.assertTrue(os.path.realpath(sys.base_prefix).startswith(os.path.realpath(root)),
                        sys.base_prefix)

    def test_version_matches_the_environment_name(self):
        name = os.environ.get("TOX_ENV_NAME") or os.environ.get("NOX_CURRENT_SESSION", "")
        match = re.search(r"(?:py|-)(\d)\.?(\d+)$", name)
        self.assertIsNotNone(match, name)
        self.assertEqual(sys.version_info[:2], (int(match.group(1)), int(match.group(2))))

    def test_stdlib_extensions(self):
        self.assertTrue(ssl.OPENSSL_VERSION)
        self.assertEqual(sqlite3.connect(":memory:").execute("select 1").fetchone(), (1,))


if __name__ == "__main__":
    unittest.main()
