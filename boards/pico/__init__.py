# Raspberry Pi Pico (RP2040) board package for the bench pump. Research and education only;
# never for human use. Build it with `from pico.board import PicoBoard`.
