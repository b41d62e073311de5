# The motor's timed batches: the engine (core/pump_tick.py) counts delivery, exactly, at every
# tick; this plans what the motor pulses so the control loop can sleep in between.
#
# At a control-loop wake, once the tick has counted what fell due, plan() hands the motor the
# steps that will fall due over the next span (PumpTick.batch_span: to the next quarter hour at
# most, never past a change of what is due) in one move, spread evenly up to the time the last
# of them falls due (none more than one step interval late), and the loop sleeps until the span
# ends. `ahead` is what the motor was given that the engine has not counted yet;
# an abort takes back what the motor had left, so a negative `ahead` is owed to the motor and is
# pulsed at once with the next batch. Over any number of batches the head turns exactly the
# steps the engine counted; at any instant the two differ by at most one step (even spacing
# against the engine's exact step times).
#
# A change of what is due (a bolus, a program, stop, a boundary) changes the pump's epoch; the
# next plan() sees it, aborts the batch and plans again from the engine. A late wake leaves
# steps counted and not yet pulsed (owed); after an ordinary stop they are pulsed at once at the
# motor's own rate, after a fault stop never, so there the count may lead the head by them.
_NONE = -1
# Stops after which the head still turns steps already counted (reasons from core/pump.py).
_FINISH_OWED = ("stopped by programmer", "programmed stopped", "reservoir empty")


class MotorBatch:
    def __init__(self, motor):
        self.motor = motor
        self.ahead = 0  # steps given to the motor and not yet counted by the engine (< 0: owed)
        self.left_ms = 0  # ms until the running batch's planned end (0: none runs)
        self.epoch = _NONE  # the pump's epoch the running batch was planned under
        self.batches = 0  # batches handed to the motor since boot
        self.wakes = 0  # control-loop wakes since boot (the app counts them)

    def counted(self, steps, dt_ms):
        """The tick counted `steps` over `dt_ms` (app.sync). Allocation-free."""
        self.ahead -= steps
        if self.left_ms > 0:
            self.left_ms = self.left_ms - dt_ms if dt_ms < self.left_ms else 0

    def abort(self):
        """Stop the motor now (stop, occlusion, a re-plan): what it had left is taken back."""
        m = self.motor
        left = m.left()
        m.enable(False)
        self.ahead -= left
        self.left_ms = 0

    def plan(self, pump):
        """At a control-loop wake, after the tick: start the next batch if the last one has
        ended or what is due has changed. Returns the steps handed to the motor, -1 if none."""
        if pump.epoch != self.epoch:
            if self.motor.left():
                self.abort()
            self.epoch = pump.epoch
            self.left_ms = 0
        elif self.left_ms > 0:
            return _NONE  # the running batch goes on
        span = pump.batch_span()
        if span <= 0:
            if self.motor.left():
                self.abort()  # not running: nothing may keep moving
            if self.ahead < 0 and pump.stop_reason in _FINISH_OWED:
                # Steps counted before an ordinary stop that a late wake left unpulsed: the head
                # turns them now, so it stopped where the pump says it did. After a stop for a
                # fault (occlusion, no flow, the battery) the head turns nothing more.
                owed = -self.ahead
                self.motor.move(owed)
                self.ahead = 0
                return owed
            return _NONE
        due = pump.dry_steps(span)
        owed = 0
        credit = 0
        if self.ahead < 0:
            owed = -self.ahead
        elif self.ahead > 0:
            # The motor already pulsed steps the engine counts only now: fewer this time.
            credit = self.ahead if self.ahead < due else due
        n = due - credit
        if n > 0 or owed:
            self._pulses(pump, self.motor, credit, due, span, owed)
        self.ahead += owed + n
        self.left_ms = span
        self.batches += 1
        return owed + n

    def _pulses(self, pump, m, first, last, span, owed):
        """One move per batch: the engine's steps first+1 .. last (and any owed) spread evenly
        up to the time the last one falls due, so the last pulse is on time and none is more
        than one step interval late; a batch of one step is exactly on time. A volume run, or
        more steps than the look-ahead can time in small ints, spreads them over the span.
        Why one move: on the Pico a second batch queued behind a timed one has been seen to
        stop the firmware answering (found 2026-12-02 on the emulated RP2040, not yet
        understood); until it is, a batch is never queued behind another."""
        n = last - first
        t = span
        if n > 0 and not pump.run.steps_left and last <= pump.batch_steps_max():
            tn = pump.ms_to_step(last)
            if 0 <= tn <= span:
                t = tn
        m.move(n + owed, t)
