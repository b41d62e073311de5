# The pump's control tick: what runs every time the app hands the pump elapsed time, under
# micropython.heap_lock(). Pump (core/pump.py) extends PumpTick and sets every field in its
# __init__; the tick and what it calls live here so a reader sees the whole allocation-free
# path in one file. Nothing here allocates: small-int arithmetic on preallocated integrators.
from core.base import const

from core.engine import UNITS_PER_Q, Q_PER_NG, Q_PER_UG

_DAY_MS = const(86_400_000)
_MIN_MS = const(60_000)
_MAX_WAKE_MS = const(3_600_000)
_EXACT_Q = const(500_000)  # below this many quanta left, bolus end times are computed exactly
_WINDOW_SEG_MS = const(900_000)  # keeps a bolus's quanta (1.6e6 per µg) below 2**30

# Conditions found inside the tick, raised as alarms by the app (raising may allocate).
FLAG_EMPTY = const(1)
FLAG_LOW = const(2)
FLAG_LIMIT24 = const(4)  # the rolling 24 h dose reached the drug's maximum
FLAG_PERIODIC_REFUSED = const(8)  # a periodic bolus would have passed the 24 h maximum
FLAG_PERIODIC_SKIPPED = const(16)  # a periodic bolus fell while another bolus ran
FLAG_STOPPED_LONG = const(32)  # stopped longer than the set time while a program exists
FLAG_PERIODIC_STARTED = const(64)
FLAG_BRIDGE_DONE = const(128)
FLAG_PRIME_DONE = const(256)  # a priming bolus moved its volume
FLAG_CALIBRATION_RUN_DONE = const(512)  # a calibration run moved its volume

STOPPED = "stopped"
RUNNING = "running"


