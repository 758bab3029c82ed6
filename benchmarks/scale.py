"""Scale: end to end at 1,000 / 10,000 / 50,000 files; time must grow linearly, memory stay flat.

Each size is one ``batchd run --once`` (its own process, batch.max_requests 1000, the
three built-in tasks) against a fresh ``batchd emulate`` process with zero processing
time, timed from launch to exit; its peak RSS comes from wait4.

Targets (issue #8): time grows linearly, and peak memory stays flat: within 20% from
10,000 to 50,000 files, and under 300 MB. "Linearly" is checked two ways, each to
within 1.25x (a quadratic scan would show as several times): the time per file at the
largest size against that at 10,000, and the time each further file costs (start-up
left out) between the two largest sizes against between the two smallest.

    python benchmarks/scale.py [--sizes 1000,10000,50000] [--quick]
"""

from __future__ import annotations

import argparse

import _common as c
from end_to_end import run_batchd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated file counts")
    parser.add_argument("--max-requests", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a fast sanity run (500, 1,000, 2,000 files)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=7200)
    args = parser.parse_args()
    sizes = [500, 1000, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]

    c.print_header("scale", sizes="/".join(f"{s:,}" for s in sizes), tasks="+".join(c.TASKS),
                   max_requests=args.max_requests, settle=0.05, poll_initial=0.05)
    runs = {}
    for size in sizes:
        run = run_batchd(size, args.max_requests, args.workdir, args.keep, args.timeout)
        runs[size] = run
        c.figure(f"{size:>6,} files", f"{run['wall']:7.2f} s = {size / run['wall']:5,.0f} files/s, "
                                      f"{run['wall'] / size * 1000:.2f} ms/file, peak RSS {c.mb(run['peak_kib'])}")
    ref = 10_000 if 10_000 in runs else sizes[len(sizes) // 2]
    top = max(sizes)
    if top != ref:
        growth = (runs[top]["wall"] / top) / (runs[ref]["wall"] / ref)
        c.figure(f"time per file, {top:,} vs {ref:,}", f"{growth:.2f}x", c.verdict(growth <= 1.25, "<= 1.25x (linear)"))
    ordered = sorted(sizes)
    if len(ordered) >= 3:
        # The cost of each further file, start-up left out: between the two smallest sizes
        # and between the two largest.
        (a, b), (y, z) = ordered[:2], ordered[-2:]
        low = (runs[b]["wall"] - runs[a]["wall"]) / (b - a)
        high = (runs[z]["wall"] - runs[y]["wall"]) / (z - y)
        c.figure(f"time per further file, {y:,}->{z:,} vs {a:,}->{b:,}",
                 f"{high * 1000:.2f} vs {low * 1000:.2f} ms = {high / low:.2f}x",
                 c.verdict(high / low <= 1.25, "<= 1.25x (linear)"))
        mem = runs[top]["peak_kib"] / runs[ref]["peak_kib"] - 1
        c.figure(f"peak RSS, {top:,} vs {ref:,}", f"{mem * 100:+.0f}%", c.verdict(mem <= 0.20, "within 20%"))
    peak = max(r["peak_kib"] for r in runs.values())
    c.figure("largest peak RSS", c.mb(peak), c.verdict(peak < 300 * 1024, "< 300 MB"))


if __name__ == "__main__":
    main()
