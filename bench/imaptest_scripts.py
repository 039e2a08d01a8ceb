#!/usr/bin/env python3
"""Runs Dovecot imaptest's scripted tests (the files of imaptest's
src/tests: a header, then commands with the untagged and tagged answers
they expect) against an IMAP server, without imaptest itself, which is not
packaged in Debian 12. The format is imaptest's (docs/scripted_test.md):
methods 1-3 (also pipelined tags), several connections, $variables,
"$" wildcards, {{{...}}} literals, "!" lines that must not match, the
$!unordered / $!noextra / $!ignore / $!ban list directives and their
defaults for FETCH, FLAGS, LIST, LSUB and STATUS.

    python3 bench/imaptest_scripts.py --port P --user U --password W DIR [test ...]

Prints one line per test (ok / FAIL / skip and why) and a summary; exits 1
if any test failed. Not supported (reported as skip): literals inside
commands, !ifenv blocks (skipped as if the variable were unset)."""

import argparse
import os
import re
import socket
import sys


class Skip(Exception):
    pass


class Fail(Exception):
    pass


# ------------------------------------------------------------ tokenizing

def tokenize(data, expected=False):
    """IMAP text (bytes) -> nested lists of ('A', atom) / ('S', bytes) /
    list. In expected text, {{{ ... }}} is a string of CRLF lines."""
    pos = 0
    n = len(data)

    def parse_list(end):
        nonlocal pos
        out = []
        while pos < n:
            c = data[pos:pos + 1]
            if c == b" ":
                pos += 1
                continue
            if c == b")" and end:
                pos += 1
                return out
            if c == b"(":
                pos += 1
                out.append(parse_list(True))
                continue
            if c == b'"':
                pos += 1
                s = bytearray()
                while pos < n and data[pos:pos + 1] != b'"':
                    if data[pos:pos + 1] == b"\\":
                        pos += 1
                    s += data[pos:pos + 1]
                    pos += 1
                pos += 1
                out.append(("S", bytes(s)))
                continue
            if expected and (data.startswith(b"{{{", pos) or data.startswith(b"~{{{", pos)):
                start = data.index(b"{{{", pos) + 3
                endp = data.index(b"}}}", start)
                body = data[start:endp]
                if body.startswith(b"\n"):
                    body = body[1:]
                if body.endswith(b"\n"):
                    body = body[:-1]
                out.append(("S", body.replace(b"\n", b"\r\n")))
                pos = endp + 3
                continue
            if not expected and c in (b"{", b"~") and re.match(rb"~?\{\d+\}\r\n", data[pos:]):
                m = re.match(rb"~?\{(\d+)\}\r\n", data[pos:])
                ln = int(m.group(1))
                start = pos + m.end()
                out.append(("S", data[start:start + ln]))
                pos = start + ln
                continue
            # atom, with [...] sections kept whole
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos:pos + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth <= 0 and ch in (b" ", b"(", b")"):
                    break
                pos += 1
            if pos == start:
                pos += 1
                continue
            out.append(("A", data[start:pos].decode("utf-8", "replace")))
        return out

    return parse_list(False)


def is_atom(t, word=None):
    return isinstance(t, tuple) and t[0] == "A" and (word is None or t[1].lower() == word.lower())


def norm(t):
    if isinstance(t, list):
        return [norm(x) for x in t]
    if t[0] == "A":
        if t[1].upper() == "NIL":
            return ("N",)
        return ("V", t[1].encode().lower())
    return ("V", t[1].lower())


# ------------------------------------------------------------ matching

def seqset_of(text):
    """The members of a sequence set "1:3,5", or None."""
    if not re.fullmatch(r"\d+(:\d+)?(,\d+(:\d+)?)*", text):
        return None
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        a, b = int(a), int(b or a)
        if abs(b - a) > 100000:
            return None
        out.update(range(min(a, b), max(a, b) + 1))
    return out


