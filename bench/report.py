#!/usr/bin/env python3
"""make bench: turn the guests' samples into bench/results.json, the
generated part of BENCHMARKS.md (between the bench:begin/bench:end markers)
and bench/*.png (gnuplot).

Raw input: one file per guest run (scripts/vm-run --results), sections
"@begin NAME" / "@t KEY VALUE" / "@end NAME RC".  Every figure is a ratio of
two medians measured in the same `make bench` run; spreads are min..max and
the interquartile range of the samples.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys


IDLE_FUNCTIONS = {"do_idle", "lapic_next_event", "default_idle", "default_idle_call",
                  "pv_native_safe_halt", "schedule_idle", "cpu_idle_poll", "arch_cpu_idle"}


def parse_raw(path):
    sections, cur = {}, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("@begin "):
                cur = sections.setdefault(line.split()[1], {"rc": None, "samples": {}})
            elif line.startswith("@end "):
                parts = line.split()
                if cur is not None and len(parts) >= 3:
                    cur["rc"] = int(parts[2])
                cur = None
            elif line.startswith("@t ") and cur is not None:
                parts = line.split()
                if len(parts) != 3:
                    continue
                try:
                    value = int(parts[2])
                except ValueError:
                    cur["samples"].setdefault(parts[1], []).append(parts[2])
                    continue
                cur["samples"].setdefault(parts[1], []).append(value)
    return sections


def stats(samples):
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return None
    if n >= 4:
        q = statistics.quantiles(s, n=4, method="inclusive")
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = s[0], s[-1]
    return {"n": n, "samples": samples, "median": statistics.median(s),
            "min": s[0], "max": s[-1], "q1": q1, "q3": q3}


# The placement step maps and touches 64 MiB of 4 KiB pages (guest-run).
PLACE_PAGES = 64 * 2**20 // 4096


def get(runs, label, section, key):
    try:
        return runs[label][section]["samples"][key]
    except KeyError:
        return []


def ratio_block(num, den):
    """Ratio of medians, with the extreme ratios the samples allow."""
    a, b = stats(num), stats(den)
    if not a or not b or not b["median"]:
        return None
    return {"ratio": a["median"] / b["median"],
            "low": a["min"] / b["max"], "high": a["max"] / b["min"],
            "numerator": a, "denominator": b}


def place_ratio(runs, label):
    """MPOL_BIND over default of a run's placement step, with the ratios of
    its sample pairs (they alternate, so each pair ran back to back)."""
    bind = get(runs, label, "place", "place_bind_ns")
    dflt = get(runs, label, "place", "place_default_ns")
    r = ratio_block(bind, dflt)
    if r:
        r["paired"] = stats([a / b for a, b in zip(bind, dflt)])
    return r


def fmt_pct(r):
    return f"{(r - 1) * 100:+.2f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--qemu", default="")
    ap.add_argument("--host-cpu", default="")
    ap.add_argument("--commit", default="")
    ap.add_argument("--plotdata", default=None, help="gnuplot input files (default OUT/.plotdata)")
    args = ap.parse_args()

    runs, run_info = {}, {}
    with open(args.runs) as f:
        for line in f:
            p = line.split()
            if len(p) < 8:
                continue
            label, kernel, plan, mode, devices, ram, rc, secs = p[:8]
            run_info[label] = {"kernel": kernel, "plan": plan, "mode": mode,
                               "devices_mib": devices, "node0_mib": int(ram),
                               "exit_status": int(rc), "wall_seconds": int(secs)}
            path = os.path.join(args.raw, label + ".txt")
            runs[label] = parse_raw(path) if os.path.exists(path) else {}
            info = runs[label].get("info", {}).get("samples", {})
            run_info[label]["uname_r"] = " ".join(map(str, info.get("uname_r", [])))

    res = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": args.commit, "qemu": args.qemu, "host_cpu": args.host_cpu,
        "make_bench_seconds": args.elapsed,
        "icount": "-icount shift=0,sleep=off: guest time advances 1 ns per "
                  "guest instruction, so guest-time ratios are instruction ratios",
        "runs": run_info, "isolation": {}, "placement": {}, "evacuation": {},
        "scaling": {}, "writers": {}, "memory_overhead": {}, "large": {}, "goals": [],
    }
    modes = [m for m in ("icount", "wall") if f"{m}-ours-main" in runs]

    # 1. Isolation: the fast path, ours (two CDM nodes online) vs stock.
    micro = [("fault4k", "fault_4k_ns", "touch 64 MiB anon, 4 KiB pages"),
             ("faultthp", "fault_thp_ns", "touch 128 MiB anon, THP"),
             ("fork", "fork_exit_ns", "200 x fork + exit + wait"),
             ("tmpfs", "tmpfs_write_ns", "write 64 MiB tmpfs file")]
    for m in modes:
        res["isolation"][m] = {}
        for sec, key, what in micro:
            r = ratio_block(get(runs, f"{m}-ours-main", sec, key),
                            get(runs, f"{m}-stock-main", sec, key))
            if r:
                r["what"] = what
                res["isolation"][m][sec] = r

    # 2. Placement: MPOL_BIND to a CDM node vs node 0 under the default policy.
    # On stock, node 1 is an ordinary hot-added node: the same ratio without
    # the series says what MPOL_BIND to a memory-only node costs anyway.
    for m in modes:
        for side in ("ours", "stock"):
            r = place_ratio(runs, f"{m}-{side}-main")
            if r:
                res["placement"].setdefault(m, {})[side] = r

    # 2b. Our share of a bound fault: the placement-only guests (plan
    # place, one vCPU), quieter than the main plan's step (BENCHMARKS.md).
    # Under icount a nanosecond is an instruction.
    share = {}
    for side in ("ours", "stock"):
        r = place_ratio(runs, f"icount-{side}-place")
        if r:
            share[side] = r
    if "ours" in share and "stock" in share:
        o, s = share["ours"], share["stock"]
        share["pages"] = PLACE_PAGES
        share["share"] = o["ratio"] / s["ratio"] - 1
        share["bound_minus_stock_per_page"] = \
            (o["numerator"]["median"] - s["numerator"]["median"]) / PLACE_PAGES
        share["unbound_minus_stock_per_page"] = \
            (o["denominator"]["median"] - s["denominator"]["median"]) / PLACE_PAGES
    res["placement_share"] = share

    # 3. Evacuation throughput.
    for m in modes:
        res["evacuation"][m] = {}
        for kind in ("anon4k", "thp", "shmem"):
            e = {}
            for side in ("ours", "stock"):
                label = f"{m}-{side}-main"
                sec = f"evac_{kind}"
                nbytes = get(runs, label, sec, f"evac_{kind}_bytes")
                ns = get(runs, label, sec, f"evac_{kind}_ns")
                mc = get(runs, label, sec, f"memcpy_{kind}_ns")
                if not ns or not nbytes:
                    continue
                mib = nbytes[0] / 2**20
                e[side] = {
                    "bytes": nbytes[0],
                    "evac_ns": stats(ns),
                    "evac_mib_s": stats([mib / (t / 1e9) for t in ns]),
                    "memcpy_mib_s": stats([mib / (t / 1e9) for t in mc]),
                    "movsb_mib_s": stats([mib / (t / 1e9) for t in get(runs, label, sec, f"movsb_{kind}_ns")]),
                    "thp_before": stats(get(runs, label, sec, f"evac_{kind}_thp_before")),
                    "thp_after": stats(get(runs, label, sec, f"evac_{kind}_thp_after")),
                    "thp_split": stats(get(runs, label, sec, f"evac_{kind}_thp_migration_split")),
                    "pages_left_on_node": sum(get(runs, label, sec, f"evac_{kind}_pages_left_on_node")),
                    "pages_corrupt": sum(get(runs, label, sec, f"evac_{kind}_pages_corrupt")),
                }
            if "ours" in e and "stock" in e:
                e["ours_vs_stock"] = ratio_block(get(runs, f"{m}-stock-main", f"evac_{kind}", f"evac_{kind}_ns"),
                                                 get(runs, f"{m}-ours-main", f"evac_{kind}", f"evac_{kind}_ns"))
            if "ours" in e and e["ours"]["memcpy_mib_s"]:
                e["ours_vs_memcpy"] = e["ours"]["evac_mib_s"]["median"] / e["ours"]["memcpy_mib_s"]["median"]
            if "ours" in e and e["ours"]["movsb_mib_s"]:
                e["ours_vs_movsb"] = e["ours"]["evac_mib_s"]["median"] / e["ours"]["movsb_mib_s"]["median"]
            res["evacuation"][m][kind] = e

    # 4. Scaling with device size, and with concurrent writers.
    for m in modes:
        for side in ("ours", "stock"):
            pts = []
            for label in runs:
                if not label.startswith(f"{m}-{side}-scaling"):
                    continue
                for sec, body in runs[label].items():
                    if not sec.startswith("scale_"):
                        continue
                    size = int(sec.split("_")[1])
                    ns = body["samples"].get("evac_anon4k_ns", [])
                    nb = body["samples"].get("evac_anon4k_bytes", [0])
                    if ns:
                        pts.append({"device_mib": size, "filled_bytes": nb[0], "evac_ns": stats(ns),
                                    "evac_mib_s": stats([nb[0] / 2**20 / (t / 1e9) for t in ns])})
            if pts:
                res["scaling"].setdefault(m, {})[side] = sorted(pts, key=lambda p: p["device_mib"])
    for m in modes:
        label = f"{m}-ours-main"
        w = {}
        base = get(runs, label, "evac_anon4k", "evac_anon4k_ns")
        if base:
            w["0"] = {"evac_ns": stats(base)}
        for n in (1, 2, 4):
            sec = f"evac_writers{n}"
            ns = get(runs, label, sec, f"evac_anon4k_w{n}_ns")
            if not ns:
                continue
            w[str(n)] = {"evac_ns": stats(ns),
                         "stall_before_ns": stats(get(runs, label, sec, f"stall_w{n}_before_ns")),
                         "stall_during_ns": stats(get(runs, label, sec, f"stall_w{n}_during_ns"))}
            # Every gap of 20 us or more during the evacuation, per writer
            # and run: how many, and their percentiles.
            for k in ("count", "p50_ns", "p90_ns", "p99_ns"):
                v = get(runs, label, sec, f"stalls_w{n}_{k}")
                if v:
                    w[str(n)][f"stalls_{k}"] = stats(v)
        res["writers"][m] = w

    # 5. Memory overhead per GiB of device memory.
    for m in modes:
        res["memory_overhead"][m] = {}
        for side in ("ours", "stock"):
            label = f"{m}-{side}-main"
            pre = runs.get(label, {}).get("memsnap_pre", {}).get("samples", {})
            post = runs.get(label, {}).get("memsnap_post", {}).get("samples", {})
            if not pre or not post:
                continue
            d = lambda k: post[f"post_{k}"][0] - pre[f"pre_{k}"][0]
            added_gib = d("MemTotal_kb") / 2**20
            if added_gib <= 0:
                continue
            res["memory_overhead"][m][side] = {
                "device_gib_added": added_gib,
                "kernel_kib_per_gib": (-d("node0_MemFree_kb")) / added_gib,
                "memmap_kib_per_gib": d("nr_memmap_pages") * 4 / added_gib,
                "slab_kib_per_gib": d("Slab_kb") / added_gib,
                "percpu_kib_per_gib": d("Percpu_kb") / added_gib,
                "vmalloc_kib_per_gib": d("VmallocUsed_kb") / added_gib,
            }

    # 6. Large devices (plan large, ours): 64 and 2 GiB with their struct
    # pages on the device; hot-add, RAM per GiB, 1 GiB evacuated from each.
    for m in modes:
        secs = runs.get(f"{m}-ours-large", {})
        smp = lambda sec, k: secs.get(sec, {}).get("samples", {}).get(k)
        pre, post = secs.get("memsnap_pre", {}).get("samples", {}), secs.get("memsnap_post", {}).get("samples", {})
        evac = {}
        for sec, body in secs.items():
            ns = body.get("samples", {}).get("evac_anon4k_ns")
            if sec.startswith("large_evac_") and ns:
                evac[int(sec.split("_")[2])] = stats(ns)
        if not secs or not pre or not post:
            continue
        added_kb = post["post_MemTotal_kb"][0] - pre["pre_MemTotal_kb"][0]
        o = {"device_gib_added": added_kb / 2**20,
             "ram_kib_per_gib": (pre["pre_node0_MemFree_kb"][0] - post["post_node0_MemFree_kb"][0]) / (added_kb / 2**20),
             "hotadd_ns": stats(smp("large_hotadd", "hotadd_ns") or []),
             "touch_1g_ns": stats(smp("large_touch", "place_default_ns") or []),
             "evac_1g_ns_by_node_mib": {str(k): v for k, v in sorted(evac.items())}}
        if o["hotadd_ns"] and o["touch_1g_ns"]:
            o["hotadd_vs_touch_1g"] = o["hotadd_ns"]["median"] / o["touch_1g_ns"]["median"]
        if len(evac) >= 2:
            big, small = max(evac), min(evac)
            o["evac_big_vs_small"] = evac[big]["median"] / evac[small]["median"]
            o["evac_big_mib"], o["evac_small_mib"] = big, small
        res["large"][m] = o

    # 7. Parallel copy (plan parallel, ours, wall): copy_workers 1 and 2
    # interleaved, in two guests whose samples are pooled: how many 2 MiB
    # copies alias in QEMU's TLB differs from guest to guest (BENCHMARKS.md
    # 4b).  The goal is the ratio of the pooled medians, as for every other
    # goal; the ratio of the fastest samples and each guest's are reported.
    for m in modes:
        guests = [lb for lb in runs if lb == f"{m}-ours-parallel" or lb.startswith(f"{m}-ours-parallel-")]
        secs = {}
        for lb in sorted(guests):
            for sec, body in runs[lb].items():
                into = secs.setdefault(sec, {"samples": {}})["samples"]
                for k, v in body.get("samples", {}).items():
                    into.setdefault(k, []).extend(v)
        par = {}
        for kind in ("anon4k", "thp"):
            def evac(lb_secs, w, kind=kind):
                return lb_secs.get(f"par_{kind}_w{w}", {}).get("samples", {}).get(f"evac_{kind}_ns", [])
            r = ratio_block(evac(secs, 1), evac(secs, 2))
            if r:
                r["fastest"] = r["numerator"]["min"] / r["denominator"]["min"]
                per_guest = {lb: ratio_block(evac(runs[lb], 1), evac(runs[lb], 2)) for lb in sorted(guests)}
                r["by_guest"] = {lb: g["ratio"] for lb, g in per_guest.items() if g}
                by = secs[f"par_{kind}_w1"]["samples"].get(f"evac_{kind}_bytes", [0])[0]
                par[kind] = {"serial_vs_parallel": r, "bytes": by,
                             "thp_after_w1": stats(secs[f"par_{kind}_w1"]["samples"].get(f"evac_{kind}_thp_after", [])),
                             "thp_after_w2": stats(secs[f"par_{kind}_w2"]["samples"].get(f"evac_{kind}_thp_after", []))}
        if par:
            res.setdefault("parallel", {})[m] = par
        al = secs.get("tlbalias", {}).get("samples", {})
        if al.get("tlbalias_bytes") and al.get("tlbalias_aliased_movsb_ns"):
            mib = al["tlbalias_bytes"][0] / 2**20
            res.setdefault("tlbalias", {})[m] = {
                "mib": mib,
                "aliased_mib_s": stats([mib / (t / 1e9) for t in al["tlbalias_aliased_movsb_ns"]]),
                "offset_mib_s": stats([mib / (t / 1e9) for t in al["tlbalias_offset_movsb_ns"]])}

    # Function profiles (ftrace, graph time: callees included).
    for label, secs in runs.items():
        for sec, body in secs.items():
            if not sec.startswith("prof_"):
                continue
            rows = []
            for item in body["samples"].get("prof", []):
                f, hits, us = str(item).rsplit(":", 2)
                # An idle vCPU's self time is the clock warping over
                # sleep=off idle periods, not instructions.
                if f in IDLE_FUNCTIONS:
                    continue
                rows.append({"function": f, "hits": int(hits), "us": float(us)})
            res.setdefault("profiles", {}).setdefault(label, {})[sec] = rows

    # Goals, per mode: icount is the repeatable figure, wall the plain one.
    goals = res["goals"]

    def goal(name, values, ok):
        row = {"goal": name}
        for m in modes:
            v = values(m)
            if v is not None:
                row[m] = {"value": v[0], "met": ok(v[1])}
        if len(row) > 1:
            goals.append(row)

    for sec, _, what in micro:
        goal(f"isolation overhead <= 1%: {what}",
             lambda m, sec=sec: (fmt_pct(res["isolation"][m][sec]["ratio"]), res["isolation"][m][sec]["ratio"])
             if sec in res["isolation"].get(m, {}) else None, lambda r: r <= 1.01)
    goal("placement: MPOL_BIND on a CDM node / node 0 default <= 1.05",
         lambda m: (f"{res['placement'][m]['ours']['ratio']:.3f}", res["placement"][m]["ours"]["ratio"])
         if "ours" in res["placement"].get(m, {}) else None, lambda r: r <= 1.05)
    goal("our share of a bound fault: (ours bind / default) / (stock bind / default) - 1 <= 0.2%",
         lambda m: (f"{res['placement_share']['share'] * 100:+.3f}%", res["placement_share"]["share"])
         if m == "icount" and "share" in res["placement_share"] else None, lambda r: r <= 0.002)
    for kind in ("anon4k", "thp", "shmem"):
        goal(f"evacuation {kind}: >= 1.0x stock offline_and_remove_memory()",
             lambda m, kind=kind: (f"{res['evacuation'][m][kind]['ours_vs_stock']['ratio']:.3f}x",
                                   res["evacuation"][m][kind]["ours_vs_stock"]["ratio"])
             if res["evacuation"].get(m, {}).get(kind, {}).get("ours_vs_stock") else None,
             lambda r: r >= 1.0)
    goal("evacuation thp: >= 50% of memcpy bandwidth",
         lambda m: (f"{res['evacuation'][m]['thp']['ours_vs_memcpy'] * 100:.1f}%",
                    res["evacuation"][m]["thp"]["ours_vs_memcpy"])
         if "ours_vs_memcpy" in res["evacuation"].get(m, {}).get("thp", {}) else None,
         lambda r: r >= 0.5)
    goal("longest writer gap during evacuation, 1 writer (median of runs) <= 10 ms",
         lambda m: (f"{ms(res['writers'][m]['1']['stall_during_ns']['median']):.1f} ms",
                    res["writers"][m]["1"]["stall_during_ns"]["median"])
         if res["writers"].get(m, {}).get("1", {}).get("stall_during_ns") else None,
         lambda v: v <= 10e6)
    lg = lambda m, k: res["large"].get(m, {}).get(k)
    goal("RAM spent per GiB of device memory added (struct pages on the device) <= 1 MiB",
         lambda m: (f"{lg(m, 'ram_kib_per_gib'):.0f} KiB/GiB", lg(m, "ram_kib_per_gib"))
         if lg(m, "ram_kib_per_gib") is not None else None, lambda v: v <= 1024)
    goal("evacuation of 1 GiB: 64 GiB node / 2 GiB node <= 1.3",
         lambda m: (f"{lg(m, 'evac_big_vs_small'):.2f}", lg(m, "evac_big_vs_small"))
         if lg(m, "evac_big_vs_small") else None, lambda v: v <= 1.3)
    goal("hot-add of the 64 and 2 GiB devices / first touch of 1 GiB <= 2",
         lambda m: (f"{lg(m, 'hotadd_vs_touch_1g'):.2f}", lg(m, "hotadd_vs_touch_1g"))
         if lg(m, "hotadd_vs_touch_1g") else None, lambda v: v <= 2)
    for kind in ("anon4k", "thp"):
        goal(f"parallel evacuation {kind}: 2 copying vCPUs vs 1, wall time >= 1.5x (medians)",
             lambda m, kind=kind: (f"{res['parallel'][m][kind]['serial_vs_parallel']['ratio']:.2f}x",
                                   res["parallel"][m][kind]["serial_vs_parallel"]["ratio"])
             if res.get("parallel", {}).get(m, {}).get(kind) else None,
             lambda r: r >= 1.5)
    goals.append({"goal": "make bench end to end < 45 min",
                  "total": {"value": f"{args.elapsed / 60:.1f} min", "met": 0 < args.elapsed < 45 * 60}})

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    plots(res, args.out, modes, args.plotdata or os.path.join(args.out, ".plotdata"))
    write_markdown(res, args.markdown, modes)


def ms(ns):
    return ns / 1e6


def table(L, columns, title=None):
    """Start a markdown table in L: a blank line, "### title" when given,
    and the header row with its separator."""
    L.append("")
    if title:
        L.append(f"### {title}")
        L.append("")
    L.append("| " + " | ".join(columns) + " |")
    L.append("|" + "---|" * len(columns))


def tmpfs_profile_difference(L, res):
    """The functions whose self time differs most between ours' and stock's
    profile of one tmpfs write.  Each side reports its 40 heaviest
    functions: one missing from a side spent less there than that side's
    40th, which bounds the difference."""
    prof = res.get("profiles", {})
    ours = {r["function"]: r for r in prof.get("icount-ours-main", {}).get("prof_tmpfs", [])}
    stock = {r["function"]: r for r in prof.get("icount-stock-main", {}).get("prof_tmpfs", [])}
    if not ours or not stock:
        return
    floor = min(r["us"] for r in ours.values()), min(r["us"] for r in stock.values())

    def diff(f):
        # (difference, or its bound, in us; the cell's text)
        if f in ours and f in stock:
            d = ours[f]["us"] - stock[f]["us"]
            return d, f"{d / 1000:+.2f}"
        if f in ours:
            d = ours[f]["us"] - floor[1]
            return d, f"> {d / 1000:+.2f}"
        d = floor[0] - stock[f]["us"]
        return d, f"< {d / 1000:+.2f}"

    def cells(side, f):
        r = side.get(f)
        return (str(r["hits"]), f"{r['us'] / 1000:.2f}") if r else ("—", "—")

    table(L, ["function", "ours hits", "stock hits", "ours ms", "stock ms", "ours - stock ms"],
          title="1b. One tmpfs write, ours - stock (icount profiles, self time; "
                "— : not among that side's 40 heaviest functions)")
    for f in sorted(set(ours) | set(stock), key=lambda f: -abs(diff(f)[0]))[:12]:
        (oh, oms), (sh, sms) = cells(ours, f), cells(stock, f)
        L.append(f"| `{f}` | {oh} | {sh} | {oms} | {sms} | {diff(f)[1]} |")
    total = sum(r["us"] for r in ours.values()), sum(r["us"] for r in stock.values())
    L.append(f"| (each side's 40 heaviest) | | | {total[0] / 1000:.2f} | {total[1] / 1000:.2f} | "
             f"{(total[0] - total[1]) / 1000:+.2f} |")


def write_markdown(res, path, modes):
    L = []
    L.append(f"Generated by `make bench` on {res['generated']} (commit {res['commit']}), "
             f"{res['make_bench_seconds'] / 60:.1f} min end to end.  ")
    kernels = sorted({r['uname_r'] for r in res['runs'].values() if r.get('uname_r')})
    L.append(f"Kernels: {', '.join('`' + k + '`' for k in kernels)}; {res['qemu']}; "
             f"host {res['host_cpu']}.")
    table(L, ["run", "kernel", "mode", "devices (MiB)", "node 0 (MiB)", "exit", "seconds"])
    for label, r in res["runs"].items():
        L.append(f"| {label} | `{r['uname_r']}` | {r['mode']} | {r['devices_mib']} | "
                 f"{r['node0_mib']} | {r['exit_status']} | {r['wall_seconds']} |")
    table(L, ["goal", "icount", "wall (TCG)"],
          title="Goals")
    for g in res["goals"]:
        cells = []
        for m in ("icount", "wall"):
            v = g.get(m) or (g.get("total") if m == "icount" else None)
            cells.append(f"{v['value']} {'met' if v['met'] else '**missed**'}" if v else "—")
        L.append(f"| {g['goal']} | {cells[0]} | {cells[1]} |")
    table(L, ["benchmark", "mode", "ours median ms", "stock median ms", "overhead", "range of ratio", "ours IQR ms"],
          title="1. Isolation cost on the allocator fast path (ours with two CDM nodes online / stock)")
    for m in modes:
        for sec, r in res["isolation"].get(m, {}).items():
            a, b = r["numerator"], r["denominator"]
            L.append(f"| {r['what']} | {m} | {ms(a['median']):.2f} | {ms(b['median']):.2f} | "
                     f"{fmt_pct(r['ratio'])} | {fmt_pct(r['low'])} .. {fmt_pct(r['high'])} | "
                     f"{ms(a['q1']):.2f}..{ms(a['q3']):.2f} |")
    tmpfs_profile_difference(L, res)
    table(L, ["mode", "kernel (node 1 is)", "MPOL_BIND node 1 ms", "default node 0 ms", "ratio of medians", "paired ratios min..max"],
          title="2. Placement cost (64 MiB, 4 KiB pages, alloc + first touch)")
    for m in modes:
        for side, p in res["placement"].get(m, {}).items():
            what = "ours (CDM)" if side == "ours" else "stock (ordinary hot-added)"
            L.append(f"| {m} | {what} | {ms(p['numerator']['median']):.2f} | {ms(p['denominator']['median']):.2f} | "
                     f"{p['ratio']:.3f} | {p['paired']['min']:.3f}..{p['paired']['max']:.3f} |")
    ps = res.get("placement_share", {})
    if "share" in ps:
        table(L, ["kernel (node 1 is)", "MPOL_BIND node 1, instructions per page", "default node 0, per page",
                  "ratio of medians", "paired ratios min..max", "samples"],
              title="2b. Our share of a bound fault (placement-only guests, icount)")
        for side in ("ours", "stock"):
            p = ps[side]
            what = "ours (CDM)" if side == "ours" else "stock (ordinary hot-added)"
            L.append(f"| {what} | {p['numerator']['median'] / ps['pages']:.1f} | "
                     f"{p['denominator']['median'] / ps['pages']:.1f} | {p['ratio']:.5f} | "
                     f"{p['paired']['min']:.5f}..{p['paired']['max']:.5f} | {p['numerator']['n']} |")
        L.append("")
        L.append(f"Our share: {ps['share'] * 100:+.3f}% (goal <= 0.2%).  Per page (mmap, bind, first touch "
                 f"and munmap of 64 MiB, divided by its {ps['pages']} pages), ours' bound run takes "
                 f"{ps['bound_minus_stock_per_page']:+.1f} instructions over stock's and ours' unbound "
                 f"run {ps['unbound_minus_stock_per_page']:+.1f}.")
    table(L, ["kind", "mode", "MiB", "ours MiB/s (min..max)", "stock MiB/s", "ours/stock", "memcpy MiB/s", "ours/memcpy", "rep movsb MiB/s", "ours/movsb", "THPs before → after (ours)", "THP splits", "pages left / corrupt"],
          title="3. Evacuation throughput (device node filled to 90%)")
    for m in modes:
        for kind, e in res["evacuation"].get(m, {}).items():
            o, s = e.get("ours"), e.get("stock")
            if not o:
                continue
            def med(x, key):
                return x[key]["median"] if x and x.get(key) else float("nan")
            vs = e.get("ours_vs_stock", {}).get("ratio", float("nan"))
            vm = e.get("ours_vs_memcpy", float("nan"))
            L.append(f"| {kind} | {m} | {o['bytes'] / 2**20:.0f} | {med(o, 'evac_mib_s'):.1f} "
                     f"({o['evac_mib_s']['min']:.1f}..{o['evac_mib_s']['max']:.1f}) | "
                     f"{med(s, 'evac_mib_s'):.1f} | {vs:.3f} | {med(o, 'memcpy_mib_s'):.1f} | "
                     f"{vm * 100:.1f}% | {med(o, 'movsb_mib_s'):.1f} | "
                     f"{e.get('ours_vs_movsb', float('nan')) * 100:.1f}% | {med(o, 'thp_before'):.0f} → {med(o, 'thp_after'):.0f} | "
                     f"{med(o, 'thp_split'):.0f} | "
                     f"{o['pages_left_on_node'] + (s or {}).get('pages_left_on_node', 0)} / "
                     f"{o['pages_corrupt'] + (s or {}).get('pages_corrupt', 0)} |")
    table(L, ["mode", "kernel", "device MiB", "evacuation s (median, min..max)", "MiB/s"],
          title="4. Scaling (ours, 4 KiB anonymous pages, 90% full)")
    for m in modes:
        for side, pts in res["scaling"].get(m, {}).items():
            for p in pts:
                e = p["evac_ns"]
                L.append(f"| {m} | {side} | {p['device_mib']} | {e['median'] / 1e9:.2f} "
                         f"({e['min'] / 1e9:.2f}..{e['max'] / 1e9:.2f}, n={e['n']}) | "
                         f"{p['evac_mib_s']['median']:.1f} |")
    table(L, ["mode", "writers", "evacuation s (median)", "longest writer gap before evacuation ms (max)",
              "longest writer gap during evacuation ms (median, max)",
              "gaps ≥ 20 µs during evacuation, per writer (median count; p50 / p90 / p99 ms, medians)"])
    for m in modes:
        for n, w in res["writers"].get(m, {}).items():
            sb, sd = w.get("stall_before_ns"), w.get("stall_during_ns")
            L.append(f"| {m} | {n} | {w['evac_ns']['median'] / 1e9:.2f} | "
                     f"{ms(sb['max']):.1f} |" if sb else f"| {m} | {n} | {w['evac_ns']['median'] / 1e9:.2f} | — |")
            if sd:
                L[-1] += f" {ms(sd['median']):.1f}, {ms(sd['max']):.1f} |"
            else:
                L[-1] += " — |"
            if "stalls_count" in w and "stalls_p99_ns" in w:
                L[-1] += (f" {w['stalls_count']['median']:.0f}; {ms(w['stalls_p50_ns']['median']):.2f} / "
                          f"{ms(w['stalls_p90_ns']['median']):.2f} / {ms(w['stalls_p99_ns']['median']):.2f} |")
            else:
                L[-1] += " — |"
    table(L, ["mode", "kernel", "GiB added", "node-0 MemFree consumed KiB/GiB (approx.)", "memmap (struct pages) KiB/GiB, exact", "slab KiB/GiB"],
          title="5. Kernel memory per GiB of device memory")
    for m in modes:
        for side, o in res["memory_overhead"].get(m, {}).items():
            L.append(f"| {m} | {side} | {o['device_gib_added']:.2f} | {o['kernel_kib_per_gib']:.0f} | "
                     f"{o['memmap_kib_per_gib']:.0f} | {o['slab_kib_per_gib']:.0f} |")
    table(L, ["mode", "device GiB added", "node-0 MemFree spent KiB/GiB", "hot-add s", "first touch of 1 GiB s",
              "evacuation of 1 GiB s, by node MemTotal MiB", "largest / smallest"],
          title="6. Large devices: 64 + 2 GiB, struct pages on the device (capi_sim memmap_on_device=1)")
    for m in modes:
        o = res["large"].get(m)
        if not o:
            continue
        ev = ", ".join(f"{k}: {v['median'] / 1e9:.2f}" for k, v in o["evac_1g_ns_by_node_mib"].items())
        sec = lambda v: f"{v['median'] / 1e9:.2f}" if v else "—"
        L.append(f"| {m} | {o['device_gib_added']:.1f} | {o['ram_kib_per_gib']:.0f} | "
                 f"{sec(o['hotadd_ns'])} | {sec(o['touch_1g_ns'])} | {ev or '—'} | "
                 f"{o.get('evac_big_vs_small', float('nan')):.2f} |")
    table(L, ["mode", "pages", "MiB", "evacuation s, 1 CPU (median, min..max)",
              "evacuation s, 2 CPUs (median, min..max)", "1 CPU / 2 CPUs: medians (extremes)",
              "fastest / fastest", "medians by guest", "samples each"],
          title="7. Parallel copy: nodeN/cdm/copy_workers 1 and 2, interleaved, two guests pooled (ours, wall time, MTTCG)")
    for m in modes:
        for kind, o in res.get("parallel", {}).get(m, {}).items():
            r = o["serial_vs_parallel"]
            a, b = r["numerator"], r["denominator"]
            L.append(f"| {m} | {kind} | {o['bytes'] / 2**20:.0f} | {a['median'] / 1e9:.2f} "
                     f"({a['min'] / 1e9:.2f}..{a['max'] / 1e9:.2f}) | {b['median'] / 1e9:.2f} "
                     f"({b['min'] / 1e9:.2f}..{b['max'] / 1e9:.2f}) | {r['ratio']:.2f} "
                     f"({r['low']:.2f}..{r['high']:.2f}) | {r['fastest']:.2f} | "
                     f"{', '.join(f'{v:.2f}' for v in r['by_guest'].values())} | {a['n']} |")
    for m, o in res.get("tlbalias", {}).items():
        L.append("")
        L.append(f"The emulator's own spread ({m}, `cdmbench tlbalias`): a `rep movsb` of "
                 f"{o['mib']:.0f} MiB between addresses a power of two apart ran at "
                 f"{o['aliased_mib_s']['median']:.0f} MiB/s, the same copy one page further at "
                 f"{o['offset_mib_s']['median']:.0f} MiB/s (medians of {o['offset_mib_s']['n']}); "
                 "a THP's copy is of the first kind whenever the copying vCPU's TLB reaches 2 MiB "
                 "or less (see \"Aliasing in QEMU's TLB\").")
    L.append("")
    L.append("### Function profiles (icount; ftrace function profiler, self time: 1 ms = 10^6 guest instructions plus the profiler's own)")
    L.append("")
    for label, secs in sorted(res.get("profiles", {}).items()):
        if not label.startswith("icount"):
            continue
        for sec, rows in sorted(secs.items()):
            L.append(f"<details><summary>{label} {sec}</summary>")
            table(L, ["function", "hits", "ms"])
            for r in rows[:20]:
                L.append(f"| `{r['function']}` | {r['hits']} | {r['us'] / 1000:.2f} |")
            L.append("")
            L.append("</details>")
            L.append("")
    L.append("Plots: `bench/isolation.png`, `bench/evacuation.png`, `bench/scaling.png`, `bench/writers.png`.")

    text = open(path).read() if os.path.exists(path) else "<!-- bench:begin -->\n<!-- bench:end -->\n"
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + "\n".join(L) + "\n" + end + tail)


def gnuplot(script, data=None):
    if data is not None and not (os.path.exists(data) and os.path.getsize(data)):
        sys.stderr.write(f"report: no data for {data}; plot skipped\n")
        return
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode:
        # A missing plot must not cost the numbers: say so and go on.
        sys.stderr.write(r.stderr)
        sys.stderr.write("report: gnuplot failed; plot not updated\n")


def mode_columns(modes, first, width):
    """(mode, first data column) of each measured mode: a .dat file holds
    @width columns per mode, icount's from column @first, then wall's."""
    return [(m, first + width * i) for i, m in enumerate(("icount", "wall")) if m in modes]


def multiplot(term, png, title, settings, panels):
    """One PNG with @panels side by side, 550 pixels wide each."""
    n = max(1, len(panels))
    gnuplot(term.replace("900,540", f"{550 * n},540") + f"""set output '{png}'
