# What the pump knows about itself beside its therapy: whether it holds a calibration someone
# measured (and when), and the day its reservoir is forecast to run low. Commands set them,
# persist saves them under the keys "calibrated", "cal_day" and "refill_day", the minute's
# housekeeping reads the refill day.
from core.limits import check_day


class CalibrationRecord:
    def __init__(self, calibrated):
        self.calibrated = calibrated  # a measured pL per step is held (a board may ship one)
        self.day = None  # the wall-clock day the calibration was measured, if the host said

    def check_day(self, day):
        """Refuse a measurement day the clock could not hold (None: not said)."""
        if day is not None:
            check_day(day, "the calibration's day")

    def record(self, day):
        """A measured calibration is now held (after check_day and the pump took it)."""
        self.calibrated = True
        self.day = day


class RefillPlan:
    def __init__(self):
        self.day = None  # the forecast day of the low reservoir, set at each refill
