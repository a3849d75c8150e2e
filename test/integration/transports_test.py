#!/usr/bin/env python3
"""Raw TCP, TLS, WebSocket, WebSocket over TLS and plain HTTP clients on one
listener of the real gateway.

The gateway (//core:gateway) runs config/examples/tcp_ws_wss.json with its
addresses moved to free loopback ports, its certificate made by tools/dev_cert
in a temp dir, and its cluster to a real tools/backend_sim (echo mode, pushing
to every session). At the same time:
  - raw TCP clients, and the same over TLS (Python's ssl, trusting the test
    CA), send client frames and read the echoes and a push;
  - WebSocket clients (python3-websockets, a real RFC 6455 client: masking,
    its own handshake check, ping/pong, close handshake) send client frames
    as binary messages — one frame per message, two frames in one message,
    one frame split over two messages — and get each echoed frame, and the
    push, in a binary message of its own; and the same over wss://;
  - a plain HTTP client gets 426 Upgrade Required;
  - bad WebSocket upgrades get their status (403 origin, 404 path, 426
    version) and a text message gets close 1003;
and the metrics count connections by transport (tcp, tls, ws, wss, http),
the handshake failures and close codes, and backend_sim saw the sessions of
every kind. A second gateway with ip_limiter's message_rate_limit shows that
the limit counts client frames on every transport alike: a raw TCP, TLS, ws
and wss client under the burst are served, and each is closed (reason
message_rate) once over it, however its frames are packed in messages. Run by //test/integration:transports_test (cwd: the runfiles
root).
"""
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import websockets
import websockets.exceptions

from gateway_metrics import metric, metrics  # test/integration/gateway_metrics.py

GATEWAY = "core/gateway"
BACKEND_SIM = "tools/backend_sim/backend_sim"
EXAMPLE = "config/examples/tcp_ws_wss.json"
DEV_CERT = "tools/dev_cert"
ORIGIN = "https://play.example.com"
SERVER_ID = (1 << 16) | (200 << 8)  # world 1, server_type 200 (routed to "game")
MAX_FRAME_BYTES = 4096  # framing's limit in the test's config


def frame(msg_id, payload, server_id=SERVER_ID):
    return struct.pack("<HHI", len(payload), msg_id, server_id) + payload