set multiplot layout 1,{n} title '{title}'
""" + settings + "".join(panels) + "unset multiplot\n")


def plots(res, out, modes, d):
    term = "set terminal pngcairo size 900,540 font 'sans,11'\n"
    os.makedirs(d, exist_ok=True)

    # Isolation ratios with their min..max range.
    with open(f"{d}/isolation.dat", "w") as f:
        for i, (sec, what) in enumerate([("fault4k", "fault 4K"), ("faultthp", "fault THP"),
                                         ("fork", "fork+exit"), ("tmpfs", "tmpfs write")]):
            row = [str(i), f'"{what}"']
            for m in ("icount", "wall"):
                r = res["isolation"].get(m, {}).get(sec)
                row += [f"{(r['ratio'] - 1) * 100:.3f}", f"{(r['low'] - 1) * 100:.3f}",
                        f"{(r['high'] - 1) * 100:.3f}"] if r else ["NaN"] * 3
            f.write(" ".join(row) + "\n")
    panels = [f"""set title '{"icount (instructions)" if m == "icount" else "wall time (plain TCG, noisy)"}'
plot '{d}/isolation.dat' using 1:{c}:{c + 1}:{c + 2}:xtic(2) with yerrorbars pt 7 ps 1.5 notitle, \\
     1 with lines dt 2 lc rgb 'red' title 'goal: 1%'
