#!/usr/bin/env python3
"""A tiny DNS server for tests: answers A and AAAA queries over UDP on
127.0.0.1 from a JSON file the test rewrites while it runs.

Usage: fake_dns.py ANSWERS_JSON [PORT]
Prints "fake_dns listening on 127.0.0.1:PORT" once bound (PORT 0 or absent:
the kernel picks one). The file is read again at every query:
  {"game.test": ["127.0.0.1", "127.0.0.2"],   # A / AAAA records (by family)
   "broken.test": "SERVFAIL",                  # answered with rcode 2
   "_silent": true}                            # no query is answered at all
A name not in the file gets NXDOMAIN. Each query is printed as
"query NAME TYPE -> what", so a test can count them.
"""
import ipaddress
import json
import socket
import struct
import sys

TYPE_A, TYPE_AAAA = 1, 28


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def parse_question(data):
    """(id, flags, question bytes, name, qtype) of a query, or None."""
    if len(data) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", data[:6])
    if qdcount != 1:
        return None
    pos, labels = 12, []
    while pos < len(data):
        n = data[pos]
        pos += 1
        if n == 0:
            break
        labels.append(data[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(data):
        return None
    qtype = struct.unpack("!H", data[pos:pos + 2])[0]
    return qid, flags, data[12:pos + 4], ".".join(labels), qtype


def answer(data, answers):
    """The reply bytes for query `data`, and a word for the log."""
    q = parse_question(data)
    if q is None:
        return None, "malformed"
    qid, flags, question, name, qtype = q
    entry = None
    for key, value in answers.items():
        if key.lower().rstrip(".") == name.lower():
            entry = value
    rd = flags & 0x0100
    if entry is None:
        return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0) + question, "nxdomain"
    if entry == "SERVFAIL":
        return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 2, 1, 0, 0, 0) + question, "servfail"
    records = b""
    count = 0
    for ip in entry:
        addr = ipaddress.ip_address(ip)
        rtype = TYPE_A if addr.version == 4 else TYPE_AAAA
        if rtype != qtype:
            continue
        raw = addr.packed
        # Name: a pointer to the question's name (offset 12); TTL 1 s.
        records += struct.pack("!HHHIH", 0xC00C, rtype, 1, 1, len(raw)) + raw
        count += 1
    header = struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080, 1, count, 0, 0)
    return header + question + records, "%d record(s)" % count


def main():
    path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("fake_dns listening on 127.0.0.1:%d" % sock.getsockname()[1], flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        answers = load(path)
        q = parse_question(data)
        name, qtype = (q[3], q[4]) if q else ("?", 0)
        if answers.get("_silent"):
            print("query %s %d -> silent" % (name, qtype), flush=True)
            continue
        reply, what = answer(data, answers)
        print("query %s %d -> %s" % (name, qtype, what), flush=True)
        if reply is not None:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
