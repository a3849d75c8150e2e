"""Unit tests of tools/chaos_lib/ledger.py and wire.py: every frame lands in one bucket."""
import unittest

from tools.chaos_lib import ledger, wire


def echo(conn, seq, t=1.0):
    conn.frame(wire.msg_id_for(seq), wire.numbered_payload(conn.client, seq, 0, 32), t)


class LedgerTest(unittest.TestCase):
    def test_buckets(self):
        led = ledger.Ledger("wb")
        c = led.conn(7)
        for seq in range(5):
            c.sent(seq, 0.0)
        echo(c, 0)
        c.frame(wire.ERROR_MSG_ID, b"\x03\x00" + wire.msg_id_for(1).to_bytes(2, "little")
                + b"upstream_overflow", 2.0)
        echo(c, 2)
        c.close(by_server=True, t=3.0)
        self.assertEqual(led.sent, 5)
        self.assertEqual(led.delivered, 2)
        self.assertEqual(dict(led.errors), {"upstream_overflow": 1})
        self.assertEqual(led.lost_on_close, 2)
        self.assertEqual(led.lost_open, 0)
        self.assertTrue(led.accounted())
        self.assertEqual(led.failures(), 3)                      # 1 error + 2 lost
        self.assertEqual(led.failures(start=2.5), 2)             # only the close's losses
        self.assertEqual(led.failures(kinds=("error",)), 1)
        self.assertEqual(led.refused, 0)                         # it had answers first

    def test_close_by_client_is_lost_open_and_idempotent(self):
        led = ledger.Ledger("wb")
        c = led.conn(1)
        c.sent(0, 0.0)
        c.close(by_server=False, t=1.0)
        c.close(by_server=True, t=2.0)
        self.assertEqual((led.lost_open, led.lost_on_close, led.server_closes), (1, 0, 0))

    def test_overloaded_notice_is_not_a_failure_but_the_close_is(self):
        led = ledger.Ledger("churn")
        c = led.conn(1)
        c.sent(0, 0.0)
        c.frame(wire.ERROR_MSG_ID, b"\x08\x00\x00\x00overloaded", 1.0)
        self.assertEqual(dict(led.notices), {"overloaded": 1})
        self.assertEqual((led.unexpected, led.failures()), (0, 0))
        c.close(by_server=True, t=1.1)
        self.assertEqual((led.lost_on_close, led.refused), (1, 1))
        self.assertTrue(led.accounted())

    def test_refused_connection(self):
        led = ledger.Ledger("churn")
        c = led.conn(1)
        c.sent(0, 0.0)
        c.close(by_server=True, t=1.0)
        self.assertEqual((led.refused, led.server_closes, led.lost_on_close), (1, 1, 1))

    def test_unexpected_and_corrupt(self):
        led = ledger.Ledger("wb")
        c = led.conn(3)
        c.sent(0, 0.0)
        echo(c, 5)                                  # msg_id never sent
        c.frame(wire.msg_id_for(0), wire.numbered_payload(4, 0, 0, 32), 1.0)  # other client
        self.assertEqual((led.unexpected, led.corrupt, led.delivered), (1, 1, 0))
        self.assertTrue(led.accounted())

    def test_msg_id_wraps_below_reserved(self):
        self.assertEqual(wire.msg_id_for(0), 1)
        self.assertEqual(wire.msg_id_for(wire.MAX_MSG_ID - 1), wire.MAX_MSG_ID)
        self.assertEqual(wire.msg_id_for(wire.MAX_MSG_ID), 1)
        self.assertLess(wire.MAX_MSG_ID, 0xFFFC)

    def test_frame_reader_splits_partial_frames(self):
        data = wire.encode(9, b"abc") + wire.encode(wire.ERROR_MSG_ID, b"\x04\x00\x09\x00x")
        r = wire.FrameReader()
        self.assertEqual(r.feed(data[:5]), [])
        frames = r.feed(data[5:])
        self.assertEqual([f[0] for f in frames], [9, wire.ERROR_MSG_ID])
        self.assertEqual(wire.parse_error(frames[1][2]), (4, "x", 9))


if __name__ == "__main__":
    unittest.main()
