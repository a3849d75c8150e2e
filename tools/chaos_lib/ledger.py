"""Per-frame accounting of tools/chaos and tools/soak.

Every numbered frame a client sends ends in exactly one bucket:
  delivered     its echo came back (same msg_id, same client and sequence in the payload);
  error         the gateway answered it with an error frame (counted by code name);
  lost_on_close the gateway closed the connection while it was outstanding;
  lost_open     still outstanding on an open connection when the run ended (after settling).
Besides frames, a Ledger counts connects, failed connects, closes by the gateway, echoes
that match no outstanding frame (`unexpected`) and echoes whose payload is not the frame
sent (`corrupt`), and keeps a time-stamped list of failure events so a scenario can
tolerate failures inside a stated window (e.g. while the backend is down) and no others.

State: a Ledger per client population (well-behaved, churn, flood...); a ConnLedger per
connection, holding that connection's outstanding frames keyed by msg_id. Single-threaded
(one asyncio loop).
"""
import collections

from tools.chaos_lib import wire

FAILURE_KINDS = ("error", "lost_on_close", "lost_open", "connect_failed", "refused",
                 "corrupt", "unexpected")


class Ledger:
    """The counters of one client population."""

    def __init__(self, name):
        self.name = name
        self.sent = 0
        self.delivered = 0
        self.errors = collections.Counter()     # error name -> frames
        # Error frames about the connection, not a frame (refused msg_id 0, e.g. code 8
        # `overloaded` before a shed connection's close): by name. Not failures: the close
        # that follows is counted (refused / lost_on_close).
        self.notices = collections.Counter()
        self.lost_on_close = 0
        self.lost_open = 0
        self.corrupt = 0
        self.unexpected = 0
        self.connects = 0
        self.connect_failures = 0
        self.server_closes = 0      # connections the gateway closed (EOF/RST we did not cause)
        self.refused = 0            # of those: closed before any frame was answered
        self.events = []            # (t, kind, count) of every failure, kind in FAILURE_KINDS
        self.latency_max = 0.0

    def conn(self, client):
        """A ConnLedger for a new connection of client index `client`."""
        self.connects += 1
        return ConnLedger(self, client)

    def connect_failed(self, t):
        """Records a connect that failed (refused, timed out)."""
        self.connect_failures += 1
        self._event(t, "connect_failed", 1)

    def _event(self, t, kind, n):
        if n:
            self.events.append((t, kind, n))

    def lost(self):
        """Frames lost: outstanding at a close by the gateway or at the end."""
        return self.lost_on_close + self.lost_open

    def failures(self, start=None, end=None, kinds=FAILURE_KINDS):
        """Failure count (frames, or connects for connect_failed/refused) of the given
        kinds with event time in [start, end] (None: unbounded)."""
        return sum(n for t, k, n in self.events if k in kinds
                   and (start is None or t >= start) and (end is None or t <= end))

    def accounted(self):
        """Whether every sent frame is in exactly one bucket."""
        return self.sent == self.delivered + sum(self.errors.values()) + self.lost()

    def summary(self):
        """A dict of the counters (JSON-ready)."""
        return {"sent": self.sent, "delivered": self.delivered, "errors": dict(self.errors),
                "lost_on_close": self.lost_on_close, "lost_open": self.lost_open,
                "corrupt": self.corrupt, "unexpected": self.unexpected,
                "notices": dict(self.notices),
                "connects": self.connects, "connect_failures": self.connect_failures,
                "server_closes": self.server_closes, "refused": self.refused,
                "failures": self.failures(), "latency_max_ms": round(self.latency_max * 1e3, 1)}


class ConnLedger:
    """The outstanding frames of one connection (msg_id -> (seq, send time))."""

    def __init__(self, ledger, client):
        self.ledger = ledger
        self.client = client
        self.outstanding = {}
        self.answered = 0
        self.closed = False

    def in_flight(self):
        """Frames sent and not yet answered."""
        return len(self.outstanding)

    def sent(self, seq, t):
        """Records numbered frame `seq` sent at time t; returns its msg_id. The caller keeps
        fewer than wire.MAX_MSG_ID frames outstanding."""
        msg_id = wire.msg_id_for(seq)
        assert msg_id not in self.outstanding, "msg_id reused while outstanding"
        self.outstanding[msg_id] = (seq, t)
        self.ledger.sent += 1
        return msg_id

    def frame(self, msg_id, payload, t):
        """Accounts one frame from the gateway: an echo or an error frame."""
        led = self.ledger
        if msg_id == wire.ERROR_MSG_ID:
            err = wire.parse_error(payload)
            if err is not None and err[2] == 0 and err[2] not in self.outstanding:
                led.notices[err[1]] += 1
                return
            if err is None or err[2] not in self.outstanding:
                led.unexpected += 1
                led._event(t, "unexpected", 1)
                return
            del self.outstanding[err[2]]
            self.answered += 1
            led.errors[err[1]] += 1
            led._event(t, "error", 1)
            return
        entry = self.outstanding.pop(msg_id, None)
        if entry is None:
            led.unexpected += 1
            led._event(t, "unexpected", 1)
            return
        self.answered += 1
        if wire.payload_seq(payload) != (self.client, entry[0]):
            led.corrupt += 1
            led.lost_open += 1     # its echo never came back intact: lost, and flagged
            led._event(t, "corrupt", 1)
            return
        led.delivered += 1
        led.latency_max = max(led.latency_max, t - entry[1])

    def close(self, by_server, t):
        """The connection ended: by the gateway (by_server) or by us. Outstanding frames
        become lost_on_close if the gateway closed it, else lost_open. Idempotent."""
        if self.closed:
            return
        self.closed = True
        led, n = self.ledger, len(self.outstanding)
        self.outstanding.clear()
        if by_server:
            led.server_closes += 1
            led.lost_on_close += n
            led._event(t, "lost_on_close", n)
            if self.answered == 0:
                led.refused += 1
                led._event(t, "refused", 1)
        else:
            led.lost_open += n
            led._event(t, "lost_open", n)
