"""The manual pages (etc/imapserver.8, etc/smtpmail.8, etc/mailclient.1,
etc/imapserver.conf.5) against the code, so that the documentation cannot
silently fall behind it:

- every page renders with groff (and mandoc -Tlint when installed) without
  a single warning;
- every configuration section and key named in core/hub/config.h's struct
  comments and in core/hub/config.c's table of keys is in imapserver.conf(5),
  with its range (min..max) and its default;
- every option, operand and synopsis line printed by `imapserver -h`,
  `smtpmail -h` and `mailclient --help` is in the matching page;
- the IMAP capabilities of core/imap/cmd_any.c are in imapserver(8), the EHLO
  keywords of core/smtp/smtp.c in smtpmail(8), and mailclient's exact messages
  in mailclient(1);
- `make install` installs the four pages.

The pages are checked as a reader sees them: rendered to plain text by
groff, blanks collapsed. Skipped when groff is not installed."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ETC = os.path.join(ROOT, "etc")
PAGES = ("imapserver.8", "smtpmail.8", "mailclient.1", "imapserver.conf.5")
SECTION_NAMES = ("imap", "smtp", "tls", "storage", "auth", "limits", "quota", "log",
                 "server", "event")


def _binary(env, name):
    """The program `name` of the build under test: $env (tests/run.sh sets
    IMAPSERVER, SMTPMAIL, MAILCLIENT), else beside $IMAPSERVER, else
    build/."""
    path = os.environ.get(env, "")
    if not path:
        server = os.environ.get("IMAPSERVER", "")
        base = os.path.dirname(server) if server else os.path.join(ROOT, "build")
        path = os.path.join(base, name)
    return os.path.abspath(path)


def _read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


# Characters groff may print for what the source spells with ASCII: hyphen,
# minus and dashes, typographic apostrophes, a no-break space.
_NORMALISE = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2212": "-", "\u2013": "-",
                            "\u2019": "'", "\u2018": "'", "\u00a0": " "})


def render(page):
    """The page as plain text (no bold, underline or overstrike), with
    every run of blanks collapsed to one space."""
    out = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", "-rLL=78n",
                          os.path.join(ETC, page)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True)
    text = out.stdout.decode("utf-8", "replace").translate(_NORMALISE)
    # A word broken at a line end by hyphenation (the pages switch it off,
    # but a reader's groff may differ).
    text = re.sub(r"(\w)-\n\s*(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text)


def unescape(troff):
    """The text of troff source lines, without font changes and escapes."""
    s = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", troff)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\~", " ").replace("\\e", "\\")
    # \(dq is a quote the reader sees; a bare " only groups macro arguments.
    s = s.replace("\\(dq", "\x01").replace("\\(aq", "'").replace("\\(lq", "\u201c")
    s = s.replace("\\(rq", "\u201d")
    s = re.sub(r"^\.[A-Z]{1,2} ?", "", s, flags=re.M)
    return s.replace('"', "").replace("\x01", '"').replace("\n", " ")


def contains_word(text, needle):
    """True if needle is in text, not as part of a longer name or option."""
    return re.search(r"(?<![\w.-])" + re.escape(needle) + r"(?![\w-])", text) is not None


def _strings_of_macro(source, name):
    """The string literals of `#define name "..." \\ "..."`, joined."""
    m = re.search(r"^#define\s+" + name + r"\b((?:.*\\\n)*.*)$", source, re.M)
    if m is None:
        return None
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))


class ManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("groff") is None:
            raise unittest.SkipTest("groff is not installed")
        cls.text = {page: render(page) for page in PAGES}
        cls.source = {}
        for page in PAGES:
            with open(os.path.join(ETC, page), encoding="utf-8") as f:
                cls.source[page] = f.read()

    def assertDocumented(self, page, needles, what):
        missing = [n for n in needles if not contains_word(self.text[page], n)]
        self.assertEqual(missing, [], f"{what} missing from etc/{page}")

    # ------------------------------------------------------------ rendering

    def test_pages_render_without_groff_warnings(self):
        for page in PAGES:
            with self.subTest(page=page):
                r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                                    os.path.join(ETC, page)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                self.assertEqual(r.returncode, 0)
                self.assertEqual(r.stderr.decode("utf-8", "replace"), "",
                                 f"groff warnings for etc/{page}")

    def test_pages_pass_mandoc_lint(self):
        if shutil.which("mandoc") is None:
            self.skipTest("mandoc is not installed")
        for page in PAGES:
            with self.subTest(page=page):
                r = subprocess.run(["mandoc", "-Tlint", "-Wstyle", os.path.join(ETC, page)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
                self.assertEqual(r.stdout.decode("utf-8", "replace"), "",
                                 f"mandoc -Tlint for etc/{page}")
                self.assertEqual(r.returncode, 0)

    def test_pages_have_the_usual_sections(self):
        wanted = {
            "imapserver.8": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS",
                             "CAPABILITIES", "PRIVILEGES", "LOGGING", "FILES", "EXIT STATUS",
                             "SEE ALSO"),
            "smtpmail.8": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "FILES",
                           "EXIT STATUS", "SEE ALSO"),
            "mailclient.1": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT",
                             "EXIT STATUS", "SEE ALSO"),
            "imapserver.conf.5": ("NAME", "SYNOPSIS", "DESCRIPTION", "SECTIONS AND KEYS",
                                  "EXAMPLE", "SEE ALSO"),
        }
        for page, sections in wanted.items():
            found = re.findall(r'^\.SH\s+"?([^"\n]+)"?\s*$', self.source[page], re.M)
            with self.subTest(page=page):
                self.assertEqual([s for s in sections if s not in found], [])

    # ------------------------------------------------------------ configuration

    def config_keys(self):
        """(section, key, type, min, max) from core/hub/config.c's table."""
        table = re.findall(r'KEY\("(\w+)",\s*"(\w+)",\s*(KEY_\w+),\s*[\w.]+,\s*(-?\d+),\s*(-?\d+)\)',
                           _read("core/hub/config.c"))
        self.assertGreaterEqual(len(table), 20, "cannot read the key table of core/hub/config.c")
        return table

    def test_config_h_keys_are_in_imapserver_conf_5(self):
        header = _read("core/hub/config.h")
        comments = " ".join(re.findall(r"/\*(.*?)\*/", header, re.S))
        keys = sorted(set(re.findall(r"\b((?:%s)\.[a-z_]+)\b" % "|".join(SECTION_NAMES),
                                     comments)))
        self.assertGreaterEqual(len(keys), 20, "cannot read the keys of core/hub/config.h")
        self.assertDocumented("imapserver.conf.5", keys, "keys of core/hub/config.h")

    def test_config_c_sections_and_keys_are_in_imapserver_conf_5(self):
        source = _read("core/hub/config.c")
        m = re.search(r"config_sections\[\]\s*=\s*\{([^}]*)\}", source)
        self.assertIsNotNone(m, "cannot find config_sections in core/hub/config.c")
        sections = re.findall(r'"(\w+)"', m.group(1))
        self.assertEqual(sorted(sections), sorted(SECTION_NAMES),
                         "the sections of core/hub/config.c changed: update imapserver.conf(5) "
                         "and this test")
        titles = re.findall(r"^\.SS\s+(\S+)\s*$", self.source["imapserver.conf.5"], re.M)
        self.assertEqual([s for s in sections if s not in titles], [],
                         "a section without its .SS in imapserver.conf.5")
        keys = ["%s.%s" % (sec, key) for sec, key, _, _, _ in self.config_keys()]
        self.assertDocumented("imapserver.conf.5", keys, "keys of core/hub/config.c")

    def key_paragraph(self, key):
        """The text of the .TP paragraph of imapserver.conf(5) tagged key."""
        for block in re.split(r"^\.TP[^\n]*\n", self.source["imapserver.conf.5"], flags=re.M):
            first, _, rest = block.partition("\n")
            if re.fullmatch(r"\.B\s+" + re.escape(key), first.strip()):
                return unescape(rest.split("\n.SS", 1)[0].split("\n.SH", 1)[0])
        self.fail(f"no .TP paragraph for {key} in etc/imapserver.conf.5")

    def test_config_ranges_are_in_imapserver_conf_5(self):
        checked = 0
        for sec, key, typ, lo, hi in self.config_keys():
            if typ not in ("KEY_UINT", "KEY_SIZE"):
                continue
            name = f"{sec}.{key}"
            with self.subTest(key=name):
                self.assertIn(f"{lo}..{hi}", self.key_paragraph(name),
                              f"the range of {name} in etc/imapserver.conf.5")
            checked += 1
        self.assertGreaterEqual(checked, 10)

    def test_config_defaults_are_in_imapserver_conf_5(self):
        source = _read("core/hub/config.c")
        body = re.search(r"config_new_defaults\(const char \*dir\)\s*\{(.*?)\n\}", source, re.S)
        self.assertIsNotNone(body, "cannot find config_new_defaults() in core/hub/config.c")
        macros = dict(re.findall(r'^#define\s+(\w+)\s+"([^"]*)"', source, re.M))
        fields = {field: f"{sec}.{key}" for sec, key, field in
                  re.findall(r'KEY\("(\w+)",\s*"(\w+)",\s*KEY_\w+,\s*([\w.]+),', source)}
        checked = 0
        for field, value in re.findall(r"config->([\w.]+)\s*=\s*([^;]+);", body.group(1)):
            key = fields.get(field)
            if key is None:
                continue        # e.g. smtp_domains, the parsed form of smtp.domain
            m = (re.fullmatch(r"(\d+|true|false)", value) or
                 re.fullmatch(r'(?:xstrdup|registry_\w+_find)\("([^"]*)"\)', value) or
                 re.fullmatch(r"path_join\(dir,\s*(\w+)\)", value))
            if m is None:
                continue
            want = macros.get(m.group(1), m.group(1))
            want = want if re.fullmatch(r"\d+|true|false", want) else f'"{want}"'
            para = self.key_paragraph(key)
            with self.subTest(key=key):
                self.assertIn("default", para)
                self.assertRegex(para, r"(?<![\w.])" + re.escape(want) + r"(?![\w])",
                                 f"the default of {key} in etc/imapserver.conf.5")
            checked += 1
        self.assertGreaterEqual(checked, 20)
        # log.level is set from an enum: its default is "info".
        self.assertIn('"info"', self.key_paragraph("log.level"))

    # ------------------------------------------------------------ options

    def help_text(self, env, prog, flag):
        path = _binary(env, prog)
        if not os.access(path, os.X_OK):
            self.skipTest(f"{path} is not built")
        r = subprocess.run([path, flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(r.returncode, 0, f"{prog} {flag}")
        text = r.stdout.decode("utf-8", "replace")
        self.assertIn("usage:", text)
        return text

    def check_help(self, env, prog, flag, page):
        text = self.help_text(env, prog, flag)
        synopses, needles = [], {flag}
        for line in text.splitlines():
            # Synopsis lines: "usage: prog ARGS" and "       prog ARGS".
            m = re.match(r"^(?:usage:)?\s*" + re.escape(prog) + r"((?:\s+\S+)*)\s*$", line)
            if m is not None:
                synopses.append(prog + m.group(1))
                needles.update(re.findall(r"--?[A-Za-z][\w-]*|[A-Za-z_]\w*", m.group(1)))
                continue
            # Option lines: "  -c FILE   what", "  imap_port what".
            m = re.match(r"^\s+(-{1,2}[A-Za-z][\w-]*|[a-z_]+_[a-z_]+)(?:\s+([A-Z_]+))?\s", line)
            if m is not None:
                needles.update(g for g in m.groups() if g)
            # Menu items ("  1. Send Mail   ...") and environment variables.
            m = re.match(r"^\s+\d\.\s+(\S+(?: \S+)*)", line)
            if m is not None:
                needles.add(re.split(r"\s{2,}", m.group(1))[0])
            needles.update(re.findall(r"Environment:\s*([A-Z][A-Z0-9_]+)", line))
        self.assertTrue(synopses, f"no usage line in {prog} {flag}")
        self.assertDocumented(page, sorted(needles), f"options of `{prog} {flag}`")
        for synopsis in synopses:
            self.assertIn(" ".join(synopsis.split()), self.text[page],
                          f"the synopsis `{synopsis}` in etc/{page}")
        return needles

    def test_imapserver_options_are_in_imapserver_8(self):
        needles = self.check_help("IMAPSERVER", "imapserver", "-h", "imapserver.8")
        for opt in ("-c", "-f", "-t", "imap_port", "--migrate", "--from", "--to"):
            self.assertIn(opt, needles, "the usage parse missed an option")

    def test_smtpmail_options_are_in_smtpmail_8(self):
        needles = self.check_help("SMTPMAIL", "smtpmail", "-h", "smtpmail.8")
        self.assertIn("smtp_port", needles)

    def test_mailclient_options_are_in_mailclient_1(self):
        needles = self.check_help("MAILCLIENT", "mailclient", "--help", "mailclient.1")
        for word in ("SERVER_IP", "SMTP_PORT", "IMAP_PORT", "MAILCLIENT_TIMEOUT", "Send Mail",
                     "Manage Mail", "Quit"):
            self.assertIn(word, needles, "the usage parse missed a word")

    # ------------------------------------------------------------ protocol facts

    def test_imap_capabilities_are_in_imapserver_8(self):
        source = _read("core/imap/cmd_any.c")
        common = _strings_of_macro(source, "CAPS_COMMON")
        self.assertIsNotNone(common, "cannot find CAPS_COMMON in core/imap/cmd_any.c: update "
                                     "this test")
        caps = set(common.split())
        for extra in re.findall(r'CAPS_COMMON\s*"([^"]*)"', source):
            caps.update(extra.split())
        self.assertIn("IMAP4rev1", caps)
        self.assertDocumented("imapserver.8", sorted(caps), "capabilities of core/imap/cmd_any.c")

    def test_ehlo_keywords_are_in_smtpmail_8(self):
        keywords = re.findall(r'reply\(out,\s*"250[- ]([A-Z0-9][A-Z0-9-]*)', _read("core/smtp/smtp.c"))
        self.assertIn("PIPELINING", keywords, "cannot read the EHLO reply of core/smtp/smtp.c")
        self.assertDocumented("smtpmail.8", keywords, "EHLO keywords of core/smtp/smtp.c")

    def test_mailclient_messages_are_in_mailclient_1(self):
        source = _read("client/mailclient.c") + _read("client/mc_manage.c")
        for message in ("INVALID MAIL-ID", "NO MAILS TO SHOW", "Your mailbox is empty.",
                        "Enter the sender's mail address:", "Too many failed logins.",
                        "was deleted on another device.", "New mail from"):
            with self.subTest(message=message):
                self.assertIn(message, source,
                              "the message changed in client/mailclient.c or mc_manage.c")
                self.assertIn(message, self.text["mailclient.1"])

    # ------------------------------------------------------------ installation

    def test_make_install_installs_the_pages(self):
        if shutil.which("make") is None:
            self.skipTest("make is not installed")
        # Not the flags of a "make check" that runs this test (SANITIZE=...,
        # a jobserver).
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        with tempfile.TemporaryDirectory(prefix="imapserver-man.") as dest:
            # -n: print the commands only; nothing is built or installed.
            r = subprocess.run(["make", "-n", "-C", ROOT, "install", f"DESTDIR={dest}",
                                "PREFIX=/usr/local"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace"))
            commands = r.stdout.decode("utf-8", "replace")
        for page in PAGES:
            section = page.rsplit(".", 1)[1]
            with self.subTest(page=page):
                self.assertRegex(commands, r"install -m 644 [^\n]*etc/" + re.escape(page) +
                                 r"[^\n]*" + re.escape(f"{dest}/usr/local/share/man/man{section}/"))


if __name__ == "__main__":
    unittest.main()
