# The virtual bench's physical model (boards/sim/physics.py, docs/bench-model.md), on the real
# MicroPython interpreter that runs it inside the bench.
from mptest import eq, raises
from sim.physics import Bench, Lcg, PumpHead, REALISTIC


def _real(**kw):
    d = dict(REALISTIC)
    d.update(kw)
    return Bench(50_000, 20_000, **d)


def test_ideal_defaults_keep_exact_volume():
    b = Bench(51_500, 20_000)
    b.move(1000)
    t = b.truth()
    eq(t["outlet_nl"], 1000 * 51_500 // 1000)
    eq(t["head_steps"], 1000)
    eq(t["reservoir_true_nl"], 20_000_000 - 51_500)
    eq(b.pressure_kpa(), 0)
    eq(b.stalled(), False)


def test_pulsation_mean_is_true_volume_per_whole_period():
    h = PumpHead(50_000, 192, 3, 500_000)
    eq(h.period, 64)
    # Over any whole period, from any starting position, exactly 64 x the mean.
    for start in (0, 1, 17, 63, 1000):
        eq(h.volume(start, 64), 64 * 50_000)
    eq(h.volume(5, 640), 640 * 50_000)


def test_pulsation_varies_per_step_within_depth():
    h = PumpHead(50_000, 192, 3, 500_000)
    vols = [h.volume(i, 1) for i in range(64)]
    lo, hi = min(vols), max(vols)
    # +-50 % depth: the biggest step about 1.5x the mean, the smallest about 0.5x.
    if not (74_000 < hi < 76_000 and 24_000 < lo < 26_000):
        raise AssertionError("pulsation range %d..%d" % (lo, hi))
    eq(sum(vols), 64 * 50_000)
    # One pulse per roller: the profile repeats every 64 steps.
    eq([h.volume(i + 64, 1) for i in range(64)], vols)


def test_partial_period_differs_from_mean():
    b = _real(back_pressure_kpa=0)
    b.move(16)  # a quarter period, at the pulse's peak
    if not b.outlet_pl > 16 * 50_000 * 11 // 10:
        raise AssertionError("no pulse: %d" % b.outlet_pl)


def test_back_pressure_slips_water():
    b = _real(back_pressure_kpa=10)  # 10 kPa x 0.1 %/kPa = 1 % less
    b.move(6400)
    eq(b.outlet_pl, 6400 * 50_000 * 99 // 100)
    raises(ValueError, b.set_back_pressure, -1)
    raises(ValueError, b.set_back_pressure, 10_000)


def test_blocked_outlet_holds_then_releases_volume():
    b = _real(back_pressure_kpa=0)
    b.move(64)
    before = b.outlet_pl
    b.block(True)
    b.move(20)
    eq(b.outlet_pl, before)          # nothing reached the outlet
    eq(b.head.steps, 84)             # but the head turned
    stored = b.stored_pl
    if stored <= 0:
        raise AssertionError("nothing stored")
    eq(b.reservoir_pl, 20_000 * 1_000_000 - before - stored)
    b.block(False)
    eq(b.outlet_pl, before + stored)  # the bolus reaches the outlet at once
    eq(b.released_pl, stored)
    eq(b.stored_pl, 0)
    eq(b.pressure_kpa(), 0)


def test_pressure_rises_with_each_step():
    b = _real(back_pressure_kpa=2)
    b.block(True)
    last = b.pressure_kpa()
    eq(last, 2)
    rises = 0
    for _ in range(60):
        b.move(1)
        p = b.pressure_kpa()
        if p < last:
            raise AssertionError("pressure fell %d -> %d" % (last, p))
        rises += p > last
        last = p
    # 20 nL/kPa compliance and ~50 nL steps: 2 to 3 kPa a step.
    if not (rises >= 55 and 120 < last < 180):
        raise AssertionError("rises %d, last %d kPa" % (rises, last))


def test_stall_threshold_and_no_turning_after():
    b = _real(back_pressure_kpa=0)
    b.block(True)
    n = 0
    while not b.stalled():
        b.move(1)
        n += 1
        if n > 1000:
            raise AssertionError("never stalled")
    # 200 kPa x 20 nL/kPa = 4 uL at ~50 nL a step: about 80 steps, a few more as the
    # growing pressure slips up to 20 % of each step back.
    if not 80 <= n <= 92:
        raise AssertionError("stalled after %d steps" % n)
    if not b.pressure_kpa() > 200:
        raise AssertionError("stall below threshold")
    steps = b.head.steps
    b.move(500)
    eq(b.head.steps, steps)
    eq(b.stalled_steps, 500)
    b.block(False)
    eq(b.stalled(), False)
    b.move(1)
    eq(b.head.steps, steps + 1)


def test_big_blocked_move_equals_single_steps():
    a = _real()
    c = _real()
    a.block(True)
    c.block(True)
    a.move(300)
    for _ in range(300):
        c.move(1)
    eq(a.stalled(), True)
    eq(a.head.steps, c.head.steps)
    eq(a.stored_pl, c.stored_pl)
    eq(a.stalled_steps, c.stalled_steps)


def test_scale_noise_seeded_and_bounded():
    a = _real(seed=7)
    b = _real(seed=7)
    c = _real(seed=8)
    a.move(6400)
    b.move(6400)
    c.move(6400)
    true_ug = a.beaker_pl() * 998_203 // 1_000_000_000
    ra = [a.scale_ug() for _ in range(500)]
    rb = [b.scale_ug() for _ in range(500)]
    rc = [c.scale_ug() for _ in range(500)]
    eq(ra, rb)
    if ra == rc:
        raise AssertionError("seed has no effect")
    devs = [r - true_ug for r in ra]
    if max(devs) > 5 or min(devs) < -5:
        raise AssertionError("noise beyond +-5 ug: %d..%d" % (min(devs), max(devs)))
    if max(devs) < 2 or min(devs) > -2:
        raise AssertionError("noise too small to be noise")
    mean10 = sum(devs) * 10 // len(devs)
    if abs(mean10) > 5:  # mean within 0.5 ug
        raise AssertionError("noise biased: %d/10" % mean10)


def test_scale_resolution():
    b = Bench(50_000, 20_000, scale_res_ug=1000)
    b.move(10)  # 500 nL: 499.1 ug at 0.998203 g/mL -> 0 mg on a 1 mg scale
    eq(b.scale_ug(), 0)
    b.move(20)  # 1500 nL: 1497.3 ug -> 1 mg
    eq(b.scale_ug(), 1000)
    b.move(30)  # 3000 nL: 2994.6 ug -> 3 mg
    eq(b.scale_ug(), 3000)


def test_evaporation_a_little_per_hour():
    b = _real(scale_noise_ug=0)
    b.move(6400)  # 320 uL in the beaker, less 0.2 % slip at 2 kPa
    start = b.beaker_pl()
    b.set_time(3_600_000)
    eq(b.evaporated_pl, 20_000)  # 20 nL in one hour
    b.set_time(3_600_000 + 1_800_000)
    eq(b.evaporated_pl, 30_000)
    for k in range(1, 1001):  # many small steps round to the same total
        b.set_time(5_400_000 + 3_600 * k)
    eq(b.evaporated_pl, 50_000)  # 1000 x 3.6 s = one more hour: 20 nL more
    eq(b.beaker_pl(), start - 50_000)
    eq(b.scale_ug(), (start - 50_000) * 998_203 // 1_000_000_000)
    raises(ValueError, b.set_time, 0)  # time never runs backwards


def test_empty_beaker_stops_evaporating():
    b = _real()
    b.set_time(10 * 3_600_000)
    eq(b.evaporated_pl, 0)
    eq(b.beaker_pl(), 0)


def test_empty_reservoir_moves_air():
    b = Bench(50_000, 1)  # 1 uL: 20 steps of water
    b.move(30)
    eq(b.outlet_pl, 1_000_000)
    eq(b.reservoir_pl, 0)
    eq(b.dry_steps, 10)


def test_battery_hooks():
    b = Bench(50_000, 20_000)
    b.set_battery_mv(3_100)
    eq(b.battery_mv, 3_100)
    raises(ValueError, b.set_battery_mv, -5)
    raises(ValueError, b.set_battery_mv, "3000")
    b.set_battery_drain(1_500)  # 1.5 mV per step
    b.move(10)
    eq(b.battery_mv, 3_100 - 15)


def test_lcg_deterministic():
    a = Lcg(1)
    eq([a.next() for _ in range(3)], [Lcg(1).next(), _second(1), _third(1)])
    for _ in range(1000):
        v = a.uniform(-3, 3)
        if not -3 <= v <= 3:
            raise AssertionError(v)


def _second(seed):
    g = Lcg(seed)
    g.next()
    return g.next()


def _third(seed):
    g = Lcg(seed)
    g.next()
    g.next()
    return g.next()


def test_bad_construction_refused():
    raises(ValueError, Bench, 0, 20_000)
    raises(ValueError, Bench, 50_000, 20_000, pulse_depth_ppm=2_000_000)
    raises(ValueError, Bench, 50_000, 20_000, evap_pl_per_h=-1)
    raises(ValueError, PumpHead, 50_000, 200, 3)


def test_truth_keeps_old_keys():
    t = Bench(50_000, 20_000).truth()
    for k in ("outlet_ul", "outlet_nl", "reservoir_true_ul", "reservoir_true_nl", "head_steps",
              "dry_steps", "true_pl_per_step", "battery_mv"):
        if k not in t:
            raise AssertionError(k)


def test_move_and_scale_take_time_argument():
    b = _real(scale_noise_ug=0)
    b.move(64, 1_800_000)  # the time is set before the water moves: no evaporation yet
    eq(b.evaporated_pl, 0)
    eq(b.now_ms, 1_800_000)
    b.scale_ug(1_800_000 + 3_600_000)
    eq(b.evaporated_pl, 20_000)
    raises(ValueError, b.move, 1, 0)  # time never runs backwards
    eq(b.head.steps, 64)  # and the refused move changed nothing
