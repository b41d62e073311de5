# The Pico's boot entry: build the board, then run the pump application.
# Hold the patient bolus button while powering up to skip auto-start and keep the REPL
# (docs/hardware.md); MicroPython's own safe mode is the fallback.
from pico.board import PicoBoard, boot_button_held

if not boot_button_held():
    import app

    app.run(PicoBoard())
