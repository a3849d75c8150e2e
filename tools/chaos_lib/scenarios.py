"""The fault matrix of tools/chaos: one coroutine per scenario, each taking a runner.Run.

Every scenario: fresh backend and gateway, well-behaved clients (20 steady at 20 frames/s,
window 8, and 4 churning) for 1.5 s of baseline, then the fault for its window, then the
well-behaved clients carry on (recovery), stop, settle, and the run is judged
(runner.py). `r.short` picks the CI sizes; the full sizes follow the issue's figures.
SCENARIOS lists them in order with a one-line description each.
"""
import asyncio
import time

from tools.chaos_lib import clients, procs, runner

now = time.monotonic


def sizes(r, short, full):
    return short if r.short else full


async def run_attackers(r, coros, seconds):
    """Runs attacker coroutines for `seconds` (marks attack_start/attack_end), then stops
    them (their Control) and waits for them."""
    actl = clients.Control()
    r.mark("attack_start")
    tasks = [asyncio.get_running_loop().create_task(c(actl)) for c in coros]
    await asyncio.sleep(seconds)
    actl.stop = True
    await asyncio.wait(tasks, timeout=15)
    r.mark("attack_end")


async def recover(r):
    await asyncio.sleep(sizes(r, 2, 5))


def check_timed_close(r, st, bound, what):
    r.check(f"every {st.name} connection closed by the gateway within {bound:g} s ({what})",
            st.conns > 0 and st.held_max <= bound,
            f"{st.conns} conns, {st.closed_by_gateway} closed, {st.open_at_end} open when "
            "the attack stopped (younger than the bound), "
            f"longest held {st.held_max:.1f} s")


async def garbage(r):
    n = sizes(r, 200, 1000)
    r.describe = f"{n} connections (one address each) send 4 KiB of random bytes"
    r.expect = ("each is closed by the gateway within read_timeout 5 s + 2 s; random headers "
                "that parse may get no_route error frames; well-behaved: 0 failures")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    st = r.attack("garbage")
    await run_attackers(r, [lambda c, i=i: clients.attacker(
        "garbage", r.port, clients.src_addr(30, i), c, st, keep=False) for i in range(n)], 8)
    check_timed_close(r, st, 7, "read_timeout")
    await recover(r)
    return await r.finish()


async def slowloris(r):
    n, secs = sizes(r, (200, 6), (1000, 20))
    r.describe = f"{n} slots held by clients sending a frame 1 byte / 0.5 s, reconnecting"
    r.expect = ("each connection closed within first_frame_timeout 2 s + 2 s; "
                "well-behaved: 0 failures")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    st = r.attack("slowloris")
    await run_attackers(r, [lambda c, i=i: clients.attacker(
        "slowloris", r.port, clients.src_addr(31, i), c, st) for i in range(n)], secs)
    check_timed_close(r, st, 4, "first_frame_timeout")
    await recover(r)
    return await r.finish()


async def dribble(r):
    n, secs = sizes(r, (100, 10), (500, 20))
    r.describe = (f"{n} clients send one frame, then empty frames at 1 byte / 0.25 s "
                  "(each frame slower than slow_frame_time 1 s)")
    r.expect = "each closed by idle_timeout 6 s (+3 s); well-behaved: 0 failures"
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    st = r.attack("dribble")
    await run_attackers(r, [lambda c, i=i: clients.attacker(
        "dribble", r.port, clients.src_addr(32, i), c, st) for i in range(n)], secs)
    check_timed_close(r, st, 9, "idle_timeout, slow frames do not count")
    await recover(r)
    return await r.finish()


