"""The processes tools/chaos and tools/soak drive: the real gateway binary and a real
backend (tools/backend_sim in echo mode), with the fault switches the scenarios use.

Defines free_port(), base_config() (the chaos config), Gateway (start under an optional
fd limit, SIGHUP, POST /drain, /metrics, RSS/CPU/fds from /proc), Backend (start, SIGKILL,
SIGSTOP/SIGCONT, restart on the same port), backend_connections() (established sockets to
a port, from /proc/net/tcp) and Sampler (RSS peak and CPU in a background asyncio task).
"""
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral
    range (so the clients' own connections cannot take it before the gateway binds it)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below the ephemeral range")


def base_config(listen_port, admin_port, backend_port, token_file):
    """The chaos config: config/gateway.json's chain and limits (ip_limiter 10 per IP,
    5 connects/s per IP, 1000 in all; breaker 5 failures after a 10 s reconnect grace, open
    1 s growing to 30 s; 4 backend connections
    per host), with framing timeouts shortened so each scenario ends in seconds
    (first_frame_timeout 2s, read_timeout 5s, idle_timeout 6s, slow_frame_time 1s), the
    reply watchdog's silence_timeout 3s (default 30s) and a 5 s drain. Returns a dict the scenarios may modify before Gateway.start()."""
    return {
        "workers": 2, "log_level": "warn", "drain_timeout": "5s",
        "admin": {"address": f"127.0.0.1:{admin_port}", "token_file": token_file},
        "listeners": [{
            "name": "game", "address": f"127.0.0.1:{listen_port}",
            "filters": [
                {"name": "ip_limiter", "config": {"max_connections_per_ip": 10,
                                                  "connection_rate_limit": 5,
                                                  "max_connections": 1000}},
                {"name": "framing", "config": {"max_frame_bytes": 65535, "read_timeout": "5s",
                                               "idle_timeout": "6s",
                                               "first_frame_timeout": "2s",
                                               "slow_frame_time": "1s"}},
                {"name": "session", "config": {"store": "memory", "shards": 16,
                                               "cleanup_interval": "5m",
                                               "idle_timeout": "30m"}},
                {"name": "breaker", "config": {"failure_threshold": 5,
                                               "reconnect_grace": "10s",
                                               "open_duration": "1s",
                                               "max_open_duration": "30s"}},
                {"name": "upstream", "config": {"routes": [
                    {"match": "200:0", "cluster": "game"}]}},
            ]}],
        "clusters": [{"name": "game", "hosts": [f"127.0.0.1:{backend_port}"],
                      "lb": "round_robin", "connect_timeout": "2s", "idle_timeout": "5m",
                      "max_connections_per_service": 4, "silence_timeout": "3s"}],
    }


def filter_config(cfg, name):
    """The `config` object of filter `name` in the first listener (to modify)."""
    for f in cfg["listeners"][0]["filters"]:
        if f["name"] == name:
            return f["config"]
    raise KeyError(name)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def metric_sum(metrics, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= ls)


def metric_by(metrics, name, label, **labels):
    """{label value: sum} of `name` grouped by one label."""
    out = {}
    want = set(labels.items())
    for (n, ls), v in metrics.items():
        if n == name and want <= ls:
            key = dict(ls).get(label, "")
            out[key] = out.get(key, 0) + v
    return out


def backend_connections(port):
    """Established TCP connections whose remote port is `port` (the gateway's side of its
    backend connections; the backend's own sockets have it as the local port)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


class Gateway:
    """The gateway binary run on one config in `workdir` (config and log files there)."""

    def __init__(self, binary, workdir, name, config, nofile=None):
        self.binary, self.workdir, self.name, self.config = binary, workdir, name, config
        self.nofile = nofile
        self.proc = None
        self.admin = config["admin"]["address"]
        self.log_path = os.path.join(workdir, f"{name}.gateway.log")
        self.config_path = os.path.join(workdir, f"{name}.json")
        self.last_metrics = {}

    def write_config(self):
        """Writes self.config to the config file (also before a SIGHUP that changes it)."""
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def start(self, timeout=15):
        """Starts the binary and waits until the admin API answers. Raises on failure."""
        self.write_config()
        cmd = [self.binary, "--config", self.config_path]
        if self.nofile:
            cmd = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--"] + cmd
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode} at start; log: "
                                   + open(self.log_path, errors="replace").read()[-2000:])
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway admin API did not answer within %ds" % timeout)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def metrics(self, timeout=3):
        """GET /metrics parsed (and remembered as last_metrics). Raises OSError."""
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=timeout) as r:
            self.last_metrics = parse_metrics(r.read().decode())
        return self.last_metrics

    def drain(self, token):
        """POST /drain with the bearer token; returns the HTTP status."""
        req = urllib.request.Request(f"http://{self.admin}/drain", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status

    def reload(self):
        """SIGHUP: reload the config file."""
        os.kill(self.pid, signal.SIGHUP)

    def rss_kb(self):
        """VmRSS in KiB from /proc/PID/status (0 if gone)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def cpu_seconds(self):
        """utime + stime of the process in seconds (/proc/PID/stat), or None if gone."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError):
            return None

    def fds(self):
        """Open fds of the process (0 if gone)."""
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def log_bytes(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Backend:
    """tools/backend_sim in echo mode on a fixed port, with fault switches."""

    def __init__(self, binary, port, log_path):
        self.binary, self.port, self.log_path = binary, port, log_path
        self.proc = None
        self.stopped = False

    def start(self, timeout=10):
        """Starts (or restarts) it on self.port and waits for its listening line."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--address", f"127.0.0.1:{self.port}",
                                      "--quiet"], stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise RuntimeError(f"backend_sim did not start on port {self.port}: {line!r}")
        self.stopped = False

    def kill(self):
        """SIGKILL (no FIN from the process: the kernel resets its connections)."""
        if self.stopped:
            self.cont()
        self.proc.kill()
        self.proc.wait()

    def stall(self):
        """SIGSTOP: the process reads and answers nothing; the kernel still accepts and
        acknowledges until its buffers fill (a stalled or blackholed peer, no RST/FIN)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        """SIGCONT: undoes stall()."""
        os.kill(self.proc.pid, signal.SIGCONT)
        self.stopped = False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            if self.stopped:
                self.cont()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Sampler:
    """Samples the gateway's RSS every `interval` s in a background task: peak and the
    series (t, rss_kb, cpu_s, fds). State: per scenario."""

    def __init__(self, gw, interval=0.2):
        self.gw, self.interval = gw, interval
        self.peak_kb = 0
        self.series = []
        self._task = None

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        while True:
            rss = self.gw.rss_kb()
            self.peak_kb = max(self.peak_kb, rss)
            self.series.append((time.monotonic(), rss, self.gw.cpu_seconds(), self.gw.fds()))
            await asyncio.sleep(self.interval)

    def stop(self):
        if self._task:
            self._task.cancel()
