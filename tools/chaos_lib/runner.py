"""One scenario's run: processes, client populations, measurements and the verdict.

Run owns a fresh backend and gateway (config written to the run's temp dir), the
populations (well-behaved `wb` clients and `churn` clients that reconnect every few
frames, plus attackers), the samples (RSS peak, CPU, fds) and the metric snapshots before
and after. finish() settles, measures, stops the processes and returns the result dict
that report.py prints; its `failures` list is empty when the scenario passed.

Verdict rules (tools/chaos --help and docs/reliability.md):
  - well-behaved failures (errors, lost frames, failed or refused connects) outside the
    scenario's declared tolerances fail it; tolerances name kinds, a time window and a bound;
  - lost frames must be explained: lost at a close the gateway counted (close reasons,
    accept sheds), or lost_open frames a scenario's explainer accounts for with a gateway
    metric; the rest is silent loss and fails it (any population, attackers included);
  - RSS after settling more than 16 MB above before, or fds not back within 16, fail it;
  - scenario checks (attackers closed in time, CPU, admin answering, pool limits) fail it.
"""
import asyncio
import json
import os
import time

from tools.chaos_lib import clients, ledger, procs

now = time.monotonic
RSS_SLACK_KB = 16 * 1024
FD_SLACK = 16


class Tolerance:
    """Failures of `kinds` in population `pop` inside [start, end] (monotonic times, set
    by the scenario) are expected, up to `bound` (None: any number); `why` says why."""

    def __init__(self, pop, kinds, why, bound=None):
        self.pop, self.kinds, self.why, self.bound = pop, kinds, why, bound
        self.start, self.end = None, None


