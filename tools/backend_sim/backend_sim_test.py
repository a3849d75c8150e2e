#!/usr/bin/env python3
"""Drives tools/backend_sim over real sockets on 127.0.0.1 and checks its replies byte for byte.

Usage: backend_sim_test.py PATH_TO_BACKEND_SIM

Server frame (docs/protocol.md, core/sdk/wire.h), little-endian:
  i32 length (= 9 + payload), i32 type, u32 server_id (0), i64 object_id (session),
  u8 opcode, i64 session_id, payload.
Opcodes: 1 data, 2 session open, 3 session close, 4 kick, 5 bind player.
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time

SIM = None
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def frame(opcode, type_, session, payload=b""):
    """Builds a server frame from the spec with struct (independent of core/sdk/wire.h)."""
    return struct.pack("<iiIqBq", 9 + len(payload), type_, 0, session, opcode, session) + payload


def parse(buf):
    """Splits complete frames off `buf`. Returns (frames, rest); each frame is a dict."""
    out = []
    while len(buf) >= 29:
        length, type_, server_id, object_id, opcode, session = struct.unpack_from("<iiIqBq", buf)
        if len(buf) < 20 + length:
            break
        out.append(dict(type=type_, server_id=server_id, object_id=object_id, opcode=opcode,
                        session=session, payload=bytes(buf[29:20 + length]),
                        raw=bytes(buf[:20 + length])))
        buf = buf[20 + length:]
    return out, buf


class Sim:
    """One backend_sim process on a free port."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen([SIM, "--address", "127.0.0.1:0"] + list(flags),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.readline(10)
        m = re.match(r"backend_sim listening on 127\.0\.0\.1:(\d+)$", line or "")
        if not m:
            raise RuntimeError("no listening line, got %r" % line)
        self.port = int(m.group(1))

    def readline(self, timeout):
        deadline = time.time() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            ch = os.read(fd, 1)
            if not ch:
                break
            if ch == b"\n":
                return buf.decode()
            buf += ch
        return None

    def stats(self):
        self.proc.send_signal(signal.SIGUSR1)
        line = self.readline(5)
        check(line is not None and line.startswith("backend_sim stats: "),
              "SIGUSR1 prints a stats line (got %r)" % line)
        return dict(re.findall(r"(\w+)=(\S+)", line or ""))

    def stats_when(self, ready, timeout=10.0):
        """Stats once ready(stats) holds (or the last ones after `timeout`): what a client
        sent is counted when backend_sim reads it, which a loaded machine delays."""
        deadline = time.time() + timeout
        st = self.stats()
        while not ready(st) and time.time() < deadline:
            time.sleep(0.02)
            st = self.stats()
        return st

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        rest = self.proc.stdout.read().decode()
        err = self.proc.stderr.read().decode()
        check(rc == 0, "backend_sim exits 0 on SIGTERM (rc=%r, stderr=%s)" % (rc, err))
        check("backend_sim stats: " in rest, "a stats line is printed at exit (got %r)" % rest)
        return err


def recv_frames(sock, count, timeout=5.0, buf=b""):
    """Reads until `count` frames arrived (or timeout). Returns (frames, rest)."""
    frames = []
    deadline = time.time() + timeout
    sock.settimeout(0.2)
    while len(frames) < count and time.time() < deadline:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        got, buf = parse(buf)
        frames += got
    return frames, buf


def recv_for(sock, seconds):
    """Reads every frame that arrives within `seconds`."""
    frames, buf = [], b""
    deadline = time.time() + seconds
    sock.settimeout(0.05)
    while time.time() < deadline:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        got, buf = parse(buf)
        frames += got
    return frames


