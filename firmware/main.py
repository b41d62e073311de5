# The Pico's boot entry: build the board, then run the pump application.
# Hold the patient bolus button while powering up to skip auto-start and keep the REPL
# (docs/hardware.md); MicroPython's own safe mode is the fallback.
from pico.board import PicoBoard, boot_button_held

if not boot_button_held():
    # The board first, then the app: the board's drivers load while the heap is still whole.
    # Loaded after the app's many small objects, a driver once found no room for its code.
    board = PicoBoard()
    import gc
    gc.collect()
    import app

    app.run(board)
