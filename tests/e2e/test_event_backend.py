"""event.backend (issue 15): with "poll" or "epoll" one imapserver holds
more connections than select() can watch (descriptors past FD_SETSIZE,
1024), each served as usual, also an IDLE session told of a change while
the crowd is connected; an unknown backend is a
configuration error with file:line. (select() refusing the connections
past FD_SETSIZE with a BYE is test_process.TestFdSetsize.)"""

import resource
import socket
import subprocess
import unittest

from server import HOST, SLOW, SOCK_TIMEOUT, ImapServer, ServerTestCase

CROWD = 1300      # past FD_SETSIZE with the server's own descriptors


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need


def set_event(server, backend, max_connections):
    with open(server.conf) as f:
        text = f.read()
    text = text.replace("limits: {", f"limits: {{ max_connections = {max_connections}; "
                        "max_connections_per_address = 0;", 1)
    text += f'event: {{ backend = "{backend}"; }};\n'
    with open(server.conf, "w") as f:
        f.write(text)


class _Crowd(ServerTestCase):
    BACKEND = "epoll"

    def setUp(self):
        if not raise_fd_limit(CROWD + 200):
            self.skipTest("the open files limit is too low for the crowd")
        super().setUp()

    def start_with(self, backend, max_connections):
        self.server.stop()
        set_event(self.server, backend, max_connections)
        self.server.start()
        self.port = self.server.port

    def open_crowd(self, n):
        socks = []
        for _ in range(n):
            s = socket.create_connection((HOST, self.port), timeout=SOCK_TIMEOUT * SLOW)
            socks.append(s)
            self.addCleanup(s.close)
        return socks


class TestEpollCrowd(_Crowd):

    def test_connections_past_fd_setsize_are_served(self):
        self.start_with(self.BACKEND, CROWD + 50)
        idle = self.raw_login(mailbox="INBOX")
        idle.send("i1 IDLE\r\n")
        self.assertTrue(idle.readline().startswith(b"+"))
        crowd = self.open_crowd(CROWD)
        # every one has its greeting: none was refused for its fd
        for s in crowd:
            self.assertTrue(s.recv(256).startswith(b"* OK"))
        # the last ones (fds past 1024 in the server) log in and select
        for s in crowd[-5:]:
            f = s.makefile("rb")
            s.sendall(b"a LOGIN alice alice123\r\nb SELECT INBOX\r\n")
            lines = []
            while not lines or not lines[-1].startswith(b"b "):
                lines.append(f.readline())
            self.assertTrue(lines[-1].startswith(b"b OK"), lines)
        # and a change still reaches the session in IDLE at once
        actor = self.raw_login(mailbox="INBOX")
        resp, tagged = actor.command("STORE 1 +FLAGS (\\Flagged)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        line = idle.readline(timeout=5 * SLOW)
        self.assertIn(b"FETCH", line)
        self.assertIn(b"\\Flagged", line)


class TestPollCrowd(TestEpollCrowd):
    BACKEND = "poll"


class TestUnknownBackend(unittest.TestCase):

    def test_check_names_the_line(self):
        server = ImapServer({"alice": ""})
        self.addCleanup(server.cleanup)
        with open(server.conf, "a") as f:
            f.write('event: { backend = "kqueue"; };\n')
        server.give_to_server()
        r = subprocess.run([server.binary, "-t", "-c", server.conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"imapserver\.conf:\d+: event\.backend: unknown event "
                         r"backend 'kqueue' \(known here: select, poll, epoll\)")
