"""The clients of tools/chaos and tools/soak (asyncio, one loop).

Well-behaved clients send numbered frames through the echo route and account every one
(ledger.py); attackers (garbage, slowloris, dribble, silent sockets, floods, bursts, slow
consumers) keep their own counters. Every client binds its own 127.x.y.z source address,
so per-IP limits apply per client as they would to distinct players.

Control: a Control object shared by a population: `sending` (False: stop sending, settle
until `settle_deadline`, then close), `stop` (close now). Each coroutine returns when done.
"""
import asyncio
import os
import socket
import struct
import time

from tools.chaos_lib import wire

now = time.monotonic


class Control:
    """Run state of a population (shared by its coroutines)."""

    def __init__(self):
        self.sending = True
        self.settle_deadline = float("inf")
        self.stop = False
        self.reconnect = True

    def end_sending(self, settle):
        """Stop sending; outstanding frames may be answered for `settle` seconds."""
        self.sending = False
        self.settle_deadline = now() + settle


class AttackStats:
    """Counters of one attacker population: connections made, failed, closed by the
    gateway (and how long the longest was held open), still open at the end, bytes sent."""

    def __init__(self, name):
        self.name = name
        self.conns = self.connect_failed = self.closed_by_gateway = self.open_at_end = 0
        self.bytes_sent = 0
        self.held_max = 0.0

    def summary(self):
        return {"conns": self.conns, "connect_failed": self.connect_failed,
                "closed_by_gateway": self.closed_by_gateway, "open_at_end": self.open_at_end,
                "held_max_s": round(self.held_max, 1), "bytes_sent": self.bytes_sent}


def src_addr(block, i):
    """Source address i of block `block` (1..254): 127.block.(i // 250).(i % 250 + 1)."""
    return f"127.{block}.{i // 250 % 256}.{i % 250 + 1}"


async def open_conn(port, src, timeout=3.0):
    """Connects from `src` to 127.0.0.1:port; returns (reader, writer)."""
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0), limit=1 << 20),
        timeout)


def abort(writer):
    """Closes with RST (SO_LINGER 0): no TIME_WAIT left behind by attackers."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def _read_frames(reader, conn):
    """Feeds every frame from the gateway to `conn` until EOF or reset, then records the
    close as the gateway's."""
    fr = wire.FrameReader()
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            t = now()
            for msg_id, _, payload in fr.feed(data):
                conn.frame(msg_id, payload, t)
    except (ConnectionError, OSError):
        pass
    conn.close(by_server=True, t=now())


async def numbered_client(port, src, idx, led, ctl, rate=20.0, window=8, size=64,
                          frames_per_conn=None, pause=0.3):
    """A well-behaved client (or, with a large window and rate=None, a flooder): sends
    numbered frames at `rate` per second (None: as fast as the window allows) with at most
    `window` outstanding, reconnecting after a close by the gateway while ctl.reconnect.
    With frames_per_conn it churns: that many frames, wait for their answers (15 s at most,
    longer than any scenario's stall, so a churn client never gives up on a frame first),
    close, sleep `pause`, reconnect."""
    seq = 0
    while not ctl.stop and (ctl.sending or seq == 0):
        try:
            reader, writer = await open_conn(port, src)
        except (OSError, asyncio.TimeoutError):
            led.connect_failed(now())
            await asyncio.sleep(0.5)
            continue
        conn = led.conn(idx)
        rtask = asyncio.get_running_loop().create_task(_read_frames(reader, conn))
        sent_here, next_t = 0, now()
        try:
            while ctl.sending and not ctl.stop and not rtask.done():
                if frames_per_conn and sent_here >= frames_per_conn:
                    break
                # (A flooder's frames may stay unanswered while later ones are answered,
                # so its msg_ids can wrap onto an outstanding one: wait for that one.)
                if conn.in_flight() < window and \
                        wire.msg_id_for(seq) not in conn.outstanding:
                    t = now()
                    msg_id = conn.sent(seq, t)
                    writer.write(wire.encode(msg_id, wire.numbered_payload(
                        idx, seq, int(t * 1e9), size)))
                    seq += 1
                    sent_here += 1
                    if writer.transport.get_write_buffer_size() > 256 * 1024:
                        await asyncio.wait_for(writer.drain(), 10)
                if rate:
                    next_t = max(next_t + 1.0 / rate, now() - 1.0)
                    await asyncio.sleep(max(0.0, next_t - now()))
                elif conn.in_flight() >= window or wire.msg_id_for(seq) in conn.outstanding:
                    await asyncio.sleep(0.002)
                else:
                    await asyncio.sleep(0)
            deadline = min(ctl.settle_deadline, now() + 15.0) if frames_per_conn and \
                ctl.sending else ctl.settle_deadline
            while conn.in_flight() and not rtask.done() and not ctl.stop and now() < deadline:
                await asyncio.sleep(0.02)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)   # the reader sees the close and records it
        if rtask.done():
            if not ctl.reconnect:
                return
            await asyncio.sleep(0.2)
            continue
        rtask.cancel()
        conn.close(by_server=False, t=now())
        writer.transport.abort()
        if not frames_per_conn:
            return
        await asyncio.sleep(pause)


