"""The README's walk-throughs run as a reader would type them: the curl
block of "Walk-through with curl", line by line, against a server holding
make run's demo mail (etc/sample-mymailbox.mail)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from server import SLOW, ServerTestCase

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def readme_block(heading, lang="sh"):
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    start = text.index(heading)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    return m.group(1)


def commands(block):
    """The shell commands of block: comments dropped, continuation lines
    (a line ending in '|' or '\\') joined."""
    out, cur = [], ""
    for line in block.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cur += line + "\n"
        if not line.rstrip().endswith(("|", "\\")):
            out.append(cur)
            cur = ""
    return out


class TestCurlWalkThrough(ServerTestCase):
    MAILBOXES = {"alice": open(os.path.join(TOP, "etc", "sample-mymailbox.mail")).read()}

    def test_every_line_works(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        cmds = commands(readme_block("## Walk-through with curl"))
        self.assertGreaterEqual(len(cmds), 6, cmds)
        work = self.enterContext(tempfile.TemporaryDirectory())
        outputs = []
        for cmd in cmds:
            cmd = cmd.replace("127.0.0.1:1430", f"127.0.0.1:{self.port}")
            r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=30 * SLOW)
            out = r.stdout.decode(errors="replace")
            self.assertEqual(r.returncode, 0, f"{cmd}\n{out}")
            outputs.append((cmd, out))
        # Every SEARCH finds something, as the comments promise.
        for cmd, out in outputs:
            if "SEARCH" in cmd:
                self.assertRegex(out, r"\* SEARCH \d", cmd)
        listing = outputs[0][1]
        self.assertIn("INBOX", listing)
        self.assertIn("Welcome to the lab mail server", "".join(o for _, o in outputs))


if __name__ == "__main__":
    unittest.main()
