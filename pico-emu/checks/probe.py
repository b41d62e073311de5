# What the checks run on the emulated board share: try one thing, print one OK/FAIL line.
# mpremote run sends only the script, so this module is copied to the board first
# (checks/smoke.sh does: mpremote fs cp pico-emu/checks/probe.py :probe.py).
def t(name, fn):
    try:
        r = fn()
        print("OK  ", name, r)
    except Exception as e:
        print("FAIL", name, type(e).__name__, e)
