#!/usr/bin/env python3
"""tools/demo_client.py — a tiny game client for the demo: sends client frames
to the gateway and prints what comes back (stdlib only).

  tools/demo_client.py [--target 127.0.0.1:8080] [--count 5] [--interval 1]
"""
import argparse
import socket
import struct
import sys
import time

HEADER = struct.Struct("<HHI")  # length, msg_id, server_id (docs/protocol.md)


def server_id(world_id, server_type, inst_id=0):
    return (world_id & 0x7FFF) << 16 | (server_type & 0xFF) << 8 | (inst_id & 0xFF)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("gateway closed the connection")
        data += chunk
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:8080")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--server-type", type=int, default=200)
    ap.add_argument("--world-id", type=int, default=0)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    print(f"demo client: connected to gateway {args.target}")
    ok = 0
    for i in range(1, args.count + 1):
        payload = f"hello #{i} from the demo client".encode()
        msg_id = 1000 + i
        sid = server_id(args.world_id, args.server_type)
        t0 = time.monotonic()
        sock.sendall(HEADER.pack(len(payload), msg_id, sid) + payload)
        print(f"  -> msg_id={msg_id} server_type={args.server_type} world_id={args.world_id} "
              f"payload={payload.decode()!r}")
        while True:
            length, rmsg, rsid = HEADER.unpack(recv_exact(sock, 8))
            body = recv_exact(sock, length)
            ms = (time.monotonic() - t0) * 1000
            if rmsg == 0xFFFF:
                code, refused = struct.unpack("<HH", body[:4])
                print(f"  <- error frame code={code} ({body[4:].decode()}) for msg_id={refused}")
                break
            kind = "reply" if rmsg == msg_id else "push"
            print(f"  <- {kind} msg_id={rmsg} server_id={rsid} payload={body.decode(errors='replace')!r} "
                  f"({ms:.2f} ms)")
            if kind == "reply":
                ok += 1
                break
        time.sleep(args.interval)
    sock.close()
    print(f"demo client: {ok}/{args.count} round trips through the gateway")
    return 0 if ok == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
