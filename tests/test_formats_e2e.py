"""Issue #4's corpus, end to end: every supported type, bad input, odd names, files that
change under the daemon's feet, and things that are not documents.

Every input is made here (no binary blobs in the repository), written into a real inbox
and run through the daemon, with the real SDK against the emulator on loopback. The
assertions read each document's result.json, its outputs and the emulator's record. What
Claude receives is seen twice: by a plugin that looks at the final request params
(``batchd_adjust_request``, returning None), and by the emulator, whose billed reuse keys
prove those params are what went over the wire and whose answers are made from them.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import tempfile
import time
import traceback
from pathlib import Path

import pytest
import structlog

from batchd.emulator import extract
from batchd.hookspecs import hookimpl
from batchd.keys import reuse_key
from batchd.testing import Harness, wait_until

from helpers import check_folder
from test_loaders import FRENCH, GERMAN, MULTIPART_EMAIL, encrypted_pdf, make_docx, make_image, make_pdf, make_zip

ALL_TASKS = {"summarize", "classify", "extract_contacts"}


# -- tools -------------------------------------------------------------------------


class Spy:
    """A plugin that records the final params of every request, by (source, task); changes nothing."""

    def __init__(self) -> None:
        self.params: dict[tuple[str, str], dict] = {}

    @hookimpl
    def batchd_adjust_request(self, task, document, params):
        self.params[(document.source, task)] = params
        return None

    def block(self, source: str, task: str = "summarize") -> dict:
        """The document's content block in the request (the first block of the user turn)."""
        return self.params[(source, task)]["messages"][0]["content"][0]

    def text(self, source: str, task: str = "summarize") -> str:
        """The document's text as Claude receives it, without the ``<document>`` wrapper."""
        block = self.block(source, task)
        assert block["type"] == "text", block["type"]
        wrapped = block["text"]
        assert wrapped.startswith("<document>\n") and wrapped.endswith("\n</document>"), wrapped[:80]
        return wrapped[len("<document>\n"):-len("\n</document>")]


def manifests(h: Harness) -> dict[str, dict]:
    """Every result.json in the outbox by folder (a source may have two folders)."""
    out = {}
    for path in h.outbox.rglob("result.json"):
        if not path.is_file():  # the folder of an input named result.json
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        data["_folder"] = path.parent.relative_to(h.outbox).as_posix()
        out[data["_folder"]] = data
    return out


def wait_folders(h: Harness, folders: set[str], timeout: float = 20.0) -> dict[str, dict]:
    def ready():
        if h.error:
            raise h.error
        got = manifests(h)
        return got if folders <= set(got) else None

    return wait_until(ready, timeout, f"result.json in {sorted(folders)}")


