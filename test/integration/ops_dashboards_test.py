#!/usr/bin/env python3
"""The Grafana dashboard and the alert rules against a real scrape.

Starts the gateway from the Kubernetes ConfigMap's config (addresses moved to
loopback, backends to a local backend_sim plus one dead host), a Prometheus
server (Debian's `prometheus`) scraping its metrics_listener every second and
evaluating docs/ops/alerts.yaml and the Go gateway's own rules
(go_gateway_alerts.yaml) every second, and drives client traffic through it:
round trips to every routed service type, frames to an unrouted one, a
connect burst over ip_limiter's rate. Then asserts, through Prometheus's HTTP
API:

- every dashboard query (panel targets, the Pod variable, the annotation)
  parses and returns data;
- every rule (ours and the Go gateway's) loads and evaluates without error,
  every recording rule has data, and every alert expression returns data with
  its comparisons made `bool` (an alert not firing still shows its value), so
  a comparison on series the gateway does not export cannot pass;
- statically, every game_gateway_* name those queries and rules read is a
  family of the scrape.

Run by //test/integration:ops_dashboards_test (cwd: the runfiles root).
"""
import json
import math
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import yaml

from ops_common import (FILTER_METRICS, OPS, Process, configmap_config, load_manifests,
                        metric_families, referenced_metrics, registered_filters, request,
                        round_trip, runnable_config, start_backend, start_gateway)

PROMETHEUS = "/usr/bin/prometheus"
GO_ALERTS = "test/integration/go_gateway_alerts.yaml"
JOB = "game-gateway"  # the job name GameGatewayDown and the Go rules match
# Go rules that read cAdvisor's series (the kubelet's), not the gateway's.
NOT_GATEWAY_RULES = {"GameGatewayHighMemoryUsage", "GameGatewayHighCPUUsage"}
# Grafana's variables, as a query with every pod selected would see them.
GRAFANA_VARS = {"$instance": ".*", "$__rate_interval": "1m", "$__range": "1h"}
# Rules whose series exist only when routes come from Redis (the upstream
# filter's Redis routes; the ConfigMap's routes are static): the test checks
# that they load and evaluate, not that they have data.
REDIS_ROUTES_RULES = {"GameGatewayConfigRefreshErrors"}
# Service types the ConfigMap routes (the first is the cluster the test gives
# a dead host), and one it does not.
ROUTED = (10, 15, 200)
UNROUTED = 77