class Run:
    def __init__(self, opts, name, short):
        self.opts, self.name, self.short = opts, name, short
        self.dir = os.path.join(opts.workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.admin_port, self.backend_port = (procs.free_port() for _ in range(3))
        self.config = procs.base_config(self.port, self.admin_port, self.backend_port,
                                        opts.token_file)
        self.nofile = None
        self.ledgers = {}          # population name -> ledger.Ledger
        self.attacks = {}          # population name -> clients.AttackStats
        self.tolerances = []
        self.checks = []           # (description, ok, figure)
        self.explained_open = {}   # population -> lost_open frames a gateway metric explains
        self.explained_closes = 0  # gateway closes the metrics cannot show (e.g. at exit)
        # Whether a counted close explains the frames lost at it. False where the close is a
        # consequence of the loss (blackhole: clients blocked on unanswered frames go idle).
        self.closes_explain_loss = True
        self.notes = []
        self.tasks = []
        self.ctl = clients.Control()
        self.extra_ctls = []       # Controls of other populations (floods), stopped at the end
        self.marks = {}
        self.describe, self.expect = "", ""
        self.skip_growth = None    # reason the growth check does not apply

    # -- processes ------------------------------------------------------------------
    async def start(self):
        """Starts backend and gateway; a port taken meanwhile is retried with new ports."""
        for attempt in range(3):
            self.backend = procs.Backend(self.opts.backend_sim, self.backend_port,
                                         os.path.join(self.dir, "backend.log"))
            self.gw = procs.Gateway(self.opts.gateway, self.dir, self.name, self.config,
                                    nofile=self.nofile)
            try:
                self.backend.start()
                self.gw.start()
                break
            except RuntimeError as e:
                self.backend.stop()
                if "in use" not in str(e) and "did not start" not in str(e) or attempt == 2:
                    raise
                self._new_ports()
        self.sampler = procs.Sampler(self.gw)
        self.sampler.start()
        self.backend_peak = 0
        self._bg = asyncio.get_running_loop().create_task(self._watch())

    def _new_ports(self):
        old = (self.port, self.admin_port, self.backend_port)
        self.port, self.admin_port, self.backend_port = (procs.free_port() for _ in range(3))
        text = json.dumps(self.config)
        for a, b in zip(old, (self.port, self.admin_port, self.backend_port)):
            text = text.replace(f"127.0.0.1:{a}\"", f"127.0.0.1:{b}\"")
        self.config = json.loads(text)

    async def _watch(self):
        """Every 0.5 s: backend connection count (peak) and a metrics scrape (the last one
        stands for a gateway that exits); scrape failures while alive are counted."""
        self.scrape_failures = 0
        loop = asyncio.get_running_loop()
        while True:
            self.backend_peak = max(self.backend_peak,
                                    procs.backend_connections(self.backend_port))
            if self.gw.alive():
                try:
                    await loop.run_in_executor(None, self.gw.metrics)
                except OSError:
                    if self.gw.alive():
                        self.scrape_failures += 1
            await asyncio.sleep(0.5)

    async def scrape(self):
        return await asyncio.get_running_loop().run_in_executor(None, self.gw.metrics)

    # -- populations ----------------------------------------------------------------
    def spawn(self, coro):
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    def population(self, name):
        return self.ledgers.setdefault(name, ledger.Ledger(name))

    def attack(self, name):
        return self.attacks.setdefault(name, clients.AttackStats(name))

    def start_well_behaved(self, n=20, churn=4, rate=20.0, window=8, churn_pause=0.3):
        """n steady clients (127.20.0.x) at `rate` frames/s each and `churn` clients
        (127.21.0.x) that reconnect every 10 frames."""
        self.window, self.n_wb, self.n_churn = window, n, churn
        wb, ch = self.population("wb"), self.population("churn")
        for i in range(n):
            self.spawn(clients.numbered_client(self.port, clients.src_addr(20, i), i, wb,
                                               self.ctl, rate=rate, window=window))
        for i in range(churn):
            self.spawn(clients.numbered_client(self.port, clients.src_addr(21, i), 1000 + i,
                                               ch, self.ctl, rate=rate, window=window,
                                               frames_per_conn=10, pause=churn_pause))

    def in_flight_bound(self):
        """Frames the well-behaved populations can have outstanding at one moment."""
        return self.window * (self.n_wb + self.n_churn)

    # -- measurements ---------------------------------------------------------------
    async def baseline(self, warmup=1.5):
        await asyncio.sleep(warmup)
        self.before = {"rss": self.gw.rss_kb(), "fds": self.gw.fds(),
                       "metrics": await self.scrape()}

    def mark(self, name):
        self.marks[name] = (now(), self.gw.cpu_seconds())

    def cpu_pct(self, a="attack_start", b="attack_end"):
        """Gateway CPU (% of one core) between two marks."""
        if a not in self.marks or b not in self.marks:
            return None
        (t0, c0), (t1, c1) = self.marks[a], self.marks[b]
        if c0 is None or c1 is None or t1 <= t0:
            return None
        return round(100.0 * (c1 - c0) / (t1 - t0), 1)

    def check(self, desc, ok, figure=""):
        self.checks.append((desc, bool(ok), figure))

    def tolerate(self, tol, start=None, end=None):
        tol.start, tol.end = start, end
        self.tolerances.append(tol)

    def delta(self, name, **labels):
        """after - before of a metric's summed series."""
        return procs.metric_sum(self.after_metrics, name, **labels) - \
            procs.metric_sum(self.before["metrics"], name, **labels)

    def delta_by(self, name, label, **labels):
        a = procs.metric_by(self.after_metrics, name, label, **labels)
        b = procs.metric_by(self.before["metrics"], name, label, **labels)
        return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}

    async def end_clients(self, settle, timeout=30):
        """Stops sending, lets outstanding frames settle, waits for every client task."""
        self.ctl.end_sending(settle)
        done, pending = await asyncio.wait(self.tasks, timeout=settle + timeout)
        self.ctl.stop = True
        for c in self.extra_ctls:
            c.stop = True
        if pending:
            await asyncio.wait(pending, timeout=10)
        for t in pending:
            t.cancel()
        for led in self.ledgers.values():
            assert led.accounted(), f"{led.name}: ledger does not add up"

    async def finish(self, settle=3.0, rss_wait=None):
        """Ends the run; returns the result dict."""
        await self.end_clients(settle)
        rss_wait = rss_wait if rss_wait is not None else (10 if self.short else 30)
        alive = self.gw.alive()
        t_settle = now()
        if alive:   # wait for memory and fds to come back (or the bound to pass)
            while now() - t_settle < rss_wait:
                if self.gw.rss_kb() <= self.before["rss"] + RSS_SLACK_KB and \
                        self.gw.fds() <= self.before["fds"] + FD_SLACK:
                    break
                await asyncio.sleep(0.5)
            self.after_metrics = await self.scrape()
        else:
            self.after_metrics = self.gw.last_metrics
        after = {"rss": self.gw.rss_kb() if alive else None,
                 "fds": self.gw.fds() if alive else None,
                 "settle_s": round(now() - t_settle, 1)}
        self._bg.cancel()
        self.sampler.stop()
        self.exit_code = self.gw.stop()
        self.backend.stop()
        self.after = after
        return self._result(after)

    def rejudge(self, more_checks=()):
        """The result again, after a scenario added checks, tolerances or explanations
        that need the final metrics (self.after_metrics)."""
        for c in more_checks:
            self.check(*c)
        return self._result(self.after)

    # -- verdict --------------------------------------------------------------------
    def _gateway_closes(self):
        """Client connections the gateway says it closed (any reason but remote_closed)
        or shed at accept."""
        by = self.delta_by("game_gateway_connection_closes_total", "reason", listener="game")
        return sum(v for k, v in by.items() if k != "remote_closed") + \
            self.delta("game_gateway_accept_shed_total", listener="game"), by

    def _result(self, after):
        failures = []
        closes_counted, close_reasons = self._gateway_closes()
        closes_seen = sum(l.server_closes for l in self.ledgers.values()) + \
            sum(a.closed_by_gateway for a in self.attacks.values())
        unexplained_closes = max(0, closes_seen - closes_counted - self.explained_closes)
        pops = {}
        for name, led in self.ledgers.items():
            if self.closes_explain_loss:
                silent = max(0, led.lost_open - self.explained_open.get(name, 0))
                if unexplained_closes:
                    silent += led.lost_on_close
            else:
                silent = max(0, led.lost() - self.explained_open.get(name, 0))
            s = led.summary()
            s["silent"] = silent
            if name in ("wb", "churn"):
                tolerated = 0
                for tol in self.tolerances:
                    if tol.pop == name:
                        n = led.failures(tol.start, tol.end, tol.kinds)
                        tolerated += n if tol.bound is None else min(n, tol.bound)
                s["tolerated"] = tolerated
                s["untolerated"] = max(0, led.failures() - tolerated)
                if s["untolerated"]:
                    failures.append(f"{name}: {s['untolerated']} well-behaved failures "
                                    f"(of {led.failures()}; {tolerated} tolerated)")
            if led.corrupt:
                failures.append(f"{name}: {led.corrupt} corrupt echoes")
            if silent:
                failures.append(f"{name}: {silent} frames lost silently")
            pops[name] = s
        if unexplained_closes:
            failures.append(f"{unexplained_closes} closes seen by clients but not counted by "
                            f"the gateway ({closes_seen} seen, {closes_counted} counted)")
        rss_b, rss_a = self.before["rss"], after["rss"]
        growth = None
        if self.skip_growth:
            pass
        elif rss_a is not None:
            growth = rss_a - rss_b
            if growth > RSS_SLACK_KB:
                failures.append(f"RSS {rss_a / 1024:.1f} MB after {after['settle_s']} s of "
                                f"settling, {growth / 1024:.1f} MB above before (bound 16 MB)")
            if after["fds"] > self.before["fds"] + FD_SLACK:
                failures.append(f"fds {self.before['fds']} -> {after['fds']} (bound +16)")
        for desc, ok, fig in self.checks:
            if not ok:
                failures.append(f"check failed: {desc} ({fig})")
        return {
            "scenario": self.name, "describe": self.describe, "expect": self.expect,
            "populations": pops,
            "attackers": {k: v.summary() for k, v in self.attacks.items()},
            "tolerances": [{"pop": t.pop, "kinds": list(t.kinds), "why": t.why,
                            "bound": t.bound} for t in self.tolerances],
            "gateway": {"rss_before_mb": round(rss_b / 1024, 1),
                        "rss_peak_mb": round(self.sampler.peak_kb / 1024, 1),
                        "rss_after_mb": None if rss_a is None else round(rss_a / 1024, 1),
                        "settle_s": after["settle_s"],
                        "cpu_attack_pct": self.cpu_pct(),
                        "fds_before": self.before["fds"], "fds_after": after["fds"],
                        "fds_peak": max((s[3] for s in self.sampler.series), default=0),
                        "backend_conns_peak": self.backend_peak,
                        "log_bytes": self.gw.log_bytes(), "exit_code": self.exit_code,
                        "scrape_failures": self.scrape_failures,
                        "closes_by_reason": close_reasons,
                        "closes_counted": closes_counted, "closes_seen": closes_seen,
                        "error_frames": self.delta_by("game_gateway_upstream_error_frames_total",
                                                      "code")},
            "checks": [{"check": d, "ok": ok, "figure": f} for d, ok, f in self.checks],
            "notes": self.notes + (["growth check n/a: " + self.skip_growth]
                                   if self.skip_growth else []),
            "failures": failures, "passed": not failures,
        }
