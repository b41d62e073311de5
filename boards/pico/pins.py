# The one pin map of the Raspberry Pi Pico bench pump. Research and education only; never for
# human use. Every driver, docs/hardware.md and diagram.json (checked by
# tests/host/test_pico_static.py) follow these numbers: change a wire here and only here.
# Values are GPIO numbers (GPn), not physical pin numbers. None means "not wired".
# Plain ints, not : other modules import these names, and MicroPython only inlines
#  within the defining module; plain ints also let CPython (the static test) import it.
# GP0/GP1 stay free for UART0 (the REPL in Wokwi's serial monitor).

# Stepper driver (A4988 / DRV8825 / TMC2209 in STEP/DIR mode).
STEP = 2      # pulses from PIO state machine 0
DIR = 3       # fixed level: the pump only runs forward
EN = 4        # active low: high = driver off (motor unpowered, freewheeling)
DIAG = 5      # TMC2209 DIAG (high on stall); leave unwired on A4988/DRV8825

# Alternative motor: logic-level MOSFET gate driving a DC peristaltic pump.
PUMP_PWM = 6

# Annunciation.
BUZZER = 15   # passive piezo buzzer on PWM (slice 7 B)
LED_RED = 14  # through 330 ohm to the LED anode, cathode to GND
LED_YELLOW = 13

# Patient bolus button: to GND, internal pull-up; held at boot = skip auto-start.
BUTTON = 16

# Optional HX711 load cell amplifier under the outlet beaker.
HX711_DT = 17
HX711_SCK = 18

# Battery sense: divider (100k top, 100k bottom) into ADC0. A potentiometer between 3V3 and
# GND can stand in for a draining battery.
BATTERY_ADC = 26

# What is fitted. The board reads these to decide which drivers to build.
MOTOR_KIND = "stepper"   # "stepper" or "dc"
HAS_DIAG = False         # True when a TMC2209's DIAG is wired to DIAG
HAS_SCALE = True         # False: board.scale is None (also None when no HX711 answers)

# Board-level numbers that belong with the wiring.
DIVIDER_TOP_OHM = 100000
DIVIDER_BOTTOM_OHM = 100000
ADC_VREF_MV = 3300
STEP_RATE_DEFAULT = 400  # steps per second during a move
DC_SLICE_MS = 100        # one emulated "step" of the DC pump = this much run time
DC_DUTY_U16 = 52000      # ~80 % duty: the pump's running speed
# Nominal volume per step until calibrated (docs/hardware.md "Calibrate"): a small
# peristaltic head, 1/16 microstepping (3200 steps/rev), ~0.1 mL/rev -> ~31 nL/step.
STEP_PL_DEFAULT = 31250
DC_SLICE_PL_DEFAULT = 50000000  # ~30 mL/min pump: 50 uL per 100 ms slice
RESERVOIR_ML = 20        # the modelled reservoir (20 mL SynchroMed II size)

# Every GPIO this map uses, by name; the static test compares it with diagram.json and checks
# that no GPIO is used twice.
ALL = {
    "STEP": STEP,
    "DIR": DIR,
    "EN": EN,
    "DIAG": DIAG,
    "PUMP_PWM": PUMP_PWM,
    "BUZZER": BUZZER,
    "LED_RED": LED_RED,
    "LED_YELLOW": LED_YELLOW,
    "BUTTON": BUTTON,
    "HX711_DT": HX711_DT,
    "HX711_SCK": HX711_SCK,
    "BATTERY_ADC": BATTERY_ADC,
}