async def _wait_closed(reader, deadline):
    """Reads (and discards) until EOF/reset or `deadline`; True if the peer closed."""
    try:
        while now() < deadline:
            data = await asyncio.wait_for(reader.read(1 << 16), max(0.01, deadline - now()))
            if not data:
                return True
    except asyncio.TimeoutError:   # before OSError: TimeoutError is an OSError since 3.11
        pass
    except (ConnectionError, OSError):
        return True
    return False


async def _behave(kind, writer, ctl, stats):
    """What attacker `kind` sends on an open connection until ctl.stop (or an error)."""
    if kind == "garbage":
        data = os.urandom(4096)
        writer.write(data)
        stats.bytes_sent += len(data)
        return
    if kind == "silent":
        return
    if kind == "slowloris":   # a 100-byte frame's bytes, one every 0.5 s
        data = wire.encode(1, b"x" * 100)
        step = 0.5
    else:                      # dribble: one prompt frame, then empty frames at 1 byte / 0.25 s
        writer.write(wire.encode(1, b""))
        data = wire.encode(1, b"") * 1000
        step = 0.25
    for b in data:
        if ctl.stop:
            return
        writer.write(bytes([b]))
        stats.bytes_sent += 1
        await asyncio.sleep(step)


async def attacker(kind, port, src, ctl, stats, keep=True):
    """One attacker slot: connects from `src`, behaves as `kind` (garbage, silent,
    slowloris, dribble) and waits for the gateway to close it; with `keep`, reconnects
    (after 0.2 s) until ctl.stop, so the slot stays taken."""
    while not ctl.stop:
        try:
            reader, writer = await open_conn(port, src)
        except (OSError, asyncio.TimeoutError):
            stats.connect_failed += 1
            await asyncio.sleep(0.5)
            continue
        stats.conns += 1
        t0 = now()
        behave = asyncio.get_running_loop().create_task(_behave(kind, writer, ctl, stats))
        closed = False
        while not ctl.stop and not closed:
            closed = await _wait_closed(reader, now() + 0.5)
        behave.cancel()
        stats.held_max = max(stats.held_max, now() - t0)
        if closed:
            stats.closed_by_gateway += 1
        else:
            stats.open_at_end += 1
        abort(writer)
        if not keep:
            return
        await asyncio.sleep(0.2)


async def burst(port, srcs, total, concurrency, led, frames=4, size=1024):
    """`total` short connections, `concurrency` at a time, from `srcs` in turn: each sends
    `frames` numbered frames at once, waits for their answers (5 s at most) and resets."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            try:
                reader, writer = await open_conn(port, srcs[i % len(srcs)], timeout=5)
            except (OSError, asyncio.TimeoutError):
                led.connect_failed(now())
                return
            conn = led.conn(i)
            rtask = asyncio.get_running_loop().create_task(_read_frames(reader, conn))
            t = now()
            writer.write(b"".join(wire.encode(conn.sent(s, t), wire.numbered_payload(
                i, s, int(t * 1e9), size)) for s in range(frames)))
            deadline = now() + 5
            while conn.in_flight() and not rtask.done() and now() < deadline:
                await asyncio.sleep(0.01)
            if not rtask.done():
                rtask.cancel()
                conn.close(by_server=False, t=now())
            abort(writer)

    await asyncio.gather(*(one(i) for i in range(total)))


async def slow_consumer(port, src, ctl, stats, frame_bytes=32 * 1024, max_bytes=64 << 20):
    """Sends echo frames and never reads, until the gateway closes it (output_overflow),
    `max_bytes` were sent, or ctl.stop; then reads to EOF (5 s) to see the close."""
    try:
        reader, writer = await open_conn(port, src)
    except (OSError, asyncio.TimeoutError):
        stats.connect_failed += 1
        return
    stats.conns += 1
    t0 = now()
    frame = wire.encode(1, b"s" * frame_bytes)
    sent = 0
    try:
        while not ctl.stop and sent < max_bytes:
            writer.write(frame)
            sent += len(frame)
            stats.bytes_sent += len(frame)
            await asyncio.wait_for(writer.drain(), 2)
            await asyncio.sleep(0.01)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        pass
    while not ctl.stop:
        await asyncio.sleep(0.1)
    closed = await _wait_closed(reader, now() + 5)
    stats.held_max = max(stats.held_max, now() - t0)
    if closed:
        stats.closed_by_gateway += 1
    else:
        stats.open_at_end += 1
    abort(writer)
