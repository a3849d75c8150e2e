#!/usr/bin/env python3
"""A real browser against the real gateway: headless Chromium speaks ws:// and wss://.

The gateway (//core:gateway) runs config/examples/tcp_ws_wss.json with its addresses moved to
free loopback ports, its cluster pointed at a real tools/backend_sim (echo mode, pushing
msg_id 9001 to every session every 200ms) and allowed_origins set to the origin of the test
page. Debian's `chromium` (installed by tools/setup) runs headless and is driven through the
Chrome DevTools Protocol over its own WebSocket with python3-websockets — no npm, no
playwright: Debian packages only. The driver:
  - serves a page (browser_client.js inline) from a local HTTP server under the host names
    play.example.test / evil.example.test (mapped to 127.0.0.1 by --host-resolver-rules),
    so the page has a real origin and Chromium sends it as the Origin header;
  - opens the page in a new tab and calls runGameClient(url) with Runtime.evaluate: the page
    builds client frames with DataView into ArrayBuffers and sends them as one frame per
    message, two frames in one message, one frame split over two messages and a 1000-byte
    frame, and collects the binary messages that come back until the echoes and a push;
  - asserts on the result: each echo and the push in a binary message of its own, msg_ids,
    server_id 0, payload bytes, the close handshake (1000, clean), and the gateway's metrics;
  - from the page of another origin, the handshake is refused (403 from the origin check:
    the WebSocket errors and closes with 1006, forbidden_origin counted);
  - wss://: a test CA and a server certificate for 127.0.0.1 are made by tools/dev_cert at
    test time (never committed); the CA goes into an NSS database in Chromium's HOME
    (certutil, libnss3-tools), so Chromium verifies the gateway's chain and name for real.
The browser's results are printed (the test log shows what Chromium sent and received).
DocsSnippet checks that docs/transports.md's clientFrame is the function the browser ran.
Run by //test/integration:browser_test (cwd: the runfiles root).
"""
import asyncio
import base64
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import websockets

from gateway_metrics import metric, metrics  # test/integration/gateway_metrics.py

GATEWAY = "core/gateway"
BACKEND_SIM = "tools/backend_sim/backend_sim"
EXAMPLE = "config/examples/tcp_ws_wss.json"
DEV_CERT = "tools/dev_cert"
CLIENT_JS = "test/integration/browser_client.js"
TRANSPORTS_MD = "docs/transports.md"
CHROMIUM = "/usr/bin/chromium"
SERVER_ID = (1 << 16) | (200 << 8)  # world 1, server_type 200 (routed to "game")
PUSH_TYPE = 9001
GOOD_HOST = "play.example.test"
EVIL_HOST = "evil.example.test"
# How long one browser client may take (JS timer) and one DevTools call (driver).
CLIENT_TIMEOUT_MS = 15000
CDP_TIMEOUT_S = 40

def log(msg):
    print(msg, flush=True)


def parse_frames(data):
    """Returns ([(length, msg_id, server_id, payload)], rest) for the client frames in data."""
    out = []
    while len(data) >= 8:
        n = int.from_bytes(data[0:2], "little")
        if len(data) < 8 + n:
            break
        out.append((n, int.from_bytes(data[2:4], "little"), int.from_bytes(data[4:8], "little"),
                    data[8:8 + n]))
        data = data[8 + n:]
    return out, data


def tail(path, lines=40, skip=r"dbus|DBus|zygote"):
    """The last lines of a log file, without Chromium's harmless D-Bus noise."""
    try:
        with open(path, errors="replace") as f:
            kept = [l for l in f.read().splitlines() if not re.search(skip, l)]
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(kept[-lines:])


