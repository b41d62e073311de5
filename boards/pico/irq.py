# Ctrl-C (0x03 from mpremote or Thonny) is raised as KeyboardInterrupt in whatever Python code
# runs at that moment, a hard IRQ handler included. MicroPython then prints "Uncaught exception
# in IRQ callback handler" and DISABLES that handler for good: the stepper's completion IRQ
# stops releasing EN, and the interrupt never reaches the firmware, so mpremote cannot get the
# REPL. Seen on the rp2 port with the motor stepping. Every hard handler on this board catches
# it and hands it on here; a task of the board (PicoBoard.tasks) raises it again in the
# firmware, where app.run leaves the motor disabled and the state saved.
# set() is the one asyncio call an IRQ may make; nothing here allocates in the handler.
import asyncio

interrupted = asyncio.ThreadSafeFlag()


async def relay():
    """Board task: re-raise a Ctrl-C that landed inside an interrupt handler."""
    await interrupted.wait()
    raise KeyboardInterrupt