class PumpTick:
    """The tick's half of Pump: every field it reads is set in Pump.__init__ (core/pump.py)."""

    # Stopping and the dose sources' rates: the tick stops an empty pump and starts a
    # periodic bolus itself, so these run inside it too.
    def stop(self, reason="stopped by programmer"):
        self.state = STOPPED
        self.stop_reason = reason
        self.basal.set_rate(0)
        self.cancel_bolus()
        self.prime_left = 0
        self.prime.set_rate(0)
        self._rates_changed()
        self.to_boundary_ms = -1

    def _start_bolus(self, kind, dose_ug, duration_min):
        # Small-int arithmetic only: a periodic bolus starts inside the control tick.
        rate = dose_ug * 1440 // duration_min  # rounded down: the dose is exact, the end may be later
        self.bolus.set_rate(rate if rate > 0 else 1)
        self._rates_changed()
        self.bolus.remainder_units = 0
        self.bolus_left_q = dose_ug * Q_PER_UG
        self.bolus_kind = kind
        self._rates_changed()

    def cancel_bolus(self):
        left = self.bolus_left_q
        self.bolus.set_rate(0)
        self.bolus_kind = None
        self.bolus_left_q = 0
        self._rates_changed()
        return left

    def _periodic(self, m):
        """Start the periodic bolus due at minute m, once per day, never late (no catch-up)."""
        p = self.program
        if not p.periodic or (self.periodic_day == self.day and self.periodic_min == m):
            return
        for t, dose, dur in p.periodic:
            if t == m and self.ms % _MIN_MS < 1000:
                self.periodic_day = self.day
                self.periodic_min = m
                if self.bolus_kind is not None or self.prime_left:
                    self.flags |= FLAG_PERIODIC_SKIPPED
                elif self.max24_ug and self.rolling.would_exceed(self.up_s, dose, self.max24_ug):
                    self.flags |= FLAG_PERIODIC_REFUSED
                else:
                    self._start_bolus("periodic", dose, dur)
                    self.flags |= FLAG_PERIODIC_STARTED
                return

    def _rates_changed(self):
        a = self.basal.max_dt()
        b = self.bolus.max_dt()
        c = self.prime.max_dt()
        if b < a:
            a = b
        if c < a:
            a = c
        self.segment_cap_ms = a // 3

    def _enter_time(self):
        """Set the basal rate and the next boundary for the current time of day."""
        p = self.program
        m = self.ms // _MIN_MS
        self.basal.set_rate(p.rate_at(m))
        self._rates_changed()
        self._periodic(m)
        if len(p.steps) > 1:
            nxt = p.next_change_min(m)
            d = nxt * _MIN_MS - self.ms
            if d <= 0:
                d += _DAY_MS
            self.to_boundary_ms = d
        else:
            self.to_boundary_ms = -1

    # ---- the control tick (allocation-free) --------------------------------------------
    def tick(self, dt_ms):
        """Advance dt_ms of time; return the steps the motor must move now."""
        steps = 0
        running = self.state == RUNNING
        while dt_ms > 0:
            seg = dt_ms
            b = self.to_boundary_ms
            if running and b >= 0 and b < seg:
                seg = b
            if running and self.bolus_kind is not None:
                e = self._ms_to_bolus_end()
                if e < seg:
                    seg = e
            cap = self.segment_cap_ms
            if cap > _WINDOW_SEG_MS:
                cap = _WINDOW_SEG_MS  # the 24 h window's resolution: dose lands in the right bucket
            if seg > cap:
                seg = cap
            if seg < 1:
                # Only a boundary that is due right now may take a zero-length segment (it is
                # handled below); anything else moves at least 1 ms so the loop always ends.
                seg = 0 if (running and self.to_boundary_ms == 0) else 1
            quanta = 0
            if running and seg:
                quanta = self.basal.advance(seg)
                if self.bolus_kind is not None:
                    bolus_quanta = self.bolus.advance(seg)
                    if bolus_quanta > self.bolus_left_q:
                        bolus_quanta = self.bolus_left_q
                    self.bolus_left_q -= bolus_quanta
                    quanta += bolus_quanta
                if self.prime_left:
                    steps += self._prime_steps(seg)
            elif not running and seg and self.program is not None:
                self._stopped_time(seg)
            self._advance_time(seg)
            if running and quanta:
                self.q_total.add(quanta)
                steps += self.conv.add_q(quanta)
                self._dose_window(quanta)  # stamped at the segment's end: never ages out early
            dt_ms -= seg
            if running:
                if self.bolus_kind is not None and self.bolus_left_q == 0:
                    self.cancel_bolus()
                if self.to_boundary_ms == 0:
                    self._enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def _dose_window(self, quanta):
        quanta += self.window_q_below_ng
        ng = quanta // Q_PER_NG
        self.window_q_below_ng = quanta - ng * Q_PER_NG
        if ng:
            self.rolling.add(self.up_s, ng)
            if self.max24_ug and self.rolling.total_ug(self.up_s) >= self.max24_ug:
                self.flags |= FLAG_LIMIT24

    def _prime_steps(self, seg):
        q = self.prime_q + self.prime.advance(seg)
        n = q // Q_PER_NG  # the prime integrator counts steps/day, so one "ng" is one step
        self.prime_q = q - n * Q_PER_NG
        if n >= self.prime_left:
            n = self.prime_left
            self.prime_left = 0
            self.prime.set_rate(0)
            self._rates_changed()
            self.flags |= self.prime_done_flag
            if self.prime_was_stopped:
                self.state = STOPPED
                self.stop_reason = self.prime_done_reason
        else:
            self.prime_left -= n
        return n

    def _stopped_time(self, seg):
        ms = self.stopped_ms + seg
        s = ms // 1000
        self.stopped_ms = ms - s * 1000
        self.stopped_s += s
        if self.stopped_s >= self.stopped_alarm_s:
            self.flags |= FLAG_STOPPED_LONG

    def _ms_to_bolus_end(self):
        left = self.bolus_left_q
        if left <= _EXACT_Q:
            return self.bolus.ms_to_q(left)
        per_ms = (self.bolus.rate + UNITS_PER_Q - 1) // UNITS_PER_Q  # upper bound of quanta/ms
        return 1 + (left - _EXACT_Q) // per_ms

    def _advance_time(self, seg):
        ms = self.up_ms + seg
        s = ms // 1000
        self.up_ms = ms - s * 1000
        self.up_s += s
        ms = self.ms + seg
        if ms >= _DAY_MS:
            d = ms // _DAY_MS
            self.day += d
            ms -= d * _DAY_MS
        self.ms = ms
        if self.to_boundary_ms > 0:
            self.to_boundary_ms -= seg

    def _deliver(self, steps):
        got = self.reservoir.take(steps, self.nl_per_step, self.pl_per_step_rem)
        if got and self.bridge_left:
            if got >= self.bridge_left:
                self.bridge_left = 0
                self.conv = self.conv_after_bridge  # the new drug has reached the catheter tip
                self.conv_after_bridge = None
                self.flags |= FLAG_BRIDGE_DONE
            else:
                self.bridge_left -= got
        if got:
            self.steps_total.add(got)
            pl = self.pl_below_nl + got * self.pl_per_step_rem
            nl = pl // 1000
            self.pl_below_nl = pl - nl * 1000
            self.nl_total.add(got * self.nl_per_step + nl)
        if got < steps or self.reservoir.empty(self.nl_per_step, self.pl_per_step_rem):
            self.stop("reservoir empty")
            self.flags |= FLAG_EMPTY
        elif self.reservoir.low():
            self.flags |= FLAG_LOW
        return got

    def take_flags(self):
        """Conditions the last ticks found; the app turns them into alarms outside the tick."""
        f = self.flags
        self.flags = 0
        return f

    def ms_to_next_step(self):
        """When the next step falls due (never late; may be early), -1 if nothing is due."""
        if self.state != RUNNING or self.conv is None:
            return -1
        rate = self.basal.rate
        if self.bolus_kind is not None:
            rate += self.bolus.rate
        if rate == 0:
            return -1
        need = self.conv.q_to_next_step()
        units = need * UNITS_PER_Q - self.basal.remainder_units
        if self.bolus_kind is not None:
            units -= self.bolus.remainder_units
        if units <= 0:
            # The two remainders add up to a quantum but neither holds one: the next whole
            # quantum of either source is the earliest anything can happen (never 0: no spin).
            a = self.basal.ms_to_q(1)
            b = self.bolus.ms_to_q(1) if self.bolus_kind is not None else -1
            if a < 0 or (0 <= b < a):
                a = b
            return a if a > 0 else 1
        return (units + rate - 1) // rate

    def next_wake_ms(self):
        """The longest the app may sleep before the tick has work to do."""
        w = _MAX_WAKE_MS
        n = self.ms_to_next_step()
        if 0 <= n < w:
            w = n
        if self.prime_left:
            n = self.prime.ms_to_q(Q_PER_NG - self.prime_q)
            if 0 <= n < w:
                w = n
        if self.state == RUNNING:
            b = self.to_boundary_ms
            if 0 <= b < w:
                w = b
            if self.bolus_kind is not None:
                e = self._ms_to_bolus_end()
                if e < w:
                    w = e
        return w if w > 0 else 0
