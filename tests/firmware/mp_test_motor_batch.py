# The motor's timed batches (services/motor_batch.py, PumpTick.batch_span/dry_steps/ms_to_step)
# on the real interpreter: the look-ahead is exact, the head follows the engine within one step
# at every instant, a change of what is due re-plans, and the control loop wakes only when
# something is due (issue 15).
import asyncio
from mptest import eq, req

import app as app_mod
from pumpsim import make
from sim.board import SimBoard
from core import program as programs
from core.druglib import LIBRARY

DAY = 86_400_000
Q = 900_000


class NullPort:
    async def read(self):
        await asyncio.sleep_ms(1_000_000)
        return b""

    def write(self, b):
        return len(b)


def _lcg(seed):
    while True:
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        yield seed


@req("SR-001")
def test_ms_to_step_is_the_first_ms_holding_k_steps():
    r = _lcg(7)
    checked = 0
    for _ in range(60):
        rate = 1 + next(r) % 800
        conc = (500, 1000, 2000, 3000)[next(r) % 4]
        pump, _ = make({"drug": "baclofen", "concentration_ug_per_ml": conc, "mode": "continuous",
                        "rate_ug_per_day": rate}, pl=20_000 + next(r) % 60_000)
        pump.tick(next(r) % DAY)  # any phase of the remainders
        kmax = pump.batch_steps_max()
        for k in (1, 2, kmax // 2 or 1, kmax):
            t = pump.ms_to_step(k)
            eq(pump.dry_steps(t) >= k, True, "k=%d at %d ms" % (k, t))
            eq(t == 0 or pump.dry_steps(t - 1) < k, True, "not the first ms for k=%d" % k)
            checked += 1
    eq(checked, 240)


@req("SR-001")
def test_dry_steps_equals_what_the_tick_then_returns():
    pump, _ = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                    "rate_ug_per_day": 500})
    for _ in range(200):
        span = pump.batch_span()
        want = pump.dry_steps(span)
        eq(pump.tick(span), want)
    eq(pump.state, "running")


@req("SR-011")
def test_a_batch_ends_at_the_step_that_makes_the_reservoir_low():
    pump, _ = make({"drug": "water", "concentration_ug_per_ml": 1000, "mode": "continuous",
                    "rate_ug_per_day": 10_000}, fill_ul=10_050)
    pump.reservoir.low_nl = 10_000_000
    got = 0
    while not pump.reservoir.low():
        span = pump.batch_span()
        got += pump.tick(span)
    eq(got, 1000, "the batch stopped at the 1000th step (50 µL), not at the quarter hour")


def _app(prog):
    b = SimBoard(lockstep=True, port=NullPort())
    b.clock.set_wall(9800, 0)
    a = app_mod.App(b)
    return a, b


async def _run(a, b, prog_dict, fn):
    asyncio.create_task(app_mod.main(a))
    await b.clock.advance(0)
    prog = programs.parse(prog_dict, LIBRARY)
    a.sync()
    a.pump.set_program(prog, LIBRARY.max24_ug(prog.drug))
    a.changed(save=False)
    await b.clock.advance(0)
    await fn()


_AT_800 = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 800}


def _exact(rate, conc, pl, ms):
    return rate * ms * 10**9 // (DAY * conc * pl)  # floor of the exact integral


@req("SR-001", "SR-007")
def test_a_day_at_500_wakes_about_a_hundred_times_and_the_head_follows_the_engine():
    prog = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}
    a, b = _app(prog)
    out = {}

    async def day():
        w0 = a.batch.wakes
        await b.clock.advance(DAY)  # one day in one go: only the control loop's own wakes
        out["wakes"] = a.batch.wakes - w0
        worst = 0
        t = 0
        step = 7_919  # look at the bench at many instants that are not batch ends
        while t < DAY:
            await b.clock.advance(step)
            t += step
            a.sync()  # what status reports
            b.motor.release()
            d = abs(b.bench.head.steps - a.pump.steps_total.value())
            if d > worst:
                worst = d
        out["worst"] = worst
        out["steps"] = a.pump.steps_total.value()

    asyncio.run(_run(a, b, prog, day))
    eq(out["worst"] <= 1, True, "head vs engine at any instant: %d steps" % out["worst"])
    exact = 10_000  # two days of 500 µg/day of 2000 µg/mL at 50 nL/step
    eq(abs(out["steps"] - exact) <= 1, True, out["steps"])
    eq(out["wakes"] <= 200, True, "control-loop wakes in a day: %d" % out["wakes"])
    eq(out["wakes"] >= 96, True, "a batch every quarter hour: %d" % out["wakes"])


