"""Intake: N small text files already in the inbox -> every request queued; files per second.

The daemon (``batchd run``, its own process, against ``batchd emulate`` in its own
process) starts with the files already in the inbox. Batch thresholds are set out of
reach (max_wait, max_requests, max_bytes), so nothing is sent and what is measured is
intake alone: scan, settle, read, load, build the requests, record them in the state.
The benchmark polls the state file (read-only) until every request is queued, then
stops the daemon with SIGTERM and reads its peak RSS from wait4.

Target (issue #8): at least 2,000 files/s on 2 cores.

    python benchmarks/intake.py [--files 10000] [--quick]
"""

from __future__ import annotations

import argparse
import time

import _common as c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="a fast sanity run (1,000 files)")
    parser.add_argument("--settle", type=float, default=0.05, help="watch.settle (seconds)")
    parser.add_argument("--workdir", default=None, help="where to make the temporary workspace")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (state, log) afterwards")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    files = 1000 if args.quick else args.files
    requests = files * len(c.TASKS)

    c.print_header("intake", files=files, tasks="+".join(c.TASKS), settle=args.settle)
    with c.Emulator() as emu, c.Workspace(
            "intake", args.workdir, args.keep,
            batch={"max_requests": 100_000, "max_bytes": 256_000_000, "max_wait": 1e9},
            watch={"settle": args.settle}) as ws:
        size = c.write_files(ws.inbox, files)
        c.quiet_disk()
        daemon = c.daemon(ws, emu.url, once=False)
        deadline = time.monotonic() + args.timeout
        queued = 0
        while True:
            queued = ws.db_count("SELECT count(*) FROM requests WHERE state='queued'")
            if queued >= requests:
                all_queued = time.time()
                break
            if daemon.poll():
                raise SystemExit(f"the daemon exited ({daemon.code}) with {queued} requests queued:\n"
                                 + ws.log_tail())
            if time.monotonic() > deadline:
                daemon.kill()
                raise SystemExit(f"only {queued} of {requests} requests queued after {args.timeout:.0f} s")
            time.sleep(0.02)
        code = daemon.terminate()
        events = {}
        for event in ws.events("started", "document_taken"):
            events.setdefault(event["event"], []).append(c.timestamp(event))
        started = events["started"][0]
        taken = events.get("document_taken", [])
        if len(taken) != files:
            raise SystemExit(f"{len(taken)} document_taken events for {files} files")
        last = max(taken)

        from_launch = all_queued - daemon.started
        steady = last - started
        c.figure("files", f"{files:,} ({size / files:.0f} bytes each), {queued:,} requests queued")
        c.figure("start-up (launch to started: imports, state, scan)", f"{started - daemon.started:.2f} s")
        c.figure("intake (started to last document queued, incl. settle)", f"{steady:.2f} s = {files / steady:,.0f} files/s",
                 c.verdict(files / steady >= 2000, ">= 2,000 files/s"))
        c.figure("launch to every request queued", f"{from_launch:.2f} s = {files / from_launch:,.0f} files/s")
        c.figure("daemon peak RSS", c.mb(daemon.peak_kib))
        c.figure("daemon exit code after SIGTERM", str(code))


if __name__ == "__main__":
    main()
