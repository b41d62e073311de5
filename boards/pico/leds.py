# Red (alarm) and yellow (warning) LEDs, active high through a series resistor.
from machine import Pin


class Leds:
    def __init__(self, red_pin, yellow_pin):
        self._red = Pin(red_pin, Pin.OUT, value=0)
        self._yellow = Pin(yellow_pin, Pin.OUT, value=0)

    def set(self, red, yellow):
        self._red.value(1 if red else 0)
        self._yellow.value(1 if yellow else 0)

    def get(self):
        return (self._red.value() == 1, self._yellow.value() == 1)