""" for m, c in mode_columns(modes, 3, 3)]
    multiplot(term, f"{out}/isolation.png",
              "Isolation cost: ours (2 CDM nodes online) vs stock 6.12 (median ratio - 1; bars: min..max)",
              """set ylabel 'overhead %'
set grid ytics
set xrange [-0.5:3.5]
set xtics nomirror font ',9'
set key top left
""", panels)

    # Evacuation throughput per kind.
    with open(f"{d}/evac.dat", "w") as f:
        for kind in ("anon4k", "thp", "shmem"):
            row = [kind]
            for m in ("icount", "wall"):
                e = res["evacuation"].get(m, {}).get(kind, {})
                for side, key in (("ours", "evac_mib_s"), ("stock", "evac_mib_s"), ("ours", "memcpy_mib_s"),
                                  ("ours", "movsb_mib_s")):
                    v = e.get(side, {}).get(key)
                    row.append(f"{v['median']:.2f}" if v else "NaN")
            f.write(" ".join(row) + "\n")
    panels = [f"""set title '{"icount (guest time = instructions)" if m == "icount" else "wall time (plain TCG)"}'
plot '{d}/evac.dat' using {c}:xtic(1) title 'ours: capi\\_sim evacuate', \\
     '' using {c + 1} title 'stock: offline\\_and\\_remove\\_memory()', \\
     '' using {c + 2} title 'memcpy (glibc)', '' using {c + 3} title 'rep movsb'
