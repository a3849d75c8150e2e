#!/usr/bin/env python3
"""Measures the gateway's resident memory per idle connection and per session.

Starts backend_sim (or echo_server) and the real gateway with one chain,
opens N idle client connections, reads the gateway's VmRSS from
/proc/PID/status at each step, then (game chain) sends one frame on every
connection so each gets a session and a reply, and reads it again.
Loopback only; bounded in count and time; stops everything it started.

  bazel build -c opt //core:gateway //tools/backend_sim //tools/echo_server
  python3 docs/ops/measure_rss.py --connections 10000 --bin bazel-out/k8-opt/bin \
      [--chain full|game|tcp_proxy]

  full:      ip_limiter -> framing -> session -> breaker -> upstream (the ConfigMap's chain)
  game:      framing -> upstream
  tcp_proxy: tcp_proxy (one backend connection per client)

Prints one line per step and a summary (bytes per connection, per session).
docs/ops/capacity.md records the figures and the machine.
"""
import argparse
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid, seconds=1.5):
    time.sleep(seconds)
    return rss_kib(pid)


def spawn(argv):
    """Starts argv with its output in a temp file; returns (process, log path)."""
    log = tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, log.name


def wait_for(proc, log, needle, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log, errors="replace") as f:
            out = f.read()
        if needle in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log, errors="replace") as f:
        raise RuntimeError(f"did not see {needle!r}: {f.read()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--chain", choices=["full", "game", "tcp_proxy"], default="full")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, "bazel-bin"))
    args = ap.parse_args()
    n = args.connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))  # children inherit it

    backend_port = free_port()
    listen_port = free_port()
    if args.chain in ("full", "game"):
        backend, backend_log = spawn(
            [f"{args.bin}/tools/backend_sim/backend_sim", "--address",
             f"127.0.0.1:{backend_port}", "--quiet"])
        wait_for(backend, backend_log, "listening on")
        filters = [{"name": "framing", "config": {"idle_timeout": "1h", "read_timeout": "1h"}},
                   {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]
        if args.chain == "full":  # the production chain of docs/ops/k8s/configmap.yaml
            # Every client comes from 127.0.0.1 here: lift the per-IP limits.
            limits = {"max_connections_per_ip": 1000000, "connection_rate_limit": 1000000,
                      "connection_burst": 1000000, "max_connections": 1000000}
            filters = ([{"name": "ip_limiter", "config": limits}] + filters[:1] +
                       [{"name": "session", "config": {}}, {"name": "breaker", "config": {}}] +
                       filters[1:])
    else:
        backend, backend_log = spawn(
            [f"{args.bin}/tools/echo_server/echo_server", "--address", f"127.0.0.1:{backend_port}"])
        wait_for(backend, backend_log, "listening on")
        filters = [{"name": "tcp_proxy", "config": {"cluster": "game", "idle_timeout": "1h"}}]
    config = {"workers": args.workers, "admin": {"address": "127.0.0.1:0"},
              "listeners": [{"name": "game", "address": f"127.0.0.1:{listen_port}",
                             "filters": filters}],
              "clusters": [{"name": "game", "hosts": [f"127.0.0.1:{backend_port}"],
                            "connect_timeout": "2s"}]}
    cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(config, cfg)
    cfg.close()
    gw, gw_log = spawn([f"{args.bin}/core/gateway", "--config", cfg.name])
    socks = []
    try:
        wait_for(gw, gw_log, "admin listening on")
        base = settle(gw.pid)
        print(f"chain={args.chain} workers={args.workers}: base RSS {base} KiB")
        steps = sorted({n // 4, n // 2, n})
        deadline = time.time() + 300
        for target in steps:
            while len(socks) < target and time.time() < deadline:
                s = socket.create_connection(("127.0.0.1", listen_port), timeout=5)
                socks.append(s)
            r = settle(gw.pid)
            print(f"  {len(socks):6d} idle connections: RSS {r} KiB "
                  f"({(r - base) * 1024 / len(socks):.0f} B/connection)")
        idle = rss_kib(gw.pid)
        per_conn = (idle - base) * 1024 / len(socks)
        per_session = None
        if args.chain in ("full", "game"):
            frame = struct.pack("<HHI", 4, 100, 200 << 8) + b"ping"
            for s in socks:
                s.sendall(frame)
            for s in socks:
                s.settimeout(5)
                got = b""
                while len(got) < 12:
                    chunk = s.recv(12 - len(got))
                    if not chunk:
                        raise RuntimeError("gateway closed a connection")
                    got += chunk
            r = settle(gw.pid)
            per_session = (r - idle) * 1024 / len(socks)
            print(f"  {len(socks):6d} connections with a session (one frame each way): RSS {r} KiB "
                  f"(+{per_session:.0f} B/session)")
        print(json.dumps({"chain": args.chain, "workers": args.workers, "connections": len(socks),
                          "base_kib": base, "idle_kib": idle,
                          "bytes_per_connection": round(per_conn),
                          "bytes_per_session": round(per_session) if per_session else None}))
    finally:
        for s in socks:
            s.close()
        gw.send_signal(signal.SIGINT)
        backend.send_signal(signal.SIGTERM)
        gw.wait(10)
        backend.wait(10)
        for path in (cfg.name, gw_log, backend_log):
            os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