def boolified(expr):
    """`expr` with `bool` after every comparison operator outside label
    matchers, ranges and strings: the alert's value for every series instead
    of only the firing ones."""
    out, depth, i, quote = [], 0, 0, None
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c in "{[":
            depth += 1
            out.append(c)
        elif c in "}]":
            depth -= 1
            out.append(c)
        elif depth == 0 and re.match(r"==|!=|>=|<=|>|<", expr[i:]):
            op = re.match(r"==|!=|>=|<=|>|<", expr[i:]).group(0)
            out.append(op)
            i += len(op)
            if not re.match(r"\s*bool\b", expr[i:]):
                out.append(" bool")
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def grafana(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rule_files():
    """(path, parsed) of the rule files under test."""
    return [(p, yaml.safe_load(open(p))) for p in (f"{OPS}/alerts.yaml", GO_ALERTS)]


def dashboard_queries():
    """(where, expr) of every query of the dashboard: panel targets, template
    variables, annotations."""
    dash = json.load(open(f"{OPS}/grafana-dashboard.json"))
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"])
           for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", v["query"]["query"]))
    for a in dash["annotations"]["list"]:
        out.append((f"annotation {a['name']!r}", a["expr"]))
    return out


class Traffic(threading.Thread):
    """Client traffic until stop(): a persistent connection per routed service
    type doing round trips (reconnecting when the gateway closes it), and each
    second a frame to an unrouted service type and a burst of connections over
    ip_limiter's per-IP connection rate."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.done = threading.Event()
        self.replies = 0

    def stop(self):
        self.done.set()
        self.join(10)

    def run(self):
        conns = {}
        last_burst = 0
        while not self.done.is_set():
            for st in ROUTED:
                try:
                    if st not in conns:
                        conns[st] = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                    s = conns[st]
                    s.sendall(struct.pack("<HHI", 5, 100, st << 8) + b"hello")
                    got = s.recv(4096)
                    if not got:
                        raise ConnectionResetError
                    self.replies += 1
                except OSError:
                    conns.pop(st, None)
            if time.time() - last_burst >= 1:
                last_burst = time.time()
                try:
                    round_trip(self.port, UNROUTED)
                    for i in range(8):  # new sessions: some land on the dead host
                        round_trip(self.port, ROUTED[i % 2])
                except OSError:
                    pass
            self.done.wait(0.05)
        for s in conns.values():
            s.close()


class ClassScope:
    """What ops_common's start_* helpers need from a test, for setUpClass."""

    def __init__(self, cls):
        self.addCleanup = cls.addClassCleanup

    def assertTrue(self, value, msg=None):
        if not value:
            raise AssertionError(msg)


class DashboardsAndAlertsOnARealScrape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        scope = ClassScope(cls)
        cfg, cls.dropped = runnable_config(configmap_config(load_manifests()),
                                           registered_filters())
        dead = f"127.0.0.1:{free_port()}"  # nothing listens: connects fail
        first = cfg["clusters"][0]["name"]
        cls.gateway, ports = start_gateway(scope, cfg, start_backend(scope), {first: [dead]})
        cls.metrics_port = ports["metrics"]
        cls.prometheus_port = cls.start_prometheus(ports["metrics"])
        # Traffic starts after the first scrape, so every counter moves
        # inside the queries' windows.
        cls.wait_for("up", lambda r: r and r[0]["value"][1] == "1")
        traffic = Traffic(ports["game"])
        traffic.start()
        time.sleep(6)
        traffic.stop()
        assert traffic.replies > 50, "too few replies: %d\n%s" % (traffic.replies,
                                                                  cls.gateway.output())
        time.sleep(2)  # a scrape and a rule evaluation after the last traffic
        cls.scrape = request(ports["metrics"], "GET", "/metrics")[1]

    @classmethod
    def start_prometheus(cls, target_port):
        """Starts Prometheus scraping 127.0.0.1:target_port as job JOB and
        evaluating the rule files every second; returns its HTTP port."""
        tmp = tempfile.mkdtemp()
        cls.addClassCleanup(shutil.rmtree, tmp, True)
        files = []
        for path, rules in rule_files():
            for g in rules["groups"]:
                g["interval"] = "1s"
            files.append(os.path.join(tmp, os.path.basename(path)))
            with open(files[-1], "w") as f:
                yaml.safe_dump(rules, f)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": files,
            "scrape_configs": [{"job_name": JOB, "static_configs": [{
                "targets": [f"127.0.0.1:{target_port}"],
                "labels": {"pod": "game-gateway-0"}}]}],
        }
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        for attempt in range(3):  # a port picked beforehand may be taken meanwhile
            port = free_port()
            prom = Process([PROMETHEUS, f"--config.file={tmp}/prometheus.yml",
                            f"--storage.tsdb.path={tmp}/data-{attempt}",
                            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
            cls.addClassCleanup(prom.stop)
            deadline = time.time() + 30
            while time.time() < deadline and prom.proc.poll() is None:
                try:
                    if request(port, "GET", "/-/ready")[0] == 200:
                        cls.prometheus = prom
                        return port
                except OSError:
                    pass
                time.sleep(0.1)
            if "address already in use" not in prom.output():
                break
        raise AssertionError("prometheus did not start:\n" + prom.output())

    @classmethod
    def api(cls, path, **params):
        url = f"http://127.0.0.1:{cls.prometheus_port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400: the query does not parse
            return json.load(e)

    @classmethod
    def query(cls, expr):
        """The instant vector `expr` returns now; raises on an error."""
        body = cls.api("query", query=expr)
        if body["status"] != "success":
            raise AssertionError(f"{body.get('errorType')}: {body.get('error')}\n{expr}")
        return body["data"]["result"]

    @classmethod
    def wait_for(cls, expr, ok, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ok(cls.query(expr)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{expr}: {cls.query(expr)}\n{cls.prometheus.output()}")

    def assert_data(self, where, expr):
        result = self.query(expr)
        self.assertTrue(result, f"{where}: no data from the scrape:\n{expr}")
        return result

    def test_every_dashboard_query_returns_data(self):
        queries = dashboard_queries()
        self.assertGreaterEqual(len(queries), 25)
        for where, expr in queries:
            with self.subTest(where):
                if where.startswith("variable"):  # label_values(metric, label)
                    m = re.fullmatch(r"label_values\((\S+), (\w+)\)", expr)
                    self.assertTrue(m, expr)
                    values = self.api(f"label/{m.group(2)}/values",
                                      **{"match[]": m.group(1)})["data"]
                    self.assertTrue(values, expr)
                elif where.startswith("annotation"):
                    self.assert_data(where, boolified(grafana(expr)))
                else:
                    self.assert_data(where, grafana(expr))

    def test_traffic_panels_show_values(self):
        """The panels of the traffic this test drives show numbers, not NaN
        (a histogram_quantile of buckets that did not move)."""
        for title in ("New connections / s", "Request latency by cluster (p50 / p95 / p99)",
                      "Messages / s", "Backend bytes / s", "Routing errors / s",
                      "Rate-limit rejections / s", "Backend errors / s"):
            exprs = [e for w, e in dashboard_queries() if w.startswith(f"panel {title!r}")]
            self.assertTrue(exprs, title)
            for expr in exprs:
                values = [float(r["value"][1]) for r in self.assert_data(title, grafana(expr))]
                with self.subTest(title, expr=expr):
                    self.assertTrue(any(math.isfinite(v) and v > 0 for v in values),
                                    f"{title}: {values}\n{expr}")

    def test_every_rule_evaluates_and_every_alert_has_data(self):
        groups = self.api("rules")["data"]["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        for path, rules in rule_files():
            for rule in (r for g in rules["groups"] for r in g["rules"]):
                name = rule.get("alert") or rule.get("record")
                with self.subTest(f"{path}: {name}"):
                    self.assertIn(name, loaded)
                    self.assertEqual(loaded[name]["health"], "ok", loaded[name].get("lastError"))
                    if name in NOT_GATEWAY_RULES | REDIS_ROUTES_RULES:
                        continue
                    if "record" in rule:
                        self.assert_data(name, name)
                    else:
                        self.assert_data(name, boolified(rule["expr"]))

    def test_the_breaker_alert_names_every_backend_once(self):
        """GameGatewayCircuitBreakerOpen's value: one series per backend
        (the Go {backend} series) and per cluster breaker (backend "*"),
        never the host-labelled duplicates."""
        rules = dict(rule_files())[f"{OPS}/alerts.yaml"]
        expr = next(r["expr"] for g in rules["groups"] for r in g["rules"]
                    if r.get("alert") == "GameGatewayCircuitBreakerOpen")
        got = sorted((r["metric"].get("cluster"), r["metric"].get("backend"))
                     for r in self.query(boolified(expr)))
        want = sorted({(m.group(1), m.group(2)) for m in re.finditer(
            r'^game_gateway_circuit_breaker_state\{cluster="([^"]+)",backend="([^"]+)"\}',
            self.scrape, re.M)} | {(m.group(1), "*") for m in re.finditer(
            r'^game_gateway_circuit_breaker_state\{cluster="([^"]+)",host="\*"\}',
            self.scrape, re.M)})
        if "breaker" in self.dropped:
            self.skipTest("no breaker filter in this binary")
        self.assertTrue(want)
        self.assertEqual(got, want)

    def test_every_metric_name_queried_exists_in_the_scrape(self):
        families = metric_families(self.scrape)
        optional = {m for flt in self.dropped for m in FILTER_METRICS.get(flt, [])}
        sources = [(w, e) for w, e in dashboard_queries()]
        recorded = set()
        for path, rules in rule_files():
            for r in (r for g in rules["groups"] for r in g["rules"]):
                sources.append((f"{path}: {r.get('alert') or r.get('record')}", r["expr"]))
                recorded.add(r.get("record"))
        for where, expr in sources:
            for name in referenced_metrics(expr) - optional:
                self.assertTrue(name in families, f"{where} reads {name}, which the "
                                                  f"gateway does not export:\n{expr}")
            for rec in re.findall(r"\bgame_gateway:[a-z0-9_:]+", expr):
                self.assertIn(rec, recorded, where)


class Boolified(unittest.TestCase):
    def test_comparisons_outside_matchers_get_bool(self):
        self.assertEqual(boolified('max(x{a!="",b=~"c>d"}[5m]) == 1'),
                         'max(x{a!="",b=~"c>d"}[5m]) == bool 1')
        self.assertEqual(boolified("a > 0.2 and b >= bool 1"), "a > bool 0.2 and b >= bool 1")
        self.assertEqual(boolified('x{y="a<b"} < 2'), 'x{y="a<b"} < bool 2')


if __name__ == "__main__":
    unittest.main(verbosity=2)
