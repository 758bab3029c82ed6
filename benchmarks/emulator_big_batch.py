"""How the emulator copes with a full-size batch: 100,000 requests in one create.

Starts ``python -m batchd.emulator`` as its own process, sends one create of N small
requests through the real SDK (as raw bytes, so that the SDK's own request building is
not what gets measured), polls until the batch has ended, streams the results back and
prints what it cost: body size, create time, time to end, results per second, and the
emulator's peak memory (VmHWM) next to the machine's core count.

    python benchmarks/emulator_big_batch.py [--requests 100000] [--words 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import anthropic
from anthropic.types.messages import MessageBatch

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("invoice payment contract patient server budget meeting schedule report customer delivery "
         "warranty clinic software account quarter revenue lawyer ticket update").split()


def _start_emulator() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "batchd.emulator", "--port", "0", "--processing-time", "0"],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline().strip()
    if not line.startswith("batchd emulator serving "):
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1]


def _body(count: int, words: int) -> bytes:
    requests = []
    for i in range(count):
        text = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(words))
        requests.append({"custom_id": f"req-{i:06d}", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 256,
            "messages": [{"role": "user", "content": f"Summarize note {i}. {text.capitalize()}."}]}})
    return json.dumps({"requests": requests}, separators=(",", ":")).encode()


def _download(base_url: str, path: str) -> int:
    """Bytes of a GET read in 64 KB pieces, without parsing them."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    connection.request("GET", path, headers={"x-api-key": "benchmark"})
    response = connection.getresponse()
    size = 0
    while chunk := response.read(1 << 16):
        size += len(chunk)
    connection.close()
    return size


def _memory_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=30, help="words of text per request")
    args = parser.parse_args()

    body = _body(args.requests, args.words)
    process, url = _start_emulator()
    idle = _memory_kb(process.pid)
    try:
        client = anthropic.Anthropic(api_key="benchmark", base_url=url, max_retries=0, timeout=600)
        started = time.perf_counter()
        batch = client.post("/v1/messages/batches", content=body, cast_to=MessageBatch,
                            options={"headers": {"Content-Type": "application/json"}})
        create_s = time.perf_counter() - started
        started = time.perf_counter()
        while batch.processing_status != "ended":
            time.sleep(0.2)
            batch = client.messages.batches.retrieve(batch.id)
        end_s = time.perf_counter() - started
        started = time.perf_counter()
        seen, size = set(), 0
        results = client.messages.batches.results(batch.id)
        for line in results:
            seen.add(line.custom_id)
        results_s = time.perf_counter() - started
        size = int(results.http_response.headers["content-length"])
        started = time.perf_counter()
        raw_size = _download(url, f"/v1/messages/batches/{batch.id}/results")
        raw_s = time.perf_counter() - started
        memory = _memory_kb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    if len(seen) != args.requests or batch.request_counts.succeeded != args.requests:
        raise SystemExit(f"expected {args.requests} results, got {len(seen)} ({batch.request_counts})")
    rows = [
        ("requests", f"{args.requests:,}"),
        ("create body", f"{len(body) / 1e6:.1f} MB"),
        ("create (parse, check, store)", f"{create_s:.2f} s"),
        ("create to ended (answers computed, billed)", f"{end_s:.2f} s"),
        ("results through the SDK's decoder", f"{size / 1e6:.1f} MB in {results_s:.2f} s = "
                                             f"{args.requests / results_s:,.0f} results/s"),
        ("results as raw bytes", f"{raw_size / 1e6:.1f} MB in {raw_s:.2f} s = {args.requests / raw_s:,.0f} results/s"),
        ("emulator RSS idle", f"{idle['VmRSS'] / 1024:.0f} MB"),
        ("emulator peak RSS (VmHWM)", f"{memory['VmHWM'] / 1024:.0f} MB = {memory['VmHWM'] * 1024 / len(body):.1f}x body"),
        ("cores", f"{os.cpu_count()} (usable {len(os.sched_getaffinity(0))})"),
        ("emulator exit code", str(code)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