@req("SR-001", "SR-004")
def test_a_bolus_mid_batch_re_plans_and_every_step_is_turned():
    prog = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}
    a, b = _app(prog)
    out = {}

    async def go():
        await b.clock.advance(7 * 60_000)  # inside the first batch
        a.sync()
        a.pump.start_bolus("clinician", 50, 10)
        a.changed(save=False)
        await b.clock.advance(0)
        out["left_after_replan"] = b.motor.left()
        await b.clock.advance(2 * 3_600_000)
        a.sync()
        b.motor.release()
        out["engine"] = a.pump.steps_total.value()
        out["head"] = b.bench.head.steps
        out["bolus"] = a.pump.bolus_kind

    asyncio.run(_run(a, b, prog, go))
    eq(out["bolus"], None, "the bolus ended")
    eq(abs(out["engine"] - out["head"]) <= 1, True, (out["engine"], out["head"]))
    # 50 µg of bolus is 500 steps; 500 µg/day for 2 h 7 min is 441 steps.
    eq(abs(out["engine"] - (500 + 441)) <= 2, True, out["engine"])
    eq(out["left_after_replan"] > 0, True, "the re-planned batch carries the bolus")


@req("SR-029")
def test_a_stop_aborts_the_batch_and_nothing_moves_after():
    prog = _AT_800
    a, b = _app(prog)
    out = {}

    async def go():
        await b.clock.advance(5 * 60_000)
        a.sync()
        a.pump.stop()
        a.changed(save=False)
        await b.clock.advance(0)
        b.motor.release()
        out["left"] = b.motor.left()
        h = b.bench.head.steps
        await b.clock.advance(3_600_000)
        b.motor.release()
        out["moved_after"] = b.bench.head.steps - h
        out["gap"] = abs(b.bench.head.steps - a.pump.steps_total.value())

    asyncio.run(_run(a, b, prog, go))
    eq((out["left"], out["moved_after"]), (0, 0))
    eq(out["gap"] <= 1, True, out["gap"])


def _owed_then_stop(reason):
    # A late wake, made by hand: the motor's batch is taken back, then two minutes pass without
    # the control loop waking (the clock moved under it, as a loop busy elsewhere would see), so
    # the tick counts steps the motor was never given. Then a stop, for `reason`.
    prog = _AT_800
    a, b = _app(prog)
    out = {}

    async def go():
        await b.clock.advance(5 * 60_000)
        a.sync()
        a.batch.abort()
        b.motor.release()
        b.clock._v += 120_000
        a.sync()
        out["owed"] = -a.batch.ahead
        a.pump.stop(reason)
        a.changed(save=False)
        await b.clock.advance(60_000)
        b.motor.release()
        out["gap"] = a.pump.steps_total.value() - b.bench.head.steps

    asyncio.run(_run(a, b, prog, go))
    return out


@req("SR-029")
def test_steps_counted_and_not_yet_pulsed_are_turned_after_a_programmer_stop():
    out = _owed_then_stop("stopped by programmer")
    eq(out["owed"] >= 10, True, "2 min at 800 µg/day owes about 11 steps: %d" % out["owed"])
    eq(out["gap"], 0, "the head stopped where the pump says it did")


@req("SR-009")
def test_after_a_fault_stop_the_head_turns_nothing_more():
    out = _owed_then_stop("occlusion")
    eq(out["gap"], out["owed"], "not a step against the blockage; the count leads by what was owed")


class _CountingNvram:
    """FRAM-like (a record after every move), counting the records written."""
    kind = "fram"
    min_interval_ms = 0
    max_steps = 0

    def __init__(self):
        self.data = None
        self.writes = 0

    def read(self, n):
        return None if self.data is None else bytes(self.data[:n])

    def write(self, buf):
        self.data = bytes(buf)
        self.writes += 1


@req("SR-032")
def test_the_quarter_hour_heartbeat_is_not_written_twice_at_one_wake_and_still_beats_when_idle():
    from services.journal import Journal
    b = SimBoard(lockstep=True, port=NullPort())
    b.clock.set_wall(9800, 0)
    nv = _CountingNvram()
    b.nvram = nv
    a = app_mod.App(b)
    out = {}

    async def go():
        n0 = nv.writes
        await b.clock.advance(DAY)  # delivering: each wake counts steps and writes a record
        out["running"] = nv.writes - n0
        out["wakes"] = a.batch.wakes
        a.sync()
        rec = Journal(nv).read()
        out["journaled"] = rec[2] * 1000 + rec[3]
        out["counted"] = a.pump.steps_total.value()
        a.pump.stop("programmer")
        a.changed()
        await b.clock.advance(0)
        n1 = nv.writes
        await b.clock.advance(DAY)  # stopped: nothing moves, the heartbeat alone
        out["idle"] = nv.writes - n1

    asyncio.run(_run(a, b, _AT_800, go))
    # About 96 wakes (quarter hours) and 4 saves a day; each wake's move writes one record and
    # the check at that wake writes no second one (before: about 200 a day).
    eq(out["running"] <= 110, True, "records in a day of delivery: %d" % out["running"])
    eq(out["journaled"], out["counted"], "the journal holds what was counted")
    eq(94 <= out["idle"] <= 110, True, "heartbeats in an idle day: %d" % out["idle"])
