"""End to end: N files -> every result.json written, next to a plain script doing the same API work.

Two runs over the same N files, each against its own fresh ``batchd emulate`` process
(zero processing time), each timed from the launch of its process to its exit:

- the plain script (``plain_baseline.py``): read the files, one create per 1,000
  requests, poll, stream the results, write one JSON per file; no state, no watcher,
  no guarantees;
- ``batchd run --once`` with batch.max_requests 1000: every file taken, batched,
  polled, its results streamed into the state, its outbox folder written (outputs,
  original moved, result.json last).

Target (issue #8): batchd within 1.5x of the plain script's wall time. The plain script
posts its create bodies as prebuilt bytes, as batchd does (the stricter comparison);
``--sdk-baseline`` also times it with the SDK's ``batches.create``, as most scripts would.

    python benchmarks/end_to_end.py [--files 10000] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common as c

HERE = Path(__file__).resolve().parent


def run_batchd(files: int, max_requests: int, workdir: str | None, keep: bool, timeout: float) -> dict:
    """``batchd run --once`` over ``files`` files; wall, peak RSS and the phases from its log."""
    with c.Emulator() as emu, c.Workspace("e2e", workdir, keep, batch={"max_requests": max_requests}) as ws:
        daemon = c.run_once(ws, emu.url, files, timeout)
        times: dict[str, list[float]] = {}
        collected = []
        for event in ws.events():
            times.setdefault(event["event"], []).append(c.timestamp(event))
            if event["event"] == "batch_collected" and "seconds" in event:
                collected.append((event["results"], event["seconds"]))
        return {"wall": daemon.wall, "peak_kib": daemon.peak_kib, "emulator_kib": emu.peak_kib(),
                "launch": daemon.started, "times": times, "collected": collected}


def run_baseline(files: int, max_requests: int, workdir: str | None, keep: bool, timeout: float,
                 sdk_create: bool = False) -> dict:
    with c.Emulator() as emu, c.Workspace("plain", workdir, keep) as ws:
        c.write_files(ws.inbox, files)
        c.quiet_disk()
        child = c.python_script(HERE / "plain_baseline.py",
                                [str(ws.inbox), str(ws.outbox), "--max-requests", str(max_requests)]
                                + (["--sdk-create"] if sdk_create else []),
                                emu.url, log_path=ws.log)
        code = child.wait(timeout)
        results = ws.results()
        if code != 0 or results != files:
            raise SystemExit(f"the plain script exited {code} with {results} of {files} result.json:\n{ws.log_tail()}")
        return {"wall": child.wall, "peak_kib": child.peak_kib, "emulator_kib": emu.peak_kib()}


def print_phases(run: dict) -> None:
    """Where batchd's time went, from its own log."""
    t = run["times"]
    launch = run["launch"]

    def at(name: str, which=min) -> float:
        return which(t[name]) - launch

    c.figure("  start-up (launch to started)", f"{at('started'):.2f} s")
    c.figure("  intake (started to last document_taken)", f"{at('document_taken', max) - at('started'):.2f} s")
    c.figure("  first create sent / last create sent", f"{at('batch_submitting'):.2f} s / {at('batch_submitted', max):.2f} s")
    c.figure("  last batch collected", f"{at('batch_collected', max):.2f} s")
    c.figure("  first / last document_finished", f"{at('document_finished'):.2f} s / {at('document_finished', max):.2f} s")
    if run["collected"]:
        n = sum(r for r, _ in run["collected"])
        s = sum(s for _, s in run["collected"])
        c.figure("  results streamed into the state", f"{n:,} in {s:.2f} s = {n / s:,.0f} results/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=1000, help="batch.max_requests, and the plain script's")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run (1,000 files)")
    parser.add_argument("--workdir", default=None, help="where to make the temporary workspaces")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces afterwards")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of both runs; the ratio is of the medians")
    parser.add_argument("--sdk-baseline", action="store_true",
                        help="also time the plain script with the SDK's batches.create (as most scripts would)")
    args = parser.parse_args()
    files = 1000 if args.quick else args.files

    c.print_header("end to end", files=files, tasks="+".join(c.TASKS), max_requests=args.max_requests,
                   settle=0.05, poll_initial=0.05, repeat=args.repeat)
    plains, batchds, sdks = [], [], []
    for round_ in range(1, args.repeat + 1):
        tag = f" (round {round_})" if args.repeat > 1 else ""
        plain = run_baseline(files, args.max_requests, args.workdir, args.keep, args.timeout)
        plains.append(plain["wall"])
        c.figure("plain script" + tag, f"{plain['wall']:.2f} s = {files / plain['wall']:,.0f} files/s, "
                                       f"peak RSS {c.mb(plain['peak_kib'])}")
        batchd = run_batchd(files, args.max_requests, args.workdir, args.keep, args.timeout)
        batchds.append(batchd["wall"])
        c.figure("batchd run --once" + tag, f"{batchd['wall']:.2f} s = {files / batchd['wall']:,.0f} files/s, "
                                            f"peak RSS {c.mb(batchd['peak_kib'])}")
        print_phases(batchd)
        if args.sdk_baseline:
            sdk = run_baseline(files, args.max_requests, args.workdir, args.keep, args.timeout, sdk_create=True)
            sdks.append(sdk["wall"])
            c.figure("plain script with the SDK's batches.create" + tag,
                     f"{sdk['wall']:.2f} s, peak RSS {c.mb(sdk['peak_kib'])}")
        c.figure("emulator peak RSS (plain run / batchd run)",
                 f"{c.mb(plain['emulator_kib'])} / {c.mb(batchd['emulator_kib'])}")
    ratio = c.median(batchds) / c.median(plains)
    what = "batchd / plain script" + (" (medians)" if args.repeat > 1 else "")
    c.figure(what, f"{ratio:.2f}x", c.verdict(ratio <= 1.5, "<= 1.5x"))
    if sdks:
        c.figure("batchd / plain script with the SDK's batches.create", f"{c.median(batchds) / c.median(sdks):.2f}x")

if __name__ == "__main__":
    main()