class Matcher:
    def __init__(self, variables):
        self.vars = variables

    def restore(self, saved):
        # in place: the script's commands read the same dict
        self.vars.clear()
        self.vars.update(saved)

    def expand(self, text):
        """An expected atom with $variables inside, or None if one is unbound."""
        out = []
        pos = 0
        for m in re.finditer(r"\$\$|\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z0-9_]+)", text):
            out.append(text[pos:m.start()])
            pos = m.end()
            if m.group(0) == "$$":
                out.append("$")
                continue
            name = m.group(1) or m.group(2)
            if name not in self.vars:
                return None
            v = self.vars[name]
            out.append(v if isinstance(v, str) else
                       v[1] if v[0] == "A" else v[1].decode("latin-1"))
        out.append(text[pos:])
        return "".join(out)

    def match(self, exp, act, ctx=None):
        if isinstance(exp, tuple) and exp[0] == "A" and "$" in exp[1] and \
                not exp[1].startswith("$!") and \
                not re.fullmatch(r"\$\{?[a-zA-Z0-9_]*\}?", exp[1]):
            text = self.expand(exp[1])
            if text is None or isinstance(act, list):
                return False
            got = act[1] if act[0] == "A" else act[1].decode("latin-1")
            if text.lower() == got.lower():
                return True
            return seqset_of(text) is not None and seqset_of(text) == seqset_of(got)
        if isinstance(exp, tuple) and exp[0] == "A" and exp[1].startswith("$") and \
                not exp[1].startswith("$!"):
            name = exp[1][1:].strip("{}")
            if name == "":
                return True
            if name in self.vars:
                return norm(self.vars[name]) == norm(act) if not isinstance(self.vars[name], str) \
                    else norm(("A", self.vars[name])) == norm(act)
            self.vars[name] = act
            return True
        if isinstance(exp, list):
            if not isinstance(act, list):
                return False
            return self.match_list(exp, act, ctx)
        if isinstance(act, list):
            return False
        return norm(exp) == norm(act)

    def match_list(self, exp, act, ctx):
        directives = []
        while exp and is_atom(exp[0]) and exp[0][1].startswith("$!"):
            directives.append(exp[0][1][2:].lower())
            exp = exp[1:]
        unordered, noextra, ignore, ban = 0, False, [], []
        if not directives:
            if ctx == "fetch":
                unordered = 2
            elif ctx == "flags":
                unordered, noextra, ignore = 1, True, ["\\recent"]
            elif ctx in ("list", "lsub"):
                unordered = 1
            elif ctx == "status":
                unordered = 2
        for d in directives:
            if d == "unordered":
                unordered = 1
            elif d.startswith("unordered="):
                unordered = int(d.split("=")[1])
            elif d == "noextra":
                noextra = True
            elif d == "extra":
                noextra = False
            elif d.startswith("ignore="):
                ignore.append(d.split("=", 1)[1])
            elif d.startswith("ban="):
                ban.append(d.split("=", 1)[1])
        if not unordered:
            if len(exp) != len(act):
                return False
            for i, (e, a) in enumerate(zip(exp, act)):
                sub = self.child_ctx(exp, i, ctx)
                if not self.match(e, a, sub):
                    return False
            return True
        k = unordered
        eg = [exp[i:i + k] for i in range(0, len(exp), k)]
        ag = [act[i:i + k] for i in range(0, len(act), k)]
        used = set()
        for g in eg:
            found = False
            for j, a in enumerate(ag):
                if j in used or len(a) != len(g):
                    continue
                saved = dict(self.vars)
                ok = True
                for i, (e, x) in enumerate(zip(g, a)):
                    sub = "flags" if (ctx == "fetch" and i == 1 and is_atom(g[0], "FLAGS")) else None
                    if not self.match(e, x, sub):
                        ok = False
                        break
                if ok:
                    used.add(j)
                    found = True
                    break
                self.restore(saved)
            if not found:
                return False
        for j, a in enumerate(ag):
            if j in used:
                continue
            text = a[0][1].lower() if a and is_atom(a[0]) else None
            if text in [b.lower() for b in ban]:
                return False
            if noextra and text not in [x.lower() for x in ignore]:
                return False
        return True

    @staticmethod
    def child_ctx(lst, i, ctx):
        if i > 0 and is_atom(lst[i - 1], "FLAGS"):
            return "flags"
        return None

    def match_untagged(self, exp, act):
        """exp, act: token lists of one untagged response (after '*')."""
        saved = dict(self.vars)
        if exp and is_atom(exp[0]) and exp[0][1].lower() in ("ok", "no", "bad", "bye"):
            # a status response: its code, not its human-readable text
            if len(act) < len(exp) or not is_atom(act[0], exp[0][1]):
                return False
            for e, a in zip(exp[1:], act[1:]):
                if is_atom(e) and e[1].startswith("[") and is_atom(a) and a[1].startswith("["):
                    et = tokenize(e[1][1:-1].encode(), expected=True)
                    at = tokenize(a[1][1:-1].encode())
                    if len(et) != len(at) or not all(self.match(x, y) for x, y in zip(et, at)):
                        self.restore(saved)
                        return False
                elif not self.match(e, a):
                    self.restore(saved)
                    return False
            return True
        if len(exp) != len(act):
            self.restore(saved)
            return False
        ctx = None
        for i, (e, a) in enumerate(zip(exp, act)):
            if isinstance(e, list):
                words = [x[1].lower() for x in exp[:i] if is_atom(x)]
                if "fetch" in words:
                    ctx = "fetch"
                elif words[:1] in (["list"], ["lsub"]) and i == 1:
                    ctx = words[0]
                elif words[:1] == ["status"]:
                    ctx = "status"
                else:
                    ctx = None
            if not self.match(e, a, ctx if isinstance(e, list) else None):
                self.restore(saved)
                return False
        return True


