#!/usr/bin/env python3
"""A tiny client-frame echo peer for testing loadgen (stdlib only, one thread, selectors).

Client frame (docs/protocol.md): u16 length (payload only), u16 msg_id, u32 server_id, payload;
little-endian. Every frame is echoed with the same msg_id and payload and server_id = 0, as the
gateway sends frames to clients. Prints "framed_echo_peer listening on 127.0.0.1:PORT", then one
"accepted from IP" line per connection.

Options (for making loadgen see specific conditions):
  --push-every N        after every N echoes on a connection, also send a push (msg_id 9001)
  --corrupt-after N     flip one payload byte of the N-th echo (process-wide), once
  --close-after N       close each connection after echoing N frames
  --expect-server-id N  close a connection whose frames carry another server_id
  --drop-every N        silently drop every N-th frame of a connection (no echo)
  --error-every N       answer every N-th frame of a connection with a gateway error frame
                        (msg_id 65535, code 4 "circuit_open") instead of echoing it
"""

import argparse
import selectors
import signal
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--push-every", type=int, default=0)
    ap.add_argument("--corrupt-after", type=int, default=0)
    ap.add_argument("--close-after", type=int, default=0)
    ap.add_argument("--expect-server-id", type=int, default=None)
    ap.add_argument("--error-every", type=int, default=0)
    ap.add_argument("--drop-every", type=int, default=0)
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    print("framed_echo_peer listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    state = {}  # sock -> [inbuf, outbuf, echoed]
    total = [0]

    def close(s):
        sel.unregister(s)
        state.pop(s, None)
        s.close()

    def handle(s):
        st = state[s]
        try:
            data = s.recv(1 << 20)
        except (ConnectionResetError, BlockingIOError):
            data = b""
        if not data:
            close(s)
            return
        buf = st[0] + data
        out = []
        pos = 0
        while len(buf) - pos >= 8:
            length, msg_id, server_id = struct.unpack_from("<HHI", buf, pos)
            if len(buf) - pos < 8 + length:
                break
            if args.expect_server_id is not None and server_id != args.expect_server_id:
                print("bad server_id %d" % server_id, flush=True)
                close(s)
                return
            payload = bytearray(buf[pos + 8:pos + 8 + length])
            pos += 8 + length
            total[0] += 1
            if args.corrupt_after and total[0] == args.corrupt_after and payload:
                payload[-1] ^= 0xFF
            st[2] += 1
            if args.drop_every and st[2] % args.drop_every == 0:
                continue
            if args.error_every and st[2] % args.error_every == 0:
                body = struct.pack("<HH", 4, msg_id) + b"circuit_open"
                out.append(struct.pack("<HHI", len(body), 0xFFFF, 0) + body)
            else:
                out.append(struct.pack("<HHI", length, msg_id, 0) + bytes(payload))
            if args.push_every and st[2] % args.push_every == 0:
                out.append(struct.pack("<HHI", 6, 9001, 0) + b"push!!")
            if args.close_after and st[2] >= args.close_after:
                s.setblocking(True)
                s.sendall(b"".join(out))
                close(s)
                return
        st[0] = buf[pos:]
        s.setblocking(True)
        try:
            s.sendall(b"".join(out))
        except OSError:
            close(s)
            return
        s.setblocking(False)

    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    c, addr = ls.accept()
                except BlockingIOError:
                    continue
                print("accepted from %s" % addr[0], flush=True)
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                state[c] = [b"", b"", 0]
                sel.register(c, selectors.EVENT_READ, 1)
            else:
                handle(key.fileobj)


if __name__ == "__main__":
    main()
