# Physical model of the bench: what really happens to the water, independent of what the
# firmware believes. Runs inside the bench process on the unix port (64-bit ints, not the
# firmware's 31-bit budget, and not in an allocation-critical path). docs/bench-model.md
# describes every effect and its default numbers.
#
# Volumes are kept in pL (integers) so nothing rounds away over a year of steps. Times are
# the bench's virtual milliseconds, told to the model with set_time(); the model never reads
# a clock itself.
import math

# Defaults (documented in docs/bench-model.md).
STEPS_PER_REV = 192          # 1.8 degree stepper with a small gearing: 192 steps per turn
ROLLERS = 3                  # three rollers: one pulsation period every 64 steps
PULSE_DEPTH_PPM = 500_000    # volume per step swings +-50 % around the mean within a period
SLIP_PPM_PER_KPA = 1_000     # 0.1 % less water per step per kPa of back pressure (tube slip)
COMPLIANCE_PL_PER_KPA = 20_000  # 20 nL stored in the tubing per kPa when the outlet is blocked
STALL_KPA = 200              # driver stall (a TMC2209's DIAG) above this line pressure
EVAP_PL_PER_H = 20_000       # 20 nL/h evaporates from the open beaker on the scale
DENSITY_PPM = 998_203        # water at 20 C, g/mL x 1e6 (Tanaka et al. 2001, SMOW)
SCALE_NOISE_UG = 5           # scale noise: triangular, bounded to +-5 ug
SCALE_RES_UG = 1             # scale resolution (a 0.001 mg microbalance)
SEED = 12345


class Lcg:
    """A small seeded generator (the unix port may lack `random`): Numerical Recipes'
    32-bit LCG, upper bits used. Deterministic for a given seed on every port."""

    def __init__(self, seed=SEED):
        self.x = seed & 0xFFFFFFFF

    def next(self):
        self.x = (1664525 * self.x + 1013904223) & 0xFFFFFFFF
        return self.x >> 8  # 24 bits; the low bits of an LCG are poor

    def uniform(self, lo, hi):
        """An integer in [lo, hi] inclusive."""
        return lo + self.next() % (hi - lo + 1)


class PumpHead:
    """A peristaltic head turned by a stepper. Each roller's pass pushes a pulse: the volume
    per step varies with the head's position, periodic over steps_per_rev // rollers steps,
    with a mean of exactly true_pl_per_step over every whole period."""

    def __init__(self, true_pl_per_step, steps_per_rev=STEPS_PER_REV, rollers=ROLLERS,
                 pulse_depth_ppm=PULSE_DEPTH_PPM):
        if steps_per_rev % rollers:
            raise ValueError("steps_per_rev must be a multiple of rollers")
        self.true_pl_per_step = true_pl_per_step
        self.steps = 0
        self.enabled = False
        self.period = steps_per_rev // rollers
        self.pulse_depth_ppm = pulse_depth_ppm
        # cum[i]: the pulsation's extra volume (pL, zero mean) after i steps into a period,
        # from the integral of depth*v*cos(2 pi x): floats only here, once, at construction.
        p = self.period
        amp = true_pl_per_step * pulse_depth_ppm / 1_000_000 * p / (2 * math.pi)
        self.cum = [int(round(amp * math.sin(2 * math.pi * i / p))) for i in range(p + 1)]
        self.cum[p] = 0  # a whole period adds exactly the mean

    def volume_to(self, pos):
        """Cumulative true volume (pL) pushed from position 0 to position pos."""
        return pos * self.true_pl_per_step + self.cum[pos % self.period]

    def volume(self, pos, steps):
        """True volume (pL) of `steps` steps starting at head position pos."""
        return self.volume_to(pos + steps) - self.volume_to(pos)


# The lab model: pass as Bench(..., **REALISTIC). The constructor's own defaults are the ideal
# pump (no pulsation, slip, evaporation or scale noise) so exact-volume tests stay exact;
# blockage, pressure and stall work in both.
REALISTIC = {
    "pulse_depth_ppm": PULSE_DEPTH_PPM,
    "slip_ppm_per_kpa": SLIP_PPM_PER_KPA,
    "back_pressure_kpa": 2,  # intrathecal pressure plus a little catheter resistance
    "evap_pl_per_h": EVAP_PL_PER_H,
    "scale_noise_ug": SCALE_NOISE_UG,
    "scale_res_ug": SCALE_RES_UG,
}


