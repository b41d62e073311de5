# Patient bolus button: pin to GND with the internal pull-up, so pressed reads 0.
# The hard IRQ fires on both edges and only notes time; a falling edge counts as a press when
# the line was quiet for debounce_ms before it, which rejects contact bounce on press and on
# release alike. A press sets pressed_flag (asyncio.ThreadSafeFlag, the one asyncio primitive
# an IRQ may set). The handler allocates nothing: small ints, a bound method made once.
from micropython import const
import time
import asyncio
from machine import Pin
from pico.irq import interrupted

_DEBOUNCE_MS = const(50)


class Button:
    def __init__(self, pin, debounce_ms=_DEBOUNCE_MS, ticks_ms=None):
        if not isinstance(debounce_ms, int) or not 1 <= debounce_ms <= 1000:
            raise ValueError("debounce_ms must be an int in 1..1000, got %r" % (debounce_ms,))
        self._pin = Pin(pin, Pin.IN, Pin.PULL_UP)
        self._debounce = debounce_ms
        self._ticks = ticks_ms if ticks_ms is not None else time.ticks_ms
        self.pressed_flag = asyncio.ThreadSafeFlag()
        self.presses = 0  # debounced presses since start, wraps below 2**30
        self._last_edge = time.ticks_add(self._ticks(), -debounce_ms)
        self._isr_cb = self._isr
        self._pin.irq(handler=self._isr_cb, trigger=Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=True)

    def _isr(self, pin):
        try:
            now = self._ticks()
            quiet = time.ticks_diff(now, self._last_edge)
            self._last_edge = now
            if quiet >= self._debounce and self._pin.value() == 0:
                self.presses = (self.presses + 1) & 0x3FFFFFFF
                self.pressed_flag.set()
        except KeyboardInterrupt:
            interrupted.set()  # Ctrl-C landed in the handler: pico/irq.py hands it on

    def held(self):
        """True while the button is down (level, not debounced)."""
        return self._pin.value() == 0
