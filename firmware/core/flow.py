# Measured delivery: with an outlet scale (the bench's, a Pico's HX711 under the beaker), the
# pump compares the water the head should have moved with the water that arrived, and says when
# none arrives while the head turns (NO_FLOW, docs/alarms.md). Counting alone cannot see an
# empty reservoir that the count says is full, a disconnected line or a leak; a scale can.
#
# Pure core: the caller passes the step count, the calibration and the scale's reading at each
# look (the quarter-hour check); nothing here reads a board or a clock.
from core.base import const
from core.conditions import RAISE, CLEAR, KEEP

# Missing volume that raises the alarm: more than the pump's tubing holds behind a blocked
# outlet before the driver stalls (about 4 µL, docs/bench-model.md), so a blockage is always an
# OCCLUSION first; and some 1000 times the bench scale's noise (±5 µg) and ten days of its
# evaporation (20 nL/h), so neither can raise it.
NO_FLOW_MISSING_NL = const(5_000)
# Less than half the expected water: a calibration off by up to 50 % never raises it.
# A window that has seen this much expected and at least half of it arrive starts again, so a
# fault is judged on the water moved since shortly before it, not since the pump started.
_WINDOW_NL = const(5_000)
# Water an open beaker may lose without any fault: twice the bench's evaporation (20 nL/h,
# docs/bench-model.md). Below about twice this rate (80 nL/h, 2 µL/day) the scale cannot tell
# flow from evaporation and the watch never raises: the stated limit (docs/alarms.md).
EVAP_ALLOW_NL_PER_H = const(40)
# A reading this far below the window's start: the beaker was emptied (or lifted); start again
# rather than count it as water that never came.
BEAKER_EMPTIED_UG = const(1_000)


class FlowWatch:
    """The window since the last good look: steps counted and the scale's reading at its start."""

    def __init__(self):
        self.ref_steps = -1  # -1: no window (the head is not turning, or no reading yet)
        self.ref_ug = 0
        self.ref_s = 0  # uptime s at the window's start
        self.expected_nl = 0  # of the last look, for the log and the tests
        self.arrived_nl = 0

    def look(self, steps_total, pl_per_step, scale_ug, turning, now_s):
        """RAISE when no water arrives while the head turns, CLEAR when it does (or the head
        does not turn), KEEP while the window is too young to say. now_s: uptime s. 1 µg of
        water is taken as 1 nL (water at 20 °C is 0.998 g/mL: well inside the factor of two);
        what evaporation may have taken since the window began counts as arrived."""
        if not turning:
            self.ref_steps = -1
            return CLEAR
        if scale_ug is None:
            return KEEP  # no reading yet (an HX711's first sample): judge nothing
        if self.ref_steps < 0 or steps_total < self.ref_steps or now_s < self.ref_s:
            self._start(steps_total, scale_ug, now_s)
            return KEEP
        d = steps_total - self.ref_steps
        # d * pl_per_step can pass a Pico's small ints after ~20 000 steps: split it.
        exp = d * (pl_per_step // 1000) + d * (pl_per_step % 1000) // 1000
        got = scale_ug - self.ref_ug
        self.expected_nl, self.arrived_nl = exp, got
        if got < -BEAKER_EMPTIED_UG:
            self._start(steps_total, scale_ug, now_s)
            return KEEP
        got += (now_s - self.ref_s) * EVAP_ALLOW_NL_PER_H // 3600
        if got * 2 < exp:
            return RAISE if exp - got >= NO_FLOW_MISSING_NL else KEEP
        if exp >= _WINDOW_NL:
            self._start(steps_total, scale_ug, now_s)
        return CLEAR

    def _start(self, steps_total, scale_ug, now_s):
        self.ref_steps = steps_total
        self.ref_ug = scale_ug
        self.ref_s = now_s