class Process:
    """A child with its output in a file; stop() ends it (and its process group)."""

    def __init__(self, argv, log_path, env=None, group=False):
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=group)
        self.group = group

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_output(self, pattern, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.output())
            if m or self.proc.poll() is not None:
                return m or re.search(pattern, self.output())
            time.sleep(0.05)
        return None

    def signal(self, sig):
        try:
            if self.group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop(self, grace=5):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Chromium's helpers (zygote, renderers, GPU, network) share its process group.
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class PageServer:
    """Serves the test page (browser_client.js inline) on 127.0.0.1 in a thread."""

    def __init__(self):
        with open(CLIENT_JS) as f:
            page = ("<!doctype html><meta charset=utf-8><title>gateway browser test</title>"
                    "<script>\n" + f.read() + "\n</script>").encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/favicon.ico":
                    self.send_response(204)
                    self.end_headers()
                    return
                if self.path.split("?")[0] != "/game.html":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, fmt, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host):
        return f"http://{host}:{self.port}/game.html"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def trust_ca_in_nss(home, ca):
    """Adds the CA to the NSS database Chromium reads ($HOME/.pki/nssdb) as a trusted SSL CA."""
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db, exist_ok=True)
    for argv in (["certutil", "-N", "-d", "sql:" + db, "--empty-password"],
                 ["certutil", "-A", "-d", "sql:" + db, "-n", "browser_test CA", "-t", "C,,",
                  "-i", ca]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{r.stdout}{r.stderr}")


class Chromium:
    """Headless Chromium with a temp profile, driven over the DevTools protocol."""

    def __init__(self, workdir, home):
        self.profile = os.path.join(workdir, "profile")
        self.stderr_path = os.path.join(workdir, "chromium.log")
        # HOME holds the NSS database (the test CA); caches and config stay in the temp dir.
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--no-proxy-server", "--disable-dev-shm-usage",
                "--disable-features=HttpsUpgrades,MediaRouter,OptimizationHints",
                f"--host-resolver-rules=MAP {GOOD_HOST} 127.0.0.1, MAP {EVIL_HOST} 127.0.0.1",
                "about:blank"]
        self.proc = Process(argv, self.stderr_path, env=env, group=True)
        # Chromium writes "PORT\n/devtools/browser/ID" once DevTools listens.
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.proc.returncode}:\n"
                                   + self.stderr_tail())
            try:
                with open(port_file) as f:
                    lines = f.read().split()
                if len(lines) == 2:
                    self.endpoint = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("chromium: no DevToolsActivePort within 60s:\n" +
                               self.stderr_tail())
        with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/version", timeout=10) as r:
            self.version = json.load(r).get("Browser", "?")

    def stderr_tail(self):
        return "--- chromium stderr (tail) ---\n" + tail(self.stderr_path)

    def run_in_page(self, page_url, expression):
        """Opens page_url in a new tab, evaluates the expression (a promise) there and
        returns (its value, the page's console and log lines, e.g. Chromium's own
        "WebSocket connection to ... failed" message); closes the tab."""
        return asyncio.run(asyncio.wait_for(self._run_in_page(page_url, expression),
                                            CDP_TIMEOUT_S + 20))

    async def _run_in_page(self, page_url, expression):
        async with websockets.connect(self.endpoint, max_size=None, open_timeout=10) as cdp:
            ids = iter(range(1, 1 << 30))
            console = []

            async def call(method, session=None, **params):
                my = next(ids)
                msg = {"id": my, "method": method, "params": params}
                if session:
                    msg["sessionId"] = session
                await cdp.send(json.dumps(msg))
                while True:  # other events and replies are skipped
                    r = json.loads(await asyncio.wait_for(cdp.recv(), CDP_TIMEOUT_S))
                    if r.get("method") == "Log.entryAdded":
                        e = r["params"]["entry"]
                        console.append(f"[{e['source']} {e['level']}] {e['text']}")
                    elif r.get("method") == "Runtime.consoleAPICalled":
                        console.append(f"[console {r['params']['type']}] " + " ".join(
                            str(a.get("value", a.get("description", "")))
                            for a in r["params"]["args"]))
                    if r.get("id") == my:
                        if "error" in r:
                            raise RuntimeError(f"DevTools {method}: {r['error']}")
                        return r["result"]

            target = (await call("Target.createTarget", url="about:blank"))["targetId"]
            try:
                session = (await call("Target.attachToTarget", targetId=target,
                                      flatten=True))["sessionId"]
                await call("Page.enable", session)
                await call("Log.enable", session)
                await call("Runtime.enable", session)
                nav = await call("Page.navigate", session, url=page_url)
                if nav.get("errorText"):
                    raise RuntimeError(f"navigating to {page_url}: {nav['errorText']}")
                # The page's script defines runGameClient; wait for it.
                deadline = time.time() + CDP_TIMEOUT_S
                while True:
                    r = await call("Runtime.evaluate", session, returnByValue=True,
                                   expression="typeof runGameClient === 'function' && "
                                              "location.href")
                    if r["result"].get("value") == page_url:
                        break
                    if time.time() > deadline:
                        raise RuntimeError(f"{page_url} did not load: {r}")
                    await asyncio.sleep(0.05)
                r = await call("Runtime.evaluate", session, expression=expression,
                               awaitPromise=True, returnByValue=True)
                if "exceptionDetails" in r:
                    raise RuntimeError(f"page script threw: {r['exceptionDetails']}")
                await asyncio.sleep(0.1)  # the log entries of the last events
                await call("Runtime.evaluate", session, expression="0")
                return r["result"]["value"], console
            finally:
                await call("Target.closeTarget", targetId=target)

    def stop(self):
        # A graceful Browser.close lets Chromium reap its helpers; then the group is killed.
        async def close():
            async with websockets.connect(self.endpoint, open_timeout=5) as cdp:
                await cdp.send(json.dumps({"id": 1, "method": "Browser.close"}))
                await asyncio.wait_for(cdp.recv(), 5)
        if getattr(self, "endpoint", None) and self.proc.proc.poll() is None:
            try:
                asyncio.run(asyncio.wait_for(close(), 10))
                self.proc.proc.wait(10)
            except Exception:  # noqa: BLE001 — falls back to signals
                pass
        self.proc.stop()