class Bench:
    """Head, reservoir, tubing, outlet beaker on a scale, battery. See docs/bench-model.md.
    The constructor's defaults are the ideal pump; Bench(..., **REALISTIC) is the lab model."""

    def __init__(self, true_pl_per_step=50_000, reservoir_ul=20_000, battery_mv=3_600,
                 seed=SEED, steps_per_rev=STEPS_PER_REV, rollers=ROLLERS,
                 pulse_depth_ppm=0, back_pressure_kpa=0, slip_ppm_per_kpa=0,
                 compliance_pl_per_kpa=COMPLIANCE_PL_PER_KPA, stall_kpa=STALL_KPA,
                 evap_pl_per_h=0, density_ppm=DENSITY_PPM, scale_noise_ug=0, scale_res_ug=1):
        for name, v in (("true_pl_per_step", true_pl_per_step), ("reservoir_ul", reservoir_ul),
                        ("compliance_pl_per_kpa", compliance_pl_per_kpa), ("stall_kpa", stall_kpa),
                        ("density_ppm", density_ppm), ("scale_res_ug", scale_res_ug)):
            if type(v) is not int or v <= 0:
                raise ValueError("%s must be a positive int, got %r" % (name, v))
        for name, v in (("back_pressure_kpa", back_pressure_kpa), ("slip_ppm_per_kpa", slip_ppm_per_kpa),
                        ("evap_pl_per_h", evap_pl_per_h), ("scale_noise_ug", scale_noise_ug),
                        ("pulse_depth_ppm", pulse_depth_ppm)):
            if type(v) is not int or v < 0:
                raise ValueError("%s must be an int >= 0, got %r" % (name, v))
        if pulse_depth_ppm > 1_000_000:
            raise ValueError("pulse_depth_ppm must be <= 1000000 (no backflow)")
        self.head = PumpHead(true_pl_per_step, steps_per_rev, rollers, pulse_depth_ppm)
        self.reservoir_pl = reservoir_ul * 1_000_000
        self.set_aside_pl = 0       # water a reservoir-empty fault took away, put back by its clear
        self.outlet_pl = 0          # water that reached the outlet (the beaker)
        self.dry_steps = 0          # steps that turned with an empty reservoir (moved air)
        self.battery_mv = battery_mv
        self.battery_drain_uv_per_step = 0  # hook: battery sags as the motor works
        self._drain_uv = 0
        self.outlet_blocked = False
        self.stored_pl = 0          # water held in the compliant tubing behind a blockage
        self.released_pl = 0        # the last bolus released when a blockage cleared
        self.stalled_steps = 0      # steps asked for while the driver was stalled (not turned)
        self.back_pressure_kpa = back_pressure_kpa
        self.slip_ppm_per_kpa = slip_ppm_per_kpa
        self.compliance_pl_per_kpa = compliance_pl_per_kpa
        self.stall_kpa = stall_kpa
        self.evap_pl_per_h = evap_pl_per_h
        self.evaporated_pl = 0
        self._evap_rem = 0          # pL x ms remainder so evaporation is exact over time
        self.now_ms = 0
        self.density_ppm = density_ppm
        self.scale_noise_ug = scale_noise_ug
        self.scale_res_ug = scale_res_ug
        self.rng = Lcg(seed)

    # ---- time -------------------------------------------------------------------------------
    def set_time(self, now_ms):
        """Tell the model the bench's virtual time; evaporation accrues over the gap."""
        if type(now_ms) is not int or now_ms < self.now_ms:
            raise ValueError("set_time needs an int ms not before %d, got %r" % (self.now_ms, now_ms))
        dt = now_ms - self.now_ms
        self.now_ms = now_ms
        if self.evap_pl_per_h and dt:
            total = dt * self.evap_pl_per_h + self._evap_rem
            pl = total // 3_600_000
            self._evap_rem = total - pl * 3_600_000
            left = self.outlet_pl - self.evaporated_pl
            self.evaporated_pl += pl if pl < left else left  # an empty beaker stops evaporating

    # ---- the head -----------------------------------------------------------------------------
    def _slip_pl(self, v):
        # Back pressure pushes some water back past the occlusion: less per step.
        loss = v * self.slip_ppm_per_kpa * self.pressure_kpa() // 1_000_000
        return v - loss if loss < v else 0

    def move(self, steps, now_ms=None):
        """Turn the head `steps` steps forward (the driver's pulses)."""
        if now_ms is not None:
            self.set_time(now_ms)
        if steps <= 0:
            return
        if self.battery_drain_uv_per_step:
            self._drain_uv += steps * self.battery_drain_uv_per_step
            self.battery_mv -= self._drain_uv // 1000
            self._drain_uv %= 1000
            if self.battery_mv < 0:
                self.battery_mv = 0
        if self.outlet_blocked:
            self._move_blocked(steps)
            return
        self._move_wet(steps, False)

    def _move_wet(self, steps, into_tubing):
        """Move `steps` steps; water goes to the outlet or into the tubing. Returns steps moved."""
        h = self.head
        v = self._slip_pl(h.volume(h.steps, steps))
        if v > self.reservoir_pl:
            # Not enough water for all of them: the rest of the steps move air.
            mean = h.true_pl_per_step
            wet = self.reservoir_pl // mean if mean else 0
            if wet > steps:
                wet = steps
            v = min(self.reservoir_pl, self._slip_pl(h.volume(h.steps, wet)))
            self.dry_steps += steps - wet
        self.reservoir_pl -= v
        if into_tubing:
            self.stored_pl += v
        else:
            self.outlet_pl += v
        h.steps += steps

    def _move_blocked(self, steps):
        # The head turns, the tubing swells: pressure rises with each step until the driver
        # stalls; steps after that are not turned (the rotor slips against the load). One step
        # at a time so each sees the pressure (and slip) it works against; the stall comes
        # within a few hundred steps, after which the rest are skipped at once.
        while steps > 0:
            if self.stalled():
                self.stalled_steps += steps
                return
            self._move_wet(1, True)
            steps -= 1

    # ---- pressure, blockage, stall ------------------------------------------------------------
    def block(self, on):
        """Block (True) or clear (False) the outlet. Clearing releases the stored bolus."""
        on = bool(on)
        if self.outlet_blocked and not on:
            self.released_pl = self.stored_pl
            self.outlet_pl += self.stored_pl
            self.stored_pl = 0
        self.outlet_blocked = on

    def pressure_kpa(self):
        """Line pressure, kPa (int): the static back pressure plus the tubing's stored volume."""
        return self.back_pressure_kpa + self.stored_pl // self.compliance_pl_per_kpa

    def set_back_pressure(self, kpa):
        if type(kpa) is not int or kpa < 0 or kpa > self.stall_kpa:
            raise ValueError("back pressure must be an int from 0 to %d kPa, got %r" % (self.stall_kpa, kpa))
        self.back_pressure_kpa = kpa

    def stalled(self):
        """True while the line pressure is past the driver's stall threshold (DIAG high)."""
        return self.pressure_kpa() > self.stall_kpa

    # ---- battery --------------------------------------------------------------------------------
    def set_battery_mv(self, mv):
        if type(mv) is not int or mv < 0 or mv > 10_000:
            raise ValueError("battery must be an int from 0 to 10000 mV, got %r" % (mv,))
        self.battery_mv = mv

    def set_battery_drain(self, uv_per_step):
        if type(uv_per_step) is not int or uv_per_step < 0:
            raise ValueError("battery drain must be an int >= 0 uV per step, got %r" % (uv_per_step,))
        self.battery_drain_uv_per_step = uv_per_step

    # ---- the outlet scale -------------------------------------------------------------------------
    def beaker_pl(self):
        """Water in the beaker on the scale: what reached the outlet minus what evaporated."""
        return self.outlet_pl - self.evaporated_pl

    def scale_ug(self, now_ms=None):
        """The scale's reading, ug of water (tared empty): true mass, plus seeded triangular
        noise bounded by +-scale_noise_ug, rounded to the scale's resolution."""
        if now_ms is not None:
            self.set_time(now_ms)
        true_ug = self.beaker_pl() * self.density_ppm // 1_000_000_000  # pL -> nL -> ug x rho
        n = self.scale_noise_ug
        if n:
            # Sum of two uniforms: triangular, mean 0, never beyond +-n.
            h = n // 2
            noise = self.rng.uniform(-h, h) + self.rng.uniform(-(n - h), n - h)
        else:
            noise = 0
        r = self.scale_res_ug
        reading = true_ug + noise
        return ((reading + r // 2) // r) * r

    # ---- the reservoir, by hand -------------------------------------------------------------
    def fill(self, volume_pl):
        """Empty the reservoir (as a refill's syringe does) and put `volume_pl` of water in.
        Returns the pL withdrawn. A fill never holds more than max_pl (the reservoir's size)."""
        if type(volume_pl) is not int or volume_pl < 0:
            raise ValueError("fill volume must be an int >= 0 pL, got %r" % (volume_pl,))
        withdrawn = self.reservoir_pl  # what a fault set aside is not in the reservoir
        self.reservoir_pl = volume_pl
        self.set_aside_pl = 0  # a fill replaces whatever a reservoir-empty fault took away
        return withdrawn

    def empty_fault(self, on):
        """The reservoir-empty fault: the water is set aside (on) and put back (off). Returns
        the pL now set aside."""
        if on:
            self.set_aside_pl += self.reservoir_pl
            self.reservoir_pl = 0
        else:
            self.reservoir_pl += self.set_aside_pl
            self.set_aside_pl = 0
        return self.set_aside_pl

    # ---- across a restart of the bench process (bench stop / start, a power cut) -------------
    _KEPT = ("reservoir_pl", "set_aside_pl", "outlet_pl", "evaporated_pl", "dry_steps", "battery_mv",
             "stored_pl", "released_pl", "stalled_steps", "outlet_blocked")

    def physical_state(self):
        """What stays true of the water, tubing and battery when the bench's power goes: a dict
        for restore_physical (virtual time is not kept: a new process starts at 0 ms)."""
        d = {k: getattr(self, k) for k in self._KEPT}
        d["head_steps"] = self.head.steps
        return d

    def restore_physical(self, d):
        """Take a physical_state() back; all or nothing (ValueError names the bad key)."""
        vals = {}
        for k in self._KEPT + ("head_steps",):
            v = d.get(k)
            if k == "outlet_blocked":
                if type(v) is not bool:
                    raise ValueError("physical state %s must be true or false, got %r" % (k, v))
            elif type(v) is not int or v < 0:
                raise ValueError("physical state %s must be an int >= 0, got %r" % (k, v))
            vals[k] = v
        for k in self._KEPT:
            setattr(self, k, vals[k])
        self.head.steps = vals["head_steps"]

    def truth(self):
        return {
            "outlet_ul": self.outlet_pl // 1_000_000,
            "outlet_nl": self.outlet_pl // 1000,
            "reservoir_true_ul": self.reservoir_pl // 1_000_000,
            "reservoir_true_nl": self.reservoir_pl // 1000,
            "set_aside_nl": self.set_aside_pl // 1000,
            "head_steps": self.head.steps,
            "dry_steps": self.dry_steps,
            "true_pl_per_step": self.head.true_pl_per_step,
            "battery_mv": self.battery_mv,
            "outlet_blocked": self.outlet_blocked,
            "pressure_kpa": self.pressure_kpa(),
            "stalled": self.stalled(),
            "stored_nl": self.stored_pl // 1000,
            "released_nl": self.released_pl // 1000,
            "stalled_steps": self.stalled_steps,
            "evaporated_nl": self.evaporated_pl // 1000,
            "beaker_nl": self.beaker_pl() // 1000,
        }
