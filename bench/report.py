#!/usr/bin/env python3
"""Turns bench/run.py's results.json into the Markdown tables of docs/performance.md."""

import json
import sys


def fmt(v, digits=0):
    if v is None:
        return "—"
    return ("%%.%df" % digits) % v


def main(path):
    r = json.load(open(path))
    out = []
    w = out.append
    w("Run %s → %s, %s build, N = %d messages per contestant, %s CPUs, load average %.2f before, %.2f after."
      % (r["started"], r.get("finished", "?"), r["profile"], r["n"], r["cpus"], r["load_before"],
         r.get("load_after", -1)))
    w("")
    main_rows = r.get("main", [])
    by = {(x["server"], x["key"]): x for x in main_rows}
    for server in ("nginx", "sandbox"):
        rows = [x for x in main_rows if x["server"] == server]
        if not rows:
            continue
        w("### Against %s" % ("the fixed-answer nginx" if server == "nginx" else "the WeChat sandbox"))
        w("")
        w("| contestant | messages | seconds | msg/s | vs wrk (same conns) | p50 µs | p99 µs | client CPU µs/msg | peak RSS MiB/process | token fetches | failed |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in rows:
            conns = 8 if ("8" in x["key"].split("/")[1]) else 1
            ceiling = by.get((server, "wrk/%dc" % conns))
            ratio = x["msgs_per_s"] / ceiling["msgs_per_s"] if ceiling and ceiling["msgs_per_s"] else None
            w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                x["label"], x["sent"], fmt(x["wall_s"], 1), fmt(x["msgs_per_s"]), fmt(ratio and ratio * 100) + " %" if ratio else "—",
                fmt(x["p50_us"], 1), fmt(x["p99_us"], 1), fmt(x["cpu_us_per_msg"], 1),
                fmt(x["peak_rss_mib"], 1), x.get("token_fetches", "—"), x["failed"]))
        w("")

    def rate(server, key):
        x = by.get((server, key))
        return x["msgs_per_s"] if x else None

    targets = []

    def target(name, value, goal, ok):
        targets.append("| %s | %s | %s | %s |" % (name, value, goal, "met" if ok else "**missed**"))

    for server in ("nginx", "sandbox"):
        wrk1 = rate(server, "wrk/1c")
        mem, mem8 = rate(server, "php-ffi/1p-memory"), rate(server, "php-ffi/8p-memory")
        sql, sql8 = rate(server, "php-ffi/1p-sqlite"), rate(server, "php-ffi/8p-sqlite")
        curl = rate(server, "php-curl/1p")
        if mem8 and sql8:
            target("%s: PHP FFI 8 processes, one SQLite file / 8 processes memory" % server,
                   "%.0f %%" % (100 * sql8 / mem8), "≥ 50 %", sql8 >= 0.5 * mem8)
        if sql and sql8:
            target("%s: PHP FFI 8 processes, one SQLite file / 1 process SQLite" % server,
                   "%.2f×" % (sql8 / sql), "> 1×", sql8 > sql)
        if wrk1 and sql:
            target("%s: PHP FFI 1 process SQLite / wrk 1 conn" % server, "%.0f %%" % (100 * sql / wrk1), "≥ 50 %",
                   sql >= 0.5 * wrk1)
        if wrk1 and mem:
            target("%s: PHP FFI 1 process memory / wrk 1 conn" % server, "%.0f %%" % (100 * mem / wrk1), "≥ 80 %",
                   mem >= 0.8 * wrk1)
        if curl and mem:
            target("%s: PHP FFI 1 process memory / PHP curl 1 process" % server, "%.2f×" % (mem / curl), "> 1×",
                   mem > curl)
        for name, label in (("redis", "Redis"), ("redis-unix", "Redis (Unix socket)"), ("rcluster", "Redis Cluster")):
            for procs, base in ((1, mem), (8, mem8)):
                red = rate(server, "php-ffi/%dp-%s" % (procs, name))
                if red and base:
                    target("%s: PHP FFI %d process%s %s / same on memory" % (server, procs, "es" if procs > 1 else "",
                                                                             label),
                           "%.0f %%" % (100 * red / base), "≥ 50 %", red >= 0.5 * base)
    for d in r.get("drain", []):
        goal = 4.0 if d["messages"] <= 2000 else 20.0 if d["messages"] <= 10000 else None
        if goal and not r.get("smoke"):
            target("drain %d due messages, %d ms latency, %d lanes, each once" % (d["messages"], d["latency_ms"], d["lanes"]),
                   "%.2f s" % d["drain_s"], "≤ %.0f s" % goal, d["drain_s"] <= goal and d["once_each"])
    hot = r.get("hotpath_rust_ns") or {}
    core = hot.get("hotpath/render_take_token/memory")
    if core is not None:
        target("hot path from Rust (render + take + token hit)", "%.2f µs" % (core / 1000), "≤ 3 µs", core <= 3000)
    php = r.get("hotpath_php") or {}
    if php and r.get("smoke") is False:
        v = php["send_no_permit_plus_token_ns"]
        target("hot path through PHP FFI (send without permit + token hit)", "%.2f µs" % (v / 1000), "≤ 10 µs", v <= 10000)
    sc = (r.get("syscalls") or {}).get("per_send")
    if sc:
        target("write-type syscalls per SQLite send (strace -c, store only)", fmt(sc["store_writes"], 1), "≤ 12",
               sc["store_writes"] <= 12)
    tok = r.get("token", {})
    ours = [v for k, v in tok.items() if k.startswith(("rust", "php-ffi"))]
    if ours:
        worst = max(v["per_lifetime"] for v in ours)
        target("token fetches per lifetime per app, ours, %d processes" % r.get("token_procs", 16), fmt(worst, 1), "1", worst <= 1)
    if targets:
        w("### Targets (ratios within this run)")
        w("")
        w("| target | measured | goal | |")
        w("|---|---:|---:|---|")
        out.extend(targets)
        w("")

    if sc:
        w("### Write system calls per SQLite send (strace -c -f, one PHP process, %d sends)" % r["syscalls"]["sends"])
        w("")
        w("| " + " | ".join(sorted(sc)) + " |")
        w("|" + "---:|" * len(sc))
        w("| " + " | ".join(fmt(sc[k], 2) for k in sorted(sc)) + " |")
        w("")
    if r.get("drain"):
        w("### Draining a backlog (SQLite outbox, one PHP process, sandbox)")
        w("")
        w("| due messages | latency per send | lanes | drained in s | msg/s | enqueue µs each (PHP FFI, wall) | sandbox deliveries (distinct) |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        for d in r["drain"]:
            w("| %d | %d ms | %d | %.2f | %.0f | %.1f | %d (%d) |" % (
                d["messages"], d["latency_ms"], d["lanes"], d["drain_s"], d["messages"] / max(d["drain_s"], 1e-9),
                d["enqueue_us"], d["delivered"], d["delivered_distinct"]))
        w("")
    if tok:
        w("### Token fetches: %d processes over two simulated token lifetimes (sandbox)" % r.get("token_procs", 16))
        w("")
        w("The sandbox clock jumps past the token's expiry (and the old token's grace) halfway, so every cached token dies once.")
        w("")
        w("| contestant | processes × threads | messages | token fetches | per lifetime | failed |")
        w("|---|---:|---:|---:|---:|---:|")
        for v in tok.values():
            w("| %s | %d × %d | %d | %d | %s | %d |" % (v["label"], v["processes"], v["threads"], v["sent"],
                                                    v["token_fetches"], fmt(v["per_lifetime"], 1), v["failed"]))
        w("| wrk | fixed token | | 0 | — | |")
        w("")
    if hot or php:
        w("### Hot path, no network")
        w("")
        w("| measure | per call |")
        w("|---|---:|")
        for k, v in sorted(hot.items()):
            w("| Rust criterion `%s` | %.2f µs |" % (k, v / 1000))
        if php:
            w("| PHP FFI: send without permit + access token hit (%d iterations) | %.2f µs |"
              % (php["iterations"], php["send_no_permit_plus_token_ns"] / 1000))
            w("| PHP FFI: render | %.2f µs |" % (php["render_ns"] / 1000))
        w("")
    return "\n".join(out)


if __name__ == "__main__":
    print(main(sys.argv[1]))
