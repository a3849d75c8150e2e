"""Shared helpers of the docs/ops tests (ops_test.py, ops_dashboards_test.py).

Defines the paths of the binaries and files under test (relative to the
runfiles root, the tests' cwd), the readers of docs/ops (manifests, the
ConfigMap's gateway config, metric names in PromQL), and the processes the
tests start: backend_sim and the gateway from the ConfigMap's config moved to
loopback ports. Every process started here is stopped by the test's cleanup.
"""
import copy
import glob
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

import yaml

GATEWAY = "core/gateway"
BACKEND_SIM = "tools/backend_sim/backend_sim"
OPS = "docs/ops"
PROMTOOL = "/usr/bin/promtool"

# Metric families that exist only when a given filter is in the chain.
FILTER_METRICS = {
    "breaker": ["game_gateway_circuit_breaker_state"],
    "session": ["game_gateway_sessions_active"],
    "ip_limiter": ["game_gateway_rate_limit_rejected_total"],
}


def load_manifests():
    """Every YAML document of docs/ops/k8s as (path, object), in file order."""
    docs = []
    for path in sorted(glob.glob(f"{OPS}/k8s/*.yaml")):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((path, doc))
    return docs


def find(docs, kind, name=None):
    """The manifest objects of `kind` (and `name`, if given)."""
    out = [d for _, d in docs if d.get("kind") == kind and
           (name is None or d["metadata"]["name"] == name)]
    return out


def configmap_config(docs):
    """The gateway config the Deployment mounts: the ConfigMap key its
    `--config` path names, parsed. Asserts the mount refers to the ConfigMap."""
    pod = find(docs, "Deployment")[0]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    cm = find(docs, "ConfigMap")[0]
    args = container["args"]
    path = args[args.index("--config") + 1]
    mount = next(m for m in container["volumeMounts"]
                 if path.startswith(m["mountPath"] + "/"))
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    assert vol["configMap"]["name"] == cm["metadata"]["name"], "mounted ConfigMap"
    return json.loads(cm["data"][path[len(mount["mountPath"]) + 1:]])


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def request(port, method, path):
    """(status, body) of one HTTP request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, body


def metric_families(text):
    """The family names a Prometheus text scrape declares (# TYPE lines)."""
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def metric_value(text, series):
    """The value of the sample named exactly `series` (name and labels), or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1:].split()[0])
    return None


def referenced_metrics(expr):
    """game_gateway_* families an expression reads (histogram suffixes folded)."""
    names = set()
    for n in re.findall(r"\b(game_gateway_[a-z0-9_]+)", expr):
        names.add(re.sub(r"_(bucket|count|sum)$", "", n))
    return names


def registered_filters():
    out = subprocess.run([GATEWAY, "--list-filters"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def runnable_config(config, filters):
    """(config without the filters this binary does not register, their names)."""
    cfg = copy.deepcopy(config)
    dropped = []
    for l in cfg["listeners"]:
        keep = []
        for f in l["filters"]:
            if f["name"] in filters:
                keep.append(f)
            else:
                dropped.append(f["name"])
        l["filters"] = keep
    if dropped:
        sys.stderr.write("WARNING: the gateway binary does not register %s yet: "
                         "dropped from the ConfigMap's chain for this test\n" % dropped)
    return cfg, dropped


class Process:
    """A child with its output in a temp file."""

    def __init__(self, argv):
        self.log = tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.log.close()

    def output(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait_output(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.output():
                return True
            if self.proc.poll() is not None:
                return needle in self.output()
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.unlink(self.log.name)


def token_file(test):
    """A temp file with a test admin token (the Secret's file in the pod),
    removed by the test's cleanup."""
    with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as t:
        t.write("ops-test-admin-token-0123456789\n")
    test.addCleanup(os.unlink, t.name)
    return t.name


def start_backend(test):
    """Starts backend_sim on a port the kernel picks; returns that port. (A
    port picked beforehand can be taken by a test running in parallel.)"""
    backend = Process([BACKEND_SIM, "--address", "127.0.0.1:0", "--quiet"])
    test.addCleanup(backend.stop)
    test.assertTrue(backend.wait_output("listening on"), backend.output())
    m = re.search(r"backend_sim listening on 127\.0\.0\.1:(\d+)\n", backend.output())
    test.assertTrue(m, backend.output())
    return int(m.group(1))


def start_gateway(test, cfg, backend_port, extra_hosts=None):
    """Starts the gateway from `cfg` with every address moved to a free
    loopback port, every cluster's hosts to backend_sim's port (plus the hosts
    `extra_hosts` maps the cluster's name to), the access log to stderr and a
    test admin token. Returns (Process, ports) where ports
    maps "admin", "health", "metrics" (when configured) and each listener's
    name to its bound port."""
    cfg = copy.deepcopy(cfg)
    cfg["admin"]["address"] = "127.0.0.1:0"
    cfg["admin"]["token_file"] = token_file(test)
    for key in ("health_listener", "metrics_listener"):
        if key in cfg:
            cfg[key] = "127.0.0.1:0"
    for l in cfg["listeners"]:
        l["address"] = "127.0.0.1:0"
    for c in cfg["clusters"]:
        c["hosts"] = [f"127.0.0.1:{backend_port}"] + (extra_hosts or {}).get(c["name"], [])
    if "access_log" in cfg:
        cfg["access_log"]["path"] = "stderr"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    test.addCleanup(os.unlink, f.name)
    gw = Process([GATEWAY, "--config", f.name])
    test.addCleanup(gw.stop)
    test.assertTrue(gw.wait_output("admin listening on"), gw.output())
    out = gw.output()
    ports = {"admin": int(re.search(r"admin listening on 127\.0\.0\.1:(\d+)", out).group(1))}
    for name, line in (("health", "health listener on"), ("metrics", "metrics listener on")):
        m = re.search(line + r" 127\.0\.0\.1:(\d+)", out)
        if m:
            ports[name] = int(m.group(1))
    for l in cfg["listeners"]:
        ports[l["name"]] = int(re.search(r"listener '%s' listening on 127\.0\.0\.1:(\d+)"
                                         % re.escape(l["name"]), out).group(1))
    gw.token_file = cfg["admin"]["token_file"]
    return gw, ports


def round_trip(port, service_type, msg_id=100, payload=b"hello"):
    """Sends one client frame to `service_type` on a new connection and reads
    the reply frame; returns the reply's bytes, or b"" if the gateway closed
    the connection (refused or no route) first."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(struct.pack("<HHI", len(payload), msg_id, service_type << 8) + payload)
        got = b""
        while len(got) < 8 or len(got) < 8 + struct.unpack("<H", got[:2])[0]:
            chunk = s.recv(4096)
            if not chunk:
                return b""
            got += chunk
        return got
    except ConnectionResetError:
        return b""
    finally:
        s.close()
