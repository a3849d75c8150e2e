#!/usr/bin/env python3
"""Goodbyes when the real gateway drains or stops (docs/admin.md, "Signals").

At the end of a drain (SIGTERM, drain_timeout passed) and on a stop (SIGINT)
the gateway closes its client connections with a flush and the reason
`shutdown`, bounded by the shutdown grace (1 s):
  - a WebSocket client (python3-websockets) gets close code 1001, not 1006,
    and the backend (tools/backend_sim) gets the session close;
  - a raw TCP client reading slowly gets every byte already queued for it
    (tcp_proxy chain, a backend of the test that sends 16 MiB);
  - a raw TCP client that never reads does not hold the stop: the gateway
    exits within the grace and logs the forced close.
Each test runs its own gateway (it stops it). Run by
//test/integration:shutdown_test (cwd: the runfiles root).
"""
import array
import asyncio
import fcntl
import json
import os
import re
import signal
import socket
import tempfile
import termios
import threading
import time
import unittest

import websockets
import websockets.exceptions

from transports_test import (BACKEND_SIM, GATEWAY, ORIGIN, Process, frame,  # same directory
                             parse_frames)

WS_EXAMPLE = "config/examples/tcp_ws.json"
GRACE_S = 1.0  # Worker::kShutdownGrace
# More than the gateway's socket send buffer can hold (tcp_wmem max, 4 MiB by
# default): most of it waits in the gateway's output buffer.
QUEUED_BYTES = 16 * 1024 * 1024


def start_gateway(cfg):
    """Writes `cfg` to a temp file and starts the gateway on it; returns
    (process, listener port, config file name)."""
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(cfg, f)
    f.close()
    gw = Process([GATEWAY, "--config", f.name])
    m = gw.wait_output(r"listener '\w+' listening on 127\.0\.0\.1:(\d+)")
    assert m, gw.output()
    return gw, int(m.group(1)), f.name


def wait_exit(gw, timeout):
    """Seconds until the gateway exited (asserting exit code 0), or fails."""
    t0 = time.monotonic()
    try:
        code = gw.proc.wait(timeout)
    except Exception:  # subprocess.TimeoutExpired
        raise AssertionError("gateway still running after %.1f s:\n%s" % (timeout, gw.output()))
    assert code == 0, "exit %s:\n%s" % (code, gw.output())
    return time.monotonic() - t0


class WebSocketGoodbye(unittest.TestCase):
    """tcp_ws.json (detect → websocket → framing → session → upstream) to
    backend_sim in echo mode."""

    def setUp(self):
        self.backend = Process([BACKEND_SIM, "--address", "127.0.0.1:0"])
        m = self.backend.wait_output(r"backend_sim listening on 127\.0\.0\.1:(\d+)\n")
        assert m, self.backend.output()
        with open(WS_EXAMPLE) as f:
            cfg = json.load(f)
        cfg["workers"] = 1
        cfg["drain_timeout"] = "1s"
        cfg["admin"]["address"] = "127.0.0.1:0"
        cfg["listeners"][0]["address"] = "127.0.0.1:0"
        cfg["clusters"][0]["hosts"] = [f"127.0.0.1:{m.group(1)}"]
        self.gw, self.port, self.cfg_file = start_gateway(cfg)

    def tearDown(self):
        self.gw.stop()
        self.backend.stop()
        os.unlink(self.cfg_file)

    async def session_then(self, sig):
        """Opens a WebSocket session (one frame echoed), sends `sig` to the
        gateway and returns the close code and reason the client got."""
        async with websockets.connect(f"ws://127.0.0.1:{self.port}/game", origin=ORIGIN,
                                      compression=None) as ws:
            await ws.send(frame(1, b"hello"))
            echoed = parse_frames(await asyncio.wait_for(ws.recv(), 5))[0]
            self.assertEqual(echoed[0][1], b"hello")
            os.kill(self.gw.proc.pid, sig)
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code, ws.close_reason

    def expect_goodbye(self, sig):
        code, reason = asyncio.run(self.session_then(sig))
        self.assertEqual(code, 1001, "close reason %r\n%s" % (reason, self.gw.output()))
        wait_exit(self.gw, 5)
        # The backend heard the session close before the gateway exited.
        self.backend.proc.send_signal(signal.SIGTERM)
        self.backend.proc.wait(5)
        stats = re.findall(r"opens=(\d+) closes=(\d+)", self.backend.output())
        self.assertTrue(stats, self.backend.output())
        self.assertEqual(stats[-1], ("1", "1"), self.backend.output())

    def test_drain_timeout_sends_1001(self):
        self.expect_goodbye(signal.SIGTERM)  # drain; the client stays past drain_timeout

    def test_stop_sends_1001(self):
        self.expect_goodbye(signal.SIGINT)


