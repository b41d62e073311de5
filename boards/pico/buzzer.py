# Passive piezo buzzer on PWM: tone(hz) sounds a square wave at 50 % duty, off() silences it.
# The alarm patterns (IEC 60601-1-8 bursts) are timed by the firmware's annunciator.
from micropython import const
from machine import Pin, PWM

MIN_HZ = const(50)
MAX_HZ = const(10000)
_HALF = const(32768)


class Buzzer:
    def __init__(self, pin):
        self._pwm = PWM(Pin(pin), freq=1000, duty_u16=0)
        self.hz = 0  # what is sounding now; 0 = silent

    def tone(self, hz):
        if not isinstance(hz, int) or isinstance(hz, bool) or not MIN_HZ <= hz <= MAX_HZ:
            raise ValueError("tone must be an int in %d..%d Hz, got %r" % (MIN_HZ, MAX_HZ, hz))
        if hz != self.hz:
            self._pwm.freq(hz)
        self._pwm.duty_u16(_HALF)
        self.hz = hz

    def off(self):
        self._pwm.duty_u16(0)
        self.hz = 0
