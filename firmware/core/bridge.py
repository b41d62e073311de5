# The concentration bridge: after a refill with a new concentration, the tubing and catheter
# still hold the old drug, so the prescribed dose keeps being converted at the old
# concentration until that dead volume has been pushed through. delivered() runs in the tick
# and allocates nothing.


class ConcentrationBridge:
    def __init__(self):
        self.steps_left = 0  # steps still carrying the old concentration
        self.conv_after = None  # the new concentration's StepConverter, waiting

    def start(self, conv_after, steps):
        self.conv_after = conv_after
        self.steps_left = steps

    def cancel(self):
        self.steps_left = 0
        self.conv_after = None

    def delivered(self, steps):
        """Count steps moved; returns the new converter once the new drug reaches the
        catheter tip (the bridge is then over), else None."""
        if not self.steps_left:
            return None
        if steps < self.steps_left:
            self.steps_left -= steps
            return None
        conv = self.conv_after
        self.cancel()
        return conv
