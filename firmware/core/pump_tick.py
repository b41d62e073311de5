# The pump's control tick: time in, motor steps out, exactly (core/engine.py says why exact).
#
# PumpTick is the part of Pump (core/pump.py) that runs inside the control loop: the tick, the
# dose sources' rates for the time of day, the bolus and volume-run integrators, the clock,
# the 24 h window, the reservoir draw and the wake time. It is one object with Pump, split by
# file only: one object costs a Pico's heap far less than several (docs/architecture.md).
#
# Allocation-free: everything here runs under heap_lock() (small ints and preallocated
# objects only). Conditions found here are left in self.flags for the app to raise as alarms
# outside the tick, because raising an alarm may allocate.
from core.base import const
from core.engine import UNITS_PER_Q, Q_PER_NG, Q_PER_UG

_DAY_MS = const(86_400_000)
_MIN_MS = const(60_000)
_MAX_WAKE_MS = const(3_600_000)
_MAX_BATCH_MS = const(900_000)  # a motor batch ends on the pump's quarter hours (docs/architecture.md)
_EPOCH_MASK = const(0x3FFFFFFF)
_BATCH_Q = const(9_000_000)  # quanta a planned batch may span: x 54 units stays below 2**29
_EXACT_Q = const(500_000)  # below this many quanta left, bolus end times are computed exactly
_WINDOW_SEG_MS = const(900_000)  # keeps a bolus's quanta (1.6e6 per µg) below 2**30

