"""The client frame (docs/protocol.md) as tools/chaos speaks it.

Defines encode() (one client frame), FrameReader (splits a byte stream into frames),
parse_error() (an error frame's payload), the payload layout of numbered frames
(numbered_payload / payload_seq) and the constants the scenarios route with.
"""
import struct

HEADER = struct.Struct("<HHI")   # length (payload bytes), msg_id, server_id
ERROR_MSG_ID = 0xFFFF            # gateway error frame
# Client msg_ids 1..MAX_MSG_ID are used for numbered frames; 0xFFFC..0xFFFF are reserved.
MAX_MSG_ID = 60000
# server_id routing to the `game` cluster: server_type 200, world 0 (route "200:0").
GAME_SERVER_ID = 200 << 8
# Numbered payload: client index (u32), sequence (u32), send time (u64 ns), then padding.
NUMBERED = struct.Struct("<IIQ")

ERROR_NAMES = {1: "no_route", 2: "upstream_unavailable", 3: "upstream_overflow",
               4: "circuit_open", 5: "rate_limited", 6: "resume_failed",
               7: "upstream_lost", 8: "overloaded"}


def encode(msg_id, payload, server_id=GAME_SERVER_ID):
    """Returns one client frame: header + payload (payload at most 65535 bytes)."""
    return HEADER.pack(len(payload), msg_id, server_id) + payload


def msg_id_for(seq):
    """The msg_id that numbered frame `seq` is sent with: 1..MAX_MSG_ID, so an error
    frame (which names only the refused msg_id) identifies the frame while fewer than
    MAX_MSG_ID frames of one connection are outstanding."""
    return 1 + seq % MAX_MSG_ID


def numbered_payload(client, seq, t_ns, size):
    """A payload of `size` bytes (at least 16) carrying client index, sequence and time."""
    head = NUMBERED.pack(client, seq, t_ns)
    return head + b"\x5a" * max(0, size - len(head))


def payload_seq(payload):
    """(client, seq) of a numbered payload, or None if it is too short."""
    if len(payload) < NUMBERED.size:
        return None
    client, seq, _ = NUMBERED.unpack_from(payload)
    return client, seq


def parse_error(payload):
    """(code, code name, refused msg_id) of an error frame's payload, or None if malformed."""
    if len(payload) < 4:
        return None
    code, refused = struct.unpack_from("<HH", payload)
    name = payload[4:].decode("ascii", "replace") or ERROR_NAMES.get(code, str(code))
    return code, name, refused


class FrameReader:
    """Splits bytes from the gateway into (msg_id, server_id, payload) frames.
    State: the unparsed tail of the stream (per connection)."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        """Appends `data` and returns the frames it completed, in order."""
        self._buf += data
        frames, off, buf = [], 0, self._buf
        while len(buf) - off >= HEADER.size:
            length, msg_id, server_id = HEADER.unpack_from(buf, off)
            end = off + HEADER.size + length
            if end > len(buf):
                break
            frames.append((msg_id, server_id, bytes(buf[off + HEADER.size:end])))
            off = end
        del buf[:off]
        return frames