def is_closed(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_echo_kick_malformed():
    sim = Sim("--kick-msg-id", "77", "--name", "b1")
    a = sim.connect()
    s1, s2, s3 = 0x1122334455667788, 7, -2  # a large id, a small one, a negative i64
    # Byte-exact expectation written out by hand from the spec for one frame:
    # length 9+5=14, type 1001, server_id 0, object_id 7, opcode 1, session 7, "hello".
    hand = bytes.fromhex("0e000000" "e9030000" "00000000" "0700000000000000" "01"
                         "0700000000000000") + b"hello"
    check(frame(1, 1001, 7, b"hello") == hand, "test's frame builder matches the spec")

    opens = frame(2, 0, s1) + frame(2, 0, s2) + frame(2, 0, s3)
    datas = [frame(1, 1001, s2, b"hello"), frame(1, 1002, s1, b"\x00\x01\x02\xff" * 10),
             frame(1, 65535, s3, b"")]
    a.sendall(opens + b"".join(datas))
    frames, rest = recv_frames(a, 3)
    check(len(frames) == 3, "three echoes for three data frames (got %d)" % len(frames))
    for f, d in zip(frames, datas):
        check(f["raw"] == d, "echo is byte-identical: want %s got %s" % (d.hex(), f["raw"].hex()))
    check(frames and frames[0]["raw"] == hand, "first echo equals the hand-written bytes")

    # A frame split into single bytes is reassembled.
    split = frame(1, 5, s1, b"split-frame")
    for i in range(len(split)):
        a.sendall(split[i:i + 1])
        time.sleep(0.001)
    frames, rest = recv_frames(a, 1, buf=rest)
    check(len(frames) == 1 and frames[0]["raw"] == split, "byte-by-byte frame echoed intact")

    # A 1 MiB payload round-trips.
    big = bytes((i * 7) & 0xFF for i in range(1 << 20))
    a.sendall(frame(1, 9, s3, big))
    frames, rest = recv_frames(a, 1, timeout=10, buf=rest)
    check(len(frames) == 1 and frames[0]["payload"] == big and frames[0]["session"] == s3,
          "1 MiB payload echoed intact")

    # Kick: data with type 77 is answered with opcode 4 for that session, no echo.
    a.sendall(frame(1, 77, s2, b"kick me"))
    frames, rest = recv_frames(a, 1, buf=rest)
    check(len(frames) == 1 and frames[0]["raw"] == frame(4, 77, s2, b""),
          "kick frame for session %d (got %r)" % (s2, frames))
    check(not recv_for(a, 0.2), "no echo for the kick message")

    st = sim.stats()
    check(st.get("accepted") == "1" and st.get("open_conns") == "1", "stats conns %r" % st)
    check(st.get("opens") == "3" and st.get("kicks") == "1", "stats opens/kicks %r" % st)
    check(st.get("frames_in") == "6" and st.get("frames_out") == "5", "stats frames %r" % st)
    check(st.get("sessions") == "2", "kicked session no longer open %r" % st)
    check(st.get("name") == "b1", "stats line names the backend %r" % st)

    # Malformed frames close only their own connection.
    for bad_len in (5, 16 * 1024 * 1024 + 1, -1):
        b = sim.connect()
        b.sendall(frame(2, 0, 99) + struct.pack("<i", bad_len) + b"\x00" * 25)
        check(is_closed(b), "length %d closes the connection" % bad_len)
        b.close()
    a.sendall(frame(1, 3, s1, b"still alive"))
    frames, rest = recv_frames(a, 1, buf=rest)
    check(len(frames) == 1 and frames[0]["raw"] == frame(1, 3, s1, b"still alive"),
          "the other connection keeps working after a malformed one")

    # Session close is counted and forgotten (once backend_sim has read it).
    a.sendall(frame(3, 0, s1))
    st = sim.stats_when(lambda st: st.get("closes") == "1")
    check(st.get("malformed") == "3" and st.get("closes") == "1" and st.get("sessions") == "1",
          "stats after malformed/close %r" % st)
    check(st.get("accepted") == "4" and st.get("open_conns") == "1", "stats conns %r" % st)
    a.close()
    err = sim.stop()
    check("malformed frame (length=5" in err, "malformed frame is logged: %s" % err)


def test_push():
    sim = Sim("--push-interval", "50ms", "--push-type", "9001")
    a = sim.connect()
    b = sim.connect()
    a.sendall(frame(2, 0, 1) + frame(2, 0, 2) + frame(2, 0, 3) + frame(3, 0, 2))
    b.sendall(frame(1, 10, 40, b"x"))  # a data frame also makes a session known
    fa = recv_for(a, 0.5)
    fb = recv_for(b, 0.5)
    pushes_a = [f for f in fa if f["type"] == 9001]
    check(len(pushes_a) >= 6, "pushes arrive every 50ms (got %d)" % len(pushes_a))
    sessions = {f["session"] for f in pushes_a}
    check(sessions == {1, 3}, "pushes go only to open sessions 1 and 3 (got %r)" % sessions)
    for f in pushes_a:
        check(f["opcode"] == 1 and f["object_id"] == f["session"] and f["server_id"] == 0,
              "push is a data frame %r" % f)
        check(re.fullmatch(rb"push \d+", f["payload"]) is not None, "push payload %r" % f)
    by_session = {}
    for f in pushes_a:
        by_session.setdefault(f["session"], []).append(int(f["payload"].split()[1]))
    for sess, seqs in by_session.items():
        check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
              "push sequence increases for session %d: %r" % (sess, seqs))
    echo_b = [f for f in fb if f["type"] == 10]
    push_b = [f for f in fb if f["type"] == 9001]
    check(len(echo_b) == 1 and push_b and all(f["session"] == 40 for f in push_b),
          "connection b gets its echo and pushes for session 40")
    a.close()
    b.close()
    sim.stop()


def test_prefix_delay_bind():
    sim = Sim("--reply-prefix", "B2:", "--delay", "200ms", "--bind-msg-id", "50")
    a = sim.connect()
    t0 = time.time()
    a.sendall(frame(1, 8, 5, b"abc"))
    frames, rest = recv_frames(a, 1)
    elapsed = time.time() - t0
    check(len(frames) == 1 and frames[0]["raw"] == frame(1, 8, 5, b"B2:abc"),
          "reply carries the prefix (got %r)" % frames)
    check(0.18 <= elapsed < 2.0, "reply delayed by ~200ms (took %.3fs)" % elapsed)
    a.sendall(frame(1, 50, 5, struct.pack("<Q", 123456789)))
    frames, rest = recv_frames(a, 2, buf=rest)
    check(len(frames) == 2 and frames[0]["raw"] == frame(5, 50, 5, struct.pack("<Q", 123456789)),
          "bind-player frame carries the player id (got %r)" % frames)
    a.close()
    sim.stop()


def test_sink_many_sessions():
    sim = Sim("--mode", "sink")
    a = sim.connect()
    a.sendall(b"".join(frame(1, 1, s, b"p") for s in range(1000)))
    check(not recv_for(a, 0.3), "sink mode sends nothing")
    st = sim.stats_when(lambda st: st.get("frames_in") == "1000")
    check(st.get("frames_in") == "1000" and st.get("sessions") == "1000" and
          st.get("frames_out") == "0", "sink counts frames and sessions %r" % st)
    a.close()
    sim.stop()


def main():
    global SIM
    SIM = sys.argv[1]
    for t in (test_echo_kick_malformed, test_push, test_prefix_delay_bind, test_sink_many_sessions):
        print("== " + t.__name__, flush=True)
        t()
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all backend_sim checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