class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(CHROMIUM, os.X_OK):
            raise RuntimeError(f"{CHROMIUM} not found: run tools/setup (Debian package chromium)")
        cls.tmp = tempfile.mkdtemp(prefix="browser_test.", dir=os.environ.get("TEST_TMPDIR"))
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls.procs = []
        cls.chromium = None
        cls.pages = PageServer()
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        cls.backend = Process([BACKEND_SIM, "--address", "127.0.0.1:0", "--quiet",
                               "--push-interval", "200ms", "--push-type", str(PUSH_TYPE)],
                              os.path.join(cls.tmp, "backend_sim.log"))
        cls.procs.append(cls.backend)
        m = cls.backend.wait_output(r"backend_sim listening on 127\.0\.0\.1:(\d+)\n")
        assert m, "backend_sim did not start:\n" + cls.backend.output()
        with open(EXAMPLE) as f:
            cfg = json.load(f)
        cfg["admin"]["address"] = "127.0.0.1:0"
        listener = cfg["listeners"][0]
        listener["address"] = "127.0.0.1:0"
        cfg["clusters"][0]["hosts"] = [f"127.0.0.1:{m.group(1)}"]
        cls.good_origin = f"http://{GOOD_HOST}:{cls.pages.port}"
        filters = listener["filters"]
        for f in filters:
            if f["name"] == "websocket":
                f["config"]["allowed_origins"] = [cls.good_origin]
            if f["name"] == "tls":  # the example's dev-certs/, made here by tools/dev_cert
                for key in ("cert_chain_file", "private_key_file"):
                    f["config"][key] = os.path.join(cls.tmp, f["config"][key])
        out = subprocess.run([DEV_CERT, os.path.join(cls.tmp, "dev-certs")], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        trust_ca_in_nss(cls.home, os.path.join(cls.tmp, "dev-certs", "ca.pem"))
        log("gateway chain: " + " -> ".join(f["name"] for f in filters))
        cls.cfg_path = os.path.join(cls.tmp, "gateway.json")
        with open(cls.cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        out = subprocess.run([GATEWAY, "--check-config", cls.cfg_path], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        cls.gw = Process([GATEWAY, "--config", cls.cfg_path], os.path.join(cls.tmp, "gateway.log"))
        cls.procs.append(cls.gw)
        m = cls.gw.wait_output(r"listener 'game' listening on 127\.0\.0\.1:(\d+)")
        assert m, "gateway did not start:\n" + cls.gw.output()
        cls.port = int(m.group(1))
        m = cls.gw.wait_output(r"admin listening on 127\.0\.0\.1:(\d+)")
        assert m, "gateway admin did not start:\n" + cls.gw.output()
        cls.admin = int(m.group(1))
        cls.chromium = Chromium(cls.tmp, cls.home)
        log(f"browser: {cls.chromium.version} (headless, DevTools protocol)")
        log(f"page: {cls.pages.url(GOOD_HOST)}  origin: {cls.good_origin}")

    @classmethod
    def tearDownClass(cls):
        if cls.chromium:
            cls.chromium.stop()
        for p in reversed(cls.procs):
            p.stop()
        cls.pages.stop()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def diagnostics(self):
        return ("\n" + self.chromium.stderr_tail() +
                "\n--- gateway log (tail) ---\n" + tail(self.gw.log_path, 30, skip=r"^$"))

    def browser_client(self, page_host, url):
        """Runs runGameClient(url) in a page of page_host; prints and returns its result."""
        expr = f"runGameClient({json.dumps(url)}, {SERVER_ID}, {PUSH_TYPE}, {CLIENT_TIMEOUT_MS})"
        try:
            r, console = self.chromium.run_in_page(self.pages.url(page_host), expr)
        except Exception as e:  # noqa: BLE001 — re-raised with the logs
            raise AssertionError(f"driving chromium failed: {e!r}" + self.diagnostics()) from e
        log(f"browser: page origin {r['origin']} -> {url}: opened={r['opened']} "
            f"error={r['error']} close={r['closeCode']} reason={r['closeReason']!r} "
            f"clean={r['wasClean']} timed_out={r['timedOut']} in {r['ms']} ms, "
            f"{len(r['messages'])} messages")
        for line in console:
            log(f"  page log: {line}")
        r["console"] = console
        for i, m in enumerate(r["messages"]):
            if m["type"] != "binary":
                log(f"  message {i}: {m['type']} {m['hex']!r}")
                continue
            data = bytes.fromhex(m["hex"])
            frames, rest = parse_frames(data)
            desc = "; ".join(f"len={n} msg_id={mid} server_id={sid} payload="
                             f"{(p[:40] + (b'...' if len(p) > 40 else b''))!r}"
                             for n, mid, sid, p in frames)
            log(f"  message {i}: binary {len(data)} bytes: {desc}"
                + (f" + {len(rest)} stray bytes" if rest else ""))
        return r

    def assert_game_session(self, r):
        """The echoes and a push, each in a binary message of its own; a clean 1000 close."""
        ctx = self.diagnostics()
        self.assertTrue(r["opened"], "the WebSocket never opened" + ctx)
        self.assertFalse(r["timedOut"], "no echoes + push within the client timeout" + ctx)
        self.assertFalse(r["error"], ctx)
        echoes, pushes = {}, []
        for m in r["messages"]:
            self.assertEqual(m["type"], "binary", m)
            frames, rest = parse_frames(bytes.fromhex(m["hex"]))
            self.assertEqual(len(frames), 1, f"not one client frame per message: {m}")
            self.assertEqual(rest, b"", m)
            n, msg_id, server_id, payload = frames[0]
            self.assertEqual(server_id, 0, "frames to a client carry server_id 0")
            if msg_id == PUSH_TYPE:
                pushes.append(payload)
            else:
                self.assertNotIn(msg_id, echoes, "echo received twice")
                echoes[msg_id] = payload
        self.assertEqual(echoes, {
            101: b"browser one", 102: b"two-a", 103: b"two-b",
            104: b"split over two messages", 105: bytes(i % 251 for i in range(1000))})
        self.assertTrue(pushes, "no backend push reached the browser")
        for p in pushes:
            self.assertRegex(p, rb"^push \d+$")
        self.assertEqual(r["closeCode"], 1000)
        self.assertTrue(r["wasClean"])

    def wait_metrics(self, before, name, want, **labels):
        deadline = time.time() + 5
        while True:
            now = metrics(self.admin)
            got = metric(now, name, **labels) - metric(before, name, **labels)
            if got >= want or time.time() > deadline:
                return got

    def test_ws_game_client_in_chromium(self):
        before = metrics(self.admin)
        r = self.browser_client(GOOD_HOST, f"ws://127.0.0.1:{self.port}/game")
        self.assert_game_session(r)
        self.assertEqual(r["origin"], self.good_origin)
        self.assertEqual(self.wait_metrics(before, "game_gateway_websocket_handshakes_total", 1,
                                           transport="ws"), 1)
        self.assertEqual(self.wait_metrics(before, "game_gateway_connections_by_transport_total",
                                           1, transport="ws"), 1)
        self.assertEqual(self.wait_metrics(before, "game_gateway_websocket_close_codes_total", 1,
                                           direction="received", code="1000"), 1)

    def test_a_page_of_another_origin_is_refused(self):
        before = metrics(self.admin)
        r = self.browser_client(EVIL_HOST, f"ws://127.0.0.1:{self.port}/game")
        self.assertEqual(r["origin"], f"http://{EVIL_HOST}:{self.pages.port}")
        self.assertFalse(r["opened"], "a page of another origin got a WebSocket")
        self.assertTrue(r["error"])
        self.assertEqual(r["closeCode"], 1006)
        self.assertEqual(r["messages"], [])
        # Chromium's own account of the refusal.
        self.assertTrue(any("WebSocket" in line and "403" in line for line in r["console"]), r["console"])
        # Refused by the origin check (403), not by anything else.
        self.assertEqual(self.wait_metrics(before, "game_gateway_websocket_handshake_failures_total",
                                           1, reason="forbidden_origin"), 1)
        self.assertEqual(metric(metrics(self.admin), "game_gateway_websocket_handshakes_total") -
                         metric(before, "game_gateway_websocket_handshakes_total"), 0)

    def test_wss_game_client_in_chromium(self):
        before = metrics(self.admin)
        r = self.browser_client(GOOD_HOST, f"wss://127.0.0.1:{self.port}/game")
        self.assert_game_session(r)
        self.assertEqual(self.wait_metrics(before, "game_gateway_websocket_handshakes_total", 1,
                                           transport="wss"), 1)
        self.assertEqual(self.wait_metrics(before, "game_gateway_connections_by_transport_total",
                                           1, transport="wss"), 1)


class DocsSnippet(unittest.TestCase):
    def test_the_docs_build_frames_like_the_tested_client(self):
        """docs/transports.md's clientFrame is the function the browser ran."""
        def client_frame(text):
            m = re.search(r"^function clientFrame\(.*?^}", text, re.M | re.S)
            self.assertIsNotNone(m, "no clientFrame function")
            # Comments differ (the docs annotate the payload's type).
            return "".join(re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(0)).split())
        with open(CLIENT_JS) as f:
            tested = client_frame(f.read())
        with open(TRANSPORTS_MD) as f:
            self.assertEqual(client_frame(f.read()), tested)


if __name__ == "__main__":
    unittest.main(verbosity=2)
