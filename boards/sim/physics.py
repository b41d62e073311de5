# Physical model of the bench: what really happens to the water, independent of what the
# firmware believes. All volumes in nL (unix-port ints; the model is not firmware).


class PumpHead:
    """A stepper-driven head: each step moves a true volume that may differ from nominal."""

    def __init__(self, true_pl_per_step):
        self.true_pl_per_step = true_pl_per_step
        self.steps = 0
        self.enabled = False


class Bench:
    def __init__(self, true_pl_per_step=50_000, reservoir_ul=20_000, battery_mv=3_600):
        self.head = PumpHead(true_pl_per_step)
        self.reservoir_pl = reservoir_ul * 1_000_000
        self.outlet_pl = 0
        self.dry_steps = 0  # steps that turned with an empty reservoir (moved air)
        self.battery_mv = battery_mv
        self.outlet_blocked = False

    def move(self, steps):
        self.head.steps += steps
        v = self.head.true_pl_per_step
        have = self.reservoir_pl // v  # whole steps of water left; the rest moves air
        wet = steps if steps <= have else have
        self.reservoir_pl -= wet * v
        self.outlet_pl += wet * v
        self.dry_steps += steps - wet

    def truth(self):
        return {
            "outlet_ul": self.outlet_pl // 1_000_000,
            "outlet_nl": self.outlet_pl // 1000,
            "reservoir_true_ul": self.reservoir_pl // 1_000_000,
            "reservoir_true_nl": self.reservoir_pl // 1000,
            "head_steps": self.head.steps,
            "dry_steps": self.dry_steps,
            "true_pl_per_step": self.head.true_pl_per_step,
            "battery_mv": self.battery_mv,
        }