def parse_frames(data):
    out = []
    while len(data) >= 8:
        n, msg_id, sid = struct.unpack("<HHI", data[:8])
        if len(data) < 8 + n:
            break
        out.append((msg_id, data[8:8 + n]))
        data = data[8 + n:]
    return out, data


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

    def wait_output(self, pattern, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                return re.search(pattern, self.output())
            time.sleep(0.05)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        os.unlink(self.log.name)


class RawClient:
    """Client frames over TCP, or over TLS when given an ssl context."""

    def __init__(self, port, tls=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def frames(self, count, timeout=5):
        deadline = time.time() + timeout
        got = []
        while len(got) < count and time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
            more, self.buf = parse_frames(self.buf)
            got += more
        return got

    def close(self):
        self.sock.close()



class GatewayCase(unittest.TestCase):
    """Starts backend_sim and the gateway with the example config (ip_limiter's
    config updated with the class's IP_LIMITER) for the class's tests."""
    IP_LIMITER = {}

    @classmethod
    def setUpClass(cls):
        # The example names dev-certs/ relative to the working directory, as
        # `tools/dev_cert && bazel-bin/core/gateway --config config/examples/...`
        # would in a checkout: made here in a temp dir the paths are moved to.
        cls.tmp = tempfile.mkdtemp()
        certs = os.path.join(cls.tmp, "dev-certs")
        out = subprocess.run([DEV_CERT, certs], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        cls.tls_ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        cls.backend = Process([BACKEND_SIM, "--address", "127.0.0.1:0", "--quiet",
                               "--push-interval", "200ms", "--push-type", "9001"])
        m = cls.backend.wait_output(r"backend_sim listening on 127\.0\.0\.1:(\d+)\n")
        assert m, cls.backend.output()
        with open(EXAMPLE) as f:
            cfg = json.load(f)
        cfg["admin"]["address"] = "127.0.0.1:0"
        cfg["listeners"][0]["address"] = "127.0.0.1:0"
        cfg["clusters"][0]["hosts"] = [f"127.0.0.1:{m.group(1)}"]
        for f in cfg["listeners"][0]["filters"]:
            if f["name"] == "ip_limiter":  # every client of the test comes from 127.0.0.1
                f["config"]["connection_rate_limit"] = 1000
                f["config"]["connection_burst"] = 1000
                f["config"].update(cls.IP_LIMITER)
            if f["name"] == "framing":  # test_an_oversized_frame_gets_close_1009
                f["config"]["max_frame_bytes"] = MAX_FRAME_BYTES
            if f["name"] == "tls":
                for key in ("cert_chain_file", "private_key_file"):
                    f["config"][key] = os.path.join(cls.tmp, f["config"][key])
        cls.cfg_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(cfg, cls.cfg_file)
        cls.cfg_file.close()
        out = subprocess.run([GATEWAY, "--check-config", cls.cfg_file.name], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        cls.gw = Process([GATEWAY, "--config", cls.cfg_file.name])
        m = cls.gw.wait_output(r"listener 'game' listening on 127\.0\.0\.1:(\d+)")
        assert m, cls.gw.output()
        cls.port = int(m.group(1))
        m = cls.gw.wait_output(r"admin listening on 127\.0\.0\.1:(\d+)")
        assert m, cls.gw.output()
        cls.admin = int(m.group(1))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.backend.stop()
        os.unlink(cls.cfg_file.name)
        shutil.rmtree(cls.tmp)

    def ws_url(self, path="/game", scheme="ws"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class Transports(GatewayCase):

    async def ws_client(self, n, secure=False):
        kw = {"ssl": self.tls_ctx} if secure else {}
        async with websockets.connect(self.ws_url(scheme="wss" if secure else "ws"), origin=ORIGIN,
                                      compression=None, max_size=None, **kw) as ws:
            # One frame per message.
            await ws.send(frame(100 + n, b"ws one %d" % n))
            # Two frames in one message.
            await ws.send(frame(200 + n, b"two-a") + frame(300 + n, b"two-b"))
            # One frame split over two messages.
            f = frame(400 + n, b"split over two messages")
            await ws.send(f[:5])
            await ws.send(f[5:])
            echoes, pushes = [], 0
            deadline = time.time() + 8
            while (len(echoes) < 4 or pushes == 0) and time.time() < deadline:
                msg = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.time()))
                self.assertIsInstance(msg, bytes)
                frames, rest = parse_frames(msg)
                # Each binary message is exactly one client frame.
                self.assertEqual(len(frames), 1, msg)
                self.assertEqual(rest, b"")
                msg_id, payload = frames[0]
                if msg_id == 9001:
                    pushes += 1
                else:
                    echoes.append((msg_id, payload))
            await ws.ping(b"still there")
            self.assertEqual(sorted(echoes), sorted([
                (100 + n, b"ws one %d" % n), (200 + n, b"two-a"), (300 + n, b"two-b"),
                (400 + n, b"split over two messages")]))
            self.assertGreater(pushes, 0)
        # The close handshake completed with 1000 (the library checks the echo).
        self.assertEqual(ws.close_code, 1000)

    def raw_client(self, n, secure=False):
        c = RawClient(self.port, self.tls_ctx if secure else None)
        try:
            c.send(frame(500 + n, b"raw %d" % n))
            got, deadline = [], time.time() + 8
            while time.time() < deadline and not (any(m == 500 + n for m, _ in got) and
                                                  any(m == 9001 for m, _ in got)):
                got += c.frames(1, timeout=max(0.1, deadline - time.time()))
            self.assertIn((500 + n, b"raw %d" % n), got)
            self.assertTrue(any(m == 9001 for m, _ in got), got)
        finally:
            c.close()

    def plain_http(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/")
        r = conn.getresponse()
        self.assertEqual(r.status, 426)
        self.assertEqual(r.getheader("Upgrade"), "websocket")
        r.read()
        conn.close()

    def test_every_kind_of_client_on_one_listener_at_once(self):
        before = metrics(self.admin)

        async def all_clients():
            loop = asyncio.get_running_loop()
            tasks = [self.ws_client(n) for n in range(4)]
            tasks += [self.ws_client(10 + n, secure=True) for n in range(3)]
            tasks += [loop.run_in_executor(None, self.raw_client, n) for n in range(4)]
            tasks += [loop.run_in_executor(None, self.raw_client, 10 + n, True) for n in range(3)]
            tasks += [loop.run_in_executor(None, self.plain_http) for _ in range(2)]
            await asyncio.gather(*tasks)

        asyncio.run(all_clients())
        deadline = time.time() + 5
        while time.time() < deadline:
            m = metrics(self.admin)
            counted = {t: metric(m, "game_gateway_connections_by_transport_total", transport=t) -
                       metric(before, "game_gateway_connections_by_transport_total", transport=t)
                       for t in ("ws", "tcp", "wss", "tls")}
            if counted["ws"] >= 4 and counted["tcp"] >= 4 and counted["wss"] >= 3 and \
                    counted["tls"] >= 3:
                break
            time.sleep(0.1)

        def delta(name, **labels):
            return metric(m, name, **labels) - metric(before, name, **labels)

        self.assertEqual(delta("game_gateway_connections_by_transport_total", transport="ws"), 4)
        self.assertEqual(delta("game_gateway_connections_by_transport_total", transport="tcp"), 4)
        self.assertEqual(delta("game_gateway_connections_by_transport_total", transport="wss"), 3)
        self.assertEqual(delta("game_gateway_connections_by_transport_total", transport="tls"), 3)
        self.assertEqual(delta("game_gateway_connections_by_transport_total", transport="http"), 2)
        self.assertEqual(delta("game_gateway_tls_handshakes_total"), 6)
        self.assertEqual(delta("game_gateway_websocket_handshakes_total", transport="ws"), 4)
        self.assertEqual(delta("game_gateway_websocket_handshakes_total", transport="wss"), 3)
        self.assertEqual(delta("game_gateway_websocket_close_codes_total", direction="received",
                               code="1000"), 7)
        self.assertEqual(delta("game_gateway_websocket_close_codes_total", direction="sent",
                               code="1000"), 7)
        self.assertGreaterEqual(delta("game_gateway_websocket_frames_total", direction="in",
                                      opcode="ping"), 4)
        # Sessions of every kind reached the same backend.
        self.assertGreaterEqual(delta("game_gateway_frames_total", direction="in"),
                                (4 + 3) * 4 + 4 + 3)

    def refused(self, path="/game", origin=ORIGIN, **kw):
        async def go():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                async with websockets.connect(self.ws_url(path), origin=origin, **kw):
                    pass
            return cm.exception.status_code
        return asyncio.run(go())

    def test_bad_upgrades_get_their_status(self):
        before = metrics(self.admin)
        self.assertEqual(self.refused(origin="https://evil.example"), 403)
        self.assertEqual(self.refused(path="/other"), 404)
        # A version the gateway does not speak: 426 with Sec-WebSocket-Version: 13.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /game HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        resp = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
        s.close()
        self.assertTrue(resp.startswith(b"HTTP/1.1 426 "), resp)
        self.assertIn(b"\r\nSec-WebSocket-Version: 13\r\n", resp)
        m = metrics(self.admin)
        for reason in ("forbidden_origin", "wrong_path", "bad_version"):
            self.assertEqual(metric(m, "game_gateway_websocket_handshake_failures_total",
                                    reason=reason) -
                             metric(before, "game_gateway_websocket_handshake_failures_total",
                                    reason=reason), 1, reason)

    def test_a_text_message_is_refused_with_1003(self):
        async def go():
            async with websockets.connect(self.ws_url(), origin=ORIGIN) as ws:
                await ws.send("text is not spoken here")
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), timeout=5)
                return cm.exception.rcvd.code if cm.exception.rcvd else None
        self.assertEqual(asyncio.run(go()), 1003)

    def test_an_oversized_frame_gets_close_1009(self):
        # framing (not websocket) refuses the client frame and closes: the
        # WebSocket client still gets a close frame with 1009 (not 1006), over
        # ws and over wss (the close frame passes through tls).
        async def go(secure):
            kw = {"ssl": self.tls_ctx} if secure else {}
            async with websockets.connect(self.ws_url(scheme="wss" if secure else "ws"),
                                          origin=ORIGIN, compression=None, **kw) as ws:
                await ws.send(frame(7, b"fine"))
                echo = await asyncio.wait_for(ws.recv(), timeout=5)
                while parse_frames(echo)[0][0][0] == 9001:  # a push came first
                    echo = await asyncio.wait_for(ws.recv(), timeout=5)
                self.assertEqual(parse_frames(echo)[0], [(7, b"fine")])
                await ws.send(frame(8, b"x" * (MAX_FRAME_BYTES + 1)))
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    while True:
                        await asyncio.wait_for(ws.recv(), timeout=5)
                return cm.exception.rcvd.code if cm.exception.rcvd else None
        before = metrics(self.admin)
        self.assertEqual(asyncio.run(go(False)), 1009)
        self.assertEqual(asyncio.run(go(True)), 1009)
        m = metrics(self.admin)
        self.assertEqual(metric(m, "game_gateway_websocket_close_codes_total", direction="sent",
                                code="1009") -
                         metric(before, "game_gateway_websocket_close_codes_total",
                                direction="sent", code="1009"), 2)


class MessageRateOnEveryTransport(GatewayCase):
    # A burst of 5 frames; refilling one frame every 10 s (none during a test).
    IP_LIMITER = {"message_rate_limit": 0.1, "message_burst": 5}

    def echoes(self, got):
        return sorted(f for f in got if f[0] != 9001)  # pushes do not count

    def raw_flood(self, secure):
        c = RawClient(self.port, self.tls_ctx if secure else None)
        try:
            c.send(b"".join(frame(600 + i, b"under %d" % i) for i in range(4)))
            got, deadline = [], time.time() + 8
            while len(self.echoes(got)) < 4 and time.time() < deadline:
                got += c.frames(1, timeout=max(0.1, deadline - time.time()))
            self.assertEqual(self.echoes(got), [(600 + i, b"under %d" % i) for i in range(4)])
            c.send(b"".join(frame(700 + i, b"over") for i in range(4)))
            c.sock.settimeout(5)
            while True:  # read until the gateway closes
                try:
                    if not c.sock.recv(65536):
                        break
                except ConnectionResetError:
                    break
        finally:
            c.close()

    async def ws_flood(self, secure):
        kw = {"ssl": self.tls_ctx} if secure else {}
        async with websockets.connect(self.ws_url(scheme="wss" if secure else "ws"), origin=ORIGIN,
                                      compression=None, **kw) as ws:
            # Four frames in one message: four tokens of the five, all served.
            await ws.send(b"".join(frame(600 + i, b"under %d" % i) for i in range(4)))
            got, deadline = [], time.time() + 8
            while len(self.echoes(got)) < 4 and time.time() < deadline:
                msg = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.time()))
                got += parse_frames(msg)[0]
            self.assertEqual(self.echoes(got), [(600 + i, b"under %d" % i) for i in range(4)])
            # Four more, one of them split over two messages: over the burst.
            f = frame(700, b"split")
            await ws.send(f[:3])
            await ws.send(f[3:] + b"".join(frame(701 + i, b"over") for i in range(3)))
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=5)

    def test_clients_over_the_message_rate_are_closed_on_every_transport(self):
        before = metrics(self.admin)
        self.raw_flood(secure=False)
        self.raw_flood(secure=True)
        asyncio.run(self.ws_flood(secure=False))
        asyncio.run(self.ws_flood(secure=True))
        def grew(m, name, reason):
            return metric(m, name, reason=reason) - metric(before, name, reason=reason)

        # A flushing close is counted when its socket closes, which may come
        # after the client saw the close frame: wait for both counts.
        deadline = time.time() + 5
        while time.time() < deadline:
            m = metrics(self.admin)
            if grew(m, "game_gateway_rate_limit_rejected_total", "message_rate") >= 4 and \
                    grew(m, "game_gateway_connection_closes_total", "rate_limited") >= 4:
                break
            time.sleep(0.1)
        self.assertEqual(metric(m, "game_gateway_rate_limit_rejected_total", reason="message_rate") -
                         metric(before, "game_gateway_rate_limit_rejected_total",
                                reason="message_rate"), 4)
        self.assertEqual(metric(m, "game_gateway_connection_closes_total", reason="rate_limited") -
                         metric(before, "game_gateway_connection_closes_total",
                                reason="rate_limited"), 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
