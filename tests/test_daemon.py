"""The daemon end to end: real files in, the real SDK against the emulator, the outbox read back."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import referencing
from batchd.documents import Document
from batchd.testing import wait_until

from helpers import DATA, check_folder, check_manifest

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def _request_validator():
    spec = json.loads((DATA / "anthropic-openapi.json").read_text())
    resource = referencing.Resource.from_contents(spec, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource("urn:openapi", resource)
    schema = {"$ref": "urn:openapi#/components/schemas/MessageBatchIndividualRequestParams"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_examples_end_to_end(batchd_harness, batchd_emulator):
    h = batchd_harness()
    for path in EXAMPLES.iterdir():
        shutil.copy(path, h.inbox / path.name)
    assert h.run_once() == 0
    results = h.results()
    assert set(results) == {p.name for p in EXAMPLES.iterdir()}
    for source, manifest in results.items():
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done", manifest
        assert manifest["original"] == source
        assert not (h.inbox / source).exists(), "the original must be moved out of the inbox"
        assert set(manifest["tasks"]) == {"summarize", "classify", "extract_contacts"}
        for name, task in manifest["tasks"].items():
            assert task["status"] == "succeeded", (source, name, task)
            assert task["custom_id"] and task["batch_id"].startswith("msgbatch_")
            assert task["usage"]["input_tokens"] > 0
            assert task["cost_usd"] is not None and task["cost_usd"] > 0
            assert task["model"].startswith("claude-haiku-4-5")
    invoice = "acme-invoice.txt"
    contacts = json.loads(h.output(invoice, "contacts.json"))["contacts"]
    emails = {c["email"] for c in contacts}
    assert "julia.becker@northwind-traders.de" in emails and "tom.fielding@acme-industrial.co.uk" in emails
    assert all(set(c) == {"name", "email", "phone", "company", "role"} for c in contacts)
    classification = json.loads(h.output(invoice, "classification.json"))
    assert classification["category"] in ("technology", "finance", "healthcare", "legal", "general")
    assert 0 <= classification["confidence"] <= 1
    assert classification["category"] == "finance"
    assert json.loads(h.output("clinic-letter.md", "classification.json"))["category"] == "healthcare"
    assert h.output(invoice, "summary.md").strip()
    # The original keeps its bytes: the manifest's sha256 is the moved file's.
    folder = h.outbox / results[invoice]["_folder"]
    import hashlib

    assert hashlib.sha256((folder / invoice).read_bytes()).hexdigest() == results[invoice]["sha256"]
    assert len(batchd_emulator.record.billed()) == 3 * len(results)


def test_requests_validate_against_the_api_schema(batchd_harness):
    h = batchd_harness()
    daemon = h.build()
    try:
        validator = _request_validator()
        for path in EXAMPLES.iterdir():
            data = path.read_bytes()
            document = daemon.builder.load(path, path.name, data, "0" * 64)
            for task in daemon.builder.tasks_for(document):
                params = daemon.builder.params_for(document, task)
                entry = {"custom_id": daemon.store.custom_id(1), "params": params}
                errors = list(validator.iter_errors(entry))
                assert not errors, (path.name, task, [e.message for e in errors])
    finally:
        daemon.store.close()


def test_files_arriving_while_running(batchd_harness):
    h = batchd_harness({"watch": {"settle": 0.3}})
    h.drop({"before.txt": "Written before the daemon started. Contact: a@b.example"})
    h.start()
    h.wait_for(["before.txt"])
    h.drop({"sub/dir/after.txt": "Written while the daemon runs."})
    # A file renamed in from a .part name counts once, under its final name.
    (h.inbox / "renamed.txt.part").write_text("Arrived through a temporary name.")
    os.rename(h.inbox / "renamed.txt.part", h.inbox / "renamed.txt")
    # A file written slowly in pieces is read only once complete.
    pieces = [f"Line {i} of a slowly written report about quarterly revenue.\n" for i in range(6)]
    slow = h.inbox / "slow.txt"

    def write_slowly():
        with open(slow, "w") as f:
            for piece in pieces:
                f.write(piece)
                f.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    writer.join()
    results = h.wait_for(["before.txt", "sub/dir/after.txt", "renamed.txt", "slow.txt"])
    h.stop()
    import hashlib

    assert results["slow.txt"]["sha256"] == hashlib.sha256("".join(pieces).encode()).hexdigest()
    assert results["sub/dir/after.txt"]["_folder"] == "sub/dir/after.txt"
    assert not any("part" in s for s in results), results.keys()
    for manifest in results.values():
        check_folder(h.outbox, manifest)
        assert manifest["status"] == "done"


def test_batch_goes_out_at_max_requests(batchd_harness, batchd_emulator):
    h = batchd_harness({"batch": {"max_requests": 2, "max_wait": 3600}, "tasks": {"enabled": ["summarize"]}})
    h.start()
    h.drop({f"doc{i}.txt": f"Document number {i} about the harbour project." for i in range(4)})
    h.wait_for([f"doc{i}.txt" for i in range(4)])
    h.stop()
    sizes = sorted(c["request_count"] for c in batchd_emulator.record.created())
    assert sizes == [2, 2]


def test_batch_goes_out_at_max_wait_with_fewer(batchd_harness, batchd_emulator):
    h = batchd_harness({"batch": {"max_requests": 1000, "max_wait": 0.5}, "tasks": {"enabled": ["summarize"]}})
    h.start()
    h.drop({"lonely.txt": "Only one document today."})
    h.wait_for(["lonely.txt"])
    h.stop()
    created = batchd_emulator.record.created()
    assert [c["request_count"] for c in created] == [1]


def test_identical_documents_are_paid_once(batchd_harness, batchd_emulator):
    h = batchd_harness({"tasks": {"enabled": ["summarize", "classify"]}})
    text = "Quarterly revenue grew 12% while operating costs stayed flat."
    h.drop({"a.txt": text, "copies/b.txt": text})
    assert h.run_once() == 0
    results = h.results()
    reused = [t for m in results.values() for t in m["tasks"].values() if t["reused"]]
    fresh = [t for m in results.values() for t in m["tasks"].values() if not t["reused"]]
    assert len(reused) == 2 and len(fresh) == 2
    for t in reused:
        assert t["cost_usd"] == 0
        assert t["custom_id"] in {f["custom_id"] for f in fresh}
    keys = [b["reuse_key"] for b in batchd_emulator.record.billed()]
    assert len(keys) == len(set(keys)) == 2
    for m in results.values():
        check_manifest(m)
    # Across a restart, too: the same content later is not sent again.
    h.drop({"later.txt": text})
    assert h.run_once() == 0
    assert all(t["reused"] for t in h.results()["later.txt"]["tasks"].values())
    assert len(batchd_emulator.record.billed()) == 2


def test_outbox_names_collisions_and_odd_names(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    (h.outbox / "taken.txt").mkdir()
    (h.outbox / "taken.txt" / "someone-else.txt").write_text("not ours")
    names = {
        "taken.txt": "A file whose folder name is already used.",
        "summary.md": "A file named like an output.",
        "-leading dash.txt": "Leading dash.",
        "naïve café.txt": "Non-ASCII name.",
        "line\nbreak.txt": "A newline in the name.",
        ("x" * 251) + ".txt": "A 255-byte name.",
        "a/b/c/d/e/f/deep.txt": "Deep subfolders.",
    }
    h.drop(names)
    assert h.run_once() == 0
    results = h.results()
    assert set(results) == set(names)
    assert results["taken.txt"]["_folder"] == "taken.txt~2"
    assert (h.outbox / "taken.txt" / "someone-else.txt").read_text() == "not ours"
    assert results["summary.md"]["original"] == "original-summary.md"
    long_folder = results[("x" * 251) + ".txt"]["_folder"]
    assert len(long_folder.encode()) <= 255
    for manifest in results.values():
        check_folder(h.outbox, manifest)
        folder = (h.outbox / manifest["_folder"]).resolve()
        assert folder.is_relative_to(h.outbox.resolve())


def test_not_documents_are_left_alone(batchd_harness, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("A readable file outside the inbox.")
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"real.txt": "A real document."})
    (h.inbox / ".hidden.txt").write_text("hidden")
    (h.inbox / "draft.tmp").write_text("temp")
    (h.inbox / ".git").mkdir()
    (h.inbox / ".git" / "config.txt").write_text("inside an ignored folder")
    (h.inbox / "link.txt").symlink_to(outside)
    os.mkfifo(h.inbox / "pipe.txt")
    assert h.run_once() == 0
    assert set(h.results()) == {"real.txt"}
    for name in (".hidden.txt", "draft.tmp", ".git/config.txt", "link.txt", "pipe.txt"):
        assert os.path.lexists(h.inbox / name), name
    assert outside.read_text() == "A readable file outside the inbox."


def test_bad_files_fail_with_a_reason(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}, "watch": {"max_file_bytes": 1000}})
    h.drop({"empty.txt": b"", "junk.txt": bytes(range(256)) * 3, "big.txt": "x" * 2000})
    secret = h.inbox / "secret.txt"
    secret.write_text("no read permission")
    secret.chmod(0)
    try:
        assert h.run_once() == 0
    finally:
        secret.chmod(0o600) if secret.exists() else None
    results = h.results()
    if os.geteuid() == 0:  # root reads anything: the unreadable case only exists for other users
        assert results.pop("secret.txt")["status"] == "done"
    reasons = {s: m["error"] for s, m in results.items()}
    assert all(m["status"] == "failed" for m in results.values()), reasons
    assert "empty" in reasons["empty.txt"]
    assert "unsupported" in reasons["junk.txt"]
    assert "too large" in reasons["big.txt"] and "watch.max_file_bytes" in reasons["big.txt"]
    if os.geteuid() != 0:
        assert "permission denied" in reasons["secret.txt"]
    for manifest in results.values():
        check_folder(h.outbox, manifest)
        assert manifest["original"] is not None


def test_second_daemon_on_the_same_state_refuses(batchd_harness):
    from batchd.store import StateLocked

    h = batchd_harness()
    h.start()
    wait_until(lambda: h.daemon is not None and h.daemon.store is not None)
    with pytest.raises(StateLocked):
        h.build()
    h.stop()


def test_emulator_record_shows_our_prefix(batchd_harness, batchd_emulator):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"a.txt": "Hello there, this is a test document."})
    assert h.run_once() == 0
    task = h.results()["a.txt"]["tasks"]["summarize"]
    from batchd.store import Store

    store = Store(h.root / "state" / "batchd.db")
    try:
        assert task["custom_id"].startswith(store.prefix + "-")
    finally:
        store.close()
    assert [b["custom_id"] for b in batchd_emulator.record.billed()] == [task["custom_id"]]


def test_outbox_files_follow_the_umask(batchd_harness):
    old = os.umask(0o027)
    try:
        h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
        h.drop({"a.txt": "Readable by the group, not by the world."})
        assert h.run_once() == 0
    finally:
        os.umask(old)
    folder = h.outbox / "a.txt"
    for name in ("summary.md", "result.json"):
        assert (folder / name).stat().st_mode & 0o777 == 0o640, name
