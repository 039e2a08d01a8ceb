"""Correctness under concurrency (issue 5, item 4): the random workload of
workload.py, short: 20 clients on one mailbox for 20 seconds (a 5-minute
run is "make soak"). Every session must end agreeing with the server and
with each other; see workload.py for what is checked."""

import os
import unittest

from server import SLOW
from workload import run_workload


class TestConcurrentWorkload(unittest.TestCase):

    def test_twenty_clients_agree_on_one_mailbox(self):
        seconds = float(os.environ.get("WORKLOAD_SECONDS", "20"))
        errors = run_workload(clients=20, seconds=seconds * (1 if SLOW == 1 else 0.5))
        self.assertEqual(errors, [], "\n".join(errors[:20]))


if __name__ == "__main__":
    unittest.main()
