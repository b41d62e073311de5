# HX711 load-cell amplifier, bit-banged (channel A, gain 128), never blocking the event loop:
# read_ug() takes a new sample only when the chip says one is ready (DT low) and otherwise
# returns the last average. Samples go into a ring buffer allocated once.
# Mass = (average counts - offset) * ng_per_count / 1000, done in two halves so no
# intermediate reaches 2**30 (big ints allocate on the Pico).
from micropython import const
import time
import machine
from machine import Pin
from array import array

_BITS = const(24)
_LIMIT = const(0x3FFFFFFF)


class HX711:
    def __init__(self, dt_pin, sck_pin, samples=4, ng_per_count=100000, offset=0):
        if not isinstance(samples, int) or not 1 <= samples <= 32:
            raise ValueError("samples must be an int in 1..32, got %r" % (samples,))
        self._sck = Pin(sck_pin, Pin.OUT, value=0)  # high > 60 us would power the chip down
        self._dt = Pin(dt_pin, Pin.IN)
        self._buf = array("i", [0] * samples)
        self._n = 0      # samples held (<= len(buf))
        self._i = 0      # next slot
        self.offset = 0
        self.ng_per_count = 1
        self.set_calibration(offset, ng_per_count)

    def set_calibration(self, offset, ng_per_count):
        """Restore a saved calibration. offset in counts, ng_per_count 1..100000000."""
        if not isinstance(offset, int) or not -(1 << 24) <= offset < (1 << 24):
            raise ValueError("offset must be an int within 24 bits, got %r" % (offset,))
        if not isinstance(ng_per_count, int) or not 1 <= ng_per_count <= 100000000:
            raise ValueError("ng_per_count must be an int in 1..1e8, got %r" % (ng_per_count,))
        self.offset = offset
        self.ng_per_count = ng_per_count

    def ready(self):
        return self._dt.value() == 0

    def read_raw(self):
        """One conversion as a signed 24-bit int; caller checks ready() first."""
        sck = self._sck
        dt = self._dt
        v = 0
        st = machine.disable_irq()  # keep each SCK high pulse short
        for _ in range(_BITS):
            sck.value(1)
            sck.value(0)
            v = (v << 1) | dt.value()
        sck.value(1)   # 25th pulse: next conversion channel A, gain 128
        sck.value(0)
        machine.enable_irq(st)
        if v & 0x800000:
            v -= 0x1000000
        return v

    def _sample(self):
        if self.ready():
            self._buf[self._i] = self.read_raw()
            self._i = (self._i + 1) % len(self._buf)
            if self._n < len(self._buf):
                self._n += 1

    def average(self):
        """Mean of the buffered samples (counts) or None before the first sample."""
        if self._n == 0:
            return None
        s = 0
        for k in range(self._n):
            s += self._buf[k]
        return s // self._n

    def counts_to_ug(self, counts):
        c = counts - self.offset
        neg = c < 0
        if neg:
            c = -c
        q, r = divmod(c, 1000)
        ug = q * self.ng_per_count + (r * self.ng_per_count) // 1000
        if ug > _LIMIT:
            ug = _LIMIT
        return -ug if neg else ug

    def read_ug(self):
        """Mass in ug from the averaged samples, or None if no sample was ever read."""
        self._sample()
        a = self.average()
        if a is None:
            return None
        return self.counts_to_ug(a)

    def _fill(self, timeout_ms):
        # Blocking: only for tare/calibrate, run by a person with the pump stopped.
        self._n = 0
        self._i = 0
        t0 = time.ticks_ms()
        while self._n < len(self._buf):
            if self.ready():
                self._sample()
            elif time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                raise OSError("HX711 not answering (check DT/SCK wiring)")
            else:
                time.sleep_ms(5)
        return self.average()

    def tare(self, timeout_ms=2000):
        """Set the empty-beaker offset. Returns it (counts) so the caller can save it."""
        self.offset = self._fill(timeout_ms)
        return self.offset

    def calibrate(self, known_ug, timeout_ms=2000):
        """With a known mass (ug) on the scale after tare(): set and return ng_per_count."""
        if not isinstance(known_ug, int) or not 1000 <= known_ug <= 1000000000:
            raise ValueError("known mass must be an int of 1 mg..1 kg in ug, got %r" % (known_ug,))
        counts = self._fill(timeout_ms) - self.offset
        if counts <= 0:
            raise ValueError("scale reads no weight above the tare; check the load cell")
        ng = known_ug * 1000 // counts  # one-off: a big int here is fine
        self.set_calibration(self.offset, ng)
        return ng
