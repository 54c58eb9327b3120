#!/usr/bin/env python3
"""CPU by process name while a load runs: every second, each process's
utime + stime from /proc, summed by name (any name starting with "carelog"
counts as carelog); seconds in which wrk used less than 3 % are left out.
On SIGINT or SIGTERM prints one line: the mean % of one core per name over
the seconds kept (200 % is both cores of a 2-core machine)."""
import collections
import os
import signal
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
NAMES = ["carelog", "postgres", "mariadbd", "wrk"]


def snapshot():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        end = stat.rfind(")")
        name = stat[stat.find("(") + 1 : end].split(":")[0].split(" ")[0]
        if name.startswith("carelog"):
            name = "carelog"
        fields = stat[end + 2 :].split()
        out[int(pid)] = (name, int(fields[11]) + int(fields[12]))
    return out


def used(before, after, secs):
    by_name = collections.Counter()
    for pid, (name, ticks) in after.items():
        by_name[name] += ticks - before.get(pid, (name, 0))[1]
    return {n: 100.0 * t / HZ / secs for n, t in by_name.items()}


kept = []


def finish(*_):
    if kept:
        mean = {n: sum(k.get(n, 0.0) for k in kept) / len(kept) for n in NAMES}
        parts = " ".join(f"{n}={mean[n]:.0f}%" for n in NAMES)
        print(f"cpu over {len(kept)} s: {parts} total={sum(mean.values()):.0f}%", flush=True)
    sys.exit(0)


signal.signal(signal.SIGINT, finish)
signal.signal(signal.SIGTERM, finish)
before, at = snapshot(), time.time()
while True:
    time.sleep(1)
    after, now = snapshot(), time.time()
    pct = used(before, after, now - at)
    if pct.get("wrk", 0.0) > 3:
        kept.append(pct)
    before, at = after, now
