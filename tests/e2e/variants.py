"""The end-to-end suites run again on another storage backend, by config
alone (test_maildir.py, test_pgsql.py): a mixin that starts the server
of that backend, and the variants of the suites built with it. The tests
that look at the flat file itself are skipped in a variant."""

import inspect
import unittest

from server import seed_text

# Tests that look at the flat file itself (its lab format, or appending
# to it from outside).
FLAT_ONLY = {
    "test_mailbox_file_stays_lab_format",
    "test_append_with_flags_and_date",
}


def reads_the_flat_file(fn):
    """A test that reads the lab's format back from the file (which one
    it is depends on the suite: found by its source)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return "read_mailbox" in source and 'endswith(b"\\n.\\n")' in source


class BackendMixin:
    """Makes a ServerTestCase run its server of SERVER (an ImapServer
    subclass) instead; skipped with SKIP_REASON when that is set."""

    SERVER = None
    SKIP_REASON = None

    def setUp(self):
        if self.SKIP_REASON:
            self.skipTest(self.SKIP_REASON)
        boxes = {u: (seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self.server = self.SERVER(boxes, limits=self.LIMITS)
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.server.start()
        self.port = self.server.port


def variant(module, prefix, mixin, cls, what):
    """cls run with mixin, named prefix + its name in module, the
    flat-only tests skipped."""
    new = type(prefix + cls.__name__, (mixin, cls),
               {"__doc__": f"{cls.__name__} on {what}", "__module__": module})
    for name, fn in inspect.getmembers(new, inspect.isfunction):
        if name.startswith("test_") and (name in FLAT_ONLY or reads_the_flat_file(fn)):
            setattr(new, name, unittest.skip("looks at the flat file")(fn))
    return new


def install(namespace, prefix, mixin, suites, what):
    """Puts the variant of each suite into namespace (a module's
    globals(), where unittest finds it)."""
    for cls in suites:
        namespace[prefix + cls.__name__] = variant(namespace["__name__"], prefix, mixin, cls,
                                                   what)
