"""The plain script batchd is compared with: the same API work, no state, no watcher, no guarantees.

Reads every file of a folder, builds the same three requests per file as batchd's
built-in tasks (same params, so the API does the same work), sends one create per
``--max-requests`` requests, polls each batch until it has ended, streams its results
with the SDK and writes one JSON file per input file (``OUT/NAME/result.json`` holding
the answers). Nothing is recorded anywhere: a crash loses everything, a re-run pays
again. The key and the API's address come from ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_BASE_URL``, as for the SDK.

    python benchmarks/plain_baseline.py INBOX OUTBOX [--max-requests 1000] [--poll 0.05]

The create body is built as bytes and posted as is (as batchd does), so that the
baseline is not slowed down by the SDK's own request building; ``--sdk-create`` uses
``client.messages.batches.create(requests=[...])`` instead, as most scripts would.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import anthropic
from anthropic.types.messages import MessageBatch

from batchd.default_plugins.classify import Classify
from batchd.default_plugins.extract_contacts import ExtractContacts
from batchd.default_plugins.summarize import Summarize
from batchd.documents import Document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inbox", type=Path)
    parser.add_argument("outbox", type=Path)
    parser.add_argument("--max-requests", type=int, default=1000, help="requests per create call")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between two retrieves of a batch")
    parser.add_argument("--model", default="claude-haiku-4-5")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--sdk-create", action="store_true", help="create through the SDK's batches.create")
    args = parser.parse_args()

    client = anthropic.Anthropic(max_retries=3, timeout=600.0)
    tasks = [Summarize(), Classify(), ExtractContacts()]
    settings = [{"model": args.model, "max_tokens": args.max_tokens, **t.defaults} for t in tasks]

    # Read the files and send a create for every max_requests requests.
    names: list[str] = []
    batches: list[str] = []
    entries: list = []

    def create() -> None:
        if args.sdk_create:
            batch = client.messages.batches.create(requests=entries)
        else:
            body = b'{"requests":[' + b",".join(entries) + b"]}"
            batch = client.post("/v1/messages/batches", cast_to=MessageBatch, content=body,
                                options={"headers": {"Content-Type": "application/json"}})
        batches.append(batch.id)
        entries.clear()

    for root, _, files in os.walk(args.inbox):
        for name in sorted(files):
            path = Path(root) / name
            index = len(names)
            names.append(path.relative_to(args.inbox).as_posix())
            document = Document(kind="text", media_type="text/plain", text=path.read_bytes().decode("utf-8"))
            for t, (task, task_settings) in enumerate(zip(tasks, settings)):
                params = {"model": args.model, "max_tokens": args.max_tokens, **task.build(document, task_settings)}
                if args.sdk_create:
                    entries.append({"custom_id": f"r{index}-{t}", "params": params})
                else:
                    entries.append(b'{"custom_id":"r%d-%d","params":' % (index, t)
                                   + json.dumps(params, separators=(",", ":")).encode() + b"}")
                if len(entries) >= args.max_requests:
                    create()
    if entries:
        create()

    # Poll each batch until it has ended, stream its results, write a file's JSON once it has all.
    answers: dict[int, dict[str, dict]] = {}
    written = 0
    for batch_id in batches:
        while client.messages.batches.retrieve(batch_id).processing_status != "ended":
            time.sleep(args.poll)
        for line in client.messages.batches.results(batch_id):
            index, t = (int(x) for x in line.custom_id[1:].split("-"))
            got = answers.setdefault(index, {})
            got[tasks[t].name] = line.result.to_dict()
            if len(got) == len(tasks):
                folder = args.outbox / names[index]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "result.json").write_text(json.dumps({"source": names[index], "tasks": got}, indent=2))
                del answers[index]
                written += 1
    print(f"files {len(names)} batches {len(batches)} written {written}")


if __name__ == "__main__":
    main()