def events(logs: list[dict], name: str, **match) -> list[dict]:
    return [e for e in logs if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


def wait_event(logs: list[dict], name: str, timeout: float = 10.0, count: int = 1, **match) -> list[dict]:
    def seen():
        found = events(logs, name, **match)
        return found if len(found) >= count else None

    return wait_until(seen, timeout, f"{count} log event(s) {name} {match}")


@pytest.fixture
def logs(monkeypatch):
    """The daemon's log events, through ``structlog.testing.capture_logs``. The harness never
    sets up logging, so a reload's set-up of it is skipped: capturing goes on after a reload."""
    monkeypatch.setattr("batchd.logs.configure", lambda *args, **kwargs: None)
    with structlog.testing.capture_logs() as captured:
        yield captured


def reload(h: Harness, section: str, **values) -> None:
    """Change the configuration file and do what the daemon's SIGHUP handler does (the harness
    runs it in a thread, where it installs no signal handlers): ask it to read the file again."""
    h.config_data[section].update(values)
    h.write_config()
    h.daemon.stop.reload = True
    h.daemon.watcher.events.put("")


def pending(h: Harness) -> set[Path]:
    """The files the running daemon has seen and waits to settle (read from the test's thread)."""
    while True:
        try:
            return set(h.daemon.watcher.pending)
        except RuntimeError:  # changed size while copied: look again
            continue


def points(summary: str) -> list[str]:
    """The bullet points of a summary.md."""
    return [line[2:] for line in summary.splitlines() if line.startswith("- ")]


def assert_summarizes(summary: str, text: str) -> None:
    """The emulator's summary is extractive: each of its points is made of the document's words."""
    found = points(summary)
    assert found, summary
    vocabulary = set(extract.words(text))
    for point in found:
        assert set(extract.words(point)) <= vocabulary, (point, text[:200])


def emails(h: Harness, folder: str) -> set[str]:
    contacts = json.loads((h.outbox / folder / "contacts.json").read_text(encoding="utf-8"))["contacts"]
    return {c["email"] for c in contacts if c["email"]}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bound_unix_socket(path: Path) -> socket.socket:
    """A listening AF_UNIX socket at ``path``: bound in a short folder (sun_path holds 108 bytes),
    then renamed into place, which keeps it a live socket."""
    short = Path(tempfile.mkdtemp(prefix="bd-"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(short / "s"))
    sock.listen(1)
    os.rename(short / "s", path)
    short.rmdir()
    return sock


# -- every supported type ------------------------------------------------------------

PDF_PAGES = ["Harbor Logistics audit report for the third quarter.",
             "Questions go to Priya Raman at priya.raman@harbor-logistics.example or +1 415 555 0199."]

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Harbour festival 2026</title>
<style>.banner { color: red }</style>
<script>var tracker = "tracker@spy.example";</script>
</head><body>
<h1>Harbour festival 2026</h1>
<p>The harbour festival opens on the first Saturday of June with music on the pier.</p>
<p>Stalls are booked through Maria Jensen at <b>maria.jensen@harbour-fest.example</b>.</p>
<!-- old contact: hidden@comment.example -->
</body></html>
"""

LONG_BUDGET_TOKENS = 1000  # [anthropic] max_input_tokens for the corpus run: texts over 3,000 characters are cut
LONG_TEXT = ("Write to early.bird@long.example about the archive project. "
             + " ".join(f"Paragraph {i} describes shelf {i} of the municipal archive in patient detail."
                        for i in range(400))
             + " Finally write to late.comer@long.example for the index.")


def test_every_supported_type_end_to_end(batchd_harness, batchd_emulator):
    spy = Spy()
    h = batchd_harness({"anthropic": {"max_input_tokens": LONG_BUDGET_TOKENS}}, plugins=[spy])
    pdf = make_pdf(PDF_PAGES, title="Audit Q3")
    images = {"scan.png": make_image("PNG"), "photo.jpg": make_image("JPEG", (50, 20)),
              "anim.gif": make_image("GIF", frames=2), "picture.webp": make_image("WEBP"),
              "jpeg-named.png": make_image("JPEG", (64, 48))}
    utf16_table = "name;city\nJürgen;Köln\nRené;Genève\n"
    texts = {
        "utf8.txt": GERMAN.encode("utf-8"),
        "utf8-bom.txt": codecs.BOM_UTF8 + GERMAN.encode("utf-8"),
        "utf16.txt": GERMAN.encode("utf-16"),  # with its BOM
        "cp1252.txt": GERMAN.encode("cp1252"),
        "latin1.md": (FRENCH + "\r\n").encode("latin-1"),
        "table-utf16le.csv": utf16_table.encode("utf-16-le"),  # no BOM: known by its NULs
    }
    files = {"report.pdf": pdf, "page.html": PAGE, "invoice.eml": MULTIPART_EMAIL, "plan.docx": make_docx(),
             "long.txt": LONG_TEXT, **images, **texts}
    h.drop(files)
    assert h.run_once() == 0
    results = h.results()
    assert set(results) == set(files)
    for source, manifest in results.items():
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done" and manifest["error"] is None, (source, manifest["error"])
        assert manifest["original"] == source and not (h.inbox / source).exists()
        assert manifest["sha256"] == sha(files[source] if isinstance(files[source], bytes) else
                                         files[source].encode())
        assert set(manifest["tasks"]) == ALL_TASKS
        for name, task in manifest["tasks"].items():
            assert task["status"] == "succeeded", (source, name, task)
            assert task["truncated"] is (source == "long.txt"), (source, name)
    # The params the spy saw are exactly what the emulator was sent and billed.
    billed = {b["reuse_key"] for b in batchd_emulator.record.billed()}
    assert {reuse_key(p) for p in spy.params.values()} == billed

    # PDF: a native document block holding the file's bytes; the emulator reads its text.
    block = spy.block("report.pdf")
    assert (block["type"], block["source"]["media_type"]) == ("document", "application/pdf")
    assert base64.b64decode(block["source"]["data"]) == pdf
    summary = h.output("report.pdf", "summary.md")
    assert "Harbor Logistics audit report for the third quarter." in summary
    assert_summarizes(summary, " ".join(PDF_PAGES))
    assert "priya.raman@harbor-logistics.example" in emails(h, "report.pdf")

    # Images: native image blocks, the media type taken from the bytes, not the name.
    kinds = {"scan.png": ("image/png", "PNG, 40x30 pixels"), "photo.jpg": ("image/jpeg", "JPEG, 50x20 pixels"),
             "anim.gif": ("image/gif", "GIF, 40x30 pixels"), "picture.webp": ("image/webp", "WEBP, "),
             "jpeg-named.png": ("image/jpeg", "JPEG, 64x48 pixels")}
    for source, (media_type, seen) in kinds.items():
        block = spy.block(source)
        assert (block["type"], block["source"]["media_type"]) == ("image", media_type), source
        assert base64.b64decode(block["source"]["data"]) == images[source]
        assert f"The input includes an image ({seen}" in h.output(source, "summary.md"), source
        assert emails(h, source) == set()

    # HTML: the readable text, no markup, no script, no comment.
    page = spy.text("page.html")
    assert page == ("# Harbour festival 2026\n\n"
                    "The harbour festival opens on the first Saturday of June with music on the pier.\n\n"
                    "Stalls are booked through Maria Jensen at maria.jensen@harbour-fest.example.")
    assert_summarizes(h.output("page.html", "summary.md"), page)
    assert emails(h, "page.html") == {"maria.jensen@harbour-fest.example"}

    # E-mail: the headers that matter, the decoded body, the attachments listed (not read).
    mail = spy.text("invoice.eml")
    assert mail.startswith("From: Jürgen Müller <jurgen@example.com>\nTo: Ann Smith <ann@example.com>, "
                           "bob@example.com\nCc: René <rene@example.com>\nDate: Mon, 02 Nov 2026 10:00:00 +0100\n"
                           "Subject: Rechnung für Oktober ✓\n\nHallo Ann,")
    assert "Der Betrag ist 1.234,56 €" in mail and "=C3" not in mail
    assert mail.endswith("\n\nAttachments: invoice.pdf (application/pdf, 12 KB), Abrechnung März.xls "
                         "(application/vnd.ms-excel, 500 bytes)")
    assert_summarizes(h.output("invoice.eml", "summary.md"), mail)
    assert {"jurgen@example.com", "ann@example.com", "rene@example.com"} <= emails(h, "invoice.eml")

    # Word: paragraphs, headings and tables in order, one row per line.
    plan = spy.text("plan.docx")
    assert "We build the thing in three steps." in plan
    assert "Who | What | When\nAnn | Design | May\nBob | Everything else" in plan
    assert_summarizes(h.output("plan.docx", "summary.md"), plan)

    # Text in any charset: the same words whatever the bytes, so the same request, paid once.
    for source in ("utf8.txt", "utf8-bom.txt", "utf16.txt", "cp1252.txt"):
        assert spy.text(source) == GERMAN, source
        assert GERMAN.split(":")[0] in h.output(source, "summary.md")
    reused = [s for s in ("utf8.txt", "utf8-bom.txt", "utf16.txt", "cp1252.txt")
              if results[s]["tasks"]["summarize"]["reused"]]
    assert len(reused) == 3, reused
    assert spy.text("latin1.md") == FRENCH + "\n"
    assert_summarizes(h.output("latin1.md", "summary.md"), FRENCH)
    assert spy.text("table-utf16le.csv") == utf16_table

    # A text over the budget is cut to max_input_tokens * 3 characters, and says so.
    cut = spy.text("long.txt")
    assert cut == LONG_TEXT[:LONG_BUDGET_TOKENS * 3]
    assert emails(h, "long.txt") == {"early.bird@long.example"}  # the late address was cut off
    # The emulator bills about 4 characters a token: it was sent the cut text, not the whole.
    long_usage = results["long.txt"]["tasks"]["summarize"]["usage"]["input_tokens"]
    short_usage = results["latin1.md"]["tasks"]["summarize"]["usage"]["input_tokens"]
    extra = (len(cut) - len(FRENCH)) / 4
    assert extra - 20 <= long_usage - short_usage <= extra + 20, (long_usage, short_usage)
    assert long_usage < len(LONG_TEXT) / 4


# -- bad input ---------------------------------------------------------------------


def test_bad_input_fails_with_a_reason_and_the_daemon_keeps_going(batchd_harness):
    """Beyond tests/test_daemon.py (empty.txt, junk.txt, big.txt): each kind of bad input ends
    as a failed document with a reason a person understands and its original moved into its
    folder byte for byte, while good documents around it are done."""
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}, "watch": {"max_file_bytes": 20_000}})
    junk = bytes(range(256)) * 3
    pdf = make_pdf(["A page that will be cut in half."])
    docx = make_docx()
    cut_png = make_image("PNG", (60, 60), noise=True)
    bad = {
        # content, and the reason result.json must give (its start, where it ends with "...")
        "empty.pdf": (b"", "the file is empty"),
        "blank.md": (b" \n\t\r\n", "the file is empty"),
        "nul.csv": (b"a,b\n1,2\x00\n", "unsupported type: the content is binary, not text"),
        "blob.dat": (junk, "unsupported type: binary data (.dat)"),
        "no-suffix": (junk, "unsupported type: binary data (no suffix)"),
        "archive.zip": (make_zip({"a.txt": b"a"}), "unsupported type: a ZIP archive (.zip)"),
        "sheet.xlsx": (make_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}),
                       "unsupported type: an Excel workbook (.xlsx)"),
        "legacy.doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000),
                       "unsupported type: a legacy Word document (Word 97-2003) (.doc)"),
        "truncated.pdf": (pdf[: len(pdf) // 2], "corrupt PDF: the file is truncated (it has no end-of-file marker)"),
        "scrambled.pdf": (b"%PDF-1.4\n" + junk + b"\n%%EOF\n", "corrupt PDF: ..."),
        "not-a.pdf": (bytes(range(1, 256)) * 4, "corrupt PDF: the file does not start with a PDF header"),
        "locked.pdf": (encrypted_pdf("secret"), "encrypted PDF: it needs a password to open"),
        "cut.png": (cut_png[: len(cut_png) // 2], "corrupt image: ..."),
        "broken.docx": (docx[: len(docx) // 2], "corrupt Word document: not a readable ZIP package ..."),
        "headless.eml": (b"just some words\nand more\n",
                         "corrupt e-mail: the file does not start with message headers"),
        "markup.html": (b"<html><head><script>x()</script></head><body> </body></html>",
                        "the HTML page has no readable text"),
        "big.txt": (b"word " * 5000, "too large: 25,000 bytes, over the limit of 20,000 (watch.max_file_bytes)"),
        "big.pdf": (pdf + b"%" * 20_000, f"too large: {len(pdf) + 20_000:,} bytes, over the limit of 20,000 "
                                         "(watch.max_file_bytes)"),
    }
    h.start()
    h.drop({name: data for name, (data, _) in bad.items()} | {"good-meanwhile.txt": "Arrived with the bad ones."})
    wait_folders(h, set(bad) | {"good-meanwhile.txt"})
    h.drop({"good-after.txt": "Arrived after the bad ones were done."})
    results = h.wait_for(["good-after.txt"])
    h.stop()
    for name, (data, reason) in bad.items():
        manifest = results[name]
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "failed", name
        if reason.endswith("..."):
            assert manifest["error"].startswith(reason[:-3]), (name, manifest["error"])
        else:
            assert manifest["error"] == reason, (name, manifest["error"])
        assert manifest["tasks"] == {}
        # The original is moved into its folder, byte for byte.
        assert manifest["original"] == name and not (h.inbox / name).exists()
        assert (h.outbox / manifest["_folder"] / name).read_bytes() == data
        too_large = reason.startswith("too large")
        assert manifest["sha256"] == (None if too_large else sha(data))
        assert manifest["bytes"] == (None if too_large else len(data))
    for name in ("good-meanwhile.txt", "good-after.txt"):
        assert results[name]["status"] == "done"
        assert results[name]["tasks"]["summarize"]["status"] == "succeeded"


# -- names ---------------------------------------------------------------------------


def test_odd_names_and_deep_folders(batchd_harness, logs):
    """Beyond tests/test_daemon.py's odd names: odd folder names, control characters, option-like
    names, Unicode normalisation forms, a 255-byte multibyte name whose folder is taken, very
    deep folders, a name that is not UTF-8 at all."""
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    long_name = "x" + "é" * 125 + ".txt"
    assert len(long_name.encode()) == 255
    deep = "/".join(f"level {i:02d}" for i in range(40)) + "/bottom.txt"
    names = [
        "with space/and  two  spaces .txt",
        " leading space.txt",
        "-rf/--help",
        "--version.md",
        "new\nline folder/inside.txt",
        "tab\there.txt",
        "carriage\rreturn.txt",
        "back\\slash.txt",
        "quotes \"double\" and 'single'.txt",
        "glob *?[ab].txt",
        "日本語/書類.txt",
        "emoji 📄 notes.md",
        "café.txt",  # NFC
        "cafe\u0301.txt",  # NFD: another name on Linux, another document
        "result.json",
        long_name,
        deep,
    ]
    files = {name: f"Document {i} is about topic number {i}, filed as {name!r}." for i, name in enumerate(names)}
    files["empty 📄 " + "y" * 200 + ".txt"] = b""
    h.drop(files)
    # A folder with the long name is already in the outbox: the new one gets ~2, cut to fit 255 bytes.
    (h.outbox / long_name).mkdir()
    (h.outbox / long_name / "keep.txt").write_text("not batchd's")
    # A name in latin-1 bytes (from an old file server): not UTF-8, so it cannot be named in
    # result.json or the state; it is left where it is, with an error in the log.
    latin1_name = os.path.join(os.fsencode(h.inbox), "r\xe9sum\xe9.txt".encode("latin-1"))
    with open(latin1_name, "wb") as f:
        f.write(b"A file whose name is in latin-1.")
    assert h.run_once() == 0
    results = h.results()
    assert set(results) == set(files)
    for source, manifest in results.items():
        check_folder(h.outbox, manifest)
        assert (h.outbox / manifest["_folder"]).resolve().is_relative_to(h.outbox.resolve())
        assert manifest["status"] == ("failed" if source.startswith("empty") else "done"), source
        if source != long_name:
            assert manifest["_folder"] == source
        original = manifest["original"]
        assert (h.outbox / manifest["_folder"] / original).read_bytes() == \
            (files[source].encode() if isinstance(files[source], str) else files[source])
    assert results["result.json"]["original"] == "original-result.json"
    folder = results[long_name]["_folder"]
    assert folder.endswith("~2") and len(folder.encode()) <= 255 and folder.startswith("x" + "é" * 120)
    assert (h.outbox / long_name / "keep.txt").read_text() == "not batchd's"
    assert results[deep]["_folder"] == deep
    # Only the latin-1 name is left in the inbox, untouched.
    left = [p for p in Path(h.inbox).rglob("*") if p.is_file()]
    assert [os.fsencode(p) for p in left] == [latin1_name]
    assert Path(os.fsdecode(latin1_name)).read_bytes() == b"A file whose name is in latin-1."
    skipped = events(logs, "document_skipped")
    assert [e["document"] for e in skipped] == ["r\\xe9sum\\xe9.txt"]
    assert "not valid UTF-8" in skipped[0]["reason"]


# -- vanished before it could be read --------------------------------------------------


def test_file_gone_before_it_settled_leaves_no_folder_and_a_log_line(batchd_harness, tmp_path, logs):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}, "watch": {"settle": 0.5}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    h.start()
    h.drop({"deleted.txt": "Deleted before it settled.", "moved-out.txt": "Moved out of the inbox.",
            "renamed.txt": "Renamed inside the inbox.", "kept.txt": "Left alone."})
    settling = {h.inbox / n for n in ("deleted.txt", "moved-out.txt", "renamed.txt", "kept.txt")}
    wait_until(lambda: settling <= pending(h), 5, "the files seen and settling")
    (h.inbox / "deleted.txt").unlink()
    os.rename(h.inbox / "moved-out.txt", elsewhere / "moved-out.txt")
    os.rename(h.inbox / "renamed.txt", h.inbox / "renamed-final.txt")
    results = h.wait_for(["kept.txt", "renamed-final.txt"])
    gone = wait_event(logs, "document_vanished", count=3)
    h.stop()
    assert sorted(e["document"] for e in gone) == ["deleted.txt", "moved-out.txt", "renamed.txt"]
    assert set(results) == {"kept.txt", "renamed-final.txt"}
    assert sorted(p.name for p in h.outbox.iterdir()) == ["kept.txt", "renamed-final.txt"]
    assert (elsewhere / "moved-out.txt").read_text() == "Moved out of the inbox."
    assert not events(logs, "document_taken", document="deleted.txt")


# -- permission denied -------------------------------------------------------------------


def _free_uid() -> int:
    """A uid no account uses, for a daemon that owns nothing else on this machine."""
    for uid in range(61000, 62000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("no free uid between 61000 and 62000")


def _run_once_as(h: Harness, uid: int, timeout: float = 30.0) -> int:
    """``batchd run --once`` in a forked child that has dropped root for ``uid`` (and no groups)."""
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        code = 70
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            code = h.run_once(timeout=timeout - 5)
        except BaseException:  # noqa: BLE001 - reported to the parent through the exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the daemon running as uid {uid} did not finish within {timeout} s")
        time.sleep(0.05)


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for path in root.rglob("*"):
        os.chown(path, uid, uid, follow_symlinks=False)


def test_unreadable_file_fails_with_permission_denied(batchd_emulator):
    """A file the daemon's user may not read fails with "permission denied", is moved, and
    the daemon goes on.

    Root reads any file whatever its mode, and CI runs as root; so as root the daemon runs
    in a forked child that has given up root for a uid no account uses (tmp folders owned
    by that uid, the unreadable file owned by root, mode 0600) — the way a service user
    meets a file someone else dropped. Run as another user, the file is made mode 0 and the
    daemon runs in-process. A control run first, as the user running the tests, on the
    same corpus: as root it shows that root reads that very file.
    """
    top = Path(tempfile.mkdtemp(prefix="batchd-perm-"))  # pytest's tmp_path is private to root
    try:
        def corpus(name: str) -> tuple[Harness, Path]:
            h = Harness(top / name, batchd_emulator.base_url, {"tasks": {"enabled": ["summarize"]}})
            h.drop({"public.txt": "Anyone may read this memo about the car park.",
                    "sub/also-public.txt": "Anyone may read this note about the canteen."})
            secret = h.inbox / "secret.txt"
            secret.write_text("Only root may read this payroll summary.")
            secret.chmod(0o600)
            return h, secret

        # The control, as whoever runs the tests; it also imports everything the child will need.
        # As root it shows what root does with the very file the child cannot read: reads it.
        control, _ = corpus("control")
        assert control.run_once() == 0
        assert control.results()["secret.txt"]["status"] == "done"

        h, secret = corpus("daemon")
        if os.geteuid() == 0:
            uid = _free_uid()
            os.chmod(top, 0o755)
            _chown_tree(h.root, uid)
            os.chown(secret, 0, 0)
            secret.chmod(0o600)
            code = _run_once_as(h, uid)
        else:
            secret.chmod(0)
            code = h.run_once()
        assert code == 0, f"the daemon exited {code} (70: it failed in the child; see its traceback above)"
        results = h.results()
        assert set(results) == {"public.txt", "sub/also-public.txt", "secret.txt"}
        manifest = results["secret.txt"]
        check_folder(h.outbox, manifest)
        assert (manifest["status"], manifest["error"]) == ("failed", "cannot be read: permission denied")
        assert (manifest["sha256"], manifest["bytes"], manifest["tasks"]) == (None, None, {})
        assert manifest["original"] == "secret.txt" and not secret.exists()
        moved = h.outbox / "secret.txt" / "secret.txt"
        assert stat.S_IMODE(moved.stat().st_mode) == (0o600 if os.geteuid() == 0 else 0)
        moved.chmod(0o600)
        assert moved.read_text() == "Only root may read this payroll summary."
        for source in ("public.txt", "sub/also-public.txt"):
            assert results[source]["status"] == "done"
    finally:
        shutil.rmtree(top, ignore_errors=True)


# -- files that change after they were taken -------------------------------------------


def test_changed_or_gone_before_its_requests_went_out(batchd_harness, batchd_emulator, logs):
    """Nothing was sent yet: the old version is dropped, the new one taken as a new document.

    The batch waits (``max_wait`` of an hour) until the test lowers ``max_wait`` and
    reloads the configuration (what SIGHUP does), so each change happens at a known
    point: a.txt changes and settles while queued (seen at intake); b.txt is replaced and
    the batch goes out before the change settles (seen at the flush, by its sha256);
    c.txt is deleted and d.txt renamed while queued (seen at the flush).
    """
    h = batchd_harness({"tasks": {"enabled": ["summarize", "extract_contacts"]},
                        "batch": {"max_wait": 3600}, "watch": {"settle": 0.5}})
    v1 = {name: f"Version one of {name} mentions old.{name}@one.example and the orchard." for name in "abcd"}
    v2 = {name: f"Version two of {name} mentions new.{name}@two.example and the submarine." for name in "ab"}
    v2["a"] += " It grew."
    h.start()
    h.drop({"a.txt": v1["a"]})
    first_a = wait_event(logs, "document_taken", document="a.txt")[0]["doc_id"]
    (h.inbox / "a.txt").write_text(v2["a"])  # in place
    wait_event(logs, "document_taken", count=2, document="a.txt")
    assert [e["doc_id"] for e in events(logs, "document_replaced", document="a.txt")] == [first_a]
    h.drop({f"{n}.txt": v1[n] for n in "bcd"})
    for n in "bcd":
        wait_event(logs, "document_taken", document=f"{n}.txt")
    assert batchd_emulator.record.created() == []  # nothing went out yet
    (h.inbox / "c.txt").unlink()
    os.rename(h.inbox / "d.txt", h.inbox / "d-renamed.txt")
    h.drop({"b.txt": v2["b"]})  # replaced through a rename, as editors save; it settles in 0.5 s,
    reload(h, "batch", max_wait=0.05)  # but the batch goes out at once
    found = wait_folders(h, {"a.txt", "b.txt", "d-renamed.txt"})
    h.stop()
    assert set(manifests(h)) == {"a.txt", "b.txt", "d-renamed.txt"}
    for name, text, address in (("a", v2["a"], "new.a@two.example"), ("b", v2["b"], "new.b@two.example"),
                                ("d-renamed", v1["d"], "old.d@one.example")):
        manifest = found[f"{name}.txt"]
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done" and manifest["original"] == f"{name}.txt"
        assert manifest["sha256"] == sha(text.encode())
        assert_summarizes(h.output(f"{name}.txt", "summary.md"), text)
        assert emails(h, f"{name}.txt") == {address}
    # b's change was found at the flush, before the batch went out: b's second intake came after it.
    log = [(e["event"], e.get("document")) for e in logs]
    submitted = log.index(("batch_submitting", None))
    taken_b = [i for i, entry in enumerate(log) if entry == ("document_taken", "b.txt")]
    assert taken_b[0] < log.index(("document_replaced", "b.txt")) < submitted < taken_b[1]
    assert [e["document"] for e in events(logs, "document_vanished")] == ["c.txt", "d.txt"]
    assert list(h.inbox.iterdir()) == []
    # The old versions never went out: one request per task of the three final documents.
    assert sum(c["request_count"] for c in batchd_emulator.record.created()) == 6
    assert len(batchd_emulator.record.billed()) == 6


def test_changed_replaced_or_deleted_while_its_batch_is_in_flight(batchd_harness, batchd_emulator, tmp_path):
    """Answers on their way are for the version that was sent: its folder gets them, with
    ``"original": null`` when that version is no longer there to move; a new version stays
    in the inbox until then and becomes a document of its own (``name~2``). Never a mix."""
    outside = tmp_path / "outside.txt"
    outside.write_text("A file outside the inbox, about tulips. Call tulip@outside.example.")
    h = batchd_harness({"tasks": {"enabled": ["summarize", "extract_contacts"]}})
    names = ["changed.txt", "replaced.txt", "deleted.txt", "symlinked.txt", "control.txt"]
    v1 = {n: f"The first {n} talks about apples; write to first.{n[:3]}@one.example." for n in names}
    v2 = {n: f"The second {n} talks about submarines; write to second.{n[:3]}@two.example." for n in names}
    batchd_emulator.faults.processing_time = 3.0
    h.start()
    h.drop(v1)
    wait_until(lambda: sum(c["request_count"] for c in batchd_emulator.record.created()) == 10, 10,
               "every request in flight")
    batchd_emulator.faults.processing_time = 0.0  # later batches end at once
    (h.inbox / "changed.txt").write_text(v2["changed.txt"])
    h.drop({"replaced.txt": v2["replaced.txt"]})
    (h.inbox / "deleted.txt").unlink()
    (h.inbox / "symlinked.txt").unlink()
    (h.inbox / "symlinked.txt").symlink_to(outside)
    assert batchd_emulator.record.billed() == [], "the first batch ended before the files were changed"
    found = wait_folders(h, {"changed.txt", "changed.txt~2", "replaced.txt", "replaced.txt~2", "deleted.txt",
                             "symlinked.txt", "control.txt"})
    h.stop()
    assert len(found) == 7
    for folder, manifest in found.items():
        check_folder(h.outbox, manifest)
        source = manifest["source"]
        assert manifest["status"] == "done"
        second = folder.endswith("~2")
        text = (v2 if second else v1)[source]
        assert manifest["sha256"] == sha(text.encode()), folder
        assert_summarizes((h.outbox / folder / "summary.md").read_text(), text)
        assert emails(h, folder) == {f"{'second' if second else 'first'}.{source[:3]}@"
                                     f"{'two' if second else 'one'}.example"}, folder
        if second or source == "control.txt":
            assert manifest["original"] == source
            assert (h.outbox / folder / source).read_text() == text
        else:  # the version these answers are for is gone: nothing to move
            assert manifest["original"] is None
            assert sorted(p.name for p in (h.outbox / folder).iterdir()) == ["contacts.json", "result.json",
                                                                            "summary.md"]
    # The symlink that replaced a document is not a document: left as it is, pointing where it did.
    assert [p.name for p in h.inbox.iterdir()] == ["symlinked.txt"]
    assert os.readlink(h.inbox / "symlinked.txt") == str(outside)
    assert outside.read_text().startswith("A file outside the inbox")
    # Each version was paid for once: 5 first versions and 2 second ones, two tasks each.
    keys = [b["reuse_key"] for b in batchd_emulator.record.billed()]
    assert len(keys) == len(set(keys)) == 14


def test_changed_when_part_of_it_went_out(batchd_harness, batchd_emulator, logs):
    """A document whose requests go out in two batches changes in between: the part in
    flight is kept, the part not yet sent fails with the reason (never a mix of versions),
    and the new version is a document of its own.

    ``max_requests = 2`` sends two of its three requests at once; the third waits for
    ``max_wait`` (an hour) until the test lowers it and reloads, after the change.
    """
    h = batchd_harness({"batch": {"max_requests": 2, "max_wait": 3600}})
    v1 = "The first plan covers apples and pears. Ask first.planner@one.example about it."
    v2 = "The second plan covers submarines and divers. Ask second.planner@two.example about it."
    batchd_emulator.faults.processing_time = 2.0
    h.start()
    h.drop({"plan.txt": v1})
    wait_until(lambda: batchd_emulator.record.created(), 10, "the first two requests in flight")
    batchd_emulator.faults.processing_time = 0.0
    (h.inbox / "plan.txt").write_text(v2)
    reload(h, "batch", max_wait=0.05)  # the third request's flush finds the file changed
    found = wait_folders(h, {"plan.txt", "plan.txt~2"})
    h.stop()
    assert batchd_emulator.record.created()[0]["request_count"] == 2
    first, second = found["plan.txt"], found["plan.txt~2"]
    for manifest in (first, second):
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done"
    assert first["sha256"] == sha(v1.encode()) and first["original"] is None
    assert [first["tasks"][t]["status"] for t in ("summarize", "classify", "extract_contacts")] == \
        ["succeeded", "succeeded", "failed"]
    assert first["tasks"]["extract_contacts"]["error"] == (
        "not sent: replaced by a newer version of the file after the document's other requests had gone out")
    assert_summarizes((h.outbox / "plan.txt" / "summary.md").read_text(), v1)
    assert not (h.outbox / "plan.txt" / "contacts.json").exists()
    assert second["sha256"] == sha(v2.encode()) and second["original"] == "plan.txt"
    assert all(t["status"] == "succeeded" for t in second["tasks"].values())
    assert emails(h, "plan.txt~2") == {"second.planner@two.example"}
    assert events(logs, "document_replaced", document="plan.txt")
    assert events(logs, "original_changed", document="plan.txt")
    # Sent and paid: the first version's two requests, and the second version's three.
    assert sum(c["request_count"] for c in batchd_emulator.record.created()) == 5
    assert len(batchd_emulator.record.billed()) == 5


# -- not documents --------------------------------------------------------------------


def test_not_documents_are_never_touched(batchd_harness, tmp_path):
    """Beyond tests/test_daemon.py (a top-level FIFO, a symlink to a file, ignored names):
    sockets, symlinked folders, symlinks to files inside the inbox, dangling symlinks,
    ignored names deep down; present at start and appearing while the daemon runs."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inner.txt").write_text("Outside the inbox, reachable through a symlinked folder.")
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    inbox = h.inbox
    h.drop({"real.txt": "A real document."})
    sockets = [bound_unix_socket(inbox / "socket.txt")]
    (inbox / "sub").mkdir()
    os.mkfifo(inbox / "sub" / "fifo.txt")
    (inbox / "linked-folder").symlink_to(outside, target_is_directory=True)
    (inbox / "sub" / "alias.txt").symlink_to(inbox / "real.txt")
    (inbox / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    ignored = {"reports/~$draft.docx": "owner file", "reports/.cache/data.txt": "hidden folder",
               "downloads/file.pdf.crdownload": "download", "a/b/.hidden/c.txt": "deep hidden", "x.part": "part",
               "notes.tmp": "temp"}
    h.drop(ignored)
    before = {p: os.lstat(p) for p in [*inbox.rglob("*"), *outside.rglob("*")]}
    h.start()
    h.wait_for(["real.txt"])
    # The same kinds arriving while it runs.
    sockets.append(bound_unix_socket(inbox / "sub" / "later-socket.md"))
    os.mkfifo(inbox / "later-fifo.txt")
    (inbox / "later-linked-folder").symlink_to(outside, target_is_directory=True)
    (inbox / "later-link.txt").symlink_to(outside / "inner.txt")
    (outside / "written-later.txt").write_text("Written outside while the daemon runs.")
    staged = tmp_path / "staged"
    (staged / "inner").mkdir(parents=True)
    (staged / "inner" / "y.txt").write_text("inside a hidden folder moved in whole")
    os.rename(staged, inbox / ".moved-in")
    h.drop({"after.txt": "A real document arriving after them."})
    results = h.wait_for(["after.txt"])
    h.stop()
    for sock in sockets:
        sock.close()
    assert set(results) == {"real.txt", "after.txt"}
    assert sorted(p.name for p in h.outbox.iterdir()) == ["after.txt", "real.txt"]
    for path, st in before.items():
        if stat.S_ISDIR(st.st_mode) or path == inbox / "real.txt":
            continue  # folders change as entries come and go; real.txt is a document, moved
        now = os.lstat(path)
        assert (now.st_mode, now.st_ino, now.st_mtime_ns, now.st_size) == \
               (st.st_mode, st.st_ino, st.st_mtime_ns, st.st_size), path
    assert stat.S_ISSOCK(os.lstat(inbox / "socket.txt").st_mode)
    assert stat.S_ISSOCK(os.lstat(inbox / "sub" / "later-socket.md").st_mode)
    assert stat.S_ISFIFO(os.lstat(inbox / "later-fifo.txt").st_mode)
    assert os.readlink(inbox / "sub" / "alias.txt") == str(inbox / "real.txt")  # dangling now, still there
    for link in ("linked-folder", "later-linked-folder", "later-link.txt", "dangling.txt"):
        assert (inbox / link).is_symlink(), link
    assert sorted(p.name for p in outside.iterdir()) == ["inner.txt", "written-later.txt"]
    for rel, content in {**ignored, ".moved-in/inner/y.txt": "inside a hidden folder moved in whole"}.items():
        assert (inbox / rel).read_text() == content


def test_an_original_that_cannot_be_moved_keeps_its_results_and_is_not_taken_again(batchd_emulator):
    """A readable file in a folder the daemon's user may not write to cannot be moved out.

    Its results are written all the same (``"original": null``, a log line), the file stays
    where it is, and later runs do not take it again. As root the daemon runs in a child that
    has given up root (root may write anywhere); as another user the folder is made read-only.
    """
    top = Path(tempfile.mkdtemp(prefix="batchd-move-"))
    try:
        # A run as whoever runs the tests, first: it imports everything the child will need.
        control = Harness(top / "control", batchd_emulator.base_url, {"tasks": {"enabled": ["summarize"]}})
        control.drop({"warm-up.txt": "Imports everything before the child gives up root."})
        assert control.run_once() == 0
        h = Harness(top / "daemon", batchd_emulator.base_url, {"tasks": {"enabled": ["summarize"]}})
        h.drop({"locked/memo.txt": "A memo in a folder batchd may read but not change.",
                "free.txt": "A memo batchd may move."})
        locked = h.inbox / "locked"

        def run() -> int:
            if os.geteuid() == 0:
                uid = _free_uid()
                os.chmod(top, 0o755)
                _chown_tree(h.root, uid)
                os.chown(locked, 0, 0)
                os.chown(locked / "memo.txt", 0, 0)
                locked.chmod(0o755)
                return _run_once_as(h, uid)
            locked.chmod(0o555)
            try:
                return h.run_once()
            finally:
                locked.chmod(0o755)

        assert run() == 0
        results = h.results()
        manifest = results["locked/memo.txt"]
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done" and manifest["original"] is None
        assert (locked / "memo.txt").exists()
        assert results["free.txt"]["original"] == "free.txt"
        assert run() == 0, "a second run finishes at once: the unmovable file is not a new document"
        assert len(list(h.outbox.rglob("result.json"))) == 2
    finally:
        shutil.rmtree(top, ignore_errors=True)