async def silent_sockets(r):
    secs = sizes(r, 6, 20)
    r.describe = ("1000 silent sockets (5 per address from 200 addresses, reopened when "
                  "closed) keep the global cap of 1000 full while churn clients connect")
    r.expect = ("silent sockets closed by first_frame_timeout 2 s (+2 s); new players are "
                "admitted (issue 14 item 3: shed a connection without a first frame): "
                "well-behaved and churn: 0 failures")
    await r.start()
    r.start_well_behaved(churn_pause=0.5)
    await r.baseline()
    st = r.attack("silent")
    await run_attackers(r, [lambda c, i=i: clients.attacker(
        "silent", r.port, clients.src_addr(33, i // 5), c, st) for i in range(1000)], secs)
    check_timed_close(r, st, 4, "first_frame_timeout")
    await recover(r)
    return await r.finish()


async def burst_one(r):
    total = 10000
    r.describe = f"{total} connections from one address (200 at a time), 4 frames each"
    r.expect = ("the ip_limiter refuses beyond 10 per IP / 5 per s (counted, rate_limited); "
                "burst frames are answered or lost at a counted close; well-behaved: 0 "
                "failures; RSS back within 16 MB")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    led = r.population("burst")
    r.mark("attack_start")
    await clients.burst(r.port, [clients.src_addr(34, 0)], total, 200, led)
    r.mark("attack_end")
    await recover(r)
    return await r.finish()


async def burst_many(r):
    total = 10000
    r.describe = (f"{total} connections from 1000 addresses (1000 at a time), 4 frames "
                  "of 4 KiB each")
    r.expect = ("beyond the global cap of 1000 the ip_limiter sheds connections without a "
                "first frame (overloaded) or refuses (counted); well-behaved (already "
                "connected): 0 failures; churn clients connecting during the burst may be "
                "shed or refused (at most 20 events); RSS back within 16 MB within the "
                "settle time")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    led = r.population("burst")
    r.mark("attack_start")
    t0 = now()
    await clients.burst(r.port, [clients.src_addr(35, i) for i in range(1000)], total,
                        1000, led, size=4096)
    r.mark("attack_end")
    # 1000 addresses within their per-IP limits, each connection sending frames at
    # once, look like players: while they fill the global cap, a churn client that
    # connects is one of the newest without a first frame, so it can be shed (an
    # accept batch admits newcomers before their first reads) or refused.
    r.tolerate(runner.Tolerance("churn", ("refused", "lost_on_close"),
                                "the global cap is full of burst connections that look like "
                                "players (shed: overloaded, or refused: global)", bound=20),
               t0, now() + 3)
    await recover(r)
    return await r.finish()


async def fd_limit(r):
    secs = sizes(r, 6, 20)
    r.nofile = 512
    r.describe = ("gateway under prlimit --nofile=512; 700 silent sockets (reopened) "
                  "exhaust its fds")
    r.expect = ("accepting pauses (accept_errors emfile, listener_paused), CPU stays low "
                "(< 50% of a core), /metrics keeps answering, connected well-behaved "
                "clients: 0 failures; churn clients may fail only while the fds are "
                "exhausted (+3 s)")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    st = r.attack("silent")
    tol = runner.Tolerance("churn", ("connect_failed", "refused", "lost_on_close",
                                     "lost_open"),
                           "new connections cannot be accepted while the attackers hold "
                           "every fd (by design: the listener pauses)")
    t0 = now()
    await run_attackers(r, [lambda c, i=i: clients.attacker(
        "silent", r.port, clients.src_addr(36, i // 5), c, st) for i in range(700)], secs)
    r.tolerate(tol, t0, now() + 3)
    await recover(r)
    res = await r.finish()
    d_emfile = r.delta("game_gateway_accept_errors_total", listener="game", reason="emfile")
    cpu = r.cpu_pct()
    more = [("accept errors (emfile) counted", d_emfile > 0, f"{d_emfile:.0f}"),
            ("gateway CPU < 50% while exhausted", cpu is not None and cpu < 50, f"{cpu}%"),
            ("/metrics answered every scrape", r.scrape_failures == 0,
             f"{r.scrape_failures} failed")]
    ch = r.ledgers["churn"]
    r.explained_open["churn"] = ch.failures(tol.start, tol.end, ("lost_open",)) \
        if d_emfile > 0 else 0
    return r.rejudge(more)


async def slow_consumer(r):
    n, secs = sizes(r, (10, 6), (20, 15))
    r.describe = f"{n} clients send 32 KiB echo frames and never read"
    r.expect = (f"each is disconnected with output_overflow (max_output_bytes 4 MiB); "
                "well-behaved: 0 failures; RSS back within 16 MB")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    st = r.attack("slow_consumer")
    await run_attackers(r, [lambda c, i=i: clients.slow_consumer(
        r.port, clients.src_addr(37, i), c, st) for i in range(n)], secs)
    await recover(r)
    res = await r.finish()
    ov = r.delta("game_gateway_connection_closes_total", listener="game",
                 reason="output_overflow")
    return r.rejudge([("every slow consumer closed with output_overflow",
                             ov >= n and st.closed_by_gateway == n,
                             f"{ov:.0f} output_overflow closes, {st.closed_by_gateway}/{n} "
                             "seen closed")])


def start_flood(r, n, window=50000, size=4096):
    led = r.population("flood")
    for i in range(n):
        r.spawn(clients.numbered_client(r.port, clients.src_addr(38, i), 5000 + i, led,
                                        r.flood_ctl, rate=None, window=window, size=size))


async def flood(r):
    n, secs = sizes(r, (4, 6), (4, 20))
    r.describe = f"{n} clients pipeline 4 KiB frames as fast as a window of 50000 allows"
    r.expect = ("the flooders' excess is refused to them (upstream_overflow) or "
                "delivered; well-behaved: 0 failures (issue 14 item 4, fair sharing)")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    r.flood_ctl = clients.Control()
    r.extra_ctls.append(r.flood_ctl)
    r.mark("attack_start")
    start_flood(r, n)
    await asyncio.sleep(secs)
    r.flood_ctl.end_sending(3)
    r.mark("attack_end")
    await recover(r)
    return await r.finish()


async def stalled_backend(r):
    # Shorter than the chaos config's idle_timeout (6 s): a well-behaved client whose
    # window is full waits without sending, and a longer stall would close it for idle
    # (counted, but a failure).
    stall = sizes(r, 3, 5)
    r.describe = (f"4 flooders (4 KiB frames, window 50000) run; the backend is stopped "
                  f"(SIGSTOP) for {stall} s, then resumed")
    r.expect = ("well-behaved frames wait and are delivered after the stall, or the "
                "flooders alone are refused: well-behaved 0 failures (issue 14 item 4)")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    r.flood_ctl = clients.Control()
    r.extra_ctls.append(r.flood_ctl)
    start_flood(r, 4)
    await asyncio.sleep(1)
    r.mark("attack_start")
    r.backend.stall()
    await asyncio.sleep(stall)
    r.backend.cont()
    r.mark("attack_end")
    await asyncio.sleep(2)
    r.flood_ctl.end_sending(3)
    await recover(r)
    return await r.finish()


async def backend_kill(r):
    down, after = sizes(r, (2, 8), (7, 30))
    r.describe = f"backend SIGKILLed, restarted {down} s later on the same port"
    r.expect = ("frames in flight at the kill are lost (not replayed, docs/protocol.md; "
                "counted as connections lost), at most window x clients; frames sent while "
                "it is down get upstream_unavailable / circuit_open; from 3 s after the "
                "restart: 0 failures (issue 14 item 6)")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    r.mark("attack_start")
    t_kill = now()
    r.backend.kill()
    await asyncio.sleep(down)
    r.backend.start()
    t_up = now()
    r.mark("attack_end")
    for pop in ("wb", "churn"):
        r.tolerate(runner.Tolerance(pop, ("error", "refused", "lost_on_close"),
                                    "the backend is down (and 3 s to reconnect)"),
                   t_kill, t_up + 3)
    await asyncio.sleep(after)
    res = await r.finish()
    lost_conns = r.delta("game_gateway_upstream_connections_lost_total")
    bound = r.in_flight_bound()
    for pop in ("wb", "churn"):
        led = r.ledgers[pop]
        # lost_open of in-flight frames: the end-of-run or churn-close events; bounded.
        n = led.lost_open if lost_conns > 0 else 0
        r.explained_open[pop] = min(n, bound)
        r.tolerate(runner.Tolerance(pop, ("lost_open",),
                                    "in flight to the killed backend (not replayed)",
                                    bound=bound))
    late = sum(r.ledgers[p].failures(t_up + 3, None) for p in ("wb", "churn"))
    r.notes.append(f"well-behaved failures later than 3 s after the restart: {late}")
    return r.rejudge([("backend connections lost counted", lost_conns > 0,
                             f"{lost_conns:.0f}")])


WATCHDOG_WORDS = ("watchdog", "unanswered", "no_reply", "silence", "silent")


async def blackhole(r):
    secs = sizes(r, 6, 20)
    r.describe = (f"the backend stops answering for the rest of the run ({secs} s + settle; "
                  "SIGSTOP: its kernel still ACKs, no FIN/RST), cluster without expect_reply")
    r.expect = ("frames to it cannot be delivered: each is answered with an error frame or "
                "counted by a reply watchdog metric (issue 14 item 6); 0 silent")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    r.closes_explain_loss = False   # idle_timeout closes follow from the silence
    r.mark("attack_start")
    t0 = now()
    r.backend.stall()
    await asyncio.sleep(secs)
    r.mark("attack_end")
    for pop in ("wb", "churn"):
        r.tolerate(runner.Tolerance(pop, ("error", "lost_open", "lost_on_close", "refused"),
                                    "the backend is blackholed: nothing can be delivered"),
                   t0, None)
    res = await r.finish(settle=3)
    fams = {}
    for (name, labels), v in r.after_metrics.items():
        if any(w in name for w in WATCHDOG_WORDS) or ("kind", "reply_timeout") in labels:
            d = v - r.before["metrics"].get((name, labels), 0)
            if d > 0:
                fams[name] = fams.get(name, 0) + d
    if fams:
        r.notes.append(f"silence counted by: {fams}")
        for pop in ("wb", "churn"):
            r.explained_open[pop] = r.ledgers[pop].lost()
    else:
        r.notes.append("no gateway metric counted the unanswered frames "
                       "(looked for names with " + "/".join(WATCHDOG_WORDS) +
                       " and breaker reply_timeout failures)")
    return r.rejudge([])


async def reload_storm(r):
    n = sizes(r, 50, 300)
    r.describe = f"{n} SIGHUP reloads, one per 100 ms, while churn clients reconnect"
    r.expect = ("every reload ok, well-behaved: 0 failures, backend connections never above "
                "max_connections_per_service 4 (issue 14 item 5)")
    await r.start()
    r.start_well_behaved(churn_pause=0.1)
    await r.baseline()
    r.mark("attack_start")
    for _ in range(n):
        r.gw.reload()
        await asyncio.sleep(0.1)
    r.mark("attack_end")
    await recover(r)
    res = await r.finish()
    ok = r.delta("game_gateway_config_reloads_total", result="ok")
    err = r.delta("game_gateway_config_reloads_total", result="error")
    return r.rejudge([
        ("reloads succeeded (signals may coalesce)", ok > 0 and err == 0,
         f"{ok:.0f} ok, {err:.0f} error of {n} SIGHUPs"),
        ("backend connections <= 4", r.backend_peak <= 4, f"peak {r.backend_peak}")])


async def drain(r):
    r.describe = "POST /drain (admin token) while all clients send; drain_timeout 5 s"
    r.expect = ("202; new connections refused after it (expected); open ones keep working "
                "until drain_timeout closes them (reason shutdown): frames in flight then "
                "are lost at a counted close, at most window x clients; exit 0 within 8 s")
    await r.start()
    r.start_well_behaved()
    await r.baseline()
    r.ctl.reconnect = False
    r.skip_growth = "the gateway exits"
    r.mark("attack_start")
    t0 = now()
    status = r.gw.drain(r.opts.token)
    for pop in ("wb", "churn"):
        r.tolerate(runner.Tolerance(pop, ("connect_failed", "refused", "lost_on_close"),
                                    "a draining gateway stops accepting and closes at "
                                    "drain_timeout (by design)", bound=None), t0, None)
    exited = None
    while now() - t0 < 12:
        if not r.gw.alive():
            exited = now() - t0
            break
        await asyncio.sleep(0.1)
    r.mark("attack_end")
    # connections closed at exit after the last scrape: the drain closed them
    r.explained_closes = sum(l.server_closes for l in r.ledgers.values())
    res = await r.finish(settle=1, rss_wait=0)
    lost = sum(r.ledgers[p].lost_on_close for p in ("wb", "churn"))
    return r.rejudge([
        ("POST /drain answered 202", status == 202, str(status)),
        ("exited 0 within drain_timeout + 3 s", exited is not None and exited <= 8
         and r.exit_code == 0, f"exit {r.exit_code} after {exited and round(exited, 1)} s"),
        ("frames lost at the drain close <= window x clients", lost <= r.in_flight_bound(),
         f"{lost} <= {r.in_flight_bound()}")])


SCENARIOS = [
    ("garbage", garbage), ("slowloris", slowloris), ("dribble", dribble),
    ("silent_sockets", silent_sockets), ("burst_one", burst_one), ("burst_many", burst_many),
    ("fd_limit", fd_limit), ("slow_consumer", slow_consumer), ("flood", flood),
    ("stalled_backend", stalled_backend), ("backend_kill", backend_kill),
    ("blackhole", blackhole), ("reload_storm", reload_storm), ("drain", drain),
]