# Conditions found inside the tick, raised as alarms by the app (core/conditions.py).
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
    def tick(self, dt_ms):
        """Advance dt_ms of time; return the steps the motor must move now."""
        steps = 0
        running = self.state == RUNNING
        while dt_ms > 0:
            seg = dt_ms
            b = self._to_boundary
            if running and b >= 0 and b < seg:
                seg = b
            if running and self.bolus_kind is not None:
                e = self._ms_to_bolus_end()
                if e < seg:
                    seg = e
            cap = self._seg_cap
            if cap > _WINDOW_SEG_MS:
                cap = _WINDOW_SEG_MS  # the 24 h window's resolution: dose lands in the right bucket
            if seg > cap:
                seg = cap
            if seg < 1:
                # Only a boundary that is due right now may take a zero-length segment (it is
                # handled below); anything else moves at least 1 ms so the loop always ends.
                seg = 0 if (running and self._to_boundary == 0) else 1
            quanta = 0
            if running and seg:
                quanta = self.basal.advance(seg)
                if self.bolus_kind is not None:
                    bolus_quanta = self.bolus.advance(seg)
                    if bolus_quanta > self.bolus_left_q:
                        bolus_quanta = self.bolus_left_q
                    self.bolus_left_q -= bolus_quanta
                    quanta += bolus_quanta
                if self.run.steps_left:
                    steps += self._run_steps(seg)
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
                if self._to_boundary == 0:
                    self._enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def busy(self):
        """A bolus or a volume run (prime, calibration) is moving: nothing else may start."""
        return self.bolus_kind is not None or self.run.steps_left > 0

    def take_flags(self):
        """Conditions the last ticks found; the app turns them into alarms outside the tick."""
        f = self.flags
        self.flags = 0
        return f

    # ---- dose sources ---------------------------------------------------------------------
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
            self._to_boundary = d
        else:
            self._to_boundary = -1

    def _periodic(self, m):
        """Start the periodic bolus due at minute m, once per day, never late (no catch-up)."""
        p = self.program
        if not p.periodic or (self._pb_day == self.day and self._pb_min == m):
            return
        for t, dose, dur in p.periodic:
            if t == m and self.ms % _MIN_MS < 1000:
                self._pb_day = self.day
                self._pb_min = m
                if self.busy():
                    self.flags |= FLAG_PERIODIC_SKIPPED
                elif self.max24_ug and self.rolling.would_exceed(self.up_s, dose, self.max24_ug):
                    self.flags |= FLAG_PERIODIC_REFUSED
                else:
                    self._start_bolus("periodic", dose, dur)
                    self.flags |= FLAG_PERIODIC_STARTED
                return

    def _start_bolus(self, kind, dose_ug, duration_min):
        # Small-int arithmetic only: a periodic bolus starts inside the control tick.
        rate = dose_ug * 1440 // duration_min  # rounded down: the dose is exact, the end may be later
        self.bolus.set_rate(rate if rate > 0 else 1)
        self.bolus.remainder_units = 0
        self.bolus_left_q = dose_ug * Q_PER_UG
        self.bolus_kind = kind
        self._rates_changed()

    def cancel_bolus(self):
        """End the running bolus, if any; returns the quanta it had left."""
        left = self.bolus_left_q
        self.bolus.set_rate(0)
        self.bolus_kind = None
        self.bolus_left_q = 0
        self._rates_changed()
        return left

    def _rates_changed(self):
        # What is due changed: the app re-plans the motor's batch when it sees a new epoch.
        self.epoch = (self.epoch + 1) & _EPOCH_MASK
        a = self.basal.max_dt()
        b = self.bolus.max_dt()
        c = self.run.rate.max_dt()
        if b < a:
            a = b
        if c < a:
            a = c
        self._seg_cap = a // 3

    def _ms_to_bolus_end(self):
        left = self.bolus_left_q
        if left <= _EXACT_Q:
            return self.bolus.ms_to_q(left)
        per_ms = (self.bolus.rate + UNITS_PER_Q - 1) // UNITS_PER_Q  # upper bound of quanta/ms
        return 1 + (left - _EXACT_Q) // per_ms

    def _run_steps(self, seg):
        n = self.run.advance(seg)
        if n and not self.run.steps_left:  # the volume run moved its last step
            self._rates_changed()
            self.flags |= self.run.done_flag
            if self.run.was_stopped:
                self.state = STOPPED
                self.stop_reason = self.run.done_reason
        return n

    # ---- time, window and reservoir -------------------------------------------------------
    def _advance_time(self, seg):
        ms = self._up_ms + seg
        s = ms // 1000
        self._up_ms = ms - s * 1000
        self.up_s += s
        ms = self.ms + seg
        if ms >= _DAY_MS:
            d = ms // _DAY_MS
            self.day += d
            ms -= d * _DAY_MS
        self.ms = ms
        if self._to_boundary > 0:
            self._to_boundary -= seg

    def _stopped_time(self, seg):
        ms = self._stopped_ms + seg
        s = ms // 1000
        self._stopped_ms = ms - s * 1000
        self.stopped_s += s
        if self.stopped_s >= self.stopped_alarm_s:
            self.flags |= FLAG_STOPPED_LONG

    def _dose_window(self, quanta):
        quanta += self._q_rem
        ng = quanta // Q_PER_NG
        self._q_rem = quanta - ng * Q_PER_NG
        if ng:
            self.rolling.add(self.up_s, ng)
            if self.max24_ug and self.rolling.total_ug(self.up_s) >= self.max24_ug:
                self.flags |= FLAG_LIMIT24

    def _deliver(self, steps):
        got = self.reservoir.take(steps, self._nl_step, self._pl_step)
        if got and self.bridge_left:
            if got >= self.bridge_left:
                self.bridge_left = 0
                self.conv = self._conv_after  # the new drug has reached the catheter tip
                self._conv_after = None
                self.flags |= FLAG_BRIDGE_DONE
                self.epoch = (self.epoch + 1) & _EPOCH_MASK  # the step's dose changed
            else:
                self.bridge_left -= got
        if got:
            self.steps_total.add(got)
            pl = self.pl_below_nl + got * self._pl_step
            nl = pl // 1000
            self.pl_below_nl = pl - nl * 1000
            self.nl_total.add(got * self._nl_step + nl)
        if got < steps or self.reservoir.empty(self._nl_step, self._pl_step):
            self.stop("reservoir empty")
            self.flags |= FLAG_EMPTY
        elif self.reservoir.low():
            self.flags |= FLAG_LOW
        return got

    # ---- the motor's next batch ------------------------------------------------------------
    def batch_span(self):
        """How long the next motor batch may run (0: nothing moves): to the pump's next quarter
        hour at most, never past a profile boundary, a bolus's end or a volume run's end (what
        is due changes there), nor past the span that keeps the look-ahead's products small."""
        if self.state != RUNNING or self.reservoir.empty(self._nl_step, self._pl_step):
            return 0  # an empty reservoir: the tick stops the pump; not one pulse meanwhile
        w = self._ms_to_change(_MAX_BATCH_MS - self.ms % _MAX_BATCH_MS)
        if self.run.steps_left:
            e = self.run.ms_to_end()
            if 0 <= e < w:
                w = e
        if self._seg_cap < w:
            w = self._seg_cap
        if w <= 0:
            return 0
        k = self._steps_to_event()
        if self.dry_steps(w) > k:
            # The reservoir turns low or empty, or a bridge ends, inside the span: end the batch
            # at the step that does it (the smallest span holding k steps), so the alarm or
            # the new concentration comes at that step, not at the batch's end.
            lo, hi = 1, w
            while lo < hi:
                mid = (lo + hi) // 2
                if self.dry_steps(mid) >= k:
                    hi = mid
                else:
                    lo = mid + 1
            w = lo
        return w

    def _steps_to_event(self):
        """Steps until the reservoir turns low or empty or the bridge ends, never more (each
        step counted at its calibrated nL rounded up): the count may be early, never late."""
        r = self.reservoir
        per = self._nl_step + (1 if self._pl_step else 0)
        k = r.volume_nl // per
        if not r.low():
            low = (r.volume_nl - r.low_nl + per - 1) // per
            if low < k:
                k = low
        if self.bridge_left and self.bridge_left < k:
            k = self.bridge_left
        return k if k > 0 else 1

    def dry_steps(self, span):
        """The steps tick(span) would return, computed on copies: changes nothing. Exact when
        span is no longer than batch_span() (no rate changes inside). Allocation-free."""
        if self.state != RUNNING or span <= 0:
            return 0
        steps = 0
        if self.conv is not None:
            q = self.basal.advance(span, False)
            if self.bolus_kind is not None:
                b = self.bolus.advance(span, False)
                q += b if b < self.bolus_left_q else self.bolus_left_q
            if q:
                steps = self.conv.add_q(q, False)
        if self.run.steps_left:
            steps += self.run.dry_steps(span)
        return steps

    def batch_steps_max(self):
        """The most steps ms_to_step may be asked for: k quanta-per-step x 54 stays small."""
        c = self.conv
        if c is None:
            return 1
        k = _BATCH_Q // (c.units_per_step // c.units_per_quantum + 1)
        return k if k > 1 else 1

    def ms_to_step(self, k):
        """ms until the k-th next dose step is due (1 <= k <= batch_steps_max()), -1 if never.
        Exact with one dose source; with a bolus beside the basal their two remainders may make
        it early by a quantum, so it is checked against dry_steps and moved on. No allocation."""
        c = self.conv
        if self.state != RUNNING or c is None:
            return -1
        rate = self.basal.rate
        rem = self.basal.remainder_units
        if self.bolus_kind is not None:
            rate += self.bolus.rate
            rem += self.bolus.remainder_units
        if rate == 0:
            return -1
        upq = c.units_per_quantum
        a = c.units_per_step // upq  # whole quanta in a step; the rest, b, is carried below
        b = c.units_per_step - a * upq
        q = (k - 1) * a + ((k - 1) * b + c.units_per_step - c.partial_step_units + upq - 1) // upq
        units = q * UNITS_PER_Q - rem
        t = (units + rate - 1) // rate if units > 0 else 0
        more = (UNITS_PER_Q + rate - 1) // rate  # ms for one more quantum at least
        n = 0
        while n < 4 and self.dry_steps(t) < k:
            t += more
            n += 1
        return t

    # ---- when to wake ---------------------------------------------------------------------
    def next_wake_ms(self):
        """The longest the app may sleep before what is due changes (a boundary, a bolus's
        end): the motor's batches carry the steps in between (services/motor_batch.py)."""
        w = self._ms_to_change(_MAX_WAKE_MS) if self.state == RUNNING else _MAX_WAKE_MS
        return w if w > 0 else 0

    def _ms_to_change(self, w):
        """`w`, or less when a profile boundary or the bolus's end comes sooner (running only)."""
        b = self._to_boundary
        if 0 <= b < w:
            w = b
        if self.bolus_kind is not None:
            e = self._ms_to_bolus_end()
            if e < w:
                w = e
        return w
