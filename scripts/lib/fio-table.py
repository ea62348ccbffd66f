#!/usr/bin/env python3
"""Markdown tables from the lines the guest benchmarks collect, one backend after another:
  FIO <backend> <rw> <bs> <iodepth> <fio --minimal output>
  META <backend> <what> <ops/s>
  IDLE <backend> <percent of one CPU>
The first backend is vhostj's; each of its rows gets its ratio to the best of the others.
Usage: fio-table.py RESULTS PEER-NAME"""
import sys

results, peer = sys.argv[1], sys.argv[2]
rows, meta, idle = [], [], {}
for line in open(results):
    f = line.split()
    if not f:
        continue
    if f[0] == 'IDLE':
        idle[f[1]] = float(f[2])
        continue
    if f[0] == 'META':
        meta.append((f[1], f[2], float(f[3])))
        continue
    name, rw, bs, qd, terse = f[1], f[2], f[3], f[4], ' '.join(f[5:])
    t = terse.split(';')
    if len(t) < 90:
        rows.append((name, rw, bs, qd, None))
        continue
    base = 5 if 'read' in rw else 46          # read fields start at 6, write at 47 (1-based)
    iops = float(t[base + 2]); kb = float(t[base + 1])
    pct = [p.split('=') for p in t[base + 12: base + 32]]
    def at(q):
        for k, v in pct:
            if k.startswith(q):
                return float(v)
        return float('nan')
    rows.append((name, rw, bs, qd, (iops, kb / 1024, at('50.0'), at('99.0'))))

first = rows[0][0] if rows else (meta[0][0] if meta else None)
best = {}
for name, rw, bs, qd, v in rows:
    if v and name != first and v[0] > best.get((rw, bs, qd), (0, ''))[0]:
        best[(rw, bs, qd)] = (v[0], name)
if rows:
    print(f"| backend | rw | bs | iodepth | IOPS | MiB/s | p50 µs | p99 µs | vs best {peer} |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, rw, bs, qd, v in rows:
        if not v:
            print(f"| {name} | {rw} | {bs} | {qd} | fio failed | | | | |")
            continue
        ratio = ''
        if name == first and (rw, bs, qd) in best:
            ratio = f"{v[0] / best[(rw, bs, qd)][0]:.2f}× ({best[(rw, bs, qd)][1]})"
        print(f"| {name} | {rw} | {bs} | {qd} | {v[0]:.0f} | {v[1]:.1f} | {v[2]:.0f} | {v[3]:.0f} | {ratio} |")
if meta:
    mbest = {}
    for name, what, ops in meta:
        if name != first and ops > mbest.get(what, (0, ''))[0]:
            mbest[what] = (ops, name)
    print()
    print(f"| backend | metadata | ops/s | vs best {peer} |")
    print("|---|---|---:|---:|")
    for name, what, ops in meta:
        ratio = f"{ops / mbest[what][0]:.2f}× ({mbest[what][1]})" if name == first and what in mbest else ''
        print(f"| {name} | {what} | {ops:.0f} | {ratio} |")
if idle:
    print()
    print("| backend | CPU while the guest idles (10 s) |")
    print("|---|---:|")
    for name, c in idle.items():
        print(f"| {name} | {c:.2f} % of one CPU |")   # ticks of 1/100 s per second = percent