class Backend:
    """One accepted connection that is sent QUEUED_BYTES of a known pattern
    as soon as it arrives."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sent = threading.Event()
        self.conn = None
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.conn, _ = self.sock.accept()
        self.conn.sendall(pattern(QUEUED_BYTES))
        self.sent.set()

    def unsent(self):
        """Bytes still in this side's send queue (not yet acknowledged by the
        gateway's kernel)."""
        buf = array.array("i", [0])
        fcntl.ioctl(self.conn.fileno(), termios.TIOCOUTQ, buf)
        return buf[0]

    def close(self):
        if self.conn:
            self.conn.close()
        self.sock.close()


def pattern(n):
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


class RawClientGoodbye(unittest.TestCase):
    """A tcp_proxy listener whose output limits let it hold all of
    QUEUED_BYTES for a client that does not read."""

    def setUp(self):
        self.backend = Backend()
        cfg = {
            "workers": 1, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
            "listeners": [{
                "name": "raw", "address": "127.0.0.1:0",
                "output_high_watermark": 32 << 20, "max_output_bytes": 64 << 20,
                "filters": [{"name": "tcp_proxy",
                             "config": {"cluster": "sink",
                                        "buffer_high_watermark": 32 << 20}}]}],
            "clusters": [{"name": "sink", "hosts": [f"127.0.0.1:{self.backend.port}"]}],
        }
        self.gw, self.port, self.cfg_file = start_gateway(cfg)
        # A small receive buffer: most of the bytes wait in the gateway.
        self.client = socket.socket()
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.client.connect(("127.0.0.1", self.port))
        self.assertTrue(self.backend.sent.wait(10), "the backend could not send")
        deadline = time.monotonic() + 5
        while self.backend.unsent() > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the gateway reads what its kernel holds

    def tearDown(self):
        self.client.close()
        self.gw.stop()
        self.backend.close()
        os.unlink(self.cfg_file)

    def read_to_end(self, timeout):
        got = bytearray()
        self.client.settimeout(timeout)
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return bytes(got)

    def test_queued_bytes_reach_a_slow_reader_at_stop(self):
        os.kill(self.gw.proc.pid, signal.SIGINT)
        got = self.read_to_end(5)
        self.assertEqual(len(got), QUEUED_BYTES, self.gw.output())
        self.assertEqual(got, pattern(QUEUED_BYTES))
        self.assertLess(wait_exit(self.gw, 5), GRACE_S + 1)
        self.assertNotIn("forced", self.gw.output())

    def check_stalled_reader(self, sig, bound):
        t0 = time.monotonic()
        os.kill(self.gw.proc.pid, sig)
        wait_exit(self.gw, bound + 5)
        took = time.monotonic() - t0
        print("stalled reader: the gateway exited %.2f s after the signal" % took)
        self.assertLess(took, bound, self.gw.output())
        self.assertRegex(self.gw.output(),
                         r"shutdown: 1 connection\(s\) did not take their output within "
                         r"1000 ms; forced closed")

    def test_a_stalled_reader_does_not_hold_the_stop(self):
        self.check_stalled_reader(signal.SIGINT, GRACE_S + 1)

    def test_a_stalled_reader_does_not_hold_the_drain(self):
        self.check_stalled_reader(signal.SIGTERM, 1 + GRACE_S + 1)  # drain_timeout 1 s


if __name__ == "__main__":
    unittest.main(verbosity=2)