""" for m, c in mode_columns(modes, 2, 4)]
    multiplot(term, f"{out}/evacuation.png",
              "Evacuation of a device node filled to 90%: MiB/s (log scale)",
              """set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set key top left font ',9'
""", panels)

    # Scaling with device size.
    sides = []
    for side in ("ours", "stock"):
        pts = res["scaling"].get("icount", {}).get(side, [])
        if not pts:
            continue
        with open(f"{d}/scaling-{side}.dat", "w") as f:
            for p in pts:
                e = p["evac_ns"]
                f.write(f"{p['device_mib']} {e['median'] / 1e9:.4f} {e['min'] / 1e9:.4f} {e['max'] / 1e9:.4f}\n")
        what = "ours: capi\\_sim evacuate" if side == "ours" else "stock: offline\\_and\\_remove\\_memory()"
        sides.append(f"'{d}/scaling-{side}.dat' using 1:2:3:4 with yerrorlines pt 7 title '{what}'")
    if sides:
        gnuplot(term + f"""set output '{out}/scaling.png'
set title 'Evacuation time vs device size (4 KiB anon pages, 90% full, icount guest time)'
set xlabel 'device memory (MiB)'
set ylabel 'evacuation time (s)'
set logscale x 2
set logscale y 2
set grid
set key top left
plot """ + ", ".join(sides) + "\n")

    # Writers.
    with open(f"{d}/writers.dat", "w") as f:
        for n in ("0", "1", "2", "4"):
            w = res["writers"].get("icount", {}).get(n)
            if not w:
                continue
            sb, sd = w.get("stall_before_ns"), w.get("stall_during_ns")
            f.write(f"{n} {w['evac_ns']['median'] / 1e9:.4f} "
                    f"{ms(sb['max']) if sb else 'NaN'} {ms(sd['max']) if sd else 'NaN'}\n")
    gnuplot(term + f"""set output '{out}/writers.png'
set title 'Evacuation with concurrent writers (ours, icount)'
set xlabel 'writer processes'
set ylabel 'evacuation time (s)'
set y2label 'longest writer gap (ms)'
set ytics nomirror
set y2tics
set grid
set key top left
set xtics (0,1,2,4)
plot '{d}/writers.dat' using 1:2 with linespoints pt 7 title 'evacuation time', \\
     '' using 1:3 axes x1y2 with linespoints pt 5 title 'longest gap, no evacuation', \\
     '' using 1:4 axes x1y2 with linespoints pt 9 title 'longest gap during evacuation'
""", f"{d}/writers.dat")


if __name__ == "__main__":
    main()
