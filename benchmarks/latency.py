"""Latency: a file dropped into a running daemon is queued within watch.settle + 0.5 s.

Starts ``batchd run`` (its own process, watch.settle 1.0 as by default, inotify)
against a ``batchd emulate`` process, waits until it has started, then drops N files
one at a time, ``--gap`` seconds apart, each written under a hidden temporary name and
renamed into place (as a careful user or program does). A file's latency is the time
from the end of its rename to the daemon's ``document_taken`` log event for it, which
is logged right after the transaction that queued its requests has committed.

Target (issue #8): median and 99th percentile within watch.settle + 0.5 s.

    python benchmarks/latency.py [--files 200] [--gap 0.1] [--settle 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import _common as c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between two drops")
    parser.add_argument("--settle", type=float, default=1.0, help="watch.settle (seconds)")
    parser.add_argument("--polling", action="store_true", help="watch.polling = true (the polling observer)")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run (30 files)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    files = 30 if args.quick else args.files
    bound = args.settle + 0.5

    c.print_header("latency", files=files, gap=args.gap, settle=args.settle, polling=args.polling,
                   tasks="+".join(c.TASKS))
    with c.Emulator() as emu, c.Workspace("latency", args.workdir, args.keep,
                                          watch={"settle": args.settle, "polling": args.polling}) as ws:
        c.quiet_disk()
        daemon = c.daemon(ws, emu.url, once=False)
        deadline = time.monotonic() + args.timeout
        while not any(True for _ in ws.events("started")):
            if daemon.poll() or time.monotonic() > deadline:
                daemon.kill()
                raise SystemExit(f"the daemon did not start:\n{ws.log_tail()}")
            time.sleep(0.05)
        time.sleep(0.5)

        dropped: dict[str, float] = {}
        for i in range(files):
            name = c.file_name(i)
            fd, tmp = tempfile.mkstemp(prefix=".drop-", dir=ws.inbox)
            with os.fdopen(fd, "wb") as f:
                f.write(c.text_for(i).encode())
            os.rename(tmp, ws.inbox / name)
            dropped[name] = time.time()
            time.sleep(args.gap)

        taken: dict[str, float] = {}
        while len(taken) < files:
            taken = {e["document"]: c.timestamp(e) for e in ws.events("document_taken")}
            if daemon.poll() or time.monotonic() > deadline:
                daemon.kill()
                raise SystemExit(f"{len(taken)} of {files} files taken within {args.timeout:.0f} s:\n{ws.log_tail()}")
            time.sleep(0.1)
        code = daemon.terminate()

        latencies = [taken[name] - at for name, at in dropped.items()]
        med, p99 = c.median(latencies), c.percentile(latencies, 99)
        c.figure("files dropped", f"{files} over {files * args.gap:.1f} s")
        c.figure("latency median", f"{med:.3f} s", c.verdict(med <= bound, f"<= settle + 0.5 = {bound:.1f} s"))
        c.figure("latency p99", f"{p99:.3f} s", c.verdict(p99 <= bound, f"<= settle + 0.5 = {bound:.1f} s"))
        c.figure("latency min / max", f"{min(latencies):.3f} s / {max(latencies):.3f} s")
        c.figure("daemon peak RSS", c.mb(daemon.peak_kib))
        c.figure("daemon exit code after SIGTERM", str(code))


if __name__ == "__main__":
    main()
