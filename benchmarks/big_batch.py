"""Biggest batch: one create call of 100,000 requests; the daemon's peak memory and results speed.

``batchd run --once`` (its own process) over ceil(R / 3) files with the three built-in
tasks, batch.max_requests = R (100,000 by default, the API's cap) and batch.max_bytes
256 MB (the API's cap), against a fresh ``batchd emulate`` process with zero processing
time: the first create carries exactly R requests (a second one the 1 or 2 left over).

The "constant" is the daemon's peak RSS over the same files with batch.max_requests
1000 (same work, small bodies), measured first in the same run; what the big batch
adds on top of it is compared with the size of its create body. The results speed is
the daemon's own figure (``batch_collected``: results streamed and recorded in the
state, per second).

Targets (issue #8): peak memory at most twice the request body plus a constant;
results of 100,000 requests streamed at least 5,000/s.

    python benchmarks/big_batch.py [--requests 100000] [--quick] [--no-reference]
"""

from __future__ import annotations

import argparse

import _common as c


def run(files: int, max_requests: int, workdir: str | None, keep: bool, timeout: float) -> dict:
    with c.Emulator() as emu, c.Workspace("big", workdir, keep,
                                          batch={"max_requests": max_requests, "max_bytes": 256_000_000}) as ws:
        daemon = c.run_once(ws, emu.url, files, timeout)
        submitting, submitted, collected = {}, {}, {}
        for event in ws.events("batch_submitting", "batch_submitted", "batch_collected"):
            if event["event"] == "batch_submitting":
                submitting[event["batch"]] = (event["requests"], event["bytes"], c.timestamp(event))
            elif event["event"] == "batch_submitted":
                submitted[event["batch"]] = c.timestamp(event)
            else:
                collected[event["batch"]] = (event["results"], event.get("seconds"), c.timestamp(event))
        return {"wall": daemon.wall, "peak_kib": daemon.peak_kib, "emulator_kib": emu.peak_kib(),
                "submitting": submitting, "submitted": submitted, "collected": collected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests in the one big create")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run (10,000 requests)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference run (max_requests 1000) that gives the constant")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=7200)
    args = parser.parse_args()
    requests = 10_000 if args.quick else args.requests
    per_file = len(c.TASKS)
    files = -(-requests // per_file)

    c.print_header("biggest batch", requests=f"{requests:,}", files=f"{files:,}", tasks="+".join(c.TASKS),
                   max_bytes="256,000,000", poll_initial=0.05)
    reference = None
    if not args.no_reference:
        reference = run(files, 1000, args.workdir, args.keep, args.timeout)
        c.figure("reference: same files, max_requests 1000", f"{reference['wall']:.2f} s, "
                                                             f"peak RSS {c.mb(reference['peak_kib'])}")
    big = run(files, requests, args.workdir, args.keep, args.timeout)
    first = min(big["submitting"])
    count, body, sent_at = big["submitting"][first]
    if count != requests:
        raise SystemExit(f"the first create carried {count} requests, not {requests}")
    c.figure("big run: wall (launch to exit)", f"{big['wall']:.2f} s")
    c.figure("create body", f"{count:,} requests, {body / 1e6:.1f} MB ({body / count:,.0f} bytes/request)")
    c.figure("create call (body sent, batch accepted)", f"{big['submitted'][first] - sent_at:.2f} s")
    c.figure("daemon peak RSS", c.mb(big["peak_kib"]))
    if reference is not None:
        extra = (big["peak_kib"] - reference["peak_kib"]) * 1024
        c.figure("peak RSS above the constant (reference run)", f"{extra / 1e6:.0f} MB = {extra / body:.2f}x the body",
                 c.verdict(extra <= 2 * body, "<= 2x body + constant"))
    results, seconds, _ = big["collected"][first]
    if seconds:
        rate = results / seconds
        c.figure("results streamed into the state", f"{results:,} in {seconds:.2f} s = {rate:,.0f} results/s",
                 c.verdict(rate >= 5000, ">= 5,000 results/s"))
    c.figure("emulator peak RSS", c.mb(big["emulator_kib"]))


if __name__ == "__main__":
    main()
