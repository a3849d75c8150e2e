"""Plain-text output of tools/chaos and tools/soak: a block per scenario and a summary
table (one row per scenario), from runner.Run result dicts."""


def table(header, rows):
    """Returns a plain-text table: columns padded to their widest cell."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(cells[0]), line(["-" * x for x in w])] + [line(r) for r in cells[1:]])


def _errors(e):
    return ",".join(f"{k}:{v}" for k, v in sorted(e.items())) or "0"


def population_rows(res):
    rows = []
    for name, p in res["populations"].items():
        fail = p.get("untolerated")
        rows.append([name, p["sent"], p["delivered"], _errors(p["errors"]),
                     f"{p['lost_on_close']}/{p['lost_open']}", p["silent"],
                     "-" if fail is None else f"{fail} (+{p['tolerated']} tolerated)",
                     f"{p['connects']}/{p['connect_failures']}/{p['refused']}",
                     p["latency_max_ms"]])
    return rows


def scenario_block(res):
    """The per-scenario report: description, expectation, frame table, attackers,
    gateway figures, checks, verdict."""
    g = res["gateway"]
    out = [f"== {res['scenario']}: {res['describe']}", f"   expect: {res['expect']}"]
    out.append(table(["clients", "sent", "delivered", "errors", "lost close/open", "silent",
                      "failures", "conns/failed/refused", "max ms"], population_rows(res)))
    for name, a in res["attackers"].items():
        out.append(f"   attackers {name}: {a['conns']} conns, {a['connect_failed']} failed "
                   f"connects, {a['closed_by_gateway']} closed by the gateway (longest held "
                   f"{a['held_max_s']} s), {a['open_at_end']} open at end")
    out.append(f"   gateway: RSS {g['rss_before_mb']} MB before / {g['rss_peak_mb']} peak / "
               f"{g['rss_after_mb']} after ({g['settle_s']} s settle); CPU "
               f"{g['cpu_attack_pct']}% of a core during the fault; fds {g['fds_before']} -> "
               f"{g['fds_peak']} peak -> {g['fds_after']}; backend conns peak "
               f"{g['backend_conns_peak']}; log {g['log_bytes']} B")
    reasons = {k: int(v) for k, v in g["closes_by_reason"].items()}
    out.append(f"   closes counted by the gateway: {reasons or 0}; error frames sent: "
               f"{ {k: int(v) for k, v in g['error_frames'].items()} or 0}")
    for t in res["tolerances"]:
        out.append(f"   tolerated ({t['pop']}: {'/'.join(t['kinds'])}"
                   f"{'' if t['bound'] is None else ', at most %d' % t['bound']}): {t['why']}")
    for c in res["checks"]:
        out.append(f"   [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['figure']}")
    for n in res["notes"]:
        out.append(f"   note: {n}")
    out.append("   verdict: " + ("PASS" if res["passed"] else
                                  "FAIL: " + "; ".join(res["failures"])))
    return "\n".join(out)


def summary(results):
    """One row per scenario: well-behaved totals, silent losses, RSS, CPU, verdict."""
    rows = []
    for r in results:
        wb = [p for n, p in r["populations"].items() if n in ("wb", "churn")]
        silent = sum(p["silent"] for p in r["populations"].values())
        g = r["gateway"]
        rows.append([r["scenario"], sum(p["sent"] for p in wb),
                     sum(p["delivered"] for p in wb),
                     sum(sum(p["errors"].values()) for p in wb),
                     sum(p["lost_on_close"] + p["lost_open"] for p in wb), silent,
                     f"{sum(p['untolerated'] for p in wb)}"
                     f" (+{sum(p['tolerated'] for p in wb)})",
                     f"{g['rss_before_mb']}/{g['rss_peak_mb']}/{g['rss_after_mb']}",
                     g["cpu_attack_pct"], "PASS" if r["passed"] else "FAIL"])
    return table(["scenario", "wb sent", "delivered", "errors", "lost", "silent(all)",
                  "wb failures (tolerated)", "RSS MB b/p/a", "CPU%", "verdict"], rows)
