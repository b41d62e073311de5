# Battery sense: the cell through a resistor divider into an ADC pin. A potentiometer between
# 3V3 and GND on the ADC pin can stand in for a draining battery.
from micropython import const
from machine import ADC, Pin

_AVG = const(4)


class Battery:
    def __init__(self, pin, top_ohm=100000, bottom_ohm=100000, vref_mv=3300):
        for name, v in (("top_ohm", top_ohm), ("bottom_ohm", bottom_ohm)):
            if not isinstance(v, int) or not 0 <= v <= 1000000:
                raise ValueError("%s must be an int in 0..1000000, got %r" % (name, v))
        if bottom_ohm == 0:
            raise ValueError("bottom_ohm must be > 0")
        if not isinstance(vref_mv, int) or not 1000 <= vref_mv <= 5000:
            raise ValueError("vref_mv must be an int in 1000..5000, got %r" % (vref_mv,))
        self._adc = ADC(Pin(pin))
        # Reduce the ratio so pin_mv * num stays far below 2**30.
        num, den = top_ohm + bottom_ohm, bottom_ohm
        while num > 10000:
            num //= 10
            den //= 10
        if den == 0:
            raise ValueError("divider ratio too large")
        self._num = num
        self._den = den
        self._vref = vref_mv

    def pin_mv(self):
        s = 0
        for _ in range(_AVG):
            s += self._adc.read_u16()
        return (s // _AVG) * self._vref // 65535

    def mv(self):
        return self.pin_mv() * self._num // self._den
