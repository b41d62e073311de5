# Test helpers: drive the pure core like the app does and keep an exact account of what the
# program asked for, independently of the pump's own arithmetic (unix-port big ints).
from core.pump import Pump
from core.alarms import AlarmManager
from core import program as programs
from core.druglib import LIBRARY

DAY = 86_400_000


def make(prog_dict, pl=50_000, model=40, fill_ul=40_000, day=9000, ms=0):
    pump = Pump(AlarmManager(), model_ml=model, pl_per_step=pl)
    pump.reservoir.fill(fill_ul)
    pump.set_wall(day, ms)
    prog = programs.parse(prog_dict, LIBRARY)
    pump.set_program(prog, LIBRARY.max24_ug(prog.drug))
    return pump, prog


class Exact:
    """The programmed delivery integrated exactly, in (µg/day)*ms units."""

    def __init__(self, prog, ms_of_day):
        self.prog = prog
        self.ms = ms_of_day  # wall ms of day
        self.u = 0
        self.boluses = []  # [start_u_clock, rate, dose_units]
        self.t = 0

    def basal(self, dt):
        # Piecewise over minute boundaries where the rate may change.
        while dt > 0:
            m = self.ms // 60_000
            nxt = (self.prog.next_change_min(m) * 60_000)
            seg = nxt - self.ms
            if seg <= 0:
                seg += DAY
            if seg > dt:
                seg = dt
            self.u += self.prog.rate_at(m) * seg
            self.ms = (self.ms + seg) % DAY
            self.t += seg
            dt -= seg
            if self.ms % 60_000 == 0:
                m = self.ms // 60_000
                for t, dose, dur in self.prog.periodic:
                    if t == m:
                        self.bolus(dose, dur)

    def bolus(self, dose_ug, dur_min):
        # Fold the boluses already given in full into u first: a year of them in one list made
        # every total() slower and once ran a 1 MB test heap out of one 8 KB block.
        live = []
        for b in self.boluses:
            if b[1] * (self.t - b[0]) >= b[2]:
                self.u += b[2]
            else:
                live.append(b)
        rate = dose_ug * 1440 // dur_min
        live.append([self.t, rate if rate else 1, dose_ug * DAY])
        self.boluses = live

    def total(self):
        u = self.u
        for start, rate, cap in self.boluses:
            b = rate * (self.t - start)
            u += b if b < cap else cap
        return u


def error_ok(cmd_steps, exact_u, conc, pl):
    """|cmd - exact| <= 1 step, exact = u * 1e9 / (DAY * conc * pl)."""
    den = DAY * conc * pl
    d = cmd_steps * den - exact_u * 1_000_000_000
    if d < 0:
        d = -d
    return d <= den, d / den


def walk_ints(obj, seen=None, depth=0):
    """Largest |int| reachable from obj's attributes (lists, tuples, dicts, objects)."""
    if seen is None:
        seen = set()
    if isinstance(obj, bool):
        return 0
    if isinstance(obj, int):
        return -obj if obj < 0 else obj
    if depth > 6 or id(obj) in seen:
        return 0
    seen.add(id(obj))
    m = 0
    items = ()
    if isinstance(obj, (list, tuple)):
        items = obj
    elif isinstance(obj, dict):
        items = list(obj.values())
    elif hasattr(obj, "__dict__") and not isinstance(obj, (str, bytes, type)):
        items = list(obj.__dict__.values())
    for v in items:
        x = walk_ints(v, seen, depth + 1)
        if x > m:
            m = x
    return m


class NullPort:
    """A programmer port nobody talks on: for an App driven by calling its commands."""

    async def read(self):
        return b"x"

    def write(self, b):
        return len(b)


def booted_app(day=9800, ms=36_000_000):
    """An App on a lockstep sim board with no storage, booted, its clock set."""
    import app as app_mod  # the whole firmware: only the tests that drive the App pay for it
    from sim.board import SimBoard
    b = SimBoard(lockstep=True, port=NullPort())
    b.clock.set_wall(day, ms)
    a = app_mod.App(b)
    a.boot()
    return a