# ------------------------------------------------------------ connections

class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=20)
        self.buf = b""
        self.tagn = 0
        self.read_response()

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise Fail("connection closed by the server")
        self.buf += chunk

    def read_response(self):
        """One response line with its literals."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self.fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                return out
            ln = int(m.group(1))
            while len(self.buf) < ln:
                self.fill()
            out += b"\r\n" + self.buf[:ln]
            self.buf = self.buf[ln:]

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def command(self, text, tag=None):
        if tag is None:
            self.tagn += 1
            tag = f"x{self.tagn}"
        self.send(f"{tag} {text}")
        return self.until_tagged({tag})

    def until_tagged(self, tags):
        untagged, tagged = [], {}
        while tags - set(tagged):
            r = self.read_response()
            if r.startswith(b"* "):
                untagged.append(r[2:])
            elif r.startswith(b"+"):
                continue
            else:
                t, _, rest = r.partition(b" ")
                tagged[t.decode()] = rest
        return untagged, tagged


def mbox_messages(path):
    with open(path, "rb") as f:
        data = f.read()
    msgs, cur = [], None
    for line in data.split(b"\n"):
        if line.startswith(b"From "):
            if cur is not None:
                msgs.append(cur)
            cur = []
            continue
        if cur is not None:
            cur.append(line[1:] if line.startswith(b">From ") else line)
    if cur is not None:
        msgs.append(cur)
    out = []
    for lines in msgs:
        while lines and lines[-1] == b"":
            lines.pop()
        out.append(b"\r\n".join(lines) + b"\r\n")
    return out


# ------------------------------------------------------------ scripts

def run_test(path, args, caps):
    with open(path, "rb") as f:
        text = f.read()
    head, _, body = text.partition(b"\n\n")
    header = {}
    for line in head.split(b"\n"):
        if b":" in line and not line.startswith(b"#"):
            k, v = line.split(b":", 1)
            header[k.strip().decode().lower()] = v.strip().decode()
    else:
        if not header:
            body = text
    for cap in header.get("capabilities", "").split():
        if cap.upper() not in caps:
            raise Skip(f"needs {cap}")
    nconn = int(header.get("connections", "1"))
    state = header.get("state", "selected").lower()
    mbox = path + ".mbox" if os.path.exists(path + ".mbox") else \
        os.path.join(os.path.dirname(path), "default.mbox")
    # preprocessing: drop !ifenv blocks (variables unset), keep !ifnenv
    lines, skip_stack = [], []
    for raw in body.split(b"\n"):
        s = raw.strip()
        if s.startswith(b"!ifenv"):
            skip_stack.append(not os.environ.get(s.split()[1].decode()))
            continue
        if s.startswith(b"!ifnenv"):
            skip_stack.append(bool(os.environ.get(s.split()[1].decode())))
            continue
        if s == b"!else":
            skip_stack[-1] = not skip_stack[-1]
            continue
        if s == b"!endif":
            skip_stack.pop()
            continue
        if any(skip_stack):
            continue
        lines.append(raw)
    # join {{{ ... }}} blocks into their line
    joined, i = [], 0
    while i < len(lines):
        ln = lines[i]
        while b"{{{" in ln and b"}}}" not in ln[ln.rindex(b"{{{"):]:
            i += 1
            ln += b"\n" + lines[i]
        joined.append(ln)
        i += 1
    variables = {"mailbox": args.box, "user": args.user, "username": args.user,
                 "password": args.password, "domain": ""}
    conns = [Conn(args.host, args.port) for _ in range(nconn)]
    for c in conns:
        c.mbox = mbox_messages(mbox)
        c.mbox_pos = 0
    try:
        if state != "nonauth":
            for c in conns:
                _, t = c.command(f'LOGIN "{args.user}" "{args.password}"')
                if not list(t.values())[0].upper().startswith(b"OK"):
                    raise Fail("login failed")
            # every test mailbox, children first
            u, _ = conns[0].command(f'LIST "" "{args.box}*"')
            names = []
            for line in u:
                t = tokenize(line)
                if len(t) >= 4:
                    names.append(t[3][1] if isinstance(t[3][1], str) else t[3][1].decode())
            for name in sorted(names, key=lambda n: -n.count("/")):
                conns[0].command(f'DELETE "{name}"')
            for suffix in ("", "2", "3"):
                conns[0].command(f"UNSUBSCRIBE {args.box}{suffix}")
        if state in ("created", "appended", "selected"):
            conns[0].command(f"CREATE {args.box}")
        if state in ("appended", "selected"):
            msgs = mbox_messages(mbox)
            count = int(header.get("messages", len(msgs)))
            for k in range(count):
                m = msgs[k % len(msgs)]
                _, t = conns[0].command(f"APPEND {args.box} {{{len(m)}+}}\r\n" + m.decode("latin-1"))
        if state == "selected":
            for c in conns:
                c.command(f"SELECT {args.box}")
        run_script(joined, conns, nconn, variables)
    finally:
        for c in conns:
            try:
                c.s.close()
            except OSError:
                pass


def subst(text, variables):
    text = text.replace("$$", "\x00")
    def rep(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise Skip(f"unbound variable ${name} in a command")
        v = variables[name]
        if isinstance(v, tuple):
            return v[1] if v[0] == "A" else v[1].decode("latin-1")
        return v
    return re.sub(r"\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z_][a-zA-Z0-9_]*)", rep,
                  text).replace("\x00", "$")


def run_script(lines, conns, nconn, variables):
    matcher = Matcher(variables)
    i = 0
    status_words = ("ok", "no", "bad", '""')

    def split_conn(line):
        if nconn > 1:
            c, _, rest = line.partition(" ")
            if c.isdigit():
                return int(c) - 1, rest
        return 0, line

    while i < len(lines):
        line = lines[i].decode("utf-8", "replace").rstrip("\r")
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("* ") or line.startswith("! "):
            raise Skip(f"unexpected untagged line: {line[:40]}")
        cn, rest = split_conn(line)
        first, _, cmdtext = rest.partition(" ")
        pending = []      # (conn, tag, command, expected status, prefix)
        if first.lower() in status_words:
            pending.append((cn, None, cmdtext, first.strip('"').lower(), ""))
        else:
            pending.append((cn, None, rest, None, ""))
            # more pipelined commands (method 3) before the answers
            while i < len(lines):
                nxt = lines[i].decode("utf-8", "replace")
                if not nxt.strip() or nxt.startswith(("* ", "! ", "#")):
                    break
                c2, r2 = split_conn(nxt)
                w = r2.split(" ")
                if w[0].lower() in status_words or (len(w) > 1 and w[1].lower() in status_words):
                    break
                pending.append((c2, None, r2, None, ""))
                i += 1
        expect, ban = [], []
        while i < len(lines):
            nxt = lines[i].decode("utf-8", "replace")
            if nxt.startswith("* "):
                expect.append(nxt[2:])
            elif nxt.startswith("! "):
                ban.append(nxt[2:])
            elif nxt.startswith("#"):
                pass
            else:
                break
            i += 1
        # status lines for methods 2 and 3
        while any(p[3] is None for p in pending) and i < len(lines):
            nxt = lines[i].decode("utf-8", "replace")
            if not nxt.strip():
                i += 1
                continue
            c2, r2 = split_conn(nxt)
            w = r2.split(" ", 2)
            for k, p in enumerate(pending):
                if p[3] is not None:
                    continue
                if len(pending) > 1 or (w[0].lower() not in status_words and len(w) > 1):
                    tag = w[0]
                    if p[2].split(" ", 1)[0] == tag and w[1].lower() in status_words:
                        pending[k] = (p[0], tag, p[2].split(" ", 1)[1], w[1].strip('"').lower(),
                                      w[2] if len(w) > 2 else "")
                        break
                elif w[0].lower() in status_words:
                    pending[k] = (p[0], None, p[2], w[0].strip('"').lower(),
                                  " ".join(w[1:]))
                    break
            else:
                raise Skip(f"cannot pair status line {nxt[:40]!r}")
            i += 1
            # more untagged after a status line belong to the same group
            while i < len(lines) and lines[i].startswith((b"* ", b"! ")):
                nxt = lines[i].decode("utf-8", "replace")
                (expect if nxt.startswith("* ") else ban).append(nxt[2:])
                i += 1
        if any(p[3] is None for p in pending):
            raise Skip("a command without an expected status")
        # send
        by_conn = {}
        for cn2, tag, cmd, st, prefix in pending:
            c = conns[cn2]
            if "{{{" in cmd:
                raise Skip("literal in a command")
            c.tagn += 1
            t = tag or f"x{c.tagn}"
            # $tag is the tag of the command (for ESEARCH's TAG)
            variables["tag"] = ("S", t.encode())
            text = subst(cmd, variables)
            if text.strip().lower() == "append":
                # imaptest's bare "append": the next message of the mbox
                m = c.mbox[c.mbox_pos % len(c.mbox)]
                c.mbox_pos += 1
                text = f"APPEND {variables['mailbox']} {{{len(m)}+}}\r\n" + m.decode("latin-1")
            c.send(f"{t} {text}")
            by_conn.setdefault(cn2, []).append((t, cmd, st, prefix))
        untagged = []
        for cn2, items in by_conn.items():
            u, tagged = conns[cn2].until_tagged({t for t, _, _, _ in items})
            untagged.extend(u)
            for t, cmd, st, prefix in items:
                got = tagged[t]
                word = got.split(b" ", 1)[0].decode().lower()
                if st and word != st:
                    raise Fail(f"{cmd!r}: expected {st.upper()}, got {got.decode(errors='replace')!r}")
                if prefix and not got.decode(errors="replace").lower().split(" ", 1)[-1].startswith(
                        subst(prefix, variables).lower()):
                    raise Fail(f"{cmd!r}: expected prefix {prefix!r}, got {got!r}")
        # a connection may get untagged updates caused by another one
        # later: give the others a NOOP when the script expects them.
        act = [tokenize(u) for u in untagged]
        for e in expect:
            et = tokenize(e.encode(), expected=True)
            if not any(matcher.match_untagged(et, a) for a in act):
                # the update may come at the other connections' next command
                found = False
                for cn2, c in enumerate(conns):
                    if cn2 in by_conn:
                        continue
                raise Fail(f"{pending[0][2]!r}: no untagged reply matches {e!r}; got:\n    " +
                           "\n    ".join(u.decode(errors="replace")[:200] for u in untagged))
        for b in ban:
            bt = tokenize(b.encode(), expected=True)
            for a in act:
                saved = dict(matcher.vars)
                if matcher.match_untagged(bt, a):
                    raise Fail(f"{pending[0][2]!r}: forbidden reply {b!r} was sent")
                matcher.restore(saved)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--box", default="imaptest")
    ap.add_argument("dir")
    ap.add_argument("tests", nargs="*")
    args = ap.parse_args()
    c = Conn(args.host, args.port)
    u, _ = c.command(f'LOGIN "{args.user}" "{args.password}"')
    u2, _ = c.command("CAPABILITY")
    caps = set()
    for line in u + u2:
        if line.upper().startswith(b"CAPABILITY"):
            caps |= set(line.decode().upper().split()[1:])
    c.s.close()
    names = args.tests or sorted(n for n in os.listdir(args.dir)
                                 if not n.endswith(".mbox") and not n.startswith(("Makefile", ".")))
    passed = failed = skipped = 0
    for name in names:
        try:
            run_test(os.path.join(args.dir, name), args, caps)
            print(f"ok    {name}")
            passed += 1
        except Skip as e:
            print(f"skip  {name}: {e}")
            skipped += 1
        except (Fail, OSError, ValueError, IndexError, KeyError) as e:
            print(f"FAIL  {name}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
